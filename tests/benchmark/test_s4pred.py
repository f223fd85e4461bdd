"""The S4PRED-shaped comparison of the benchmark: an ensemble with S4PRED's shape, timed on real proteins."""
import pytest
import torch

from dbmtl.benchmark.s4pred import build_ensemble, encode, s4pred_worker, speed_ratios


def gru_ensemble_params(members: int, layers: int, hidden: int, embed: int, vocab: int = 22) -> int:
    """torch.nn.GRU per direction and layer: W_ih (3H x input), W_hh (3H x H) and two 3H biases."""
    gru = sum(2 * (3 * hidden * ((embed if k == 0 else 2 * hidden) + hidden) + 6 * hidden) for k in range(layers))
    return members * (vocab * embed + gru + 2 * hidden * 3 + 3)


def test_ensemble_has_s4pred_shape():
    """Five members, each a 3-layer bidirectional GRU of hidden size 1024 on a 128-wide embedding, a 3-state
    head: 224.4M parameters, as S4PRED's published ~224M (built on the meta device: nothing allocated)."""
    model = build_ensemble("meta")
    assert len(model.members) == 5
    for m in model.members:
        assert isinstance(m.gru, torch.nn.GRU) and m.gru.bidirectional
        assert (m.gru.num_layers, m.gru.hidden_size, m.gru.input_size) == (3, 1024, 128)
        assert (m.head.in_features, m.head.out_features) == (2048, 3)
    params = sum(p.numel() for p in model.parameters())
    assert params == gru_ensemble_params(5, 3, 1024, 128) == 224_362_255


def test_worker_times_the_first_proteins(tmp_fasta):
    fasta = tmp_fasta(">a\nMKTAYIAKQRQISFVKSHF\n>b\nGSXUAEELLKKA\n>c\nMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM\n")
    r = s4pred_worker({"fasta": str(fasta), "proteins": 2, "threads": 1, "device": "cpu", "hidden": 16})
    assert (r["members"], r["layers"], r["hidden"], r["bidirectional"]) == (5, 3, 16, True)
    assert r["params"] == gru_ensemble_params(5, 3, 16, 128)
    assert r["proteins"] == 2 and r["residues"] == 19 + 12
    assert r["seconds"] > 0 and r["s_per_residue"] == pytest.approx(r["seconds"] / 31)
    assert r["s_per_protein"] == pytest.approx(r["seconds"] / 2)
    out = build_ensemble(hidden=16)(encode("GSXUAEELLKKA"))
    assert out.shape == (1, 12, 3) and torch.isfinite(out).all()
    assert encode("AXU").tolist() == [[0, 20, 20]]  # letters beyond the 20 amino acids share one index


def test_speed_ratio_is_per_residue():
    rows = [{"dtype": "fp32", "wall_s": 2.0, "residues": 1000}, {"dtype": "bf16", "wall_s": 1.0, "residues": 1000}]
    assert speed_ratios({"s_per_residue": 0.01}, rows) == pytest.approx({"fp32": 5.0, "bf16": 10.0})
