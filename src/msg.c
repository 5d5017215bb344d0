#include "msg.h"

#include <stdarg.h>
#include <stdio.h>

static int quiet_mode;
static int verbose_mode;

void msg_configure(int quiet, int verbose) {
  quiet_mode = quiet;
  verbose_mode = verbose;
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

void msg_print(enum msg_level level, const char *format, ...) {
  if (!msg_enabled(level))
    return;
  static const char *const prefixes[] = {"synosh: debug: ", "", "synosh: warning: ",
                                         "synosh: error: "};
  fputs(prefixes[level], stderr);
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fputc('\n', stderr);
  fflush(stderr);
}
