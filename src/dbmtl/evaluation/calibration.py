"""Fitting a model's per-protein temperatures on its validation proteins (`dbmtl calibrate`).

The proteins are the hold-out of the localization data the model was trained on (`localization_sources`
in its training config, the same digest split training validated on), never a test set. The fitted
entry goes into the model folder's config.json, where the predictor reads it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.catalog import load_training_data, trained_localization_sources
from ..durable import write_atomic
from ..inference.calibration import GUESS_KEY, apply_temperature, fit_temperature, negative_log_likelihood
from ..inference.predictor import Predictor
from ..model.checkpoint import model_folder
from ..tasks import PROTEIN_TASKS, TASKS
from .metrics import expected_calibration_error


def validation_proteins(predictor: Predictor, data_dir: Path, limit: int | None = None) -> list:
    """The model's localization hold-out with at least one per-protein label (first `limit` only)."""
    sources = trained_localization_sources(predictor.meta)
    records = [r for r in load_training_data(data_dir, localization_sources=sources).split("valid").protein
               if any(getattr(r, TASKS[t].field) is not None for t in PROTEIN_TASKS)]
    return records[:limit] if limit else records


def labeled_probabilities(preds: list, records: list, task) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, true class indices) of a per-protein task over the proteins with a known label."""
    known = [(p.probabilities[task.name], task.labels.index(getattr(r, task.field)))
             for p, r in zip(preds, records) if getattr(r, task.field) is not None]
    return (np.stack([pr for pr, _ in known]) if known else np.empty((0, len(task.labels))),
            np.array([g for _, g in known], dtype=int))


THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(2, 20))  # 0.10, 0.15, ..., 0.95
GUESS_ACCURACY = 0.5  # below the threshold the validation answers were right less often than this


def accuracy_by_threshold(probabilities: np.ndarray, true: np.ndarray, thresholds=THRESHOLDS) -> list[dict]:
    """Per threshold t: the share of proteins whose answer has a confidence (top probability) of at least t,
    and the accuracy of the answers at or above t and below it (None where there are none)."""
    confidence, right = probabilities.max(1), probabilities.argmax(1) == true
    rows = []
    for t in thresholds:
        above = confidence >= t
        rows.append({"threshold": t, "share_above": round(float(above.mean()), 4),
                     "accuracy_above": round(float(right[above].mean()), 4) if above.any() else None,
                     "accuracy_below": round(float(right[~above].mean()), 4) if (~above).any() else None})
    return rows


def guess_threshold(rows: list[dict], below: float = GUESS_ACCURACY) -> dict | None:
    """The highest threshold of `rows` (accuracy_by_threshold) under which the answers were right less
    than `below` of the time: an answer under it is more likely wrong than right, "a guess". None when
    no threshold has such answers under it."""
    found = [r for r in rows if r["accuracy_below"] is not None and r["accuracy_below"] < below]
    if not found:
        return None
    row = found[-1]
    return {GUESS_KEY: row["threshold"], "accuracy_above": row["accuracy_above"],
            "accuracy_below": row["accuracy_below"], "share_below": round(1 - row["share_above"], 4),
            "rule": f"highest threshold (steps of 0.05) under which the validation answers were right "
                    f"less than {below:.0%} of the time"}


def fit_calibration(predictor: Predictor, records: list) -> dict:
    """{task: {"temperature", "proteins", "nll_before", "nll_after", "ece_before", "ece_after", "reliability"
    (accuracy_by_threshold, calibrated), and when one is found GUESS_KEY and its accuracies}} from the raw
    (temperature 1) probabilities of `records`."""
    saved, predictor.temperatures = predictor.temperatures, {}  # the same model, uncalibrated
    try:
        preds = predictor.predict([r.sequence for r in records], tasks=PROTEIN_TASKS)
    finally:
        predictor.temperatures = saved
    out = {}
    for name in PROTEIN_TASKS:
        probs, true = labeled_probabilities(preds, records, TASKS[name])
        if not len(true):
            continue
        t = fit_temperature(probs, true)
        after = apply_temperature(probs, t)
        out[name] = {"temperature": round(t, 4), "proteins": len(true),
                     "nll_before": round(negative_log_likelihood(probs, true), 4),
                     "nll_after": round(negative_log_likelihood(after, true), 4),
                     "ece_before": round(expected_calibration_error(probs, true), 4),
                     "ece_after": round(expected_calibration_error(after, true), 4)}
        rows = accuracy_by_threshold(after, true)
        out[name].update(guess_threshold(rows) or {})
        out[name]["reliability"] = rows
    return out


def write_calibration(folder: str | Path, calibration: dict, how: str) -> Path:
    """Put `calibration` (with how it was fitted; without the reliability table, which
    `reliability_lines` prints) into the model folder's config.json."""
    path = model_folder(folder) / "config.json"
    meta = json.loads(path.read_text())
    meta["calibration"] = {task: {**{k: v for k, v in entry.items() if k != "reliability"}, "fitted": how}
                           for task, entry in calibration.items()}
    write_atomic(path, json.dumps(meta, indent=1))
    return path


def reliability_lines(task: str, entry: dict) -> list[str]:
    """The accuracy-vs-confidence table of a fit_calibration entry and its guess threshold, as text."""
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    lines = [f"{task}: confidence  share at or above (%)  accuracy at or above (%)  accuracy below (%)"]
    lines += [f"{task}: {r['threshold']:10.2f}  {pct(r['share_above']):>22}  {pct(r['accuracy_above']):>24}  "
              f"{pct(r['accuracy_below']):>18}" for r in entry["reliability"]]
    if GUESS_KEY in entry:
        lines.append(f"{task}: a guess below {entry[GUESS_KEY]:.2f} ({entry['rule']}): "
                     f"{pct(entry['share_below'])}% of the validation proteins, right {pct(entry['accuracy_below'])}%;"
                     f" at or above: right {pct(entry['accuracy_above'])}%")
    else:
        lines.append(f"{task}: no guess threshold (no confidence under which the answers were mostly wrong)")
    return lines
