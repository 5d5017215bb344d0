#!/usr/bin/env python3
"""Run a command in a pseudo-terminal and answer its prompts.

usage: pty_run.py [--timeout SECONDS] [--expect TEXT --send-file FILE]... -- COMMAND...

Each --expect waits until TEXT appears in the terminal output, then types the
first line of the paired --send-file followed by Enter. The whole terminal
transcript is written to stdout, and the exit status is the command's (124 when
it did not finish within the timeout).
"""
import argparse
import os
import pty
import select
import signal
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--send-file", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command or len(options.expect) != len(options.send_file):
        parser.error("give a command and one --send-file for each --expect")

    dialog = []
    for expected, path in zip(options.expect, options.send_file):
        with open(path, encoding="utf-8") as file:
            dialog.append((expected.encode(), file.readline().rstrip("\n").encode() + b"\r"))

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    transcript = b""
    searched_from = 0
    deadline = time.monotonic() + options.timeout
    while True:
        if dialog and dialog[0][0] in transcript[searched_from:]:
            searched_from = transcript.index(dialog[0][0], searched_from) + len(dialog[0][0])
            os.write(fd, dialog.pop(0)[1])
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
