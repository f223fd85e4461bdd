"""One figure per protein (matplotlib): SS3 and SS8 along the sequence, bar height = the confidence (the
predicted class's probability), colour = the class; location probabilities as bars; membrane vs soluble."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..inference.writers import safe_name
from .records import task_table

TITLE_CHARS = 110


GUESS = {False: ": a guess (under the model's threshold)"}  # what a *_reliable false adds to a title


def _title(record: dict) -> str:
    desc = record.get("description") or ""
    if desc.startswith(record["id"]):
        desc = desc[len(record["id"]):].strip()
    text = f"{record['id']}  {desc}".strip()
    if len(text) > TITLE_CHARS:
        text = text[: TITLE_CHARS - 1] + "…"
    return f"{text}  ({record['length']} residues)"


def letter_confidence(record: dict, task: str, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each residue's class (index into meta's labels) and the probability of that class: of the letter
    shown, which for SS8 need not be its likeliest state (it stays inside the residue's SS3 class)."""
    probs = np.asarray(record[f"{task}_probabilities"], dtype=float)
    labels = np.array([meta["labels"].index(c) for c in record[meta["field"]]])
    return labels, probs[np.arange(len(labels)), labels]


def _track(ax, record: dict, task: str, meta: dict) -> None:
    """Confidence along the sequence, one filled step curve per class (fast for any length)."""
    from matplotlib.patches import Patch

    labels, conf = letter_confidence(record, task, meta)
    x = np.arange(1, len(conf) + 1)
    for i, color in enumerate(meta["colors"]):
        ax.fill_between(x, np.where(labels == i, conf, 0.0), step="mid", color=color, linewidth=0)
    ax.set_xlim(0.5, len(conf) + 0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{task.upper()}\nconfidence", fontsize=8)
    ax.tick_params(labelsize=7)
    handles = [Patch(color=c, label=f"{lab} {name}") for lab, name, c in zip(meta["labels"], meta["names"], meta["colors"])]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)


def _location(ax, record: dict, meta: dict) -> None:
    probs = [record["loc_probabilities"][lab] for lab in meta["labels"]]
    top = meta["labels"].index(record[meta["field"]])
    y = np.arange(len(probs))[::-1]
    ax.barh(y, probs, color=["#3f007d" if i == top else "#9e9ac8" for i in range(len(probs))])
    ax.set_yticks(y, meta["names"], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title("Subcellular location (eukaryotic classes)" + GUESS.get(record.get("location_reliable"), ""), fontsize=9)
    for yy, p in zip(y, probs):
        ax.text(min(p + 0.01, 0.88), yy, f"{100 * p:.1f}%", va="center", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)


def _membrane(ax, record: dict, meta: dict) -> None:
    label = record[meta["field"]]
    p = record["ms_probabilities"][label]
    m = record["ms_probabilities"][meta["labels"][0]]  # the membrane-bound class comes first
    ax.barh([0], [m], color="#8c510a")
    ax.barh([0], [1 - m], left=[m], color="#80cdc1")
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.set_xticks([0, 0.5, 1], ["membrane-bound", "", "soluble"], fontsize=7)
    ax.set_title(f"{meta['names'][meta['labels'].index(label)]}: {100 * p:.1f}% confidence"
                 + GUESS.get(record.get("membrane_reliable"), ""), fontsize=9)


def plot_protein(record: dict, path: str | Path, tasks: dict | None = None) -> Path:
    """Draw one record (the JSON form of predictions.jsonl) to `path` (PNG, or SVG by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = tasks or task_table()
    residue = [t for t in ("ss3", "ss8") if f"{t}_probabilities" in record]
    protein = [t for t in ("loc", "ms") if f"{t}_probabilities" in record]
    heights = [1.2] * len(residue) + ([2.6] if protein else [])
    fig = plt.figure(figsize=(11, 0.9 + sum(heights)))
    grid = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[3, 2], hspace=0.6, wspace=0.45)
    for row, task in enumerate(residue):
        ax = fig.add_subplot(grid[row, :])
        _track(ax, record, task, tasks[task])
        if row == len(residue) - 1:
            ax.set_xlabel("residue", fontsize=8)
    if protein:
        if "loc" in protein:
            _location(fig.add_subplot(grid[-1, 0] if "ms" in protein else grid[-1, :]), record, tasks["loc"])
        if "ms" in protein:
            sub = grid[-1, 1].subgridspec(3, 1)
            _membrane(fig.add_subplot(sub[1]), record, tasks["ms"])
    fig.suptitle(_title(record), fontsize=10, x=0.02, ha="left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plots(records: Sequence[dict], out_dir: str | Path, fmt: str = "png") -> list[Path]:
    """One figure per record, named after its id (safe_name), in `out_dir`."""
    tasks = task_table()
    return [plot_protein(r, Path(out_dir) / f"{safe_name(r['id'])}.{fmt}", tasks) for r in records]
