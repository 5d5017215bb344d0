#include "http.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The soname of libcurl 7.16 and later (Debian's libcurl4 package). */
#define LIBCURL_SONAME "libcurl.so.4"

/*
 * libcurl is loaded with dlopen when the first client is created, not linked.
 * It pulls in about 30 libraries (TLS, Kerberos, LDAP, IDN). Loading them at
 * every start made `synosh -e ''` about 6 times slower than `lua5.4 -e ''`
 * (docs/performance.md), also for runs that never talk to a NAS.
 */
static struct {
  CURLcode (*global_init)(long flags);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
  CURLcode (*easy_perform)(CURL *curl);
  CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
  void (*easy_cleanup)(CURL *curl);
  const char *(*easy_strerror)(CURLcode code);
  struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
  void (*slist_free_all)(struct curl_slist *list);
  curl_version_info_data *(*version_info)(CURLversion version);
} libcurl;

static const struct {
  const char *name;
  void **slot;
} libcurl_symbols[] = {
    {"curl_global_init", (void **)&libcurl.global_init},
    {"curl_easy_init", (void **)&libcurl.easy_init},
    {"curl_easy_setopt", (void **)&libcurl.easy_setopt},
    {"curl_easy_perform", (void **)&libcurl.easy_perform},
    {"curl_easy_getinfo", (void **)&libcurl.easy_getinfo},
    {"curl_easy_cleanup", (void **)&libcurl.easy_cleanup},
    {"curl_easy_strerror", (void **)&libcurl.easy_strerror},
    {"curl_slist_append", (void **)&libcurl.slist_append},
    {"curl_slist_free_all", (void **)&libcurl.slist_free_all},
    {"curl_version_info", (void **)&libcurl.version_info},
};

enum load_state { NOT_LOADED, LOADED, LOAD_FAILED };
static enum load_state libcurl_state = NOT_LOADED;
static char libcurl_error[512];

/* Loads libcurl and initialises it once; returns 0, or -1 with libcurl_error set. */
static int load_libcurl(void) {
  if (libcurl_state != NOT_LOADED)
    return libcurl_state == LOADED ? 0 : -1;
  libcurl_state = LOAD_FAILED;
  void *library = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    snprintf(libcurl_error, sizeof libcurl_error,
             "cannot load %s (%s); install the libcurl4 package", LIBCURL_SONAME, dlerror());
    return -1;
  }
  for (size_t i = 0; i < sizeof libcurl_symbols / sizeof libcurl_symbols[0]; i++) {
    *libcurl_symbols[i].slot = dlsym(library, libcurl_symbols[i].name);
    if (*libcurl_symbols[i].slot == NULL) {
      snprintf(libcurl_error, sizeof libcurl_error,
               "%s has no %s; synosh needs libcurl 7.85 or later", LIBCURL_SONAME,
               libcurl_symbols[i].name);
      dlclose(library);
      return -1;
    }
  }
  if (libcurl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(libcurl_error, sizeof libcurl_error, "libcurl initialisation failed");
    return -1;
  }
  libcurl_state = LOADED;
  return 0;
}

/* A response buffer larger than this is freed once the response was read. */
#define BODY_KEEP_CAPACITY (1024 * 1024)

struct buffer {
  char *data;
  size_t length;
  size_t capacity;
};

struct http_client {
  CURL *curl;
  struct buffer body;
  const volatile sig_atomic_t *abort_flag;
  char error[CURL_ERROR_SIZE];
};

static int buffer_reserve(struct buffer *buffer, size_t extra) {
  size_t needed = buffer->length + extra + 1;
  if (needed <= buffer->capacity)
    return 1;
  size_t capacity = buffer->capacity ? buffer->capacity : 16384;
  while (capacity < needed)
    capacity *= 2;
  char *data = realloc(buffer->data, capacity);
  if (data == NULL)
    return 0;
  buffer->data = data;
  buffer->capacity = capacity;
  return 1;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  struct buffer *buffer = userdata;
  size_t length = size * count;
  if (!buffer_reserve(buffer, length))
    return 0;  /* libcurl reports CURLE_WRITE_ERROR */
  memcpy(buffer->data + buffer->length, data, length);
  buffer->length += length;
  buffer->data[buffer->length] = '\0';
  return length;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  const struct http_client *client = userdata;
  return client->abort_flag != NULL && *client->abort_flag;
}

struct http_client *http_client_new(const struct http_options *options, const char **error) {
  if (load_libcurl() != 0) {
    *error = libcurl_error;
    return NULL;
  }
  struct http_client *client = calloc(1, sizeof *client);
  if (client == NULL) {
    *error = "not enough memory";
    return NULL;
  }
  client->curl = libcurl.easy_init();
  if (client->curl == NULL) {
    free(client);
    *error = "libcurl cannot create a handle";
    return NULL;
  }
  client->abort_flag = options->abort_flag;

  CURL *curl = client->curl;
  libcurl.easy_setopt(curl, CURLOPT_ERRORBUFFER, client->error);
  libcurl.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  libcurl.easy_setopt(curl, CURLOPT_WRITEDATA, &client->body);
  libcurl.easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  libcurl.easy_setopt(curl, CURLOPT_XFERINFODATA, client);
  libcurl.easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  libcurl.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  libcurl.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  libcurl.easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  libcurl.easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  libcurl.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  if (options->user_agent)
    libcurl.easy_setopt(curl, CURLOPT_USERAGENT, options->user_agent);
  if (options->timeout_ms > 0)
    libcurl.easy_setopt(curl, CURLOPT_TIMEOUT_MS, options->timeout_ms);
  if (options->connect_timeout_ms > 0)
    libcurl.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options->connect_timeout_ms);
  if (options->cacert)
    libcurl.easy_setopt(curl, CURLOPT_CAINFO, options->cacert);
  if (options->insecure || options->pinned_pubkey) {
    libcurl.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    libcurl.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  /* libcurl checks the pin even with peer verification off, before any data
     is sent, so a pinned NAS needs no CA. */
  if (options->pinned_pubkey)
    libcurl.easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, options->pinned_pubkey);
  return client;
}

void http_client_free(struct http_client *client) {
  if (client == NULL)
    return;
  libcurl.easy_cleanup(client->curl);
  free(client->body.data);
  free(client);
}

static enum http_failure classify(CURLcode code) {
  switch (code) {
  case CURLE_OK:
    return HTTP_OK;
  case CURLE_OPERATION_TIMEDOUT:
    return HTTP_TIMEOUT;
  case CURLE_ABORTED_BY_CALLBACK:
    return HTTP_INTERRUPTED;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_USE_SSL_FAILED:
    return HTTP_TLS;
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_BAD_FUNCTION_ARGUMENT:
    return HTTP_USAGE;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return HTTP_NETWORK;
  default:
    return HTTP_OTHER;
  }
}

enum http_failure http_request(struct http_client *client, const char *method,
                               const char *url, const char *body,
                               size_t body_length,
                               const struct http_header *headers,
                               struct http_response *response, int fresh_connect) {
  CURL *curl = client->curl;
  memset(response, 0, sizeof *response);
  client->body.length = 0;
  client->error[0] = '\0';
  if (buffer_reserve(&client->body, 0))
    client->body.data[0] = '\0';

  if (client->abort_flag != NULL && *client->abort_flag) {
    response->failure = HTTP_INTERRUPTED;
    response->curl_code = CURLE_ABORTED_BY_CALLBACK;
    response->error = "interrupted";
    return response->failure;
  }

  struct curl_slist *list = NULL;
  for (const struct http_header *header = headers; header && header->name; header++) {
    size_t name_length = strlen(header->name);
    size_t value_length = strlen(header->value);
    /* Joined with memcpy, because malloc and snprintf here cost about 2,800
       instructions per request. */
    char short_line[256];
    size_t size = name_length + 2 + value_length + 1;
    char *line = size <= sizeof short_line ? short_line : malloc(size);
    if (line == NULL)
      continue;
    memcpy(line, header->name, name_length);
    memcpy(line + name_length, ": ", 2);
    memcpy(line + name_length + 2, header->value, value_length + 1);
    struct curl_slist *next = libcurl.slist_append(list, line);
    if (line != short_line)
      free(line);
    if (next != NULL)
      list = next;
  }
  /* Without this libcurl waits for "100 Continue" before sending large bodies. */
  struct curl_slist *next = libcurl.slist_append(list, "Expect:");
  if (next != NULL)
    list = next;

  libcurl.easy_setopt(curl, CURLOPT_URL, url);
  libcurl.easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  libcurl.easy_setopt(curl, CURLOPT_FRESH_CONNECT, fresh_connect ? 1L : 0L);
  if (strcmp(method, "POST") == 0) {
    libcurl.easy_setopt(curl, CURLOPT_POST, 1L);
    libcurl.easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
    libcurl.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_length : 0));
  } else {
    libcurl.easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }

  CURLcode code = libcurl.easy_perform(curl);
  libcurl.easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
  libcurl.slist_free_all(list);

  response->curl_code = code;
  response->failure = classify(code);
  response->body = client->body.data ? client->body.data : "";
  response->body_length = client->body.length;
  if (code != CURLE_OK) {
    response->error = client->error[0] ? client->error : libcurl.easy_strerror(code);
    return response->failure;
  }
  libcurl.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
  char *content_type = NULL;
  libcurl.easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  response->content_type = content_type ? content_type : "";
  return HTTP_OK;
}

void http_client_release_body(struct http_client *client) {
  if (client->body.capacity > BODY_KEEP_CAPACITY) {
    free(client->body.data);
    client->body = (struct buffer){0};
  }
}

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

size_t http_escaped_length(const char *text, size_t length) {
  size_t escaped = length;
  for (size_t i = 0; i < length; i++)
    if (!is_unreserved((unsigned char)text[i]))
      escaped += 2;
  return escaped;
}

char *http_escape_to(char *out, const char *text, size_t length) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)text[i];
    if (is_unreserved(c)) {
      *out++ = (char)c;
    } else {
      *out++ = '%';
      *out++ = hex[c >> 4];
      *out++ = hex[c & 15];
    }
  }
  return out;
}

char *http_escape(const char *text, size_t length, size_t *out_length) {
  char *out = malloc(http_escaped_length(text, length) + 1);
  if (out == NULL)
    return NULL;
  char *end = http_escape_to(out, text, length);
  *end = '\0';
  *out_length = (size_t)(end - out);
  return out;
}

const char *http_library_version(void) {
  if (load_libcurl() != 0)
    return NULL;
  static char version[128];
  curl_version_info_data *info = libcurl.version_info(CURLVERSION_NOW);
  snprintf(version, sizeof version, "libcurl %s, %s", info->version,
           info->ssl_version ? info->ssl_version : "no TLS");
  return version;
}
