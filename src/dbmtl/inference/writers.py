"""Predictions -> files: per-residue TSV, per-protein TSV and JSON lines, written as they come."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..tasks import PROTEIN_TASKS, RESIDUE_TASKS, TASKS
from .predictor import ProteinPrediction

RESIDUE_FILE, PROTEIN_FILE, JSONL_FILE = "residues.tsv", "proteins.tsv", "predictions.jsonl"


def _prob_columns(task_name: str, prefix: str) -> list[str]:
    return [f"p_{prefix}_{label}" for label in TASKS[task_name].labels]


def finished_ids(out_dir: str | Path) -> set[str]:
    """Proteins completely written by an earlier run, made consistent across the three files.

    Per protein the writer appends residue rows, then the protein row, then the JSON line, so a protein
    is finished once its JSON line is complete. Rows of an unfinished protein (a crash mid-write) are
    dropped from the TSV files, and a torn last JSON line is cut, so the resumed run appends cleanly.
    """
    out = Path(out_dir)
    jsonl = out / JSONL_FILE
    if not jsonl.exists():
        return set()
    done, kept = set(), []
    for line in jsonl.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # torn write
        done.add(json.loads(line)["id"])
        kept.append(line)
    jsonl.write_text("".join(kept))
    for name in (RESIDUE_FILE, PROTEIN_FILE):
        path = out / name
        if not path.exists():
            continue
        tmp = path.with_suffix(".tmp")
        with open(path) as src, open(tmp, "w") as dst:
            dst.write(src.readline())  # header
            for line in src:
                if line.endswith("\n") and line.split("\t", 1)[0] in done:
                    dst.write(line)
        tmp.replace(path)
    return done


def _rounded(probs) -> np.ndarray:
    """Probabilities rounded to 4 decimals as float64: the same numbers as round(float(v), 4) for float32
    inputs (v * 1e4 is exact in float64, so rint and the division round once, half to even)."""
    return np.round(np.asarray(probs, dtype=np.float64), 4)


def residue_rows(p: ProteinPrediction, tasks: list[str]) -> str:
    """A protein's residues.tsv rows, formatted by one %-operation over the whole protein (no Python loop
    per residue): id, 1-based position, residue, each task's label, then each task's probabilities."""
    n = len(p.sequence)
    probs = [np.asarray(p.probabilities[t], dtype=np.float64).reshape(n, -1) for t in tasks]
    width = 3 + len(tasks) + sum(pr.shape[1] for pr in probs)
    cells = np.empty((n, width), dtype=object)
    cells[:, 0] = p.id
    cells[:, 1] = np.arange(1, n + 1)
    cells[:, 2] = list(p.sequence)
    col = 3
    for t in tasks:
        cells[:, col] = list(p.labels[t])
        col += 1
    for pr in probs:
        cells[:, col : col + pr.shape[1]] = pr
        col += pr.shape[1]
    row = "\t".join(["%s", "%d", "%s"] + ["%s"] * len(tasks) + ["%.4f"] * (width - 3 - len(tasks))) + "\n"
    return (row * n) % tuple(cells.ravel().tolist())


class PredictionWriter:
    """Appends each batch of predictions to the three output files and flushes, so an interrupted or
    failed run keeps everything finished before it. append=True continues files of an earlier run."""

    def __init__(self, out_dir: str | Path, tasks: tuple[str, ...], append: bool = False):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.append = append
        self.residue_tasks = [t for t in RESIDUE_TASKS if t in tasks]
        self.protein_tasks = [t for t in PROTEIN_TASKS if t in tasks]
        self.files = []
        self.residues = self.proteins = None
        if self.residue_tasks:
            self.residues = self._open(RESIDUE_FILE, ["id", "position", "residue"] + self.residue_tasks
                                       + sum((_prob_columns(t, t) for t in self.residue_tasks), []))
        fields = [TASKS[t].field for t in self.protein_tasks]
        self.proteins = self._open(PROTEIN_FILE, ["id", "length"] + fields
                                   + sum((_prob_columns(t, TASKS[t].field) for t in self.protein_tasks), []))
        self.jsonl = open(self.out / JSONL_FILE, "a" if self.append else "w")
        self.files.append(self.jsonl)
        self.count = 0

    def _open(self, name: str, header: list[str]):
        line = "\t".join(header) + "\n"
        path = self.out / name
        if self.append and path.exists():
            with open(path) as fh:
                if fh.readline() != line:
                    raise ValueError(f"{path} was written with other columns (other --tasks?); cannot resume into it")
            fh = open(path, "a")
        else:
            fh = open(path, "w")
            fh.write(line)
        self.files.append(fh)
        return fh

    def write(self, predictions: list[ProteinPrediction]) -> None:
        for p in predictions:
            if self.residues is not None:
                self.residues.write(residue_rows(p, self.residue_tasks))
            cells = [p.id, str(len(p.sequence))] + [p.labels[t] for t in self.protein_tasks]
            cells += [f"{v:.4f}" for t in self.protein_tasks for v in p.probabilities[t]]
            self.proteins.write("\t".join(cells) + "\n")
            record = {"id": p.id, "length": len(p.sequence), "sequence": p.sequence}
            for t in self.residue_tasks:
                record[t] = p.labels[t]
                record[f"{t}_probabilities"] = _rounded(p.probabilities[t]).tolist()
            for t in self.protein_tasks:
                record[TASKS[t].field] = p.labels[t]
                record[f"{t}_probabilities"] = dict(zip(TASKS[t].labels, _rounded(p.probabilities[t]).tolist()))
            self.jsonl.write(json.dumps(record) + "\n")
            self.count += 1
        for fh in self.files:
            fh.flush()

    def close(self) -> None:
        for fh in self.files:
            fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
