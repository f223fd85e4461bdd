"""DeepLoc localization readers.

Header format `>ACC Location-M|S|U [test]`. The location may contain dots and a slash; the membrane code
is the text after the last `-`. `U` (unknown) becomes None and is excluded from the membrane loss and
score. The dual label `Cytoplasm-Nucleus` is not one of the 10 classes: its location becomes None (no
location loss or score), its membrane label is kept.
"""
from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Iterator

from ..tasks import LOCATIONS, MEMBRANE_LABELS
from ..tokens import AMINO_ACIDS
from .fasta import FastaFormatError, open_text, read_fasta, source_name
from .records import ProteinRecord
from .table import check_letters, csv_rows

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
    name = source_name(path)
    for rec in read_fasta(path, **fasta_kw):
        try:
            location, membrane, is_test = parse_deeploc_header(rec.id, rec.description)
        except FastaFormatError as exc:
            raise FastaFormatError(f"{name} line {rec.line}: {exc}") from None
        yield ProteinRecord(
            rec.id, rec.sequence, location, membrane,
            split or ("test" if is_test else "train"), source=Path(path).name,
        )


def read_labeled_fasta_csv(fasta: str | Path, labels_csv: str | Path) -> Iterator[ProteinRecord]:
    """FASTA with bare ids plus a `Label,Class` CSV (id -> location); location only."""
    with open_text(labels_csv) as fh:
        col, rows = csv_rows(fh, labels_csv, {"Label", "Class"})
        labels = {row[col["Label"]]: row[col["Class"]] for _, row in rows}
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
    sentences, label_file = directory / "sentences.txt", directory / "labels.txt"
    with open_text(sentences) as fs, open_text(label_file) as fl:
        for n, (seq, loc) in enumerate(zip_longest(fs, fl), 1):
            rid = f"{prefix}_{n}"
            if seq is None or loc is None:
                raise FastaFormatError(
                    f"{directory}: sentences.txt and labels.txt differ in length (line {n} is only in one)"
                )
            seq, loc = seq.strip().upper(), loc.strip()
            bad = next((i for i, c in enumerate(seq) if c not in AMINO_ACIDS), None)
            if not seq:
                raise FastaFormatError(f"{sentences} line {n}: record {rid!r}: empty sequence")
            if bad is not None:
                raise FastaFormatError(
                    f"{sentences} line {n}: record {rid!r}: invalid character {seq[bad]!r} at position {bad + 1}"
                )
            if loc not in LOCATIONS:
                raise FastaFormatError(f"{label_file} line {n}: record {rid!r}: unknown location {loc!r}")
            yield ProteinRecord(rid, seq, loc, None, "train", source=f"{directory.parent.name}/{directory.name}")


def read_deeploc2_tsv(path: str | Path) -> Iterator[ProteinRecord]:
    """DeepLoc 2.0 proteins as `deeploc2_filtered.tsv` holds them (`accession, locations, membrane, kingdom,
    partition, sequence`; one to five locations joined by '|', already spelled as DeepLoc 1.0's classes).
    A protein with one location gets it as `location`; one with several gets them as `locations`."""
    with open_text(path) as fh:
        column, rows = csv_rows(fh, path, {"accession", "locations", "membrane", "sequence"}, delimiter="\t")
        for row_no, row in rows:
            rid, seq = row[column["accession"]], row[column["sequence"]].strip().upper()
            where = f"{path} row {row_no}"
            if not seq:
                raise FastaFormatError(f"{where}: record {rid!r}: empty sequence")
            check_letters(where, rid, "amino-acid", seq, AMINO_ACIDS)
            locations = tuple(row[column["locations"]].split("|"))
            unknown = set(locations) - set(LOCATIONS)
            if unknown:
                raise FastaFormatError(f"{where}: record {rid!r}: unknown locations {sorted(unknown)}")
            membrane = row[column["membrane"]] if row[column["membrane"]] in MEMBRANE_LABELS else None
            several = len(locations) > 1
            yield ProteinRecord(rid, seq, None if several else locations[0], membrane, "train",
                                source=Path(path).name, locations=locations if several else None)
