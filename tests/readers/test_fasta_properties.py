"""Properties of read_fasta over generated input: every well-formed file reads back exactly, however it is
wrapped, encoded, compressed or delivered; any bytes at all give records or a FastaFormatError naming the
file, never another exception; skip mode raises only for a source that cannot be read as text."""
from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbmtl
from dbmtl.readers.fasta import (FastaFormatError, SkipReport, UnreadableInputError, nucleotide_problem,
                                 read_fasta)
from dbmtl.tokens import AMINO_ACIDS

BOUNDED = settings(max_examples=150, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])
BOM = b"\xef\xbb\xbf"
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.|-"

ids = st.text(ID_ALPHABET, min_size=1, max_size=12)
# proteins: a run like AAAA...A of 20 letters or more is refused as DNA (nucleotide_problem), tested on its own
sequences = st.text(AMINO_ACIDS + AMINO_ACIDS.lower(), min_size=1, max_size=300).filter(
    lambda s: nucleotide_problem(s.upper()) is None)
descriptions = st.one_of(st.just(""), st.text(ID_ALPHABET + " =", max_size=20).map(str.strip))


@st.composite
def fasta_files(draw):
    """-> (file bytes, expected [(id, description, sequence)])."""
    rids = draw(st.lists(ids, min_size=0, max_size=8, unique=True))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines, expected = [], []
    for rid in rids:
        seq, desc = draw(sequences), draw(descriptions)
        header = f"{rid} {desc}".strip()
        expected.append((rid, header, seq.upper()))
        lines.append(">" + header)
        stored = seq + ("*" if draw(st.booleans()) else "")
        width = draw(st.one_of(st.none(), st.integers(1, 80)))
        if width is None:
            lines.append(stored)
        else:
            lines.extend(stored[i:i + width] for i in range(0, len(stored), width))
        lines.extend([""] * draw(st.integers(0, 2)))
    data = newline.join(lines).encode() + (newline.encode() if lines and draw(st.booleans()) else b"")
    if draw(st.booleans()):
        data = BOM + data
    if draw(st.booleans()):
        data = gzip.compress(data)
    return data, expected


def triples(source, **kw):
    return [(r.id, r.description, r.sequence) for r in read_fasta(source, **kw)]


@BOUNDED
@given(fasta_files())
def test_round_trip_from_a_file(tmp_path, case):
    data, expected = case
    path = tmp_path / "round.fasta"
    path.write_bytes(data)
    assert triples(path) == expected
    report = SkipReport()
    assert triples(path, skip_invalid=True, report=report) == expected and report.total == 0


@BOUNDED
@given(fasta_files())
def test_round_trip_from_stdin(monkeypatch, case):
    data, expected = case
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        assert triples("-") == expected


@settings(max_examples=8, deadline=None, database=None)
@given(fasta_files())
def test_round_trip_through_a_real_pipe(case):
    data, expected = case
    code = (
        "import sys\n"
        "from dbmtl.readers.fasta import read_fasta\n"
        "for r in read_fasta('-'):\n"
        "    print(repr((r.id, r.description, r.sequence)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(dbmtl.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, env=env, timeout=60,
                         check=True).stdout.decode()
    assert out.splitlines() == [repr(t) for t in expected]


# -- arbitrary input ---------------------------------------------------------------------------------------------

# Pieces that reach every branch of the reader: headers, sequence, stops, blank lines, CR, BOM, bad bytes.
FRAGMENTS = [b">", b">a", b">a b", b"> ", b"ACDE", b"acj", b"*", b"\n", b"\r\n", b"\r", b"  ", b"\t",
             BOM, b"\xff", b"\xc3\xa9", b"\xc3", b"\x00", b"\x1f\x8b"]
fasta_like = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join)
any_bytes = st.one_of(
    st.binary(max_size=400),
    fasta_like,
    fasta_like.map(gzip.compress),
    fasta_like.map(lambda b: gzip.compress(b)[: max(1, len(gzip.compress(b)) // 2)]),  # truncated gzip
    st.binary(max_size=100).map(lambda b: b"\x1f\x8b" + b),                           # magic, then anything
)


@BOUNDED
@given(any_bytes)
def test_any_bytes_give_records_or_a_format_error_naming_the_file(tmp_path, data):
    path = tmp_path / "arbitrary.fasta"
    path.write_bytes(data)
    try:
        got = list(read_fasta(path))
    except FastaFormatError as exc:
        assert path.name in str(exc)
        assert "\n" not in str(exc)
    else:
        assert all(r.id and r.sequence and set(r.sequence) <= set(AMINO_ACIDS) for r in got)


@BOUNDED
@given(any_bytes)
def test_skip_mode_raises_only_for_unreadable_sources(tmp_path, data):
    path = tmp_path / "arbitrary.fasta"
    path.write_bytes(data)
    report = SkipReport()
    try:
        got = list(read_fasta(path, skip_invalid=True, report=report))
    except UnreadableInputError as exc:
        assert path.name in str(exc)
    else:
        assert len({r.id for r in got}) == len(got)
