"""The label tables (NetSurfP and CullPDB CSV, DeepLoc's labels CSV), malformed: each stops with a
FastaFormatError naming the file and the row or line, never a traceback from csv, float() or zip()."""
from __future__ import annotations

import gzip
import re

import pytest

from dbmtl.readers.fasta import FastaFormatError, UnreadableInputError
from dbmtl.readers.localization import read_labeled_fasta_csv
from dbmtl.readers.secondary_structure import read_cullpdb_csv, read_netsurfp_csv


HEADER = "input, dssp3, dssp8, disorder, cb513_mask\n"
ROW = "A C D,H H C,H G C,1.0 1.0 0.0,1.0 1.0 1.0\n"


def message(reader, *args, exc_type=FastaFormatError) -> str:
    with pytest.raises(exc_type) as info:
        list(reader(*args))
    return str(info.value)


# -- NetSurfP CSV -----------------------------------------------------------------------------------------------


def test_netsurfp_gzip_bom_and_crlf_read_like_plain(tmp_path):
    path = tmp_path / "mini_HHblits.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + (HEADER + ROW).replace("\n", "\r\n").encode()))
    (rec,) = read_netsurfp_csv(path)
    assert (rec.id, rec.sequence, rec.ss3, rec.ss8, rec.resolved.tolist()) == (
        "mini_1", "ACD", "HHC", "HGC", [True, True, False])


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("", ["empty file", "no header row"]),
        ("\n", ["missing columns"]),
        (ROW + ROW, ["line 1", "missing columns", "'input'"]),                    # no header row at all
        (HEADER + "A C D,H H C\n", ["row 1", "2 fields", "header has 5"]),       # too few columns
        (HEADER + ROW + ROW.strip() + ",1.0\n", ["row 2", "6 fields"]),          # too many columns
        (HEADER + "A C D,H H C,H G C,1.0 yes 0.0,1.0 1.0 1.0\n", ["row 1", "'bad_1'", "disorder", "non-number"]),
        (HEADER + " ,,,,\n", ["row 1", "'bad_1'", "empty sequence"]),
        (HEADER + "x" * 140_000 + ",,,,\n", ["line 2", "malformed CSV"]),       # csv's field size limit
    ],
)
def test_netsurfp_malformed_input_names_file_and_row(tmp_fasta, text, fragments):
    path = tmp_fasta(text, name="bad_HHblits.csv")
    msg = message(read_netsurfp_csv, path)
    assert str(path) in msg and "\n" not in msg
    for fragment in fragments:
        assert fragment in msg


def test_netsurfp_invalid_letters_name_file_and_row(tmp_fasta):
    path = tmp_fasta(HEADER + ROW + ROW.replace("H G C", "H Q C"), name="bad_HHblits.csv")
    msg = message(read_netsurfp_csv, path)
    assert str(path) in msg and "row 2" in msg and "'bad_2'" in msg and "SS8" in msg and "position 2" in msg


def test_netsurfp_non_utf8_names_line(tmp_path):
    path = tmp_path / "latin1_HHblits.csv"
    path.write_bytes(HEADER.encode() + ROW.encode() + b"A \xc9 D,H H C,H G C,1 1 1,1 1 1\n")
    msg = message(read_netsurfp_csv, path, exc_type=UnreadableInputError)
    assert str(path) in msg and re.search(r"\bline 3\b", msg) and "UTF-8" in msg


def test_netsurfp_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_netsurfp_csv(tmp_path / "absent.csv"))


# -- CullPDB CSV ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("", ["empty file"]),
        ("id,input,expected\n", ["missing columns", "'len'"]),
        ("id,len,input,expected\n1,3,ACD\n", ["row 1", "3 fields"]),
        ("id,len,input,expected\n1,three,ACD,HHL\n", ["row 1", "'cullpdb_1'", "not a number"]),
        ("id,len,input,expected\n1,4,ACD,HHL\n", ["row 1", "len=4"]),
        ("id,len,input,expected\n1,3,ACD,HQL\n", ["row 1", "'cullpdb_1'", "SS8", "position 2"]),
        ("id,len,input,expected\n1,3,ACD,HH\n", ["row 1", "'cullpdb_1'", "2 labels for 3 residues"]),
    ],
)
def test_cullpdb_malformed_input_names_file_and_row(tmp_fasta, text, fragments):
    path = tmp_fasta(text, name="cullpdb.csv")
    msg = message(read_cullpdb_csv, path)
    assert str(path) in msg
    for fragment in fragments:
        assert fragment in msg


# -- DeepLoc CSV ------------------------------------------------------------------------------------------------


def test_labeled_csv_malformed_input(tmp_fasta):
    fasta = tmp_fasta(">a\nACD\n>b\nKLM\n")
    cases = [
        ("", ["empty file"]),
        ("Label,Kind\na,Nucleus\n", ["missing columns", "'Class'"]),
        ("Label,Class\na,Nucleus,extra\n", ["row 1", "3 fields"]),
        ("Label,Class\na,Nucleus\n", ["'b'", "has no label"]),
        ("Label,Class\na,Nucleus\nb,Moon\n", ["'b'", "unknown location 'Moon'"]),
    ]
    for text, fragments in cases:
        labels = tmp_fasta(text, name="labels.csv")
        msg = message(read_labeled_fasta_csv, fasta, labels)
        assert all(fragment in msg for fragment in fragments), (text, msg)
