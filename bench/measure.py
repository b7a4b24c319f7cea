#!/usr/bin/env python3
"""Runs one command and prints what it cost, as one line of numbers:

    wall_s rchar read_bytes user_s sys_s maxrss_kib exit_status

- wall_s: from just before the fork to the command's exit (monotonic clock, ns).
- rchar, read_bytes: the command's /proc/<pid>/io, read when it has exited but before it
  is reaped: os.waitid(..., WNOWAIT) waits for the exit and leaves the zombie, whose io
  counters are final (its threads' added in, and those of every child process it reaped
  itself, e.g. mapillary_tools' workers). rchar = bytes asked of read()-like calls (page
  cache or not); read_bytes = bytes the process made the kernel fetch from the disk
  (readahead included: 0 when everything was in the page cache).
- user_s, sys_s: from wait4()'s rusage (the command and the children it reaped).
- maxrss_kib: GNU time's %M (the largest single process). The command runs under
  /usr/bin/time for that alone: a process forked from this Python would report Python's
  own RSS as its peak (Linux keeps the pre-exec high-water mark). GNU time reaps the
  command, so the command's io counters are in time's, which is the zombie read above
  (time's own reads are a few hundred bytes).

Usage: bench/measure.py OUT_FILE -- CMD [ARG…]   (the line is appended to OUT_FILE; the
command's stdout/stderr are this script's). Standard library only, Linux only.
"""
import os
import subprocess
import sys
import tempfile
import time


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    out, cmd = sys.argv[1], sys.argv[3:]
    rss = tempfile.NamedTemporaryFile(prefix="measure-rss-")
    t0 = time.monotonic_ns()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    t1 = time.monotonic_ns()
    io = {}
    with open(f"/proc/{proc.pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            io[k] = int(v)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = open(rss.name).read().split()
    maxrss = lines[-1] if lines else "0"
    with open(out, "a") as f:
        f.write(
            f"{(t1 - t0) / 1e9:.4f} {io['rchar']} {io['read_bytes']} "
            f"{ru.ru_utime:.3f} {ru.ru_stime:.3f} {maxrss} {proc.returncode}\n"
        )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
