"""ema_decay: a moving average of the weights is what validation scores and best/ keeps; the trained
weights go on training; a resume continues the average exactly."""
import json

import pytest
import torch

from dbmtl.model.checkpoint import load_checkpoint
from dbmtl.training import TrainConfig, Trainer

from helpers import straight_and_resumed, tiny_train_config

DECAY = 0.5


def test_the_average_is_the_moving_average_of_the_trained_weights(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=4, ema_decay=DECAY, tasks={"ss3": 1, "loc": 1}, eval_every=4)
    trainer = Trainer(cfg, data, progress=False)
    expected = None
    for _ in range(4):
        trainer.train_step()
        now = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        expected = now if expected is None else {k: DECAY * expected[k] + (1 - DECAY) * now[k] for k in now}
    averaged = trainer.scored_model.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(averaged[name], value, rtol=1e-5, atol=1e-6)
    differs = [n for n, v in expected.items() if not torch.equal(v, trainer.model.state_dict()[n])]
    assert differs  # the trained weights are not the average


def test_validation_scores_the_average_and_best_keeps_it(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=4, ema_decay=DECAY, tasks={"ss3": 1, "loc": 1}, eval_every=4)
    trainer = Trainer(cfg, data, progress=False)
    trainer.fit()
    record = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if "valid" in line][-1]
    assert record["valid"] == trainer.validate(trainer.scored_model)
    assert record["valid_trained"] == trainer.validate(trainer.model)
    assert record["valid"] != record["valid_trained"]
    best, _, _ = load_checkpoint(tmp_path / "run" / "best")
    for name, value in best.state_dict().items():
        assert torch.equal(value, trainer.scored_model.state_dict()[name]), name


def test_resume_continues_the_average_exactly(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=6, checkpoint_every=3, ema_decay=DECAY, tasks={"ss3": 1, "loc": 1})
    straight, resumed = straight_and_resumed(cfg, data, tmp_path, stop=3)
    assert int(resumed.average.n_averaged) == 6
    for (name, a), (_, b) in zip(straight.scored_model.state_dict().items(), resumed.scored_model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_checkpoint_without_an_average_starts_one_at_its_weights(tmp_path, data):
    plain = tiny_train_config(tmp_path, max_steps=2, checkpoint_every=2, tasks={"ss3": 1})
    Trainer(plain, data, progress=False).fit()
    averaged = TrainConfig.from_dict({**plain.to_dict(), "model": plain.model.to_dict(), "ema_decay": DECAY,
                                      "max_steps": 3})
    trainer = Trainer(averaged, data, progress=False)
    trainer.resume()
    trainer.fit()
    assert int(trainer.average.n_averaged) == 1  # one update since the resume: a copy of the weights
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, trainer.scored_model.state_dict()[name]), name


def test_ema_decay_is_checked():
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=0.9, parallel="fsdp")
