"""Where FASTA comes from and what can be wrong with the bytes: stdin, pipes, FIFOs, BOM, encodings, damaged
gzip, directories, unreadable files, NUL bytes, huge lines."""
from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dbmtl
from dbmtl.readers import fasta as fasta_module
from dbmtl.readers.fasta import (
    FastaFormatError,
    SequenceRecord,
    SkipReport,
    UnreadableInputError,
    open_text,
    read_fasta,
)

TEXT = ">a first\nACDE\nFGH\n>b\nKLMN\n"
EXPECTED = [("a", "ACDEFGH"), ("b", "KLMN")]
SRC = str(Path(dbmtl.__file__).resolve().parents[1])
READ_STDIN = (
    "import sys\n"
    "from dbmtl.readers.fasta import FastaFormatError, read_fasta\n"
    "try:\n"
    "    for r in read_fasta(sys.argv[1]):\n"
    "        print(r.id, r.sequence)\n"
    "except FastaFormatError as exc:\n"
    "    print('ERROR', exc)\n"
    "print('stdin open' if not sys.stdin.closed else 'stdin closed')\n"
)


def pairs(source, **kw):
    return [(r.id, r.sequence) for r in read_fasta(source, **kw)]


def run_reader(data: bytes, arg: str = "-") -> list[str]:
    """Feed `data` through a real pipe to a fresh interpreter reading FASTA from `arg`."""
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", READ_STDIN, arg], input=data, capture_output=True, env=env,
                          timeout=60, check=True)
    return done.stdout.decode().splitlines()


def error_message(source, exc_type=UnreadableInputError, **kw) -> str:
    with pytest.raises(exc_type) as info:
        list(read_fasta(source, **kw))
    return str(info.value)


# -- standard input, pipes, FIFOs --------------------------------------------------------------------------


def test_dash_reads_a_real_pipe():
    assert run_reader(TEXT.encode()) == ["a ACDEFGH", "b KLMN", "stdin open"]


def test_gzip_through_a_pipe_and_dev_stdin():
    assert run_reader(gzip.compress(TEXT.encode())) == ["a ACDEFGH", "b KLMN", "stdin open"]
    assert run_reader(TEXT.encode(), "/dev/stdin")[:2] == ["a ACDEFGH", "b KLMN"]


def test_errors_on_stdin_name_stdin():
    out = run_reader(b">a\nAC\xffD\n")
    assert out[0].startswith("ERROR <stdin> line 2: not UTF-8")


def test_dash_with_a_replaced_stdin_leaves_it_open(monkeypatch):
    data = io.BytesIO(b"\xef\xbb\xbf" + TEXT.encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(data, encoding="utf-8"))
    assert pairs("-") == EXPECTED
    assert not data.closed


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_opened_once(tmp_path):
    fifo = tmp_path / "in.fasta"
    os.mkfifo(fifo)
    payload = gzip.compress(TEXT.encode())
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'wb').write({payload!r})"])
    try:
        assert pairs(fifo) == EXPECTED
    finally:
        writer.wait(timeout=60)


# -- bytes that are not plain UTF-8 FASTA -----------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_byte_order_mark_is_skipped(tmp_path, compress):
    data = b"\xef\xbb\xbf" + TEXT.replace("\n", "\r\n").encode()
    path = tmp_path / "bom.fasta"
    path.write_bytes(gzip.compress(data) if compress else data)
    assert pairs(path) == EXPECTED
    report = SkipReport()
    assert pairs(path, skip_invalid=True, report=report) == EXPECTED and report.total == 0


def test_byte_order_mark_in_a_text_stream_is_skipped():
    assert pairs(io.StringIO("\ufeff" + TEXT)) == EXPECTED


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_non_utf8_names_file_line_and_byte(tmp_path, skip_invalid):
    path = tmp_path / "latin1.fasta"
    path.write_bytes(b">a\nACDE\n>b caf\xe9\nKLMN\n")
    msg = error_message(path, skip_invalid=skip_invalid)
    assert path.name in msg and re.search(r"\bline 3\b", msg) and "UTF-8" in msg and "0xe9" in msg
    assert "last header read: 'a' at line 1; 0 records before it" in msg


def test_nul_bytes_name_the_line(tmp_path):
    path = tmp_path / "binary.fasta"
    path.write_bytes(b">a\nACDE\n\x00\x00\x01\x02\n")
    msg = error_message(path, skip_invalid=True)
    assert path.name in msg and re.search(r"\bline 3\b", msg) and "NUL" in msg


def test_truncated_gzip_keeps_records_before_and_names_the_damage(tmp_path):
    text = "".join(f">s{i}\nACDEFGHIKLMNPQRSTVWY\n" for i in range(3000))
    data = gzip.compress(text.encode())
    path = tmp_path / "cut.fasta.gz"
    path.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(UnreadableInputError) as info:
        for rec in read_fasta(path):
            got.append(rec.id)
    msg = str(info.value)
    assert path.name in msg and "damaged gzip" in msg
    assert got and got == [f"s{i}" for i in range(len(got))]
    assert f"last header read: 's{len(got)}'" in msg and f"; {len(got)} records before it" in msg


@pytest.mark.parametrize(
    "payload",
    [
        b"\x1f\x8bnot really gzip at all",                                  # magic, then garbage
        b"\x1f\x8b",                                                         # magic only
        gzip.compress(TEXT.encode())[:12] + b"\xff" * 40,                   # corrupt deflate stream
        gzip.compress(TEXT.encode())[:-8] + b"\x00\x00\x00\x00\x01\x00\x00\x00",  # bad CRC and length
    ],
)
def test_fake_or_corrupt_gzip_is_a_damaged_gzip_error(tmp_path, payload):
    path = tmp_path / "fake.fasta.gz"
    path.write_bytes(payload)
    msg = error_message(path, skip_invalid=True)
    assert path.name in msg and "damaged gzip" in msg


def test_gzip_damaged_before_its_first_line_says_so(tmp_path):
    path = tmp_path / "fake.fasta.gz"
    path.write_bytes(b"\x1f\x8bnot really gzip at all")
    msg = error_message(path)
    assert msg.startswith(f"{path}: damaged gzip file before its first line could be read (")
    assert "line 0" not in msg


def test_damage_after_one_record_names_it_in_the_singular(tmp_path):
    path = tmp_path / "cut.fasta.gz"
    path.write_bytes(gzip.compress(b">a\nACDE\n>b\nKLMN\n")[:-12])  # the end of the stream is missing
    msg = error_message(path)
    assert "damaged gzip file after line 3" in msg and "last header read: 'b' at line 3; 1 record before it" in msg


def test_directory_is_a_clear_error(tmp_path):
    msg = error_message(tmp_path)
    assert str(tmp_path) in msg and "directory" in msg


def test_permission_denied_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "locked.fasta"
    path.write_text(TEXT)

    def denied(*args, **kwargs):  # tests may run as root, where chmod 000 still reads
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(fasta_module, "open", denied, raising=False)
    msg = error_message(path)
    assert str(path) in msg and "permission denied" in msg


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.fasta"):
        list(read_fasta(tmp_path / "nothing.fasta"))


def test_unreadable_input_is_a_format_error():
    assert issubclass(UnreadableInputError, FastaFormatError)


# -- sizes -------------------------------------------------------------------------------------------------------


def test_ten_million_residues_on_one_line_read_in_linear_time(tmp_path):
    path = tmp_path / "huge.fasta"
    with open(path, "w") as fh:
        fh.write(">huge\n")
        fh.write("ACDEFGHIKL" * 1_000_000)
        fh.write("*\n>tail\nWW\n")
    start = time.perf_counter()
    got = list(read_fasta(path))
    assert time.perf_counter() - start < 10  # a quadratic join would take minutes
    assert [r.id for r in got] == ["huge", "tail"] and len(got[0].sequence) == 10_000_000


def test_header_line_is_kept_on_the_record(tmp_path):
    path = tmp_path / "lines.fasta"
    path.write_text("\n>a\nAC\nDE\n>b\nK\n")
    got = list(read_fasta(path))
    assert got == [SequenceRecord("a", "a", "ACDE"), SequenceRecord("b", "b", "K")]
    assert [r.line for r in got] == [2, 5]


# -- open_text -------------------------------------------------------------------------------------------------


def test_open_text_streams_lines_and_closes(tmp_path):
    path = tmp_path / "x.txt.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbfone\r\ntwo\n"))
    with open_text(path) as fh:
        assert fh.name == str(path)
        assert fh.readline() == "one\n"
        assert list(fh) == ["two\n"]
        assert fh.readline() == ""
    assert fh.closed
