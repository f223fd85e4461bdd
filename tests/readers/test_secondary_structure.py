"""Readers on the real files in the shared data folder (facts from its PROVENANCE.md)."""
from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from helpers import need

from dbmtl.data.catalog import LOC_DIR, SS_DIR, TEST_SET_FILES
from dbmtl.readers.fasta import FastaFormatError, read_fasta
from dbmtl.readers.localization import parse_deeploc_header, read_deeploc_fasta
from dbmtl.readers.secondary_structure import read_cullpdb_csv, read_flip, read_netsurfp_csv
from dbmtl.tasks import SS3_LABELS, SS8_LABELS, ss8_to_ss3
from dbmtl.tokens import STANDARD_AMINO_ACIDS

LA_TEST = f"{LOC_DIR}/light_attention/deeploc_test_set.fasta"
LA_VAL = f"{LOC_DIR}/light_attention/deeploc_our_val_set.fasta"
CULLPDB = f"{SS_DIR}/cullpdb6133_filtered/cb6133filtered.npy.csv"


# -- NetSurfP-2.0 CSV test sets ----------------------------------------------------------------------------

NETSURFP = {"CB513": (511, 20, 874), "TS115": (115, 43, 1111)}  # count, min length, max length (PROVENANCE)


@pytest.fixture(scope="module", params=sorted(NETSURFP))
def netsurfp(request, data_dir):
    name = request.param
    path = need(data_dir, TEST_SET_FILES[name])
    return name, path, list(read_netsurfp_csv(path))


def test_netsurfp_counts_lengths_and_ids(netsurfp):
    name, _, recs = netsurfp
    count, lo, hi = NETSURFP[name]
    assert len(recs) == count
    lengths = [len(r.sequence) for r in recs]
    assert (min(lengths), max(lengths)) == (lo, hi)
    assert [r.id for r in recs] == [f"{name}_{i}" for i in range(1, count + 1)]
    assert {r.split for r in recs} == {"test"}


def test_netsurfp_label_and_mask_lengths_agree(netsurfp):
    _, _, recs = netsurfp
    for r in recs:
        n = len(r.sequence)
        assert len(r.ss3) == len(r.ss8) == len(r.resolved) == n, r.id
        assert r.resolved.dtype == bool
        assert set(r.ss3) <= set(SS3_LABELS) and set(r.ss8) <= set(SS8_LABELS), r.id


def test_netsurfp_ss3_is_mapped_ss8(netsurfp):
    name, _, recs = netsurfp
    mismatched = [r.id for r in recs if r.ss3 != ss8_to_ss3(r.ss8)]
    assert mismatched == [], f"{name}: {len(mismatched)}/{len(recs)} records where dssp3 != map(dssp8)"


def test_netsurfp_mask_follows_disorder_and_cb513_mask(netsurfp):
    """resolved == (disorder == 1.0) & (cb513_mask == 1.0), parsed here independently from the raw CSV."""
    _, path, recs = netsurfp
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, skipinitialspace=True))
    assert len(rows) == len(recs)
    for row, r in zip(rows, recs):
        assert "".join(row["input"].split()) == r.sequence
        expected = (np.array(row["disorder"].split(), float) == 1.0) & (np.array(row["cb513_mask"].split(), float) == 1.0)
        np.testing.assert_array_equal(r.resolved, expected, err_msg=r.id)


def test_cb513_has_unresolved_residues(data_dir):
    recs = list(read_netsurfp_csv(need(data_dir, TEST_SET_FILES["CB513"])))
    mask = np.concatenate([r.resolved for r in recs])
    assert 0 < (~mask).sum() < mask.size
    assert any((~r.resolved).any() for r in recs)


# -- FLIP ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flip(data_dir):
    return list(read_flip(need(data_dir, f"{SS_DIR}/flip")))


def test_flip_counts_and_splits(flip):
    assert len(flip) == 10_792
    assert Counter(r.split for r in flip) == {"train": 9_712, "valid": 1_080}
    assert len({r.id for r in flip}) == len(flip)


def test_flip_labels_and_mask(flip):
    assert all(r.ss8 is None for r in flip)
    assert set("".join(r.ss3 for r in flip)) == set(SS3_LABELS)
    mask = np.concatenate([r.resolved for r in flip])
    assert mask.dtype == bool and mask.any() and (~mask).any()
    letters = set("".join(r.sequence for r in flip))
    assert letters == set(STANDARD_AMINO_ACIDS) | set("UOX")


def test_flip_valid_flag_comes_from_sampled_header(data_dir, flip):
    valid_ids = {
        rec.id
        for rec in read_fasta(data_dir / SS_DIR / "flip" / "sampled.fasta", alphabet="HEC")
        if "VALIDATION=True" in rec.description
    }
    assert valid_ids == {r.id for r in flip if r.split == "valid"}


# -- CullPDB -------------------------------------------------------------------------------------------------


def test_cullpdb_dedup_and_labels(data_dir):
    path = need(data_dir, CULLPDB)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5_534
    raw_letters = set("".join(row["expected"] for row in rows))
    assert raw_letters == set("HGIEBTSL")  # no C in the source: coil is L

    recs = list(read_cullpdb_csv(path))
    assert len(recs) == 5_364
    assert len({r.sequence for r in recs}) == len(recs)
    first = {}
    for row in rows:
        first.setdefault(row["input"], row)
    assert [r.sequence for r in recs] == list(first)  # the first occurrence of each sequence, in file order
    for r in recs:
        raw = first[r.sequence]["expected"]
        assert r.ss8 == raw.replace("L", "C"), r.id
        assert set(r.ss8) <= set(SS8_LABELS) and "L" not in r.ss8
        assert r.ss3 == ss8_to_ss3(r.ss8)
        assert r.resolved.all() and len(r.resolved) == len(r.sequence)
    lengths = [len(r.sequence) for r in recs]
    assert (min(lengths), max(lengths)) == (12, 696)


# -- DeepLoc (Light Attention files) --------------------------------------------------------------------------


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


# -- NetSurfP CSV bad input -----------------------------------------------------------------------------------

HEADER = "input, dssp3, dssp8, disorder, cb513_mask\n"


def netsurfp_row(seq, ss3, ss8, disorder=None, mask=None):
    n = len(seq)
    disorder = disorder or ["1.0"] * n
    mask = mask or ["1.0"] * n
    return ",".join(" ".join(x) for x in (seq, ss3, ss8, disorder, mask)) + "\n"


def test_netsurfp_tmp_file_roundtrip(tmp_fasta):
    path = tmp_fasta(HEADER + netsurfp_row("ACDE", "HHEC", "GHBT", disorder=["1.0", "0.0", "1.0", "1.0"]),
                     name="mini_HHblits.csv")
    (rec,) = read_netsurfp_csv(path)
    assert (rec.id, rec.sequence, rec.ss3, rec.ss8) == ("mini_1", "ACDE", "HHEC", "GHBT")
    assert rec.resolved.tolist() == [True, False, True, True]


def test_netsurfp_label_length_mismatch_names_row(tmp_fasta):
    path = tmp_fasta(HEADER + netsurfp_row("ACDE", "HHEC", "HHEC") + netsurfp_row("ACDE", "HHE", "HHEC"),
                     name="bad_HHblits.csv")
    gen = read_netsurfp_csv(path)
    assert next(gen).id == "bad_1"
    with pytest.raises(FastaFormatError) as info:
        next(gen)
    msg = str(info.value)
    assert "row 2" in msg and "'bad_2'" in msg and "ss3" in msg


@pytest.mark.parametrize("column", ["dssp3", "dssp8"])
def test_netsurfp_invalid_ss_letter_names_record(tmp_fasta, column):
    ss3, ss8 = ("HXEC", "HHEC") if column == "dssp3" else ("HHEC", "HLEC")
    path = tmp_fasta(HEADER + netsurfp_row("ACDE", "HHEC", "HHEC") + netsurfp_row("ACDE", ss3, ss8),
                     name="bad_HHblits.csv")
    with pytest.raises(FastaFormatError) as info:
        list(read_netsurfp_csv(path))
    msg = str(info.value)
    assert "'bad_2'" in msg and "position 2" in msg


def test_netsurfp_mask_length_mismatch_names_row(tmp_fasta):
    path = tmp_fasta(HEADER + netsurfp_row("ACDE", "HHEC", "HHEC", disorder=["1.0"] * 3), name="bad.csv")
    with pytest.raises(FastaFormatError, match="row 1"):
        list(read_netsurfp_csv(path))


def test_netsurfp_invalid_amino_acid_names_record(tmp_fasta):
    path = tmp_fasta(HEADER + netsurfp_row("ACJE", "HHEC", "HHEC"), name="bad.csv")
    with pytest.raises(FastaFormatError, match=r"'bad_1'.*position 3"):
        list(read_netsurfp_csv(path))
