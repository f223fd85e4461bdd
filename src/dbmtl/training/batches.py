"""Task pools and token-budget micro-batches for joint training.

Each micro-batch holds examples of one task (chosen by the configured weights), so the loss of every
task is visible at every step. Labeled tasks sample proteins at random from length-sorted pools, taking
neighbours of similar length so little compute goes to padding. The language-model task streams the
corpus (its slot's share of it) and remembers how far it got, so a resumed run continues with the next
sequences.
"""
from __future__ import annotations

from itertools import islice
from typing import Iterator

import numpy as np
import torch

from ..datasets import corpus_sequences
from ..examples import Example, lm_example, masked_lm_example, protein_example, residue_example
from ..tasks import TASKS
from ..tokens import Alphabet


class LabeledPool:
    """Examples of one labeled task, sorted by length (with jitter) for token-budget batching."""

    def __init__(self, examples: list[Example], rng: np.random.Generator):
        if not examples:
            raise ValueError("empty task pool")
        lengths = np.array([len(e.inputs) for e in examples], dtype=float)
        order = np.argsort(lengths + rng.uniform(0, 32, len(lengths)), kind="stable")
        self.examples = [examples[i] for i in order]

    def __len__(self) -> int:
        return len(self.examples)

    def sample(self, rng: np.random.Generator, batch_tokens: int) -> list[Example]:
        """A random protein and its neighbours in length order, as many as fit the token budget."""
        n = len(self.examples)
        lo = int(rng.integers(n))
        hi = lo + 1
        longest = len(self.examples[lo].inputs)
        while True:
            options = ([lo - 1] if lo > 0 else []) + ([hi] if hi < n else [])
            if not options:
                break
            i = options[int(rng.integers(len(options)))]
            longer = max(longest, len(self.examples[i].inputs))
            if longer * (hi - lo + 1) > batch_tokens:
                break
            longest = longer
            if i == hi:
                hi += 1
            else:
                lo -= 1
        return self.examples[lo:hi]


class FastaCorpus:
    """The LM corpus read straight from FASTA files (fine up to a few million sequences; beyond that,
    `dbmtl prepare-corpus` shards). Same `stream` interface as CorpusShards; the order is the files'
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
    masked: rows for the masked-LM objective (encoder) instead of next-residue rows."""

    def __init__(self, corpus, alphabet: Alphabet, context: int, index: int = 0, count: int = 1, seed: int = 0,
                 workers: int = 0, epoch: int = 0, offset: int = 0, masked: bool = False):
        self.corpus = corpus
        self.make_example = masked_lm_example if masked else lm_example
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
        longest = 0
        while True:
            seq = self._next()
            ex = self.make_example(self.alphabet, task, seq, self.context)
            longer = max(longest, len(ex.inputs))
            if batch and longer * (len(batch) + 1) > batch_tokens:
                self._pending = seq  # keep it for the next batch
                self.offset -= 1
                return batch
            batch.append(ex)
            longest = longer


def labeled_examples(task_name: str, data, alphabet: Alphabet, context: int, kind: str = "decoder") -> list[Example]:
    """All training examples of one labeled task from TrainingData (records lacking that label skipped)."""
    task = TASKS[task_name]
    out: list[Example] = []
    if task.kind == "residue":
        for r in data.residue:
            labels = getattr(r, task.field)
            ex = None if labels is None else residue_example(alphabet, task, r.sequence, labels, r.resolved, context, kind)
            if ex is not None:  # None: no labels, or too long to train on (the rule lives in residue_example)
                out.append(ex)
    elif task.kind == "protein":
        for r in data.protein:
            label = getattr(r, task.field)
            if label is not None:
                out.append(protein_example(alphabet, task, r.sequence, label, context, kind))
    return out
