#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_usage[] =
    "usage: synosh [options] [script [args...]]\n"
    "\n"
    "Runs a Lua script against the Docker images of a Synology NAS.\n"
    "With no script, reads the script from standard input when it is not a terminal.\n"
    "\n"
    "Script options (as for lua):\n"
    "  -e CODE              run CODE; may be repeated\n"
    "  -l MODULE            require MODULE into the global of the same name\n"
    "  -i                   enter interactive mode after the script\n"
    "  -                    run standard input\n"
    "  --                   stop handling options\n"
    "  -q, --quiet          print only warnings and errors\n"
    "  --verbose            print each request (without secrets) and error tracebacks\n"
    "  -h, --help           show this help\n"
    "  -v, --version        show the versions of synosh, Lua and libcurl\n"
    "\n"
    "Connection options (each overrides its environment variable, which overrides\n"
    "the profile):\n"
    "  --url URL            the NAS, such as https://nas.local:5001      (SYNO_URL)\n"
    "  --user NAME          the DSM account                                (SYNO_USER)\n"
    "  --password-file FILE read the password from the first line of FILE\n"
    "                       (SYNO_PASSWORD_FILE; SYNO_PASSWORD is read too;\n"
    "                       with neither, synosh asks on the terminal)\n"
    "  --otp CODE           two-step verification code                     (SYNO_OTP)\n"
    "  --remember-device NAME\n"
    "                       with --otp: store the device token DSM returns, under\n"
    "                       $XDG_STATE_HOME/synosh/devices/, so later logins of\n"
    "                       this account need no code (for scheduled jobs)\n"
    "  --cacert FILE        trust the CA certificate(s) in FILE (PEM)      (SYNO_CACERT)\n"
    "  --pinned-pubkey sha256//BASE64\n"
    "                       accept the NAS only with this public key, even with a\n"
    "                       self-signed certificate                        (SYNO_PINNED_PUBKEY)\n"
    "  --insecure           do not verify the NAS certificate              (SYNO_INSECURE=1)\n"
    "  --timeout SECONDS    maximum time for one request, default 60       (SYNO_TIMEOUT)\n"
    "  --dry-run            send no delete, pull or registry change        (SYNO_DRY_RUN=1)\n"
    "  --dialect NAME       image API dialect: auto (detect, the default), document\n"
    "                       or container-manager                           (SYNO_DIALECT)\n"
    "  --profile NAME       use profile NAME from\n"
    "                       $XDG_CONFIG_HOME/synosh/config.lua             (SYNO_PROFILE)\n"
    "\n"
    "Scheduled runs:\n"
    "  --lock FILE          hold an exclusive lock on FILE for the run; when another\n"
    "                       run holds it, exit at once with status 5\n"
    "  --notify-command CMD after the run, run CMD with sh -c and give it the JSON\n"
    "                       report (or the error) on standard input\n"
    "\n"
    "Untrusted scripts:\n"
    "  --sandbox            run without os.execute, io.popen, C modules or file writes\n"
    "  --sandbox=DIR        the same, but allow file writes under DIR\n"
    "\n"
    "Modules: require searches the directories in SYNOSH_PATH (separated by \":\"),\n"
    "then $XDG_CONFIG_HOME/synosh/lua, then LUA_PATH.\n"
    "\n"
    "A password is never accepted on the command line.\n"
    "\n"
    "Exit status:\n"
    "  0    success\n"
    "  1    the script raised an error, including an API error it did not catch\n"
    "  2    usage error: bad option, missing script, invalid profile or reference\n"
    "  3    login failed: wrong credentials, two-step code needed or rejected,\n"
    "       account disabled or IP blocked\n"
    "  4    the NAS could not be reached: DNS, connection, TLS or timeout\n"
    "  5    another run holds the --lock file\n"
    "  130  interrupted by SIGINT; 143 by SIGTERM, 129 by SIGHUP\n";

/* Options that take a value, and where the value goes. */
struct value_option {
  const char *name;
  size_t offset;
};

#define VALUE_OPTION(name, field) {name, offsetof(struct cli_options, field)}

static const struct value_option value_options[] = {
    VALUE_OPTION("--url", url),         VALUE_OPTION("--user", user),
    VALUE_OPTION("--password-file", password_file),
    VALUE_OPTION("--otp", otp),         VALUE_OPTION("--cacert", cacert),
    VALUE_OPTION("--pinned-pubkey", pinned_pubkey),
    VALUE_OPTION("--timeout", timeout), VALUE_OPTION("--profile", profile),
    VALUE_OPTION("--lock", lock),       VALUE_OPTION("--notify-command", notify_command),
    VALUE_OPTION("--dialect", dialect), VALUE_OPTION("--remember-device", remember_device),
    {NULL, 0}};

static int fail(char *error, size_t error_size, const char *format, const char *value) {
  snprintf(error, error_size, format, value);
  return -1;
}

static int valid_dialect(const char *text) {
  return strcmp(text, "auto") == 0 || strcmp(text, "document") == 0 ||
         strcmp(text, "container-manager") == 0;
}

static int valid_timeout(const char *text) {
  char *end;
  double seconds = strtod(text, &end);
  return end != text && *end == '\0' && seconds > 0 && seconds <= 86400;
}

/* Matches "--name VALUE" and "--name=VALUE"; returns 1 and sets *value on a match. */
static int match_value_option(int argc, char **argv, int *index, const char *name,
                              const char **value, int *missing) {
  const char *arg = argv[*index];
  size_t length = strlen(name);
  if (strncmp(arg, name, length) != 0)
    return 0;
  if (arg[length] == '=') {
    *value = arg + length + 1;
    return 1;
  }
  if (arg[length] != '\0')
    return 0;
  if (*index + 1 >= argc) {
    *missing = 1;
    return 1;
  }
  *value = argv[++*index];
  return 1;
}

static int add_action(struct cli_options *options, char kind, const char *value,
                      char *error, size_t error_size) {
  if (options->action_count == CLI_MAX_ACTIONS)
    return fail(error, error_size, "too many -e and -l options (the limit is 64)%s", "");
  options->actions[options->action_count].kind = kind;
  options->actions[options->action_count].value = value;
  options->action_count++;
  return 0;
}

static int parse_long_option(int argc, char **argv, int *index, struct cli_options *options,
                             char *error, size_t error_size) {
  const char *arg = argv[*index];
  if (strcmp(arg, "--help") == 0)
    options->show_help = 1;
  else if (strcmp(arg, "--version") == 0)
    options->show_version = 1;
  else if (strcmp(arg, "--quiet") == 0)
    options->quiet = 1;
  else if (strcmp(arg, "--verbose") == 0)
    options->verbose = 1;
  else if (strcmp(arg, "--insecure") == 0)
    options->insecure = 1;
  else if (strcmp(arg, "--dry-run") == 0)
    options->dry_run = 1;
  else if (strcmp(arg, "--sandbox") == 0)
    options->sandbox = 1;
  else if (strncmp(arg, "--sandbox=", 10) == 0) {
    if (arg[10] == '\0')
      return fail(error, error_size, "option --sandbox= needs a directory, as in --sandbox=DIR%s", "");
    options->sandbox = 1;
    options->sandbox_dir = arg + 10;
  }
  else if (strcmp(arg, "--password") == 0 || strncmp(arg, "--password=", 11) == 0)
    return fail(error, error_size,
                "--password is not accepted: a command line is visible to other users "
                "and lands in shell history; use --password-file FILE, SYNO_PASSWORD_FILE "
                "or SYNO_PASSWORD%s", "");
  else {
    for (const struct value_option *option = value_options; option->name; option++) {
      const char *value = NULL;
      int missing = 0;
      if (!match_value_option(argc, argv, index, option->name, &value, &missing))
        continue;
      if (missing)
        return fail(error, error_size, "option %s needs a value", option->name);
      if (*value == '\0')
        return fail(error, error_size, "option %s needs a non-empty value", option->name);
      if (option->offset == offsetof(struct cli_options, timeout) && !valid_timeout(value))
        return fail(error, error_size,
                    "invalid --timeout \"%s\": give a number of seconds greater than 0 "
                    "and at most 86400 (a day), such as 30", value);
      if (option->offset == offsetof(struct cli_options, dialect) && !valid_dialect(value))
        return fail(error, error_size,
                    "invalid --dialect \"%s\": use auto, document or container-manager", value);
      const char **field = (const char **)((char *)options + option->offset);
      /* Which of two values was meant is a guess, and a wrong guess can
         point a cleanup at another NAS. */
      if (*field != NULL && strcmp(*field, value) != 0)
        return fail(error, error_size, "option %s is given twice with different values; give it once",
                    option->name);
      *field = value;
      return 0;
    }
    return fail(error, error_size,
                "unknown option %s; an option of the script goes after the script's name", arg);
  }
  return 0;
}

int cli_parse(int argc, char **argv, struct cli_options *options, char *error,
              size_t error_size) {
  memset(options, 0, sizeof *options);
  options->script_index = argc;
  int index;
  for (index = 1; index < argc; index++) {
    const char *arg = argv[index];
    if (arg[0] != '-' || strcmp(arg, "-") == 0)
      break;  /* the script */
    if (strcmp(arg, "--") == 0) {
      index++;
      break;
    }
    if (arg[1] == '-') {
      if (parse_long_option(argc, argv, &index, options, error, error_size) != 0)
        return -1;
      continue;
    }
    /* Short options, one per argument; -e and -l take the rest or the next argument. */
    switch (arg[1]) {
    case 'h':
    case 'v':
    case 'i':
    case 'q':
      if (arg[2] != '\0')
        return fail(error, error_size, "unknown option %s", arg);
      if (arg[1] == 'h')
        options->show_help = 1;
      else if (arg[1] == 'v')
        options->show_version = 1;
      else if (arg[1] == 'i')
        options->interactive = 1;
      else
        options->quiet = 1;
      break;
    case 'e':
    case 'l': {
      const char *value = arg[2] != '\0' ? arg + 2 : NULL;
      if (value == NULL) {
        if (index + 1 >= argc)
          return fail(error, error_size, "option %s needs a value", arg);
        value = argv[++index];
      }
      if (add_action(options, arg[1], value, error, error_size) != 0)
        return -1;
      break;
    }
    default:
      return fail(error, error_size, "unknown option %s", arg);
    }
  }
  if (index < argc) {
    options->script = argv[index];
    options->script_index = index;
  }
  return 0;
}
