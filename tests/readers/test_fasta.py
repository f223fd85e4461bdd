"""The strict streaming FASTA reader: accepted input, every rejected case, skip mode, gzip, CRLF, streaming."""
from __future__ import annotations

import gzip
import io
import re
from collections import Counter

import pytest

from dbmtl.readers.fasta import FastaFormatError, SequenceRecord, SkipReport, read_fasta
from dbmtl.tokens import AMINO_ACIDS, STANDARD_AMINO_ACIDS

MULTI = (
    ">sp|P1|ONE first protein OS=Test\n"
    "ACDEFGHIKL\n"
    "MNPQRSTVWY\n"
    "ACD\n"
    ">P2\n"
    "KKKK\n"
    "\n"
    ">P3 third\n"
    "WWW\n"
)
MULTI_RECORDS = [
    SequenceRecord("sp|P1|ONE", "sp|P1|ONE first protein OS=Test", "ACDEFGHIKLMNPQRSTVWYACD"),
    SequenceRecord("P2", "P2", "KKKK"),
    SequenceRecord("P3", "P3 third", "WWW"),
]


def records(path, **kw):
    return list(read_fasta(path, **kw))


def raises_format_error(path, **kw) -> str:
    with pytest.raises(FastaFormatError) as info:
        records(path, **kw)
    return str(info.value)


# -- valid input -------------------------------------------------------------------------------------------


def test_multiline_records_are_joined_in_order(tmp_fasta):
    assert records(tmp_fasta(MULTI)) == MULTI_RECORDS


def test_accepts_str_path_and_text_stream(tmp_fasta):
    path = tmp_fasta(MULTI)
    assert records(str(path)) == MULTI_RECORDS
    assert records(io.StringIO(MULTI)) == MULTI_RECORDS


def test_lowercase_is_uppercased(tmp_fasta):
    path = tmp_fasta(">a\nacdEF\nghik\n")
    assert [r.sequence for r in records(path)] == ["ACDEFGHIK"]


def test_terminal_stop_is_stripped(tmp_fasta):
    path = tmp_fasta(">a\nACDE*\n>b\nAC\nDE*\n>c\nACDE\n*\n")
    assert [r.sequence for r in records(path)] == ["ACDE", "ACDE", "ACDE"]


def test_full_25_letter_alphabet_is_accepted(tmp_fasta):
    assert len(AMINO_ACIDS) == 25
    assert set(AMINO_ACIDS) == set(STANDARD_AMINO_ACIDS) | set("UOBZX")
    seq = STANDARD_AMINO_ACIDS + "UOBZX"
    path = tmp_fasta(f">all\n{seq}\n>lower\n{seq.lower()}\n")
    assert [r.sequence for r in records(path)] == [seq, seq]


def test_empty_file_yields_nothing(tmp_fasta):
    assert records(tmp_fasta("")) == []


def test_custom_alphabet_is_enforced(tmp_fasta):
    assert [r.sequence for r in records(tmp_fasta(">m\n0110\n"), alphabet="01")] == ["0110"]
    msg = raises_format_error(tmp_fasta(">m\n0120\n"), alphabet="01")
    assert "'m'" in msg and "position 3" in msg


def test_duplicate_ids_allowed_when_check_disabled(tmp_fasta):
    path = tmp_fasta(">x\nAC\n>x\nDE\n")
    assert [r.sequence for r in records(path, check_duplicates=False)] == ["AC", "DE"]


# -- rejected input: each error names the file, the record and the position / line ---------------------------


@pytest.mark.parametrize("letter", ["J", "1", "-", ".", "?", "#"])
def test_invalid_character_names_record_and_position(tmp_fasta, letter):
    # the bad letter is the 13th residue of record 'p2', on its second sequence line
    path = tmp_fasta(f">p1\nACDE\n>p2 second\nACDEFGHIKL\nMN{letter}PQ\n")
    msg = raises_format_error(path)
    assert path.name in msg
    assert "'p2'" in msg
    assert "position 13" in msg
    assert repr(letter) in msg
    assert f"{path} line 5: record 'p2'" in msg  # the line that holds the letter, as README promises


def test_lowercase_invalid_letter_is_reported(tmp_fasta):
    msg = raises_format_error(tmp_fasta(">q\nacj\n"))
    assert "'q'" in msg and "position 3" in msg


def test_stop_in_the_middle_is_an_error(tmp_fasta):
    msg = raises_format_error(tmp_fasta(">mid\nAC*DE\n"))
    assert "'mid'" in msg and "'*'" in msg and "position 3" in msg


def test_stop_at_end_of_an_inner_line_is_an_error(tmp_fasta):
    msg = raises_format_error(tmp_fasta(">mid\nACD*\nEF\n"))
    assert "'mid'" in msg and "position 4" in msg


def test_only_one_terminal_stop_is_stripped(tmp_fasta):
    msg = raises_format_error(tmp_fasta(">two\nACD**\n"))
    assert "'two'" in msg and "position 4" in msg


@pytest.mark.parametrize(
    "text, rid, line",
    [
        (">e1\n>e2\nACD\n", "e1", 1),          # empty record followed by another header
        (">e1\nACD\n>e2\n", "e2", 3),          # empty record at the end of the file
        (">e1\nACD\n>e2\n\n  \n", "e2", 3),    # only blank lines
        (">e1\n*\n", "e1", 1),                 # only a stop codon
    ],
)
def test_empty_sequence_names_record_and_header_line(tmp_fasta, text, rid, line):
    path = tmp_fasta(text)
    msg = raises_format_error(path)
    assert path.name in msg
    assert "empty sequence" in msg
    assert repr(rid) in msg
    assert re.search(rf"\bline {line}\b", msg)


@pytest.mark.parametrize("text, line", [("ACDE\n>p1\nACD\n", 1), ("\n\nACDE\n>p1\nACD\n", 3)])
def test_sequence_before_first_header_names_line(tmp_fasta, text, line):
    path = tmp_fasta(text)
    msg = raises_format_error(path)
    assert path.name in msg
    assert "header" in msg
    assert re.search(rf"\bline {line}\b", msg)


@pytest.mark.parametrize("header", [">", "> ", ">\t"])
def test_empty_id_names_line(tmp_fasta, header):
    path = tmp_fasta(f">ok\nACD\n{header}\nACD\n")
    msg = raises_format_error(path)
    assert path.name in msg
    assert "no id" in msg
    assert re.search(r"\bline 3\b", msg)


def test_duplicate_id_names_record_and_line(tmp_fasta):
    path = tmp_fasta(">p1 a\nACD\n>p2\nKL\n>p1 b\nMN\n")
    msg = raises_format_error(path)
    assert path.name in msg
    assert "duplicate" in msg
    assert "'p1'" in msg
    assert re.search(r"\bline 5\b", msg)


def test_format_error_is_a_value_error():
    assert issubclass(FastaFormatError, ValueError)


# -- gzip and line endings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["input.fasta.gz", "no_suffix.fasta"])
def test_gzip_input_gives_same_records(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(gzip.compress(MULTI.encode()))
    assert records(path) == MULTI_RECORDS


def test_gzip_errors_are_reported_too(tmp_path):
    path = tmp_path / "bad.fasta.gz"
    path.write_bytes(gzip.compress(b">g1\nACD\n>g2\nAJ\n"))
    msg = raises_format_error(path)
    assert "'g2'" in msg and "position 2" in msg


def test_crlf_line_endings(tmp_fasta, tmp_path):
    crlf = MULTI.replace("\n", "\r\n")
    assert "\r\n" in crlf
    assert records(tmp_fasta(crlf)) == MULTI_RECORDS
    assert records(io.StringIO(crlf, newline="")) == MULTI_RECORDS
    gz = tmp_path / "crlf.fasta.gz"
    gz.write_bytes(gzip.compress(crlf.encode()))
    assert records(gz) == MULTI_RECORDS


def test_crlf_error_positions_ignore_carriage_returns(tmp_fasta):
    msg = raises_format_error(tmp_fasta(">c1\r\nACDE\r\nFJ\r\n"))
    assert "'c1'" in msg and "position 6" in msg and "\\r" not in msg


# -- skip_invalid ---------------------------------------------------------------------------------------------


SKIP_TEXT = (
    "ORPHAN\n"          # missing header (counted once)
    "LINES\n"
    ">good1\nACDE\n"
    ">badchar\nACJE\n"
    ">good2\nKLMN\n"
    ">empty\n"
    ">good1\nWWWW\n"    # duplicate id
    ">midstop\nAC*D\n"
    ">good3 last\nPQRS*\n"
    ">\nACDE\n"         # empty id
)


def test_skip_invalid_keeps_good_records_in_order_and_counts_reasons(tmp_fasta):
    report = SkipReport()
    got = records(tmp_fasta(SKIP_TEXT), skip_invalid=True, report=report)
    assert [(r.id, r.sequence) for r in got] == [("good1", "ACDE"), ("good2", "KLMN"), ("good3", "PQRS")]
    assert report.skipped == Counter(
        {"missing header": 1, "invalid character": 2, "empty sequence": 1, "duplicate id": 1, "empty id": 1}
    )
    assert report.total == 6
    assert len(report.examples) == 6
    assert any("'badchar'" in m and "position 3" in m for m in report.examples)
    summary = report.summary()
    assert "6" in summary and "invalid character" in summary


def test_skip_summary_agrees_with_its_count():
    report = SkipReport()
    report.add("empty sequence", "x")
    assert report.summary() == "skipped 1 invalid record (1 empty sequence)"
    report.add("empty sequence", "y")
    assert report.summary() == "skipped 2 invalid records (2 empty sequence)"


def test_skip_invalid_without_report_still_skips(tmp_fasta):
    got = records(tmp_fasta(SKIP_TEXT), skip_invalid=True)
    assert [r.id for r in got] == ["good1", "good2", "good3"]


def test_skip_report_examples_are_capped():
    report = SkipReport()
    for i in range(25):
        report.add("empty sequence", f"msg {i}")
    assert report.total == 25 and len(report.examples) == 10
    assert SkipReport().summary() == "no records skipped"


def test_same_bad_file_raises_without_skip(tmp_fasta):
    with pytest.raises(FastaFormatError):
        records(tmp_fasta(SKIP_TEXT))


# -- streaming ------------------------------------------------------------------------------------------------


def test_first_record_is_yielded_before_a_later_error(tmp_fasta):
    path = tmp_fasta(">r1\nACDE\n>r2\nAJ\n>r3\nKL\n")
    gen = read_fasta(path)
    assert next(gen) == SequenceRecord("r1", "r1", "ACDE")
    with pytest.raises(FastaFormatError, match="'r2'"):
        next(gen)


class CountingLines:
    """A text source that counts how many lines the reader has pulled from it."""

    name = "<counting>"

    def __init__(self, text: str):
        self._lines = iter(text.splitlines(keepends=True))
        self.read = 0

    def __iter__(self):
        return self

    def __next__(self):
        line = next(self._lines)
        self.read += 1
        return line


def test_reader_does_not_consume_the_whole_file_for_the_first_record():
    n = 1000
    text = "".join(f">s{i}\nACDEFGHIK\nLMNPQ\n" for i in range(n))
    source = CountingLines(text)
    gen = read_fasta(source)
    first = next(gen)
    assert first == SequenceRecord("s0", "s0", "ACDEFGHIKLMNPQ")
    assert source.read <= 4  # its two sequence lines plus the next header
    second = next(gen)
    assert second.id == "s1" and source.read <= 7
    assert sum(1 for _ in gen) == n - 2
    assert source.read == 3 * n
