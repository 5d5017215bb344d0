/*
 * synosh host: parses the command line, sets up the Lua state with the syno
 * modules, runs -e, -l and the script like lua.c does, reports an uncaught
 * error as one line and maps it to the documented exit status.
 */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-cjson.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "embedded.h"
#include "http.h"
#include "lcore.h"
#include "msg.h"
#include "repl.h"

int luaopen_cjson_safe(lua_State *L);

enum exit_status {
  EXIT_OK = 0,
  EXIT_SCRIPT = 1,
  EXIT_USAGE = 2,
  EXIT_LOGIN = 3,
  EXIT_UNREACHABLE = 4,
  EXIT_LOCKED = 5,
};

/* The last error line printed, for the --notify-command report. */
static char last_error[1024];

struct run {
  int argc;
  char **argv;
  struct cli_options *options;
  int status;   /* exit status decided while running */
};

static lua_State *running_state;

static const char *signal_name(int signo) {
  switch (signo) {
  case SIGINT:
    return "SIGINT";
  case SIGTERM:
    return "SIGTERM";
  case SIGHUP:
    return "SIGHUP";
  default:
    return "a signal";
  }
}

/*
 * Set by the signal handler and left in place: every Lua instruction after the
 * signal raises an error object of kind "interrupted". So a script that
 * catches errors with pcall still stops, at the first instruction outside the
 * pcall. The host removes the hook before it logs out.
 */
static void interrupt_hook(lua_State *L, lua_Debug *debug) {
  (void)debug;
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "interrupted");
  lua_setfield(L, -2, "kind");
  lua_pushfstring(L, "interrupted by %s", signal_name(lcore_interrupt));
  lua_setfield(L, -2, "message");
  luaL_getmetatable(L, "syno.Error");  /* registered by lua/syno/errors.lua */
  if (lua_istable(L, -1))
    lua_setmetatable(L, -2);
  else
    lua_pop(L, 1);
  lua_error(L);
}

static void on_signal(int signo) {
  /* A second signal ends the process the default way. */
  signal(signo, SIG_DFL);
  if (lcore_note_signal(signo) && running_state != NULL)
    lua_sethook(running_state, interrupt_hook, LUA_MASKCOUNT, 1);
}

/* Keeps error objects (tables) intact, so the host can read their kind. */
static int message_handler(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING && msg_enabled(MSG_DEBUG))
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
  else if (lua_isnoneornil(L, 1))
    lua_pushliteral(L, "error object is nil");
  else
    lua_pushvalue(L, 1);
  return 1;
}

static int exit_status_for_kind(const char *kind) {
  if (kind == NULL)
    return EXIT_SCRIPT;
  if (strcmp(kind, "usage") == 0)
    return EXIT_USAGE;
  if (strcmp(kind, "auth") == 0 || strcmp(kind, "otp_required") == 0)
    return EXIT_LOGIN;
  if (strcmp(kind, "network") == 0 || strcmp(kind, "tls") == 0 || strcmp(kind, "timeout") == 0)
    return EXIT_UNREACHABLE;
  if (strcmp(kind, "locked") == 0)
    return EXIT_LOCKED;
  return EXIT_SCRIPT;
}

/* Prints "interrupted by SIG..." and returns 128 + the signal number. */
static int report_interrupt(void) {
  snprintf(last_error, sizeof last_error, "interrupted by %s", signal_name(lcore_interrupt));
  msg_print(MSG_ERROR, "%s", last_error);
  return 128 + lcore_interrupt;
}

/* Prints the error on top of the stack as one line and returns its exit status. */
static int report_error(lua_State *L) {
  int status = EXIT_SCRIPT;
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "kind");
    status = exit_status_for_kind(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (lcore_interrupt)
    return report_interrupt();
  int has_tostring = luaL_getmetafield(L, -1, "__tostring") != LUA_TNIL;
  if (has_tostring)
    lua_pop(L, 1);
  if (lua_type(L, -1) == LUA_TTABLE && !has_tostring) {
    /* A plain table: its message field, if any. */
    lua_getfield(L, -1, "message");
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "(error object is a table value)");
    }
  } else {
    luaL_tolstring(L, -1, NULL);
  }
  snprintf(last_error, sizeof last_error, "%s", lua_tostring(L, -1));
  msg_print(MSG_ERROR, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  if (lua_type(L, -1) == LUA_TTABLE && msg_enabled(MSG_DEBUG)) {
    lua_getfield(L, -1, "traceback");
    if (lua_isstring(L, -1))
      msg_print(MSG_DEBUG, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

/* Calls the function under it with nargs arguments; returns the Lua status. */
static int docall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  running_state = L;
  int status = lua_pcall(L, nargs, nresults, base);
  running_state = NULL;
  lua_remove(L, base);
  return status;
}

/* Runs the loaded chunk (or reports the load error); returns an exit status. */
static int run_chunk(lua_State *L, int load_status, int nargs) {
  if (load_status != LUA_OK) {
    lua_insert(L, -(nargs + 1));
    lua_pop(L, nargs);
    int status = report_error(L);
    lua_pop(L, 1);
    return load_status == LUA_ERRFILE ? EXIT_USAGE : status;
  }
  if (docall(L, nargs, 0) != LUA_OK) {
    int status = report_error(L);
    lua_pop(L, 1);
    return status;
  }
  return EXIT_OK;
}

static int run_require(lua_State *L, const char *module) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (docall(L, 1, 1) != LUA_OK) {
    int status = report_error(L);
    lua_pop(L, 1);
    return status;
  }
  lua_setglobal(L, module);
  return EXIT_OK;
}

/* Builds the global arg table as lua.c does: arg[0] is the script. */
static void create_arg_table(lua_State *L, int argc, char **argv, int script_index) {
  int count = argc - script_index - 1;
  lua_createtable(L, count > 0 ? count : 0, script_index + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script_index);
  }
  lua_setglobal(L, "arg");
}

static int push_script_args(lua_State *L, int argc, char **argv, int script_index) {
  int count = argc - script_index - 1;
  if (count < 0)
    return 0;
  luaL_checkstack(L, count + 3, "too many script arguments");
  for (int i = script_index + 1; i < argc; i++)
    lua_pushstring(L, argv[i]);
  return count;
}

static void set_string_field(lua_State *L, const char *name, const char *value) {
  if (value == NULL)
    return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, name);
}

/* The command-line options, for lua/syno/config.lua, as package.loaded["syno.options"]. */
static void publish_options(lua_State *L, const struct cli_options *options) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_newtable(L);
  set_string_field(L, "url", options->url);
  set_string_field(L, "user", options->user);
  set_string_field(L, "password_file", options->password_file);
  set_string_field(L, "otp", options->otp);
  set_string_field(L, "cacert", options->cacert);
  set_string_field(L, "pinned_pubkey", options->pinned_pubkey);
  set_string_field(L, "profile", options->profile);
  set_string_field(L, "lock", options->lock);
  set_string_field(L, "notify_command", options->notify_command);
  set_string_field(L, "dialect", options->dialect);
  set_string_field(L, "remember_device", options->remember_device);
  if (options->timeout) {
    lua_pushnumber(L, strtod(options->timeout, NULL));
    lua_setfield(L, -2, "timeout");
  }
  if (options->insecure) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "insecure");
  }
  if (options->dry_run) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "dry_run");
  }
  lua_pushboolean(L, options->verbose);
  lua_setfield(L, -2, "verbose");
  lua_pushboolean(L, options->quiet);
  lua_setfield(L, -2, "quiet");
  lua_setfield(L, -2, "syno.options");
  lua_pop(L, 1);
}

static void shutdown_sessions(lua_State *L);
static void finish_run(lua_State *L, int status);
static const struct cli_options *host_options;

/* Reports an error raised outside any protected call, then lets Lua abort. */
static int panic(lua_State *L) {
  /* lua_tostring would convert a number in place, which may allocate. */
  const char *message = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
  msg_print(MSG_ERROR, "unprotected Lua error: %s", message);
  return 0;
}

/* Lua's warn(): off until a script calls warn("@on"), as in lua.c. The
   pieces of one warning become one "synosh: warning:" line, cut with "..."
   after 1,023 bytes. */
static struct {
  int on;
  int cut;
  size_t used;
  char text[1024];
} warnings;

static void warn_function(void *ud, const char *piece, int to_continue) {
  (void)ud;
  if (warnings.used == 0 && !to_continue && piece[0] == '@') {
    if (strcmp(piece, "@on") == 0)
      warnings.on = 1;
    else if (strcmp(piece, "@off") == 0)
      warnings.on = 0;
    return;
  }
  size_t length = strlen(piece);
  size_t room = sizeof warnings.text - 1 - warnings.used;
  if (length > room) {
    length = room;
    warnings.cut = 1;
  }
  memcpy(warnings.text + warnings.used, piece, length);
  warnings.used += length;
  warnings.text[warnings.used] = '\0';
  if (!to_continue) {
    if (warnings.on)
      msg_print(MSG_WARNING, "%s%s", warnings.text, warnings.cut ? "..." : "");
    warnings.used = 0;
    warnings.cut = 0;
  }
}

/* A listing creates hundreds of thousands of small records and leaves a
   page of JSON text behind as garbage for every 2,000 of them. Measured on
   a listing of 100,000 images (docs/performance.md), these settings lower
   the peak resident size from 62.9 to 53.4 MiB together with the size
   classes, for 2% more instructions:
   - blocks from 128 KiB up (such as the text of a page) always get their
     own mapping, so freeing one returns it to the system at once. By
     default glibc raises that threshold and keeps the next ones in its heap;
   - the collector starts a cycle when the heap has grown by half (Lua's
     default: doubled) and works twice as fast, so less garbage waits. */
static void tune_memory(lua_State *L) {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  lua_gc(L, LUA_GCINC, 150, 200, 0);
}

/* Size classes unless a memory checker is to see every block: the
   sanitizer build, or SYNOSH_MALLOC=system for valgrind. */
static int use_size_classes(void) {
#ifdef SYNOSH_SYSTEM_MALLOC
  return 0;
#else
  const char *choice = getenv("SYNOSH_MALLOC");
  return choice == NULL || strcmp(choice, "system") != 0;
#endif
}

/* os.exit([code]): logs open sessions out first, so a script that exits early
   leaves no session behind on the NAS. */
static int host_exit(lua_State *L) {
  int status;
  if (lua_isboolean(L, 1))
    status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
  else
    status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
  if (lcore_interrupt)
    status = report_interrupt();
  finish_run(L, status);
  shutdown_sessions(L);
  fflush(stdout);
  fflush(stderr);
  exit(status);
}

static void add_search_dir(luaL_Buffer *buffer, const char *dir, size_t length) {
  if (length == 0)
    return;
  luaL_addlstring(buffer, dir, length);
  luaL_addstring(buffer, "/?.lua;");
  luaL_addlstring(buffer, dir, length);
  luaL_addstring(buffer, "/?/init.lua;");
}

/* package.path: the directories of SYNOSH_PATH (separated by ":"), then
   $XDG_CONFIG_HOME/synosh/lua for shared snippets, then what LUA_PATH or
   Lua's default gives. */
static void set_search_path(lua_State *L) {
  char config_dir[4096] = "";
  const char *config = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  if (config != NULL && config[0] == '/')
    snprintf(config_dir, sizeof config_dir, "%s/synosh/lua", config);
  else if (home != NULL && home[0] != '\0')
    snprintf(config_dir, sizeof config_dir, "%s/.config/synosh/lua", home);

  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *default_path = lua_tostring(L, -1);
  luaL_Buffer buffer;
  luaL_buffinit(L, &buffer);
  for (const char *list = getenv("SYNOSH_PATH"); list != NULL && *list != '\0';) {
    size_t length = strcspn(list, ":");
    add_search_dir(&buffer, list, length);
    list += length;
    if (*list == ':')
      list++;
  }
  add_search_dir(&buffer, config_dir, strlen(config_dir));
  luaL_addstring(&buffer, default_path != NULL ? default_path : "");
  luaL_pushresult(&buffer);
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static void open_libraries(lua_State *L) {
  luaL_openlibs(L);
  set_search_path(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_setfield(L, -2, "cjson.safe");
  lua_pushcfunction(L, luaopen_syno_core);
  lua_setfield(L, -2, "syno.core");
  lua_pop(L, 1);
  embedded_install_searcher(L);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, host_exit);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
}

/* Runs syno._shutdown() when syno was loaded: logs every open session out. */
static void shutdown_sessions(lua_State *L) {
  lua_sethook(L, NULL, 0, 0);
  lcore_clear_interrupt();
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "syno");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "_shutdown");
    if (lua_isfunction(L, -1)) {
      if (docall(L, 0, 0) != LUA_OK) {
        msg_print(MSG_WARNING, "logout failed: %s", luaL_tolstring(L, -1, NULL));
        lua_pop(L, 2);
      }
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

static int run_script(lua_State *L, struct run *run) {
  const char *script = run->options->script;
  int from_stdin = script == NULL || strcmp(script, "-") == 0;
  int load_status = luaL_loadfile(L, from_stdin ? NULL : script);
  if (load_status == LUA_ERRFILE) {
    lua_pop(L, 1);
    if (!from_stdin && access(script, F_OK) != 0)
      lua_pushfstring(L, "cannot open script %s: no such file", script);
    else
      lua_pushfstring(L, "cannot read script %s: %s", from_stdin ? "from standard input" : script,
                      strerror(errno));
  }
  int nargs = load_status == LUA_OK
                  ? push_script_args(L, run->argc, run->argv, run->options->script_index)
                  : 0;
  return run_chunk(L, load_status, nargs);
}

/* Takes the --lock file through syno.lock, which raises kind "locked" (exit
   status 5) when another run holds it. */
static int take_lock(lua_State *L, const char *path) {
  int load_status = luaL_loadstring(L, "require('syno').lock((...))");
  lua_pushstring(L, path);
  return run_chunk(L, load_status, 1);
}

/* Installs lua/syno/sandbox.lua's limits before any script code runs. */
static int enter_sandbox(lua_State *L, const char *write_dir) {
  int load_status = luaL_loadstring(L, "require('syno.sandbox').apply(...)");
  if (write_dir != NULL)
    lua_pushstring(L, write_dir);
  else
    lua_pushnil(L);
  return run_chunk(L, load_status, 1);
}

/* Runs syno.notify.finish(status, error) once, for --notify-command: it sends
   the run's report, or the error, to the command. */
static void finish_run(lua_State *L, int status) {
  static int finished;
  if (finished || host_options == NULL || host_options->notify_command == NULL)
    return;
  finished = 1;
  lua_sethook(L, NULL, 0, 0);
  lcore_clear_interrupt();
  int load_status = luaL_loadstring(L, "require('syno.notify').finish(...)");
  if (load_status != LUA_OK) {
    lua_pop(L, 1);
    return;
  }
  lua_pushinteger(L, status);
  if (status != EXIT_OK && last_error[0] != '\0')
    lua_pushstring(L, last_error);
  else
    lua_pushnil(L);
  if (docall(L, 2, 0) != LUA_OK) {
    msg_print(MSG_WARNING, "--notify-command failed: %s", luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
  }
}

static int protected_main(lua_State *L) {
  struct run *run = lua_touserdata(L, 1);
  struct cli_options *options = run->options;
  lua_settop(L, 0);
  open_libraries(L);
  publish_options(L, options);
  create_arg_table(L, run->argc, run->argv, options->script_index);

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);
  /* A closed pipe (synosh ... | head) must not kill synosh before it logs out:
     writes fail with EPIPE instead. */
  signal(SIGPIPE, SIG_IGN);

  host_options = options;
  int status = EXIT_OK;
  if (options->lock != NULL)
    status = take_lock(L, options->lock);
  if (status == EXIT_OK && options->sandbox)
    status = enter_sandbox(L, options->sandbox_dir);
  for (int i = 0; i < options->action_count && status == EXIT_OK; i++) {
    const struct cli_action *action = &options->actions[i];
    if (action->kind == 'e')
      status = run_chunk(L, luaL_loadbuffer(L, action->value, strlen(action->value), "=(command line)"), 0);
    else
      status = run_require(L, action->value);
  }

  int stdin_is_script = options->script == NULL && options->action_count == 0 &&
                        !options->interactive && !isatty(STDIN_FILENO);
  if (status == EXIT_OK && (options->script != NULL || stdin_is_script))
    status = run_script(L, run);

  if (status == EXIT_OK && (options->interactive ||
                            (options->script == NULL && options->action_count == 0 &&
                             !stdin_is_script))) {
    status = repl_run(L);
  }

  /* A script that held interrupts ran to its end after a signal: the run
     still ends with the signal's status. */
  if (status == EXIT_OK && lcore_interrupt)
    status = report_interrupt();
  finish_run(L, status);
  shutdown_sessions(L);
  run->status = status;
  return 0;
}

static void print_version(void) {
  const char *library = http_library_version();
  printf("synosh %s (%s, %s)\n", SYNOSH_VERSION, LUA_RELEASE,
         library ? library : "libcurl not found");
}

int main(int argc, char **argv) {
  struct cli_options options;
  char error[512];
  if (cli_parse(argc, argv, &options, error, sizeof error) != 0) {
    msg_print(MSG_ERROR, "%s (see synosh --help)", error);
    return EXIT_USAGE;
  }
  if (options.show_help) {
    fputs(cli_usage, stdout);
    return EXIT_OK;
  }
  if (options.show_version) {
    print_version();
    return EXIT_OK;
  }
  msg_configure(options.quiet, options.verbose);

  struct alloc_pool *pool = alloc_pool_new(use_size_classes());
  lua_State *L = pool != NULL ? lua_newstate(alloc_lua, pool) : NULL;
  if (L == NULL) {
    alloc_pool_free(pool);
    msg_print(MSG_ERROR, "cannot create the Lua state: not enough memory");
    return EXIT_SCRIPT;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_function, NULL);
  tune_memory(L);
  struct run run = {argc, argv, &options, EXIT_OK};
  lua_pushcfunction(L, protected_main);
  lua_pushlightuserdata(L, &run);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    msg_print(MSG_ERROR, "%s", lua_tostring(L, -1));
    run.status = EXIT_SCRIPT;
  }
  lua_close(L);
  alloc_pool_free(pool);
  fflush(stdout);
  return run.status;
}
