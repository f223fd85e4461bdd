"""Embeddings: Predictor.embed gives the model's final states; `dbmtl embed` writes them to HDF5."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dbmtl.cli import main
from dbmtl.data.layouts import answer_row, collate, encoder_row
from dbmtl.inference.embed import embed_to_h5, sequence_md5
from dbmtl.readers.fasta import SequenceRecord, read_fasta
from dbmtl.tasks import TASKS
from helpers import tiny_predictor

h5py = pytest.importorskip("h5py", reason="the embed extra (h5py) is not installed")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


def states_of(predictor, row, columns, hidden: bool = True) -> np.ndarray:
    """The model's final hidden states (or, hidden=False, its logits) at `columns` of one row."""
    batch = collate([row], predictor.alphabet.pad_id)
    with torch.inference_mode():
        h = predictor.model(batch.inputs, positions=batch.positions, segments=batch.segments, causal=batch.causal,
                            hidden=hidden)
    return h[0, columns].numpy()


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_embed_is_the_final_hidden_state_of_each_residue(kind):
    predictor = tiny_predictor(kind=kind)
    seq = "MVHLTPEEKSAVTALWGKV"
    got = predictor.embed([seq, "ACD"])
    task = TASKS["ss8"]
    if kind == "encoder":
        row, columns = encoder_row(predictor.alphabet, task, seq), slice(1, len(seq) + 1)
    else:
        row, columns = answer_row(predictor.alphabet, task, seq, torch.tensor([], dtype=torch.long)), slice(0, len(seq))
    want = states_of(predictor, row, columns)
    assert got[0].shape == (len(seq), predictor.model.cfg.n_embd) and got[1].shape[0] == 3
    np.testing.assert_allclose(got[0], want, atol=1e-5)
    # they are the states the output head reads: head(states) are the model's own logits at those residues
    with torch.inference_mode():
        logits = predictor.model.head(torch.from_numpy(got[0])).numpy()
    np.testing.assert_allclose(logits, states_of(predictor, row, columns, hidden=False), atol=1e-4)


def test_long_proteins_are_embedded_in_windows():
    predictor = tiny_predictor(kind="encoder", context=64)
    seq = ("MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLG" * 3)[:200]
    (states,) = predictor.embed([seq])
    assert states.shape == (200, predictor.model.cfg.n_embd)
    # the first residues come from the first window, exactly as a short protein's would
    np.testing.assert_allclose(states[:20], predictor.embed([seq[:63]])[0][:20], atol=1e-5)


def test_h5_layout_values_and_resume(tmp_path):
    predictor = tiny_predictor(kind="encoder")
    records = list(read_fasta(EXAMPLES))
    out = tmp_path / "e.h5"
    run = embed_to_h5(predictor, records[:2], out, chunk_size=1, model_name="tiny")
    assert (run.written, run.kept) == (2, 0)
    run = embed_to_h5(predictor, records, out, chunk_size=3, resume=True)
    assert (run.written, run.kept) == (2, 2)
    want = predictor.embed([r.sequence for r in records])
    with h5py.File(out) as h5:
        assert h5.attrs["task_row"] == "ss8" and h5.attrs["dim"] == predictor.model.cfg.n_embd
        assert sorted(h5["per_residue"]) == sorted(r.id for r in records)
        for r, w in zip(records, want):
            res, prot = h5["per_residue"][r.id], h5["per_protein"][r.id]
            assert res.shape == (len(r.sequence), w.shape[1]) and prot.shape == (w.shape[1],)
            np.testing.assert_allclose(res[()], w, atol=1e-5)
            np.testing.assert_allclose(prot[()], w.mean(0), atol=1e-5)
            assert res.attrs["original_id"] == r.id and res.attrs["description"] == r.description
            assert res.attrs["sequence_md5"] == sequence_md5(r.sequence)


def test_torn_protein_is_redone_and_md5_keys_store_a_sequence_once(tmp_path):
    predictor = tiny_predictor(kind="encoder")
    records = [SequenceRecord("a", "a first", "MKVLA"), SequenceRecord("b", "b twin", "MKVLA"),
               SequenceRecord("c/1", "c", "ACDEF")]
    out = tmp_path / "e.h5"
    embed_to_h5(predictor, records, out, key="md5", per_residue=False)
    with h5py.File(out) as h5:
        assert "per_residue" not in h5 and sorted(h5["per_protein"]) == sorted({sequence_md5("MKVLA"), sequence_md5("ACDEF")})
    out = tmp_path / "ids.h5"
    embed_to_h5(predictor, records, out)
    with h5py.File(out, "a") as h5:
        assert "c%2F1" in h5["per_residue"]
        del h5["per_protein"]["b"]  # as if interrupted between the two writes of b
    run = embed_to_h5(predictor, records, out, resume=True)
    assert (run.written, run.kept) == (1, 2)


def test_cli_embed(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert main(["embed", str(EXAMPLES), "-o", str(out), "--per-protein", "--quiet"]) == 0
    assert "4 proteins embedded" in capsys.readouterr().out
    with h5py.File(out) as h5:
        assert list(h5) == ["per_protein"] and len(h5["per_protein"]) == 4
        assert h5["per_protein"]["P68871_HBB"].shape == (192,)
