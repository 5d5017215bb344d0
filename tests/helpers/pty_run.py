#!/usr/bin/env python3
"""Run a command in a pseudo-terminal and answer its prompts.

usage: pty_run.py [--timeout SECONDS] [--expect TEXT --send-file FILE]... -- COMMAND...
       pty_run.py [--timeout SECONDS] [STEP]... -- COMMAND...

Each --expect waits until TEXT appears in the terminal output, then types the
first line of the paired --send-file followed by Enter. The whole terminal
transcript is written to stdout, and the exit status is the command's (124 when
it did not finish within the timeout).

The steps run in command-line order, each after the one before it:
  --expect TEXT          wait until TEXT appears after the previous match
  --send-file FILE       type the first line of FILE, then Enter
  --send-raw-file FILE   type the bytes of FILE unchanged (such as Tab, Ctrl-C
                         or Ctrl-D), with no Enter
  --sleep SECONDS        wait that long before the next step
"""
import argparse
import os
import pty
import select
import signal
import sys
import time


class AppendStep(argparse.Action):
    """Appends (option name, value) to one list, so the steps keep their order."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.steps.append((self.dest, value))


def read_steps(steps: list) -> list:
    """Turn the options into (kind, value) pairs: ("expect", bytes), ("send", bytes), ("sleep", seconds)."""
    dialog = []
    for kind, value in steps:
        if kind == "expect":
            dialog.append(("expect", value.encode()))
        elif kind == "send_file":
            with open(value, encoding="utf-8") as file:
                dialog.append(("send", file.readline().rstrip("\n").encode() + b"\r"))
        elif kind == "send_raw_file":
            with open(value, "rb") as file:
                dialog.append(("send", file.read()))
        else:
            dialog.append(("sleep", float(value)))
    return dialog


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.set_defaults(steps=[])
    for name in ("--expect", "--send-file", "--send-raw-file", "--sleep"):
        parser.add_argument(name, action=AppendStep, default=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("give a command to run")
    dialog = read_steps(options.steps)

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    transcript = b""
    searched_from = 0
    deadline = time.monotonic() + options.timeout
    while True:
        while dialog and dialog[0][0] != "expect":
            kind, value = dialog.pop(0)
            if kind == "send":
                os.write(fd, value)
            else:
                time.sleep(value)
        if dialog and dialog[0][1] in transcript[searched_from:]:
            searched_from = transcript.index(dialog[0][1], searched_from) + len(dialog[0][1])
            dialog.pop(0)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            sys.stdout.buffer.write(transcript)
            return 124
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # Linux raises EIO once the child has closed the terminal.
                chunk = b""
            if not chunk:
                break
            transcript += chunk
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(transcript)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main())
