#!/usr/bin/env python3
"""Keystroke echo round trips of two terminal programs, measured in pairs.

Usage: echo_pair.py COLS ROWS COUNT PROGRAMS_JSON

PROGRAMS_JSON: a list of two {"argv": [...], "env": {"NAME": "value" or null}} (null removes).
Each program runs in a pseudo-terminal of its own (as drive.py runs one) and must start a shell
that answers `echo rea''dy`. Then COUNT single characters are typed into each, one at a time,
alternating between the two (and which one goes first in each pair), each timed from the write
until its echo is back. Measuring in pairs keeps a machine whose load changes from favouring one
program: both see the same moment. Then `exit` is typed into both.

Output: {"latencies_ms": [[...], [...]], "failed": null or "why"}; the children are killed if
they have not exited 30 s after `exit`.
"""

import json
import os
import pty
import re
import select
import signal
import sys
import time

from drive import set_size


class Term:
    def __init__(self, program, cols, rows):
        pid, fd = pty.fork()
        if pid == 0:
            set_size(0, cols, rows)
            for k, v in program.get("env", {}).items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            try:
                os.execvp(program["argv"][0], program["argv"])
            finally:
                os._exit(127)
        self.pid, self.fd, self.out, self.eof = pid, fd, bytearray(), False

    def read_some(self, timeout):
        if self.eof:
            return False
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.out.extend(data)
        return True

    def expect(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, bytes(self.out), re.S):
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise RuntimeError("%r not seen (%s)" % (pattern, "EOF" if self.eof else "timeout"))
            self.read_some(left)

    def echo_ms(self, ch):
        """One keystroke, timed until its echo (ms)."""
        while self.read_some(0):
            pass
        start = len(self.out)
        t0 = time.perf_counter()
        os.write(self.fd, ch)
        deadline = time.monotonic() + 5
        while ch not in self.out[start:]:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise RuntimeError("no echo")
            self.read_some(left)
        return (time.perf_counter() - t0) * 1000.0

    def finish(self, deadline):
        while True:
            wpid, _ = os.waitpid(self.pid, os.WNOHANG)
            if wpid == self.pid:
                return True
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                return False
            self.read_some(0.05)


def main():
    cols, rows, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    terms = [Term(p, cols, rows) for p in json.loads(sys.argv[4])]
    result = {"latencies_ms": [[], []], "failed": None}
    try:
        for t in terms:
            os.write(t.fd, b"echo rea''dy\r")
            t.expect(rb"[\r\n]ready\r\n", 30)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            for t in terms:
                t.read_some(0.01)
        for i in range(count):
            for k in ((0, 1) if i % 2 == 0 else (1, 0)):
                result["latencies_ms"][k].append(terms[k].echo_ms(b"x"))
    except RuntimeError as e:
        result["failed"] = str(e)
    for t in terms:
        os.write(t.fd, b"\x15exit\r")
    deadline = time.monotonic() + 30
    for t in terms:
        if not t.finish(deadline):
            result["failed"] = result["failed"] or "no exit within 30 s"
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
