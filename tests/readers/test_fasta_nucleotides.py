"""The nucleotide rule: DNA or RNA given as a protein is refused, and no real protein trips it."""
from __future__ import annotations

import io

import pytest

from dbmtl.data.catalog import protein_test_sets, residue_test_sets
from dbmtl.readers.fasta import (NUCLEOTIDES, FastaFormatError, SkipReport, nucleotide_problem, plural,
                                 read_fasta)

# The start of the human beta-globin coding sequence (MVHLTPEEKSAVTALWGKVNVDEVGGEALGR...), as DNA and as mRNA.
HBB_CDS = "ATGGTGCATCTGACTCCTGAGGAGAAGTCTGCCGTTACTGCCCTGTGGGGCAAGGTGAACGTGGATGAAGTTGGTGGTGAGGCCCTGGGCAGG"
HBB_MRNA = HBB_CDS.replace("T", "U")
NUCLEOTIDE_RECORDS = {
    "hbb_cds": HBB_CDS,
    "hbb_mrna": HBB_MRNA,
    # soft-masked genomic DNA (lower case) with a run of unknown bases
    "genomic": "nnnnnnnnnnacgtgtacgatcgatcggctagctaggatccgaattcgcggccgcttaattaa",
    # a degenerate primer site: two IUPAC ambiguity codes (R, Y) among 60 bases
    "degenerate": "ATGGCRTTYAAGCTGACCGGTACCGATCGATCGGCTAGCTAGGATCCGAATTCGCGGCCG",
}


def share(sequence: str) -> float:
    return sum(map(sequence.count, NUCLEOTIDES)) / len(sequence)


def test_no_real_protein_of_the_test_sets_looks_like_nucleotides(data_dir):
    """CB513, TS115, CASP12 and DeepLoc test, read by the project's own readers: none is refused, and the
    most nucleotide-like protein stays far from the 95% threshold."""
    sets = {name: [r.sequence for r in recs] for name, recs in residue_test_sets(data_dir).items()}
    sets.update({name: [r.sequence for r in recs] for name, recs in protein_test_sets(data_dir).items()})
    assert {name: len(seqs) for name, seqs in sets.items()} == {"CB513": 511, "TS115": 115, "CASP12": 20,
                                                               "DeepLoc": 2768}
    tripped = [(name, seq[:30]) for name, seqs in sets.items() for seq in seqs if nucleotide_problem(seq)]
    assert tripped == []
    assert max(share(seq) for seqs in sets.values() for seq in seqs if len(seq) >= 20) < 0.8


@pytest.mark.parametrize("rid", sorted(NUCLEOTIDE_RECORDS))
def test_nucleotide_record_is_refused_naming_file_record_and_line(tmp_fasta, rid):
    sequence = NUCLEOTIDE_RECORDS[rid]
    path = tmp_fasta(f">ok protein\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ\n>{rid} a nucleotide record\n"
                     f"{sequence[:40]}\n{sequence[40:]}\n")
    with pytest.raises(FastaFormatError) as info:
        list(read_fasta(path))
    msg = str(info.value)
    assert msg.startswith(f"{path} line 3: record {rid!r}: looks like a nucleotide sequence")
    assert f"of its {len(sequence)} letters are A, C, G, T, U or N" in msg and "--allow-nucleotides" in msg


def test_skip_invalid_counts_nucleotides_and_allow_keeps_them():
    text = f">dna\n{HBB_CDS}\n>prot\nMVHLTPEEKSAVTALWGKV\n>rna\n{HBB_MRNA.lower()}\n"
    report = SkipReport()
    assert [r.id for r in read_fasta(io.StringIO(text), skip_invalid=True, report=report)] == ["prot"]
    assert report.skipped == {"nucleotide sequence": 2}
    kept = list(read_fasta(io.StringIO(text), allow_nucleotides=True))
    assert [(r.id, r.sequence) for r in kept] == [("dna", HBB_CDS), ("prot", "MVHLTPEEKSAVTALWGKV"),
                                                  ("rna", HBB_MRNA)]


def test_short_or_mixed_sequences_and_label_files_are_left_alone():
    assert nucleotide_problem(HBB_CDS[:19]) is None  # a primer and a peptide cannot be told apart
    assert nucleotide_problem(HBB_CDS[:20]) is not None
    assert nucleotide_problem("GAGAGSGAGAGSGAGAGSGAGAGS") is None  # silk fibroin's repeat: 83%
    assert nucleotide_problem(("ACGT" * 24)[:94] + "MKLVWY") is None  # 94 of 100
    assert nucleotide_problem(("ACGT" * 24)[:95] + "MKLVW") is not None  # 95 of 100
    labels = list(read_fasta(io.StringIO(">x\n" + "C" * 40 + "\n"), alphabet="HEC"))  # SS3 labels, not residues
    assert labels[0].sequence == "C" * 40


def test_plural_agrees_with_the_count():
    assert [plural(n, "protein") for n in (0, 1, 2)] == ["0 proteins", "1 protein", "2 proteins"]
