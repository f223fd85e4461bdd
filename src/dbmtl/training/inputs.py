"""The data a run trains and validates on, built from TrainingData and the config: one pool of labeled
examples per task, the LM corpus, the micro-batch slots that draw from them, and the one rule that draws
the fixed validation sample of every kind."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..data.catalog import TrainingData
from ..data.corpus import CorpusStream, FastaCorpus, WithLabeledSequences
from ..data.layouts import Layout
from ..data.pools import LabeledPool, labeled_examples
from ..data.shards import CorpusShards
from ..tokens import Alphabet
from .config import TrainConfig


def labeled_pools(tasks: dict[str, float], train: TrainingData, layout: Layout, seed: int) -> dict[str, LabeledPool]:
    """One pool per labeled task in `tasks` (in that order: they share one random stream)."""
    pools = {}
    build_rng = np.random.default_rng(seed)
    for name in tasks:
        if name == "lm":
            continue
        examples = labeled_examples(name, train, layout, soft_locations=True)
        if not examples:
            raise ValueError(f"task {name!r} has no training examples in the data")
        pools[name] = LabeledPool(examples, build_rng)
    return pools


def lm_corpus(cfg: TrainConfig, data: TrainingData, train: TrainingData):
    """The LM task's training sequences: prepared shards, else the data folder's FASTA, optionally with the
    labeled training proteins woven in."""
    if cfg.corpus:
        corpus = CorpusShards(cfg.corpus, "train")
    elif data.corpus_paths:
        corpus = FastaCorpus(data, "train")
    else:
        raise ValueError("task 'lm' has a weight but no corpus files were found")
    if cfg.lm_on_labeled:
        labeled = sorted({r.sequence for r in train.residue} | {r.sequence for r in train.protein})
        corpus = WithLabeledSequences(corpus, labeled)
    return corpus


@dataclass
class Slot:
    """One of the global batch's `grad_accum` micro-batch slots: its own random stream (which proteins,
    which task) and its own share of the LM corpus. A process computes the slots it owns."""

    index: int
    rng: np.random.Generator
    lm: CorpusStream | None

    def state(self) -> dict:
        """The slot's data position, as a checkpoint stores it."""
        return {"index": self.index, "rng": self.rng.bit_generator.state, "lm": self.lm.state() if self.lm else None}


def make_slot(cfg: TrainConfig, index: int, corpus, alphabet: Alphabet, context: int, masked: bool,
              state: dict | None = None, make_example=None) -> Slot:
    """Slot `index` at its start, or at the position `state` (from `Slot.state`) records; make_example:
    how its LM rows are built, when not as `masked` says (see CorpusStream)."""
    rng = np.random.default_rng([cfg.seed, index])
    if state is not None:
        rng.bit_generator.state = state["rng"]
    lm = None
    if corpus is not None:
        lm = CorpusStream(corpus, alphabet, context, index=index, count=cfg.grad_accum, seed=cfg.seed,
                          workers=cfg.data_workers, masked=masked, make_example=make_example,
                          **((state or {}).get("lm") or {}))
    return Slot(index, rng, lm)


def lm_validation_rows(cfg: TrainConfig, data: TrainingData, alphabet: Alphabet, context: int, masked: bool = False,
                       make_example=None) -> list:
    """The first `valid_examples` LM rows of the corpus's validation part (rows as CorpusStream builds them)."""
    corpus = CorpusShards(cfg.corpus, "valid") if cfg.corpus else FastaCorpus(data, "valid")
    stream = CorpusStream(corpus, alphabet, context, seed=cfg.validation_seed, masked=masked, make_example=make_example)
    rows: list = []
    while len(rows) < cfg.valid_examples and stream.epoch == 0:
        rows += stream.sample(cfg.batch_tokens)
    return rows[: cfg.valid_examples]


def validation_sample(cfg: TrainConfig, tasks: dict[str, float], candidates: Callable[[str], list],
                      lm_rows: Callable[[], list], build: Callable[[str, object], object] | None = None) -> dict[str, list]:
    """A fixed random sample (its own seed, `cfg.validation_seed`) of each labeled task's validation
    candidates, `cfg.valid_examples` of them in their original order, made into rows by `build` (None:
    left out); "lm" takes `lm_rows()`. Files are often sorted by class, so the first N would not be
    representative. Tasks without a row are left out."""
    pick = np.random.default_rng(cfg.validation_seed + 1)
    out = {}
    for name in tasks:
        if name == "lm":
            out[name] = lm_rows()
            continue
        items = candidates(name)
        chosen = sorted(pick.choice(len(items), size=min(cfg.valid_examples, len(items)), replace=False)) if items else []
        rows = [items[i] if build is None else build(name, items[i]) for i in chosen]
        out[name] = [row for row in rows if row is not None]
    return {k: v for k, v in out.items() if v}
