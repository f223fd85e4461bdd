"""Accuracy with bootstrap intervals, multi-class MCC, confusion matrices."""
from __future__ import annotations

import numpy as np


def bootstrap_interval(values: np.ndarray, weights: np.ndarray | None = None, n: int = 1000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a (weighted) mean, resampling items (proteins) with replacement."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = (values[idx] * w[idx]).sum(1) / np.maximum(w[idx].sum(1), 1e-12)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def per_residue_accuracy(predicted: list[str], true: list[str], masks: list[np.ndarray]) -> dict:
    """Q3/Q8-style accuracy over resolved residues: mean over proteins and pooled over residues.

    Proteins without a resolved residue are left out (and counted in `n_skipped`).
    """
    correct, total = [], []
    for pred, gold, mask in zip(predicted, true, masks, strict=True):
        if len(pred) != len(gold):
            raise ValueError(f"prediction has {len(pred)} labels for {len(gold)} residues")
        hits = np.frombuffer(pred.encode(), np.uint8) == np.frombuffer(gold.encode(), np.uint8)
        m = np.asarray(mask, dtype=bool)
        if m.sum() == 0:
            continue
        correct.append(int(hits[m].sum()))
        total.append(int(m.sum()))
    correct_a, total_a = np.array(correct, float), np.array(total, float)
    per_protein = correct_a / np.maximum(total_a, 1)
    return {
        "n_proteins": len(total),
        "n_residues": int(total_a.sum()),
        "n_skipped": len(predicted) - len(total),
        "mean": float(per_protein.mean()) if len(total) else float("nan"),
        "mean_ci": bootstrap_interval(per_protein),
        "pooled": float(correct_a.sum() / total_a.sum()) if len(total) else float("nan"),
        "pooled_ci": bootstrap_interval(per_protein, weights=total_a),
    }


def confusion_matrix(predicted: list[str], true: list[str], classes: tuple[str, ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    for p, t in zip(predicted, true, strict=True):
        cm[index[t], index[p]] += 1
    return cm


def multiclass_mcc(cm: np.ndarray) -> float:
    """Gorodkin's R_K, the multi-class Matthews correlation coefficient (rows = true, columns = predicted)."""
    cm = np.asarray(cm, dtype=float)
    s = cm.sum()
    c = np.trace(cm)
    t, p = cm.sum(1), cm.sum(0)
    num = c * s - (t * p).sum()
    den = np.sqrt(s * s - (p * p).sum()) * np.sqrt(s * s - (t * t).sum())
    return float(num / den) if den else 0.0


def per_protein_accuracy(predicted: list[str], true: list[str | None], classes: tuple[str, ...]) -> dict:
    """Accuracy (Q10, Q2), interval, MCC and confusion matrix over proteins with a known label."""
    pairs = [(p, t) for p, t in zip(predicted, true, strict=True) if t is not None]
    if not pairs:
        return {"n_proteins": 0}
    pred, gold = zip(*pairs)
    hits = np.array([p == t for p, t in pairs], dtype=float)
    cm = confusion_matrix(list(pred), list(gold), classes)
    return {
        "n_proteins": len(pairs),
        "accuracy": float(hits.mean()),
        "accuracy_ci": bootstrap_interval(hits),
        "mcc": multiclass_mcc(cm),
        "classes": list(classes),
        "confusion": cm.tolist(),
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """Two models' per-protein hits (1/0, NaN where a protein has no label) on the same proteins: the
    difference of their accuracies with a paired bootstrap interval (a protein is resampled for both at
    once, so what the models share cancels), and the proteins only one of them gets right."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"the two models were scored on different proteins ({len(a)} vs {len(b)})")
    known = ~(np.isnan(a) | np.isnan(b))
    x, y = a[known], b[known]
    return {"n_proteins": int(known.sum()), "a": float(x.mean()), "b": float(y.mean()),
            "difference": float((x - y).mean()), "difference_ci": bootstrap_interval(x - y),
            "only_a": int(((x == 1) & (y == 0)).sum()), "only_b": int(((x == 0) & (y == 1)).sum())}


def expected_calibration_error(probabilities: np.ndarray, true: np.ndarray, n_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): proteins binned by their top probability into `n_bins` equal-width bins
    (i/n, (i+1)/n]; the mean over bins, weighted by their share of proteins, of |accuracy - mean top
    probability|. 0 for a calibrated model; a model that says 99% and is right half the time scores 0.49.
    probabilities: (n, classes); true: (n,) class indices."""
    probabilities = np.asarray(probabilities, dtype=float)
    if len(probabilities) == 0:
        return float("nan")
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == np.asarray(true)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        inside = bins == b
        ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)
