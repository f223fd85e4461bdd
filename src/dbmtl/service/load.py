"""A bounded load test of a running `dbmtl serve`: N requests from C concurrent clients (threads with
urllib, one connection per request), each client capped in requests and the whole run in time.
Used by tests/service and scripts/load_test.py; meant for a server on this machine (127.0.0.1)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)   # seconds, every answered request
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status -> count (0: no answer)
    seconds: float = 0.0

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status:
            self.latencies.append(latency)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)

    def percentiles(self) -> dict[str, float]:
        """p50 / p95 / p99 / max latency in milliseconds."""
        ms = np.asarray(self.latencies) * 1000
        return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)} | {"max": float(ms.max())}


def post(url: str, body: bytes, content_type: str = "text/plain", timeout: float = 60.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def run_load(url: str, bodies: list[bytes], requests: int, clients: int, max_seconds: float = 300.0,
             timeout: float = 60.0) -> LoadResult:
    """POST bodies[i % len(bodies)] to url, `requests` times in all from `clients` threads; stops early
    when max_seconds have passed."""
    result, lock = LoadResult(), threading.Lock()
    counter = iter(range(requests))
    start = time.perf_counter()
    deadline = start + max_seconds

    def client():
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                status, _ = post(url, bodies[i % len(bodies)], timeout=timeout)
            except OSError:
                status = 0
            with lock:
                result.add(status, time.perf_counter() - t0)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()) + timeout)
    result.seconds = time.perf_counter() - start
    return result


def peak_rss_mib(pid: int) -> float | None:
    """A process's peak resident memory (VmHWM, Linux), MiB; None where /proc does not tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def fasta_bodies(records, per_request: int = 2) -> list[bytes]:
    """Request bodies of `per_request` proteins each, cycling through records (.id, .description, .sequence)."""
    records = list(records)
    bodies = []
    for i in range(0, len(records), per_request):
        text = "".join(f">{r.description or r.id}\n{r.sequence}\n" for r in records[i : i + per_request])
        bodies.append(text.encode())
    return bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())


@contextmanager
def running_server(*options: str, startup_s: float = 120.0, log_path: str | Path | None = None,
                   command: Sequence[str] | None = None, env: dict | None = None,
                   cwd: str | Path | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m dbmtl.cli serve` on 127.0.0.1 and a free port, with this process's dbmtl; yields
    (process, base URL) once /health answers, and stops the server afterwards. Its output goes to
    `log_path` when given (tests read what it logged). `command` (e.g. ["dbmtl"], an installed one), `env`
    and `cwd` start another dbmtl instead, as they say."""
    if env is None:
        import dbmtl

        env = dict(os.environ)
        src = str(Path(dbmtl.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w+") if log_path else tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([*(command or [sys.executable, "-m", "dbmtl.cli"]), "serve", "--host", "127.0.0.1",
                                 "--port", str(port), *options], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                text=True)
        try:
            deadline = time.monotonic() + startup_s
            while True:
                try:
                    get_json(url + "/health", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"dbmtl serve did not start:\n{log.read()[-3000:]}") from None
                    time.sleep(0.2)
            yield proc, url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
