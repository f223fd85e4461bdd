"""Resident memory of a whole prediction run, sampled while it streams many proteins: flat means the
memory a run needs does not grow with the input."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .timing import rss_mib
from .workers import time_predict


def write_memory_fasta(path: Path, real: Sequence[tuple[str, str]], n: int, max_length: int | None, seed: int = 0) -> int:
    """n residue-shuffled copies of real proteins (their lengths, cropped to max_length), written as FASTA."""
    rng = np.random.default_rng(seed)
    residues = 0
    with open(path, "w") as fh:
        for k in range(n):
            _, seq = real[k % len(real)]
            letters = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
            if max_length and len(letters) > max_length:
                start = int(rng.integers(0, len(letters) - max_length + 1))
                letters = letters[start : start + max_length]
            s = rng.permutation(letters).tobytes().decode("ascii")
            fh.write(f">mem{k}\n{s}\n")
            residues += len(s)
    return residues


def memory_curve(real: Sequence[tuple[str, str]], n: int, max_length: int | None, model: str, dtype: str,
                 threads: int, device: str, batch_tokens: int, work: Path, interval_s: float = 1.0,
                 log=print) -> dict:
    """Stream n proteins through a prediction run (what `dbmtl predict` does), sampling its resident memory
    and how many proteins are finished (lines of predictions.jsonl, read incrementally) every interval_s
    seconds."""
    fasta, out = work / "memory.fasta", work / "memory_out"
    residues = write_memory_fasta(fasta, real, n, max_length)
    samples: list[tuple[float, int, float]] = []
    state = {"done": 0, "offset": 0, "start": time.perf_counter()}

    def poll(pid: int) -> None:
        rss = rss_mib(pid)
        path = out / "predictions.jsonl"
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(state["offset"])
                chunk = fh.read()
            state["offset"] += len(chunk)
            state["done"] += chunk.count(b"\n")
        if rss is not None:
            samples.append((time.perf_counter() - state["start"], state["done"], rss))

    t = time_predict(fasta, out, model, dtype, threads, device, batch_tokens, work, log=work / "memory.log",
                     on_poll=poll, poll_s=interval_s)
    out_bytes = sum(f.stat().st_size for f in out.iterdir())
    shutil.rmtree(out, ignore_errors=True)
    fasta.unlink()
    if not samples:
        return {"proteins": n, "wall_s": t.wall_s, "max_rss_mib": t.max_rss_mib, "samples": [],
                "note": "no /proc: resident memory could not be sampled"}
    arr = np.asarray(samples)
    done, rss = arr[:, 1], arr[:, 2]
    # growth once the first chunks are in: RSS against proteins over the samples after 10% of the run
    late = done >= 0.1 * n
    slope = float(np.polyfit(done[late], rss[late], 1)[0]) if late.sum() >= 3 else None
    q = lambda lo, hi: float(rss[(done >= lo * n) & (done <= hi * n)].max()) if ((done >= lo * n) & (done <= hi * n)).any() else None
    result = {"proteins": n, "residues": residues, "max_length": max_length, "dtype": dtype, "model": model,
              "wall_s": t.wall_s, "proteins_per_s": n / t.wall_s, "max_rss_mib": t.max_rss_mib,
              "output_mib": out_bytes / 2**20,
              "rss_max_10_25pct_mib": q(0.10, 0.25), "rss_max_75_100pct_mib": q(0.75, 1.0),
              "slope_mib_per_10k_proteins": None if slope is None else slope * 1e4,
              "samples": [[round(s, 2), int(d), round(r, 1)] for s, d, r in samples]}
    log(f"memory: {n:,} proteins in {t.wall_s:.0f} s, peak RSS {t.max_rss_mib:.0f} MiB, "
        f"slope {result['slope_mib_per_10k_proteins'] or 0:.2f} MiB per 10k proteins")
    return result
