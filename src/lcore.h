/* The syno.core module: the C primitives under the Lua modules in lua/syno/. */
#ifndef SYNOSH_LCORE_H
#define SYNOSH_LCORE_H

#include <lua.h>
#include <signal.h>

/* The number of the signal (SIGINT, SIGTERM, SIGHUP) that asked the run to
   stop, or 0. */
extern volatile sig_atomic_t lcore_interrupt;

/* Non-zero when transfers must stop: set with lcore_interrupt, except while
   Lua code holds interrupts (core.hold_interrupts) to finish the current call
   and report, as a cleanup does. */
extern volatile sig_atomic_t lcore_abort;

/* Records signo from a signal handler (async-signal-safe). Returns 1 when the
   handler should make the running Lua code stop now, 0 when interrupts are
   held and the Lua code will stop by itself after its current call. */
int lcore_note_signal(int signo);

/* Forgets a recorded signal, before the host logs out or the shell goes on. */
void lcore_clear_interrupt(void);

int luaopen_syno_core(lua_State *L);

#endif
