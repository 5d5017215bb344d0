#include "msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int quiet_mode;
static int verbose_mode;
static int timestamps = -1;  /* -1: not decided yet */

void msg_configure(int quiet, int verbose) {
  quiet_mode = quiet;
  verbose_mode = verbose;
  /* Off a terminal (cron mail, journald, a log file) every line carries its
     time and level; on a terminal the lines stay plain. */
  timestamps = !isatty(STDERR_FILENO);
}

int msg_enabled(enum msg_level level) {
  switch (level) {
  case MSG_DEBUG:
    return verbose_mode;
  case MSG_INFO:
    return !quiet_mode;
  default:
    return 1;
  }
}

/* Writes the local time as ISO 8601 with the UTC offset: 2026-12-04T21:31:05+01:00. */
static void print_timestamp(FILE *out) {
  time_t now = time(NULL);
  struct tm local;
  char text[40];
  if (localtime_r(&now, &local) == NULL ||
      strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &local) == 0)
    return;
  /* strftime writes the offset as +0100; ISO 8601's extended form is +01:00. */
  size_t length = strlen(text);
  if (length >= 5) {
    text[length + 1] = '\0';
    text[length] = text[length - 1];
    text[length - 1] = text[length - 2];
    text[length - 2] = ':';
  }
  fputs(text, out);
  fputc(' ', out);
}

void msg_print(enum msg_level level, const char *format, ...) {
  if (!msg_enabled(level))
    return;
  if (timestamps < 0)
    timestamps = !isatty(STDERR_FILENO);
  static const char *const prefixes[] = {"synosh: debug: ", "", "synosh: warning: ",
                                         "synosh: error: "};
  if (timestamps) {
    print_timestamp(stderr);
    fputs(level == MSG_INFO ? "synosh: info: " : prefixes[level], stderr);
  } else {
    fputs(prefixes[level], stderr);
  }
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fputc('\n', stderr);
  fflush(stderr);
}
