"""Per-residue outputs other tools read, chosen with `dbmtl predict --formats`:

  ss2    ss2/<id>.ss2, one file per protein: PSIPRED's vertical format (what PSIPRED and S4PRED write and
         HH-suite, MODELLER or Rosetta read): `pos aa ss3 p(C) p(H) p(E)`
  horiz  horiz/<id>.horiz, one file per protein: PSIPRED's horizontal format, blocks of 60 residues with a
         confidence digit 0-9 per residue (10 x the top SS3 probability as .ss2 prints it, truncated, at
         most 9: S4PRED's digits)
  fasta  structure.fasta: each protein's sequence, SS3 and SS8 strings as three FASTA records, one line
         each (`>description` / sequence, `>id|ss3` / SS3, `>id|ss8` / SS8)

A run writes the per-protein files into one append-only bundle per format (`<name>\t<bytes>\n<text>`
per protein), journaled and cut back on `--resume` like the other files, and merged the same way under
torchrun; publishing splits the bundle into the folder. So a kill at any byte never leaves a stray or a
torn per-protein file.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .. import __version__
from ..tasks import SS3_LABELS
from .predictor import ProteinPrediction

FORMATS = ("ss2", "horiz", "fasta")
FOLDER_FORMATS = ("ss2", "horiz")  # one file per protein, in a folder named after the format
STRUCTURE_FILE = "structure.fasta"
NEEDS = {"ss2": ("ss3",), "horiz": ("ss3",), "fasta": ()}  # tasks a format cannot be written without
BLOCK = 60  # residues per .horiz block, as PSIPRED writes them
_PSIPRED_ORDER = [SS3_LABELS.index(s) for s in "CHE"]  # .ss2 columns: coil, helix, strand


def check_formats(formats, tasks) -> tuple[str, ...]:
    """The extra formats asked for, in a fixed order; a clear error for an unknown one or a missing task."""
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown formats {unknown}; choose from {','.join(FORMATS)}")
    for f in formats:
        missing = [t for t in NEEDS[f] if t not in tasks]
        if missing:
            raise ValueError(f"--formats {f} needs the {','.join(missing)} task; add it to --tasks")
    if "fasta" in formats and not {"ss3", "ss8"} & set(tasks):
        raise ValueError("--formats fasta needs the ss3 or ss8 task; add it to --tasks")
    return tuple(f for f in FORMATS if f in formats)


def bundle_file(fmt: str) -> str:
    return f"{fmt}.bundle"


def ss2_text(p: ProteinPrediction) -> str:
    """PSIPRED VFORMAT: `%4d %c %c  %6.3f %6.3f %6.3f` per residue, probabilities in C, H, E order."""
    probs = np.asarray(p.probabilities["ss3"], dtype=np.float64)[:, _PSIPRED_ORDER]
    n = len(p.sequence)
    cells = np.empty((n, 6), dtype=object)
    cells[:, 0] = np.arange(1, n + 1)
    cells[:, 1] = list(p.sequence)
    cells[:, 2] = list(p.labels["ss3"])
    cells[:, 3:] = probs
    rows = ("%4d %s %s  %6.3f %6.3f %6.3f\n" * n) % tuple(cells.ravel().tolist())
    return f"# PSIPRED VFORMAT (dbmtl {__version__})\n\n" + rows


def confidence_digits(probs: np.ndarray) -> str:
    """The .horiz confidence per residue as S4PRED writes it: 10 x the top probability (rounded to the 3
    decimals of .ss2, so the digit follows from that file), truncated, at most 9."""
    top = np.round(np.asarray(probs, dtype=np.float64).max(1), 3)
    digits = np.minimum(np.floor(10 * top + 1e-9), 9).astype(int)
    return "".join(map(str, digits.tolist()))


def horiz_text(p: ProteinPrediction) -> str:
    """PSIPRED HFORMAT: Conf / Pred / AA lines in blocks of 60 residues, a position ruler every 10."""
    conf = confidence_digits(p.probabilities["ss3"])
    blocks = []
    for start in range(0, len(p.sequence), BLOCK):
        end = min(start + BLOCK, len(p.sequence))
        ruler = "".join(f"{k:10d}" for k in range(start + 10, end + 1, 10))
        blocks.append(f"Conf: {conf[start:end]}\nPred: {p.labels['ss3'][start:end]}\n"
                      f"  AA: {p.sequence[start:end]}\n      {ruler}\n\n")
    return f"# PSIPRED HFORMAT (dbmtl {__version__})\n\n" + "\n".join(blocks)


def structure_record(p: ProteinPrediction, tasks) -> str:
    """A protein's structure.fasta records: its sequence, then each predicted structure string."""
    head = " ".join(p.description.split()) or p.id
    lines = [f">{head}", p.sequence] + [line for t in ("ss3", "ss8") if t in tasks
                                        for line in (f">{p.id}|{t}", p.labels[t])]
    return "\n".join(lines) + "\n"


FOLDER_TEXT = {"ss2": ss2_text, "horiz": horiz_text}


def bundle_entry(name: str, text: str) -> str:
    """One per-protein file in a bundle: its name, its size in bytes, its text."""
    return f"{name}\t{len(text.encode('utf-8'))}\n{text}"


def unbundle(bundle: Path, folder: Path) -> None:
    """Write a bundle's files into `folder` (made anew), each fsynced; safe to repeat after a crash."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    with open(bundle, "rb") as fh:
        while head := fh.readline():
            name, size = head.decode("utf-8").rstrip("\n").split("\t")
            data = fh.read(int(size))
            with open(folder / name, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())


def publish_folders(out: Path, staging: Path, made: dict, previous: tuple[str, ...]) -> None:
    """Replace each per-protein folder this run made with its bundle's files; drop the folders of the
    `previous` run's formats that this run did not make. Safe to repeat after a crash half-way."""
    for fmt in FOLDER_FORMATS:
        bundle = staging / bundle_file(fmt)
        if bundle_file(fmt) in made:
            if bundle.exists():  # gone: published by an earlier try
                unbundle(bundle, staging / fmt)
                shutil.rmtree(out / fmt, ignore_errors=True)
                (staging / fmt).replace(out / fmt)
                bundle.unlink()
        elif fmt in previous:
            shutil.rmtree(out / fmt, ignore_errors=True)
