"""The benchmark's two comparisons beside MMseqs2: an ensemble with S4PRED's shape timed on real
proteins, and the first prediction of the real `dbmtl predict` command (no timing thresholds anywhere)."""
import json

import pytest
import torch

from dbmtl.benchmark.latency import first_prediction
from dbmtl.benchmark.run import BenchmarkSpec, run_benchmark
from dbmtl.benchmark.s4pred import build_ensemble, encode, s4pred_worker, speed_ratios
from dbmtl.model.checkpoint import save_checkpoint

from helpers import tiny_predictor


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


def test_first_prediction_failure_names_the_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)first prediction failed \(exit 2\).*no-model"):
        first_prediction(("p", "MKTAYIAKQR"), str(tmp_path / "no-model"), 1, "cpu", tmp_path, repeats=1)


def test_benchmark_reports_both_comparisons(tmp_path, tmp_fasta):
    """A tiny run with the real S4PRED-sized ensemble on one short protein and one run of `dbmtl predict` on
    it: both measured, in benchmark.json, in the report and (the first prediction) among the targets."""
    p = tiny_predictor(kind="encoder")
    model = save_checkpoint(tmp_path / "m", p.model, p.alphabet)
    queries = tmp_fasta(">q1 first\nMKTAYIAKQRQISFVKSHFSRQ\n>q2\nGSAEELLKKA\n")
    out = tmp_path / "bench"
    spec = BenchmarkSpec(out=out, model=str(model), configs=["default"], dtypes=["int8"], queries=queries,
                         batch=1, length=16, skip_mmseqs=True, threads=1, device="cpu", profile_proteins=0,
                         s4pred_proteins=1, latency_repeats=1, plot=False)
    r = run_benchmark(spec, log=lambda m: None)
    s4, lat = r["s4pred"], r["latency"]
    assert s4["params"] == 224_362_255 and s4["proteins"] == 1 and s4["residues"] == 22
    row = r["configs"][0]["predict"][0]
    assert s4["speedup_per_residue"]["int8"] == pytest.approx(s4["s_per_residue"] / (row["wall_s"] / 32))
    assert lat["protein"] == "q1" and lat["residues"] == 22 and len(lat["wall_s"]) == 1
    assert lat["best_s"] > 0 and lat["model_loaded_best_s"] > 0 and lat["met"] == (lat["best_s"] <= 2.0)
    assert lat["written"] == ["predictions.jsonl", "proteins.tsv", "residues.tsv"]
    assert lat["command"] == f"dbmtl predict ONE.fasta -o OUT --model {model} --threads 1 --device cpu --quiet"
    target = next(t for t in r["targets"] if "first_prediction_s" in t)
    assert target["first_prediction_s"] == lat["best_s"] and target["met"] == lat["met"]
    assert json.loads((out / "benchmark.json").read_text())["s4pred"]["params"] == 224_362_255
    md = (out / "benchmark.md").read_text()
    assert "224,362,255 parameters" in md and f"{1000 * s4['s_per_residue']:.2f} ms per residue" in md
    assert f"{s4['speedup_per_residue']['int8']:.1f}x" in md and "CB513 Q3 is 75.3" in md
    assert f"**{lat['best_s']:.2f} s**" in md and f"model loaded after {lat['model_loaded_best_s']:.2f} s" in md
