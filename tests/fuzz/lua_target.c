/*
 * libFuzzer target that hands each input to a Lua driver (tests/fuzz/NAME.lua).
 *
 * The Lua state is set up as the synosh host sets it up: standard libraries,
 * cjson, syno.core and the embedded syno modules. It is kept for the whole
 * run, so an input costs one call of the driver and not a module load. The
 * driver returns a function that receives the input as a string; it checks
 * its own invariants and raises when one fails, which this file turns into a
 * crash that libFuzzer saves.
 *
 * libFuzzer sees only the C code compiled with its instrumentation. So that it
 * also learns which Lua lines an input reached, a line hook counts each
 * (function, previous line, line) edge in libFuzzer's extra counters.
 *
 * FUZZ_DRIVER is the path of the driver, set by tests/fuzz/CMakeLists.txt.
 */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "embedded.h"
#include "lcore.h"
#include "msg.h"

int luaopen_cjson_safe(lua_State *L);

/* The Lua heap may not grow past FUZZ_MEMORY_LIMIT bytes, so an input that
   makes Lua allocate without bound gets Lua's "not enough memory" error
   instead of tripping libFuzzer's malloc limit. */
#define MEMORY_LIMIT ((size_t)FUZZ_MEMORY_LIMIT)

/* FUZZ_INSTRUCTION_BUDGET is the number of Lua instructions one input may
   run. Past it the count hook raises, so an endless loop in a profile file
   ends as an error and not as a timeout. tests/fuzz/targets.cmake sets both
   limits per target. */
#define INSTRUCTION_BUDGET ((long)FUZZ_INSTRUCTION_BUDGET)
#define COUNT_HOOK_STEP 1000

#define COVERAGE_SLOTS (1u << 14)

/* The chunk name prefix of the embedded modules (src/embedded.c). */
#define EMBEDDED_PREFIX "@[synosh]/"

/* libFuzzer reads this section as extra coverage counters (Linux only). */
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_edge_counters[COVERAGE_SLOTS];

/* The Lua state takes its blocks from synosh's size classes, as the shipped
   binary does, which also puts src/alloc.c under the fuzzer. AddressSanitizer
   treats a slab as one block, so SYNOSH_MALLOC=system gives each Lua block
   its own malloc block again. */
static struct alloc_pool *pool;
static lua_State *state;
static int driver_ref = LUA_NOREF;
static size_t heap_used;
static long instructions_left;
static uintptr_t previous_location;

/* The harness's own code is left out of libFuzzer's coverage. */
__attribute__((no_sanitize("coverage")))
static void *limited_alloc(void *ud, void *block, size_t old_size, size_t new_size) {
  (void)ud;
  size_t old_used = block != NULL ? old_size : 0;
  if (new_size == 0) {
    alloc_lua(pool, block, old_size, 0);
    heap_used -= old_used;
    return NULL;
  }
  if (new_size > old_used && heap_used - old_used + new_size > MEMORY_LIMIT)
    return NULL;
  void *resized = alloc_lua(pool, block, old_size, new_size);
  if (resized != NULL)
    heap_used = heap_used - old_used + new_size;
  return resized;
}

__attribute__((no_sanitize("coverage")))
static void coverage_hook(lua_State *L, lua_Debug *ar) {
  if (ar->event == LUA_HOOKCOUNT) {
    instructions_left -= COUNT_HOOK_STEP;
    if (instructions_left < 0) {
      /* A fresh budget lets the code that catches this error finish. */
      instructions_left = INSTRUCTION_BUDGET;
      luaL_error(L, "fuzz instruction budget exhausted");
    }
    return;
  }
  /* ar->source points into the function's prototype, so it is the same for
     every closure of one function and stays valid while the state lives.
     Only the embedded modules count: a chunk loaded anew for each input (a
     profile file) would bring a new pointer, and so new edges, every time. */
  if (!lua_getinfo(L, "S", ar) || strncmp(ar->source, EMBEDDED_PREFIX, sizeof EMBEDDED_PREFIX - 1) != 0)
    return;
  uintptr_t location = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline;
  location ^= location >> 17;
  location *= 0x9E3779B97F4A7C15u;
  uintptr_t edge = (location ^ (previous_location >> 1)) % COVERAGE_SLOTS;
  previous_location = location;
  lua_edge_counters[edge]++;
}

/* Adds a traceback to the error message, or to the type name of a non-string error. */
static int message_handler(lua_State *L) {
  const char *message = lua_tostring(L, 1);
  if (message == NULL)
    message = luaL_typename(L, 1);
  luaL_traceback(L, L, message, 1);
  return 1;
}

static void open_libraries(lua_State *L) {
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_setfield(L, -2, "cjson.safe");
  lua_pushcfunction(L, luaopen_syno_core);
  lua_setfield(L, -2, "syno.core");
  lua_pop(L, 1);
  embedded_install_searcher(L);
  /* No module may come from a file on disk: the embedded copies are the
     ones under test. */
  lua_getglobal(L, "package");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
}

/* Loads the driver and keeps the function it returns in the registry. */
static int load_driver(lua_State *L) {
  open_libraries(L);
  if (luaL_loadfile(L, FUZZ_DRIVER) != LUA_OK)
    return lua_error(L);
  lua_call(L, 0, 1);
  luaL_checktype(L, -1, LUA_TFUNCTION);
  driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  msg_configure(1, 0);
  const char *choice = getenv("SYNOSH_MALLOC");
  pool = alloc_pool_new(choice == NULL || strcmp(choice, "system") != 0);
  state = pool != NULL ? lua_newstate(limited_alloc, NULL) : NULL;
  if (state == NULL) {
    fputs("fuzz: cannot create the Lua state\n", stderr);
    abort();
  }
  lua_pushcfunction(state, message_handler);
  lua_pushcfunction(state, load_driver);
  if (lua_pcall(state, 0, 0, 1) != LUA_OK) {
    fprintf(stderr, "fuzz: cannot load %s: %s\n", FUZZ_DRIVER, lua_tostring(state, -1));
    abort();
  }
  lua_settop(state, 0);
  lua_sethook(state, coverage_hook, LUA_MASKLINE | LUA_MASKCOUNT, COUNT_HOOK_STEP);
  return 0;
}

/* Calls the driver with the input; runs under lua_pcall, so that even
   copying the input into a Lua string cannot raise unprotected. */
static int run_driver(lua_State *L) {
  const char *data = lua_touserdata(L, 1);
  size_t size = (size_t)lua_tointeger(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
  lua_pushlstring(L, data, size);
  lua_call(L, 1, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state;
  instructions_left = INSTRUCTION_BUDGET;
  previous_location = 0;
  lua_pushcfunction(L, message_handler);
  lua_pushcfunction(L, run_driver);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 1) != LUA_OK) {
    /* A driver raises only when an invariant failed, or when the code under
       test raised something other than the clean error it must raise. */
    fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  /* A full collection frees what the input allocated, so every input ends
     with as many frees as allocations and libFuzzer's leak check, which runs
     LeakSanitizer only after an unbalanced input, stays quiet and cheap. */
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
