"""One lent GPU window used to the full: the lineage trained for most of one device command, with the
best weights streamed back as they improve.

A lent machine comes for ~15 minutes of device time, one command of at most 10 minutes, bare, with no
data and no network, and only the files under $OUT come back (8 files at most). So the command is
prepared here and runs there without a decision left open:

    python scripts/gpu_window.py pack                       # here: data + start weights -> build/window
    python3 scripts/gpu_window.py run build/window --out "$OUT" --budget-s 560    # there (PYTHONPATH=src)

`pack` copies exactly the data files that training with the config reads (traced while loading them,
the test sets of the leakage guard included; the corpus files) into one compressed archive, checks that
the copy loads to the same records, and measures what would travel (working tree + the carried folder
< 64 MiB). `run` unpacks it, probes a few steps of each precision / shape-bucket variant (seconds per
step for fp32 vs bf16, on new batch shapes vs shapes seen before), takes the fastest, sizes max_steps,
the learning rate's decay and the validations to the time left, trains in segments of one validation
each and, after every validation that improves, exports the best weights in half precision to
$OUT/best.tar (with the log), so that a command cut off at its limit still returns the best so far. Then
`dbmtl predict` is timed on N proteins, and $OUT/summary.json says where the seconds went.

The two commands' parts are in gpu_window_lib/: packing.py (pack), probing.py (the variants and their
probe), predicting.py (the fp16 export and the timed predict), report.py (the clock, log, summary and the
FLOP/s arithmetic); this file is the command line and the run's order.
"""
from __future__ import annotations

import time

T0 = time.time()  # before the heavy imports: the command's whole time counts

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tarfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

from gpu_window_lib.packing import data_counts, pack  # noqa: E402
from gpu_window_lib.predicting import export_best, predict_input, time_predict  # noqa: E402
from gpu_window_lib.probing import VARIANTS, BatchMeter, probe, set_cudnn, use_variant, validate_fp32  # noqa: E402
from gpu_window_lib.report import Window, run_summary, write_json  # noqa: E402

CONFIG = "configs/lineage/v6b_from_v6a_gpu.json"
OUT_FILES = ("window.log", "summary.json", "run_config.json", "train_log.jsonl", "best.tar")  # <= 8 come back
NEW_SHAPE_STEPS = 100  # steps of a bucketed run that meet a batch shape for the first time (an estimate)


def run(args) -> None:
    import torch

    from dbmtl.data.catalog import load_training_data
    from dbmtl.training import TrainConfig, Trainer
    from dbmtl.training.budget import allocate_steps

    out = Path(args.out)
    w = Window(out, args.budget_s, T0)
    handler = logging.StreamHandler(w.log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger("dbmtl").addHandler(handler)
    logging.getLogger("dbmtl").setLevel(logging.INFO)

    pack_dir = Path(args.pack)
    manifest = json.loads((pack_dir / "manifest.json").read_text())
    cfg = TrainConfig.load(args.config or manifest["config"])
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    run_dir = Path(args.run_dir or cfg.out_dir)
    shutil.rmtree(run_dir, ignore_errors=True)  # the window's run starts afresh; a repeat of it too
    work = run_dir.parent / f"{run_dir.name}.window"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data_dir = work / "data"  # not in the packed folder: a dry run here would make the next carry too large
    with tarfile.open(pack_dir / "data.tar.gz") as tar:
        tar.extractall(data_dir, filter="data")
    changes = {"device": device, "out_dir": str(run_dir), "threads": args.threads or cfg.threads,
               "init_from": str(pack_dir / manifest["init_from"]) if manifest.get("init_from") else cfg.init_from}
    if args.model:
        changes["model"] = replace(cfg.model, **json.loads(args.model))
    cfg = replace(cfg, **{**changes, **json.loads(args.override or "{}")})
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    w.save(device=name, torch=torch.__version__, config=str(args.config or manifest["config"]),
           cudnn_benchmark=args.cudnn_benchmark, pack=manifest["counts"])
    w.say(f"{name}, torch {torch.__version__}; data unpacked; config {args.config or manifest['config']}")

    data = load_training_data(data_dir, **cfg.data_settings())
    if data_counts(data) != manifest["counts"]:
        raise SystemExit(f"the unpacked data differ from what was packed: {data_counts(data)} vs {manifest['counts']}")
    if args.limit_records:  # dry runs: a cut of the data, so that building pools takes seconds
        data = replace(data, residue=data.residue[: args.limit_records], protein=data.protein[: args.limit_records])
    w.summary["phases_s"]["start_s"] = round(w.elapsed(), 1)
    w.say(f"data loaded: {manifest['counts']}")

    # -- probe ----------------------------------------------------------------------------------------------
    t = time.time()
    trainer = Trainer(replace(cfg, out_dir=str(work / "probe")), data, progress=False)
    build_s = time.time() - t
    variants = args.variants.split(",")
    rates = probe(trainer, variants, args.probe_warmup, args.probe_steps, sync, w.say)
    usable = [v for v in variants if "error" not in rates[v]]
    if not usable:
        raise SystemExit("every probe variant failed: see window.log")
    chosen = min(usable, key=lambda v: rates[v]["expected_step_s"])
    precision, buckets, cudnn = VARIANTS[chosen]
    use_variant(trainer, replace(trainer.cfg, precision=precision, shape_buckets=buckets))
    set_cudnn(cudnn)
    t = time.time()
    validate_fp32(trainer)
    valid_s = time.time() - t
    t = time.time()
    trainer.save()
    save_s = time.time() - t
    del trainer
    gc.collect()  # the wrappers put on the trainer hold it in a cycle
    if cuda:
        torch.cuda.empty_cache()
    probe_s = w.elapsed() - w.summary["phases_s"]["start_s"]
    w.summary["phases_s"]["probe_s"] = round(probe_s, 1)
    w.save(probe={"variants": rates, "chosen": chosen, "trainer_build_s": round(build_s, 2),
                  "valid_s": round(valid_s, 2), "checkpoint_s": round(save_s, 2)})
    w.say(f"chosen {chosen}: {rates[chosen]['expected_step_s']} s a step; a validation {valid_s:.1f} s, "
          f"a checkpoint {save_s:.2f} s, building a trainer {build_s:.1f} s")

    # -- plan -----------------------------------------------------------------------------------------------
    train_budget = w.left() - args.predict_s - args.final_s
    per_eval = valid_s + 3 * save_s  # validation, checkpoint, best/ and its export
    first_visits = 0.0
    if buckets and rates[chosen]["new_shape_step_s"] and rates[chosen]["seen_shape_step_s"]:
        # a bucketed run meets each of its ~100-150 batch shapes once (two micro-batches a step): an
        # estimate of 100 steps at the new-shape price, at most a fifth of the budget
        extra = rates[chosen]["new_shape_step_s"] - rates[chosen]["seen_shape_step_s"]
        first_visits = min(max(0.0, extra) * NEW_SHAPE_STEPS, train_budget / 5)
    steps, every = allocate_steps(train_budget, build_s + first_visits, rates[chosen]["expected_step_s"], per_eval,
                                  args.evals, safety=args.safety)
    if args.max_steps and steps > args.max_steps:  # dry runs: a few steps whatever the budget
        every = max(1, args.max_steps // args.evals)
        steps = every * args.evals
    run_cfg = replace(cfg, precision=precision, shape_buckets=buckets, max_steps=steps, decay_steps=steps,
                      eval_every=every, checkpoint_every=every, warmup_steps=min(cfg.warmup_steps, steps // 10))
    write_json(out / "run_config.json", run_cfg.to_dict())  # `dbmtl train --config` repeats the run
    plan = {"cudnn": cudnn, "train_budget_s": round(train_budget, 1), "max_steps": steps, "eval_every": every, "evals": args.evals,
            "warmup_steps": run_cfg.warmup_steps, "step_s": rates[chosen]["expected_step_s"], "per_eval_s": round(per_eval, 2),
            "new_shape_allowance_s": round(first_visits, 1), "validation_precision": "fp32"}
    w.save(plan=plan)
    w.say(f"plan: {json.dumps(plan)}")

    # -- train ----------------------------------------------------------------------------------------------
    t = time.time()
    trainer = Trainer(run_cfg, data, progress=False)
    w.summary["phases_s"]["build_s"] = round(time.time() - t, 1)
    meter = BatchMeter(trainer)
    validating = [0.0]

    def timed_validate(model=None):
        t = time.time()
        try:
            return validate_fp32(trainer, model)
        finally:
            validating[0] += time.time() - t

    trainer.validate = timed_validate
    train_deadline = T0 + args.budget_s - args.predict_s - args.final_s
    segments, history, best_step = [], [], None
    for k in range(1, args.evals + 1):
        if segments and time.time() + max(segments) > train_deadline:
            w.say(f"stopping after step {trainer.step}: the next segment would pass the training deadline")
            break
        before = trainer.best_valid
        t = time.time()
        valid = trainer.fit(max_steps=k * every)
        segments.append(time.time() - t)
        mean = sum(v["loss"] for v in valid.values()) / len(valid)
        improved = trainer.best_valid < before
        history.append({"step": trainer.step, "mean_loss": round(mean, 4), "improved": improved,
                        **{task: {m: round(x, 4) for m, x in v.items()} for task, v in valid.items()}})
        if improved:
            export_best(run_dir, out, work)
            best_step = trainer.step
        shutil.copyfile(run_dir / "log.jsonl", out / "train_log.jsonl")
        train_s = sum(segments)
        steps_s = train_s - validating[0]
        w.save(run=run_summary(trainer, meter, train_s, steps_s, validating[0], history, best_step, precision, cuda, name))
        w.say(f"step {trainer.step}/{steps}: mean validation loss {mean:.4f}{' (best, exported)' if improved else ''}; "
              f"segment {segments[-1]:.1f} s")
    w.summary["phases_s"]["train_s"] = round(sum(segments), 1)
    del trainer
    gc.collect()  # the wrappers put on the trainer hold it in a cycle
    if cuda:
        torch.cuda.empty_cache()

    # -- predict ----------------------------------------------------------------------------------------------
    left = w.left() - args.final_s
    if args.predict_proteins and best_step is not None and left > 5:
        t = time.time()
        fasta = work / "predict.fasta"
        n = predict_input(data.corpus_paths, args.predict_proteins, fasta)
        procs = args.predict_procs or (4 if cuda else 1)
        result = time_predict(work / "best_fp16", fasta, n, work / "predicted", device, args.predict_dtype, procs, left)
        w.summary["phases_s"]["predict_s"] = round(time.time() - t, 1)
        w.save(predict=result)
        w.say(f"predict: {json.dumps(result)}")
    else:
        w.say("predict: skipped" + ("" if args.predict_proteins else " (--predict-proteins 0)"))

    for v, r in rates.items():
        if "error" not in r:
            w.say(f"probe {v:13s} {r['step_s_mean']:.4f} s/step mean, {r['step_s_median']:.4f} median; new shapes "
                  f"{r['new_shape_step_s']} s ({r['new_shape_steps']}), seen shapes {r['seen_shape_step_s']} s "
                  f"({r['seen_shape_steps']}), {r['distinct_shapes']} shapes{'  <- chosen' if v == chosen else ''}")
    total_s = w.elapsed()
    w.summary["phases_s"]["total_s"] = round(total_s, 1)
    run_part = w.summary.get("run", {})
    w.save(total_s=round(total_s, 1), train_share=round(run_part.get("train_s", 0) / total_s, 3),
           steps_share=round(run_part.get("steps_s", 0) / total_s, 3))
    w.say(f"done: training {run_part.get('train_s', 0):.0f} s of {total_s:.0f} s "
          f"({100 * w.summary['train_share']:.1f}%; steps alone {100 * w.summary['steps_share']:.1f}%); "
          f"files in {out}: {sorted(p.name for p in out.iterdir())}")



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: the data training reads (and start weights) into one folder to carry")
    p.add_argument("--config", default=CONFIG, help=f"the training config whose data are packed (default {CONFIG})")
    p.add_argument("--out", default="build/window", help="the folder to carry (default build/window, ignored by git)")
    p.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    p.add_argument("--init-from", help="a model folder to start from instead of the config's init_from")
    p.add_argument("--compresslevel", type=int, default=6)
    r = sub.add_parser("run", help="there: probe, train inside the budget, stream the best weights to --out")
    r.add_argument("pack", help="the folder `pack` wrote (carried)")
    r.add_argument("--out", required=True, help="where the files that come back go ($OUT on the device)")
    r.add_argument("--budget-s", type=float, default=560, help="seconds for the whole command (default 560)")
    r.add_argument("--config", help="training config (default: the one packed with)")
    r.add_argument("--run-dir", help="the run folder (default: the config's out_dir)")
    r.add_argument("--device", default="auto")
    r.add_argument("--threads", type=int, help="torch CPU threads")
    r.add_argument("--variants", default=",".join(VARIANTS), help=f"probe variants, comma-separated, of {list(VARIANTS)}")
    r.add_argument("--probe-warmup", type=int, default=2, help="untimed steps per variant")
    r.add_argument("--probe-steps", type=int, default=10, help="timed steps per variant")
    r.add_argument("--evals", type=int, default=8, help="validations (and chances to export the best)")
    r.add_argument("--safety", type=float, default=0.95, help="share of the training budget planned with steps")
    r.add_argument("--predict-proteins", type=int, default=20_000, help="proteins for the timed `dbmtl predict` (0: none)")
    r.add_argument("--predict-s", type=float, default=45, help="seconds kept from training for predict")
    r.add_argument("--predict-procs", type=int, help="processes of the timed predict (default: 4 on a GPU, else 1)")
    r.add_argument("--predict-dtype", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    r.add_argument("--final-s", type=float, default=10, help="seconds kept at the end for the summary")
    r.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    r.add_argument("--model", help="dry runs: JSON model overrides, e.g. '{\"n_layer\": 1}'")
    r.add_argument("--override", help="dry runs: JSON training-config overrides, e.g. '{\"batch_tokens\": 2048}'")
    r.add_argument("--max-steps", type=int, help="dry runs: at most this many steps whatever the budget")
    r.add_argument("--limit-records", type=int, help="dry runs: train on the first N records of each kind")
    args = ap.parse_args()
    if args.command == "pack":
        pack(args)
        return
    try:
        run(args)
    except BaseException as exc:
        import traceback

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "window.log", "a") as fh:
            traceback.print_exc(file=fh)
        summary = out / "summary.json"
        state = json.loads(summary.read_text()) if summary.exists() else {}
        write_json(summary, {**state, "error": f"{type(exc).__name__}: {exc}", "elapsed_s": round(time.time() - T0, 1)})
        raise


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
