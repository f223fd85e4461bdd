"""scripts/gpu_window.py's CPU dry run: the one prepared GPU-window command, end to end with a tiny model
and a tiny budget (CI has no GPU): pack, probe, train inside the budget, stream the best weights and the
log to a fake $OUT within the device's limits on what comes back, time predict, write the summary."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from safetensors import safe_open

from dbmtl.data.catalog import CORPUS_FILES, TEST_SET_FILES, TRAINING_FILES
from dbmtl.model.checkpoint import load_checkpoint
from dbmtl.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_window.py"


def test_pack_then_run_streams_the_best_weights_and_a_summary(tmp_path, data_dir):
    env = {**os.environ, "DBMTL_DATA": str(data_dir), "PYTHONPATH": str(ROOT / "src")}
    pack, out = tmp_path / "window", tmp_path / "OUT"
    subprocess.run([sys.executable, str(SCRIPT), "pack", "--out", str(pack), "--compresslevel", "1"],
                   check=True, env=env, cwd=ROOT, timeout=300)
    manifest = json.loads((pack / "manifest.json").read_text())
    packed = {f["path"] for f in manifest["files"]}
    assert set(TRAINING_FILES) | {p for p in TEST_SET_FILES.values() if (data_dir / p).exists()} <= packed
    assert set(CORPUS_FILES) <= packed and any("uniref" in p for p in packed)  # the config's lm_sources
    assert (pack / "data.tar.gz").stat().st_size < 40 * 2**20

    tiny = ['--model', '{"n_layer": 1, "n_embd": 32, "n_head": 2}', '--override',
            '{"init_from": null, "init_layers": null, "batch_tokens": 2048, "task_batch_tokens": {"lm": 1024}, "valid_examples": 8}']
    done = subprocess.run([sys.executable, str(SCRIPT), "run", str(pack), "--out", str(out), "--run-dir",
                           str(tmp_path / "run"), "--device", "cpu", "--threads", "1", "--budget-s", "200",
                           "--variants", "fp32,fp32+buckets", "--probe-warmup", "1", "--probe-steps", "3",
                           "--evals", "2", "--max-steps", "4", "--predict-proteins", "12", "--limit-records", "300", *tiny],
                          env=env, cwd=ROOT, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in pack.iterdir()) == ["data.tar.gz", "manifest.json"]  # the carry stays as packed

    # what comes back from a device: at most 8 files, 16 MiB each, plain names, no folders
    files = sorted(p.name for p in out.iterdir())
    assert files == ["best.tar", "run_config.json", "summary.json", "train_log.jsonl", "window.log"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) and (out / f).stat().st_size < 16 * 2**20 for f in files)

    summary = json.loads((out / "summary.json").read_text())
    probe = summary["probe"]["variants"]
    assert set(probe) == {"fp32", "fp32+buckets"} and summary["probe"]["chosen"] in probe
    assert all(v["steps"] == 3 and v["step_s_mean"] > 0 and v["new_shape_steps"] + v["seen_shape_steps"] == 3
               for v in probe.values())
    assert probe["fp32+buckets"]["shape_buckets"] == 64 and probe["fp32"]["shape_buckets"] == 0
    assert all(c % 64 == 0 for _, c in probe["fp32+buckets"]["shapes"])  # the variant reached the trainer
    assert any(c % 64 for _, c in probe["fp32"]["shapes"])
    run = summary["run"]
    assert run["steps"] == summary["plan"]["max_steps"] == 4 and [v["step"] for v in run["valid"]] == [2, 4]
    assert run["tokens"] > 0 and run["tokens_per_s"] > 0 and run["flops_per_token"] > 0
    assert run["peak_share"] is None  # no GPU, no peak to compare with
    assert run["best_step"] == min(run["valid"], key=lambda v: v["mean_loss"])["step"]
    phases = summary["phases_s"]
    assert summary["train_share"] == pytest.approx(run["train_s"] / phases["total_s"], abs=2e-3)
    assert 0 < summary["steps_share"] < summary["train_share"] < 1 and phases["total_s"] <= 200
    assert summary["predict"]["finished"] and summary["predict"]["proteins"] == 12
    assert summary["predict"]["proteins_per_s"] > 0

    # the best weights, in half precision, as `dbmtl export` writes them
    with tarfile.open(out / "best.tar") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    model, _, meta = load_checkpoint(tmp_path / "back" / "best")
    assert meta["step"] == run["best_step"] and model.cfg.n_layer == 1
    with safe_open(str(tmp_path / "back" / "best" / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}

    # the as-run config repeats the run; the log has its validations
    cfg = TrainConfig.load(out / "run_config.json")
    assert (cfg.max_steps, cfg.decay_steps, cfg.eval_every) == (4, 4, 2)
    assert cfg.shape_buckets == probe[summary["probe"]["chosen"]]["shape_buckets"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "valid" in r] == [2, 4]
    # the config's moving average: validation scores it and, beside it, the weights it averages
    assert cfg.ema_decay and all(set(r["valid_trained"]) == set(r["valid"]) for r in log if "valid" in r)
    assert "chosen" in (out / "window.log").read_text()
