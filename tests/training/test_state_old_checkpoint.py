"""A checkpoint written by the trainer as it was before the kinds became objectives of one loop
(tests/fixtures/onepass_step2, written by the code of a0c3e51 with its make_fixture.py: a tiny onepass
model at step 2 of 4, and the log of the same run never stopped) resumes and ends with that run's numbers."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dbmtl.training import TrainConfig, Trainer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "onepass_step2"


def resumed_run(run: Path, data) -> Trainer:
    state = json.loads((FIXTURE / "checkpoint" / "state.json").read_text())
    cfg = replace(TrainConfig.from_saved(state["train_config"]), out_dir=str(run))
    shutil.copytree(FIXTURE / "checkpoint", run / "checkpoint")
    trainer = Trainer(cfg, data, progress=False, resuming=True)
    trainer.resume()
    assert trainer.step == 2 and trainer.model.cfg.kind == "onepass"
    trainer.fit()
    return trainer


def after_step_2(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows if r["step"] > 2]


def test_a_checkpoint_of_the_earlier_trainer_resumes_to_the_numbers_of_its_uninterrupted_run(tmp_path, data):
    trainer = resumed_run(tmp_path / "a", data)
    logged = after_step_2([json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()])
    expected = after_step_2(json.loads((FIXTURE / "straight_log.json").read_text()))
    assert [(r["step"], sorted(r)) for r in logged] == [(r["step"], sorted(r)) for r in expected]
    assert [r["step"] for r in logged] == [3, 4, 4]  # two steps' losses and the validation at the end
    for got, want in zip(logged, expected):
        for part in ("loss", "valid"):
            if part in want:
                assert set(got[part]) == set(want[part])
                for task, value in want[part].items():
                    assert got[part][task] == pytest.approx(value, rel=1e-5), (got["step"], part, task)
    # deterministic: a second resume of the same checkpoint ends with the same weights, bit for bit
    again = resumed_run(tmp_path / "b", data)
    for (name, a), (_, b) in zip(trainer.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name
