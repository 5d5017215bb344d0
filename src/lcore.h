/* The syno.core module: the C primitives under the Lua modules in lua/syno/. */
#ifndef SYNOSH_LCORE_H
#define SYNOSH_LCORE_H

#include <lua.h>
#include <signal.h>

/* Non-zero once SIGINT or SIGTERM arrived: transfers stop and no new request starts. */
extern volatile sig_atomic_t lcore_interrupt;

int luaopen_syno_core(lua_State *L);

#endif
