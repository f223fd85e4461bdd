"""A tiny `dbmtl benchmark` run fills every field of its report (no timing thresholds anywhere)."""
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
