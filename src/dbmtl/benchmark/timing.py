"""Timing: the best wall time of a call in this process, and commands run as timed child processes with
their own CPU time and peak resident memory (from wait4)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence


def sync(device: str) -> None:
    """Wait for queued GPU work, so that a wall-clock reading covers it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], device: str, min_time: float = 1.0, max_repeats: int = 5) -> float:
    """Best wall time of fn() over repeats (after one untimed call), at least one timed run, stopping once
    `min_time` seconds were spent. The best, not the mean: the other load on a shared machine only ever
    adds time."""
    fn()
    sync(device)
    best, spent, n = math.inf, 0.0, 0
    while n < max_repeats and (n == 0 or spent < min_time):
        t = time.perf_counter()
        fn()
        sync(device)
        dt = time.perf_counter() - t
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def rss_mib(pid: int | str = "self") -> float | None:
    """Resident memory of a process now, from /proc (None without /proc)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Timed:
    """One command: wall seconds, CPU seconds (user + system), peak resident memory in MiB, exit status."""
    wall_s: float
    cpu_s: float
    max_rss_mib: float
    returncode: int


# A tiny interpreter (standard library only) between us and the measured command. It forks the command,
# waits for it with wait4 and reports its wall time, CPU time and peak RSS. Why not fork the command from
# here: Linux carries the RSS of the process that forks over exec into the child's ru_maxrss, so a child of
# this (large) process would report at least our memory; a child of the wrapper starts from ~10 MB.
_WRAPPER = r"""
import json, os, subprocess, sys, time
report, pidfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.perf_counter()
try:
    proc = subprocess.Popen(cmd)
except OSError as exc:
    print(f"cannot run {cmd[0]}: {exc}", file=sys.stderr)
    json.dump({"wall_s": 0.0, "cpu_s": 0.0, "max_rss_mib": 0.0, "returncode": 127}, open(report, "w"))
    sys.exit(0)
with open(pidfile + ".tmp", "w") as fh:
    fh.write(str(proc.pid))
os.replace(pidfile + ".tmp", pidfile)
_, status, usage = os.wait4(proc.pid, 0)
json.dump({"wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
           "max_rss_mib": usage.ru_maxrss / 1024, "returncode": os.waitstatus_to_exitcode(status)}, open(report, "w"))
"""


def run_timed(cmd: Sequence[str], cwd: str | Path | None = None, log: Path | None = None,
              env: dict | None = None, on_poll=None, poll_s: float = 0.5) -> Timed:
    """Run a command to completion: wall seconds, CPU seconds and peak resident memory (ru_maxrss, over the
    command and the processes it waited for) of that command alone. on_poll(pid) is called with the
    command's pid every poll_s seconds while it runs (used to sample its memory)."""
    with tempfile.TemporaryDirectory(prefix="dbmtl-timed-") as tmp:
        report, pidfile = Path(tmp) / "report.json", Path(tmp) / "pid"
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            proc = subprocess.Popen([sys.executable, "-S", "-c", _WRAPPER, str(report), str(pidfile), *map(str, cmd)],
                                    cwd=cwd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                    env=env)
            if on_poll is None:
                proc.wait()
            else:
                child = None
                while proc.poll() is None:
                    if child is None and pidfile.exists():
                        child = int(pidfile.read_text())
                    if child is not None:
                        on_poll(child)
                    time.sleep(poll_s)
        finally:
            if log:
                out.close()
        if not report.exists():
            return Timed(0.0, 0.0, 0.0, proc.returncode or 1)
        r = json.loads(report.read_text())
    return Timed(r["wall_s"], r["cpu_s"], r["max_rss_mib"], r["returncode"])
