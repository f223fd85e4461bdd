"""CSV tables with a header row, read so that every malformed input is a FastaFormatError naming the file
and row: an empty file, missing columns, a row with the wrong number of fields, or what the csv module
itself rejects. Text decoding (gzip, UTF-8, BOM) is open_text's."""
from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterator

from .fasta import FastaFormatError


Rows = Iterator[tuple[int, list[str]]]


def csv_rows(fh: IO[str], path: str | Path, required: set[str], delimiter: str = ",") -> tuple[dict[str, int], Rows]:
    """-> (column index by stripped header name, (row number, fields) for each non-blank data row).

    Row numbers count data rows from 1, blank rows included, so they match a spreadsheet view minus the
    header. A row whose field count differs from the header's is an error.
    """
    reader = csv.reader(fh, delimiter=delimiter)

    def rows() -> Iterator[list[str]]:
        while True:
            try:
                yield next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FastaFormatError(f"{path} line {reader.line_num}: malformed CSV: {exc}") from None

    all_rows = rows()
    header = next(all_rows, None)
    if header is None:
        raise FastaFormatError(f"{path}: empty file, no header row")
    header = [h.strip() for h in header]
    missing = required - set(header)
    if missing:
        raise FastaFormatError(f"{path} line 1: missing columns {sorted(missing)} in header {header}")

    def data() -> Rows:
        for row_no, row in enumerate(all_rows, 1):
            if not row:
                continue
            if len(row) != len(header):
                raise FastaFormatError(f"{path} row {row_no}: {len(row)} fields, header has {len(header)}")
            yield row_no, row

    return {h: i for i, h in enumerate(header)}, data()


@lru_cache(maxsize=None)
def _outside(allowed: str) -> re.Pattern:
    return re.compile(f"[^{re.escape(allowed)}]")


def check_letters(where: str, rid: str, what: str, text: str, allowed: str) -> None:
    """Refuse the first letter of `text` outside `allowed` (one regex scan, no Python loop per residue);
    `where` names the file and row, so the message says where to look."""
    bad = _outside(allowed).search(text)
    if bad is not None:
        raise FastaFormatError(
            f"{where}: record {rid!r}: invalid {what} letter {bad.group()!r} at position {bad.start() + 1}"
        )
