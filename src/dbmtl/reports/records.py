"""One JSON form of a protein's predictions, shared by the web service, the HTML report and the plots.

It is the form of `predictions.jsonl` (so a report can be rendered from a finished `dbmtl predict` run)
plus the FASTA description, and every task's class names as people write them, so no front end keeps
its own copy of the label tables.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..tasks import PROTEIN_TASKS, RESIDUE_TASKS, TASKS, display_name, output_label

# Colours per task label (helix reds, strand blues, coil greys; ss8 shades of ss3's).
LABEL_COLORS = {
    "ss3": {"H": "#d62728", "E": "#1f77b4", "C": "#bdbdbd"},
    "ss8": {"H": "#d62728", "G": "#ff7f0e", "I": "#e377c2", "E": "#1f77b4", "B": "#17becf",
            "T": "#2ca02c", "S": "#98df8a", "C": "#bdbdbd"},
}
TASK_TITLES = {"ss3": "Secondary structure (3 states)", "ss8": "Secondary structure (8 states)",
               "loc": "Subcellular location (eukaryotic classes)", "ms": "Membrane-bound or soluble"}


def task_table(tasks: Iterable[str] = RESIDUE_TASKS + PROTEIN_TASKS) -> dict:
    """Per task: kind, output field, labels, display names and colours (what a viewer needs)."""
    out = {}
    for name in tasks:
        task = TASKS[name]
        out[name] = {"kind": task.kind, "field": task.field, "title": TASK_TITLES[name],
                     "labels": [output_label(name, label) for label in task.labels],  # as the records hold them
                     "names": [display_name(name, label) for label in task.labels],
                     "colors": [LABEL_COLORS.get(name, {}).get(label, "#6a51a3") for label in task.labels]}
    return out


def read_records(path: str | Path, limit: int | None = None) -> tuple[list[dict], int]:
    """The first `limit` proteins of a predictions.jsonl file and how many it holds in all (a torn last
    line, from an interrupted run, is not counted)."""
    records, total = [], 0
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            total += 1
            if limit is None or len(records) < limit:
                records.append(json.loads(line))
    return records, total
