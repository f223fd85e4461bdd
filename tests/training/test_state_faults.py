"""`dbmtl train` killed with SIGKILL at random moments (a checkpoint every step, so kills land in checkpoint
writes too) and resumed each time ends with the weights of a run never interrupted; the crash windows a
random kill rarely hits are tested one by one."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dbmtl.data.catalog import load_training_data
from dbmtl.training import TrainConfig, Trainer

from helpers import tiny_train_config

KILLS = 3
MAX_STEPS = 16


def checkpoint_step(run: Path) -> int:
    """The step of the checkpoint a resume would read, or -1 (files may be renamed while we look)."""
    for name in ("checkpoint", "checkpoint.old"):
        try:
            return json.loads((run / name / "state.json").read_text())["step"]
        except (OSError, ValueError):
            continue
    return -1


def train(cfg: Path, out: Path, data_dir: Path, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "dbmtl.cli", "train", "--config", cfg, "--out", out, "--threads", "1",
           "--data-dir", data_dir, "--quiet"] + (["--resume"] if resume else [])
    return subprocess.Popen(list(map(str, cmd)), env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("DBMTL_KILL_SEEDS", "0").split(",")])
def test_a_run_killed_three_times_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, data_dir, seed):
    # the LM stream's position and a labeled task's random stream are what a resume must restore; the
    # per-residue tasks would only add seconds of encoding to each of the five starts
    cfg = tiny_train_config(tmp_path, tasks={"lm": 1, "loc": 1}, mixing="sample", grad_accum=2,
                            batch_tokens=1500, max_steps=MAX_STEPS, warmup_steps=2, decay_steps=MAX_STEPS,
                            checkpoint_every=1, eval_every=5, log_every=1, valid_examples=8)
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    straight = Trainer(TrainConfig.load(cfg_path), load_training_data(data_dir), out_dir=tmp_path / "straight",
                       progress=False)
    straight.fit()
    logged = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    step_s = max(r.get("elapsed_s", 0) for r in logged) / MAX_STEPS  # a step and its checkpoint write

    rng, run, kills = random.Random(seed), tmp_path / "killed", []
    while True:
        started_at = checkpoint_step(run)
        proc = train(cfg_path, run, data_dir, resume=started_at >= 0)
        if len(kills) == KILLS:
            break
        # a random step, leaving room for the kills still to come, then a random instant of the step
        # after it (its passes, its log line or its checkpoint write) or, half of the time, the moment its
        # checkpoint write has begun
        low = max(started_at + 1, 1)
        target = rng.randint(low, max(low, MAX_STEPS - 3 * (KILLS - len(kills))))
        deadline = time.time() + 120
        while proc.poll() is None and checkpoint_step(run) < target:
            assert time.time() < deadline, "no progress"
            time.sleep(0.005)
        if rng.random() < 0.5:
            while proc.poll() is None and not (run / "checkpoint.tmp").exists():
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.01))
        else:
            time.sleep(rng.uniform(0.0, step_s))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, out[-3000:]
        # where it landed: mid-write (checkpoint.tmp left over), between the renames (.old only) or elsewhere
        kills.append((checkpoint_step(run), (run / "checkpoint.tmp").exists(), not (run / "checkpoint").exists()))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]

    print("kills (checkpoint step, mid-write, between renames):", kills)
    assert len(kills) == KILLS and all(0 <= k[0] < MAX_STEPS for k in kills), kills
    assert checkpoint_step(run) == MAX_STEPS
    final = load_file(str(run / "checkpoint" / "model.safetensors"))
    expected = straight.model.state_dict()
    assert set(final) <= set(expected) and len(final) >= len(expected) - 1  # the tied output weight is not stored
    for name, value in final.items():
        assert torch.equal(value, expected[name]), name
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "lr" in r] == list(range(1, MAX_STEPS + 1))  # none lost or twice
    assert [r["step"] for r in records if "valid" in r] == [5, 10, 15, MAX_STEPS]


def test_ctrl_c_stops_training_cleanly_and_resume_ends_like_an_uninterrupted_run(tmp_path, data_dir):
    """SIGINT (Ctrl-C) mid-run: exit 130, one line saying where the intact checkpoint is and how to go on,
    no traceback; --resume then ends with the weights of a run never interrupted."""
    cfg = tiny_train_config(tmp_path, tasks={"lm": 1, "loc": 1}, mixing="sample", batch_tokens=1500,
                            max_steps=MAX_STEPS, warmup_steps=2, decay_steps=MAX_STEPS, checkpoint_every=1,
                            eval_every=1000, valid_examples=8)
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    run = tmp_path / "stopped"
    proc = train(cfg_path, run, data_dir, resume=False)
    deadline = time.time() + 120
    while proc.poll() is None and checkpoint_step(run) < 2:
        assert time.time() < deadline, "no progress"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt landed")
    assert proc.returncode == 130, out[-3000:]
    assert "stopped at step" in out and "--resume" in out and "Traceback" not in out, out[-3000:]
    stopped_at = checkpoint_step(run)
    assert 2 <= stopped_at < MAX_STEPS
    proc = train(cfg_path, run, data_dir, resume=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    straight = Trainer(TrainConfig.load(cfg_path), load_training_data(data_dir), out_dir=tmp_path / "straight",
                       progress=False)
    straight.fit()
    final = load_file(str(run / "checkpoint" / "model.safetensors"))
    expected = straight.model.state_dict()
    for name, value in final.items():
        assert torch.equal(value, expected[name]), name


# -- the crash windows, one at a time ----------------------------------------------------------------------
class Killed(Exception):
    """Stands for SIGKILL at one chosen instant."""


def test_a_crash_while_replacing_a_checkpoint_restored_from_old_keeps_old(tmp_path, data, monkeypatch):
    """A kill between the two renames leaves only checkpoint.old; the resumed run's next checkpoint must
    not delete .old before its own copy is in place, or a second kill there would leave nothing."""
    cfg = tiny_train_config(tmp_path, tasks={"ss3": 1}, mixing="sample", max_steps=4, checkpoint_every=2)
    Trainer(cfg, data, progress=False).fit(max_steps=2)
    run = tmp_path / "run"
    (run / "checkpoint").rename(run / "checkpoint.old")  # the first kill
    resumed = Trainer(cfg, data, progress=False)
    resumed.resume()

    real_rename = Path.rename

    def kill_before_the_new_checkpoint_is_in_place(self, target):
        if self.name == "checkpoint.tmp":
            raise Killed
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", kill_before_the_new_checkpoint_is_in_place)
    with pytest.raises(Killed):
        resumed.fit()  # the second kill, at step 4's checkpoint
    monkeypatch.undo()
    again = Trainer(cfg, data, progress=False)
    again.resume()
    assert again.step == 2
    again.fit()
    assert checkpoint_step(run) == 4 and not (run / "checkpoint.old").exists()


def test_a_log_line_torn_by_a_kill_is_dropped_on_resume(tmp_path, data):
    cfg = tiny_train_config(tmp_path, tasks={"ss3": 1}, mixing="sample", max_steps=4, checkpoint_every=2, log_every=1)
    Trainer(cfg, data, progress=False).fit(max_steps=2)
    log = tmp_path / "run" / "log.jsonl"
    with open(log, "a") as fh:
        fh.write('{"step": 3, "lr": 0.003, "loss": {"ss3"')  # killed in mid-write
    resumed = Trainer(cfg, data, progress=False)
    resumed.resume()
    resumed.fit()
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 2, 3, 4, 4]  # step 2 and 4: loss and validation
