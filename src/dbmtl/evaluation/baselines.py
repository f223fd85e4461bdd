"""A composition baseline for the per-protein tasks: what amino-acid counts alone say about location
and membrane, with no model. A logistic regression (C = 0.05, standardized features) on the composition
of the whole protein, its first 50, last 50 and first 20 residues, the 400 dipeptide frequencies and the
log length, trained on the training split of the localization data the model was trained on. A per-protein
score close to it means the model has learnt little beyond composition. Needs scikit-learn
(`pip install 'dbmtl[baselines]'`); without it the baseline is skipped with a note.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tasks import LOCATIONS, MEMBRANE_LABELS
from ..tokens import STANDARD_AMINO_ACIDS
from .metrics import expected_calibration_error, per_protein_accuracy

_INDEX = np.full(256, -1, dtype=np.int64)
_INDEX[np.frombuffer(STANDARD_AMINO_ACIDS.encode(), np.uint8)] = np.arange(20)
N_FEATURES = 4 * 20 + 400 + 1


def _composition(idx: np.ndarray) -> np.ndarray:
    """Frequency of each standard amino acid among the residues (others: ignored)."""
    counts = np.bincount(idx[idx >= 0], minlength=20).astype(float)
    return counts / max(len(idx), 1)


def composition_features(sequence: str) -> np.ndarray:
    """(481,) composition of the whole, first 50, last 50 and first 20 residues; dipeptide frequencies;
    log length."""
    idx = _INDEX[np.frombuffer(sequence.encode("ascii"), np.uint8)]
    pairs = idx[:-1] * 20 + idx[1:]
    both = (idx[:-1] >= 0) & (idx[1:] >= 0)
    dipeptides = np.bincount(pairs[both], minlength=400).astype(float) / max(len(idx) - 1, 1)
    parts = [_composition(idx), _composition(idx[:50]), _composition(idx[-50:]), _composition(idx[:20])]
    return np.concatenate(parts + [dipeptides, [np.log(len(idx))]])


def _fit(train: list, label: str, classes: tuple[str, ...]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    known = [r for r in train if getattr(r, label) is not None]
    x = np.stack([composition_features(r.sequence) for r in known])
    y = np.array([classes.index(getattr(r, label)) for r in known])
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=5000)).fit(x, y), len(known)


def _score(model, test: list, label: str, classes: tuple[str, ...]) -> dict:
    known = [r for r in test if getattr(r, label) is not None]
    probs = model.predict_proba(np.stack([composition_features(r.sequence) for r in known]))
    gold = [getattr(r, label) for r in known]
    score = per_protein_accuracy([classes[i] for i in probs.argmax(1)], gold, classes)
    score["ece"] = expected_calibration_error(probs, np.array([classes.index(g) for g in gold]))
    return score


def composition_baseline(data_dir: Path, test: list, sources: str = "subsets") -> dict:
    """{"loc": score, "ms": score, "sources": sources} of the baseline trained on the `localization_sources`
    a model was trained on (so both saw the same proteins), scored on the test records (score as
    per_protein_accuracy, plus ECE), or {"skipped": why} without scikit-learn."""
    try:
        import sklearn  # noqa: F401  (only whether it is there)
    except ImportError:
        return {"skipped": "scikit-learn is not installed (pip install 'dbmtl[baselines]')"}
    from ..data.catalog import evaluation_guard, localization_training

    train = [r for r in localization_training(data_dir, evaluation_guard(data_dir), sources=sources) if r.split == "train"]
    out: dict = {"sources": sources}
    for task, label, classes in (("loc", "location", LOCATIONS), ("ms", "membrane", MEMBRANE_LABELS)):
        model, n_train = _fit(train, label, classes)
        out[task] = {**_score(model, test, label, classes), "n_train": n_train}
    return out
