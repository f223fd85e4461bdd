"""Labeled training examples of one task, and micro-batches drawn from them.

Each micro-batch holds examples of one task (chosen by the configured weights), so the loss of every
task is visible at every step. A pool samples a random protein and its neighbours in length order, so
little compute goes to padding. (The LM task streams its corpus instead: `dbmtl.data.corpus`.)
"""
from __future__ import annotations

import numpy as np

from ..tasks import TASKS
from .batching import TokenBudget
from .layouts import Example, Layout


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
        filling = TokenBudget(batch_tokens)
        filling.add(len(self.examples[lo].inputs))
        while True:
            options = ([lo - 1] if lo > 0 else []) + ([hi] if hi < n else [])
            if not options:
                break
            i = options[int(rng.integers(len(options)))]
            if not filling.fits(len(self.examples[i].inputs)):
                break
            filling.add(len(self.examples[i].inputs))
            if i == hi:
                hi += 1
            else:
                lo -= 1
        return self.examples[lo:hi]


def labeled_examples(task_name: str, data, layout: Layout, soft_locations: bool = False) -> list[Example]:
    """All training examples of one labeled task from TrainingData (records lacking that label skipped).
    soft_locations: a protein with several locations (record.locations) gets the location loss of a
    target uniform over them, as one row per location weighted 1/k (rows hold one target each)."""
    task = TASKS[task_name]
    out: list[Example] = []
    if task.kind == "residue":
        for r in data.residue:
            labels = getattr(r, task.field)
            ex = None if labels is None else layout.residue_example(task, r.sequence, labels, r.resolved)
            if ex is not None:  # None: no labels, or too long to train on (the rule lives in the layout)
                out.append(ex)
    elif task.kind == "protein":
        for r in data.protein:
            label = getattr(r, task.field)
            if label is not None:
                out.append(layout.protein_example(task, r.sequence, label))
            elif soft_locations and task_name == "loc" and r.locations:
                for location in r.locations:
                    ex = layout.protein_example(task, r.sequence, location)
                    ex.weights /= len(r.locations)
                    out.append(ex)
    return out
