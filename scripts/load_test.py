"""Load test of `dbmtl serve` on this machine (127.0.0.1 only): starts a server with the bundled model,
sends N requests from C concurrent clients (bounded in count and time), and writes the measured latency
percentiles, throughput and peak memory into docs/service.md between its load-test markers.

    .venv/bin/python scripts/load_test.py                      # 2,000 requests, 50 clients
    .venv/bin/python scripts/load_test.py --requests 300 --clients 20 --out -   # print only
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

from dbmtl.readers.fasta import read_fasta
from dbmtl.service.load import fasta_bodies, get_json, peak_rss_mib, run_load, running_server

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- load-test:start -->", "<!-- load-test:end -->"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--fasta", default=str(ROOT / "examples" / "proteins.fasta"), help="proteins sent, in turn")
    p.add_argument("--per-request", type=int, default=1, help="proteins per request")
    p.add_argument("--threads", type=int, help="the server's torch threads (default: torch's choice)")
    p.add_argument("--max-seconds", type=float, default=1200, help="stop sending after this long")
    p.add_argument("--out", default=str(ROOT / "docs" / "service.md"), help="markdown file to update, or - to print")
    args = p.parse_args()

    records = list(read_fasta(args.fasta))
    bodies = fasta_bodies(records, args.per_request)
    residues = sum(len(r.sequence) for r in records) / len(records) * args.per_request
    options = ["--threads", str(args.threads)] if args.threads else []
    with running_server(*options) as (proc, url):
        load_before = os.getloadavg()[0]
        result = run_load(url + "/predict", bodies, args.requests, args.clients, args.max_seconds)
        batching = get_json(url + "/health")["batching"]
        rss = peak_rss_mib(proc.pid)
    pct = result.percentiles()
    ok = result.statuses.get(200, 0)
    command = "python scripts/load_test.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        START,
        f"Measured {time.strftime('%Y-%m-%d')} with `{command.strip()}` (server and clients on the same "
        f"{os.cpu_count()}-core {platform.machine()} machine, shared with other jobs: load average "
        f"{load_before:.1f} at the start; bundled model, float32, {args.threads or 'default'} torch threads):",
        "",
        "| requests | clients | proteins / request | seconds | requests/s | residues/s | answers | p50 ms | p95 ms | p99 ms | max ms | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        f"| {result.requests} | {args.clients} | {args.per_request} ({residues:.0f} residues) | {result.seconds:.1f} | "
        f"{ok / result.seconds:.1f} | {ok * residues / result.seconds:.0f} | "
        f"{', '.join(f'{n} x {s}' for s, n in sorted(result.statuses.items()))} | {pct['p50']:.0f} | {pct['p95']:.0f} | "
        f"{pct['p99']:.0f} | {pct['max']:.0f} | {rss:.0f} MiB |",
        "",
        f"The batcher made {batching['batches']} predict calls for {batching['requests']} requests (largest: "
        f"{batching['largest_batch']} requests in one call).",
        END,
    ])
    if args.out == "-":
        print(text)
    else:
        out = Path(args.out)
        doc = out.read_text()
        out.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: text, doc, flags=re.S))
        print(text)
    return 0 if result.server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
