#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal (as a session leader with it as controlling terminal,
like a terminal emulator does) and follows a script of steps, then prints one JSON object.

Usage: drive.py COLS ROWS STEPS_JSON -- COMMAND ARGS...

Steps (a JSON list, run in order):
  {"send": "text"}                     type the text
  {"expect": "regex", "timeout": 20}   wait until everything printed so far (since the last
                                       expect) matches; the step fails on timeout or EOF
  {"resize": [cols, rows]}             change the terminal size (the program gets SIGWINCH)
  {"sleep": 0.5}
  {"echo_bench": {"count": 200, "char": "x", "timeout": 5}}
                                       type one character at a time and time until its echo
                                       comes back (milliseconds, in "latencies_ms")

Output: {"status": exit status or null, "signal": number or null, "output": all output
(UTF-8, invalid bytes replaced), "failed": null or "step N: why", "latencies_ms": [...]}.
The child is killed if it has not exited 30 s after the last step.
"""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def main():
    cols, rows, steps = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    assert sys.argv[4] == "--"
    argv = sys.argv[5:]
    pid, fd = pty.fork()
    if pid == 0:
        set_size(0, cols, rows)
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    out = bytearray()
    mark = 0  # where the next expect starts looking
    result = {"status": None, "signal": None, "failed": None, "latencies_ms": []}
    eof = False

    def read_some(timeout):
        nonlocal eof
        if eof:
            return False
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            eof = True
            return False
        out.extend(data)
        return True

    for i, step in enumerate(steps):
        if "send" in step:
            os.write(fd, step["send"].encode())
        elif "expect" in step:
            pattern = re.compile(step["expect"].encode(), re.S)
            deadline = time.monotonic() + step.get("timeout", 20)
            while True:
                m = pattern.search(bytes(out[mark:]))
                if m:
                    mark += m.end()
                    break
                left = deadline - time.monotonic()
                if left <= 0 or eof:
                    result["failed"] = "step %d: %r not seen (%s)" % (
                        i, step["expect"], "EOF" if eof else "timeout")
                    break
                read_some(left)
        elif "resize" in step:
            set_size(fd, step["resize"][0], step["resize"][1])
            os.kill(pid, signal.SIGWINCH)
        elif "sleep" in step:
            end = time.monotonic() + step["sleep"]
            while time.monotonic() < end:
                read_some(end - time.monotonic())
        elif "echo_bench" in step:
            spec = step["echo_bench"]
            ch = spec.get("char", "x").encode()
            for _ in range(spec["count"]):
                # Drain what is pending, then time one keystroke until its echo.
                while read_some(0):
                    pass
                start = len(out)
                t0 = time.perf_counter()
                os.write(fd, ch)
                deadline = time.monotonic() + spec.get("timeout", 5)
                while ch not in out[start:]:
                    left = deadline - time.monotonic()
                    if left <= 0 or eof:
                        result["failed"] = "step %d: no echo" % i
                        break
                    read_some(left)
                if result["failed"]:
                    break
                result["latencies_ms"].append((time.perf_counter() - t0) * 1000.0)
        if result["failed"]:
            break
    # Wait for the exit, reading what is left.
    deadline = time.monotonic() + 30
    status = None
    while True:
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            status = st
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            result["failed"] = result["failed"] or "no exit within 30 s"
            break
        read_some(0.05)
    while read_some(0.05):
        pass
    if os.WIFEXITED(status):
        result["status"] = os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
    result["output"] = out.decode("utf-8", "replace")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
