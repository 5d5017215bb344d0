/*
 * Transport layer: HTTP requests over one reused libcurl easy handle.
 * libcurl is loaded with dlopen when the first client is created.
 *
 * This layer depends on neither Lua nor DSM. A client owns one easy handle, so
 * every request of a session goes over the same kept-alive connection.
 */
#ifndef SYNOSH_HTTP_H
#define SYNOSH_HTTP_H

#include <signal.h>
#include <stddef.h>

/* Failure categories of a request that got no usable HTTP response. */
enum http_failure {
  HTTP_OK = 0,        /* an HTTP response arrived, whatever its status */
  HTTP_NETWORK,       /* DNS, connect, send or receive failed */
  HTTP_TLS,           /* TLS handshake or certificate verification failed */
  HTTP_TIMEOUT,       /* the request took longer than the timeout */
  HTTP_INTERRUPTED,   /* the abort flag was set during the transfer */
  HTTP_USAGE,         /* invalid URL or option */
  HTTP_OTHER
};

struct http_options {
  const char *cacert;         /* CA bundle file for the NAS certificate, or NULL */
  int insecure;               /* non-zero turns TLS verification off */
  /* "sha256//BASE64[;sha256//...]" or a key file: accept the NAS only with
     that public key, in place of the CA chain (for self-signed NAS certificates). */
  const char *pinned_pubkey;
  long timeout_ms;            /* whole-request limit; 0 means none */
  long connect_timeout_ms;    /* 0 means libcurl's default */
  const char *user_agent;
  /* Checked during transfers; when it becomes non-zero the transfer stops. */
  const volatile sig_atomic_t *abort_flag;
};

struct http_header {
  const char *name;
  const char *value;
};

struct http_response {
  long status;
  const char *content_type;   /* owned by the client, valid until the next request */
  const char *body;           /* owned by the client, NUL-terminated */
  size_t body_length;
  enum http_failure failure;
  int curl_code;
  const char *error;          /* failure detail, owned by the client */
};

struct http_client;

/*
 * Creates a client, loading libcurl on the first call. Returns NULL and sets
 * *error to a static message when libcurl cannot be loaded or cannot create a
 * handle.
 */
struct http_client *http_client_new(const struct http_options *options, const char **error);
void http_client_free(struct http_client *client);

/*
 * Sends one request and fills *response. method is "GET" or "POST"; body (with
 * body_length bytes) is sent as-is for POST. headers ends with a {NULL, NULL}
 * entry and may be NULL. Returns response->failure.
 */
/*
 * Sends one request. With fresh_connect, the request goes on a new connection:
 * libcurl sends a request again by itself when a reused connection closes
 * before any response, which for a write could repeat what the NAS already did.
 * On a new connection there is no such resend.
 */
enum http_failure http_request(struct http_client *client, const char *method,
                               const char *url, const char *body,
                               size_t body_length,
                               const struct http_header *headers,
                               struct http_response *response, int fresh_connect);

/*
 * Frees the last response's body when it was large, so a big listing does not
 * stay allocated until the next request. The response's body is invalid after.
 */
void http_client_release_body(struct http_client *client);

/* Returns "libcurl VERSION, TLS LIBRARY", loading libcurl; NULL when it cannot be loaded. */
const char *http_library_version(void);

/* Percent-encodes every byte outside A-Z a-z 0-9 - . _ ~ into a malloc'd string. */
char *http_escape(const char *text, size_t length, size_t *out_length);

/* Returns the length of text once percent-encoded as http_escape does it. */
size_t http_escaped_length(const char *text, size_t length);

/* Writes text percent-encoded into out, which has room for
   http_escaped_length(text, length) bytes, and returns the end of the output. */
char *http_escape_to(char *out, const char *text, size_t length);

#endif
