"""Where a training step's time goes: building its batches vs the whole step, and torch.profiler's top
operators over a few steps, on any device. Written for the open question of docs/performance.md
("Training on a GPU": bf16 autocast cost a fixed ~0.4 s per step there), and cheap to run first in a
short device lease:

    python experiments/profile_train_step.py experiments/configs/v4/sweep/mini_from_v3.json --precision bf16
    python experiments/profile_train_step.py experiments/configs/v4/sweep/mini_from_v3.json --precision fp32
    python experiments/profile_train_step.py experiments/configs/v4/sweep/mini_from_v3.json --attention-dropout 0
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import torch
from torch.profiler import ProfilerActivity, profile

from dbmtl.data.catalog import load_training_data, resolve_data_dir
from dbmtl.training import TrainConfig, Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--precision", choices=["fp32", "bf16"], help="override the config's")
    ap.add_argument("--attention-dropout", type=float, help="override the model's attention_dropout")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--steps", type=int, default=5, help="steps timed and profiled (after 2 warm-up steps)")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--data-dir")
    args = ap.parse_args()

    cfg = TrainConfig.load(args.config)
    if args.attention_dropout is not None:
        cfg = replace(cfg, model=replace(cfg.model, attention_dropout=args.attention_dropout))
    cfg = replace(cfg, out_dir=tempfile.mkdtemp(prefix="dbmtl-profile-"), device=args.device,
                  precision=args.precision or cfg.precision, threads=args.threads or cfg.threads)
    trainer = Trainer(cfg, load_training_data(resolve_data_dir(args.data_dir), **cfg.data_settings()), progress=False)
    cuda = trainer.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(2):
        trainer.train_step()
    slot = trainer.slots[0]
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        for group, _ in trainer._plan(slot):
            trainer._micro_batch(slot, group)
    sync()
    batches_s = (time.perf_counter() - t0) / args.steps
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync()
    step_s = (time.perf_counter() - t0) / args.steps
    print(f"{args.config} on {trainer.device}, {cfg.precision}: building the batches {1000 * batches_s:.1f} ms "
          f"of a {1000 * step_s:.1f} ms step (mean of {args.steps})")

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            trainer.train_step()
        sync()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=20))


if __name__ == "__main__":
    main()
