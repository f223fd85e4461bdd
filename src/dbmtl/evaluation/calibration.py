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
from ..inference.calibration import apply_temperature, fit_temperature, negative_log_likelihood
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


def fit_calibration(predictor: Predictor, records: list) -> dict:
    """{task: {"temperature", "proteins", "nll_before", "nll_after", "ece_before", "ece_after"}} from the
    raw (temperature 1) probabilities of `records`."""
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
    return out


def write_calibration(folder: str | Path, calibration: dict, how: str) -> Path:
    """Put `calibration` (with how it was fitted) into the model folder's config.json."""
    path = model_folder(folder) / "config.json"
    meta = json.loads(path.read_text())
    meta["calibration"] = {task: {**entry, "fitted": how} for task, entry in calibration.items()}
    write_atomic(path, json.dumps(meta, indent=1))
    return path
