"""`predict_fasta`: a FASTA file of any size -> prediction files, in chunks, resumable.

The loop the CLI, the benchmark and the web service share: records are read strictly and streamed, each
chunk of `chunk_size` proteins is predicted and appended to the output files and flushed, so a crash or a
bad record loses nothing already written; `resume` keeps the finished proteins of an earlier run and
does the rest.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..readers.fasta import FastaFormatError, SkipReport, read_fasta
from ..tasks import OUTPUT_TASKS
from .predictor import Predictor
from .writers import PredictionWriter, finished_ids


@dataclass
class PredictionRun:
    """What a predict_fasta call did: proteins written now, proteins kept from an earlier run, records
    skipped (with skip_invalid)."""

    written: int = 0
    resumed: int = 0
    skipped: SkipReport = field(default_factory=SkipReport)


def check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    unknown = set(tasks) - set(OUTPUT_TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; choose from {','.join(OUTPUT_TASKS)}")
    return tuple(tasks)


def predict_fasta(predictor: Predictor, fasta: str | Path, out_dir: str | Path,
                  tasks: Sequence[str] = OUTPUT_TASKS, chunk_size: int = 256, resume: bool = False,
                  skip_invalid: bool = False, on_chunk: Callable[[int], None] | None = None) -> PredictionRun:
    """Predict every protein of `fasta` into `out_dir` (residues.tsv, proteins.tsv, predictions.jsonl).
    `on_chunk(n)` is called after each chunk of n proteins is on disk (progress bars). A bad record stops
    the run with FastaFormatError after writing every protein read before it."""
    tasks = check_tasks(tasks)
    run = PredictionRun()
    done_before = finished_ids(out_dir) if resume else set()
    run.resumed = len(done_before)
    chunk: list = []
    with PredictionWriter(out_dir, tasks, append=bool(done_before)) as writer:
        def flush():
            writer.write(predictor.predict(chunk, tasks=tasks))
            if on_chunk is not None:
                on_chunk(len(chunk))
            chunk.clear()

        try:
            for record in read_fasta(fasta, skip_invalid=skip_invalid, report=run.skipped):
                if record.id in done_before:
                    continue
                chunk.append(record)
                if len(chunk) >= chunk_size:
                    flush()
        except FastaFormatError:
            if chunk:
                flush()  # keep every protein read before the bad record
            print(f"dbmtl predict: {writer.count} proteins written to {Path(out_dir)} before the error", file=sys.stderr)
            raise
        if chunk:
            flush()
        run.written = writer.count
    return run
