#include "embedded.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

static const struct embedded_module *find_module(const char *name) {
  for (const struct embedded_module *module = embedded_modules; module->name; module++) {
    if (strcmp(module->name, name) == 0)
      return module;
  }
  return NULL;
}

/* A package.searchers entry: returns a loader and its chunk name, or a message. */
static int search_embedded(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const struct embedded_module *module = find_module(name);
  if (module == NULL) {
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
  }
  const char *chunk_name = lua_pushfstring(L, "@[synosh]/%s", module->path);
  if (luaL_loadbufferx(L, (const char *)module->source, module->length, chunk_name, "t") != LUA_OK)
    return luaL_error(L, "error loading embedded module '%s':\n\t%s", name, lua_tostring(L, -1));
  lua_pushstring(L, chunk_name + 1);
  return 2;
}

void embedded_install_searcher(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  /* Entries from 3 on move up by one, so ours runs after preload and Lua files. */
  lua_Integer count = (lua_Integer)luaL_len(L, -1);
  for (lua_Integer i = count; i >= 3; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, search_embedded);
  lua_rawseti(L, -2, 3);
  lua_pop(L, 2);
}
