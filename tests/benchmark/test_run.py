"""`dbmtl benchmark` end to end: a tiny run fills every field of its report, and both comparisons beside
MMseqs2 (the S4PRED-shaped ensemble, the first prediction) reach it (no timing thresholds anywhere)."""
import json

import pytest

from dbmtl.benchmark.run import BenchmarkSpec, run_benchmark
from dbmtl.model.checkpoint import save_checkpoint

from helpers import tiny_predictor


def test_benchmark_smoke_fills_the_report(tmp_path, data_dir, monkeypatch):
    """A tiny run on a machine without MMseqs2: every dbmtl field present and sane (no timing thresholds),
    and the report says how to get the baseline."""
    import dbmtl.benchmark.run

    monkeypatch.setattr(dbmtl.benchmark.run, "find_mmseqs", lambda: None)
    p = tiny_predictor(kind="encoder")
    model = save_checkpoint(tmp_path / "m", p.model, p.alphabet)
    out = tmp_path / "bench"
    messages = []
    spec = BenchmarkSpec(out=out, model=str(model), configs=["default"], dtypes=["fp32", "bf16"], data_dir=data_dir,
                         proteins=5, batch=2, length=64, memory_proteins=30, memory_max_length=40,
                         threads=1, device="cpu", profile_proteins=3, s4pred_proteins=0, latency_repeats=0, plot=False)
    r = run_benchmark(spec, log=messages.append)
    cfg = r["configs"][0]
    assert [f["dtype"] for f in cfg["forward"]] == ["fp32", "bf16"]
    for fw in cfg["forward"]:
        assert fw["seconds"] > 0 and fw["s_per_row"] == pytest.approx(fw["seconds"] / 2)
        assert fw["peak"]["flops"] > 0 and 0 < fw["fraction_of_peak"] < 10
        assert fw["max_rss_mib"] > 0
    for pr in cfg["predict"]:
        assert pr["proteins"] == 5 and pr["residues"] == r["query"]["residues"]
        assert pr["proteins_per_s"] == pytest.approx(5 / pr["wall_s"]) and pr["max_rss_mib"] > 0
        assert pr["residues_per_s"] == pytest.approx(pr["residues"] / pr["wall_s"])
    agree = cfg["predict"][1]["agreement_with_fp32"]
    assert 0.9 <= agree["ss3"] <= 1.0 and 0 <= agree["max_probability_difference"] < 0.2
    assert cfg["predict_flops"]["tokens"] > r["query"]["residues"]
    assert "mmseqs not found" in r["mmseqs"]["skipped"] and "setup_benchmark.sh" in r["mmseqs"]["skipped"]
    assert any("mmseqs not found" in m for m in messages)
    assert r["memory"]["proteins"] == 30 and r["memory"]["max_rss_mib"] > 0
    assert r["profile"]["ops"] and all(0 <= o["fraction"] <= 1 for o in r["profile"]["ops"])
    assert any("fraction" in t for t in r["targets"])
    assert r["s4pred"] == {"skipped": "--s4pred-proteins 0"} and r["latency"] == {"skipped": "--latency-repeats 0"}
    assert not any("first_prediction_s" in t for t in r["targets"])
    saved = json.loads((out / "benchmark.json").read_text())
    assert saved["configs"][0]["predict"][0]["wall_s"] == cfg["predict"][0]["wall_s"]
    md = (out / "benchmark.md").read_text()
    assert "| default (encoder) |" in md and "Not run: mmseqs not found" in md
    assert "Not run: --s4pred-proteins 0" in md and "Not run: --latency-repeats 0" in md
    for fw in cfg["forward"]:  # the report shows the measured numbers, not only its headings
        assert f"{100 * fw['fraction_of_peak']:.0f}%" in md


def test_cli_defaults_are_the_specs_defaults(monkeypatch):
    """`dbmtl benchmark` with no options runs the spec a library caller gets with no arguments."""
    import dataclasses

    import dbmtl.benchmark.run
    from dbmtl.cli import main

    seen = []
    monkeypatch.setattr(dbmtl.benchmark.run, "run_benchmark", lambda spec, log: seen.append(spec))
    assert main(["benchmark"]) == 0
    assert dataclasses.replace(seen[0], command=None) == BenchmarkSpec()


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
