/*
 * syno.core: HTTP client handles, percent-encoding, terminal helpers, private
 * files, a sleep and a monotonic clock, and the message helpers. Functions
 * here return values or raise, and none prints except core.message, which is
 * the one way Lua code reaches the host's output.
 *
 * Error convention: a misused argument raises (luaL_argerror). A failure of the
 * environment (network, terminal, file) returns nil, kind, message.
 */
/* realpath() with a NULL buffer is X/Open (POSIX.1-2008 with XSI). */
#define _XOPEN_SOURCE 700

#include "lcore.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "msg.h"

#define CLIENT_TYPE "syno.HttpClient"
#define LOCK_TYPE "syno.Lock"
#define MAX_HEADERS 16

volatile sig_atomic_t lcore_interrupt;
volatile sig_atomic_t lcore_abort;
static volatile sig_atomic_t interrupts_held;

int lcore_note_signal(int signo) {
  lcore_interrupt = signo;
  if (interrupts_held)
    return 0;
  lcore_abort = 1;
  return 1;
}

void lcore_clear_interrupt(void) {
  lcore_interrupt = 0;
  lcore_abort = 0;
}

typedef struct {
  struct http_client *client;  /* NULL once closed */
} client_handle;

static client_handle *check_client(lua_State *L) {
  client_handle *handle = luaL_checkudata(L, 1, CLIENT_TYPE);
  if (handle->client == NULL)
    luaL_error(L, "attempt to use a closed HTTP client");
  return handle;
}

static const char *opt_string(lua_State *L, int table, const char *field) {
  lua_getfield(L, table, field);
  const char *value = luaL_optstring(L, -1, NULL);
  lua_pop(L, 1);  /* the table keeps the string alive */
  return value;
}

/* The maximum timeout a client accepts, in seconds: a day, as for --timeout. */
#define MAX_TIMEOUT_SECONDS 86400

/* Reads a timeout field in seconds and returns it in milliseconds. The range
   check also rejects NaN and infinity, whose conversion to long is undefined. */
static long opt_timeout_ms(lua_State *L, int table, const char *field) {
  lua_getfield(L, table, field);
  lua_Number seconds = luaL_optnumber(L, -1, 0);
  lua_pop(L, 1);
  if (!(seconds >= 0 && seconds <= MAX_TIMEOUT_SECONDS))
    return luaL_argerror(L, 1, lua_pushfstring(L, "%s must be from 0 to %d seconds", field,
                                               MAX_TIMEOUT_SECONDS));
  return (long)(seconds * 1000);
}

/* core.http_client{cacert=, insecure=, pinned_pubkey=, timeout= (s), connect_timeout= (s),
   user_agent=} */
static int client_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  struct http_options options = {0};
  options.cacert = opt_string(L, 1, "cacert");
  options.pinned_pubkey = opt_string(L, 1, "pinned_pubkey");
  options.user_agent = opt_string(L, 1, "user_agent");
  lua_getfield(L, 1, "insecure");
  options.insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  options.timeout_ms = opt_timeout_ms(L, 1, "timeout");
  options.connect_timeout_ms = opt_timeout_ms(L, 1, "connect_timeout");
  options.abort_flag = &lcore_abort;

  /* Created closed first, so a failure below leaves nothing half-built. */
  client_handle *handle = lua_newuserdatauv(L, sizeof *handle, 0);
  handle->client = NULL;
  luaL_setmetatable(L, CLIENT_TYPE);
  const char *error = NULL;
  handle->client = http_client_new(&options, &error);
  if (handle->client == NULL) {
    lua_pushfstring(L, "cannot create an HTTP client: %s", error);
    return lua_error(L);
  }
  return 1;
}

static const char *const failure_kinds[] = {
    [HTTP_OK] = "ok",         [HTTP_NETWORK] = "network",
    [HTTP_TLS] = "tls",       [HTTP_TIMEOUT] = "timeout",
    [HTTP_INTERRUPTED] = "interrupted", [HTTP_USAGE] = "usage",
    [HTTP_OTHER] = "network"};

/*
 * client:request(method, url [, body [, headers [, fresh_connect]]])
 *   --> status, body, content_type
 *   --> nil, kind, message, curl_code   when no HTTP response arrived
 */
static int client_request(lua_State *L) {
  client_handle *handle = check_client(L);
  static const char *const methods[] = {"GET", "POST", NULL};
  int method = luaL_checkoption(L, 2, NULL, methods);
  const char *url = luaL_checkstring(L, 3);
  size_t body_length = 0;
  const char *body = luaL_optlstring(L, 4, NULL, &body_length);

  struct http_header headers[MAX_HEADERS + 1] = {{0}};
  if (!lua_isnoneornil(L, 5)) {
    luaL_checktype(L, 5, LUA_TTABLE);
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, 5) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 5, "header names and values must be strings");
      if (count == MAX_HEADERS)
        return luaL_argerror(L, 5, "too many headers");
      /* Both strings stay alive in the table argument during the call. */
      headers[count].name = lua_tostring(L, -2);
      headers[count].value = lua_tostring(L, -1);
      count++;
      lua_pop(L, 1);
    }
  }

  struct http_response response;
  enum http_failure failure =
      http_request(handle->client, methods[method], url, body, body_length, headers, &response,
                   lua_toboolean(L, 6));
  if (failure != HTTP_OK) {
    lua_pushnil(L);
    lua_pushstring(L, failure_kinds[failure]);
    lua_pushstring(L, response.error ? response.error : "request failed");
    lua_pushinteger(L, response.curl_code);
    return 4;
  }
  lua_pushinteger(L, response.status);
  lua_pushlstring(L, response.body, response.body_length);
  lua_pushstring(L, response.content_type);
  http_client_release_body(handle->client);
  return 3;
}

/* Shared by close, __gc and __close. Closing twice is harmless. */
static int client_close(lua_State *L) {
  client_handle *handle = luaL_checkudata(L, 1, CLIENT_TYPE);
  http_client_free(handle->client);
  handle->client = NULL;
  return 0;
}

static int client_tostring(lua_State *L) {
  client_handle *handle = luaL_checkudata(L, 1, CLIENT_TYPE);
  if (handle->client == NULL)
    lua_pushliteral(L, "HTTP client (closed)");
  else
    lua_pushfstring(L, "HTTP client (%p)", (void *)handle->client);
  return 1;
}

/* core.escape(text) --> text with every byte outside A-Za-z0-9-._~ as %XX */
static int core_escape(lua_State *L) {
  size_t length;
  const char *text = luaL_checklstring(L, 1, &length);
  size_t out_length;
  char *escaped = http_escape(text, length, &out_length);
  if (escaped == NULL)
    return luaL_error(L, "not enough memory");
  lua_pushlstring(L, escaped, out_length);
  free(escaped);
  return 1;
}

/* A form name or value as text: a view of a Lua string, or digits written here. */
struct form_text {
  const char *data;
  size_t length;
  char digits[24];  /* the longest 64-bit integer, with sign */
};

/* Writes an integer in decimal into text->digits, as tostring does, without
   making a Lua string of it. */
static void write_integer(struct form_text *text, lua_Integer integer) {
  char *end = text->digits + sizeof text->digits;
  char *start = end;
  /* Negated in unsigned arithmetic, so the minimum integer needs no special case. */
  lua_Unsigned magnitude = integer < 0 ? 0u - (lua_Unsigned)integer : (lua_Unsigned)integer;
  do {
    *--start = (char)('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude > 0);
  if (integer < 0)
    *--start = '-';
  text->data = start;
  text->length = (size_t)(end - start);
}

/*
 * Pushes names[index] and values[names[index]] and reads them as text into
 * *name and *value, as tostring would write them (booleans as true or
 * false). Returns 0 when the value is nil. The caller pops the two values.
 */
static int push_form_field(lua_State *L, int names, int values, lua_Integer index,
                           struct form_text *name, struct form_text *value) {
  if (lua_rawgeti(L, names, index) != LUA_TSTRING)
    return luaL_error(L, "form_encode: name %I must be a string, got %s", index,
                      luaL_typename(L, -1));
  name->data = lua_tolstring(L, -1, &name->length);
  lua_pushvalue(L, -1);
  switch (lua_rawget(L, values)) {
  case LUA_TNIL:
    return 0;
  case LUA_TSTRING:
    value->data = lua_tolstring(L, -1, &value->length);
    return 1;
  case LUA_TBOOLEAN:
    value->data = lua_toboolean(L, -1) ? "true" : "false";
    value->length = strlen(value->data);
    return 1;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1))
      write_integer(value, lua_tointeger(L, -1));
    else  /* converts the copy on the stack, not the table's value */
      value->data = lua_tolstring(L, -1, &value->length);
    return 1;
  default:
    return luaL_error(L, "form_encode: value of %s must be a string, number or boolean, got %s",
                      name->data, luaL_typename(L, -1));
  }
}

/*
 * core.form_encode(names, values) --> "name=value&..."
 * Encodes values[name] for each name of the list names, in that order,
 * skipping nil values, as application/x-www-form-urlencoded text. Names and
 * values are percent-encoded as core.escape does it.
 */
static int core_form_encode(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer count = (lua_Integer)lua_rawlen(L, 1);
  struct form_text name, value;

  /* The first pass measures, so the second writes into a buffer of the exact size. */
  size_t total = 0;
  for (lua_Integer i = 1; i <= count; i++) {
    if (push_form_field(L, 1, 2, i, &name, &value))
      total += (total > 0) + http_escaped_length(name.data, name.length) + 1 +
               http_escaped_length(value.data, value.length);
    lua_pop(L, 2);
  }

  /* A short form goes in a local array; a long one in a userdata that Lua frees. */
  char short_form[1024];
  char *out = total <= sizeof short_form ? short_form : lua_newuserdatauv(L, total, 0);
  char *end = out;
  for (lua_Integer i = 1; i <= count; i++) {
    if (push_form_field(L, 1, 2, i, &name, &value)) {
      if (end != out)
        *end++ = '&';
      end = http_escape_to(end, name.data, name.length);
      *end++ = '=';
      end = http_escape_to(end, value.data, value.length);
    }
    lua_pop(L, 2);
  }
  lua_pushlstring(L, out, (size_t)(end - out));
  return 1;
}

/* core.getpass(prompt) --> line read from the terminal without echo | nil, message */
static int core_getpass(lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    luaL_pushfail(L);
    lua_pushstring(L, "no terminal to read a password from");
    return 2;
  }
  struct termios saved, silent;
  int have_termios = tcgetattr(fd, &saved) == 0;
  if (have_termios) {
    silent = saved;
    silent.c_lflag &= ~(tcflag_t)ECHO;
    silent.c_lflag |= ICANON;
    tcsetattr(fd, TCSAFLUSH, &silent);
  }
  if (write(fd, prompt, strlen(prompt)) < 0) { /* the read below still works */ }

  char line[1024];
  size_t length = 0;
  int complete = 0;
  while (length < sizeof line - 1) {
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR && !lcore_interrupt)
      continue;
    if (n <= 0)
      break;
    if (c == '\n' || c == '\r') {
      complete = 1;
      break;
    }
    line[length++] = c;
  }
  if (have_termios)
    tcsetattr(fd, TCSAFLUSH, &saved);
  if (write(fd, "\n", 1) < 0) { /* nothing to do */ }
  close(fd);

  if (!complete) {
    memset(line, 0, sizeof line);
    luaL_pushfail(L);
    lua_pushstring(L, lcore_interrupt ? "interrupted" : "no password entered");
    return 2;
  }
  lua_pushlstring(L, line, length);
  memset(line, 0, sizeof line);
  return 1;
}

/* core.isatty("stdin" | "stdout" | "stderr") --> boolean */
static int core_isatty(lua_State *L) {
  static const char *const names[] = {"stdin", "stdout", "stderr", NULL};
  int fd = luaL_checkoption(L, 1, NULL, names);
  lua_pushboolean(L, isatty(fd));
  return 1;
}

/* core.file_mode(path) --> permission bits as an integer | nil, message */
static int core_file_mode(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat info;
  if (stat(path, &info) != 0)
    return luaL_fileresult(L, 0, path);
  lua_pushinteger(L, info.st_mode & 07777);
  return 1;
}

/* core.make_directories(path) --> true | nil, message
   Creates path and each missing parent with mode 0700, as mkdir -p does. */
static int core_make_directories(lua_State *L) {
  size_t length;
  const char *path = luaL_checklstring(L, 1, &length);
  char *copy = lua_newuserdatauv(L, length + 1, 0);  /* freed by the collector, even on error */
  memcpy(copy, path, length + 1);
  for (char *slash = strchr(copy + 1, '/');; slash = strchr(slash + 1, '/')) {
    if (slash != NULL)
      *slash = '\0';
    if (copy[0] != '\0' && mkdir(copy, 0700) != 0 && errno != EEXIST) {
      luaL_pushfail(L);
      lua_pushfstring(L, "cannot create %s: %s", copy, strerror(errno));
      return 2;
    }
    if (slash == NULL)
      break;
    *slash = '/';
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.write_private_file(path, text) --> true | nil, message
   Replaces path with text in a file of mode 0600. The text goes to a temporary
   file first, which is then renamed, so a reader never sees half a file. */
static int core_write_private_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t length;
  const char *text = luaL_checklstring(L, 2, &length);
  const char *temporary = lua_pushfstring(L, "%s.tmp", path);
  int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return luaL_fileresult(L, 0, temporary);

  /* fchmod covers a temporary file left by an earlier run with another mode. */
  int ok = fchmod(fd, 0600) == 0;
  size_t written = 0;
  while (ok && written < length) {
    ssize_t n = write(fd, text + written, length - written);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    if (ok)
      written += (size_t)n;
  }
  int saved_errno = errno;

  if (close(fd) != 0 && ok) {
    ok = 0;
    saved_errno = errno;
  }
  if (ok && rename(temporary, path) != 0) {
    ok = 0;
    saved_errno = errno;
  }
  if (!ok) {
    unlink(temporary);
    errno = saved_errno;
    return luaL_fileresult(L, 0, path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.interrupted() --> true once SIGINT or SIGTERM arrived */
static int core_interrupted(lua_State *L) {
  lua_pushboolean(L, lcore_interrupt != 0);
  return 1;
}

/* core.message(level, text): prints through the host's message helpers. */
static int core_message(lua_State *L) {
  static const char *const levels[] = {"debug", "info", "warning", "error", NULL};
  int level = luaL_checkoption(L, 1, NULL, levels);
  const char *text = luaL_checkstring(L, 2);
  msg_print((enum msg_level)level, "%s", text);
  return 0;
}

/* core.message_enabled(level) --> whether core.message prints at that level */
static int core_message_enabled(lua_State *L) {
  static const char *const levels[] = {"debug", "info", "warning", "error", NULL};
  lua_pushboolean(L, msg_enabled((enum msg_level)luaL_checkoption(L, 1, NULL, levels)));
  return 1;
}

/*
 * core.hold_interrupts(on) --> whether interrupts were held before
 * While held, SIGINT/SIGTERM/SIGHUP only set core.interrupted(): the current
 * call finishes and the Lua code stops by itself (a cleanup stops after the
 * current delete and reports). Releasing does not re-arm the immediate stop;
 * later requests fail at once as interrupted. A second signal still ends the
 * process.
 */
static int core_hold_interrupts(lua_State *L) {
  int previous = interrupts_held;
  interrupts_held = lua_toboolean(L, 1);
  if (!interrupts_held && lcore_interrupt)
    lcore_abort = 1;
  lua_pushboolean(L, previous);
  return 1;
}

/* core.realpath(path) --> the absolute path without symlinks | nil, message */
static int core_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *resolved = realpath(path, NULL);
  if (resolved == NULL)
    return luaL_fileresult(L, 0, path);
  lua_pushstring(L, resolved);
  free(resolved);
  return 1;
}

/* core.monotonic() --> seconds of a clock that only moves forward, for measuring waits */
static int core_monotonic(lua_State *L) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
  return 1;
}

/* core.sleep(seconds): returns early, with false, when a signal arrives. */
static int core_sleep(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  luaL_argcheck(L, seconds >= 0 && seconds <= 86400, 1, "seconds must be between 0 and 86400");
  struct timespec wait = {(time_t)seconds, (long)((seconds - (lua_Number)(time_t)seconds) * 1e9)};
  while (!lcore_interrupt && nanosleep(&wait, &wait) != 0 && errno == EINTR) {
  }
  lua_pushboolean(L, !lcore_interrupt);
  return 1;
}

typedef struct {
  int fd;  /* -1 once released */
} lock_handle;

/*
 * core.lock(path) --> lock | nil, "busy", holder | nil, "error", message
 * Takes an exclusive flock on path (created 0644 if missing) without waiting
 * and writes this process id into it. holder is the pid text the current
 * holder wrote. The lock lasts until lock:release(), garbage collection or
 * process exit; a child process does not inherit it.
 */
static int core_lock(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "error");
    lua_pushfstring(L, "cannot open lock file %s: %s", path, strerror(errno));
    return 3;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    char holder[32] = "";
    ssize_t length = pread(fd, holder, sizeof holder - 1, 0);
    close(fd);
    lua_pushnil(L);
    if (error == EWOULDBLOCK) {
      lua_pushliteral(L, "busy");
      holder[length > 0 ? strcspn(holder, "\n") : 0] = '\0';
      lua_pushstring(L, holder);
    } else {
      lua_pushliteral(L, "error");
      lua_pushfstring(L, "cannot lock %s: %s", path, strerror(error));
    }
    return 3;
  }
  char pid[32];
  int length = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)length, 0) != length) {
    /* The pid is only for messages; the lock holds without it. */
  }
  lock_handle *handle = lua_newuserdatauv(L, sizeof *handle, 0);
  handle->fd = fd;
  luaL_setmetatable(L, LOCK_TYPE);
  return 1;
}

static int lock_release(lua_State *L) {
  lock_handle *handle = luaL_checkudata(L, 1, LOCK_TYPE);
  if (handle->fd >= 0) {
    close(handle->fd);  /* closing the last descriptor drops the flock */
    handle->fd = -1;
  }
  return 0;
}

static const luaL_Reg core_functions[] = {
    {"http_client", client_new},   {"escape", core_escape},
    {"form_encode", core_form_encode},
    {"getpass", core_getpass},     {"isatty", core_isatty},
    {"file_mode", core_file_mode}, {"interrupted", core_interrupted},
    {"message", core_message},     {"message_enabled", core_message_enabled},
    {"monotonic", core_monotonic}, {"sleep", core_sleep},
    {"lock", core_lock},           {"hold_interrupts", core_hold_interrupts},
    {"realpath", core_realpath},
    {"make_directories", core_make_directories},
    {"write_private_file", core_write_private_file},
    {NULL, NULL}};

static const luaL_Reg client_methods[] = {
    {"request", client_request}, {"close", client_close}, {NULL, NULL}};

static const luaL_Reg client_metamethods[] = {
    {"__index", NULL}, {"__gc", client_close}, {"__close", client_close},
    {"__tostring", client_tostring}, {NULL, NULL}};

static const luaL_Reg lock_metamethods[] = {
    {"__gc", lock_release}, {"__close", lock_release}, {NULL, NULL}};

static void create_client_meta(lua_State *L) {
  luaL_newmetatable(L, CLIENT_TYPE);
  luaL_setfuncs(L, client_metamethods, 0);
  luaL_newlibtable(L, client_methods);
  luaL_setfuncs(L, client_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, LOCK_TYPE);
  luaL_setfuncs(L, lock_metamethods, 0);
  lua_newtable(L);
  lua_pushcfunction(L, lock_release);
  lua_setfield(L, -2, "release");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

int luaopen_syno_core(lua_State *L) {
  luaL_newlib(L, core_functions);
  create_client_meta(L);
  lua_pushliteral(L, SYNOSH_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
