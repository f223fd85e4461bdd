"""Leakage guard: no training or language-model record may be identical to an evaluation protein."""
from __future__ import annotations

import hashlib
import logging
from typing import Iterable, Iterator, TypeVar

log = logging.getLogger("dbmtl")
R = TypeVar("R")


def sequence_key(sequence: str) -> bytes:
    """8-byte digest: a set of these stays small even for tens of millions of sequences."""
    return hashlib.blake2b(sequence.upper().encode(), digest_size=8).digest()


class LeakageGuard:
    def __init__(self, evaluation_sequences: Iterable[str] = ()):
        self.keys = {sequence_key(s) for s in evaluation_sequences}
        self.removed: dict[str, int] = {}

    def add(self, sequences: Iterable[str]) -> None:
        self.keys.update(sequence_key(s) for s in sequences)

    def is_leak(self, sequence_or_key: str | bytes) -> bool:
        key = sequence_or_key if isinstance(sequence_or_key, bytes) else sequence_key(sequence_or_key)
        return key in self.keys

    def filter(self, records: Iterable[R], name: str) -> Iterator[R]:
        """Yield records whose .sequence is not an evaluation sequence; count and log the rest."""
        removed = 0
        for rec in records:
            if sequence_key(rec.sequence) in self.keys:
                removed += 1
                continue
            yield rec
        self.removed[name] = self.removed.get(name, 0) + removed
        log.info("leakage guard: removed %d %s records identical to evaluation proteins", removed, name)
