"""The token table (Alphabet): its layout, round trips for every task, refusals, saved vocabularies."""
from __future__ import annotations

import json

import pytest
import torch

from dbmtl.tasks import TASKS
from dbmtl.tokens import AMINO_ACIDS, EOS, MASK, PAD, SPECIALS, STANDARD_AMINO_ACIDS, Alphabet


ALL_AA = STANDARD_AMINO_ACIDS + "UOBZX"


@pytest.fixture(scope="module")
def alphabet():
    return Alphabet()


def test_layout_and_size(alphabet):
    n_labels = sum(len(t.labels) for t in TASKS.values())
    assert len(alphabet) == len(SPECIALS) + 25 + 5 + n_labels
    assert alphabet.tokens[: len(SPECIALS)] == list(SPECIALS)
    assert (alphabet.pad_id, alphabet.eos_id, alphabet.mask_id) == (
        alphabet.index[PAD], alphabet.index[EOS], alphabet.index[MASK])
    assert set(AMINO_ACIDS) == set(ALL_AA) and len(AMINO_ACIDS) == 25
    assert all(aa in alphabet.index for aa in ALL_AA)


def test_five_control_tokens_present_and_distinct(alphabet):
    ids = {alphabet.control_id(t) for t in TASKS.values()}
    assert len(ids) == 5
    assert [alphabet.tokens[alphabet.control_id(t)] for t in TASKS.values()] == [
        "<UNIREF50>", "<SSP3>", "<SSP8>", "<LOC>", "<MS>"]
    aa_ids = {alphabet.index[a] for a in AMINO_ACIDS}
    assert not ids & aa_ids


def test_label_tokens_are_distinct_from_amino_acids(alphabet):
    aa_ids = {alphabet.index[a] for a in AMINO_ACIDS}
    special_ids = {alphabet.index[s] for s in SPECIALS}
    control_ids = {alphabet.control_id(t) for t in TASKS.values()}
    seen: set[int] = set()
    for task in TASKS.values():
        ids = alphabet.label_ids(task)
        assert len(ids) == len(task.labels) == len(set(ids))
        assert not set(ids) & (aa_ids | special_ids | control_ids), task.name
        assert not set(ids) & seen, task.name  # no two tasks share a label token
        seen |= set(ids)
    # the SS label "H"/"E"/"C" is not the residue His/Glu/Cys
    for lab in "HEC":
        assert alphabet.encode_labels(TASKS["ss3"], lab).item() != alphabet.index[lab]
        assert alphabet.encode_labels(TASKS["ss8"], lab).item() != alphabet.encode_labels(TASKS["ss3"], lab).item()


def test_residue_round_trip(alphabet):
    seq = ALL_AA * 3 + "MKV"
    ids = alphabet.encode_residues(seq)
    assert ids.dtype == torch.long and ids.shape == (len(seq),)
    assert "".join(alphabet.decode(ids)) == seq
    assert alphabet.decode(ids.tolist()) == list(seq)
    assert len(set(alphabet.encode_residues(ALL_AA).tolist())) == 25


@pytest.mark.parametrize("name", sorted(TASKS))
def test_round_trip_for_every_task(alphabet, name):
    task = TASKS[name]
    seq = "MKVLAAGIWY"
    control = alphabet.control_id(task)
    row = torch.cat([alphabet.encode_residues(seq), torch.tensor([control])])
    if task.kind == "residue":
        labels = "".join(task.labels[i % len(task.labels)] for i in range(len(seq)))
        lab_ids = alphabet.encode_labels(task, labels)
        assert len(lab_ids) == len(seq)
        assert torch.equal(lab_ids, alphabet.encode_labels(task, list(labels)))
        row = torch.cat([row, lab_ids])
        decoded = alphabet.decode(row)
        assert decoded[: len(seq)] == list(seq) and decoded[len(seq)] == task.control
        assert decoded[len(seq) + 1:] == [task.label_token(c) for c in labels]
    elif task.kind == "protein":
        for label in task.labels:
            lab_ids = alphabet.encode_labels(task, label)
            assert lab_ids.shape == (1,)
            assert alphabet.decode(lab_ids) == [task.label_token(label)]
        decoded = alphabet.decode(row)
        assert decoded == list(seq) + [task.control]
    else:  # language model: residues only, no label tokens
        assert task.label_tokens == () and alphabet.label_ids(task) == []
        assert alphabet.decode(row) == list(seq) + [task.control]


def test_unknown_label_is_rejected(alphabet):
    with pytest.raises(KeyError):
        alphabet.encode_labels(TASKS["ss3"], "HGX")
    with pytest.raises(KeyError):
        alphabet.encode_labels(TASKS["loc"], "Cytoplasm-Nucleus")


@pytest.mark.parametrize("seq, bad", [("ACDJK", "J"), ("acd", "a"), ("AC-D", "-"), ("AC*", "*"), ("A1", "1")])
def test_encode_residues_rejects_non_amino_acid(alphabet, seq, bad):
    with pytest.raises(ValueError, match=repr(bad).replace("*", r"\*")):
        alphabet.encode_residues(seq)


def test_encode_residues_rejects_non_ascii(alphabet):
    with pytest.raises(ValueError):
        alphabet.encode_residues("ACDÉ")


def test_save_load_round_trip(alphabet, tmp_path):
    path = tmp_path / "vocab.json"
    alphabet.save(path)
    assert json.loads(path.read_text()) == {"tokens": alphabet.tokens}
    loaded = Alphabet.load(path)
    assert loaded.tokens == alphabet.tokens and loaded.index == alphabet.index
    loaded.check_compatible(alphabet)
    alphabet.check_compatible(loaded)
    assert torch.equal(loaded.encode_residues("MKV"), alphabet.encode_residues("MKV"))


def test_check_compatible_raises_on_changed_vocabulary(alphabet):
    toks = alphabet.tokens
    swapped = toks.copy()
    i, j = toks.index("H"), toks.index("<ss3:H>")
    swapped[i], swapped[j] = swapped[j], swapped[i]
    with pytest.raises(ValueError, match=f"first difference at id {i}"):
        alphabet.check_compatible(Alphabet(swapped), where="ckpt.safetensors")
    with pytest.raises(ValueError, match="ckpt"):
        alphabet.check_compatible(Alphabet(swapped), where="ckpt")
    with pytest.raises(ValueError, match=f"first difference at id {len(toks)}"):
        alphabet.check_compatible(Alphabet(toks + ["<new:task>"]))
    with pytest.raises(ValueError):
        alphabet.check_compatible(Alphabet(toks[:-1]))
    renamed = toks.copy()
    renamed[-1] = "<ms:X>"
    with pytest.raises(ValueError):
        alphabet.check_compatible(Alphabet(renamed))


def test_duplicate_tokens_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        Alphabet(list(SPECIALS) + ["A", "A"])
