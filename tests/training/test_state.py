"""Resume: exact continuation, a crash between checkpoint renames, the model check across config forms."""
import json
from dataclasses import replace

import pytest
import torch

from dbmtl.training import Trainer

from helpers import ONEPASS, straight_and_resumed, tiny_train_config


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=8, checkpoint_every=4, tasks={"lm": 1, "ss3": 1, "loc": 1}, mixing="sample")
    straight, resumed = straight_and_resumed(cfg, data, tmp_path, stop=4)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert [s.lm.state() for s in resumed.slots] == [s.lm.state() for s in straight.slots]


def test_resume_survives_a_crash_between_checkpoint_renames(tmp_path, data):
    """If the process dies after moving the old checkpoint aside and before the new one is in place,
    --resume continues from the complete previous checkpoint instead of starting over."""
    cfg = tiny_train_config(tmp_path, max_steps=4, checkpoint_every=2, tasks={"ss3": 1}, mixing="sample")
    Trainer(cfg, data, out_dir=tmp_path / "run", progress=False).fit(max_steps=2)
    (tmp_path / "run" / "checkpoint").rename(tmp_path / "run" / "checkpoint.old")
    resumed = Trainer(cfg, data, out_dir=tmp_path / "run", progress=False)
    resumed.resume()
    assert resumed.step == 2


def test_resume_compares_the_model_whether_saved_as_a_preset_or_resolved(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=2, checkpoint_every=2, tasks={"ss3": 1}, mixing="sample")
    Trainer(cfg, data, progress=False).fit()
    state_file = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["train_config"]["model"] == cfg.model.to_dict()
    state["train_config"]["model"] = ONEPASS  # the same model, as a preset
    state_file.write_text(json.dumps(state))
    resumed = Trainer(cfg, data, progress=False)
    resumed.resume()
    assert resumed.step == 2
    other = replace(cfg, model=replace(cfg.model, dropout=0.0))
    with pytest.raises(ValueError, match="trained with model"):
        Trainer(other, data, progress=False).resume()
