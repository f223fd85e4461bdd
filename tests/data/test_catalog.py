"""The shared data assembled into training sets, and the leakage guard over them (facts from the PROVENANCE.md
files)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest


from dbmtl.data import catalog as datasets
from dbmtl.data.catalog import SS_DIR, load_training_data, localization_training
from dbmtl.readers.leakage import LeakageGuard
from dbmtl.readers.secondary_structure import read_cullpdb_csv, read_flip
from dbmtl.tasks import LOCATIONS, ss8_to_ss3

CULLPDB = f"{SS_DIR}/cullpdb6133_filtered/cb6133filtered.npy.csv"


# -- assembled training data and the leakage guard ------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluation_sequences(data_dir):
    seqs = {name: {r.sequence for r in recs} for name, recs in datasets.residue_test_sets(data_dir).items()}
    seqs.update({name: {r.sequence for r in recs} for name, recs in datasets.protein_test_sets(data_dir).items()})
    if not {"CB513", "TS115", "DeepLoc"} <= set(seqs):
        pytest.skip("evaluation sets missing from the data folder")
    return seqs


@pytest.fixture(scope="module")
def training(data_dir, evaluation_sequences):
    return load_training_data(data_dir)


def test_localization_union(data_dir, evaluation_sequences):
    recs = localization_training(data_dir, LeakageGuard(evaluation_sequences["DeepLoc"]))
    assert len(recs) == 8_478
    assert len({r.sequence for r in recs}) == len(recs)
    assert not {r.sequence for r in recs} & evaluation_sequences["DeepLoc"]
    la_val = "deeploc_our_val_set.fasta"
    assert {r.source for r in recs if r.membrane is not None} == {la_val}
    assert sum(r.membrane is not None for r in recs) == 426 + 595
    assert sum(r.source == la_val for r in recs) == 1_678  # LA val shares nothing with LA test
    assert {r.location for r in recs} - {None} <= set(LOCATIONS)
    assert {r.source for r in recs if r.location is None} == {la_val}
    assert Counter(r.split for r in recs).keys() == {"train", "valid"}


def test_guard_removes_every_evaluation_sequence(training, evaluation_sequences):
    evaluation = set().union(*evaluation_sequences.values())
    assert not {r.sequence for r in training.residue} & evaluation
    assert not {r.sequence for r in training.protein} & evaluation
    assert len({r.sequence for r in training.residue}) == len(training.residue)
    assert len({r.sequence for r in training.protein}) == len(training.protein)


def test_guard_removed_counts(data_dir, training, evaluation_sequences):
    evaluation = set().union(*evaluation_sequences.values())
    ss_seqs = {r.sequence for r in read_flip(data_dir / SS_DIR / "flip")}
    ss_seqs |= {r.sequence for r in read_cullpdb_csv(data_dir / CULLPDB)}
    removed = training.guard.removed
    # PROVENANCE: FLIP shares 2 sequences with CB513 and 1 with TS115; DeepLoc test may add more.
    assert removed["secondary structure"] == len(ss_seqs & evaluation) >= 3
    assert len(training.residue) == len(ss_seqs) - removed["secondary structure"]
    # PROVENANCE: 826 re-split sequences are identical to LA test entries; the other sources share none.
    assert removed["localization"] == 826
    assert len(training.protein) == 8_478


def test_residue_training_merge(data_dir, training, evaluation_sequences):
    evaluation = set().union(*evaluation_sequences.values())
    flip_seqs = {r.sequence for r in read_flip(data_dir / SS_DIR / "flip")}
    cull_seqs = {r.sequence for r in read_cullpdb_csv(data_dir / CULLPDB)}
    assert len(flip_seqs & cull_seqs) == 609  # PROVENANCE
    assert {r.split for r in training.residue} == {"train", "valid"}
    merged = []
    for r in training.residue:
        assert r.ss3 is not None and len(r.ss3) == len(r.sequence) == len(r.resolved)
        if r.source == "cullpdb":
            assert r.ss3 == ss8_to_ss3(r.ss8) and r.resolved.all()
        elif r.ss8 is not None:
            merged.append(r)
    # FLIP proteins also in CullPDB gain its SS8 (those identical to an evaluation protein are gone)
    assert {r.sequence for r in merged} == (flip_seqs & cull_seqs) - evaluation
    # the merge pairs the right labels: FLIP's SS3 agrees with CullPDB's mapped SS8 on almost every
    # resolved residue (not on all: the two sources ran DSSP separately)
    agree = sum(int(((np.frombuffer(r.ss3.encode(), "u1") == np.frombuffer(ss8_to_ss3(r.ss8).encode(), "u1"))
                     & r.resolved).sum()) for r in merged)
    total = sum(int(r.resolved.sum()) for r in merged)
    assert agree / total > 0.95


def test_pisces2018_joins_training_only(data_dir, training, evaluation_sequences):
    """ss_sources "...+pisces2018" adds the PISCES 2018 chains to the training split; the validation
    proteins (what lineage stages are chosen on) stay exactly those of the default."""
    from dbmtl.readers.secondary_structure import read_pisces2018_csv
    need_path = data_dir / SS_DIR / "pisces2018" / "pisces2018_train.csv"
    if not need_path.exists():
        pytest.skip("pisces2018 missing from the data folder")
    guard = LeakageGuard(set().union(*evaluation_sequences.values()))
    wider = datasets.secondary_structure_training(data_dir, guard, sources="flip+cullpdb+pisces2018")
    base = {r.sequence: r for r in training.residue}
    added = [r for r in wider if r.sequence not in base]
    pisces = {r.sequence for r in read_pisces2018_csv(need_path)}
    # PROVENANCE: the file keeps only chains the other training sets and the test sets lack
    assert {r.sequence for r in added} == pisces and len(added) == 981
    assert all(r.split == "train" and r.source == "pisces2018" for r in added)
    assert [r.sequence for r in wider if r.split == "valid"] == [r.sequence for r in training.residue
                                                                  if r.split == "valid"]
    with pytest.raises(ValueError, match="ss_sources must be one of"):
        datasets.secondary_structure_training(data_dir, guard, sources="pisces")
