"""Pictures of an evaluation report: per set and task with a confusion matrix (the per-protein tasks),
the matrix itself (colour = share of the true class, numbers = counts) and the accuracy of each class."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..tasks import display_name


def _tasks_with_confusion(results: dict):
    for set_name, entry in results.get("sets", {}).items():
        for task, score in entry.items():
            if isinstance(score, dict) and score.get("confusion") and score.get("classes"):
                yield set_name, task, score


def per_class_accuracy(confusion) -> np.ndarray:
    """Recall of each true class (rows true, columns predicted); NaN for a class with no protein."""
    m = np.asarray(confusion, dtype=float)
    totals = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(m) / totals, np.nan)


def write_evaluation_plots(results: dict, out_dir: str | Path, log: Callable[[str], None] = print) -> list[Path]:
    """`{set}_{task}_confusion.png` and `{set}_{task}_per_class.png` in out_dir; [] without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("plots skipped: matplotlib is not installed (pip install 'dbmtl[plots]')")
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for set_name, task, score in _tasks_with_confusion(results):
        names = [display_name(task, c) for c in score["classes"]]
        m = np.asarray(score["confusion"], dtype=float)
        share = m / np.maximum(m.sum(1, keepdims=True), 1)
        size = 2.5 + 0.55 * len(names)
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{set_name} {task}: confusion matrix (colour: share of the true class)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
        paths.append(out_dir / f"{set_name}_{task}_confusion.png")
        fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)

        acc = per_class_accuracy(m)
        fig, ax = plt.subplots(figsize=(7, 1 + 0.35 * len(names)))
        y = np.arange(len(names))[::-1]
        ax.barh(y, np.nan_to_num(acc), color="#3182bd")
        for yy, a, n in zip(y, acc, m.sum(1)):
            ax.text(0.01 if np.isnan(a) else a + 0.01, yy,
                    "no proteins" if np.isnan(a) else f"{100 * a:.1f}% of {int(n)}", va="center", fontsize=7)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlim(0, 1.2)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
        ax.set_xlabel("accuracy (share of the class's proteins predicted as it)")
        ax.set_title(f"{set_name} {task}: per-class accuracy", fontsize=9)
        paths.append(out_dir / f"{set_name}_{task}_per_class.png")
        fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    if paths:
        log(f"plots: {' '.join(str(p) for p in paths)}")
    return paths
