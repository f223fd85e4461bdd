"""The memory benchmark's input: residue-shuffled copies of real proteins, cropped to a length, the same
file for the same seed."""
from __future__ import annotations

from dbmtl.benchmark.memory import write_memory_fasta
from dbmtl.readers.fasta import read_fasta

from helpers import need

QUERY = "unlabeled/mmseqs2_examples/QUERY.fasta"


def test_copies_are_shuffled_crops_of_the_real_proteins_in_turn(data_dir, tmp_path):
    real = [(r.id, r.sequence) for r in read_fasta(need(data_dir, QUERY), check_duplicates=False)][:7]
    assert min(len(s) for _, s in real) < 100 < max(len(s) for _, s in real)  # both cases below
    path = tmp_path / "memory.fasta"
    residues = write_memory_fasta(path, real, 20, max_length=100, seed=1)
    got = list(read_fasta(path))
    assert [r.id for r in got] == [f"mem{k}" for k in range(20)]
    assert residues == sum(len(r.sequence) for r in got)
    for k, r in enumerate(got):
        source = real[k % 7][1]
        if len(source) <= 100:
            assert sorted(r.sequence) == sorted(source)
        else:  # a window of 100 residues, shuffled
            assert len(r.sequence) == 100
            assert any(sorted(source[s:s + 100]) == sorted(r.sequence) for s in range(len(source) - 99))
    assert sum(r.sequence not in real[k % 7][1] for k, r in enumerate(got)) >= 18  # shuffled, not copied
    again = tmp_path / "again.fasta"
    write_memory_fasta(again, real, 20, max_length=100, seed=1)
    assert again.read_bytes() == path.read_bytes()
    write_memory_fasta(again, real, 20, max_length=None, seed=2)
    assert [len(r.sequence) for r in read_fasta(again)] == [len(real[k % 7][1]) for k in range(20)]
