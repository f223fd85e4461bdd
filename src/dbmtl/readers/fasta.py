"""Strict, streaming FASTA reader.

Why our own and not Biopython's: Biopython accepts any letter, silently, and has no notion of a record
error that names the id and position. Here a bad file fails loudly, or (skip_invalid) bad records are
skipped and counted, and the records already read are kept. Files of any size are streamed line by line;
`.gz` is detected from the magic bytes; `-` is standard input (a file named `-` is `./-`).
"""
from __future__ import annotations

import contextlib
import gzip
import io
import re
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from ..tokens import AMINO_ACIDS


class FastaFormatError(ValueError):
    """A FASTA record that breaks the rules; the message names the file, record id and position."""


@dataclass
class SequenceRecord:
    id: str
    description: str
    sequence: str
    line: int = field(default=0, compare=False, repr=False)  # the header's line, for later error messages


@dataclass
class SkipReport:
    """Counts of records skipped in --skip-invalid mode, by reason, with the first few messages."""

    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < 10:
            self.examples.append(message)

    @property
    def total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        if not self.total:
            return "no records skipped"
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return f"skipped {plural(self.total, 'invalid record')} ({reasons})"


def plural(n: int, noun: str) -> str:
    """`1 protein`, `2 proteins`: counts in messages agree with their noun."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# Almost surely DNA or RNA, not a protein: at least 20 letters, at least 95% of them A, C, G, T, U or N.
# Real proteins stay well below (under 80% on the four test sets: tests/readers/test_fasta_nucleotides.py); real
# nucleotide sequences are 100% or nearly so (a few ambiguity codes such as R or Y). Shorter sequences
# (primers, peptides) are left alone: there the letters cannot tell the two apart.
NUCLEOTIDES = "ACGTUN"
NUCLEOTIDE_MIN_LENGTH = 20
NUCLEOTIDE_MIN_SHARE = 0.95


def nucleotide_problem(sequence: str) -> str | None:
    """Why an upper-case sequence looks like DNA or RNA rather than a protein, or None when it does not."""
    if len(sequence) < NUCLEOTIDE_MIN_LENGTH:
        return None
    share = sum(map(sequence.count, NUCLEOTIDES)) / len(sequence)  # one C-level scan per letter
    if share < NUCLEOTIDE_MIN_SHARE:
        return None
    return (f"looks like a nucleotide sequence (DNA or RNA), not a protein: {int(share * 100)}% of its "
            f"{plural(len(sequence), 'letter')} are A, C, G, T, U or N; translate it first, or insist with "
            "--allow-nucleotides (allow_nucleotides=True in Python and the web API)")


STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
# Bytes that are not UTF-8 come out of the "surrogateescape" decoder as lone surrogates U+DC80..U+DCFF,
# which valid UTF-8 can never produce: one cheap test per line instead of decoding line by line ourselves.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class UnreadableInputError(FastaFormatError):
    """The file cannot be read as text at all (damaged gzip, not UTF-8, binary, a directory, no permission).

    Raised even with skip_invalid: no record boundary can be trusted after such damage.
    """


def source_name(source) -> str:
    """How messages name a source: its path, `<stdin>` for `-`, or a stream's `name`."""
    if isinstance(source, (str, Path)):
        return "<stdin>" if str(source) == STDIN else str(source)
    return str(getattr(source, "name", "<stream>"))


def _open_binary(path: str | Path) -> tuple[IO[bytes], str]:
    """-> (a buffered binary stream that can peek, who closes it: "own", "borrowed" or "wrapped").

    Opens exactly once, so pipes, FIFOs and /dev/stdin work. `-` is standard input, never closed here.
    """
    if str(path) == STDIN:
        raw = sys.stdin.buffer
        if hasattr(raw, "peek"):
            return raw, "borrowed"
        return io.BufferedReader(raw), "wrapped"  # e.g. a BytesIO standing in for stdin
    try:
        return open(path, "rb"), "own"
    except IsADirectoryError:
        raise UnreadableInputError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise UnreadableInputError(f"{path}: permission denied (cannot read the file)") from None


class TextSource:
    """Lines of a plain or gzip text source, checked as they stream: UTF-8 (a leading byte-order mark is
    dropped), no NUL bytes, an intact gzip stream. Any failure is an UnreadableInputError naming the file
    and line, never a UnicodeDecodeError, EOFError or zlib.error from deep inside the standard library.
    Universal newlines, as with open(): CRLF and CR end a line."""

    def __init__(self, path: str | Path):
        self.name = source_name(path)
        self._binary, self._ownership = _open_binary(path)
        self._gzip = None
        self._text = None
        try:
            # One peek at the buffered stream, no reopening. A pipe whose first write is a single byte
            # would hide the magic; its data then fails the UTF-8 check with a clear message.
            is_gzip = self._binary.peek(2)[:2] == _GZIP_MAGIC
        except OSError as exc:
            self.close()
            raise UnreadableInputError(f"{self.name}: cannot read: {exc.strerror or exc}") from None
        if is_gzip:
            self._gzip = gzip.GzipFile(fileobj=self._binary, mode="rb")
        self._text = io.TextIOWrapper(self._gzip or self._binary, encoding="utf-8",
                                      errors="surrogateescape", newline=None)
        self._lines = _checked_lines(self._text, self.name)  # no reference back to self: no cycle to collect

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def readline(self) -> str:
        return next(self._lines, "")

    def read(self) -> str:
        return "".join(self._lines)

    @property
    def closed(self) -> bool:
        return self._binary is None

    def close(self) -> None:
        """Close what was opened here; standard input stays open. Safe when the garbage collector has
        already finalized the streams (a dropped reader collected at exit)."""
        if self._binary is None:
            return
        binary, self._binary = self._binary, None
        steps = [
            self._text and self._text.detach,  # a TextIOWrapper would close the stream under it, stdin too
            self._gzip and self._gzip.close,  # leaves the stream under it open
            {"own": binary.close, "wrapped": binary.detach}.get(self._ownership),
        ]
        for step in filter(None, steps):
            with contextlib.suppress(ValueError):  # that stream was already closed
                step()

    def __enter__(self) -> "TextSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _checked_lines(text: IO[str], name: str) -> Iterator[str]:
    """TextSource's lines: undecodable bytes, NUL bytes and gzip damage become UnreadableInputError."""
    lineno = 0
    try:
        for line in text:
            lineno += 1
            if not line.isascii():  # O(1) for ASCII text, the usual case
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                bad = _UNDECODABLE.search(line)
                if bad:
                    raise UnreadableInputError(
                        f"{name} line {lineno}: not UTF-8 text"
                        f" (byte 0x{ord(bad.group()) - 0xDC00:02x} at column {bad.start() + 1})"
                    )
            if "\x00" in line:
                raise UnreadableInputError(
                    f"{name} line {lineno}: NUL byte at column {line.index(chr(0)) + 1}"
                    " (a binary file, not text)"
                )
            yield line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UnreadableInputError(
            f"{name}: damaged gzip file {_after(lineno)} ({exc or type(exc).__name__})"
        ) from None
    except OSError as exc:
        raise UnreadableInputError(f"{name}: read error {_after(lineno)}: {exc.strerror or exc}") from None


def _after(lineno: int) -> str:
    """Where reading broke: after the last complete line read, or before any."""
    return f"after line {lineno}" if lineno else "before its first line could be read"


def open_text(path: str | Path) -> TextSource:
    """Open a plain or gzip-compressed UTF-8 text file (gzip detected by magic bytes), or `-` for standard
    input, for streaming line by line. A missing file is FileNotFoundError; everything else that makes the
    source unreadable is UnreadableInputError (a FastaFormatError) naming the file and, where known, the line.
    """
    return TextSource(path)


def _line_of(position: int, chunks: list[str], lines: list[int]) -> int:
    """The file line holding the sequence's 0-based `position` (only computed for an error message)."""
    for chunk, lineno in zip(chunks, lines):
        if position < len(chunk):
            return lineno
        position -= len(chunk)
    return lines[-1]


def _orphan_message(name: str, lineno: int) -> str:
    return f"{name} line {lineno}: sequence data before the first header ('>' line missing)"


def read_fasta(
    source: str | Path | IO[str],
    alphabet: str = AMINO_ACIDS,
    skip_invalid: bool = False,
    report: SkipReport | None = None,
    check_duplicates: bool = True,
    uppercase: bool = True,
    allow_nucleotides: bool = False,
) -> Iterator[SequenceRecord]:
    """Yield records one at a time.

    Rules: lower case is upper-cased; one terminal `*` is stripped; any other letter outside `alphabet`,
    an empty sequence, sequence lines before the first header, an empty id, and a repeated id are errors;
    so is, when reading proteins (the default alphabet), a record that looks like DNA or RNA
    (nucleotide_problem), unless allow_nucleotides.
    With skip_invalid, a bad record is skipped and counted in `report` instead (a missing header before
    the first record is skipped as one record).

    `source` is a path (plain or gzip, see open_text), `-` for standard input, or an open text stream.
    A source that cannot be read as text raises UnreadableInputError even with skip_invalid.
    """
    name = source_name(source)
    invalid = re.compile(f"[^{re.escape(alphabet)}]")
    seen: set[str] = set()
    report = report if report is not None else SkipReport()
    refuse_nucleotides = alphabet == AMINO_ACIDS and not allow_nucleotides

    def finish(rid, desc, chunks, lines, header_line):
        seq = "".join(chunks)
        if seq.endswith("*"):
            seq = seq[:-1]
        problem = None
        if not rid:
            problem = ("empty id", f"{name} line {header_line}: header has no id")
        elif check_duplicates and rid in seen:
            problem = ("duplicate id", f"{name} line {header_line}: record {rid!r}: duplicate id")
        elif not seq:
            problem = ("empty sequence", f"{name} line {header_line}: record {rid!r}: empty sequence")
        else:
            found = invalid.search(seq)  # one regex scan, no Python loop per residue
            bad = found.start() if found else None
            if bad is not None:
                problem = (
                    "invalid character",
                    f"{name} line {_line_of(bad, chunks, lines)}: record {rid!r}: invalid character {seq[bad]!r}"
                    f" at position {bad + 1} (allowed: {alphabet})",
                )
            elif refuse_nucleotides:
                nucleotides = nucleotide_problem(seq)
                if nucleotides:
                    problem = ("nucleotide sequence", f"{name} line {header_line}: record {rid!r}: {nucleotides}")
        if problem is not None:
            if skip_invalid:
                report.add(*problem)
                if rid:
                    seen.add(rid)
                return None
            raise FastaFormatError(problem[1])
        seen.add(rid)
        return SequenceRecord(rid, desc, seq, header_line)

    handle = open_text(source) if isinstance(source, (str, Path)) else source
    rid = desc = None
    n_records = 0
    try:
        chunks: list[str] = []
        lines: list[int] = []  # the file line of each chunk, to name where a bad letter is
        header_line = 0
        orphan_reported = False
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if lineno == 1 and line.startswith("\ufeff"):  # byte-order mark in a stream we did not open
                line = line[1:]
            if line.startswith(">"):
                if rid is not None:
                    rec = finish(rid, desc, chunks, lines, header_line)
                    n_records += 1
                    if rec is not None:
                        yield rec
                desc = line[1:].strip()
                rid = desc.split(maxsplit=1)[0] if desc else ""
                chunks, lines = [], []
                header_line = lineno
                continue
            stripped = "".join(line.split())
            if not stripped:
                continue
            if rid is None:
                msg = _orphan_message(name, lineno)
                if not skip_invalid:
                    raise FastaFormatError(msg)
                if not orphan_reported:
                    report.add("missing header", msg)
                    orphan_reported = True
                continue
            chunks.append(stripped.upper() if uppercase else stripped)
            lines.append(lineno)
        if rid is not None:
            rec = finish(rid, desc, chunks, lines, header_line)
            if rec is not None:
                yield rec
    except UnreadableInputError as exc:
        if rid is None:
            raise UnreadableInputError(f"{exc} (no header read yet)") from None
        raise UnreadableInputError(
            f"{exc} (last header read: {rid!r} at line {header_line}; {plural(n_records, 'record')} before it)"
        ) from None
    finally:
        if isinstance(source, (str, Path)):
            handle.close()
