/*
 * Baseline for the client cost of one DSM call: a bare libcurl loop.
 *
 *   curl_loop URL USER PASSWORD_FILE COUNT
 *
 * Logs in to the DSM at URL, sends COUNT times the request that synosh sends
 * for image.get("nginx:latest") over one easy handle (so one kept-alive
 * connection), then logs out. Each request carries the same URL, headers and
 * libcurl options as synosh's, except the progress callback with which synosh
 * stops a transfer on SIGINT. The loop only checks that each response
 * contains "success":true and parses nothing else. It prints one line of JSON:
 *   {"calls": COUNT, "cpu_seconds": S}
 * where S is the process CPU time (user + system) spent in the COUNT calls.
 * Exit status 1 when a request fails.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct buffer {
  char *data;
  size_t length;
  size_t capacity;
};

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  struct buffer *buffer = userdata;
  size_t length = size * count;
  if (buffer->length + length + 1 > buffer->capacity) {
    size_t capacity = buffer->capacity ? buffer->capacity : 16384;
    while (capacity < buffer->length + length + 1)
      capacity *= 2;
    char *grown = realloc(buffer->data, capacity);
    if (grown == NULL)
      return 0;
    buffer->data = grown;
    buffer->capacity = capacity;
  }
  memcpy(buffer->data + buffer->length, data, length);
  buffer->length += length;
  buffer->data[buffer->length] = '\0';
  return length;
}

static double cpu_seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Copies the string value of "name":"..." in json into out; returns 0 when absent. */
static int json_string_field(const char *json, const char *name, char *out, size_t size) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":\"", name);
  const char *start = strstr(json, key);
  if (start == NULL)
    return 0;
  start += strlen(key);
  const char *end = strchr(start, '"');
  if (end == NULL || (size_t)(end - start) >= size)
    return 0;
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
  return 1;
}

/* Sends one request and returns 0 when the response contains "success":true. */
static int perform(CURL *curl, struct buffer *body, const char *request_name) {
  body->length = 0;
  CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    fprintf(stderr, "curl_loop: %s failed: %s\n", request_name, curl_easy_strerror(code));
    return -1;
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 || body->data == NULL || strstr(body->data, "\"success\":true") == NULL) {
    fprintf(stderr, "curl_loop: %s failed: HTTP %ld, %.80s\n", request_name, status,
            body->data ? body->data : "");
    return -1;
  }
  return 0;
}

static char *read_password(const char *path) {
  FILE *file = fopen(path, "r");
  if (file == NULL) {
    perror(path);
    return NULL;
  }
  char line[1024];
  char *password = NULL;
  if (fgets(line, sizeof line, file) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    password = strdup(line);
  }
  fclose(file);
  memset(line, 0, sizeof line);
  return password;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: curl_loop URL USER PASSWORD_FILE COUNT\n");
    return 2;
  }
  const char *base = argv[1];
  const char *user = argv[2];
  long count = strtol(argv[4], NULL, 10);
  char *password = read_password(argv[3]);
  if (password == NULL)
    return 2;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *curl = curl_easy_init();
  struct buffer body = {0};
  char error[CURL_ERROR_SIZE];
  /* The options synosh's transport sets on its handle. */
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "synosh/0.1.0");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 15000L);

  char url[2048];
  snprintf(url, sizeof url, "%s/webapi/entry.cgi", base);
  char *escaped_user = curl_easy_escape(curl, user, 0);
  char *escaped_password = curl_easy_escape(curl, password, 0);
  char form[2048];
  snprintf(form, sizeof form,
           "api=SYNO.API.Auth&version=7&method=login&account=%s&passwd=%s&format=sid"
           "&enable_syno_token=yes",
           escaped_user, escaped_password);
  memset(password, 0, strlen(password));
  curl_free(escaped_user);
  curl_free(escaped_password);
  struct curl_slist *form_headers =
      curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
  form_headers = curl_slist_append(form_headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, form_headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
  int failed = perform(curl, &body, "login");
  memset(form, 0, sizeof form);
  char sid[256], token[256], cookie[300], token_header[300];
  if (!failed && (!json_string_field(body.data, "sid", sid, sizeof sid) ||
                  !json_string_field(body.data, "synotoken", token, sizeof token))) {
    fprintf(stderr, "curl_loop: login returned no sid or synotoken\n");
    failed = 1;
  }
  if (failed)
    return 1;
  snprintf(cookie, sizeof cookie, "Cookie: id=%s", sid);
  snprintf(token_header, sizeof token_header, "X-SYNO-TOKEN: %s", token);

  /* The loop builds its header list per request, as synosh does. */
  snprintf(url, sizeof url,
           "%s/webapi/entry.cgi?api=SYNO.Docker.Image&version=1&method=get&repository=nginx"
           "&tag=latest",
           base);
  double start = cpu_seconds();
  for (long i = 0; i < count && !failed; i++) {
    struct curl_slist *headers = curl_slist_append(NULL, token_header);
    headers = curl_slist_append(headers, cookie);
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    failed = perform(curl, &body, "image get");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
  }
  double elapsed = cpu_seconds() - start;

  snprintf(url, sizeof url, "%s/webapi/entry.cgi", base);
  snprintf(form, sizeof form, "api=SYNO.API.Auth&version=7&method=logout&_sid=%s", sid);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, form_headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
  if (!failed)
    failed = perform(curl, &body, "logout");

  curl_slist_free_all(form_headers);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  free(body.data);
  free(password);
  if (failed)
    return 1;
  printf("{\"calls\": %ld, \"cpu_seconds\": %.6f}\n", count, elapsed);
  return 0;
}
