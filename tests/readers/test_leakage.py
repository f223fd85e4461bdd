"""The leakage guard on the real test sets: it removes exactly the records identical to an evaluation
protein (letter case aside), counts them per source, and learns more sequences as it goes."""
from __future__ import annotations

from dbmtl.data.catalog import residue_test_sets
from dbmtl.readers.leakage import LeakageGuard, sequence_key


def test_the_guard_removes_exactly_the_evaluation_proteins_and_counts_them(data_dir):
    sets = residue_test_sets(data_dir)
    cb513 = {r.sequence for r in sets["CB513"]}
    guard = LeakageGuard(cb513)
    records = sets["TS115"] + sets["CB513"][:50]
    kept = list(guard.filter(records, "secondary structure"))
    assert [r.id for r in kept] == [r.id for r in records if r.sequence not in cb513]
    removed = len(records) - len(kept)
    assert removed >= 50 and guard.removed == {"secondary structure": removed}
    assert list(guard.filter(sets["CB513"][50:55], "secondary structure")) == []
    assert guard.removed == {"secondary structure": removed + 5}  # counts add up over calls


def test_a_leak_is_found_whatever_the_case_and_added_sequences_count_too(data_dir):
    sets = residue_test_sets(data_dir)
    protein, other = sets["CB513"][0].sequence, sets["TS115"][0].sequence
    guard = LeakageGuard([protein])
    assert guard.is_leak(protein.lower()) and guard.is_leak(sequence_key(protein))
    assert len(sequence_key(protein)) == 8  # a small digest per sequence, not the sequence
    assert not guard.is_leak(other) and not guard.is_leak(protein[:-1])
    guard.add([other])
    assert guard.is_leak(other)
