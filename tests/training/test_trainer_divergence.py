"""A NaN or infinite loss or gradient stops training before the optimizer step: the weights, the optimizer
and the checkpoint on disk stay the last good ones, and the error says where it happened and what to do."""
import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dbmtl.training import Trainer, TrainingDiverged

from helpers import DECODER, ONEPASS, tiny_train_config


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def snapshot(trainer: Trainer) -> tuple[dict, list]:
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    steps = [float(s["step"]) for s in trainer.optimizer.state.values()]
    return weights, steps


def assert_unchanged(trainer: Trainer, before: tuple[dict, list]) -> None:
    weights, steps = snapshot(trainer)
    assert all(torch.equal(weights[k], v) for k, v in before[0].items())
    assert steps == before[1]


# onepass: each slot's step is one micro-batch of every labeled task; decoder: one micro-batch per task
# (slot 0: ss3, loc; then slot 1: ss3, loc). The NaN is in slot 1's first micro-batch.
@pytest.mark.parametrize("model, bad_call, passes, where", [
    (ONEPASS, 2, 2, "the 'labeled' loss is nan in micro-batch 2 of 2 (slot 1)"),
    (DECODER, 3, 4, "the 'ss3' loss is nan in micro-batch 3 of 4 (slot 1)")], ids=["onepass", "decoder"])
def test_a_nan_loss_stops_before_the_step_and_keeps_the_checkpoint(tmp_path, data, monkeypatch, model, bad_call, passes,
                                                                  where):
    cfg = tiny_train_config(tmp_path, model=model, tasks={"ss3": 1, "loc": 1}, grad_accum=2, max_steps=4,
                            checkpoint_every=2)
    trainer = Trainer(cfg, data, progress=False)
    trainer.fit(max_steps=2)
    checkpoint = tmp_path / "run" / "checkpoint"
    on_disk, before = files(checkpoint), snapshot(trainer)

    calls = []
    real_loss = trainer.objective.loss

    def nan_in_one_micro_batch(*args, **kw):
        loss, parts = real_loss(*args, **kw)
        calls.append(1)
        return (loss * math.nan if len(calls) == bad_call else loss), parts

    monkeypatch.setattr(trainer.objective, "loss", nan_in_one_micro_batch)
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit()
    message = str(err.value)
    assert message.startswith(f"training diverged at step 3: {where}")
    assert f"the last good checkpoint, {checkpoint} (step 2), is intact" in message
    assert "--resume and a lower 'lr'" in message
    assert isinstance(err.value, ValueError)  # the CLI reports it as an error, exit status 2
    assert trainer.step == 2 and len(calls) == passes  # every micro-batch ran (ranks stay in step), none applied
    assert_unchanged(trainer, before)
    assert files(checkpoint) == on_disk
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["step"] == 3 and logged[-1]["diverged"] == message

    # the advice works: resume the checkpoint with a lower lr, the diverged step's log line is dropped
    resumed = Trainer(replace(cfg, lr=cfg.lr / 10), data, progress=False)
    resumed.resume()
    resumed.fit()
    assert resumed.step == 4
    assert not any("diverged" in line for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines())


def test_an_infinite_gradient_stops_before_the_step(tmp_path, data):
    cfg = tiny_train_config(tmp_path, tasks={"ss3": 1}, max_steps=3, checkpoint_every=1000, grad_clip=0.0)
    trainer = Trainer(cfg, data, progress=False)
    before = snapshot(trainer)
    trainer.model.blocks[0].mlp[0].weight.register_hook(lambda g: g * math.inf)
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit()
    message = str(err.value)
    assert message.startswith("training diverged at step 1: the gradient norm is ")
    assert "(every micro-batch loss was finite)" in message
    assert "no checkpoint was written yet (checkpoint_every 1000): start again with a lower 'lr'" in message
    assert_unchanged(trainer, before)
    assert not (tmp_path / "run" / "checkpoint").exists()


WORKER = """
import math, sys
from pathlib import Path
from dbmtl.data.catalog import load_training_data
from dbmtl.training import TrainConfig, Trainer, TrainingDiverged
from dbmtl.training.distributed import destroy_process_group

config, out, data_dir = sys.argv[1:4]
trainer = Trainer(TrainConfig.load(config), load_training_data(Path(data_dir)), out_dir=out, progress=False)
real = trainer.objective.loss

def nan_on_rank_1_at_step_2(*args, **kw):
    loss, parts = real(*args, **kw)
    bad = trainer.group.rank == 1 and trainer.step == 1
    return (loss * math.nan if bad else loss), parts

trainer.objective.loss = nan_on_rank_1_at_step_2
try:
    trainer.fit()
    outcome = "finished"
except TrainingDiverged as exc:
    outcome = f"stopped at step {trainer.step}: {exc}"
Path(out, f"rank{trainer.group.rank}.txt").write_text(outcome)
trainer.group.barrier()
del trainer
destroy_process_group()
"""


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_every_process_stops_when_one_diverges(tmp_path, data_dir, parallel):
    """Under torchrun rank 1 alone sees the NaN; both ranks stop at the same step (none waits forever
    in a collective the other has left)."""
    cfg = tiny_train_config(tmp_path, tasks={"ss3": 1}, grad_accum=2, max_steps=4, checkpoint_every=1,
                            batch_tokens=1500, valid_examples=4, parallel=parallel)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    (tmp_path / "worker.py").write_text(textwrap.dedent(WORKER))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           tmp_path / "worker.py", tmp_path / "cfg.json", tmp_path / "run", data_dir]
    done = subprocess.run(list(map(str, cmd)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for rank in (0, 1):
        outcome = (tmp_path / "run" / f"rank{rank}.txt").read_text()
        assert outcome.startswith("stopped at step 1: training diverged at step 2: the 'labeled' loss is "
                                  "nan in micro-batch 1 of 1 (slot 1) on rank 1"), outcome
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 1
