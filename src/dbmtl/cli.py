"""The `dbmtl` command: train, prepare-corpus, predict, evaluate, export."""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path


def cmd_train(args) -> int:
    """Runs alone or, unchanged, as each process of `torchrun --nproc_per_node N -m dbmtl.cli train ...`."""
    from dataclasses import replace

    from .data.catalog import load_training_data, resolve_data_dir
    from .training.distributed import destroy_process_group
    from .training import TrainConfig, Trainer

    cfg = TrainConfig.load(args.config)
    cfg = replace(cfg, out_dir=args.out or cfg.out_dir,
                  max_steps=cfg.max_steps if args.max_steps is None else args.max_steps,
                  corpus=args.corpus or cfg.corpus, threads=args.threads or cfg.threads)
    data = load_training_data(resolve_data_dir(args.data_dir or cfg.data_dir), **cfg.data_settings())
    trainer = None
    try:
        trainer = Trainer(cfg, data, progress=not args.quiet)
        if args.resume:
            trainer.resume()
        trainer.fit()
        if trainer.group.is_main:
            print(f"checkpoint: {trainer.out / 'checkpoint'}  best: {trainer.out / 'best'}")
        trainer.group.barrier()  # no rank leaves while another still talks to it
    finally:
        trainer = None  # drops the wrapped model, and with it the last use of the process group
        destroy_process_group()
    return 0


def cmd_prepare_corpus(args) -> int:
    from .data.catalog import evaluation_guard, resolve_data_dir
    from .data.shards import prepare_corpus
    from .readers.leakage import LeakageGuard

    guard = LeakageGuard() if args.no_leakage_filter else evaluation_guard(resolve_data_dir(args.data_dir))
    if not args.no_leakage_filter and not guard.keys:
        raise ValueError("no evaluation sets found in the data folder to filter against; "
                         "point --data-dir at it or pass --no-leakage-filter")
    last = [0]

    def progress(blocks: int) -> None:
        if not args.quiet and blocks - last[0] >= 10:
            last[0] = blocks
            print(f"prepare-corpus: {blocks * args.shard_size:,} records read", file=sys.stderr)

    m = prepare_corpus(args.inputs, args.out, guard, shard_size=args.shard_size, workers=args.workers,
                       progress=progress)
    print(f"{args.out}: {len(m['shards'])} shards, train {m['train']['sequences']:,} sequences "
          f"({m['train']['residues']:,} residues), valid {m['valid']['sequences']:,}; removed "
          f"{m['leaks_removed']:,} identical to evaluation proteins; skipped {m['skipped']:,} invalid records")
    return 0


def cmd_predict(args) -> int:
    import torch
    from tqdm import tqdm

    from .inference import Predictor, predict_fasta
    from .inference.stream import check_tasks
    from .tasks import OUTPUT_TASKS

    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = check_tasks(args.tasks.split(",") if args.tasks else OUTPUT_TASKS)
    predictor = Predictor.from_pretrained(args.model, device=args.device, batch_tokens=args.batch_tokens,
                                          dtype=args.dtype, int8=args.int8, attention=args.attention)
    bar = tqdm(unit=" proteins", disable=args.quiet, desc="predict")
    run = predict_fasta(predictor, args.fasta, args.out, tasks=tasks, chunk_size=args.chunk_size,
                        resume=args.resume, skip_invalid=args.skip_invalid, on_chunk=bar.update)
    bar.close()
    if run.resumed:
        print(f"dbmtl predict: resumed; {run.resumed} proteins were already done", file=sys.stderr)
    if run.skipped.total:
        print(f"dbmtl predict: {run.skipped.summary()}", file=sys.stderr)
        for msg in run.skipped.examples:
            print(f"  {msg}", file=sys.stderr)
    print(f"{run.written} proteins -> {Path(args.out)}/ (residues.tsv, proteins.tsv, predictions.jsonl)")
    return 0


def cmd_evaluate(args) -> int:
    import torch

    from .data.catalog import resolve_data_dir
    from .evaluation.runner import evaluate, to_markdown, write_report
    from .inference import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(args.model, device=args.device, batch_tokens=args.batch_tokens,
                                          dtype=args.dtype, int8=args.int8, attention=args.attention)
    sets = args.sets.split(",") if args.sets else None
    results = evaluate(predictor, resolve_data_dir(args.data_dir), limit=args.limit, audit=args.audit,
                       sets=sets, log=lambda m: print(m, file=sys.stderr), baseline=args.baseline)
    results["model"] = str(args.model)
    results["command"] = "dbmtl " + " ".join(sys.argv[1:]) if sys.argv and "dbmtl" in sys.argv[0] else None
    print(to_markdown(results))
    j, m = write_report(results, Path(args.out))
    print(f"written: {j} {m}", file=sys.stderr)
    return 0


def _named(items: list[str]) -> dict[str, str]:
    """NAME=PATH arguments (a bare PATH is named after its folder)."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        out[name if sep else Path(item).parent.name if Path(item).is_file() else Path(item).name] = path if sep else item
    return out


def cmd_compare(args) -> int:
    from .evaluation.compare import comparison_markdown

    table = comparison_markdown(_named(args.reports))
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table)
    return 0


def cmd_learning_curve(args) -> int:
    from .evaluation.learning_curve import learning_curve_markdown

    table = learning_curve_markdown(_named(args.reports), args.seconds_per_micro_batch)
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table)
    return 0


def cmd_curves(args) -> int:
    from .evaluation.compare import plot_curves, validation_markdown

    if args.valid_table:
        print(validation_markdown(_named(args.runs), args.max_step, args.every), end="")
        return 0
    print(plot_curves(_named(args.runs), args.out, x=args.x))
    return 0


def cmd_export(args) -> int:
    import torch

    from .model.checkpoint import load_checkpoint, save_checkpoint

    model, alphabet, meta = load_checkpoint(args.checkpoint)
    meta = {k: v for k, v in meta.items() if k != "model"}
    meta["exported_from"] = str(args.checkpoint)
    dtype = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
    path = save_checkpoint(args.dest, model, alphabet, extra=meta, dtype=dtype)
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"exported {args.checkpoint} -> {path} ({size / 2**20:.1f} MiB, weights {args.dtype})")
    return 0


def cmd_benchmark(args) -> int:
    from .benchmark.run import BenchmarkSpec, run_benchmark

    split = lambda s: tuple(x for x in s.split(",") if x) if s else None
    spec = BenchmarkSpec(
        out=args.out, model=args.model, configs=split(args.configs), dtypes=split(args.dtypes), queries=args.queries,
        proteins=args.proteins, config_proteins=args.config_proteins, batch=args.batch, length=args.length,
        mmseqs_sizes=tuple(int(x) for x in split(args.mmseqs_sizes)), mmseqs_repeats=args.mmseqs_repeats,
        skip_mmseqs=args.skip_mmseqs, memory_proteins=args.memory_proteins, memory_max_length=args.memory_max_length,
        data_dir=args.data_dir, threads=args.threads, device=args.device, batch_tokens=args.batch_tokens,
        plot=not args.no_plot,
        command="dbmtl " + " ".join(sys.argv[1:]) if sys.argv and "dbmtl" in sys.argv[0] else None)
    run_benchmark(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(Path(args.out) / "benchmark.md")
    return 0


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="dbmtl", description=__doc__)
    p.add_argument("--version", action="version", version=f"dbmtl {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)
    command = functools.partial(sub.add_parser, formatter_class=DefaultsHelpFormatter)

    t = command("train", help="train a model from a JSON config")
    t.add_argument("--config", required=True, help="training config JSON (see configs/)")
    t.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    t.add_argument("--out", help="run directory (overrides the config's out_dir)")
    t.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    t.add_argument("--corpus", help="LM corpus prepared by `dbmtl prepare-corpus` (default: the data folder's FASTA)")
    t.add_argument("--threads", type=int, help="torch CPU threads (overrides the config's)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    pc = command("prepare-corpus", help="turn FASTA files of any size into memory-mapped LM training shards")
    pc.add_argument("inputs", nargs="+", help="FASTA files (.gz allowed), read in order")
    pc.add_argument("out", help="output folder (rerun with the same arguments to finish an interrupted run)")
    pc.add_argument("--shard-size", type=int, default=100_000, help="records per shard")
    pc.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="parsing processes")
    pc.add_argument("--data-dir", help="data folder with the evaluation sets to filter out (default: $DBMTL_DATA or ../shared/data)")
    pc.add_argument("--no-leakage-filter", action="store_true", help="keep sequences identical to evaluation proteins")
    pc.add_argument("--quiet", action="store_true", help="no progress messages")
    pc.set_defaults(func=cmd_prepare_corpus)

    def model_options(sp):
        sp.add_argument("--model", default="default", help="checkpoint directory (default: the bundled model)")
        sp.add_argument("--device", default="cpu", help="cpu or cuda")
        sp.add_argument("--batch-tokens", type=int, help="tokens per forward batch (default: 2048 on CPU, 16384 on GPU)")
        sp.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
        sp.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16", "auto"],
                        help="weights and activations (auto: bf16 on a GPU that has it, else fp32)")
        sp.add_argument("--int8", action="store_true", help="dynamic int8 linear layers (CPU, with --dtype fp32)")
        sp.add_argument("--attention", default="auto", choices=["auto", "sdpa", "blocked"],
                        help="attention kernels (auto: blocked bf16 matmuls for half precision on a CPU, else SDPA)")

    pr = command("predict", help="predict SS3, SS8, location and membrane for a FASTA file")
    pr.add_argument("fasta", help="input FASTA (.gz allowed)")
    pr.add_argument("-o", "--out", default="predictions", help="output folder")
    pr.add_argument("--tasks", help="comma-separated subset of ss3,ss8,loc,ms (default: all)")
    pr.add_argument("--skip-invalid", action="store_true", help="skip bad records, report them at the end")
    pr.add_argument("--chunk-size", type=int, default=256, help="proteins predicted and written at a time")
    pr.add_argument("--resume", action="store_true", help="keep the finished proteins in the output folder, do the rest")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    model_options(pr)
    pr.set_defaults(func=cmd_predict)

    cp = command("compare", help="one table of several `dbmtl evaluate` reports (ablations)")
    cp.add_argument("reports", nargs="+", help="NAME=path/to/evaluation.json (or just the path)")
    cp.add_argument("-o", "--out", help="also write the markdown table here")
    cp.set_defaults(func=cmd_compare)

    lc = command("learning-curve", help="test scores of one recipe at several budgets, fitted against "
                        "log compute and solved for the accuracy targets")
    lc.add_argument("reports", nargs="+", help="NAME=path/to/evaluation.json of models trained with different budgets")
    lc.add_argument("--seconds-per-micro-batch", type=float,
                    help="measured cost of one micro-batch on this machine, to print CPU hours as well")
    lc.add_argument("-o", "--out", help="also write the markdown tables here")
    lc.set_defaults(func=cmd_learning_curve)

    cv = command("curves", help="plot training loss and validation scores of runs (needs matplotlib)")
    cv.add_argument("runs", nargs="+", help="NAME=run folder (with log.jsonl), or just the folder")
    cv.add_argument("-o", "--out", default="curves.png", help="PNG file")
    cv.add_argument("--x", choices=["micro_batches", "step"], default="micro_batches",
                    help="x axis: compute (micro-batches) or optimizer steps")
    cv.add_argument("--valid-table", action="store_true",
                    help="print the validation losses and accuracies as a markdown table instead of plotting")
    cv.add_argument("--max-step", type=int, help="with --valid-table: only validations up to this step")
    cv.add_argument("--every", type=int, help="with --valid-table: only validations at multiples of this step")
    cv.set_defaults(func=cmd_curves)

    ex = command("export", help="copy a checkpoint's weights (optionally in half precision) for shipping")
    ex.add_argument("checkpoint", help="checkpoint directory, e.g. runs/default/best")
    ex.add_argument("dest", help="destination directory")
    ex.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16")
    ex.set_defaults(func=cmd_export)

    ev = command("evaluate", help="score a model on CB513, TS115, CASP12 and DeepLoc test")
    ev.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    ev.add_argument("-o", "--out", default="evaluation", help="folder for evaluation.json and evaluation.md")
    ev.add_argument("--limit", type=int, help="first N proteins of each set only (quick check)")
    ev.add_argument("--sets", help="comma-separated subset of CB513,TS115,CASP12,DeepLoc")
    ev.add_argument("--audit", action=argparse.BooleanOptionalAction, default=True,
                    help="beside each honest per-residue score, the scores that read true labels or use no "
                         "model (teacher-forced, copy previous true label, majority class), so a leak shows "
                         "at a glance (default: on; --no-audit skips the extra teacher-forced pass)")
    ev.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                    help="beside the per-protein scores, a logistic regression on amino-acid composition (no "
                         "model; needs scikit-learn, else skipped with a note; default: on)")
    model_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    b = command("benchmark", help="speed, FLOP/s and memory of dbmtl beside MMseqs2 (see docs/performance.md)")
    b.add_argument("--model", default="default", help="checkpoint of the `default` config (default: the bundled model)")
    b.add_argument("--configs", default="default,paper", help="`default` and/or presets (random weights), e.g. paper")
    b.add_argument("--dtypes", help="precisions (default: fp32,bf16,int8 on CPU; fp32,bf16 on GPU)")
    b.add_argument("--queries", help="query FASTA (default: the data folder's MMseqs2 QUERY.fasta)")
    b.add_argument("--proteins", type=int, help="first N query proteins only")
    b.add_argument("--config-proteins", type=int, default=4, help="proteins predicted end to end by preset configs")
    b.add_argument("--batch", type=int, default=32, help="forward batch (the paper's setting: 32)")
    b.add_argument("--length", type=int, default=1024, help="forward tokens per row (the paper's setting: 1024)")
    b.add_argument("--mmseqs-sizes", default="5000,10000,20000,50000,100000,200000,500000,1000000",
                   help="database sizes (beyond the 20k real sequences: residue-shuffled copies)")
    b.add_argument("--mmseqs-repeats", type=int, default=1, help="searches per size (the fastest counts)")
    b.add_argument("--skip-mmseqs", action="store_true", help="dbmtl side only")
    b.add_argument("--memory-proteins", type=int, default=0, help="stream this many proteins, sampling memory (0: skip)")
    b.add_argument("--memory-max-length", type=int, help="crop the memory run's proteins to this many residues")
    b.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    b.add_argument("--threads", type=int, help="threads for torch and MMseqs2 (default: all CPUs)")
    b.add_argument("--device", default="auto", help="auto, cpu or cuda")
    b.add_argument("--batch-tokens", type=int, help="tokens per prediction batch (default: predict's)")
    b.add_argument("--no-plot", action="store_true", help="skip the plot")
    b.add_argument("-o", "--out", default="benchmark", help="folder for benchmark.json, .md and .png")
    b.set_defaults(func=cmd_benchmark)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"dbmtl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
