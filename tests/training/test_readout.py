"""Fitting the readouts on a frozen backbone, and the model folder that answers with them."""
import json

import numpy as np
import pytest
import torch

from dbmtl.inference.predictor import Predictor
from dbmtl.model import PRESETS, ModelConfig, Transformer
from dbmtl.model.checkpoint import CheckpointError, save_checkpoint
from dbmtl.model.readout import READOUT_FILE, RESIDUE_READOUT_FILE
from dbmtl.tasks import SS8_IN_SS3
from dbmtl.tokens import Alphabet
from dbmtl.training.readout import (LR_SCHEDULES, BestEpoch, fit_readout, fit_residue_readout, protein_features, residue_features,
                                   write_with_readouts)

from helpers import ONEPASS, tiny_predictor


@pytest.fixture(scope="module")
def fitted(data_dir, tmp_path_factory):
    """A tiny random onepass model (with a calibration entry, which the readout must drop), its readout
    fitted on 300 training proteins, and the folder written with it."""
    torch.manual_seed(0)
    spec = {k: v for k, v in ONEPASS.items() if k != "preset"}
    model = Transformer(ModelConfig(**{**PRESETS["tiny"], **spec})).eval()
    root = tmp_path_factory.mktemp("readout")
    save_checkpoint(root / "model", model, Alphabet(), extra={"calibration": {"loc": {"temperature": 2.0}}})
    predictor = Predictor.from_pretrained(root / "model")
    readout, report = fit_readout(predictor, data_dir, hidden=16, members=2, termini=5, limit=300, log=lambda m: None)
    write_with_readouts(root / "model", root / "with_readout", {"readout": (readout, report)})
    return root, readout, report


def test_the_report_scores_both_answers_on_validation_proteins(fitted):
    _, _, report = fitted
    for task in ("loc", "ms"):
        r = report["tasks"][task]
        assert 0 < r["train_proteins"] <= 300 and r["valid_proteins"] > 100
        assert 0 <= r["valid_accuracy_token"] <= 1 and 0 <= r["valid_accuracy_readout"] <= 1
        assert len(r["epochs"]) == 2 and all(e >= 1 for e in r["epochs"])
    # ten locations, one of them (nucleus or cytoplasm) a quarter of the proteins: a fitted readout beats
    # the untrained model's token answer, which is a random projection
    assert report["tasks"]["loc"]["valid_accuracy_readout"] > report["tasks"]["loc"]["valid_accuracy_token"]


def test_the_folder_answers_location_and_membrane_from_the_readout_and_nothing_else_changes(fitted):
    root, readout, _ = fitted
    meta = json.loads((root / "with_readout" / "config.json").read_text())
    assert "calibration" not in meta and meta["readout"]["members"] == 2 and (root / "with_readout" / READOUT_FILE).is_file()
    plain, with_readout = Predictor.from_pretrained(root / "model"), Predictor.from_pretrained(root / "with_readout")
    assert plain.meta["fingerprint"] != with_readout.meta["fingerprint"]
    seqs = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "M" + "KLAVE" * 300]  # the second is longer than a row
    a, b = plain.one_pass(seqs), with_readout.one_pass(seqs)
    feats, _ = protein_features(plain, seqs, readout.termini)
    with torch.no_grad():
        expected = readout(feats)
    for k in range(2):
        for t in ("ss8", "ss3"):
            np.testing.assert_array_equal(a[k][t], b[k][t])
        for t in ("loc", "ms"):
            np.testing.assert_allclose(b[k][t], expected[t][k].numpy(), atol=1e-6)
            assert not np.allclose(a[k][t], b[k][t])


def test_a_damaged_readout_is_a_checkpoint_error_and_an_existing_folder_is_not_overwritten(fitted, tmp_path):
    root, readout, report = fitted
    with pytest.raises(FileExistsError, match="exists"):
        write_with_readouts(root / "model", root / "with_readout", {"readout": (readout, report)})
    import shutil
    broken = shutil.copytree(root / "with_readout", tmp_path / "broken")
    (broken / READOUT_FILE).write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match="readout.safetensors"):
        Predictor.from_pretrained(broken)


def test_only_a_onepass_model_takes_a_readout(fitted, data_dir):
    with pytest.raises(ValueError, match="onepass"):
        fit_readout(tiny_predictor(kind="encoder"), data_dir, limit=10)


def test_the_command_refuses_an_existing_folder_and_an_encoder_in_one_line(fitted, tmp_path):
    import subprocess
    import sys

    from helpers import cli_env, saved_tiny_model

    root, _, _ = fitted

    def run(*args):
        return subprocess.run([sys.executable, "-m", "dbmtl", "fit-readout", *map(str, args)], capture_output=True,
                              text=True, env=cli_env(), timeout=300)

    existing = run(root / "model", "-o", root / "with_readout")
    assert existing.returncode != 0 and "exists" in existing.stderr and "Traceback" not in existing.stderr
    encoder = run(saved_tiny_model(tmp_path / "encoder"), "-o", tmp_path / "out", "--limit", "5")
    assert encoder.returncode != 0 and "onepass" in encoder.stderr and "Traceback" not in encoder.stderr
    assert not (tmp_path / "out").exists()
    shown = " ".join(run("--help").stdout.split())
    assert "each network (default: 256)" in shown and "first convolution (default: 128)" in shown


# -- per-residue ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def residue_fitted(fitted, data_dir):
    """The per-residue readout of the same tiny model, fitted on 150 SS training proteins and written
    beside the folder's per-protein readout and calibration."""
    root, _, _ = fitted
    calibrated = root / "with_calibration"
    import shutil
    shutil.copytree(root / "with_readout", calibrated)
    meta = json.loads((calibrated / "config.json").read_text())
    (calibrated / "config.json").write_text(json.dumps({**meta, "calibration": {"loc": {"temperature": 1.5}}}))
    predictor = Predictor.from_pretrained(calibrated)
    readout, report = fit_residue_readout(predictor, data_dir, hidden=8, kernel=3, max_epochs=2, limit=150,
                                          schedule="cosine", log=lambda m: None)
    write_with_readouts(calibrated, root / "with_both", {"residue_readout": (readout, report)})
    return root, readout, report


def test_the_residue_report_scores_head_and_readout_on_validation_proteins(residue_fitted):
    _, _, report = residue_fitted
    assert report["train_proteins"] == 150 and report["valid_proteins"] > 1000 and 1 <= report["epoch"] <= 2
    assert report["max_epochs"] == 2 and report["schedule"] == "cosine"
    for name in ("valid_head", "valid_readout"):
        assert set(report[name]) == {"ss3", "ss8", "loss"} and 0 < report[name]["ss3"] < 1 and 0 < report[name]["ss8"] < 1
    assert report["valid_readout"]["loss"] < report["valid_head"]["loss"]
    # the untrained model's SS8 logits are a random projection; 8 states, coil and helix common: a fitted
    # readout beats it
    assert report["valid_readout"]["ss8"] > report["valid_head"]["ss8"]


def test_the_cosine_schedule_falls_from_the_full_rate_to_zero_and_unknown_ones_are_refused(fitted, data_dir):
    cosine = LR_SCHEDULES["cosine"]
    assert cosine(0.0) == 1.0 and cosine(0.5) == pytest.approx(0.5) and cosine(1.0) == pytest.approx(0.0, abs=1e-12)
    assert LR_SCHEDULES["constant"](0.7) == 1.0
    root, _, _ = fitted
    with pytest.raises(ValueError, match="'linear'.*constant, cosine"):
        fit_residue_readout(Predictor.from_pretrained(root / "with_readout"), data_dir, schedule="linear")


def test_the_schedule_reaches_the_fit(residue_fitted, data_dir):
    """The same fit at a constant rate ends elsewhere than the cosine one (same seed, data and batches)."""
    root, cosine_readout, _ = residue_fitted
    predictor = Predictor.from_pretrained(root / "with_calibration")
    constant, report = fit_residue_readout(predictor, data_dir, hidden=8, kernel=3, max_epochs=2, limit=150,
                                           schedule="constant", log=lambda m: None)
    assert report["schedule"] == "constant"
    assert not torch.allclose(constant.first.weight, cosine_readout.first.weight)


def test_the_folder_answers_ss_from_the_residue_readout_and_keeps_the_rest(residue_fitted):
    root, readout, _ = residue_fitted
    meta = json.loads((root / "with_both" / "config.json").read_text())
    assert meta["calibration"] == {"loc": {"temperature": 1.5}} and "readout" in meta  # kept: loc/ms unchanged
    assert meta["residue_readout"]["hidden"] == 8 and (root / "with_both" / RESIDUE_READOUT_FILE).is_file()
    before, after = Predictor.from_pretrained(root / "with_calibration"), Predictor.from_pretrained(root / "with_both")
    assert before.meta["fingerprint"] != after.meta["fingerprint"]
    seqs = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "GSHMLEDPVAG" * 3]
    a, b = before.one_pass(seqs), after.one_pass(seqs)
    features = residue_features(before, seqs)
    for k, (states, own) in enumerate(features):
        with torch.no_grad():
            logits = readout(torch.from_numpy(states).float()[None], torch.from_numpy(own)[None], [len(states)])[0]
        # float16 cached states against the float32 ones predict reads
        np.testing.assert_allclose(b[k]["ss8"], torch.softmax(logits, -1).numpy(), atol=2e-3)
        np.testing.assert_allclose(b[k]["ss3"], b[k]["ss8"] @ np.array(SS8_IN_SS3, dtype=np.float32), atol=1e-6)
        assert not np.allclose(a[k]["ss8"], b[k]["ss8"])
        for t in ("loc", "ms"):
            np.testing.assert_array_equal(a[k][t], b[k][t])


def test_a_long_protein_gets_the_residue_readout_in_every_window(residue_fitted):
    root, _, _ = residue_fitted
    before, after = Predictor.from_pretrained(root / "with_calibration"), Predictor.from_pretrained(root / "with_both")
    long = "M" + "KLAVEGSTRW" * 130  # longer than one row: two windows
    (a,), (b,) = before.one_pass([long]), after.one_pass([long])
    assert b["ss8"].shape == (len(long), 8)
    np.testing.assert_allclose(b["ss8"].sum(1), 1, atol=1e-5)
    changed = ~np.isclose(a["ss8"], b["ss8"], atol=1e-6).all(1)
    assert changed[:500].mean() > 0.9 and changed[-500:].mean() > 0.9


def test_a_damaged_residue_readout_is_a_checkpoint_error(residue_fitted, tmp_path):
    root, _, _ = residue_fitted
    import shutil
    broken = shutil.copytree(root / "with_both", tmp_path / "broken")
    (broken / RESIDUE_READOUT_FILE).unlink()
    with pytest.raises(CheckpointError, match="residue_readout.safetensors: missing"):
        Predictor.from_pretrained(broken)


def test_early_stopping_keeps_the_best_epochs_weights_and_waits_patience_epochs():
    net = torch.nn.Linear(2, 1)
    best = BestEpoch(net, patience=2, min_delta=0.01)
    scores = {1: 0.5, 2: 0.7, 3: 0.705, 4: 0.6}  # epoch 3 is not better by min_delta: epoch 2 stays the best
    kept = None
    for epoch, score in scores.items():
        with torch.no_grad():
            net.weight.fill_(epoch)
        if epoch == 2:
            kept = net.weight.clone()
        if best.stop(epoch, score):
            break
    assert epoch == 4  # two epochs (3, 4) without a better score
    assert best.restore() == 2
    assert torch.equal(net.weight, kept)
