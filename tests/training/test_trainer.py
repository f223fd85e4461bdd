"""Training: a short CPU run lowers every task's loss; each label-input mode and the masked LM train."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dbmtl.inference.predictor import Predictor
from dbmtl.model.checkpoint import load_checkpoint
from dbmtl.tokens import Alphabet
from dbmtl.training import TrainConfig, Trainer

from helpers import DECODER, tiny_train_config


def test_short_run_lowers_loss_of_all_five_tasks(tmp_path, data):
    # per-protein tasks give one label per example, so they are sampled more often to see enough labels
    cfg = tiny_train_config(tmp_path, max_steps=40, decay_steps=40, model={"preset": "tiny", "kind": "encoder"},
                      tasks={"lm": 1, "ss3": 1, "ss8": 1, "loc": 2, "ms": 2})
    trainer = Trainer(cfg, data, progress=False)
    before = trainer.validate()
    assert set(before) == {"lm", "ss3", "ss8", "loc", "ms"}
    after = trainer.fit()
    for task in before:
        assert after[task]["loss"] < before[task]["loss"] - 0.2, (task, before[task], after[task])
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    logged = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert logged[-1]["step"] == 40 and "valid" in logged[-1]


def test_same_seed_same_model(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=3, tasks={"ss8": 1, "ms": 1})
    a = Trainer(cfg, data, out_dir=tmp_path / "a", progress=False)
    a.fit()
    b = Trainer(cfg, data, out_dir=tmp_path / "b", progress=False)
    b.fit()
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def test_noised_decoder_trains_and_predicts_free_running(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=2, tasks={"ss3": 1},
                      model={**DECODER, "label_inputs": "noised", "label_noise": 0.5})
    trainer = Trainer(cfg, data, progress=False)
    trainer.fit()
    model, alphabet, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert model.cfg.label_inputs == "noised" and Predictor(model, alphabet).residue_mode == "free"


def test_scheduled_sampling_decoder_trains_and_predicts_free_running(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=3, tasks={"ss3": 1, "loc": 1},
                      model={**DECODER, "label_inputs": "sampled", "label_noise": 0.5})
    trainer = Trainer(cfg, data, progress=False)
    before = trainer.validate()
    after = trainer.fit()
    assert after["ss3"]["loss"] < before["ss3"]["loss"]
    model, alphabet, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert model.cfg.label_inputs == "sampled" and Predictor(model, alphabet).residue_mode == "free"


def test_masked_lm_encoder_trains_on_hidden_residues(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=30, decay_steps=30, tasks={"lm": 1.0}, lm_objective="masked",
                      model={"preset": "tiny", "kind": "encoder"}, eval_every=30, valid_examples=32)
    trainer = Trainer(cfg, data, progress=False)
    before = trainer.validate()["lm"]["loss"]
    after = trainer.fit()["lm"]["loss"]
    # untrained: about log(56), a guess over the whole vocabulary; after 30 steps below log(20) = 3.0, a
    # uniform guess over amino acids (the composition alone gives about 2.9; context needs far longer)
    assert before > 3.8 and after < 2.99
    with pytest.raises(ValueError, match="encoder"):
        Trainer(tiny_train_config(tmp_path, model=DECODER, tasks={"lm": 1.0}, lm_objective="masked"), data, progress=False)


def test_paper_config_runs_a_step_on_cpu(tmp_path, data):
    """configs/paper.json is the paper's model and schedule; here it only has to run (a GPU job at scale)."""
    cfg = TrainConfig.load(Path(__file__).resolve().parents[2] / "configs" / "paper.json")
    assert (cfg.lr, cfg.warmup_steps, cfg.decay_steps, cfg.max_steps) == (2e-4, 16_000, 250_000, 500_000)
    cfg = replace(cfg, batch_tokens=1200, grad_accum=1, valid_examples=2, threads=1, tasks={"ss3": 1.0, "loc": 1.0})
    trainer = Trainer(cfg, data, out_dir=tmp_path / "paper", progress=False)
    assert trainer.model.cfg.n_layer == 12 and trainer.model.cfg.label_inputs == "teacher"
    assert trainer.model.cfg.kind == "decoder" and cfg.lm_objective == "causal"
    before = [p.detach().clone() for p in list(trainer.model.parameters())[:3]]
    losses = trainer.train_step()
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_a_vocab_size_other_than_the_alphabets_is_a_clear_error(tmp_path, data):
    cfg = tiny_train_config(tmp_path, model={"preset": "tiny", "vocab_size": len(Alphabet()) + 1})
    with pytest.raises(ValueError, match="vocab_size"):
        Trainer(cfg, data, progress=False)
