"""The secondary-structure readers on the real files in the shared data folder (facts from its PROVENANCE.md),
and NetSurfP CSV and FLIP files with bad input."""
from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from helpers import need
from readers.test_table import message

from dbmtl.data.catalog import SS_DIR, TEST_SET_FILES
from dbmtl.readers.fasta import FastaFormatError, read_fasta
from dbmtl.readers.secondary_structure import (read_cullpdb_csv, read_flip, read_netsurfp_csv, read_pisces2018_csv,
                                              terminal_coil)
from dbmtl.tasks import SS3_LABELS, SS8_LABELS, ss8_to_ss3
from dbmtl.tokens import STANDARD_AMINO_ACIDS


CULLPDB = f"{SS_DIR}/cullpdb6133_filtered/cb6133filtered.npy.csv"
PISCES2018 = f"{SS_DIR}/pisces2018/pisces2018_train.csv"


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


# -- FLIP --------------------------------------------------------------------------------------------------


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


# -- CullPDB -----------------------------------------------------------------------------------------------


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


# -- PISCES 2018 ---------------------------------------------------------------------------------------------


def test_terminal_coil_marks_only_the_end_runs():
    assert terminal_coil("CCHHCCEECC").tolist() == [True, True, False, False, False, False, False, False, True, True]
    assert terminal_coil("HCCE").tolist() == [False] * 4
    assert terminal_coil("CCC").tolist() == [True] * 3
    assert terminal_coil("").tolist() == []


def test_pisces2018_counts_labels_and_unscored_termini(data_dir):
    path = need(data_dir, PISCES2018)
    recs = list(read_pisces2018_csv(path))
    assert len(recs) == 981 and len({r.sequence for r in recs}) == 981
    assert (recs[0].id, recs[-1].id) == ("pisces2018_train_1", "pisces2018_train_981")
    assert sum(len(r.sequence) for r in recs) == 185_713  # PROVENANCE: the kept residues
    assert all(r.split == "train" and r.ss3 == ss8_to_ss3(r.ss8) for r in recs)
    unscored = 0
    for r in recs:
        # everything but the terminal coil runs is scored, and a scored stretch starts and ends off coil
        assert r.resolved.tolist() == (~terminal_coil(r.ss8)).tolist(), r.id
        scored = [c for c, k in zip(r.ss8, r.resolved) if k]
        assert not scored or (scored[0] != "C" and scored[-1] != "C"), r.id
        unscored += int((~r.resolved).sum())
    assert unscored == 16_732  # 9.0% of the residues (docs/training.md)


# -- NetSurfP CSV bad input --------------------------------------------------------------------------------

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


# -- FLIP bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seqs, labels, mask, fragments",
    [
        (">a\nACD\n", ">a\nHHC\n>b\nHHC\n", ">a\n111\n", ["different numbers of records"]),
        (">a\nACD\n", ">b\nHHC\n", ">a\n111\n", ["ids out of step"]),
        (">a\nACD\n", ">a\nHQC\n", ">a\n111\n", ["sampled.fasta", "'a'", "position 2"]),
        (">a\nACD\n", ">a\nHHC\n", ">a\n11\n", ["'a'", "mask has 2 entries"]),
    ],
)
def test_flip_malformed_input(tmp_path, seqs, labels, mask, fragments):
    for name, text in (("sequences", seqs), ("sampled", labels), ("mask", mask)):
        (tmp_path / f"{name}.fasta").write_text(text)
    msg = message(read_flip, tmp_path)
    assert str(tmp_path) in msg
    for fragment in fragments:
        assert fragment in msg
