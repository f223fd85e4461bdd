"""Prediction: batch composition changes nothing, long proteins are covered, decoding is exact."""
import numpy as np
import pytest
import torch

from dbmtl.data.layouts import answer_row, layout_for
from dbmtl.tokens import Alphabet
from dbmtl.tasks import TASKS
from dbmtl.readers.fasta import read_fasta

from helpers import tiny_predictor


@pytest.fixture(scope="module")
def real_sequences(data_dir):
    recs = list(read_fasta(data_dir / "unlabeled/mmseqs2_examples/QUERY.fasta", check_duplicates=False))
    return [r.sequence for r in recs[:12]] + ["MK", "A"]


@pytest.mark.parametrize("mode", ["placeholder", "free", "encoder"])
def test_batched_equals_unbatched_per_residue(real_sequences, mode):
    p = tiny_predictor("teacher" if mode == "free" else "placeholder", kind="encoder" if mode == "encoder" else "decoder")
    seqs = real_sequences[:8]
    together = p.predict_residues(seqs, TASKS["ss3"], mode=mode)
    alone = [p.predict_residues([s], TASKS["ss3"], mode=mode)[0] for s in seqs]
    p.batch_tokens = 600  # a different batch composition again
    small_batches = p.predict_residues(seqs, TASKS["ss3"], mode=mode)
    for a, b, c, s in zip(together, alone, small_batches, seqs):
        assert a.shape == (len(s), 3)
        np.testing.assert_allclose(a, b, atol=1e-5)
        np.testing.assert_allclose(a, c, atol=1e-5)


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_batched_equals_unbatched_per_protein(real_sequences, kind):
    p = tiny_predictor(kind=kind)
    together = p.predict_proteins(real_sequences, TASKS["loc"])
    alone = [p.predict_proteins([s], TASKS["loc"])[0] for s in real_sequences]
    np.testing.assert_allclose(np.stack(together), np.stack(alone), atol=1e-5)
    np.testing.assert_allclose(np.stack(together).sum(1), 1.0, atol=1e-5)


def test_free_running_equals_naive_greedy_decoding():
    """The KV-cached, batched decoder must give exactly what re-running the whole prefix gives."""
    p = tiny_predictor("teacher", seed=1)
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
    probs = p.predict_residues([seq, seq[:10]], TASKS["ss8"], mode="free")[0]
    al, task = p.alphabet, TASKS["ss8"]
    ids = torch.tensor(al.label_ids(task))
    decoded: list[int] = []
    expected = []
    with torch.no_grad():
        for _ in seq:
            ex = answer_row(al, task, seq, torch.tensor(decoded, dtype=torch.long))
            logits = p.model(ex.inputs[None], positions=ex.positions[None], segments=ex.segments[None])[0, -1, ids]
            pr = torch.softmax(logits, -1)
            expected.append(pr.numpy())
            decoded.append(int(ids[pr.argmax()]))
    np.testing.assert_allclose(probs, np.stack(expected), atol=1e-5)


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_long_protein_gets_every_residue(kind):
    p = tiny_predictor(context=64, kind=kind)  # per-residue limit: 31 (decoder) or 63 (encoder) residues
    limit = layout_for(kind, Alphabet(), 64).max_residue_length()
    seq = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ" * 5)[:157]
    out = p.predict([seq, seq[:limit]])
    assert len(out[0].ss3) == len(seq) == len(out[0].probabilities["ss8"])
    assert out[0].location in TASKS["loc"].labels
    assert len(out[1].ss8) == limit


def test_predict_rejects_unknown_letters():
    with pytest.raises(ValueError, match="'J'"):
        tiny_predictor().predict(["MKJL"])


HBB_CDS = "ATGGTGCATCTGACTCCTGAGGAGAAGTCTGCCGTTACTGCCCTGTGGGGCAAGGTGAACGTGGATGAAGTTGGTGGTGAGGCCCTGGGCAGG"


def test_predict_refuses_dna_unless_allowed():
    p = tiny_predictor()
    with pytest.raises(ValueError, match=r"protein 'hbb_cds': looks like a nucleotide sequence \(DNA or RNA\)"):
        p.predict({"ok": "MVHLTPEEKSAVTALWGKV", "hbb_cds": HBB_CDS.lower()})
    out = p.predict({"hbb_cds": HBB_CDS}, allow_nucleotides=True)
    assert len(out[0].ss3) == len(HBB_CDS) and out[0].location in TASKS["loc"].labels


@pytest.mark.parametrize("tasks, error, fragment", [
    (["foo"], ValueError, "unknown tasks ['foo']; choose from ss3,ss8,loc,ms"),
    ("ss3", TypeError, "not the string 'ss3'; choose from ss3,ss8,loc,ms"),
    ([], ValueError, "no tasks chosen; choose from ss3,ss8,loc,ms"),
    (3, TypeError, "tasks must be a list of task names from ss3,ss8,loc,ms, not int"),
    ([["ss3"]], ValueError, "unknown tasks [['ss3']]"),
])
def test_predict_misuse_names_the_valid_tasks(tasks, error, fragment):
    with pytest.raises(error) as info:
        tiny_predictor().predict(["MKVL"], tasks=tasks)
    assert fragment in str(info.value)


def test_predict_takes_tasks_from_any_iterable():
    out = tiny_predictor().predict(["MKVL"], tasks=(t for t in ["loc", "ss3"]))
    assert set(out[0].labels) == {"ss3", "loc"}


def test_embed_misuse_is_a_value_or_type_error():
    p = tiny_predictor()
    with pytest.raises(ValueError, match="task must be one of ss3, ss8, loc, ms, not 'foo'"):
        p.embed(["MKVL"], task="foo")
    with pytest.raises(TypeError, match="not a single string"):
        p.embed("MKVL")
    with pytest.raises(TypeError, match="sequence 2: a sequence must be a string, not int"):
        p.embed(["MKVL", 5])
    assert [e.shape[0] for e in p.embed(s for s in ["MKVL", "MK"])] == [4, 2]  # a generator is read once


def test_embed_refuses_dna_unless_allowed():
    p = tiny_predictor()
    with pytest.raises(ValueError, match=r"protein 'seq2': looks like a nucleotide sequence"):
        p.embed(["MKVL", HBB_CDS])
    assert p.embed([HBB_CDS], allow_nucleotides=True)[0].shape[0] == len(HBB_CDS)
