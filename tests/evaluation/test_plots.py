"""`dbmtl evaluate`'s plots, drawn from an evaluation report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dbmtl.evaluation.plots import per_class_accuracy, write_evaluation_plots

REPORT = Path(__file__).resolve().parents[2] / "docs" / "evaluation" / "default" / "evaluation.json"


def test_per_class_accuracy():
    acc = per_class_accuracy([[3, 1, 0], [0, 0, 0], [1, 1, 2]])
    np.testing.assert_allclose(acc, [0.75, np.nan, 0.5])


def test_confusion_and_per_class_pngs(tmp_path):
    import matplotlib.image as mpimg

    results = json.loads(REPORT.read_text())
    paths = write_evaluation_plots(results, tmp_path, log=lambda m: None)
    assert sorted(p.name for p in paths) == sorted(f"DeepLoc_{t}_{k}.png" for t in ("loc", "ms")
                                                   for k in ("confusion", "per_class"))
    for path in paths:
        assert mpimg.imread(path).ndim == 3
    assert write_evaluation_plots({"sets": {"CB513": {"ss3": {"mean": 0.7}}}}, tmp_path / "none") == []
