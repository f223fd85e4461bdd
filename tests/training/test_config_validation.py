"""Config values are type- and range-checked when a config is built, with a message that names the key:
a typo fails at once, not as a NaN or a crash hours into a run."""
import json
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbmtl.model import ModelConfig
from dbmtl.training import TrainConfig


@pytest.mark.parametrize("values, message", [
    ({"lr": "fast"}, "training config: 'lr' must be a number, not 'fast'"),
    ({"lr": 0}, "'lr' must be above 0, not 0"),
    ({"lr": float("nan")}, "'lr' must be a finite number, not nan"),
    ({"grad_accum": "4"}, "'grad_accum' must be an integer, not '4'"),
    ({"grad_accum": True}, "'grad_accum' must be an integer, not True"),
    ({"grad_accum": 4.0}, "'grad_accum' must be an integer, not 4.0"),
    ({"batch_tokens": 0}, "'batch_tokens' must be at least 1, not 0"),
    ({"batch_tokens": -100}, "'batch_tokens' must be at least 1"),
    ({"warmup_steps": -1}, "'warmup_steps' must be at least 0, not -1"),
    ({"max_steps": -1}, "'max_steps' must be at least 0, not -1"),
    ({"betas": [0.9]}, "'betas' must be a list of 2 numbers, not [0.9]"),
    ({"betas": [0.9, 1.0]}, "'betas' entry 1 must be in [0, 1), not 1.0"),
    ({"betas": "0.9,0.99"}, "'betas' must be a list of 2 numbers"),
    ({"weight_decay": -0.1}, "'weight_decay' must be at least 0, not -0.1"),
    ({"tasks": {"ss3": -1.0}}, "'tasks' entry 'ss3' must be at least 0, not -1.0"),
    ({"tasks": {"ss3": "1"}}, "'tasks' must be an object of numbers"),
    ({"tasks": {"ss3": 0}}, "'tasks' needs at least one task with a positive weight"),
    ({"tasks": {"ss4": 1}}, "'tasks' has unknown tasks ['ss4']"),
    ({"task_batch_tokens": {"ss3": 0}}, "'task_batch_tokens' entry 'ss3' must be at least 1, not 0"),
    ({"mixing": "both"}, "'mixing' must be one of ['joint', 'sample'], not 'both'"),
    ({"lm_on_labeled": 1}, "'lm_on_labeled' must be true or false, not 1"),
    ({"checkpoint_every": 0}, "'checkpoint_every' must be at least 1, not 0"),
    ({"threads": 0}, "'threads' must be at least 1, not 0"),
    ({"out_dir": None}, "'out_dir' must be a string, not None"),
    ({"model": "tiny"}, "'model' must be an object"),
    ({"model": {"preset": 3}}, "unknown model 'preset' 3"),
    ({"model": {"n_head": 0}}, "model config: 'n_head' must be in [1, 1024], not 0"),
    ({"model": {"n_layer": -2}}, "model config: 'n_layer' must be in [1, 1024], not -2"),
    ({"model": {"n_layer": "6"}}, "model config: 'n_layer' must be an integer, not '6'"),
    ({"model": {"dropout": 1.0}}, "model config: 'dropout' must be in [0, 1), not 1.0"),
    ({"model": {"dropout": -0.1}}, "model config: 'dropout' must be in [0, 1)"),
    ({"model": {"n_embd": 100, "n_head": 3}}, "'n_embd' 100 is not divisible by 'n_head' 3"),
    ({"model": {"n_embd": 1_000_000}}, "model config: 'n_embd' must be in [1, 65536], not 1000000"),
    ({"model": {"context": 100_000}}, "model config: 'context' must be in [1, 65536], not 100000"),
    ({"model": {"n_layer": 1000, "n_embd": 8192, "n_head": 64}}, "872.7 billion parameters"),  # the default convolution
])
def test_a_bad_value_is_refused_naming_the_key(values, message):
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(values)
    assert message in str(err.value)


def test_a_config_file_with_a_bad_value_names_the_key(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"lr": "fast"}))
    with pytest.raises(ValueError, match=r"'lr' must be a number, not 'fast'"):
        TrainConfig.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        TrainConfig.load(path)


def test_replace_checks_too():
    """`dbmtl train --max-steps` goes through dataclasses.replace, which must check as from_dict does."""
    with pytest.raises(ValueError, match="'max_steps' must be at least 0"):
        replace(TrainConfig(), max_steps=-3)


def test_valid_values_are_accepted_and_lists_become_tuples():
    cfg = TrainConfig.from_dict({"betas": [0.8, 0.99], "lr": 1, "tasks": {"ss3": 1, "loc": 0}, "threads": None,
                                 "warmup_steps": 0, "max_steps": 0, "model": {"preset": "tiny", "dropout": 0}})
    assert cfg.betas == (0.8, 0.99) and cfg.lr == 1 and cfg.tasks == {"ss3": 1, "loc": 0}


# A value of any JSON type, to put under a key that expects another one (or a bad value of the right type).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from([f.name for f in fields(TrainConfig) if f.name != "model"]), value=json_values)
def test_any_value_under_a_training_key_builds_or_fails_naming_the_key(key, value):
    try:
        TrainConfig.from_dict({key: value})
    except ValueError as exc:
        assert f"'{key}'" in str(exc), str(exc)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from([f.name for f in fields(ModelConfig)]), value=json_values)
def test_any_value_under_a_model_key_builds_or_fails_naming_the_key(key, value):
    try:
        TrainConfig.from_dict({"model": {"preset": "tiny", key: value}})
    except ValueError as exc:
        text = str(exc)
        # a size that fits the range but breaks an invariant between two keys names both
        assert key in text or "n_embd" in text and "n_head" in text, text
