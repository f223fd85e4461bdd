"""The v3 training data: the reconstructed DeepLoc 1.0 training partition, DeepLoc 2.0 (several locations as
soft targets) and the UniRef samples, deduplicated, held out by digest, and never a test protein."""
from collections import Counter

import pytest
import torch

from helpers import need

from dbmtl.data import catalog
from dbmtl.data.catalog import (DEEPLOC2_ALL, LA_TRAIN_RECONSTRUCTED, corpus_files, evaluation_guard, in_holdout,
                                load_training_data, localization_training)
from dbmtl.data.corpus import stream_corpus
from dbmtl.data.layouts import layout_for
from dbmtl.data.onepass import location_target
from dbmtl.data.pools import labeled_examples
from dbmtl.readers.fasta import SkipReport
from dbmtl.tasks import LOCATIONS
from dbmtl.tokens import Alphabet

LA_TRAIN = "deeploc_our_train_set.reconstructed.fasta"


@pytest.fixture(scope="module")
def test_sequences(data_dir):
    sets = {n: {r.sequence for r in recs} for n, recs in catalog.residue_test_sets(data_dir).items()}
    sets.update({n: {r.sequence for r in recs} for n, recs in catalog.protein_test_sets(data_dir).items()})
    if set(sets) != {"CB513", "TS115", "CASP12", "DeepLoc"}:
        pytest.skip("a test set is missing from the data folder")
    return sets


@pytest.fixture(scope="module")
def settings(data_dir, test_sequences):
    need(data_dir, LA_TRAIN_RECONSTRUCTED), need(data_dir, DEEPLOC2_ALL)
    out = {}
    for name in ("deeploc1", "deeploc1+deeploc2"):
        guard = evaluation_guard(data_dir)
        out[name] = (localization_training(data_dir, guard, sources=name), guard.removed["localization"])
    return out


def test_the_guard_covers_every_test_set_casp12_included(data_dir, test_sequences):
    guard = evaluation_guard(data_dir)
    for name, seqs in test_sequences.items():
        assert all(guard.is_leak(s) for s in seqs), name
    assert len(test_sequences["CASP12"]) == 20


def test_deeploc1_the_papers_training_partition(settings, test_sequences):
    records, removed = settings["deeploc1"]
    # 8,966 reconstructed LA training proteins (16 sequences twice), then what the subsets add
    sources = Counter(r.source for r in records)
    assert sources == {LA_TRAIN: 8_950, "deeploc_our_val_set.fasta": 1_678, "deeploc_train_sub5k_fixed.fasta": 196,
                       "seraveea_random_split/val": 54, "seraveea_random_split/test": 43}
    assert len(records) == 10_921 and removed == 826
    assert sum(r.membrane is not None for r in records) == 6_428
    assert sum(r.location is None for r in records) == 142  # Cytoplasm-Nucleus: no location loss
    assert not any(r.locations for r in records)
    assert sum(r.split == "valid" for r in records) == 1_091


def test_deeploc1_plus_deeploc2(settings):
    records, removed = settings["deeploc1+deeploc2"]
    first = {r.sequence: r for r in settings["deeploc1"][0]}
    assert len(records) == 19_450 and removed == 829  # 3 DeepLoc 2.0 proteins are identical to test proteins
    # preference order: what deeploc1 has is kept as it is
    assert all(first[r.sequence] is not r and first[r.sequence].source == r.source for r in records if r.sequence in first)
    sources = Counter(r.source for r in records)
    assert sources["deeploc2_single_label_filtered.fasta"] == 4_745 and sources["deeploc2_filtered.tsv"] == 3_784
    several = [r for r in records if r.locations]
    assert len(several) == 3_784 and all(r.location is None and 2 <= len(r.locations) <= 5 for r in several)
    assert {loc for r in several for loc in r.locations} <= set(LOCATIONS)
    assert sum(r.membrane is not None for r in records) == 14_957
    assert sum(r.split == "valid" for r in records) == 1_935


@pytest.mark.parametrize("name", ["deeploc1", "deeploc1+deeploc2"])
def test_unique_held_out_by_digest_and_no_test_protein(settings, test_sequences, name):
    records, _ = settings[name]
    seqs = [r.sequence for r in records]
    assert len(set(seqs)) == len(seqs)
    assert not set(seqs) & set().union(*test_sequences.values())
    assert all((r.split == "valid") == in_holdout(r.sequence, 10) for r in records)


def test_soft_location_targets_sum_to_one(settings):
    several = [r for r in settings["deeploc1+deeploc2"][0] if r.locations][:50]
    for r in several:
        target = location_target(r.location, r.locations)
        assert float(target.sum()) == pytest.approx(1.0)
        assert torch.equal(target > 0, torch.tensor([c in r.locations for c in LOCATIONS]))
    assert float(location_target("Nucleus", None).max()) == 1.0 and float(location_target(None, None).sum()) == 0.0

    class Data:
        protein = several

    # the other kinds: one row per location, weighted 1/k, so a protein's weights still sum to 1
    rows = labeled_examples("loc", Data, layout_for("encoder", Alphabet(), 1024), soft_locations=True)
    assert len(rows) == sum(len(r.locations) for r in several)
    assert sum(float(ex.weights.sum()) for ex in rows) == pytest.approx(len(several))
    assert labeled_examples("loc", Data, layout_for("encoder", Alphabet(), 1024)) == []  # validation: hard labels only


def test_the_default_stays_what_it_was(data_dir):
    data = load_training_data(data_dir)
    assert len(data.protein) == 8_478 and data.settings == {"localization_sources": "subsets", "lm_sources": "mmseqs2",
                                                            "ss_sources": "flip+cullpdb"}
    assert [p.name for p in data.corpus_paths] == ["DB.fasta.gz", "QUERY.fasta"]


def test_uniref_samples_join_the_lm_corpus(data_dir, test_sequences):
    paths = corpus_files(data_dir, "mmseqs2+uniref")
    assert [p.name for p in paths[2:]] == ["uniref50_random_10k.fasta", "uniref90_random_10k.fasta"]
    guard, report = evaluation_guard(data_dir), SkipReport()
    seqs = list(stream_corpus(paths, guard=guard, report=report))
    evaluation = set().union(*test_sequences.values())
    assert len(set(seqs)) == len(seqs) == 39_159 and not set(seqs) & evaluation
    # 19,188 unique MMseqs2 sequences (26 of them test proteins: 25 DeepLoc, 1 CB513) + 20,000 UniRef ones
    # (one in both samples, one also in DB.fasta, one a DeepLoc test protein)
    assert guard.removed["lm"] == 26 + 1 and report.total == 0
    assert len(seqs) == 19_188 + 20_000 - 2 - 27
