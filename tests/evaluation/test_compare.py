"""Ablation reports: a single-task model is scored only on its task; curves put runs on one compute axis."""
import json

from dbmtl.cli import main
from dbmtl.evaluation.compare import comparison_markdown, micro_batches_per_step, read_log


def test_single_task_run_is_scored_only_on_its_task(tmp_path, data_dir, capsys):
    cfg = dict(model={"preset": "tiny", "kind": "encoder"}, tasks={"ss3": 1.0}, localization_sources="subsets",
               lm_sources="mmseqs2", lr=3e-3, warmup_steps=1,
               decay_steps=3, max_steps=3, batch_tokens=2000, grad_accum=1, eval_every=3, checkpoint_every=3, log_every=1,
               valid_examples=8, threads=1)
    (tmp_path / "ss3.json").write_text(json.dumps(cfg))
    assert main(["train", "--config", str(tmp_path / "ss3.json"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "run" / "best"), "--limit", "6", "--sets", "CB513,DeepLoc",
                 "--no-audit", "-o", str(tmp_path / "eval")]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert "audit" not in report["sets"]["CB513"]["ss3"] and report["trained_tasks"] == ["ss3"]
    import shutil

    shutil.rmtree(tmp_path / "run" / "best")  # the report alone says which heads were trained
    assert main(["compare", f"ss3_only={tmp_path / 'eval' / 'evaluation.json'}", "-o", str(tmp_path / "t.md")]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ss3_only")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = [c.strip() for c in (tmp_path / "t.md").read_text().splitlines()[0].strip("|").split("|")]
    scores = dict(zip(header, cells))
    assert scores["trained on"] == "ss3"
    assert scores["CB513 Q3"][0].isdigit() and "[" in scores["CB513 Q3"]  # a score with its interval
    assert scores["CB513 Q8"] == "-" and scores["DeepLoc Q10"] == "-"  # untrained heads are not scored
    train, valid = read_log(tmp_path / "run")
    assert [r["step"] for r in train] == [1, 2, 3] and valid[0]["step"] == 3
    assert micro_batches_per_step(tmp_path / "run") == 1
    capsys.readouterr()
    assert main(["curves", "--valid-table", f"ss3_only={tmp_path / 'run'}"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| run | step | SS3 loss / acc | mean loss |"
    v = valid[0]["valid"]["ss3"]
    assert table[2] == f"| ss3_only | 3 | {v['loss']:.3f} / {100 * v['accuracy']:.1f} | {v['loss']:.4f} |"
    assert main(["curves", "--valid-table", "--max-step", "2", str(tmp_path / "run")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # header only: no validation up to step 2
    assert main(["curves", "--valid-table", "--every", "2", str(tmp_path / "run")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the only validation, step 3, is not a multiple of 2
    assert main(["curves", "--valid-table", "--every", "3", str(tmp_path / "run")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_leaky_score_gets_its_own_column(tmp_path):
    """A decoder that read true labels in training shows its teacher-forced Q3 apart from the honest one."""
    def report(honest, teacher):
        score = {"mean": honest, "mean_ci": [honest - 0.01, honest + 0.01], "n_proteins": 511,
                 "audit": {"teacher_forced": {"mean": teacher} if teacher else None, "majority_class": {"mean": 0.434}}}
        return {"sets": {"CB513": {"ss3": score}}, "residue_mode": "free" if teacher else "encoder"}
    for name, r in {"teacher": report(0.41, 0.84), "encoder": report(0.62, None)}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    table = comparison_markdown({n: tmp_path / f"{n}.json" for n in ("teacher", "encoder")})
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]}
    assert rows["teacher"][2:] == ["free", "41.0 [40.0, 42.0]", "84.0"]
    assert rows["encoder"][2:] == ["encoder", "62.0 [61.0, 63.0]", "-"]
    assert rows["majority class (no model)"][3:] == ["43.4", "-"]  # the floor every model must clear


def test_joint_runs_count_one_micro_batch_per_task(tmp_path):
    (tmp_path / "train_config.json").write_text(json.dumps({"tasks": {"lm": 0.25, "ss3": 1, "ms": 0}, "grad_accum": 2,
                                                            "mixing": "joint"}))
    assert micro_batches_per_step(tmp_path) == 4
    # a task with twice the token budget counts twice, jointly or (in expectation) sampled
    (tmp_path / "train_config.json").write_text(json.dumps({"tasks": {"ss3": 1, "loc": 3}, "grad_accum": 1,
                                                            "batch_tokens": 4096, "task_batch_tokens": {"loc": 8192}}))
    assert micro_batches_per_step(tmp_path) == 3
    (tmp_path / "train_config.json").write_text(json.dumps({"tasks": {"ss3": 1, "loc": 3}, "mixing": "sample",
                                                            "batch_tokens": 4096, "task_batch_tokens": {"loc": 8192}}))
    assert micro_batches_per_step(tmp_path) == 1.75


def test_curves_plot_a_real_run(tmp_path):
    from dbmtl.evaluation.compare import plot_curves

    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"tasks": {"ss3": 1}, "grad_accum": 1}))
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 1, "loss": {"ss3": 1.2}}, {"step": 2, "loss": {"ss3": 1.0}},
        {"step": 2, "valid": {"ss3": {"loss": 1.1, "accuracy": 0.5}}}]))
    out = plot_curves({"a": run}, tmp_path / "c.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_valid_table_puts_the_trained_weights_beside_their_moving_average(tmp_path):
    from dbmtl.evaluation.compare import validation_markdown

    def scores(loss, acc):
        return {"ss3": {"loss": loss, "accuracy": acc, "n_labels": 10}}
    lines = [{"step": 1, "loss": {"ss3": 1.0}}, {"step": 2, "valid": scores(0.5, 0.7), "valid_trained": scores(0.6, 0.65)}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    table = validation_markdown({"v": tmp_path}).splitlines()
    assert table[2:] == ["| v | 2 | 0.500 / 70.0 | 0.5000 |", "| v (trained weights) | 2 | 0.600 / 65.0 | 0.6000 |"]
