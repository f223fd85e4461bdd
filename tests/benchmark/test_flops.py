"""What the benchmark measures with: FLOP counts that match the model's weights, a forward worker whose
fraction of peak is sane, and timed commands that report their own memory, not ours."""
import math
import sys

import pytest
import torch

from dbmtl.benchmark.flops import forward_flops, linear_flops_per_token, predict_flops
from dbmtl.benchmark.machine import machine_info, machine_line
from dbmtl.inference.windows import residue_windows
from dbmtl.benchmark.timing import run_timed
from dbmtl.benchmark.workers import forward_worker
from dbmtl.model import PRESETS, ModelConfig, Transformer


def test_flop_counts():
    cfg = ModelConfig(**PRESETS["paper"])
    f = forward_flops(cfg, 32, 1024, causal=False)
    n = 12 * cfg.n_embd**2 * cfg.n_layer
    assert f["linear"] == 2 * (n + cfg.vocab_size * cfg.n_embd) * 32 * 1024
    assert f["attention"] == 4 * cfg.n_layer * 32 * 1024**2 * cfg.n_embd
    assert forward_flops(cfg, 32, 1024, causal=True)["attention"] == f["attention"] / 2
    enc = ModelConfig(**{**PRESETS["tiny"], "context": 64}, kind="encoder")
    need = predict_flops(enc, [10, 63, 64])
    # per-residue: 10+1, 63+1, and 64 residues -> windows of 63 (2 rows); per-protein: crop to 63 residues
    per_residue = [11, 64, 64, 64]
    per_protein = [11, 64, 64]
    assert need["tokens"] == 2 * sum(per_residue) + 2 * sum(per_protein)
    one = ModelConfig(**{**PRESETS["tiny"], "context": 64}, kind="onepass")
    # one row for every task: 10+2 and 62+2; 63 residues -> two windows of up to 62 plus one cropped row
    spans = [e - s for s, e in residue_windows(63, 62)]
    assert len(spans) == 2
    assert predict_flops(one, [10, 62, 63])["tokens"] == 12 + 64 + sum(n + 2 for n in spans) + 64
    assert predict_flops(one, [10])["tokens"] == 12 and predict_flops(enc, [10])["tokens"] == 4 * 11  # one pass vs four
    assert predict_flops(ModelConfig(**PRESETS["tiny"], kind="decoder"), [10]) is None  # decoder rows: not counted


@pytest.mark.parametrize("conv", [0, 9])
def test_linear_flops_count_every_weight_a_token_multiplies(conv):
    """2 FLOPs per multiply-add of every linear and convolution weight in the model's forward pass."""
    cfg = ModelConfig(**{**PRESETS["mini"], "vocab_size": 56}, kind="encoder", conv_kernel=conv)
    model = Transformer(cfg)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)))
    assert linear_flops_per_token(cfg) == 2 * weights


def test_forward_worker_reports_a_sane_fraction_of_peak():
    r = forward_worker({"config": "tiny", "dtype": "fp32", "device": "cpu", "threads": 1, "batch": 2, "length": 64,
                        "min_time": 0.0, "max_repeats": 1})
    assert r["params"] > 0 and r["seconds"] > 0 and r["peak"]["flops"] > 0
    assert r["flops_per_s"] == pytest.approx(r["flops"]["total"] / r["seconds"])
    assert 0 < r["fraction_of_peak"] < 10 and math.isfinite(r["fraction_of_peak"])
    assert r["max_rss_mib"] > 0


def test_run_timed_reports_the_commands_memory_not_ours():
    ballast = bytearray(300 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # make this process large
    small = run_timed([sys.executable, "-S", "-c", "pass"])
    big = run_timed([sys.executable, "-S", "-c", "x = bytearray(200 * 2**20); x[::4096] = b'y' * len(x[::4096])"])
    assert small.returncode == 0 and small.max_rss_mib < 100
    assert 200 < big.max_rss_mib < 300 and big.wall_s > 0
    assert run_timed(["/nonexistent/command"]).returncode != 0
    del ballast


def test_the_report_says_when_onednn_was_limited_to_older_instructions(monkeypatch):
    """A run with ONEDNN_MAX_CPU_ISA (how bf16 is timed as on a CPU without bf16 dot products) says so."""
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    plain = machine_info("cpu", 1)
    assert plain["onednn_max_cpu_isa"] is None and "oneDNN" not in machine_line(plain)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    capped = machine_info("cpu", 1)
    assert "oneDNN limited to AVX512_CORE" in machine_line(capped)
