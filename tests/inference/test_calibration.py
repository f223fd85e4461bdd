"""Temperature scaling: it recovers a known miscalibration, never changes a predicted class, is read from
the model folder (checked, part of the fingerprint) and `dbmtl calibrate` fits it on validation proteins."""
import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbmtl.cli import main
from dbmtl.inference.calibration import apply_temperature, check_calibration, fit_temperature, negative_log_likelihood
from dbmtl.inference.predictor import Predictor
from dbmtl.model.checkpoint import load_checkpoint, save_checkpoint
from dbmtl.tasks import TASKS

from helpers import tiny_predictor


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.0])
def test_fit_recovers_the_temperature_the_labels_were_drawn_with(true_temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(logits / true_temperature)])
    fitted = fit_temperature(softmax(logits), labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    nll = negative_log_likelihood(apply_temperature(softmax(logits), fitted), labels)
    assert nll <= negative_log_likelihood(softmax(logits), labels) + 1e-9


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 20))
def test_a_temperature_keeps_every_predicted_class_and_sums_to_one(seed, temperature):
    probs = softmax(np.random.default_rng(seed).normal(0, 4, size=(8, 10)))
    scaled = apply_temperature(probs, temperature)
    assert np.array_equal(scaled.argmax(1), probs.argmax(1))
    assert np.allclose(scaled.sum(1), 1, atol=1e-5)
    assert apply_temperature(probs, 1.0) is probs


@pytest.mark.parametrize("bad, message", [
    ({"ss3": {"temperature": 1.2}}, "only per-protein tasks"),
    ({"loc": {"temperature": -1}}, "positive finite"),
    ({"loc": {"temperature": math.inf}}, "positive finite"),
    ({"loc": {"temperature": True}}, "positive finite"),
    ({"loc": 0.8}, "positive finite"),
    ([0.8], "must be an object"),
    ({"loc": {"temperature": 1.0, "guess_below": 1.5}}, "'guess_below' must be a confidence"),
    ({"loc": {"temperature": 1.0, "guess_below": "0.6"}}, "'guess_below' must be a confidence"),
])
def test_bad_calibration_entries_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        check_calibration(bad, "m/config.json")


@pytest.fixture()
def model_folder(tmp_path):
    p = tiny_predictor(kind="onepass", conv_kernel=3)
    return save_checkpoint(tmp_path / "m", p.model, p.alphabet, extra={"train": {"localization_sources": "deeploc1"}})


def set_calibration(folder, calibration):
    meta = json.loads((folder / "config.json").read_text())
    meta["calibration"] = calibration
    (folder / "config.json").write_text(json.dumps(meta))


def test_a_calibrated_folder_changes_probabilities_not_classes_and_is_another_fingerprint(model_folder):
    seqs = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "MADEEKLPPGWEKRMSRSSGRVYYFNHITNASQWERPSG"]
    plain = Predictor.from_pretrained(model_folder)
    before = plain.predict(seqs)
    set_calibration(model_folder, {"loc": {"temperature": 0.5}, "ms": {"temperature": 2.0}})
    calibrated = Predictor.from_pretrained(model_folder)
    after = calibrated.predict(seqs)
    assert calibrated.meta["fingerprint"] != plain.meta["fingerprint"]
    for b, a in zip(before, after):
        assert a.labels == b.labels
        np.testing.assert_allclose(a.probabilities["loc"], apply_temperature(b.probabilities["loc"], 0.5), atol=1e-6)
        np.testing.assert_allclose(a.probabilities["ms"], apply_temperature(b.probabilities["ms"], 2.0), atol=1e-6)
        assert a.probabilities["loc"].max() > b.probabilities["loc"].max()  # sharper below 1
        np.testing.assert_array_equal(a.probabilities["ss8"], b.probabilities["ss8"])  # per-residue: untouched
    assert [p.tolist() for p in calibrated.predict_proteins(seqs, TASKS["loc"])] == \
        [a.probabilities["loc"].tolist() for a in after]


def test_a_bad_calibration_in_a_model_folder_is_a_clear_error(model_folder, capsys, tmp_path):
    set_calibration(model_folder, {"loc": {"temperature": 0}})
    fasta = tmp_path / "x.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQ\n")
    assert main(["predict", str(fasta), "-o", str(tmp_path / "out"), "--model", str(model_folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{model_folder}/config.json: calibration of 'loc'" in err and "Traceback" not in err


def test_dbmtl_calibrate_fits_on_validation_proteins_and_predictions_use_it(model_folder, data_dir, capsys):
    assert main(["calibrate", str(model_folder), "--data-dir", str(data_dir), "--limit", "120", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    entry = json.loads((model_folder / "config.json").read_text())["calibration"]
    assert set(entry) == {"loc", "ms"} and "written to" in out
    assert "loc: confidence  share at or above (%)  accuracy at or above (%)  accuracy below (%)" in out
    for e in entry.values():  # the table is printed; the chosen threshold (if any) is stored, not the table
        assert "reliability" not in e
        assert "guess_below" not in e or (e["accuracy_below"] < 0.5 and 0 < e["guess_below"] <= 0.95)
    for e in entry.values():
        assert e["temperature"] > 0 and 0 < e["proteins"] <= 120 and "first 120 proteins" in e["fitted"]
        assert e["nll_after"] <= e["nll_before"] + 1e-4  # temperature 1 was among the candidates
    assert Predictor.from_pretrained(model_folder).temperatures == {t: e["temperature"] for t, e in entry.items()}
    # a second run fits the raw probabilities again, not the calibrated ones: the same temperatures
    assert main(["calibrate", str(model_folder), "--data-dir", str(data_dir), "--limit", "120", "--threads", "1"]) == 0
    again = json.loads((model_folder / "config.json").read_text())["calibration"]
    assert {t: e["temperature"] for t, e in again.items()} == {t: e["temperature"] for t, e in entry.items()}
    _, _, meta = load_checkpoint(model_folder)
    assert meta["calibration"] == again


def test_answers_under_the_guess_threshold_are_marked_in_every_output(model_folder, tmp_path):
    seqs = {f"p{k}": "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"[k:] + "ADEEKLPPGW"[: k + 1] for k in range(8)}
    confidence = [float(p.probabilities["loc"].max()) for p in Predictor.from_pretrained(model_folder).predict(seqs)]
    threshold = round(sorted(confidence)[4], 4)  # half above, half below
    set_calibration(model_folder, {"loc": {"temperature": 1.0, "guess_below": threshold}})
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{k}\n{s}\n" for k, s in seqs.items()))
    out = tmp_path / "out"
    assert main(["predict", str(fasta), "-o", str(out), "--model", str(model_folder), "--quiet", "--threads", "1"]) == 0
    with open(out / "proteins.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    header = list(rows[0])
    assert header[:7] == ["id", "description", "length", "location", "location_confidence", "membrane",
                          "membrane_confidence"] and header[-2:] == ["location_reliable", "membrane_reliable"]
    expected = ["yes" if round(c, 4) >= threshold else "no" for c in confidence]
    assert [r["location_reliable"] for r in rows] == expected and set(expected) == {"yes", "no"}
    assert [r["membrane_reliable"] for r in rows] == [""] * 8  # no membrane threshold in this model
    records = [json.loads(line) for line in open(out / "predictions.jsonl")]
    assert [r["location_reliable"] for r in records] == [e == "yes" for e in expected]
    assert [r["membrane_reliable"] for r in records] == [None] * 8
