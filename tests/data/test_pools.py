"""Labeled training examples of one task from real records (those without the label, or too long for the
layout, left out), and a pool's micro-batches: a random protein and its neighbours in length order."""
from __future__ import annotations

import numpy as np
import pytest

from dbmtl.data.catalog import SS_DIR, protein_test_sets, residue_test_sets
from dbmtl.data.layouts import layout_for
from dbmtl.data.pools import LabeledPool, labeled_examples
from dbmtl.readers.secondary_structure import read_flip
from dbmtl.tasks import TASKS
from dbmtl.tokens import Alphabet

from helpers import need


class Data:
    """The two record lists of TrainingData, all labeled_examples reads."""

    def __init__(self, residue, protein):
        self.residue, self.protein = residue, protein


@pytest.fixture(scope="module")
def data(data_dir):
    """TS115 (SS3 and SS8, some longer than a decoder row holds), FLIP proteins (SS3 only) and DeepLoc test
    proteins (a location each, a membrane label for some)."""
    flip = [r for _, r in zip(range(60), read_flip(need(data_dir, f"{SS_DIR}/flip")))]
    return Data(residue_test_sets(data_dir)["TS115"] + flip, protein_test_sets(data_dir)["DeepLoc"][::5])


@pytest.fixture(scope="module")
def layout():
    return layout_for("decoder", Alphabet(), 1024)


def test_examples_leave_out_proteins_without_the_label_or_too_long(data, layout):
    limit = layout.max_residue_length()
    fits = [r for r in data.residue if len(r.sequence) <= limit]
    assert len(fits) < len(data.residue)  # the length rule is exercised
    assert len(labeled_examples("ss3", data, layout)) == len(fits)
    assert len(labeled_examples("ss8", data, layout)) == sum(r.ss8 is not None for r in fits) < len(fits)
    alphabet, ms = layout.alphabet, TASKS["ms"]
    labeled = [r for r in data.protein if r.membrane is not None]
    assert 0 < len(labeled) < len(data.protein)
    examples = labeled_examples("ms", data, layout)
    assert len(examples) == len(labeled)
    for ex, r in zip(examples, labeled):  # one scored target each: the protein's own label
        assert ex.targets[ex.weights > 0].tolist() == [alphabet.index[ms.label_token(r.membrane)]]


def test_a_sample_is_neighbours_in_length_order_within_the_budget(data, layout):
    rng = np.random.default_rng(0)
    pool = LabeledPool(labeled_examples("ss3", data, layout), rng)
    lengths = [len(e.inputs) for e in pool.examples]
    assert all(n >= longest - 32 for n, longest in zip(lengths, np.maximum.accumulate(lengths)))  # sorted, but jittered
    place = {id(e): i for i, e in enumerate(pool.examples)}
    sizes = set()
    for _ in range(100):
        batch = pool.sample(rng, 4000)
        where = [place[id(e)] for e in batch]
        assert where == list(range(where[0], where[0] + len(batch)))  # neighbours in the pool's order
        assert len(batch) == 1 or max(len(e.inputs) for e in batch) * len(batch) <= 4000
        sizes.add(len(batch))
    assert len(sizes) > 1
    with pytest.raises(ValueError, match="empty"):
        LabeledPool([], rng)
