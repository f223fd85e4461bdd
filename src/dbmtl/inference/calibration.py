"""Temperature scaling (Guo et al. 2017) of the per-protein answers: one number per task, fitted on
validation proteins after training, that makes the probabilities mean what they say without changing
any predicted class. A model folder keeps it in config.json as {"calibration": {task: {"temperature": T}}},
with, where `dbmtl calibrate` found one, the confidence below which the task's answer is "a guess"
(GUESS_KEY: its validation answers below it were right less than half the time)."""
from __future__ import annotations

import math

import numpy as np

from ..tasks import PROTEIN_TASKS

LOG_T_RANGE = (-3.0, 3.0)  # temperatures from 0.05 to 20
GUESS_KEY = "guess_below"


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) from softmax(logits): p ** (1/T), renormalized (rows of the last axis)."""
    if temperature == 1.0:
        return probabilities
    logp = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, None)) / temperature
    logp -= logp.max(-1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, true: np.ndarray) -> float:
    picked = np.asarray(probabilities, dtype=np.float64)[np.arange(len(true)), true]
    return float(-np.log(np.clip(picked, 1e-30, None)).mean())


def fit_temperature(probabilities: np.ndarray, true: np.ndarray, iterations: int = 80) -> float:
    """The temperature minimizing the mean negative log-likelihood of the true classes (golden-section
    search over log T; the likelihood is unimodal in T for temperature scaling)."""
    if len(true) == 0:
        raise ValueError("no labeled proteins to fit a temperature on")
    loss = lambda log_t: negative_log_likelihood(apply_temperature(probabilities, math.exp(log_t)), true)  # noqa: E731
    lo, hi = LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)


def check_calibration(calibration: object, where: str) -> dict[str, float]:
    """{task: temperature} from a model folder's "calibration" entry; ValueError naming `where` otherwise."""
    if not isinstance(calibration, dict):
        raise ValueError(f"{where}: 'calibration' must be an object of per-protein tasks")
    temperatures = {}
    for task, entry in calibration.items():
        if task not in PROTEIN_TASKS:
            raise ValueError(f"{where}: calibration of {task!r}: only per-protein tasks are calibrated "
                             f"({', '.join(PROTEIN_TASKS)})")
        t = entry.get("temperature") if isinstance(entry, dict) else None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ValueError(f"{where}: calibration of {task!r} needs a positive finite 'temperature', not {t!r}")
        g = entry.get(GUESS_KEY, 0.5)
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 < g <= 1:
            raise ValueError(f"{where}: calibration of {task!r}: {GUESS_KEY!r} must be a confidence in (0, 1], not {g!r}")
        temperatures[task] = float(t)
    return temperatures


def guess_thresholds(calibration: dict) -> dict[str, float]:
    """{task: the confidence below which its answer is a guess} of a checked "calibration" entry."""
    return {task: float(entry[GUESS_KEY]) for task, entry in calibration.items() if GUESS_KEY in entry}


def reliable(confidence: float, threshold: float | None) -> bool | None:
    """Whether an answer is at or above its model's guess threshold, on the confidence as the outputs
    write it (4 decimals); None for a model without one."""
    return None if threshold is None else round(float(confidence), 4) >= threshold
