/*
 * The interactive shell, modelled on the REPL of Lua 5.4's lua.c: a line is
 * first tried as "return <line>" so expressions print, input is read on while
 * the chunk is incomplete, and each statement runs under a message handler.
 * Lines come from GNU readline's callback interface on a terminal, or from
 * stdio otherwise. Printing, completion candidates, the prompt and help are
 * Lua code in lua/syno/repl.lua.
 *
 * Signals: while a line is read, SIGINT only sets a flag, which clears the
 * line. While a statement runs, SIGINT sets lcore_interrupt, which stops an
 * HTTP transfer, and a hook that raises at the next Lua instruction. The shell
 * then clears both and returns to the prompt. SIGTERM and SIGHUP end the shell.
 */
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lcore.h"
#include "msg.h"

#define HISTORY_MAX_ENTRIES 1000
#define PROMPT_DEFAULT "synosh> "
#define PROMPT_CONTINUATION "...> "
#define REPL_MODULE_KEY "synosh.repl"
/* luaL_loadbuffer's message for a chunk that ends too early, as in lua.c. */
#define EOF_MARK "<eof>"

enum read_result { READ_LINE, READ_EOF, READ_INTERRUPTED };

/* Signals that end the shell; the host logs out afterwards. */
static const int stop_signals[] = {SIGTERM, SIGHUP};
#define STOP_SIGNAL_COUNT (sizeof stop_signals / sizeof stop_signals[0])

/*
 * readline's callbacks and signal handlers take no user data, so the state
 * they need lives here. There is one shell per process.
 */
static lua_State *repl_state;
static int use_readline;
static volatile sig_atomic_t input_interrupted;
static char *received_line;
static int line_received;
static char *history_file;
static char **completion_candidates;
static size_t completion_count;

/* ---- signals ---- */

static void set_handler(int signo, void (*handler)(int)) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  /* No SA_RESTART, so a blocking read or select returns EINTR. */
  action.sa_flags = 0;
  sigaction(signo, &action, NULL);
}

static void on_input_signal(int signo) {
  (void)signo;
  input_interrupted = 1;
}

static void interrupt_hook(lua_State *L, lua_Debug *debug) {
  (void)debug;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

static void on_call_signal(int signo) {
  /* A second signal during the same call ends the process the default way. */
  signal(signo, SIG_DFL);
  if (lcore_note_signal(signo))
    lua_sethook(repl_state, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* ---- the Lua side ---- */

/* Pushes field name of the module lua/syno/repl.lua. */
static void push_repl_function(lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, REPL_MODULE_KEY);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* repl.terminal_columns() --> readline's terminal width, or nil */
static int terminal_columns(lua_State *L) {
  int rows = 0, columns = 0;
  if (use_readline)
    rl_get_screen_size(&rows, &columns);
  if (columns <= 0)
    return 0;
  lua_pushinteger(L, columns);
  return 1;
}

/* Loads syno.repl, keeps it in the registry and gives it terminal_columns. */
static int load_repl_module(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "syno.repl");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    msg_print(MSG_ERROR, "cannot load the shell: %s", luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
    return -1;
  }
  lua_pushcfunction(L, terminal_columns);
  lua_setfield(L, -2, "terminal_columns");
  lua_setfield(L, LUA_REGISTRYINDEX, REPL_MODULE_KEY);
  return 0;
}

/* Copies repl.prompt() into buffer, or the default prompt when it fails. */
static void current_prompt(lua_State *L, char *buffer, size_t size) {
  push_repl_function(L, "prompt");
  const char *prompt = NULL;
  if (lua_pcall(L, 0, 1, 0) == LUA_OK)
    prompt = lua_tostring(L, -1);
  snprintf(buffer, size, "%s", prompt ? prompt : PROMPT_DEFAULT);
  lua_pop(L, 1);
}

/* ---- history ---- */

/* Creates each missing directory of path with mode 0700. */
static int make_directories(char *path) {
  for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
    if (slash != NULL)
      *slash = '\0';
    int failed = mkdir(path, 0700) != 0 && errno != EEXIST;
    if (slash != NULL)
      *slash = '/';
    if (failed)
      return -1;
    if (slash == NULL)
      return 0;
  }
}

/*
 * Opens $XDG_STATE_HOME/synosh/history (default ~/.local/state/synosh/history),
 * creating it with mode 0600, and reads its last HISTORY_MAX_ENTRIES entries.
 * Each entry is written after a "#<time>" line, so an entry of several lines
 * reads back as one.
 */
static void open_history(void) {
  const char *state_home = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  char directory[4096];
  int length;
  if (state_home != NULL && state_home[0] == '/')
    length = snprintf(directory, sizeof directory, "%s/synosh", state_home);
  else if (home != NULL && home[0] == '/')
    length = snprintf(directory, sizeof directory, "%s/.local/state/synosh", home);
  else
    return;
  if (length < 0 || (size_t)length + sizeof "/history" > sizeof directory)
    return;
  if (make_directories(directory) != 0) {
    msg_print(MSG_WARNING, "cannot create %s: %s; history is not saved", directory, strerror(errno));
    return;
  }
  strcat(directory, "/history");
  int fd = open(directory, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    msg_print(MSG_WARNING, "cannot open %s: %s; history is not saved", directory, strerror(errno));
    return;
  }
  close(fd);
  history_file = strdup(directory);

  history_comment_char = '#';
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  stifle_history(HISTORY_MAX_ENTRIES);
  read_history(history_file);
}

/* Adds a complete statement to the history unless it is blank or repl.history_allowed rejects it. */
static void save_history_entry(lua_State *L, const char *entry) {
  if (!use_readline || entry[strspn(entry, " \t\r\n")] == '\0')
    return;
  push_repl_function(L, "history_allowed");
  lua_pushstring(L, entry);
  int allowed = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!allowed)
    return;
  add_history(entry);
  if (history_file != NULL)
    append_history(1, history_file);
}

/* Rewrites the history file with the last HISTORY_MAX_ENTRIES entries. */
static void close_history(void) {
  if (history_file == NULL)
    return;
  write_history(history_file);
  free(history_file);
  history_file = NULL;
}

/* ---- completion ---- */

static char *next_candidate(const char *text, int state) {
  (void)text;
  /* Ownership of each string passes to readline. */
  if ((size_t)state < completion_count) {
    char *candidate = completion_candidates[state];
    completion_candidates[state] = NULL;
    return candidate;
  }
  return NULL;
}

/* readline's completion function: the candidates come from repl.complete(text). */
static char **complete_word(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* no file name completion */
  /* readline resets this before each completion. A space after "image.registry" would be in the way. */
  rl_completion_append_character = '\0';
  lua_State *L = repl_state;

  int top = lua_gettop(L);
  push_repl_function(L, "complete");
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TTABLE) {
    lua_settop(L, top);
    return NULL;
  }

  size_t count = lua_rawlen(L, -1);
  completion_candidates = calloc(count + 1, sizeof *completion_candidates);
  completion_count = 0;
  for (size_t i = 1; completion_candidates != NULL && i <= count; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i);
    const char *candidate = lua_tostring(L, -1);
    if (candidate != NULL && (completion_candidates[completion_count] = strdup(candidate)) != NULL)
      completion_count++;
    lua_pop(L, 1);
  }
  lua_settop(L, top);

  char **matches = completion_count > 0 ? rl_completion_matches(text, next_candidate) : NULL;
  for (size_t i = 0; i < completion_count; i++)
    free(completion_candidates[i]);
  free(completion_candidates);
  completion_candidates = NULL;
  completion_count = 0;
  return matches;
}

/* Lists the matches by their last name only: "add list", not "image.registry.add ...". */
static void display_matches(char **matches, int count, int max_length) {
  (void)max_length;
  char **names = calloc((size_t)count + 2, sizeof *names);
  if (names == NULL)
    return;
  int longest = 0;
  names[0] = matches[0];
  for (int i = 1; i <= count; i++) {
    char *name = matches[i];
    for (char *p = matches[i]; *p != '\0'; p++)
      if (*p == '.' || *p == ':')
        name = p + 1;
    names[i] = name;
    int length = (int)strlen(name);
    if (length > longest)
      longest = length;
  }
  rl_display_match_list(names, count, longest);
  rl_forced_update_display();
  free(names);
}

/* ---- reading lines ---- */

static void on_readline_line(char *line) {
  received_line = line;
  line_received = 1;
  rl_callback_handler_remove();
}

/* Reads one line on the terminal through readline. The caller frees *line. */
static enum read_result read_terminal_line(const char *prompt, char **line) {
  sigset_t blocked, saved;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++)
    sigaddset(&blocked, stop_signals[i]);
  /* Signals stay blocked but inside pselect, so none slips in between the
     check of the flags and the wait. */
  sigprocmask(SIG_BLOCK, &blocked, &saved);
  input_interrupted = 0;
  line_received = 0;
  received_line = NULL;
  rl_callback_handler_install(prompt, on_readline_line);

  enum read_result result = READ_LINE;
  while (!line_received) {
    if (input_interrupted || lcore_interrupt) {
      rl_replace_line("", 0);
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_callback_handler_remove();
      fputc('\n', rl_outstream);
      fflush(rl_outstream);
      result = lcore_interrupt ? READ_EOF : READ_INTERRUPTED;
      break;
    }
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(STDIN_FILENO, &readable);
    int ready = pselect(STDIN_FILENO + 1, &readable, NULL, NULL, NULL, &saved);
    if (ready < 0 && errno != EINTR) {
      rl_callback_handler_remove();
      result = READ_EOF;
      break;
    }
    if (ready > 0)
      rl_callback_read_char();
  }
  sigprocmask(SIG_SETMASK, &saved, NULL);
  if (result != READ_LINE)
    return result;
  if (received_line == NULL) {
    fputc('\n', rl_outstream); /* Ctrl-D leaves the cursor after the prompt */
    return READ_EOF;
  }
  *line = received_line;
  return READ_LINE;
}

/* Reads one line from standard input when it is not a terminal, without a prompt. */
static enum read_result read_plain_line(char **line) {
  size_t capacity = 0;
  char *text = NULL;
  input_interrupted = 0;
  ssize_t length = getline(&text, &capacity, stdin);
  if (length < 0) {
    free(text);
    int interrupted = input_interrupted && ferror(stdin);
    clearerr(stdin);
    return interrupted && !lcore_interrupt ? READ_INTERRUPTED : READ_EOF;
  }
  if (length > 0 && text[length - 1] == '\n')
    text[length - 1] = '\0';
  *line = text;
  return READ_LINE;
}

static enum read_result read_line(const char *prompt, char **line) {
  return use_readline ? read_terminal_line(prompt, line) : read_plain_line(line);
}

/* ---- statements ---- */

/* True when the load failed only because the chunk ended too early. */
static int is_incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX)
    return 0;
  size_t length;
  const char *message = lua_tolstring(L, -1, &length);
  size_t mark = sizeof EOF_MARK - 1;
  return message != NULL && length >= mark && strcmp(message + length - mark, EOF_MARK) == 0;
}

/*
 * Reads one statement, over several lines while it is incomplete. On
 * READ_LINE it leaves the loaded function (or the syntax error message) on the
 * stack and stores the load status in *load_status.
 */
/* Keeps the text of the statement about to run, for repl.explain. */
#define STATEMENT_KEY "synosh.repl.statement"
static void remember_statement(lua_State *L, const char *text) {
  lua_pushstring(L, text);
  lua_setfield(L, LUA_REGISTRYINDEX, STATEMENT_KEY);
}

static enum read_result read_statement(lua_State *L, int *load_status) {
  char prompt[256];
  current_prompt(L, prompt, sizeof prompt);
  char *line;
  enum read_result result = read_line(prompt, &line);
  if (result != READ_LINE)
    return result;

  /* An expression prints its value, as in lua.c. */
  const char *with_return = lua_pushfstring(L, "return %s;", line);
  if (luaL_loadbuffer(L, with_return, strlen(with_return), "=stdin") == LUA_OK) {
    lua_remove(L, -2);
    save_history_entry(L, line);
    remember_statement(L, line);
    free(line);
    *load_status = LUA_OK;
    return READ_LINE;
  }
  lua_pop(L, 2);
  lua_pushstring(L, line);
  free(line);

  for (;;) {
    size_t length;
    const char *chunk = lua_tolstring(L, -1, &length);
    int status = luaL_loadbuffer(L, chunk, length, "=stdin");
    if (!is_incomplete(L, status)) {
      save_history_entry(L, chunk);
      remember_statement(L, chunk);
      lua_remove(L, -2);
      *load_status = status;
      return READ_LINE;
    }
    lua_pop(L, 1);
    result = read_line(PROMPT_CONTINUATION, &line);
    if (result == READ_EOF) {
      /* Ctrl-D inside a statement: reports the incomplete chunk, as lua.c does,
         and the shell goes on with a new prompt. */
      chunk = lua_tolstring(L, -1, &length);
      *load_status = luaL_loadbuffer(L, chunk, length, "=stdin");
      lua_remove(L, -2);
      return READ_LINE;
    }
    if (result == READ_INTERRUPTED) {
      lua_pop(L, 1);
      return READ_INTERRUPTED;
    }
    lua_pushliteral(L, "\n");
    lua_pushstring(L, line);
    free(line);
    lua_concat(L, 3);
  }
}

/* Turns any error value into a message string, with a traceback under --verbose. */
static int message_handler(lua_State *L) {
  const char *text = lua_tostring(L, 1);
  if (text == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      text = lua_tostring(L, -1);
    else
      text = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  if (msg_enabled(MSG_DEBUG))
    luaL_traceback(L, L, text, 1);
  else
    lua_pushstring(L, text);
  return 1;
}

/* Calls the function at base with the values above it under message_handler. */
static int protected_call(lua_State *L, int base) {
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  int status = lua_pcall(L, lua_gettop(L) - base - 1, LUA_MULTRET, base);
  lua_remove(L, base);
  return status;
}

/* Runs the loaded statement on top of the stack and shows its results. */
static void run_statement(lua_State *L) {
  int base = lua_gettop(L);
  set_handler(SIGINT, on_call_signal);
  int status = protected_call(L, base);
  if (status == LUA_OK && lua_gettop(L) >= base) {
    push_repl_function(L, "show");
    lua_insert(L, base);
    status = protected_call(L, base);
  }
  set_handler(SIGINT, on_input_signal);
  lua_sethook(L, NULL, 0, 0);

  if (lcore_interrupt == SIGINT) {
    lcore_clear_interrupt();
    msg_print(MSG_ERROR, "interrupted");
  } else if (status != LUA_OK && !lcore_interrupt) {
    /* repl.explain adds "did you mean image.list?" to a misspelled name. */
    push_repl_function(L, "explain");
    lua_pushvalue(L, -2);
    lua_pushnil(L);
    lua_getfield(L, LUA_REGISTRYINDEX, STATEMENT_KEY);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING)
      lua_pop(L, 1);
    msg_print(MSG_ERROR, "%s", lua_tostring(L, -1));
  }
  lua_settop(L, base - 1);
}

/* True once SIGTERM or SIGHUP arrived. */
static int stop_requested(void) {
  return lcore_interrupt != 0 && lcore_interrupt != SIGINT;
}

/* Sets up readline on a terminal: completion, history, no signal handlers of its own. */
static void setup_readline(void) {
  rl_readline_name = "synosh";
  rl_catch_signals = 0;
  rl_attempted_completion_function = complete_word;
  rl_completion_display_matches_hook = display_matches;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(}[]),+-*/%^~#";
  open_history();
}

/* Runs repl.install_globals(). A failure, such as an invalid profile, is reported but not fatal. */
static void install_globals(lua_State *L) {
  int base = lua_gettop(L) + 1;
  push_repl_function(L, "install_globals");
  if (protected_call(L, base) != LUA_OK)
    msg_print(MSG_ERROR, "%s", lua_tostring(L, -1));
  lua_settop(L, base - 1);
}

int repl_run(lua_State *L) {
  if (load_repl_module(L) != 0)
    return EXIT_FAILURE;
  repl_state = L;
  use_readline = isatty(STDIN_FILENO);

  struct sigaction saved_int, saved_stop[STOP_SIGNAL_COUNT];
  sigaction(SIGINT, NULL, &saved_int);
  set_handler(SIGINT, on_input_signal);
  for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++) {
    sigaction(stop_signals[i], NULL, &saved_stop[i]);
    set_handler(stop_signals[i], on_call_signal);
  }

  install_globals(L);
  if (use_readline)
    setup_readline();

  int exit_status = EXIT_SUCCESS;
  for (;;) {
    int load_status = LUA_OK;
    enum read_result result = read_statement(L, &load_status);
    if (stop_requested())
      break;
    if (result == READ_EOF)
      break;
    if (result == READ_INTERRUPTED)
      continue;
    if (load_status == LUA_OK) {
      run_statement(L);
    } else {
      msg_print(MSG_ERROR, "%s", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    if (stop_requested())
      break;
  }
  lua_sethook(L, NULL, 0, 0);
  if (stop_requested()) {
    msg_print(MSG_ERROR, "interrupted by %s", lcore_interrupt == SIGHUP ? "SIGHUP" : "SIGTERM");
    exit_status = 128 + lcore_interrupt;
  }

  if (use_readline)
    close_history();
  sigaction(SIGINT, &saved_int, NULL);
  for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++)
    sigaction(stop_signals[i], &saved_stop[i], NULL);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, REPL_MODULE_KEY);
  repl_state = NULL;
  return exit_status;
}
