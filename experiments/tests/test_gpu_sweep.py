"""experiments/gpu_sweep.py: configs trained side by side inside a wall-clock budget."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_sweep", ROOT / "experiments" / "gpu_sweep.py")
gpu_sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_sweep)


def test_steps_fill_the_budget_after_startup_and_validations():
    steps, every = gpu_sweep.allocate_steps(budget_s=100, startup_s=10, step_s=0.1, valid_s=2, evals=5, safety=1.0)
    assert (steps, every) == (800, 160)  # (100 - 10 - 5 x 2) / 0.1 = 800 steps, a validation every 160
    steps, every = gpu_sweep.allocate_steps(budget_s=100, startup_s=10, step_s=0.1, valid_s=2, evals=6, safety=1.0)
    assert steps % 6 == 0 and steps <= 780 and every == steps // 6
    assert gpu_sweep.allocate_steps(budget_s=1, startup_s=10, step_s=1, valid_s=1, evals=4) == (4, 1)  # never zero


def test_probe_rates_time_steps_after_the_first_logged_one_and_the_validation_beyond_them():
    log = [{"step": 5, "loss": {}, "elapsed_s": 20.0},  # start-up and first-step compilation before this
           {"step": 10, "loss": {}, "elapsed_s": 21.0},
           {"step": 30, "loss": {}, "elapsed_s": 25.0},
           {"step": 30, "valid": {}, "elapsed_s": 28.5}]
    train, valid = log[:3], log[3:]
    assert gpu_sweep.probe_rates(train, valid) == (pytest.approx(0.2), pytest.approx(3.5))
    with pytest.raises(ValueError, match="too few steps"):
        gpu_sweep.probe_rates(train[:1], [])


def test_budgeted_and_fixed_configs_run_side_by_side(tmp_path, data_dir):
    base = {"model": {"preset": "tiny", "kind": "onepass", "protein_pooling": "cls", "conv_kernel": 0},
            "tasks": {"ss8": 1.0, "loc": 1.0}, "localization_sources": "subsets", "lm_sources": "mmseqs2", "lr": 1e-3, "warmup_steps": 5, "batch_tokens": 1024, "valid_examples": 16, "log_every": 2,
            "grad_accum": 1, "seed": 0, "precision": "fp32"}
    budgeted = {**base, "max_steps": 10_000, "decay_steps": 10_000, "eval_every": 100, "checkpoint_every": 100}
    fixed = {**base, "max_steps": 12, "decay_steps": 12, "eval_every": 6, "checkpoint_every": 6}
    (tmp_path / "budgeted.json").write_text(json.dumps(budgeted))
    (tmp_path / "fixed.json").write_text(json.dumps(fixed))
    root = tmp_path / "runs"
    env = {**os.environ, "DBMTL_DATA": str(data_dir), "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, str(ROOT / "experiments" / "gpu_sweep.py"), str(tmp_path / "budgeted.json"),
                    "--fixed", str(tmp_path / "fixed.json"), "--budget-s", "40", "--probe-steps", "8",
                    "--evals", "3", "--out-root", str(root), "--train-args", "--threads 1"],
                   check=True, env=env, cwd=tmp_path, timeout=600)
    plan = json.loads((root / "plan.json").read_text())
    run = json.loads((root / "configs" / "budgeted.json").read_text())
    assert run["max_steps"] == run["decay_steps"] == plan["budgeted"]["max_steps"] < 10_000
    assert run["max_steps"] == 3 * run["eval_every"] and run["out_dir"] == str(root / "budgeted")
    valid = [r for r in map(json.loads, (root / "budgeted" / "log.jsonl").read_text().splitlines()) if "valid" in r]
    assert [r["step"] for r in valid] == [run["eval_every"] * k for k in (1, 2, 3)]  # finished inside the budget
    assert (root / "budgeted" / "best" / "model.safetensors").exists()
    kept = json.loads((root / "configs" / "fixed.json").read_text())
    assert kept["max_steps"] == 12 and kept["eval_every"] == 6  # a fixed config keeps its schedule
    steps = [r["step"] for r in map(json.loads, (root / "fixed" / "log.jsonl").read_text().splitlines()) if "valid" in r]
    assert steps == [6, 12]
