"""The DeepLoc readers: the real Light Attention files (facts from the data folder's PROVENANCE.md), their
headers, and malformed or arbitrary input, which stops with a FastaFormatError naming the file and the
record, row or line."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given

from helpers import need
from readers.test_secondary_structure_properties import BOUNDED, fragments_to_bytes, reads_or_names_file
from readers.test_table import message

from dbmtl.data.catalog import LOC_DIR
from dbmtl.readers.fasta import FastaFormatError, read_fasta
from dbmtl.readers.localization import parse_deeploc_header, read_deeploc_fasta, read_sentences_labels
from dbmtl.tasks import LOCATIONS

LA_TEST = f"{LOC_DIR}/light_attention/deeploc_test_set.fasta"
LA_VAL = f"{LOC_DIR}/light_attention/deeploc_our_val_set.fasta"


def test_deeploc_test_set(data_dir):
    recs = list(read_deeploc_fasta(need(data_dir, LA_TEST)))
    assert len(recs) == 2_768
    assert {r.split for r in recs} == {"test"}
    assert Counter(r.location for r in recs) == {
        "Cell.membrane": 273, "Cytoplasm": 505, "Endoplasmic.reticulum": 173, "Extracellular": 393,
        "Golgi.apparatus": 70, "Lysosome/Vacuole": 64, "Mitochondrion": 302, "Nucleus": 806,
        "Peroxisome": 30, "Plastid": 152,
    }
    assert Counter(r.membrane for r in recs) == {"M": 743, "S": 1_003, None: 1_022}
    lengths = [len(r.sequence) for r in recs]
    assert (min(lengths), max(lengths)) == (40, 5_654)


def test_deeploc_val_set_dual_label(data_dir):
    path = need(data_dir, LA_VAL)
    recs = list(read_deeploc_fasta(path))
    assert len(recs) == 1_678
    assert {r.split for r in recs} == {"train"}  # no `test` token in these headers
    assert Counter(r.membrane for r in recs) == {"M": 426, "S": 595, None: 657}
    raw = {rec.id: rec.description.split()[1] for rec in read_fasta(path)}
    dual = [r for r in recs if raw[r.id].startswith("Cytoplasm-Nucleus-")]
    assert len(dual) == 23
    assert all(r.location is None for r in dual)
    assert sum(r.location is None for r in recs) == 23
    for r in dual:  # membrane label kept: the code after the last '-'
        code = raw[r.id].rsplit("-", 1)[1]
        assert r.membrane == (None if code == "U" else code)
    # In this file all 23 dual entries are `-U`, so the kept membrane label is None for each of them;
    # the synthetic test below checks that an M/S code on a dual entry survives.
    assert Counter(raw[r.id] for r in dual) == {"Cytoplasm-Nucleus-U": 23}


def test_dual_location_keeps_membrane_label(tmp_fasta):
    path = tmp_fasta(">D1 Cytoplasm-Nucleus-M\nACDE\n>D2 Cytoplasm-Nucleus-S test\nKLMN\n>D3 Nucleus-U\nWW\n")
    got = [(r.id, r.location, r.membrane, r.split) for r in read_deeploc_fasta(path)]
    assert got == [("D1", None, "M", "train"), ("D2", None, "S", "test"), ("D3", "Nucleus", None, "train")]


@pytest.mark.parametrize(
    "description, expected",
    [
        ("Q9H400 Cell.membrane-M test", ("Cell.membrane", "M", True)),
        ("Q1 Lysosome/Vacuole-S", ("Lysosome/Vacuole", "S", False)),
        ("Q2 Cytoplasm-Nucleus-M", (None, "M", False)),
        ("Q3 Endoplasmic.reticulum-U new_test_set ", ("Endoplasmic.reticulum", None, False)),
    ],
)
def test_parse_deeploc_header(description, expected):
    assert parse_deeploc_header(description.split()[0], description) == expected


@pytest.mark.parametrize(
    "header, fragment",
    [
        ("P1 Nucleolus-M", "unknown location"),
        ("P1 Nucleus-Q", "membrane code"),
        ("P1 Nucleus-", "membrane code"),
        ("P1 Nucleus", "not 'ACC Location"),
        ("P1", "not 'ACC Location"),
    ],
)
def test_deeploc_bad_header_names_record(tmp_fasta, header, fragment):
    path = tmp_fasta(f">P0 Nucleus-S\nACDE\n>{header}\nACDE\n")
    with pytest.raises(FastaFormatError) as info:
        list(read_deeploc_fasta(path))
    assert "'P1'" in str(info.value) and fragment in str(info.value)


# -- arbitrary input --------------------------------------------------------------------------------------------

LABELS = [f"{loc}-{m}" for loc in LOCATIONS[:3] for m in "MSU"] + ["Cytoplasm-Nucleus-M", "Moon-M", "Nucleus-Q",
                                                                    "Nucleus", "-", "Nucleus-"]


DEEPLOC_PIECES = [">", ">P1 ", ">P2 ", "\n", " ", " test", "ACDE", "J", "*"] + LABELS


@BOUNDED
@given(fragments_to_bytes(DEEPLOC_PIECES))
def test_deeploc_any_bytes(tmp_path, data):
    path = tmp_path / "any_deeploc.fasta"
    path.write_bytes(data)
    got = reads_or_names_file(read_deeploc_fasta, path)
    assert got is None or all(r.location in LOCATIONS or r.location is None for r in got)


def test_deeploc_bad_label_names_file_line_and_record(tmp_fasta):
    path = tmp_fasta(">P0 Nucleus-S\nACDE\n\n>P1 Nucleolus-M\nACDE\n")
    msg = message(read_deeploc_fasta, path)
    assert str(path) in msg and re.search(r"\bline 4\b", msg) and "'P1'" in msg and "unknown location" in msg


@pytest.mark.parametrize(
    "sentences, labels, fragments",
    [
        ("ACD\nKLM\n", "Nucleus\n", ["differ in length", "line 2"]),
        ("ACD\n", "Nucleus\nCytoplasm\n", ["differ in length", "line 2"]),
        ("ACD\nKJM\n", "Nucleus\nNucleus\n", ["sentences.txt line 2", "'s_2'", "position 2"]),
        ("ACD\n\n", "Nucleus\nNucleus\n", ["sentences.txt line 2", "empty sequence"]),
        ("ACD\n", "Moon\n", ["labels.txt line 1", "unknown location"]),
    ],
)
def test_sentences_labels_malformed_input(tmp_path, sentences, labels, fragments):
    (tmp_path / "sentences.txt").write_text(sentences)
    (tmp_path / "labels.txt").write_text(labels)
    msg = message(read_sentences_labels, tmp_path, "s")
    assert str(tmp_path) in msg
    for fragment in fragments:
        assert fragment in msg
