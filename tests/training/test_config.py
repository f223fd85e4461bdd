"""Training configs: clear errors, the paper's schedule, the shipped files, the JSON form of the model."""
import json
from pathlib import Path

import pytest

from dbmtl.model import PRESETS, ModelConfig
from dbmtl.tokens import Alphabet
from dbmtl.training import TrainConfig
from dbmtl.training.config import model_from_spec

from helpers import tiny_train_config


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown tasks"):
        TrainConfig(tasks={"ss4": 1.0})
    (tmp_path / "c.json").write_text('{"lr": 1e-3, "bogus": 1}')
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.load(tmp_path / "c.json")


def test_paper_schedule():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.warmup_steps, cfg.decay_steps, cfg.max_steps) == (2e-4, 16_000, 250_000, 500_000)
    assert cfg.lr_at(0) < cfg.lr_at(8_000) < cfg.lr_at(15_999) <= cfg.lr
    assert cfg.lr_at(16_000) == pytest.approx(cfg.lr)
    assert cfg.lr_at(100_000) > cfg.lr_at(200_000) > cfg.lr_at(250_000) == cfg.lr_at(499_999)


def test_every_shipped_config_is_valid():
    """A typo in a config under configs/ must fail here, not hours into a script."""
    paths = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.json"))
    assert len(paths) > 10
    for path in paths:
        cfg = TrainConfig.load(path)
        assert cfg.model.vocab_size == len(Alphabet())
        assert cfg.out_dir.startswith("runs/"), path


def test_a_config_round_trips_through_its_dict(tmp_path):
    cfg = tiny_train_config(tmp_path, model={"preset": "tiny", "kind": "encoder", "conv_kernel": 3},
                      tasks={"ss3": 1.0, "loc": 2.0}, task_batch_tokens={"loc": 4000})
    saved = json.loads(json.dumps(cfg.to_dict()))  # as train_config.json and checkpoints store it
    assert saved["model"] == cfg.model.to_dict()  # resolved: every field, no preset
    assert TrainConfig.from_dict(saved) == cfg


def test_a_preset_model_dict_loads_as_the_preset_plus_overrides():

    old = TrainConfig.from_dict({"model": {"preset": "mini", "kind": "encoder", "conv_kernel": 9}})
    assert old.model == ModelConfig(**{**PRESETS["mini"], "kind": "encoder", "conv_kernel": 9})
    assert old.model == model_from_spec(old.model.to_dict())
    assert TrainConfig.from_dict({"model": {"n_layer": 3}}).model == ModelConfig(n_layer=3)  # no preset
    assert TrainConfig().model == ModelConfig(**PRESETS["paper"])
    with pytest.raises(ValueError, match="preset"):
        model_from_spec({"preset": "huge"})
