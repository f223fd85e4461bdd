"""What a run trains on: the LM corpus with labeled sequences woven in, per-task token budgets."""
import numpy as np
import pytest

from dbmtl.data.corpus import FastaCorpus, WithLabeledSequences
from dbmtl.training import Trainer

from helpers import DECODER, tiny_train_config


def test_lm_on_labeled_weaves_labeled_sequences_into_the_corpus(data):
    """Each of two streams alternates corpus and labeled sequences; together they read every one of both
    exactly once per epoch; a stream resumed at an offset continues where it stopped."""
    class FirstOfCorpus:  # the real corpus's first 300 sequences, with the corpus stream interface
        def stream(self, index, count, epoch, offset=0, seed=0, workers=0):
            return iter(corpus[index::count][offset:])

    corpus = [s for s, _ in zip(FastaCorpus(data).stream(0, 1, 0), range(300))]
    labeled = sorted({r.sequence for r in data.residue})[:120]
    small = WithLabeledSequences(FirstOfCorpus(), labeled)
    streams = [list(small.stream(i, 2, epoch=0)) for i in range(2)]
    assert sorted(streams[0] + streams[1]) == sorted(corpus + labeled)
    assert streams[0][:4] == [corpus[0], labeled_order(labeled, 0, 2)[0], corpus[2], labeled_order(labeled, 0, 2)[1]]
    assert list(small.stream(1, 2, epoch=0, offset=37)) == streams[1][37:]
    assert list(small.stream(0, 2, epoch=1)) != streams[0]  # labeled order reshuffled per epoch


def labeled_order(labeled, index, count, seed=0, epoch=0):
    return [labeled[i] for i in np.random.default_rng([seed, epoch, 1]).permutation(len(labeled))[index::count]]


def test_a_task_can_have_its_own_token_budget(tmp_path, data):
    cfg = tiny_train_config(tmp_path, model=DECODER, batch_tokens=1000, task_batch_tokens={"loc": 6000},
                            tasks={"ss3": 1, "loc": 1})
    trainer = Trainer(cfg, data, progress=False)
    slot = trainer.slots[0]
    for task, budget in (("loc", 6000), ("ss3", 1000)):
        sizes = [tuple(trainer._micro_batch(slot, task).inputs.shape) for _ in range(20)]
        assert all(rows * longest <= budget for rows, longest in sizes), (task, sizes)
        assert max(rows * longest for rows, longest in sizes) > budget / 2, (task, sizes)  # the budget is used
    with pytest.raises(ValueError, match="not trained"):
        tiny_train_config(tmp_path, tasks={"ss3": 1}, task_batch_tokens={"loc": 6000})
