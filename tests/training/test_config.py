"""Training configs: clear errors, defaults that are the shipped model's recipe, the paper's schedule, the
config files, the JSON form of the model, saved files that keep their meaning."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from dbmtl.model import PRESETS, ModelConfig, Transformer
from dbmtl.model.checkpoint import DEFAULT_MODEL, load_checkpoint, save_checkpoint
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


ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
CONFIG_FILES = sorted(CONFIGS.rglob("*.json")) + sorted((ROOT / "experiments" / "configs").rglob("*.json"))


def test_the_defaults_are_the_shipped_model_and_its_recipe():
    bundled = ModelConfig.from_saved(json.loads((DEFAULT_MODEL / "config.json").read_text())["model"])
    # the bundled model's architecture; its last lineage stage (v5a) trained without attention dropout, a
    # training setting that changes no prediction, and the only field where it differs from the defaults
    assert bundled.attention_dropout == 0.0 and ModelConfig().attention_dropout is None
    assert ModelConfig() == replace(bundled, attention_dropout=None)
    cfg = TrainConfig()
    assert cfg.model == ModelConfig() and cfg.model.kind == "onepass"
    assert cfg.lm_objective == "masked" and cfg.task_batch_tokens == {"lm": 4096}
    assert cfg.data_settings() == {"localization_sources": "deeploc1+deeploc2", "lm_sources": "mmseqs2+uniref",
                                   "ss_sources": "flip+cullpdb"}
    # the recipe from scratch: the onepass run of the equal-compute selection, with attention pooling
    recipe = TrainConfig.load(ROOT / "experiments" / "configs" / "selection" / "onepass_equal.json")
    assert replace(recipe, model=replace(recipe.model, protein_pooling="attention"), threads=None,
                   out_dir=cfg.out_dir) == cfg


def test_the_paper_kinds_keep_their_own_defaults():
    for kind in ("decoder", "encoder"):
        model = ModelConfig(kind=kind)
        assert (model.protein_pooling, model.conv_kernel) == ("cls", 0)
        assert TrainConfig(model=model).lm_objective == "causal"
    assert ModelConfig(**PRESETS["paper"]).kind == "decoder"
    assert TrainConfig(tasks={"ss3": 1.0}).task_batch_tokens == {}  # no LM, no LM budget


def test_saved_files_without_newer_keys_keep_what_they_meant(tmp_path):
    """A model folder or checkpoint written before a key existed (or before the defaults became the
    shipped model's) loads as what it was: here a decoder without dropout, trained on the paper's schedule."""
    old_model = {"vocab_size": len(Alphabet()), "n_layer": 2, "n_head": 2, "n_embd": 64, "context": 1024}
    meant = ModelConfig(n_layer=2, n_head=2, n_embd=64, dropout=0.0, kind="decoder")
    assert meant.protein_pooling == "cls" and meant.conv_kernel == 0
    assert ModelConfig.from_saved(old_model) == meant
    folder = save_checkpoint(tmp_path / "old", Transformer(meant), Alphabet())
    (folder / "config.json").write_text(json.dumps({"model": old_model}))
    assert load_checkpoint(folder)[0].cfg == meant
    saved = TrainConfig.from_saved({"model": old_model, "max_steps": 10})
    assert saved.model == meant and saved.max_steps == 10 and saved.lm_objective == "causal"
    assert (saved.lr, saved.warmup_steps, saved.grad_accum, saved.batch_tokens) == (2e-4, 16_000, 96, 32_768)
    assert saved.tasks == {"lm": 1.0, "ss3": 1.0, "ss8": 1.0, "loc": 1.0, "ms": 1.0}
    assert saved.data_settings() == {"localization_sources": "subsets", "lm_sources": "mmseqs2",
                                     "ss_sources": "flip+cullpdb"}


def test_every_config_file_names_its_model_kind():
    """So that no file changes meaning when a default does."""
    for path in CONFIG_FILES:
        assert "kind" in json.loads(path.read_text())["model"], path


def test_paper_schedule():
    cfg = TrainConfig.load(CONFIGS / "paper.json")
    assert (cfg.lr, cfg.warmup_steps, cfg.decay_steps, cfg.max_steps) == (2e-4, 16_000, 250_000, 500_000)
    assert cfg.lr_at(0) < cfg.lr_at(8_000) < cfg.lr_at(15_999) <= cfg.lr
    assert cfg.lr_at(16_000) == pytest.approx(cfg.lr)
    assert cfg.lr_at(100_000) > cfg.lr_at(200_000) > cfg.lr_at(250_000) == cfg.lr_at(499_999)


def test_every_shipped_config_is_valid():
    """A typo in a config under configs/ or experiments/configs/ must fail here, not hours into a script."""
    assert len(CONFIG_FILES) > 10
    for path in CONFIG_FILES:
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
    assert TrainConfig.load(CONFIGS / "paper.json").model == ModelConfig(**PRESETS["paper"])
    with pytest.raises(ValueError, match="preset"):
        model_from_spec({"preset": "huge"})
