/* The interactive shell: synosh with no script on a terminal, or -i. */
#ifndef SYNOSH_REPL_H
#define SYNOSH_REPL_H

#include <lua.h>

/*
 * Reads statements until end of input and runs each one, printing its results
 * through lua/syno/repl.lua. Returns the exit status: 0 at end of input,
 * 128 + the signal number after SIGTERM or SIGHUP, or 1 when
 * lua/syno/repl.lua fails to load.
 */
int repl_run(lua_State *L);

#endif
