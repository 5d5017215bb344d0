/*
 * syno.core: HTTP client handles, percent-encoding, terminal helpers and the
 * message helpers. Functions here return values or raise, and none prints
 * except core.message, which is the one way Lua code reaches the host's output.
 *
 * Error convention: a misused argument raises (luaL_argerror). A failure of the
 * environment (network, terminal, file) returns nil, kind, message.
 */
#include "lcore.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "http.h"
#include "msg.h"

#define CLIENT_TYPE "syno.HttpClient"
#define MAX_HEADERS 16

volatile sig_atomic_t lcore_interrupt;

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

/* core.http_client{cacert=, insecure=, timeout= (s), connect_timeout= (s), user_agent=} */
static int client_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  struct http_options options = {0};
  options.cacert = opt_string(L, 1, "cacert");
  options.user_agent = opt_string(L, 1, "user_agent");
  lua_getfield(L, 1, "insecure");
  options.insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  options.timeout_ms = opt_timeout_ms(L, 1, "timeout");
  options.connect_timeout_ms = opt_timeout_ms(L, 1, "connect_timeout");
  options.abort_flag = &lcore_interrupt;

  /* Created closed first, so a failure below leaves nothing half-built. */
  client_handle *handle = lua_newuserdatauv(L, sizeof *handle, 0);
  handle->client = NULL;
  luaL_setmetatable(L, CLIENT_TYPE);
  handle->client = http_client_new(&options);
  if (handle->client == NULL)
    return luaL_error(L, "cannot create an HTTP client (libcurl initialisation failed)");
  return 1;
}

static const char *const failure_kinds[] = {
    [HTTP_OK] = "ok",         [HTTP_NETWORK] = "network",
    [HTTP_TLS] = "tls",       [HTTP_TIMEOUT] = "timeout",
    [HTTP_INTERRUPTED] = "interrupted", [HTTP_USAGE] = "usage",
    [HTTP_OTHER] = "network"};

/*
 * client:request(method, url [, body [, headers]])
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
      http_request(handle->client, methods[method], url, body, body_length, headers, &response);
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

static const luaL_Reg core_functions[] = {
    {"http_client", client_new},   {"escape", core_escape},
    {"getpass", core_getpass},     {"isatty", core_isatty},
    {"file_mode", core_file_mode}, {"interrupted", core_interrupted},
    {"message", core_message},     {"message_enabled", core_message_enabled},
    {NULL, NULL}};

static const luaL_Reg client_methods[] = {
    {"request", client_request}, {"close", client_close}, {NULL, NULL}};

static const luaL_Reg client_metamethods[] = {
    {"__index", NULL}, {"__gc", client_close}, {"__close", client_close},
    {"__tostring", client_tostring}, {NULL, NULL}};

static void create_client_meta(lua_State *L) {
  luaL_newmetatable(L, CLIENT_TYPE);
  luaL_setfuncs(L, client_metamethods, 0);
  luaL_newlibtable(L, client_methods);
  luaL_setfuncs(L, client_methods, 0);
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
