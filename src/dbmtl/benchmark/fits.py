"""Fits of MMseqs2 search time against database size, extrapolated to UniRef50: a straight line with a
95% interval, and a power law with offset whose spread comes from a jackknife over sizes."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

UNIREF50_SEQUENCES = 53_000_000  # UniRef50, order of magnitude of current releases (about 53 million)


def fit_linear(sizes: Sequence[float], seconds: Sequence[float], at: float = UNIREF50_SEQUENCES) -> dict:
    """t = a + b N, least squares on relative errors (each point weighted 1/t, as the noise of a timing
    scales with it). Returns the coefficients with standard errors, the relative residuals and the value
    at N = `at` with a 95% interval from the coefficients' covariance (Student t, n - 2 dof)."""
    N, t = np.asarray(sizes, float), np.asarray(seconds, float)
    X = np.stack([np.ones_like(N), N], 1) / t[:, None]
    y = np.ones_like(t)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef  # relative residuals
    dof = max(1, len(t) - 2)
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(X.T @ X)
    g = np.array([1.0, at])
    pred, se = float(g @ coef), float(math.sqrt(max(0.0, g @ cov @ g)))
    tq = _t_quantile(dof)
    return {
        "model": "t = a + b*N (weighted least squares, relative errors)",
        "a_s": float(coef[0]), "a_se_s": float(math.sqrt(cov[0, 0])),
        "b_s_per_million": float(coef[1] * 1e6), "b_se_s_per_million": float(math.sqrt(cov[1, 1]) * 1e6),
        "relative_residuals": [float(r) for r in resid],
        "rms_relative_error": float(math.sqrt(float(resid @ resid) / len(t))),
        "at": at, "predicted_s": pred, "ci95_s": [pred - tq * se, pred + tq * se],
    }


def _fit_offset_power(N: np.ndarray, t: np.ndarray, grid: np.ndarray) -> tuple[float, float, float, float]:
    """Best (a, b, c, loss) of t = a + b N^c over the exponent grid; a, b >= 0 by weighted least squares."""
    best = (0.0, 0.0, 1.0, math.inf)
    for c in grid:
        X = np.stack([np.ones_like(N), N**c], 1) / t[:, None]
        coef, *_ = np.linalg.lstsq(X, np.ones_like(t), rcond=None)
        if coef[0] < 0:  # no negative start-up cost: fit the power law alone
            coef = np.array([0.0, float(np.linalg.lstsq(X[:, 1:], np.ones_like(t), rcond=None)[0][0])])
        if coef[1] <= 0:
            continue
        resid = np.ones_like(t) - X @ coef
        loss = float(resid @ resid)
        if loss < best[3]:
            best = (float(coef[0]), float(coef[1]), float(c), loss)
    return best


def fit_power(sizes: Sequence[float], seconds: Sequence[float], at: float = UNIREF50_SEQUENCES) -> dict:
    """t = a + b N^c (a: the per-run cost that does not grow with the database; c < 1: sub-linear growth),
    least squares on relative errors, c on a grid from 0.2 to 1.5. Uncertainty by jackknife: the fit is
    repeated leaving out each size in turn, and the spread of c and of the value at N = `at` is reported."""
    N, t = np.asarray(sizes, float), np.asarray(seconds, float)
    grid = np.arange(0.2, 1.5001, 0.005)
    a, b, c, loss = _fit_offset_power(N, t, grid)
    pred = a + b * at**c
    model = a + b * N**c
    jack_c, jack_pred = [], []
    if len(t) >= 4:
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            ja, jb, jc, _ = _fit_offset_power(N[keep], t[keep], grid)
            jack_c.append(jc)
            jack_pred.append(ja + jb * at**jc)
    return {
        "model": "t = a + b*N^c (least squares on relative errors; jackknife over sizes)",
        "a_s": a, "b": b, "c": c,
        "c_jackknife": [min(jack_c), max(jack_c)] if jack_c else None,
        "relative_residuals": [float(x) for x in (t - model) / model],
        "rms_relative_error": float(math.sqrt(float(np.mean(((t - model) / model) ** 2)))),
        "at": at, "predicted_s": float(pred),
        "jackknife_s": [float(min(jack_pred)), float(max(jack_pred))] if jack_pred else None,
    }


def _t_quantile(dof: int) -> float:
    """Two-sided 95% Student t quantile (table; no scipy)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    return table.get(dof, 2.0 if dof > 10 else 12.706)


def fit_all(sizes: Sequence[int], seconds: Sequence[float], n_real: int) -> dict:
    """The fits reported, each on the sizes where it applies (at least 3 sizes each):

    linear_large  t = a + b N on the databases larger than the real set (mostly shuffled copies): the regime
                  whose marginal cost per sequence no longer changes, the one that extrapolates (primary);
    linear_real   t = a + b N on the real sequences only: their homologues make each sequence dearer;
    linear_all    t = a + b N on every size;
    power_all     t = a + b N^c on every size (c < 1 here comes from the real-to-shuffled transition).
    """
    pairs = sorted(zip(sizes, seconds))
    groups = {"linear_large": [p for p in pairs if p[0] > n_real], "linear_real": [p for p in pairs if p[0] <= n_real],
              "linear_all": pairs, "power_all": pairs}
    fits = {}
    for name, group in groups.items():
        if len(group) >= 3:
            fit = (fit_power if name.startswith("power") else fit_linear)([n for n, _ in group], [t for _, t in group])
            fit["sizes"] = [n for n, _ in group]
            fits[name] = fit
    return fits
