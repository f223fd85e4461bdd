"""The language-model corpus: unlabeled sequences streamed, never held in memory as a whole.

Every corpus follows one protocol, `Corpus.stream(index, count, epoch, offset, seed, workers)`: the
sequences of stream `index` of `count` (each gradient-accumulation slot reads its own share) in epoch
`epoch`, starting after `offset` of them. A stream is a function of those arguments alone, so (epoch,
offset) is a complete position to resume from. Three corpora follow it: `FastaCorpus` (FASTA files read
in order), `CorpusShards` (memory-mapped shards from `dbmtl prepare-corpus`, `dbmtl.data.shards`) and
`WithLabeledSequences` (a corpus with the labeled training proteins woven in). `CorpusStream` turns a
corpus stream into token-budget micro-batches of LM examples and remembers its position.
"""
from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from ..readers.fasta import SkipReport, read_fasta
from ..readers.leakage import LeakageGuard, sequence_key
from ..tasks import TASKS
from ..tokens import Alphabet
from .batching import TokenBudget
from .catalog import TrainingData, in_holdout
from .layouts import Example, lm_example, masked_lm_example


class Corpus(Protocol):
    def stream(self, index: int, count: int, epoch: int, offset: int = 0, seed: int = 0,
               workers: int = 0) -> Iterator[str]:
        """Stream `index` of `count` in `epoch`, without its first `offset` sequences."""


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

def corpus_sequences(data: TrainingData, holdout_percent: int = 2, valid: bool = False) -> Iterator[str]:
    """Stream LM sequences; a digest-chosen `holdout_percent` is the LM validation part."""
    for seq in stream_corpus(data.corpus_paths, guard=data.guard):
        if in_holdout(seq, holdout_percent) == valid:
            yield seq


class FastaCorpus:
    """The LM corpus read straight from FASTA files (fine up to a few million sequences; beyond that,
    `dbmtl prepare-corpus` shards). A `Corpus`; the order is the files'
    order in every epoch, and a resumed stream re-reads the files up to its offset."""

    def __init__(self, data, part: str = "train"):
        self.data, self.part = data, part

    def stream(self, index: int, count: int, epoch: int, offset: int = 0, seed: int = 0, workers: int = 0) -> Iterator[str]:
        mine = islice(corpus_sequences(self.data, valid=self.part == "valid"), index, None, count)
        return islice(mine, offset, None)


class WithLabeledSequences:
    """An LM corpus with the labeled training proteins' sequences woven in (language modelling on
    unlabeled and labeled sequences): one of each in turn while both last. The labeled ones come in a
    seeded order per epoch, and stream `index` of `count` takes every count-th of them, as for the
    corpus, so slots still read disjoint shares and a stream is a function of (index, epoch)."""

    def __init__(self, corpus, sequences: list[str]):
        self.corpus, self.sequences = corpus, sequences

    def stream(self, index: int, count: int, epoch: int, offset: int = 0, seed: int = 0, workers: int = 0) -> Iterator[str]:
        order = np.random.default_rng([seed, epoch, 1]).permutation(len(self.sequences))[index::count]
        sources = [iter(self.corpus.stream(index, count, epoch, 0, seed, workers)), (self.sequences[i] for i in order)]

        def woven():
            while sources:
                for it in list(sources):
                    try:
                        yield next(it)
                    except StopIteration:
                        sources.remove(it)

        return islice(woven(), offset, None)


class CorpusStream:
    """LM examples from one stream of a corpus (stream `index` of `count`: each gradient-accumulation slot
    reads its own). Its place is (epoch, offset): sequences consumed in the current pass.
    masked: rows for the masked-LM objective (encoder) instead of next-residue rows; make_example, when
    given, builds the rows instead (called as masked_lm_example is)."""

    def __init__(self, corpus, alphabet: Alphabet, context: int, index: int = 0, count: int = 1, seed: int = 0,
                 workers: int = 0, epoch: int = 0, offset: int = 0, masked: bool = False, make_example=None):
        self.corpus = corpus
        self.make_example = make_example or (masked_lm_example if masked else lm_example)
        self.alphabet = alphabet
        self.context = context
        self.index, self.count, self.seed, self.workers = index, count, seed, workers
        self.epoch = epoch
        self.offset = offset
        self._it = self._open()
        self._pending: str | None = None

    def _open(self) -> Iterator[str]:
        return self.corpus.stream(self.index, self.count, self.epoch, self.offset, self.seed, self.workers)

    def state(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def _next(self) -> str:
        if self._pending is not None:
            seq, self._pending = self._pending, None
            self.offset += 1
            return seq
        try:
            seq = next(self._it)
        except StopIteration:
            self.epoch += 1
            self.offset = 0
            self._it = self._open()
            try:
                seq = next(self._it)
            except StopIteration:
                raise ValueError("the language-model corpus is empty") from None
        self.offset += 1
        return seq

    def sample(self, batch_tokens: int) -> list[Example]:
        task = TASKS["lm"]
        batch: list[Example] = []
        filling = TokenBudget(batch_tokens)
        while True:
            seq = self._next()
            ex = self.make_example(self.alphabet, task, seq, self.context)
            if not filling.fits(len(ex.inputs)):
                self._pending = seq  # keep it for the next batch
                self.offset -= 1
                return batch
            batch.append(ex)
            filling.add(len(ex.inputs))
