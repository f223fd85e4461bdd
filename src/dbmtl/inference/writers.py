"""Predictions -> files: per-residue TSV, per-protein TSV and JSON lines, appended chunk by chunk."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..tasks import OUTPUT_TASKS, PROTEIN_TASKS, RESIDUE_TASKS, TASKS, output_label
from .formats import FOLDER_TEXT, STRUCTURE_FILE, bundle_entry, bundle_file, structure_record
from .calibration import reliable
from .predictor import ProteinPrediction

RESIDUE_FILE, PROTEIN_FILE, JSONL_FILE = "residues.tsv", "proteins.tsv", "predictions.jsonl"
YES_NO = {True: "yes", False: "no", None: ""}  # *_reliable in proteins.tsv; empty: the model has no guess threshold


def _prob_columns(task_name: str, prefix: str) -> list[str]:
    return [f"p_{prefix}_{output_label(task_name, label)}" for label in TASKS[task_name].labels]


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


def prediction_record(p: ProteinPrediction, tasks: list[str] | None = None) -> dict:
    """A protein's predictions as one JSON object: the lines of predictions.jsonl, the web service's
    answers and what the HTML report and plots draw. `tasks`: default, every task predicted."""
    record = {"id": p.id, "description": p.description, "length": len(p.sequence), "sequence": p.sequence}
    for t in tasks if tasks is not None else [t for t in OUTPUT_TASKS if t in p.probabilities]:
        task = TASKS[t]
        record[task.field] = output_label(t, p.labels[t])
        values = _rounded(p.probabilities[t]).tolist()
        if task.kind == "protein":  # the probability of the answer given, then every class's by name
            record[f"{task.field}_confidence"] = max(values)
            record[f"{task.field}_reliable"] = reliable(max(values), p.guess_below.get(t))  # None: no threshold
            record[f"{t}_probabilities"] = dict(zip((output_label(t, label) for label in task.labels), values))
        else:  # one list per residue in the order of `{t}_states`: a dict per residue would triple the file
            record[f"{t}_states"] = list(task.labels)
            record[f"{t}_probabilities"] = values
    return record


class PredictionWriter:
    """Appends predictions to the three output files of one folder, and to those of the extra `formats`
    (dbmtl.inference.formats). Nothing is durable until `commit()`, which flushes and fsyncs every file
    and returns their sizes: the journal of a run records those, so a crash or a kill at any byte can be
    cut back to the last committed chunk (`truncate_to`)."""

    def __init__(self, directory: str | Path, tasks: tuple[str, ...], sizes: dict[str, int] | None = None,
                 formats: tuple[str, ...] = ()):
        self.dir = Path(directory)
        self.formats = formats
        self.residue_tasks = [t for t in RESIDUE_TASKS if t in tasks]
        self.protein_tasks = [t for t in PROTEIN_TASKS if t in tasks]
        headers = {PROTEIN_FILE: ["id", "description", "length"]
                   + sum(([TASKS[t].field, f"{TASKS[t].field}_confidence"] for t in self.protein_tasks), [])
                   + sum((_prob_columns(t, TASKS[t].field) for t in self.protein_tasks), [])
                   + [f"{TASKS[t].field}_reliable" for t in self.protein_tasks],
                   JSONL_FILE: None}
        if self.residue_tasks:
            headers[RESIDUE_FILE] = (["id", "position", "residue"] + self.residue_tasks
                                     + sum((_prob_columns(t, t) for t in self.residue_tasks), []))
        for fmt in formats:
            headers[STRUCTURE_FILE if fmt == "fasta" else bundle_file(fmt)] = None
        self.files = {}
        for name, header in headers.items():
            path = self.dir / name
            if sizes is None:  # a new run: fresh files with their header
                fh = open(path, "w", encoding="utf-8", newline="\n")
                if header:
                    fh.write("\t".join(header) + "\n")
            else:  # continuing a run: cut back to the last committed chunk
                truncate_to(path, sizes[name])
                fh = open(path, "a", encoding="utf-8", newline="\n")
            self.files[name] = fh

    @property
    def names(self) -> list[str]:
        return list(self.files)

    def append(self, name: str, text: str) -> None:
        self.files[name].write(text)

    def write(self, predictions: list[ProteinPrediction]) -> None:
        for p in predictions:
            if RESIDUE_FILE in self.files:
                self.append(RESIDUE_FILE, residue_rows(p, self.residue_tasks))
            cells = [p.id, _one_line(p.description), str(len(p.sequence))]
            cells += [c for t in self.protein_tasks
                      for c in (output_label(t, p.labels[t]), f"{float(np.max(p.probabilities[t])):.4f}")]
            cells += [f"{v:.4f}" for t in self.protein_tasks for v in p.probabilities[t]]
            cells += [YES_NO[reliable(np.max(p.probabilities[t]), p.guess_below.get(t))] for t in self.protein_tasks]
            self.append(PROTEIN_FILE, "\t".join(cells) + "\n")
            self.append(JSONL_FILE, json.dumps(prediction_record(p, self.residue_tasks + self.protein_tasks)) + "\n")
            for fmt in self.formats:
                if fmt == "fasta":
                    self.append(STRUCTURE_FILE, structure_record(p, self.residue_tasks))
                else:
                    self.append(bundle_file(fmt), bundle_entry(f"{safe_name(p.id)}.{fmt}", FOLDER_TEXT[fmt](p)))

    def commit(self) -> dict[str, int]:
        """Make everything written so far durable; the files' sizes, for the journal."""
        sizes = {}
        for name, fh in self.files.items():
            fh.flush()
            os.fsync(fh.fileno())
            sizes[name] = fh.tell()
        return sizes

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def output_names(tasks, formats) -> list[str]:
    """The files and folders a run with these tasks and extra formats publishes, for its last message."""
    names = ([RESIDUE_FILE] if set(RESIDUE_TASKS) & set(tasks) else []) + [PROTEIN_FILE, JSONL_FILE]
    return names + [STRUCTURE_FILE if f == "fasta" else f"{f}/" for f in formats]


def truncate_to(path: Path, size: int) -> None:
    """Cut a file back to `size` bytes (what a torn, uncommitted write added goes)."""
    if path.stat().st_size < size:
        raise ValueError(f"{path} is shorter ({path.stat().st_size} bytes) than its journal says ({size}); "
                         "it was changed outside dbmtl: start the run again without --resume")
    with open(path, "r+b") as fh:
        fh.truncate(size)


def _one_line(text: str) -> str:
    """A FASTA description as one TSV cell: tabs and line breaks become spaces."""
    return " ".join(text.split())


NAME_BYTES = 100  # safe_name's longest name: with any suffix a file name stays far under 255 bytes


def safe_name(protein_id: str) -> str:
    """A file or HDF5 name for any id, ASCII, at most NAME_BYTES long: '/' and other unsafe characters
    %-escaped (so distinct ids give distinct names, and '.' or '..' never name a folder); a longer name is
    cut and ends in '~' and a hash of the whole id, which keeps it distinct."""
    name = quote(protein_id, safe="-_.+=,;:@|[]()", errors="surrogatepass")
    name = "%2E" + name[1:] if name.startswith(".") else name
    if len(name) > NAME_BYTES:
        digest = hashlib.sha256(protein_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        head = name[: NAME_BYTES - len(digest) - 1]
        if "%" in head[-2:]:  # never half an escape
            head = head[: head.rindex("%")]
        name = f"{head}~{digest}"
    return name or "%"  # quote never makes a lone '%'
