#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int global_initialized;

struct http_client *http_client_new(const struct http_options *options) {
  /* Initialised on first use, so a script that never talks to a NAS does not
     pay for loading the TLS library. */
  if (!global_initialized) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return NULL;
    global_initialized = 1;
  }
  struct http_client *client = calloc(1, sizeof *client);
  if (client == NULL)
    return NULL;
  client->curl = curl_easy_init();
  if (client->curl == NULL) {
    free(client);
    return NULL;
  }
  client->abort_flag = options->abort_flag;

  CURL *curl = client->curl;
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, client->error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &client->body);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, client);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  if (options->user_agent)
    curl_easy_setopt(curl, CURLOPT_USERAGENT, options->user_agent);
  if (options->timeout_ms > 0)
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options->timeout_ms);
  if (options->connect_timeout_ms > 0)
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options->connect_timeout_ms);
  if (options->cacert)
    curl_easy_setopt(curl, CURLOPT_CAINFO, options->cacert);
  if (options->insecure || options->pinned_pubkey) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  /* libcurl checks the pin even with peer verification off, before any data
     is sent, so a pinned NAS needs no CA. */
  if (options->pinned_pubkey)
    curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, options->pinned_pubkey);
  return client;
}

void http_client_free(struct http_client *client) {
  if (client == NULL)
    return;
  curl_easy_cleanup(client->curl);
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
    size_t length = strlen(header->name) + strlen(header->value) + 3;
    char *line = malloc(length);
    if (line == NULL)
      continue;
    snprintf(line, length, "%s: %s", header->name, header->value);
    struct curl_slist *next = curl_slist_append(list, line);
    free(line);
    if (next != NULL)
      list = next;
  }
  /* Without this libcurl waits for "100 Continue" before sending large bodies. */
  struct curl_slist *next = curl_slist_append(list, "Expect:");
  if (next != NULL)
    list = next;

  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, fresh_connect ? 1L : 0L);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_length : 0));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }

  CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(list);

  response->curl_code = code;
  response->failure = classify(code);
  response->body = client->body.data ? client->body.data : "";
  response->body_length = client->body.length;
  if (code != CURLE_OK) {
    response->error = client->error[0] ? client->error : curl_easy_strerror(code);
    return response->failure;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
  char *content_type = NULL;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  response->content_type = content_type ? content_type : "";
  return HTTP_OK;
}

char *http_escape(const char *text, size_t length, size_t *out_length) {
  static const char hex[] = "0123456789ABCDEF";
  char *out = malloc(length * 3 + 1);
  if (out == NULL)
    return NULL;
  size_t n = 0;
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)text[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      out[n++] = (char)c;
    } else {
      out[n++] = '%';
      out[n++] = hex[c >> 4];
      out[n++] = hex[c & 15];
    }
  }
  out[n] = '\0';
  *out_length = n;
  return out;
}
