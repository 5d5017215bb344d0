/* Messages to the user: every line the host prints to stderr goes through here. */
#ifndef SYNOSH_MSG_H
#define SYNOSH_MSG_H

enum msg_level { MSG_DEBUG, MSG_INFO, MSG_WARNING, MSG_ERROR };

/* MSG_INFO and MSG_DEBUG lines are dropped under --quiet; MSG_DEBUG needs --verbose. */
void msg_configure(int quiet, int verbose);
int msg_enabled(enum msg_level level);

/* Prints "synosh: error: TEXT" (or warning) as one line; info lines carry no prefix.
   When stderr is not a terminal, each line starts with an ISO 8601 time, and
   info lines read "synosh: info: TEXT". */
void msg_print(enum msg_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#endif
