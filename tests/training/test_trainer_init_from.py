"""init_from: a run starts from another model folder's weights (an encoder's weights start a onepass model)."""
import json

import pytest
import torch

from dbmtl.cli import main
from dbmtl.model.checkpoint import load_checkpoint, save_checkpoint
from dbmtl.tokens import Alphabet
from dbmtl.training import Trainer

from helpers import tiny_train_config

ENCODER = {"preset": "tiny", "kind": "encoder", "conv_kernel": 3, "dropout": 0.1}
ONEPASS = {**ENCODER, "kind": "onepass", "protein_pooling": "attention"}
TASKS = {"ss3": 1.0, "ss8": 1.0, "loc": 1.0, "ms": 0.5}


@pytest.fixture(scope="module")
def trained_encoder(tmp_path_factory, data):
    """A tiny encoder trained for 60 steps, saved as a model folder."""
    tmp = tmp_path_factory.mktemp("encoder")
    trainer = Trainer(tiny_train_config(tmp, model=ENCODER, tasks=TASKS), data, progress=False)
    trainer.fit()
    return save_checkpoint(tmp / "model", trainer.model, Alphabet())


def test_an_encoders_weights_start_a_onepass_model(tmp_path, data, trained_encoder):
    cfg = tiny_train_config(tmp_path, model=ONEPASS, tasks=TASKS, init_from=str(trained_encoder))
    started = Trainer(cfg, data, progress=False)
    fresh = Trainer(tiny_train_config(tmp_path, model=ONEPASS, tasks=TASKS), data, progress=False)
    source = load_checkpoint(trained_encoder)[0].state_dict()
    weights = started.model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in source.items())
    assert "pool.weight" in weights and "pool.weight" not in source  # new attention pooling: freshly initialized
    # the transferred residue states read secondary structure at step 0; fresh weights do not
    assert started.validate()["ss8"]["loss"] < fresh.validate()["ss8"]["loss"] - 0.2


def test_weights_of_other_sizes_are_refused(tmp_path, data, trained_encoder):
    cfg = tiny_train_config(tmp_path, model={**ONEPASS, "n_embd": 32}, tasks=TASKS, init_from=str(trained_encoder))
    with pytest.raises(ValueError, match="init_from .* do not fit"):
        Trainer(cfg, data, progress=False)


def test_train_validate_scores_the_starting_weights_and_trains_nothing(tmp_path, data_dir, trained_encoder, capsys):
    cfg = tiny_train_config(tmp_path, model=ONEPASS, tasks=TASKS, init_from=str(trained_encoder)).to_dict()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert main(["train", "--config", str(path), "--validate", "--quiet", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 0 and set(report["valid"]) == set(TASKS)
    assert all(0 <= report["valid"][t]["accuracy"] <= 1 for t in TASKS)
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_resume_does_not_need_the_init_from_folder(tmp_path, data_dir, trained_encoder, capsys):
    """The checkpoint holds the weights: a run resumes after its init_from folder is deleted, to the same
    parameters as a run resumed with the folder present."""
    import shutil

    start = tmp_path / "start"
    shutil.copytree(trained_encoder, start)
    runs = {}
    for name in ("kept", "deleted"):
        cfg = tiny_train_config(tmp_path, model=ONEPASS, tasks=TASKS, init_from=str(start), max_steps=4,
                                checkpoint_every=2, out_dir=str(tmp_path / name)).to_dict()
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(cfg))
        args = ["train", "--config", str(path), "--quiet", "--data-dir", str(data_dir)]
        assert main([*args, "--max-steps", "2"]) == 0
        runs[name] = args
    assert main([*runs["kept"], "--resume"]) == 0
    shutil.rmtree(start)
    assert main([*runs["deleted"], "--out", str(tmp_path / "fresh")]) != 0  # a fresh start still needs it
    assert str(start) in capsys.readouterr().err
    assert main([*runs["deleted"], "--resume"]) == 0
    kept = load_checkpoint(tmp_path / "kept" / "checkpoint")[0].state_dict()
    deleted = load_checkpoint(tmp_path / "deleted" / "checkpoint")[0].state_dict()
    assert json.loads((tmp_path / "deleted" / "checkpoint" / "state.json").read_text())["step"] == 4
    assert all(torch.equal(kept[k], deleted[k]) for k in kept)


def test_a_deeper_model_grown_from_init_from_computes_the_same_and_then_learns(tmp_path, data, trained_encoder):
    """init_layers: blocks copied from the folder's, interleaved with identity blocks, give the very
    answers of the folder's model at step 0; training then moves the new blocks."""
    same = Trainer(tiny_train_config(tmp_path / "same", model=ENCODER, tasks=TASKS, init_from=str(trained_encoder)),
                   data, progress=False)
    deeper = {**ENCODER, "n_layer": 4}
    grown = Trainer(tiny_train_config(tmp_path / "grown", model=deeper, tasks=TASKS, init_from=str(trained_encoder),
                                      init_layers=[0, None, 1, None], max_steps=3), data, progress=False)
    before, after = same.validate(), grown.validate()
    for task in TASKS:
        assert after[task]["loss"] == pytest.approx(before[task]["loss"], abs=1e-5)
        assert after[task]["accuracy"] == before[task]["accuracy"]
    source = load_checkpoint(trained_encoder)[0].state_dict()
    weights = grown.model.state_dict()
    assert torch.equal(weights["blocks.2.mlp.0.weight"], source["blocks.1.mlp.0.weight"])
    assert not weights["blocks.1.mlp.2.weight"].any() and not weights["blocks.3.attn.proj.weight"].any()
    grown.fit()
    assert grown.model.state_dict()["blocks.1.mlp.2.weight"].abs().sum() > 0  # the new blocks learn


@pytest.mark.parametrize("layers, message", [([0, None, 1], "3 entries, one per block of the model \\(4\\)"),
                                             ([0, None, 2, None], "names a block the init_from model lacks"),
                                             ([0, None, -1, None], "block numbers")])
def test_a_wrong_layer_map_is_refused(tmp_path, data, trained_encoder, layers, message):
    with pytest.raises(ValueError, match=message):
        cfg = tiny_train_config(tmp_path, model={**ENCODER, "n_layer": 4}, tasks=TASKS,
                                init_from=str(trained_encoder), init_layers=layers)
        Trainer(cfg, data, progress=False)


def test_a_layer_map_of_the_wrong_type_names_the_key(tmp_path, trained_encoder):
    with pytest.raises(ValueError, match="init_layers.*a list of integers or nulls"):
        tiny_train_config(tmp_path, model={**ENCODER, "n_layer": 2}, tasks=TASKS, init_from=str(trained_encoder),
                          init_layers=[0, "1"])


def test_a_grown_model_trains_from_a_config_file(tmp_path, data_dir, trained_encoder):
    """The layer map survives the config's round trip (JSON list -> config -> saved config -> resume)."""
    cfg = tiny_train_config(tmp_path, model={**ENCODER, "n_layer": 4}, tasks=TASKS, init_from=str(trained_encoder),
                            init_layers=[0, None, 1, None], max_steps=2, checkpoint_every=1).to_dict()
    path = tmp_path / "grown.json"
    path.write_text(json.dumps(cfg))
    args = ["train", "--config", str(path), "--quiet", "--data-dir", str(data_dir)]
    assert main([*args, "--max-steps", "1"]) == 0
    assert main([*args, "--resume"]) == 0
    saved = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert saved["model"]["n_layer"] == 4 and saved["train"]["init_layers"] == [0, None, 1, None]
