"""The language-model corpus: FASTA files streamed without repeats or evaluation proteins, and a stream of
LM micro-batches whose (epoch, offset) is a complete position to resume from."""
from __future__ import annotations

import pytest

from helpers import need
from data.test_catalog import evaluation_sequences  # noqa: F401  (the fixture: the evaluation sets' sequences)

from dbmtl.data.catalog import CORPUS_FILES
from dbmtl.data.corpus import CorpusStream, stream_corpus
from dbmtl.readers.fasta import SkipReport, read_fasta
from dbmtl.readers.leakage import LeakageGuard
from dbmtl.tokens import Alphabet


QUERY = "unlabeled/mmseqs2_examples/QUERY.fasta"


class Listed:
    """A corpus of a list of sequences: stream `index` of `count` takes every count-th, the same each epoch."""

    def __init__(self, sequences: list[str]):
        self.sequences = sequences

    def stream(self, index, count, epoch, offset=0, seed=0, workers=0):
        return iter(self.sequences[index::count][offset:])


def test_a_stream_resumed_from_its_state_gives_the_same_batches(data_dir):
    """Real proteins, a stream of half of them: a new stream opened at another's state (epoch, offset) in
    the middle of an epoch reads exactly what the first reads next, across the epoch's end too."""
    seqs = [r.sequence for r in read_fasta(need(data_dir, QUERY), check_duplicates=False)][:60]
    first = CorpusStream(Listed(seqs), Alphabet(), 1024, index=1, count=2)
    read = first.sample(3000) + first.sample(3000) + first.sample(3000)
    assert first.epoch == 0 and first.offset == len(read) > 0
    resumed = CorpusStream(Listed(seqs), Alphabet(), 1024, index=1, count=2, **first.state())
    while first.epoch == 0 or len(read) < 40:
        a, b = first.sample(3000), resumed.sample(3000)
        assert [ex.inputs.tolist() for ex in a] == [ex.inputs.tolist() for ex in b]
        read += a
    assert first.state() == resumed.state()
    # one pass is stream 1's proteins in order (every second one from the second on), each once
    alphabet = Alphabet()
    assert [ex.inputs[1:].tolist() for ex in read[:30]] == [alphabet.encode_residues(s[:1022]).tolist() for s in seqs[1::2]]


def test_an_empty_corpus_is_an_error():
    with pytest.raises(ValueError, match="corpus is empty"):
        CorpusStream(Listed([]), Alphabet(), 1024).sample(1000)


def test_stream_corpus_with_guard(data_dir, evaluation_sequences):
    paths = [need(data_dir, p) for p in CORPUS_FILES]
    guard = LeakageGuard(set().union(*evaluation_sequences.values()))
    evaluation = set().union(*evaluation_sequences.values())
    report = SkipReport()
    seen, dupes, leaks = set(), 0, 0
    for seq in stream_corpus(paths, guard=guard, report=report):
        if seq in seen:
            dupes += 1
        seen.add(seq)
        leaks += seq in evaluation
    assert dupes == 0 and leaks == 0
    assert report.total == 0
    # PROVENANCE: 19,188 unique sequences in DB + QUERY, 25 of them identical to LA test sequences.
    assert guard.removed["lm"] >= 25
    assert len(seen) + guard.removed["lm"] == 19_188
