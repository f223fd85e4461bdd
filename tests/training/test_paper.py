"""What the model reads while training: hidden, noised and self-predicted label inputs."""
import numpy as np
import pytest
import torch

from dbmtl.data.layouts import DecoderLayout, collate
from dbmtl.inference.predictor import Predictor
from dbmtl.model import Transformer
from dbmtl.model.checkpoint import load_checkpoint
from dbmtl.tasks import TASKS
from dbmtl.tokens import Alphabet
from dbmtl.training import TrainConfig, Trainer
from dbmtl.training.config import model_from_spec
from dbmtl.training.paper import model_inputs, own_label_inputs

from helpers import DECODER, tiny_train_config


def test_placeholder_prediction_reads_what_training_fed(tmp_path, data):
    """The one-pass prediction input equals the training input with labels hidden, so training and
    inference see the same thing, and the prediction cannot depend on the true labels."""
    trainer = Trainer(tiny_train_config(tmp_path, model=DECODER, tasks={name: 1.0 for name in TASKS}, max_steps=2), data,
                      progress=False)
    trainer.fit()
    model, alphabet, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    predictor = Predictor(model, alphabet)
    rec = next(r for r in data.residue if r.ss8 is not None)
    task = TASKS["ss8"]
    probs = predictor.predict_residues([rec.sequence], task)[0]
    for labels in (rec.ss8, "C" * len(rec.sequence)):  # true labels, and wrong ones: same inputs either way
        ex = DecoderLayout(alphabet, model.cfg.context).residue_example(task, rec.sequence, labels, rec.resolved)
        batch = collate([ex], alphabet.pad_id)
        inputs = model_inputs(batch.inputs, alphabet, "placeholder")
        assert not torch.isin(inputs, torch.tensor(alphabet.label_ids(task))).any()
        with torch.no_grad():
            logits = model(inputs, positions=batch.positions, segments=batch.segments)
            logits = logits[0, len(rec.sequence): 2 * len(rec.sequence), alphabet.label_ids(task)]
        np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), probs, atol=1e-5)


def test_noised_teacher_inputs_replace_only_per_residue_labels(data):
    """Noised teacher forcing corrupts label inputs, and nothing else: residues, control tokens and
    per-protein labels stay; every replacement is a label of the same task; the rate follows label_noise."""
    alphabet = Alphabet()
    recs = [r for r in data.residue if r.ss8 is not None][:20]
    layout = DecoderLayout(alphabet, 1024)
    rows = [layout.residue_example(TASKS[t], r.sequence, getattr(r, t), r.resolved)
            for r in recs for t in ("ss3", "ss8")]
    loc = next(r for r in data.protein if r.location)
    rows.append(layout.protein_example(TASKS["loc"], loc.sequence, loc.location))
    batch = collate([x for x in rows if x is not None], alphabet.pad_id)
    assert torch.equal(model_inputs(batch.inputs, alphabet, "noised", 0.0), batch.inputs)
    torch.manual_seed(0)
    noised = model_inputs(batch.inputs, alphabet, "noised", 0.5)
    changed = noised != batch.inputs
    for name in ("ss3", "ss8"):
        ids = torch.tensor(alphabet.label_ids(TASKS[name]))
        slots = torch.isin(batch.inputs, ids)
        assert torch.isin(noised[slots], ids).all()  # a label of the same task
        k = len(ids)
        rate = changed[slots].float().mean().item()
        assert abs(rate - 0.5 * (k - 1) / k) < 0.03, (name, rate)
    per_residue = torch.isin(batch.inputs, torch.tensor(alphabet.label_ids(TASKS["ss3"]) + alphabet.label_ids(TASKS["ss8"])))
    assert not changed[~per_residue].any()
    with pytest.raises(ValueError, match="label_noise"):
        TrainConfig.from_dict({"model": {"preset": "tiny", "label_inputs": "noised", "label_noise": 1.5}})


def test_scheduled_sampling_feeds_the_models_own_previous_labels(data):
    """With rate 1 every per-residue label input is the model's own argmax (over its task's labels) for
    that slot, from the logits one position earlier; with rate 0 nothing changes; no other token moves."""
    alphabet = Alphabet()
    torch.manual_seed(0)
    model = Transformer(model_from_spec({"preset": "tiny", "kind": "decoder", "dropout": 0.0})).eval()
    recs = [r for r in data.residue if r.ss8 is not None][:6]
    for name in ("ss3", "ss8"):
        task = TASKS[name]
        batch = collate([DecoderLayout(alphabet, 1024).residue_example(task, r.sequence, getattr(r, name), r.resolved) for r in recs],
                        alphabet.pad_id)
        assert torch.equal(own_label_inputs(model, batch, alphabet, 0.0), batch.inputs)
        mixed = own_label_inputs(model, batch, alphabet, 1.0)
        ids = torch.tensor(alphabet.label_ids(task))
        slots = torch.isin(batch.inputs, ids)
        assert not (mixed != batch.inputs)[~slots].any()
        with torch.no_grad():
            logits = model(batch.inputs, positions=batch.positions, segments=batch.segments, causal=True)
        expected = ids[logits[..., ids].argmax(-1)]  # what position t predicts for position t + 1
        b, t = slots.nonzero(as_tuple=True)
        assert torch.equal(mixed[b, t], expected[b, t - 1]), name
        assert (mixed[slots] != batch.inputs[slots]).any()  # an untrained model's guesses are not the truth
