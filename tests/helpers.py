"""Small shared builders for tests: a random-weight tiny model and a small real-data training set."""
from __future__ import annotations

import pytest
import torch

from dbmtl.data.catalog import TrainingData, load_training_data
from dbmtl.model import PRESETS, Transformer, ModelConfig
from dbmtl.inference.predictor import Predictor
from dbmtl.tokens import Alphabet


def tiny_predictor(label_inputs: str = "placeholder", seed: int = 0, context: int = 1024, kind: str = "decoder",
                   conv_kernel: int = 0) -> Predictor:
    torch.manual_seed(seed)
    alphabet = Alphabet()
    cfg = ModelConfig(vocab_size=len(alphabet), **{**PRESETS["tiny"], "context": context}, label_inputs=label_inputs,
                      kind=kind, conv_kernel=conv_kernel, protein_pooling="cls")
    return Predictor(Transformer(cfg).eval(), alphabet, batch_tokens=4096)


def small_training_data(data_dir, n_residue: int = 400, n_protein: int = 600) -> TrainingData:
    """A real-data subset: the first proteins of each source, both splits, plus the streamed corpus."""
    full = load_training_data(data_dir)
    residue = [r for r in full.residue if r.split == "train" and len(r.sequence) < 300][:n_residue]
    residue += [r for r in full.residue if r.split == "valid" and r.ss8 is not None][:24]
    residue += [r for r in full.residue if r.split == "valid" and r.ss8 is None][:24]
    protein = [r for r in full.protein if r.split == "train" and len(r.sequence) < 400][:n_protein]
    protein += [r for r in full.protein if r.split == "train" and r.membrane and len(r.sequence) < 400][:200]
    protein += [r for r in full.protein if r.split == "valid" and r.membrane][:24]
    protein += [r for r in full.protein if r.split == "valid" and not r.membrane][:24]
    return TrainingData(residue, protein, full.corpus_paths, full.guard)


# tiny models of the shipped kind and of the paper's decoder, as training configs name them
ONEPASS = {"preset": "tiny", "kind": "onepass", "conv_kernel": 3, "protein_pooling": "attention", "dropout": 0.1}
DECODER = {"preset": "tiny", "kind": "decoder", "dropout": 0.1}


def tiny_train_config(tmp_path, **kw):
    """A TrainConfig for seconds-long CPU runs on small_training_data, written as a config file would be:
    a tiny onepass model (the shipped kind) unless `model` says otherwise, on the data small_training_data
    reads (the localization subsets and the MMseqs2 corpus)."""
    from dbmtl.training import TrainConfig

    base = dict(model=ONEPASS, localization_sources="subsets", lm_sources="mmseqs2", lr=3e-3, warmup_steps=5,
                decay_steps=60, max_steps=60, batch_tokens=3000, task_batch_tokens={}, grad_accum=1, eval_every=1000,
                checkpoint_every=1000, log_every=5, valid_examples=24, seed=0, threads=1, out_dir=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig.from_dict(base)


def straight_and_resumed(cfg, data, tmp_path, stop: int):
    """(a run to cfg.max_steps, a run stopped at `stop` then resumed from its checkpoint to the end)."""
    from dbmtl.training import Trainer

    straight = Trainer(cfg, data, out_dir=tmp_path / "a", progress=False)
    straight.fit()
    Trainer(cfg, data, out_dir=tmp_path / "b", progress=False).fit(max_steps=stop)
    resumed = Trainer(cfg, data, out_dir=tmp_path / "b", progress=False)
    resumed.resume()
    assert resumed.step == stop
    resumed.fit()
    return straight, resumed


def need(data_dir, rel: str):
    """The path of a shared data file; the test is skipped when the data folder lacks it."""
    path = data_dir / rel
    if not path.exists():
        pytest.skip(f"{rel} not in the data folder")
    return path
