"""Scores: masks respected, mean vs pooled, MCC agrees with the binary formula, paired differences, and the
expected calibration error on synthetic cases."""
import math

import numpy as np
import pytest

from dbmtl.evaluation.metrics import (bootstrap_interval, confusion_matrix, expected_calibration_error, multiclass_mcc,
                                      per_protein_accuracy, per_residue_accuracy)


def test_unresolved_residues_never_count():
    gold = ["HHHEEC", "CCCC"]
    pred = ["HHHCCC", "CCCC"]
    masks = [np.array([1, 1, 1, 0, 0, 1], bool), np.array([1, 1, 1, 1], bool)]
    s = per_residue_accuracy(pred, gold, masks)
    assert s["mean"] == 1.0 and s["pooled"] == 1.0 and s["n_residues"] == 8


def test_mean_over_proteins_differs_from_pooled():
    gold = ["H" * 10, "E" * 2]
    pred = ["H" * 10, "C" * 2]
    masks = [np.ones(10, bool), np.ones(2, bool)]
    s = per_residue_accuracy(pred, gold, masks)
    assert s["mean"] == pytest.approx(0.5)
    assert s["pooled"] == pytest.approx(10 / 12)
    lo, hi = s["mean_ci"]
    assert 0.0 <= lo <= hi <= 1.0


def test_protein_without_resolved_residue_is_skipped():
    s = per_residue_accuracy(["HH", "EE"], ["HH", "CC"], [np.ones(2, bool), np.zeros(2, bool)])
    assert s["n_proteins"] == 1 and s["n_skipped"] == 1 and s["mean"] == 1.0


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        per_residue_accuracy(["HHH"], ["HH"], [np.ones(2, bool)])


def test_mcc_binary_matches_formula():
    rng = np.random.default_rng(0)
    gold = list(rng.choice(["M", "S"], 200))
    pred = [g if rng.random() < 0.8 else ("S" if g == "M" else "M") for g in gold]
    cm = confusion_matrix(pred, gold, ("M", "S"))
    tp, fn, fp, tn = cm[0, 0], cm[0, 1], cm[1, 0], cm[1, 1]
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert multiclass_mcc(cm) == pytest.approx(expected)


def test_per_protein_accuracy_ignores_unknown_labels():
    s = per_protein_accuracy(["M", "S", "M"], ["M", None, "S"], ("M", "S"))
    assert s["n_proteins"] == 2 and s["accuracy"] == 0.5
    assert np.array(s["confusion"]).sum() == 2


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(1).random(300)
    lo, hi = bootstrap_interval(values)
    assert lo < values.mean() < hi and hi - lo < 0.1


def test_paired_difference_counts_disagreements_and_skips_unlabeled():
    from dbmtl.evaluation.metrics import paired_difference

    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.6).astype(float)
    b = a.copy()
    b[:40] = 1 - b[:40]          # 40 proteins flipped: b right where a is wrong and the other way round
    a[-10:] = np.nan             # unlabeled proteins count for neither
    d = paired_difference(a, b)
    assert d["n_proteins"] == 390
    assert d["only_a"] + d["only_b"] == 40
    assert d["difference"] == pytest.approx((d["only_a"] - d["only_b"]) / 390)
    assert d["difference"] == pytest.approx(d["a"] - d["b"])
    lo, hi = d["difference_ci"]
    assert lo <= d["difference"] <= hi
    # pairing: the same two models' shared hits cancel, so the paired interval is narrower than the
    # width of either accuracy's own interval
    a_lo, a_hi = bootstrap_interval(a[~np.isnan(a)])
    assert hi - lo < a_hi - a_lo
    same = paired_difference(a, a)
    assert same["difference"] == 0 and same["difference_ci"] == (0.0, 0.0) and same["only_a"] == 0
    with pytest.raises(ValueError, match="different proteins"):
        paired_difference(a, b[:-1])


def synthetic(confidence: np.ndarray, accuracy: np.ndarray, rng, k: int = 10):
    """(n, k) probabilities whose top probability is `confidence`, and true labels that agree with the top
    class with probability `accuracy`."""
    n = len(confidence)
    top = rng.integers(k, size=n)
    probs = np.tile(((1 - confidence) / (k - 1))[:, None], (1, k))
    probs[np.arange(n), top] = confidence
    other = (top + rng.integers(1, k, size=n)) % k
    true = np.where(rng.random(n) < accuracy, top, other)
    return probs, true


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 50_000)
    probs, true = synthetic(confidence, confidence, rng)  # right as often as it says
    assert expected_calibration_error(probs, true) < 0.01
    probs, true = synthetic(np.full(5_000, 0.99), np.full(5_000, 0.5), rng)  # says 99%, right half the time
    assert expected_calibration_error(probs, true) == pytest.approx(0.49, abs=0.02)
    probs, true = synthetic(np.full(5_000, 0.6), np.full(5_000, 0.9), rng)  # underconfident
    assert expected_calibration_error(probs, true) == pytest.approx(0.3, abs=0.02)


def test_ece_uses_fifteen_equal_width_bins():
    # two bins: (0.6, 0.667] holds 0.62 (right) and (0.933, 1] holds 0.95 (wrong): |1 - 0.62| / 2 + |0 - 0.95| / 2
    probs = np.array([[0.62, 0.38], [0.95, 0.05]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx((0.38 + 0.95) / 2)
