/*
 * libFuzzer target for the command-line parser (src/cli.c).
 *
 * The input is split at NUL bytes into the arguments after argv[0], as the
 * kernel would pass them. cli_parse runs twice, with the host's error buffer
 * and with a tiny one, and both runs must agree. Every option value it keeps
 * must point into argv, and a failure must leave a message. A message may
 * contain a newline when the argument it quotes does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_ARGS 256

static void require(int condition, const char *invariant) {
  if (!condition) {
    fprintf(stderr, "fuzz: cli_parse invariant failed: %s\n", invariant);
    abort();
  }
}

/* Returns whether value is NULL or points into one of the arguments. */
static int points_into_argv(const char *value, int argc, char **argv) {
  if (value == NULL)
    return 1;
  for (int i = 0; i < argc; i++) {
    size_t length = strlen(argv[i]);
    if (value >= argv[i] && value <= argv[i] + length)
      return 1;
  }
  return 0;
}

static void check_options(const struct cli_options *options, int argc, char **argv) {
  require(options->action_count >= 0 && options->action_count <= CLI_MAX_ACTIONS,
          "action count out of range");
  for (int i = 0; i < options->action_count; i++) {
    const struct cli_action *action = &options->actions[i];
    require(action->kind == 'e' || action->kind == 'l', "unknown action kind");
    require(points_into_argv(action->value, argc, argv) && action->value != NULL,
            "action value outside argv");
  }
  require(options->script_index >= 1 && options->script_index <= argc, "script index out of range");
  if (options->script != NULL)
    require(options->script == argv[options->script_index], "script is not argv[script_index]");
  else
    require(options->script_index == argc, "no script but script_index is not argc");

  const char *values[] = {options->url,    options->user,    options->password_file,
                          options->otp,    options->cacert,  options->timeout,
                          options->profile};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    require(points_into_argv(values[i], argc, argv), "option value outside argv");
    require(values[i] == NULL || values[i][0] != '\0', "empty option value accepted");
  }
  if (options->timeout != NULL) {
    char *end;
    double seconds = strtod(options->timeout, &end);
    require(*end == '\0' && seconds > 0 && seconds <= 86400, "invalid --timeout accepted");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* NOTE: one buffer holds every argument, each ending in NUL, so
     AddressSanitizer reports a read past the end of the last argument only. */
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "synosh";
  for (char *arg = text; arg <= text + size && argc <= MAX_ARGS; arg += strlen(arg) + 1)
    argv[argc++] = arg;
  argv[argc] = NULL;

  struct cli_options options;
  char error[512];
  memset(error, 0, sizeof error);
  int status = cli_parse(argc, argv, &options, error, sizeof error);
  require(status == 0 || status == -1, "status other than 0 and -1");
  if (status == 0) {
    check_options(&options, argc, argv);
  } else {
    require(error[0] != '\0', "failure without a message");
    require(memchr(error, '\0', sizeof error) != NULL, "message not terminated");
  }

  /* A small buffer only shortens the message. */
  struct cli_options again;
  char small[8];
  require(cli_parse(argc, argv, &again, small, sizeof small) == status,
          "the result depends on the size of the error buffer");
  if (status != 0)
    require(strncmp(small, error, sizeof small - 1) == 0 && strlen(small) < sizeof small,
            "the short message is not a prefix of the full one");

  free(text);
  return 0;
}
