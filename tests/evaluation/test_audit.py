"""The audit makes the paper's leak visible: a teacher-forced decoder learns to copy the previous label,
so its teacher-forced score equals the copy baseline while its honest (free-running) score does not; the
audit's baselines (copy the previous label, the majority class)."""
import numpy as np

from dbmtl.data.catalog import residue_test_sets
from dbmtl.evaluation.audit import copy_previous_labels, majority_labels, teacher_forced_residues
from dbmtl.evaluation.runner import evaluate, to_markdown
from dbmtl.inference.predictor import Predictor
from dbmtl.tasks import TASKS
from dbmtl.training import TrainConfig, Trainer

from helpers import small_training_data


def test_teacher_forced_decoder_shows_the_leak(tmp_path, data_dir):
    cfg = TrainConfig.from_dict(dict(model={"preset": "tiny", "kind": "decoder", "label_inputs": "teacher"}, lr=3e-3, warmup_steps=5,
                                     decay_steps=100, max_steps=100, batch_tokens=3000, grad_accum=1, eval_every=1000,
                                     checkpoint_every=1000, valid_examples=8, threads=1, tasks={"ss3": 1},
                                     mixing="sample", out_dir=str(tmp_path / "run")))
    trainer = Trainer(cfg, small_training_data(data_dir), progress=False)
    trainer.fit()
    predictor = Predictor(trainer.model.eval(), trainer.alphabet)
    assert predictor.residue_mode == "free"
    results = evaluate(predictor, data_dir, limit=30, sets=["CB513"], log=lambda m: None)
    ss3 = results["sets"]["CB513"]["ss3"]
    honest, audit = ss3["mean"], ss3["audit"]
    teacher, copy = audit["teacher_forced"]["mean"], audit["copy_previous_true_label"]["mean"]
    assert teacher > 0.75 and abs(teacher - copy) < 0.05  # fed true labels, it copies them
    assert honest < teacher - 0.2  # the honest path never sees them, and the score shows it
    assert "| CB513 | SS3 |" in to_markdown(results)

    # Free-running decoding reads only its own outputs: feeding its predictions back as the "previous
    # labels" of one teacher-forced pass reproduces them (greedy decoding's fixed point), while the
    # true labels give something else.
    seqs = [r.sequence for r in residue_test_sets(data_dir)["CB513"][:10]]
    free = [p.labels["ss3"] for p in predictor.predict(seqs, tasks=("ss3",))]
    again = teacher_forced_residues(predictor, seqs, free, TASKS["ss3"])
    same = sum(a == b for x, y in zip(free, again) for a, b in zip(x, y)) / sum(map(len, free))
    assert same > 0.999


def test_audit_baselines():
    assert copy_previous_labels(["HHEC"]) == ["CHHE"]
    assert majority_labels(["HHEC", "HC"], [np.ones(4, bool), np.ones(2, bool)]) == ["HHHH", "HH"]
