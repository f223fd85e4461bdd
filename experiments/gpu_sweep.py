"""Train several configs side by side on one machine inside a wall-clock budget.

A lent accelerator comes for minutes, not hours, and small models leave most of it idle, so the configs
run as concurrent `dbmtl train` processes. A short probe run of every config, all of them at once, measures
each one's seconds per step and per validation while sharing the machine; each budgeted config then gets
the steps that fit the budget, its learning rate decaying over exactly those steps, with `--evals`
validations (the run's best/ is chosen on them, validation data only). Configs given with `--fixed` keep
their own schedule (an equal-compute comparison; only checkpoints are written less often). The configs as run, steps included, are written to
OUT_ROOT/configs/ so that each run can be repeated with `dbmtl train --config`.

    python experiments/gpu_sweep.py experiments/configs/v4/*.json --fixed experiments/configs/selection/onepass_equal.json \
        --budget-s 420 --out-root runs/v4
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dbmtl.evaluation.compare import read_log
from dbmtl.training.budget import allocate_steps

PROBE_LIMIT_S = 150  # a probe still running then is interrupted (and its config dropped)


def probe_rates(train: list[dict], valid: list[dict]) -> tuple[float, float]:
    """(seconds per step, seconds per validation) from a probe run's log records (`read_log`): steps
    timed from the first logged step on (excluding start-up and the first steps' compilation), the
    validation from its elapsed time beyond the last training step."""
    train = [r for r in train if "elapsed_s" in r]
    valid = [r for r in valid if "elapsed_s" in r]
    if len(train) < 2 or not valid:
        raise ValueError("the probe logged too few steps to time")
    first, last = train[0], train[-1]
    step_s = (last["elapsed_s"] - first["elapsed_s"]) / (last["step"] - first["step"])
    return step_s, max(0.0, valid[-1]["elapsed_s"] - last["elapsed_s"])


def launch(config: dict, name: str, root: Path, train_args: list[str]) -> tuple[subprocess.Popen, float]:
    path = root / "configs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    cmd = [sys.executable, "-m", "dbmtl.cli", "train", "--config", str(path), "--quiet", *train_args]
    with open(root / f"{name}.out", "w") as out:  # the child keeps its own handle
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), time.time()


def wait_all(procs: dict[str, tuple[subprocess.Popen, float]], deadline: float) -> dict[str, float]:
    """Wait for every process; Ctrl-C (SIGINT: the trainer saves a checkpoint and stops) any still
    running at `deadline`. Returns each one's wall time."""
    walls: dict[str, float] = {}
    interrupted = False
    while len(walls) < len(procs):
        for name, (p, t0) in procs.items():
            if name not in walls and p.poll() is not None:
                walls[name] = time.time() - t0
                print(f"{name}: exit {p.returncode} after {walls[name]:.0f} s", flush=True)
        if not interrupted and time.time() > deadline:
            for name, (p, _) in procs.items():
                if name not in walls:
                    print(f"{name}: past the deadline, interrupted", flush=True)
                    p.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(1)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="*", help="configs whose steps are fitted to the budget")
    ap.add_argument("--fixed", nargs="*", default=[], help="configs that keep their own steps")
    ap.add_argument("--budget-s", type=float, required=True, help="wall seconds for the main runs")
    ap.add_argument("--evals", type=int, default=12, help="validations per budgeted run")
    ap.add_argument("--probe-steps", type=int, default=30, help="steps of each probe run")
    ap.add_argument("--out-root", required=True, help="folder for the runs, their logs and configs")
    ap.add_argument("--train-args", default="", help="extra `dbmtl train` arguments, e.g. '--threads 2'")
    args = ap.parse_args()
    root = Path(args.out_root)
    train_args = args.train_args.split()
    configs = {Path(c).stem: json.loads(Path(c).read_text()) for c in [*args.configs, *args.fixed]}
    fixed = {Path(c).stem for c in args.fixed}

    probes = {}
    for name, cfg in configs.items():
        probe = {**cfg, "max_steps": args.probe_steps, "decay_steps": max(args.probe_steps, cfg.get("warmup_steps", 1)),
                 "eval_every": args.probe_steps, "checkpoint_every": 10 * args.probe_steps, "log_every": max(1, args.probe_steps // 6),
                 "out_dir": str(root / "probe" / name)}
        probes[f"probe_{name}"] = launch(probe, f"probe_{name}", root, train_args)
    walls = wait_all(probes, time.time() + PROBE_LIMIT_S)

    runs, plan = {}, {}
    started = time.time()
    for name, cfg in configs.items():
        try:
            train, valid = read_log(root / "probe" / name)
            step_s, valid_s = probe_rates(train, valid)
        except (OSError, ValueError) as exc:
            print(f"{name}: {exc}; see {root / f'probe_{name}.out'}", flush=True)
            continue
        startup_s = walls[f"probe_{name}"] - valid[-1]["elapsed_s"]
        if name in fixed:
            run = {**cfg, "checkpoint_every": max(cfg.get("checkpoint_every", 1), 250)}  # saving costs time, not steps
        else:
            steps, every = allocate_steps(args.budget_s, startup_s, step_s, valid_s, args.evals)
            run = {**cfg, "max_steps": steps, "decay_steps": steps, "eval_every": every,
                   "warmup_steps": min(cfg.get("warmup_steps", 0), steps // 10), "checkpoint_every": every}
        run["out_dir"] = str(root / name)
        plan[name] = {"step_s": round(step_s, 4), "valid_s": round(valid_s, 2), "startup_s": round(startup_s, 1),
                      "max_steps": run["max_steps"], "eval_every": run["eval_every"]}
        print(f"{name}: {json.dumps(plan[name])}", flush=True)
        runs[name] = launch(run, name, root, train_args)
    walls = wait_all(runs, started + args.budget_s)
    for name, wall in walls.items():
        plan[name]["wall_s"] = round(wall, 1)
    (root / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
