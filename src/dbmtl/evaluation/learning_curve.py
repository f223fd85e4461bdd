"""How much compute would reach the targets? Test scores of the same recipe trained for different budgets
(each run with its own full learning-rate schedule), fitted as score = a + b * ln(compute) and solved for
each target. Compute is counted in micro-batches (one task's batch of `batch_tokens` tokens), read from the
training config and step saved with each model, so the axis does not depend on the machine."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .compare import step_micro_batches

# the accuracy targets the bundled model aims at: (label, set, task, score key, target)
TARGETS = [
    ("CB513 Q3", "CB513", "ss3", "mean", 0.72),
    ("CB513 Q8", "CB513", "ss8", "mean", 0.58),
    ("DeepLoc Q10", "DeepLoc", "loc", "accuracy", 0.70),
    ("DeepLoc Q2", "DeepLoc", "ms", "accuracy", 0.90),
]


def model_compute(model_dir: str | Path) -> tuple[int, int]:
    """(micro-batches the saved model was trained with, tokens per micro-batch)."""
    meta = json.loads((Path(model_dir) / "config.json").read_text())
    return round(int(meta["step"]) * step_micro_batches(meta["train"])), int(meta["train"]["batch_tokens"])


def fit_log_linear(x: list[float], y: list[float]) -> tuple[float, float]:
    """(a, b) of y = a + b ln x, least squares (exact through two points)."""
    b, a = np.polyfit(np.log(np.asarray(x, float)), np.asarray(y, float), 1)
    return float(a), float(b)


def learning_curve_markdown(reports: dict[str, str | Path], seconds_per_micro_batch: float | None = None) -> str:
    """reports: run name -> evaluation.json of models of one recipe at different budgets."""
    points = []
    for name, path in reports.items():
        report = json.loads(Path(path).read_text())
        mb, tokens = model_compute(report["model"])
        points.append((name, mb, tokens, report))
    points.sort(key=lambda p: p[1])
    if len({p[2] for p in points}) > 1:
        raise ValueError("the runs use different micro-batch sizes: their compute is not comparable")

    def score(report, set_name, task, key):
        s = report["sets"].get(set_name, {}).get(task)
        return s[key] if s and s.get("n_proteins", 1) else None

    def hours(mb):
        return f"{mb * seconds_per_micro_batch / 3600:.1f}" if seconds_per_micro_batch else "-"

    lines = ["| run | micro-batches | CPU hours here | " + " | ".join(t[0] for t in TARGETS) + " |",
             "|---|---:|---:|" + "---:|" * len(TARGETS)]
    for name, mb, _, report in points:
        cells = [f"{100 * v:.1f}" if (v := score(report, *t[1:4])) is not None else "-" for t in TARGETS]
        lines.append(f"| {name} | {mb:,} | {hours(mb)} | " + " | ".join(cells) + " |")
    lines += ["", "| target | fit: score = a + b ln(micro-batches) | micro-batches to reach it | CPU hours here |",
              "|---|---|---:|---:|"]
    for label, set_name, task, key, target in TARGETS:
        xs = [(mb, v) for _, mb, _, r in points if (v := score(r, set_name, task, key)) is not None]
        if len({x for x, _ in xs}) < 2:
            lines.append(f"| {label} >= {100 * target:.0f} | needs two budgets | - | - |")
            continue
        a, b = fit_log_linear([x for x, _ in xs], [v for _, v in xs])
        fit = f"{100 * a:.1f} + {100 * b:.2f} ln x (points in %)"
        if max(v for _, v in xs) >= target:
            need, hrs = "reached", "-"
        elif b <= 0:
            need, hrs = "not on this trend", "-"
        else:
            mb = math.exp((target - a) / b)
            need, hrs = f"{mb:,.0f} ({mb / max(x for x, _ in xs):.1f}x the largest run)", hours(mb)
        lines.append(f"| {label} >= {100 * target:.0f} | {fit} | {need} | {hrs} |")
    return "\n".join(lines) + "\n"
