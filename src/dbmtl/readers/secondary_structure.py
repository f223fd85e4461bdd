"""Secondary-structure readers: NetSurfP-2.0 CSV, the FLIP triplet, the CullPDB 6133 CSV and the PISCES 2018
CSV (NetSurfP-2.0 layout, unresolved residues labelled coil).

All yield ResidueRecord with SS3, SS8 where the source has it, and a resolved mask: residues without
coordinates are kept in the sequence (the model sees them) but never count in loss or score.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..tasks import SS3_LABELS, SS8_LABELS, ss8_to_ss3
from ..tokens import AMINO_ACIDS
from .fasta import FastaFormatError, open_text, read_fasta
from .records import ResidueRecord
from .table import check_letters, csv_rows


def read_netsurfp_csv(path: str | Path, split: str = "test") -> Iterator[ResidueRecord]:
    """NetSurfP-2.0 CSV (`input, dssp3, dssp8, disorder, cb513_mask`; space-separated per-residue fields).

    The files carry no ids, so records are named `<file stem>_<row>` (1-based). A residue counts only if
    `disorder` is 1.0 (it has coordinates) and, where the column exists, `cb513_mask` is 1.0.
    """
    path = Path(path)
    stem = Path(path.name.removesuffix(".gz")).stem.replace("_HHblits", "")
    with open_text(path) as fh:
        col, rows = csv_rows(fh, path, {"input", "dssp3"})
        for row_no, row in rows:
            rid = f"{stem}_{row_no}"
            where = f"{path} row {row_no}"
            fields = {h: row[i].split() for h, i in col.items()}
            seq = "".join(fields["input"])
            if not seq:
                raise FastaFormatError(f"{where}: record {rid!r}: empty sequence")
            check_letters(where, rid, "amino-acid", seq, AMINO_ACIDS)
            ss3 = "".join(fields["dssp3"])
            ss8 = "".join(fields["dssp8"]) if "dssp8" in fields else None
            resolved = np.ones(len(seq), dtype=bool)
            for mask_col in ("disorder", "cb513_mask"):
                if mask_col in fields:
                    try:
                        values = np.asarray(fields[mask_col], dtype=float)
                    except ValueError:
                        raise FastaFormatError(f"{where}: record {rid!r}: {mask_col} holds a non-number") from None
                    if len(values) != len(seq):
                        raise FastaFormatError(
                            f"{where}: {mask_col} has {len(values)} entries for {len(seq)} residues"
                        )
                    resolved &= values == 1.0
            check_letters(where, rid, "SS3", ss3, "".join(SS3_LABELS))
            if ss8 is not None:
                check_letters(where, rid, "SS8", ss8, "".join(SS8_LABELS))
            try:
                yield ResidueRecord(rid, seq, ss3, ss8, resolved, split, source=stem)
            except ValueError as exc:
                raise FastaFormatError(f"{where}: {exc}") from None


def terminal_coil(ss8: str) -> np.ndarray:
    """True at the leading and trailing runs of coil (`C`) of an 8-state string: where a source that
    labels residues without coordinates as coil has most of them (unresolved termini)."""
    n = len(ss8)
    start = n - len(ss8.lstrip("C"))
    end = len(ss8.rstrip("C")) if start < n else n
    out = np.zeros(n, dtype=bool)
    out[:start] = True
    out[end:] = True
    return out


def read_pisces2018_csv(path: str | Path) -> Iterator[ResidueRecord]:
    """The PISCES 2018 training CSV (NetSurfP-2.0 layout; records `pisces2018_train_<row>`). Its source
    wrote coil for residues without coordinates too and kept no mask, so the leading and trailing coil
    runs, where unresolved residues mostly sit, are marked unresolved (never in loss or score); coil
    inside the chain stays labelled (shared/data's PROVENANCE.md measures the problem)."""
    for rec in read_netsurfp_csv(path, split="train"):
        if rec.ss8 is None:
            raise FastaFormatError(f"{path}: no dssp8 column: a PISCES 2018 file has 8-state labels")
        rec.resolved = rec.resolved & ~terminal_coil(rec.ss8)
        rec.source = "pisces2018"
        yield rec


def read_flip(directory: str | Path) -> Iterator[ResidueRecord]:
    """FLIP secondary-structure triplet: sequences.fasta, sampled.fasta (3-state), mask.fasta (1/0).

    The header of sampled.fasta says `VALIDATION=True` for the proteins kept for model selection; those
    get split "valid", the others "train". The three files must list the same ids in the same order.
    """
    directory = Path(directory)
    seqs = read_fasta(directory / "sequences.fasta")
    labels = read_fasta(directory / "sampled.fasta", alphabet="".join(SS3_LABELS))
    masks = read_fasta(directory / "mask.fasta", alphabet="01")
    triples = zip(seqs, labels, masks, strict=True)
    while True:
        try:
            s, lab, m = next(triples)
        except StopIteration:
            return
        except ValueError as exc:
            if isinstance(exc, FastaFormatError):
                raise
            raise FastaFormatError(f"{directory}: sequences/sampled/mask.fasta hold different numbers of records") from None
        if not (s.id == lab.id == m.id):
            raise FastaFormatError(f"{directory}: ids out of step: {s.id!r}, {lab.id!r}, {m.id!r}")
        split = "valid" if "VALIDATION=True" in lab.description else "train"
        resolved = np.frombuffer(m.sequence.encode(), dtype=np.uint8) == ord("1")
        try:
            yield ResidueRecord(s.id, s.sequence, lab.sequence, None, resolved, split, source="flip")
        except ValueError as exc:
            raise FastaFormatError(f"{directory}: {exc}") from None


def read_cullpdb_csv(path: str | Path, split: str = "train") -> Iterator[ResidueRecord]:
    """CullPDB 6133 filtered CSV (`id,len,input,expected`), 8 states with `L` for coil.

    `L` becomes `C`, SS3 is derived by the standard mapping, and exact repeats of a sequence are dropped
    (the file holds 170 of them). Unresolved residues were removed upstream, so every residue counts.
    """
    path = Path(path)
    seen: set[str] = set()
    with open_text(path) as fh:
        col, rows = csv_rows(fh, path, {"id", "len", "input", "expected"})
        for row_no, row in rows:
            where = f"{path} row {row_no}"
            rid = f"cullpdb_{row[col['id']]}"
            seq = row[col["input"]].strip().upper()
            ss8 = row[col["expected"]].strip().replace("L", "C")
            if not seq:
                raise FastaFormatError(f"{where}: record {rid!r}: empty sequence")
            check_letters(where, rid, "amino-acid", seq, AMINO_ACIDS)
            check_letters(where, rid, "SS8", ss8, "".join(SS8_LABELS))
            try:
                length = int(row[col["len"]])
            except ValueError:
                raise FastaFormatError(f"{where}: record {rid!r}: len {row[col['len']]!r} is not a number") from None
            if length != len(seq):
                raise FastaFormatError(f"{where}: len={length} but sequence has {len(seq)}")
            if seq in seen:
                continue
            seen.add(seq)
            try:
                yield ResidueRecord(rid, seq, ss8_to_ss3(ss8), ss8, np.ones(len(seq), bool), split, "cullpdb")
            except ValueError as exc:
                raise FastaFormatError(f"{where}: {exc}") from None
