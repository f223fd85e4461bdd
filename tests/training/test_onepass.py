"""Training the onepass kind: every loss from one pass, a tiny model learns, and --resume is exact."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dbmtl.data.catalog import TrainingData
from dbmtl.data.layouts import layout_for
from dbmtl.data.onepass import collate_one_pass, one_pass_examples
from dbmtl.inference.predictor import Predictor
from dbmtl.model import PRESETS, ModelConfig, Transformer
from dbmtl.model.heads import OnePassHeads, one_pass_logits
from dbmtl.tasks import LOCATIONS, SS3_LABELS, SS8_LABELS, SS8_TO_SS3, TASKS
from dbmtl.tokens import Alphabet
from dbmtl.training import Trainer
from dbmtl.training.onepass import OnePassObjective

from helpers import ONEPASS, straight_and_resumed, tiny_train_config


def test_losses_are_read_from_one_pass(data):
    """SS3 is scored on -log of the summed SS8 probability of its class; a soft location target on the
    mean of -log p over its locations; each task only where it has labels."""
    torch.manual_seed(0)
    alphabet = Alphabet()
    model = Transformer(ModelConfig(**{**PRESETS["tiny"], "kind": "onepass"})).eval()
    layout = layout_for("onepass", alphabet, 1024)
    every = one_pass_examples(data, layout)
    examples = ([e for e in every if (e.ss8 >= 0).any()][:4] + [e for e in every if (e.ss3 >= 0).any()][:4]
                + [e for e in every if e.loc.sum() > 0][:4] + [e for e in every if e.ms >= 0][:2])
    examples[0].loc = torch.zeros(len(LOCATIONS))
    examples[0].loc[[1, 7]] = 0.5
    batch = collate_one_pass(examples, alphabet.pad_id)
    heads = OnePassHeads(alphabet)
    with torch.no_grad():
        logits = one_pass_logits(model, batch)
        scores = heads.scores(logits, batch)
    p8 = torch.softmax(logits[..., alphabet.label_ids(TASKS["ss8"])], -1)
    groups = [[SS8_LABELS.index(s) for s in SS8_LABELS if SS8_TO_SS3[s] == c] for c in SS3_LABELS]
    p3 = torch.stack([p8[..., g].sum(-1) for g in groups], -1)
    has = batch.ss3 >= 0
    expected = -p3[has].gather(-1, batch.ss3[has][:, None]).log().sum()
    assert float(scores["ss3"]["sum"]) == pytest.approx(float(expected), rel=1e-5)
    assert scores["ss3"]["n"] == int(has.sum()) and scores["ss8"]["n"] == int((batch.ss8 >= 0).sum())
    ploc = torch.log_softmax(logits[:, 0, alphabet.label_ids(TASKS["loc"])], -1)
    known = batch.loc.sum(-1) > 0
    assert float(scores["loc"]["sum"]) == pytest.approx(float(-(batch.loc * ploc)[known].sum()), rel=1e-5)
    assert "lm" not in scores  # nothing hidden, nothing scored


def test_a_tiny_onepass_model_learns_every_task_from_one_pass_per_micro_batch(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=30, decay_steps=30, model=ONEPASS, lm_objective="masked",
                            tasks={"lm": 0.5, "ss3": 1, "ss8": 1, "loc": 2, "ms": 2}, batch_tokens=8000,
                            task_batch_tokens={"lm": 3000}, eval_every=30, valid_examples=32, log_every=1)
    trainer = Trainer(cfg, data, progress=False)
    assert isinstance(trainer.objective, OnePassObjective) and list(trainer.pools) == ["labeled"]
    before = trainer.validate()
    assert set(before) == {"lm", "ss3", "ss8", "loc", "ms"}
    calls = []
    hook = trainer.model.register_forward_hook(lambda *_: calls.append(1))
    trainer.train_step()
    assert len(calls) == 2  # one labeled micro-batch (all four tasks) and one masked-LM micro-batch
    hook.remove()
    after = trainer.fit()
    logged = [r for r in map(json.loads, open(tmp_path / "run" / "log.jsonl")) if "loss" in r]
    for task in ("ss8", "loc", "ms", "lm"):  # SS3 needs longer than 30 steps to beat its marginal here
        curve = [r["loss"][task] for r in logged if task in r["loss"]]
        assert np.mean(curve[-10:]) < np.mean(curve[:3]) - 0.03, (task, curve)
    for task in ("ss8", "lm"):
        assert after[task]["loss"] < before[task]["loss"] - 0.2, (task, before[task], after[task])
    assert after["ss8"]["accuracy"] > 0.3
    # the trained model answers all four from one pass; SS3 is the SS8 distribution summed over each
    # class, and every residue's SS3 letter is the class of its SS8 letter
    predictor = Predictor(trainer.model.eval(), trainer.alphabet)
    seqs = [r.sequence for r in data.residue if r.split == "valid"][:20]
    preds = predictor.predict(seqs)
    to_ss3 = np.array([[float(SS8_TO_SS3[s8] == s3) for s3 in SS3_LABELS] for s8 in SS8_LABELS])
    for p in preds:
        assert {"ss3", "ss8", "loc", "ms"} <= set(p.probabilities)
        np.testing.assert_allclose(p.probabilities["ss3"], p.probabilities["ss8"] @ to_ss3, rtol=1e-5, atol=1e-6)
        assert len(p.ss3) == len(p.ss8) == len(p.sequence)
        assert p.ss3 == "".join(SS8_TO_SS3[c] for c in p.ss8)


def test_a_tiny_onepass_model_fits_a_dozen_proteins(data):
    """Every loss, the derived SS3 one included, reaches far below what the label frequencies give: the
    gradient reaches each answer through its own head."""
    residue = [r for r in data.residue if r.split == "train" and r.ss8 is not None and len(r.sequence) < 150][:6]
    protein = [r for r in data.protein if r.split == "train" and r.location and r.membrane and len(r.sequence) < 150][:6]
    small = TrainingData(residue + [r for r in data.residue if r.split == "valid"][:4],
                         protein + [r for r in data.protein if r.split == "valid"][:4], data.corpus_paths, data.guard)
    cfg = tiny_train_config(Path("unused"), model={**ONEPASS, "dropout": 0.0}, batch_tokens=2000, valid_examples=4,
                            tasks={"ss3": 1, "ss8": 1, "loc": 1, "ms": 1})
    trainer = Trainer(cfg, small, progress=False)
    losses = [trainer.train_step() for _ in range(40)]
    last = {t: np.mean([step[t] for step in losses[-5:]]) for t in losses[-1]}
    assert last["ss3"] < 0.5 and last["ss8"] < 1.0 and last["loc"] < 0.3 and last["ms"] < 0.1, last


def test_resume_is_exact_for_onepass(tmp_path, data):
    cfg = tiny_train_config(tmp_path, max_steps=6, checkpoint_every=3, model=ONEPASS, lm_objective="masked",
                            mask_labeled=True, tasks={"lm": 0.5, "ss3": 1, "ss8": 1, "loc": 1, "ms": 1})
    straight, resumed = straight_and_resumed(cfg, data, tmp_path, stop=3)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert [s.lm.state() for s in resumed.slots] == [s.lm.state() for s in straight.slots]


def test_onepass_configs_are_checked(tmp_path, data):
    assert tiny_train_config(tmp_path, model=ONEPASS, tasks={"lm": 1, "ss3": 1}).lm_objective == "masked"  # its only LM
    with pytest.raises(ValueError, match="masked"):
        Trainer(tiny_train_config(tmp_path, model=ONEPASS, tasks={"lm": 1, "ss3": 1}, lm_objective="causal"), data,
                progress=False)
    with pytest.raises(ValueError, match="mask_labeled"):
        tiny_train_config(tmp_path, model={"preset": "tiny", "kind": "encoder"}, mask_labeled=True)
    sample = tiny_train_config(tmp_path, model=ONEPASS, mixing="sample", tasks={"ss8": 1, "loc": 1}, max_steps=2)
    trainer = Trainer(sample, data, progress=False)
    assert trainer.corpus is None and all(np.isfinite(v) for v in trainer.train_step().values())
