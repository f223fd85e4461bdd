"""Damaged model folders are refused before use, with a message naming the file, never a traceback or
a prediction from broken weights."""
from __future__ import annotations

import json
import random
import shutil

import pytest
import torch
from safetensors.torch import save_file

from helpers import tiny_predictor

from dbmtl.cli import main
from dbmtl.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dbmtl.inference import Predictor

FASTA = ">a\nMKTAYIAKQRQISFVKSHFSRQ\n"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    p = tiny_predictor(kind="encoder")
    return save_checkpoint(tmp_path_factory.mktemp("good") / "model", p.model, p.alphabet)


def damaged(good, tmp_path, how: str):
    model = tmp_path / how
    shutil.copytree(good, model)
    weights = model / "model.safetensors"
    config = model / "config.json"
    data = weights.read_bytes()
    if how == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "random-bytes":
        weights.write_bytes(random.Random(0).randbytes(len(data)))
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "header-only":
        weights.write_bytes(data[:8])
    elif how == "nan-weights":
        state = {k: v.clone() for k, v in load_checkpoint(good)[0].state_dict().items() if k != "head.weight"}
        state["blocks.0.mlp.0.weight"][0, 0] = float("nan")
        save_file(state, str(weights))
    elif how == "other-shapes":
        meta = json.loads(config.read_text())
        meta["model"]["n_embd"] = 32
        config.write_text(json.dumps(meta))
    elif how == "config-not-json":
        config.write_text("{not json")
    elif how == "config-unknown-key":
        meta = json.loads(config.read_text())
        meta["model"]["n_heads"] = 2
        config.write_text(json.dumps(meta))
    elif how == "config-negative-heads":
        meta = json.loads(config.read_text())
        meta["model"]["n_head"] = -2
        config.write_text(json.dumps(meta))
    elif how == "vocab-missing":
        (model / "vocab.json").unlink()
    elif how == "vocab-other":
        vocab = json.loads((model / "vocab.json").read_text())
        vocab["tokens"][5], vocab["tokens"][6] = vocab["tokens"][6], vocab["tokens"][5]
        (model / "vocab.json").write_text(json.dumps(vocab))
    return model


CASES = ["truncated", "random-bytes", "empty", "header-only", "nan-weights", "other-shapes", "config-not-json",
         "config-unknown-key", "config-negative-heads", "vocab-missing", "vocab-other"]


@pytest.mark.parametrize("how", CASES)
def test_a_damaged_model_is_refused_with_a_message(good, tmp_path, how, capsys):
    model = damaged(good, tmp_path, how)
    with pytest.raises(ValueError) as info:
        load_checkpoint(model)
    assert str(model) in str(info.value)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(FASTA)
    assert main(["predict", str(fasta), "-o", str(tmp_path / "out"), "--model", str(model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_nan_outputs_are_an_error_not_a_prediction(good):
    model, alphabet, meta = load_checkpoint(good)
    with torch.no_grad():
        model.ln_f.bias.fill_(float("nan"))  # finite-looking file, broken model in memory
    predictor = Predictor(model, alphabet, meta)
    with pytest.raises(ValueError, match="not a finite number"):
        predictor.predict({"a": "MKTAYIAKQR"})


def test_damage_kinds_are_distinct_errors(good, tmp_path):
    """Each case is refused for its own reason (not one blanket message)."""
    messages = set()
    for how in CASES:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(damaged(good, tmp_path, how))
        messages.add(str(info.value).split(":")[-1][:30])
    assert len(messages) >= 6


@pytest.mark.parametrize("bad", [5, None, b"MKV", ["MKV"]])
def test_api_rejects_non_string_sequences_clearly(good, bad):
    predictor = Predictor(*load_checkpoint(good))
    with pytest.raises(TypeError, match="must be a string"):
        predictor.predict({"a": bad})
    with pytest.raises(TypeError):
        predictor.predict("MKV")
