"""The bounded load test's client side, against a small HTTP server in this process: every request counted
with its status, server errors and unanswered ones told apart, the run capped in time, the bodies made
from real FASTA records."""
from __future__ import annotations

import io
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dbmtl.readers.fasta import read_fasta
from dbmtl.service.load import fasta_bodies, peak_rss_mib, post, run_load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


class Answer(BaseHTTPRequestHandler):
    """200 for FASTA, 500 for a body "crash", and a pause of a body "slow" first."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body == b"slow":
            time.sleep(0.3)
        status = 500 if body == b"crash" else 200 if body.startswith(b">") else 422
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/predict"
    server.shutdown()


def test_every_request_is_counted_with_its_status(url):
    result = run_load(url, [b">a\nMKV\n", b"MKV", b"crash"], requests=30, clients=4)
    assert result.statuses == {200: 10, 422: 10, 500: 10} and result.requests == 30
    assert result.server_errors == 10 and len(result.latencies) == 30
    pct = result.percentiles()
    assert 0 < pct["p50"] <= pct["p95"] <= pct["p99"] <= pct["max"] <= 1000 * result.seconds
    assert post(url, b">b\nMK\n") == (200, b"{}")


def test_unanswered_requests_are_server_errors_and_the_run_stops_in_time(url):
    port = url.split(":")[2].split("/")[0]
    nobody = url.replace(port, "1")  # nothing listens on port 1
    refused = run_load(nobody, [b">a\nMKV\n"], requests=5, clients=2)
    assert refused.statuses == {0: 5} and refused.server_errors == 5 and refused.latencies == []
    capped = run_load(url, [b"slow"], requests=1000, clients=2, max_seconds=1.0)
    assert 2 <= capped.requests < 20 and capped.seconds < 1.0 + 0.3 + 2.0  # not the 150 s of all 1,000


def test_bodies_hold_the_records_in_order():
    records = list(read_fasta(EXAMPLES))
    bodies = fasta_bodies(records, per_request=3)
    assert len(bodies) == -(-len(records) // 3)
    again = [r for body in bodies for r in read_fasta(io.StringIO(body.decode()))]
    assert [(r.description, r.sequence) for r in again] == [(r.description, r.sequence) for r in records]


def test_peak_memory_of_a_process():
    assert peak_rss_mib(os.getpid()) > 10  # this process, with numpy loaded
    assert peak_rss_mib(2**22 + 1) is None  # beyond the largest pid Linux gives: no such process
