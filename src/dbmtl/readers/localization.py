"""DeepLoc localization readers.

Header format `>ACC Location-M|S|U [test]`. The location may contain dots and a slash; the membrane code
is the text after the last `-`. `U` (unknown) becomes None and is excluded from the membrane loss and
score. The dual label `Cytoplasm-Nucleus` is not one of the 10 classes: its location becomes None (no
location loss or score), its membrane label is kept.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from ..tasks import LOCATIONS, MEMBRANE_LABELS
from ..tokens import AMINO_ACIDS
from .fasta import FastaFormatError, read_fasta
from .records import ProteinRecord

DUAL_LOCATIONS = {"Cytoplasm-Nucleus"}


def parse_deeploc_header(rid: str, description: str) -> tuple[str | None, str | None, bool]:
    """-> (location or None, membrane or None, is_test)."""
    parts = description.split()
    if len(parts) < 2 or "-" not in parts[1]:
        raise FastaFormatError(f"record {rid!r}: header {description!r} is not 'ACC Location-M|S|U [test]'")
    location, _, membrane = parts[1].rpartition("-")
    if membrane not in ("M", "S", "U"):
        raise FastaFormatError(f"record {rid!r}: membrane code {membrane!r} is not M, S or U")
    if location in DUAL_LOCATIONS:
        location = None
    elif location not in LOCATIONS:
        raise FastaFormatError(f"record {rid!r}: unknown location {location!r}")
    return location, (membrane if membrane in MEMBRANE_LABELS else None), "test" in parts[2:]


def read_deeploc_fasta(path: str | Path, split: str | None = None, **fasta_kw) -> Iterator[ProteinRecord]:
    """DeepLoc-style FASTA (Light Attention files or the full deeploc_data.fasta).

    split: force a split name; by default records whose header carries `test` are "test", the rest "train".
    """
    for rec in read_fasta(path, **fasta_kw):
        location, membrane, is_test = parse_deeploc_header(rec.id, rec.description)
        yield ProteinRecord(
            rec.id, rec.sequence, location, membrane,
            split or ("test" if is_test else "train"), source=Path(path).name,
        )


def read_labeled_fasta_csv(fasta: str | Path, labels_csv: str | Path) -> Iterator[ProteinRecord]:
    """FASTA with bare ids plus a `Label,Class` CSV (id -> location); location only."""
    with open(labels_csv, newline="") as fh:
        labels = {row["Label"]: row["Class"] for row in csv.DictReader(fh)}
    for rec in read_fasta(fasta):
        if rec.id not in labels:
            raise FastaFormatError(f"{fasta}: record {rec.id!r} has no label in {labels_csv}")
        loc = labels[rec.id]
        if loc not in LOCATIONS:
            raise FastaFormatError(f"{labels_csv}: record {rec.id!r}: unknown location {loc!r}")
        yield ProteinRecord(rec.id, rec.sequence, loc, None, "train", source=Path(fasta).name)


def read_sentences_labels(directory: str | Path, prefix: str) -> Iterator[ProteinRecord]:
    """One sequence per line in sentences.txt, one location per line in labels.txt (no ids, no M/S)."""
    directory = Path(directory)
    with open(directory / "sentences.txt") as fs, open(directory / "labels.txt") as fl:
        for n, (seq, loc) in enumerate(zip(fs, fl, strict=True), 1):
            rid = f"{prefix}_{n}"
            seq, loc = seq.strip().upper(), loc.strip()
            bad = next((i for i, c in enumerate(seq) if c not in AMINO_ACIDS), None)
            if not seq:
                raise FastaFormatError(f"{directory}: record {rid!r}: empty sequence")
            if bad is not None:
                raise FastaFormatError(
                    f"{directory}: record {rid!r}: invalid character {seq[bad]!r} at position {bad + 1}"
                )
            if loc not in LOCATIONS:
                raise FastaFormatError(f"{directory}: record {rid!r}: unknown location {loc!r}")
            yield ProteinRecord(rid, seq, loc, None, "train", source=f"{directory.parent.name}/{directory.name}")


def read_deeploc2_tsv(path: str | Path) -> Iterator[ProteinRecord]:
    """DeepLoc 2.0 proteins as `deeploc2_filtered.tsv` holds them (`accession, locations, membrane, kingdom,
    partition, sequence`; one to five locations joined by '|', already spelled as DeepLoc 1.0's classes).
    A protein with one location gets it as `location`; one with several gets them as `locations`."""
    from .secondary_structure import _check_letters

    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rid, seq = row["accession"], row["sequence"].strip().upper()
            if not seq:
                raise FastaFormatError(f"{path}: record {rid!r}: empty sequence")
            _check_letters(rid, "amino-acid", seq, AMINO_ACIDS)
            locations = tuple(row["locations"].split("|"))
            unknown = set(locations) - set(LOCATIONS)
            if unknown:
                raise FastaFormatError(f"{path}: record {rid!r}: unknown locations {sorted(unknown)}")
            membrane = row["membrane"] if row["membrane"] in MEMBRANE_LABELS else None
            several = len(locations) > 1
            yield ProteinRecord(rid, seq, None if several else locations[0], membrane, "train",
                                source=Path(path).name, locations=locations if several else None)
