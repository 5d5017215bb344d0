/* Command-line parsing for the host. Pure C: no Lua here. */
#ifndef SYNOSH_CLI_H
#define SYNOSH_CLI_H

#include <stddef.h>

#define CLI_MAX_ACTIONS 64

/* An -e CODE or -l MODULE option, kept in command-line order. */
struct cli_action {
  char kind;          /* 'e' or 'l' */
  const char *value;
};

struct cli_options {
  int show_help, show_version, interactive, quiet, verbose;
  struct cli_action actions[CLI_MAX_ACTIONS];
  int action_count;
  /* The script ("-" is stdin) and its index in argv; script_index is argc when
     there is no script. */
  const char *script;
  int script_index;

  /* Connection options; NULL (or 0) when not given, so the environment and
     the profile can fill them in. */
  const char *url, *user, *password_file, *otp, *cacert, *timeout, *profile, *pinned_pubkey,
      *dialect, *remember_device;
  /* Scheduled-run options. */
  const char *lock, *notify_command;
  /* --sandbox, and the only directory a sandboxed script may write under. */
  int sandbox;
  const char *sandbox_dir;
  int insecure, dry_run;
};

/*
 * Parses argv. Returns 0 on success, or -1 with a one-line message in error,
 * which names the option and what to do.
 */
int cli_parse(int argc, char **argv, struct cli_options *options, char *error,
              size_t error_size);

extern const char cli_usage[];

#endif
