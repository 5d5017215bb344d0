/* The Lua modules under lua/, compiled into the binary (see src/embed_lua.cmake). */
#ifndef SYNOSH_EMBEDDED_H
#define SYNOSH_EMBEDDED_H

#include <stddef.h>

struct embedded_module {
  const char *name;   /* module name, such as "syno.image" */
  const char *path;   /* path under lua/, used as the chunk name */
  const unsigned char *source;
  size_t length;
};

/* Ends with an entry whose name is NULL. */
extern const struct embedded_module embedded_modules[];

struct lua_State;

/*
 * Adds a searcher for the embedded modules to package.searchers, after the
 * searcher for Lua files, so a module on package.path overrides the embedded
 * copy during development.
 */
void embedded_install_searcher(struct lua_State *L);

#endif
