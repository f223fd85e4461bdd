"""Unlabeled sequences for language modelling, streamed: never held in memory as a whole."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from .fasta import SkipReport, read_fasta
from .leakage import LeakageGuard, sequence_key


def stream_corpus(
    paths: Sequence[str | Path],
    guard: LeakageGuard | None = None,
    report: SkipReport | None = None,
    deduplicate: bool = True,
) -> Iterator[str]:
    """Yield sequences from FASTA(.gz) files in order, skipping invalid records, exact repeats and leaks.

    Ids are not checked for duplicates (corpora merge files whose accessions overlap); sequences are
    deduplicated through 8-byte digests.
    """
    seen: set[bytes] = set()
    removed = 0
    for path in paths:
        for rec in read_fasta(path, skip_invalid=True, report=report, check_duplicates=False):
            key = sequence_key(rec.sequence)
            if deduplicate:
                if key in seen:
                    continue
                seen.add(key)
            if guard is not None and guard.is_leak(key):
                removed += 1
                continue
            yield rec.sequence
    if guard is not None:
        guard.removed["lm"] = guard.removed.get("lm", 0) + removed
