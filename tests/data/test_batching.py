"""The one token-budget rule: prediction batches, training pools and the LM stream all follow it."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dbmtl.data.batching import TokenBudget, token_budget_batches
from dbmtl.data.corpus import CorpusStream
from dbmtl.data.layouts import EncoderLayout
from dbmtl.data.pools import LabeledPool
from dbmtl.tasks import TASKS
from dbmtl.tokens import Alphabet


def test_token_budget_batches_respect_budget():
    lengths = [5, 100, 40, 40, 3, 250, 90]
    batches = token_budget_batches(lengths, 200)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 200


@given(st.lists(st.integers(1, 600), min_size=1, max_size=60), st.integers(1, 3000))
def test_every_index_once_longest_first_and_within_budget(lengths, budget):
    batches = token_budget_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= budget
    # greedy: the next batch's first row would not have fitted the one before
    for b, nxt in zip(batches, batches[1:]):
        assert max(lengths[i] for i in b) * (len(b) + 1) > budget


def test_a_row_longer_than_the_budget_still_gets_a_batch_of_its_own():
    filling = TokenBudget(10)
    assert filling.fits(50)
    filling.add(50)
    assert not filling.fits(1)
    assert token_budget_batches([50, 3], 10) == [[0], [1]]


def test_pool_samples_and_lm_batches_keep_the_budget():
    alphabet = Alphabet()
    layout = EncoderLayout(alphabet, 1024)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), int(n))) for n in rng.integers(20, 400, 200)]
    pool = LabeledPool([layout.protein_example(TASKS["loc"], s, "Nucleus") for s in seqs], rng)
    for _ in range(50):
        batch = pool.sample(rng, 2000)
        assert len(batch) == 1 or max(len(e.inputs) for e in batch) * len(batch) <= 2000

    class Listed:
        def stream(self, index, count, epoch, offset=0, seed=0, workers=0):
            return iter(seqs[index::count][offset:])

    stream = CorpusStream(Listed(), alphabet, 1024)
    seen = 0
    for _ in range(20):
        batch = stream.sample(2000)
        assert len(batch) == 1 or max(len(e.inputs) for e in batch) * len(batch) <= 2000
        seen += len(batch)
    assert seen > 20
