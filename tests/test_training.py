"""Training: a short CPU run lowers every task's loss; resume is exact; training and prediction agree."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from dbmtl.data.layouts import DecoderLayout, collate, mask_residues, masked_lm_example
from dbmtl.model.checkpoint import load_checkpoint
from dbmtl.inference.predictor import Predictor
from dbmtl.tasks import TASKS
from dbmtl.tokens import Alphabet
from dbmtl.training import TrainConfig, Trainer
from dbmtl.data.corpus import FastaCorpus, WithLabeledSequences
from dbmtl.training.objectives import model_inputs

from helpers import small_training_data, straight_and_resumed


def tiny_config(tmp_path, **kw):
    base = dict(model={"preset": "tiny", "dropout": 0.1}, lr=3e-3, warmup_steps=5, decay_steps=60, max_steps=60,
                batch_tokens=3000, grad_accum=1, eval_every=1000, checkpoint_every=1000, log_every=5,
                valid_examples=24, seed=0, threads=1, out_dir=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig.from_dict(base)


@pytest.fixture(scope="module")
def data(data_dir):
    return small_training_data(data_dir)


def test_short_run_lowers_loss_of_all_five_tasks(tmp_path, data):
    # per-protein tasks give one label per example, so they are sampled more often to see enough labels
    cfg = tiny_config(tmp_path, max_steps=40, decay_steps=40, model={"preset": "tiny", "kind": "encoder"},
                      tasks={"lm": 1, "ss3": 1, "ss8": 1, "loc": 2, "ms": 2})
    trainer = Trainer(cfg, data, progress=False)
    before = trainer.validate()
    assert set(before) == {"lm", "ss3", "ss8", "loc", "ms"}
    after = trainer.fit()
    for task in before:
        assert after[task]["loss"] < before[task]["loss"] - 0.2, (task, before[task], after[task])
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    logged = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert logged[-1]["step"] == 40 and "valid" in logged[-1]


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, data):
    cfg = tiny_config(tmp_path, max_steps=8, checkpoint_every=4, tasks={"lm": 1, "ss3": 1, "loc": 1}, mixing="sample")
    straight, resumed = straight_and_resumed(cfg, data, tmp_path, stop=4)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert [s.lm.state() for s in resumed.slots] == [s.lm.state() for s in straight.slots]


def test_same_seed_same_model(tmp_path, data):
    cfg = tiny_config(tmp_path, max_steps=3, tasks={"ss8": 1, "ms": 1})
    a = Trainer(cfg, data, out_dir=tmp_path / "a", progress=False)
    a.fit()
    b = Trainer(cfg, data, out_dir=tmp_path / "b", progress=False)
    b.fit()
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def test_placeholder_prediction_reads_what_training_fed(tmp_path, data):
    """The one-pass prediction input equals the training input with labels hidden, so training and
    inference see the same thing, and the prediction cannot depend on the true labels."""
    trainer = Trainer(tiny_config(tmp_path, max_steps=2), data, progress=False)
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


def test_noised_decoder_trains_and_predicts_free_running(tmp_path, data):
    cfg = tiny_config(tmp_path, max_steps=2, tasks={"ss3": 1},
                      model={"preset": "tiny", "label_inputs": "noised", "label_noise": 0.5})
    trainer = Trainer(cfg, data, progress=False)
    trainer.fit()
    model, alphabet, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert model.cfg.label_inputs == "noised" and Predictor(model, alphabet).residue_mode == "free"


def test_scheduled_sampling_feeds_the_models_own_previous_labels(data):
    """With rate 1 every per-residue label input is the model's own argmax (over its task's labels) for
    that slot, from the logits one position earlier; with rate 0 nothing changes; no other token moves."""
    from dbmtl.model import Transformer
    from dbmtl.training.config import model_from_spec
    from dbmtl.training.objectives import own_label_inputs

    alphabet = Alphabet()
    torch.manual_seed(0)
    model = Transformer(model_from_spec({"preset": "tiny", "dropout": 0.0})).eval()
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


def test_scheduled_sampling_decoder_trains_and_predicts_free_running(tmp_path, data):
    cfg = tiny_config(tmp_path, max_steps=3, tasks={"ss3": 1, "loc": 1},
                      model={"preset": "tiny", "label_inputs": "sampled", "label_noise": 0.5})
    trainer = Trainer(cfg, data, progress=False)
    before = trainer.validate()
    after = trainer.fit()
    assert after["ss3"]["loss"] < before["ss3"]["loss"]
    model, alphabet, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert model.cfg.label_inputs == "sampled" and Predictor(model, alphabet).residue_mode == "free"


def test_masked_lm_hides_and_scores_only_chosen_residues(data):
    alphabet = Alphabet()
    seqs = [r.sequence for r in data.residue[:40]]
    batch = collate([masked_lm_example(alphabet, TASKS["lm"], s, 1024) for s in seqs], alphabet.pad_id)
    assert not batch.causal and (batch.weights == 0).all()  # nothing is scored before masking
    read, weights = mask_residues(batch.inputs, batch.targets, alphabet, 0.15, torch.Generator().manual_seed(0))
    residues = batch.valid & (batch.targets != alphabet.pad_id)
    assert not residues[:, 0].any()  # the control token is never a target
    chosen = weights > 0
    assert not chosen[~residues].any()
    assert abs(chosen[residues].float().mean().item() - 0.15) < 0.01
    hidden = read[chosen] == alphabet.mask_id
    assert abs(hidden.float().mean().item() - 0.8) < 0.03
    assert torch.equal(read[~chosen], batch.inputs[~chosen])  # what is not scored is read as it is
    # the answer is never readable where it is hidden: a hidden residue's input is not its target
    assert (read[chosen][hidden] != batch.targets[chosen][hidden]).all()


def test_masked_lm_encoder_trains_on_hidden_residues(tmp_path, data):
    cfg = tiny_config(tmp_path, max_steps=30, decay_steps=30, tasks={"lm": 1.0}, lm_objective="masked",
                      model={"preset": "tiny", "kind": "encoder"}, eval_every=30, valid_examples=32)
    trainer = Trainer(cfg, data, progress=False)
    before = trainer.validate()["lm"]["loss"]
    after = trainer.fit()["lm"]["loss"]
    # untrained: about log(56), a guess over the whole vocabulary; after 30 steps below log(20) = 3.0, a
    # uniform guess over amino acids (the composition alone gives about 2.9; context needs far longer)
    assert before > 3.8 and after < 2.99
    with pytest.raises(ValueError, match="encoder"):
        Trainer(tiny_config(tmp_path, tasks={"lm": 1.0}, lm_objective="masked"), data, progress=False)


def test_lm_on_labeled_weaves_labeled_sequences_into_the_corpus(data):
    """Each of two streams alternates corpus and labeled sequences; together they read every one of both
    exactly once per epoch; a stream resumed at an offset continues where it stopped."""
    class FirstOfCorpus:  # the real corpus's first 300 sequences, with the corpus stream interface
        def stream(self, index, count, epoch, offset=0, seed=0, workers=0):
            return iter(corpus[index::count][offset:])

    corpus = [s for s, _ in zip(FastaCorpus(data).stream(0, 1, 0), range(300))]
    labeled = sorted({r.sequence for r in data.residue})[:120]
    small = WithLabeledSequences(FirstOfCorpus(), labeled)
    streams = [list(small.stream(i, 2, epoch=0)) for i in range(2)]
    assert sorted(streams[0] + streams[1]) == sorted(corpus + labeled)
    assert streams[0][:4] == [corpus[0], labeled_order(labeled, 0, 2)[0], corpus[2], labeled_order(labeled, 0, 2)[1]]
    assert list(small.stream(1, 2, epoch=0, offset=37)) == streams[1][37:]
    assert list(small.stream(0, 2, epoch=1)) != streams[0]  # labeled order reshuffled per epoch


def labeled_order(labeled, index, count, seed=0, epoch=0):
    return [labeled[i] for i in np.random.default_rng([seed, epoch, 1]).permutation(len(labeled))[index::count]]


def test_a_task_can_have_its_own_token_budget(tmp_path, data):
    cfg = tiny_config(tmp_path, batch_tokens=1000, task_batch_tokens={"loc": 6000}, tasks={"ss3": 1, "loc": 1})
    trainer = Trainer(cfg, data, progress=False)
    slot = trainer.slots[0]
    for task, budget in (("loc", 6000), ("ss3", 1000)):
        sizes = [tuple(trainer._micro_batch(slot, task).inputs.shape) for _ in range(20)]
        assert all(rows * longest <= budget for rows, longest in sizes), (task, sizes)
        assert max(rows * longest for rows, longest in sizes) > budget / 2, (task, sizes)  # the budget is used
    with pytest.raises(ValueError, match="not trained"):
        tiny_config(tmp_path, tasks={"ss3": 1}, task_batch_tokens={"loc": 6000})


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown tasks"):
        TrainConfig(tasks={"ss4": 1.0})
    (tmp_path / "c.json").write_text('{"lr": 1e-3, "bogus": 1}')
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.load(tmp_path / "c.json")


def test_paper_schedule():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.warmup_steps, cfg.decay_steps, cfg.max_steps) == (2e-4, 16_000, 250_000, 500_000)
    assert cfg.lr_at(0) < cfg.lr_at(8_000) < cfg.lr_at(15_999) <= cfg.lr
    assert cfg.lr_at(16_000) == pytest.approx(cfg.lr)
    assert cfg.lr_at(100_000) > cfg.lr_at(200_000) > cfg.lr_at(250_000) == cfg.lr_at(499_999)


def test_every_shipped_config_is_valid():
    """A typo in a config under configs/ must fail here, not hours into a script."""
    from pathlib import Path

    paths = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.json"))
    assert len(paths) > 10
    for path in paths:
        cfg = TrainConfig.load(path)
        assert cfg.model.vocab_size == len(Alphabet())
        assert cfg.out_dir.startswith("runs/"), path


def test_paper_config_runs_a_step_on_cpu(tmp_path, data):
    """configs/paper.json is the paper's model and schedule; here it only has to run (a GPU job at scale)."""
    from pathlib import Path

    cfg = TrainConfig.load(Path(__file__).resolve().parents[1] / "configs" / "paper.json")
    assert (cfg.lr, cfg.warmup_steps, cfg.decay_steps, cfg.max_steps) == (2e-4, 16_000, 250_000, 500_000)
    cfg = replace(cfg, batch_tokens=1200, grad_accum=1, valid_examples=2, threads=1, tasks={"ss3": 1.0, "loc": 1.0})
    trainer = Trainer(cfg, data, out_dir=tmp_path / "paper", progress=False)
    assert trainer.model.cfg.n_layer == 12 and trainer.model.cfg.label_inputs == "teacher"
    before = [p.detach().clone() for p in list(trainer.model.parameters())[:3]]
    losses = trainer.train_step()
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_resume_survives_a_crash_between_checkpoint_renames(tmp_path, data):
    """If the process dies after moving the old checkpoint aside and before the new one is in place,
    --resume continues from the complete previous checkpoint instead of starting over."""
    cfg = tiny_config(tmp_path, max_steps=4, checkpoint_every=2, tasks={"ss3": 1}, mixing="sample")
    Trainer(cfg, data, out_dir=tmp_path / "run", progress=False).fit(max_steps=2)
    (tmp_path / "run" / "checkpoint").rename(tmp_path / "run" / "checkpoint.old")
    resumed = Trainer(cfg, data, out_dir=tmp_path / "run", progress=False)
    resumed.resume()
    assert resumed.step == 2


def test_a_config_round_trips_through_its_dict(tmp_path):
    cfg = tiny_config(tmp_path, model={"preset": "tiny", "kind": "encoder", "conv_kernel": 3},
                      tasks={"ss3": 1.0, "loc": 2.0}, task_batch_tokens={"loc": 4000})
    saved = json.loads(json.dumps(cfg.to_dict()))  # as train_config.json and checkpoints store it
    assert saved["model"] == cfg.model.to_dict()  # resolved: every field, no preset
    assert TrainConfig.from_dict(saved) == cfg


def test_a_preset_model_dict_loads_as_the_preset_plus_overrides():
    from dbmtl.model import PRESETS, ModelConfig
    from dbmtl.training.config import model_from_spec

    old = TrainConfig.from_dict({"model": {"preset": "mini", "kind": "encoder", "conv_kernel": 9}})
    assert old.model == ModelConfig(**{**PRESETS["mini"], "kind": "encoder", "conv_kernel": 9})
    assert old.model == model_from_spec(old.model.to_dict())
    assert TrainConfig.from_dict({"model": {"n_layer": 3}}).model == ModelConfig(n_layer=3)  # no preset
    assert TrainConfig().model == ModelConfig(**PRESETS["paper"])
    with pytest.raises(ValueError, match="preset"):
        model_from_spec({"preset": "huge"})


def test_a_vocab_size_other_than_the_alphabets_is_a_clear_error(tmp_path, data):
    cfg = tiny_config(tmp_path, model={"preset": "tiny", "vocab_size": len(Alphabet()) + 1})
    with pytest.raises(ValueError, match="vocab_size"):
        Trainer(cfg, data, progress=False)


def test_resume_compares_the_model_whether_saved_as_a_preset_or_resolved(tmp_path, data):
    cfg = tiny_config(tmp_path, max_steps=2, checkpoint_every=2, tasks={"ss3": 1}, mixing="sample")
    Trainer(cfg, data, progress=False).fit()
    state_file = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["train_config"]["model"] == cfg.model.to_dict()
    state["train_config"]["model"] = {"preset": "tiny", "dropout": 0.1}  # the same model, as a preset
    state_file.write_text(json.dumps(state))
    resumed = Trainer(cfg, data, progress=False)
    resumed.resume()
    assert resumed.step == 2
    other = replace(cfg, model=replace(cfg.model, dropout=0.0))
    with pytest.raises(ValueError, match="trained with model"):
        Trainer(other, data, progress=False).resume()
