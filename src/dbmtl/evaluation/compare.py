"""Many runs side by side: one table of test scores (from `dbmtl evaluate` reports) and training curves
(from each run's log.jsonl), for ablations such as multi-task vs single-task."""
from __future__ import annotations

import json
from pathlib import Path

from ..tasks import OUTPUT_TASKS, PROTEIN_TEST_SETS, RESIDUE_TEST_SETS, TASKS

# (column, set, task, score key), from the task table; a run shows a score only for the tasks it was
# trained on
COLUMNS = [(f"{set_name} {TASKS[t].metric}", set_name, t, "mean" if TASKS[t].kind == "residue" else "accuracy")
           for set_name in RESIDUE_TEST_SETS + PROTEIN_TEST_SETS
           for t in OUTPUT_TASKS if set_name in TASKS[t].test_sets]


def weighted_tasks(train_config: dict) -> dict[str, float]:
    """The tasks a training config trains (positive weight), with their weights."""
    return {t: w for t, w in (train_config.get("tasks") or {}).items() if w > 0}


def trained_tasks(model_dir: str | Path) -> set[str] | None:
    """Tasks with a positive weight in the training config saved with the model (None: unknown)."""
    path = Path(model_dir) / "config.json"
    if not path.exists():
        return None
    return set(weighted_tasks(json.loads(path.read_text()).get("train") or {})) or None


def comparison_markdown(reports: dict[str, str | Path]) -> str:
    """reports: run name -> evaluation.json. Scores in % with 95% bootstrap intervals; '-' where the run
    was not trained on the task (its head is untrained) or the set was not evaluated. The trained tasks
    come from the report (older reports: from the model folder it names, when that still exists)."""
    loaded = {name: json.loads(Path(p).read_text()) for name, p in reports.items()}
    present = [c for c in COLUMNS if any(c[1] in r["sets"] and c[2] in r["sets"][c[1]] for r in loaded.values())]
    leaky = {name: _teacher_forced_q3(r) for name, r in loaded.items()}
    show_leak = any(v is not None for v in leaky.values())
    head = [c[0] for c in present] + (["CB513 Q3 teacher-forced (reads true labels; not a score)"] if show_leak else [])
    lines = ["| run | trained on | per-residue prediction | " + " | ".join(head) + " |",
             "|---|---|---|" + "---|" * len(head)]
    for name, r in loaded.items():
        tasks = set(r["trained_tasks"]) if r.get("trained_tasks") else trained_tasks(r.get("model", ""))
        cells = []
        for _, set_name, task, key in present:
            score = r["sets"].get(set_name, {}).get(task)
            if score is None or (tasks is not None and task not in tasks) or not score.get("n_proteins", 1):
                cells.append("-")
                continue
            lo, hi = score[f"{key}_ci"]
            cells.append(f"{100 * score[key]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
        if show_leak:
            cells.append(f"{100 * leaky[name]:.1f}" if leaky[name] is not None else "-")
        label = ", ".join(sorted(tasks)) if tasks else "?"
        lines.append(f"| {name} | {label} | {r.get('residue_mode', '?')} | " + " | ".join(cells) + " |")
    baseline = [_majority(loaded.values(), set_name, task) for _, set_name, task, _ in present]
    if any(b is not None for b in baseline):
        cells = [f"{100 * b:.1f}" if b is not None else "-" for b in baseline] + (["-"] if show_leak else [])
        lines.append("| majority class (no model) | - | - | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _majority(reports, set_name: str, task: str) -> float | None:
    """Accuracy of always answering the commonest true class of the set: from the audit (per-residue
    tasks, when it ran) or from the confusion matrix's row sums (per-protein tasks)."""
    for r in reports:
        score = r["sets"].get(set_name, {}).get(task) or {}
        if (score.get("audit") or {}).get("majority_class"):
            return score["audit"]["majority_class"]["mean"]
        if score.get("confusion") and score.get("n_proteins"):
            rows = [sum(row) for row in score["confusion"]]
            return max(rows) / sum(rows)
    return None


def _teacher_forced_q3(report: dict) -> float | None:
    """The audit's teacher-forced CB513 Q3 (only decoders that read labels while training have one)."""
    audit = report["sets"].get("CB513", {}).get("ss3", {}).get("audit") or {}
    tf = audit.get("teacher_forced")
    return tf["mean"] if tf else None


def read_log(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(training loss records, validation records) of one run."""
    train, valid = [], []
    for line in (Path(run_dir) / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        (valid if "valid" in rec else train).append(rec)
    return train, valid


def validation_markdown(runs: dict[str, str | Path], max_step: int | None = None, every: int | None = None) -> str:
    """One row per run and validation: loss / accuracy (%) of each task and the mean loss over tasks,
    the number the trainer keeps `best/` by. Validations after `max_step`, or at steps that are not a
    multiple of `every`, are left out. A run with a moving average of its weights (`ema_decay`) gets a
    second row per validation, "(trained weights)", for the weights it averages."""
    rows = [(label, rec["step"], v) for name, d in runs.items() for rec in read_log(d)[1]
            if (max_step is None or rec["step"] <= max_step) and (not every or rec["step"] % every == 0)
            for label, v in ((name, rec["valid"]), (f"{name} (trained weights)", rec.get("valid_trained")))
            if v is not None]
    tasks = [t for t in ("lm", "ss3", "ss8", "loc", "ms") if any(t in v for _, _, v in rows)]
    lines = ["| run | step | " + " | ".join(f"{t.upper()} loss / acc" for t in tasks) + " | mean loss |",
             "|---|---:|" + "---|" * len(tasks) + "---:|"]
    for name, step, v in rows:
        cells = [(f"{v[t]['loss']:.3f}" + (f" / {100 * v[t]['accuracy']:.1f}" if "accuracy" in v[t] else "")) if t in v else "-"
                 for t in tasks]
        mean = sum(x["loss"] for x in v.values()) / len(v)
        lines.append(f"| {name} | {step} | " + " | ".join(cells) + f" | {mean:.4f} |")
    return "\n".join(lines) + "\n"


def micro_batches_per_step(run_dir: str | Path) -> float:
    return step_micro_batches(json.loads((Path(run_dir) / "train_config.json").read_text()))


def step_micro_batches(train_config: dict) -> float:
    """Micro-batches of `batch_tokens` one optimizer step computes: grad_accum, times the number of tasks
    when mixing is joint (the expected one task when sampled); a task with its own budget in
    `task_batch_tokens` counts as that budget / batch_tokens micro-batches."""
    weights = weighted_tasks(train_config)
    own = train_config.get("task_batch_tokens") or {}
    base = train_config.get("batch_tokens", 1)
    units = {t: own.get(t, base) / base for t in weights}
    if train_config.get("mixing", "joint") == "joint":
        per_slot = sum(units.values())
    else:
        per_slot = sum(weights[t] * units[t] for t in weights) / sum(weights.values())
    return train_config.get("grad_accum", 1) * per_slot


def plot_curves(runs: dict[str, str | Path], out: str | Path, x: str = "micro_batches") -> Path:
    """Per task: training loss and validation accuracy (loss for LM) of every run, one panel each.

    x = "micro_batches" puts runs with different numbers of tasks per step on one compute axis (a joint
    step of k tasks costs k micro-batches); x = "step" plots optimizer steps."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install -e '.[plots]'") from None
    logs = {name: read_log(d) for name, d in runs.items()}
    tasks = sorted({t for tr, _ in logs.values() for rec in tr for t in rec["loss"]},
                   key=lambda t: ["lm", "ss3", "ss8", "loc", "ms"].index(t) if t in ("lm", "ss3", "ss8", "loc", "ms") else 9)
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 6.4), squeeze=False)
    for i, (name, (train, valid)) in enumerate(logs.items()):
        color = f"C{i % 10}"  # one colour per run in every panel
        per_step = micro_batches_per_step(runs[name]) if x == "micro_batches" else 1
        for col, task in enumerate(tasks):
            pts = [(rec["step"] * per_step, rec["loss"][task]) for rec in train if task in rec["loss"]]
            if pts:
                axes[0][col].plot(*zip(*pts), label=name, lw=1, color=color)
            metric = "loss" if task == "lm" else "accuracy"
            vpts = [(rec["step"] * per_step, rec["valid"][task][metric]) for rec in valid if task in rec["valid"]]
            if vpts:
                axes[1][col].plot(*zip(*vpts), marker="o", ms=3, label=name, lw=1, color=color)
            axes[0][col].set_title(f"{task}: training loss")
            axes[1][col].set_title(f"{task}: validation {metric}")
            axes[1][col].set_xlabel("micro-batches (compute)" if x == "micro_batches" else "optimizer steps")
    handles = {}
    for ax in axes.flat:  # a run trained on some tasks only appears in some panels: one legend for all
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
