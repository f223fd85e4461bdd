"""shape_buckets: training micro-batches padded to a few shapes (for GPUs that plan kernels per shape)
score exactly what unpadded ones score."""
import math

import pytest
import torch

from dbmtl.training import Trainer

from helpers import tiny_train_config

ONEPASS = {"preset": "tiny", "kind": "onepass", "conv_kernel": 9, "protein_pooling": "attention", "dropout": 0.0,
           "attention_dropout": 0.0}


def trainer(tmp_path, data, buckets: int, **kw) -> Trainer:
    cfg = tiny_train_config(tmp_path, model=ONEPASS, shape_buckets=buckets, out_dir=str(tmp_path / f"run{buckets}"), **kw)
    return Trainer(cfg, data, progress=False)


def test_padding_to_buckets_changes_no_loss(tmp_path, data):
    tasks = {"ss3": 1.0, "ss8": 1.0, "loc": 1.0, "ms": 0.5}  # LM hides residues drawn over the batch's shape
    plain, padded = (trainer(tmp_path, data, b, tasks=tasks, task_batch_tokens={}) for b in (0, 64))
    batch = padded._micro_batch(padded.slots[0], "labeled")
    rows = plain._micro_batch(plain.slots[0], "labeled")
    assert batch.inputs.shape[1] % 64 == 0 and batch.inputs.shape[0] >= rows.inputs.shape[0]
    assert batch.inputs.shape != rows.inputs.shape  # this draw did need padding
    for _ in range(3):
        a, b = plain.train_step(), padded.train_step()
        assert a.keys() == b.keys() and all(a[t] == pytest.approx(b[t], rel=1e-4) for t in a)
    va, vb = plain.validate(), padded.validate()
    assert all(va[t]["loss"] == pytest.approx(vb[t]["loss"], rel=1e-4) for t in va)


def test_masked_lm_batches_with_filler_rows_stay_finite(tmp_path, data):
    t = trainer(tmp_path, data, 64, tasks={"lm": 0.25, "ss8": 1.0, "loc": 1.0, "ms": 0.5}, lm_objective="masked")
    shapes = set()
    for _ in range(3):
        shapes.add(tuple(t._micro_batch(t.slots[0], "lm").inputs.shape))
        losses = t.train_step()
        assert "lm" in losses and all(math.isfinite(v) for v in losses.values())
    assert all(c % 64 == 0 or c == t.context for _, c in shapes)


def test_only_the_onepass_kind_takes_shape_buckets(tmp_path):
    with pytest.raises(ValueError, match="shape_buckets"):
        tiny_train_config(tmp_path, model={"preset": "tiny", "kind": "encoder"}, shape_buckets=64)
    assert tiny_train_config(tmp_path, model=ONEPASS).shape_buckets == 0  # off unless asked for
