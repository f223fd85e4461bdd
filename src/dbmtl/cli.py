"""The `dbmtl` command: train, prepare-corpus, predict, serve, embed, evaluate, export."""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import traceback
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
    except KeyboardInterrupt:
        if trainer is not None and trainer.group.is_main:
            print(f"dbmtl train: stopped at step {trainer.step}; the last checkpoint in {trainer.out / 'checkpoint'} "
                  "is intact: continue with --resume", file=sys.stderr)
        raise
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
    from tqdm import tqdm

    from .inference import predict_fasta
    from .inference.stream import JOURNAL, STAGING, Journal, Shard, check_tasks
    from .tasks import OUTPUT_TASKS

    tasks = check_tasks(args.tasks.split(",") if args.tasks else OUTPUT_TASKS)
    shard = Shard.join()  # under torchrun: this process's share of the input
    predictor = _predictor(args)
    bar = tqdm(unit=" proteins", disable=args.quiet or shard.rank > 0, desc="predict")
    staging = Path(args.out) / STAGING
    journal = staging / (JOURNAL if shard.world == 1 else f"rank{shard.rank}/{JOURNAL}")
    try:
        run = predict_fasta(predictor, args.fasta, args.out, tasks=tasks, chunk_size=args.chunk_size,
                            resume=args.resume, skip_invalid=args.skip_invalid, on_chunk=bar.update,
                            log=lambda message: print(f"dbmtl predict: {message}", file=sys.stderr), shard=shard)
        shard.leave()
    except BaseException:
        bar.close()
        kept = Journal.load(journal).proteins if journal.exists() else 0
        if kept:
            print(f"dbmtl predict: {kept} proteins finished are kept in {staging}; {Path(args.out)}/ is "
                  "unchanged. Rerun with --resume to continue.", file=sys.stderr)
        raise
    bar.close()
    if shard.rank > 0:
        return 0
    if run.resumed:
        print(f"dbmtl predict: resumed; {run.resumed} proteins were already done", file=sys.stderr)
    if run.skipped.total:
        print(f"dbmtl predict: {run.skipped.summary()}", file=sys.stderr)
        for msg in run.skipped.examples:
            print(f"  {msg}", file=sys.stderr)
    print(f"{run.resumed + run.written} proteins -> {Path(args.out)}/ (residues.tsv, proteins.tsv, predictions.jsonl)")
    predict_reports(args)
    return 0


def predict_reports(args) -> None:
    """--html and --plots: drawn from the finished run's predictions.jsonl."""
    if args.html or args.plots:
        from .reports.run import render_run_reports

        for line in render_run_reports(args.out, args.html, args.html_limit, args.plots, args.plots_limit):
            print(line)


def _predictor(args):
    """The Predictor that the model options of predict and evaluate ask for."""
    import torch

    from .inference import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    return Predictor.from_pretrained(args.model, device=device, batch_tokens=args.batch_tokens,
                                     dtype=args.dtype, int8=args.int8, attention=args.attention)


def _device(name: str) -> str:
    """A torch device this machine has; a clear error otherwise."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA GPU is available on this machine (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: only cpu and cuda are supported")
    return name


def cmd_evaluate(args) -> int:
    from .data.catalog import resolve_data_dir
    from .evaluation.plots import write_evaluation_plots
    from .evaluation.runner import evaluate, to_markdown, write_report

    predictor = _predictor(args)
    sets = args.sets.split(",") if args.sets else None
    results = evaluate(predictor, resolve_data_dir(args.data_dir), limit=args.limit, audit=args.audit,
                       sets=sets, log=lambda m: print(m, file=sys.stderr), baseline=args.baseline)
    results["model"] = str(args.model)
    results["command"] = "dbmtl " + " ".join(sys.argv[1:]) if sys.argv and "dbmtl" in sys.argv[0] else None
    print(to_markdown(results))
    j, m = write_report(results, Path(args.out))
    print(f"written: {j} {m}", file=sys.stderr)
    write_evaluation_plots(results, Path(args.out), log=lambda m: print(m, file=sys.stderr))
    return 0


def _predictor_options(args) -> dict:
    return dict(device=_device(args.device), batch_tokens=args.batch_tokens, dtype=args.dtype, int8=args.int8,
                attention=args.attention)


def cmd_serve(args) -> int:
    import torch

    try:
        from .service.app import serve
    except ImportError as exc:
        raise ValueError(f"dbmtl serve needs the serve extra: pip install 'dbmtl[serve]' ({exc})") from None
    from .service.inputs import Limits

    if args.threads:
        torch.set_num_threads(args.threads)
    limits = Limits(max_bytes=args.max_request_bytes, max_sequences=args.max_sequences, max_residues=args.max_residues)
    serve(args.model, args.host, args.port, limits, batch_residues=args.batch_residues, wait_ms=args.batch_wait_ms,
          access_log=args.access_log, **_predictor_options(args))
    return 0


def cmd_embed(args) -> int:
    from .embeddings import embed_fasta

    both = not args.per_residue and not args.per_protein  # neither flag: both kinds
    predictor = _predictor(args)
    run = embed_fasta(predictor, args.fasta, args.out, per_residue=both or args.per_residue,
                      per_protein=both or args.per_protein, key=args.key, task=args.task, chunk_size=args.chunk_size,
                      resume=args.resume, skip_invalid=args.skip_invalid, progress=not args.quiet, model_name=str(args.model))
    if run.skipped.total:
        print(f"dbmtl embed: {run.skipped.summary()}", file=sys.stderr)
    print(f"{run.written} proteins embedded -> {args.out}" + (f" ({run.kept} already there)" if run.kept else ""))
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


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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
    t.add_argument("--max-steps", type=positive_int, help="stop after this many optimizer steps")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    t.add_argument("--corpus", help="LM corpus prepared by `dbmtl prepare-corpus` (default: the data folder's FASTA)")
    t.add_argument("--threads", type=positive_int, help="torch CPU threads (overrides the config's)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    pc = command("prepare-corpus", help="turn FASTA files of any size into memory-mapped LM training shards")
    pc.add_argument("inputs", nargs="+", help="FASTA files (.gz allowed), read in order")
    pc.add_argument("out", help="output folder (rerun with the same arguments to finish an interrupted run)")
    pc.add_argument("--shard-size", type=positive_int, default=100_000, help="records per shard")
    pc.add_argument("--workers", type=positive_int, default=max(1, (os.cpu_count() or 2) - 1), help="parsing processes")
    pc.add_argument("--data-dir", help="data folder with the evaluation sets to filter out (default: $DBMTL_DATA or ../shared/data)")
    pc.add_argument("--no-leakage-filter", action="store_true", help="keep sequences identical to evaluation proteins")
    pc.add_argument("--quiet", action="store_true", help="no progress messages")
    pc.set_defaults(func=cmd_prepare_corpus)

    def model_options(sp):
        sp.add_argument("--model", default="default", help="checkpoint directory (default: the bundled model)")
        sp.add_argument("--device", default="cpu", help="cpu or cuda")
        sp.add_argument("--batch-tokens", type=positive_int, help="tokens per forward batch (default: 2048 on CPU, 16384 on GPU)")
        sp.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
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
    pr.add_argument("--chunk-size", type=positive_int, default=256, help="proteins predicted and written at a time")
    pr.add_argument("--resume", action="store_true", help="keep the finished proteins in the output folder, do the rest")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.add_argument("--html", metavar="PATH", help="also write one self-contained HTML report (opens offline)")
    pr.add_argument("--html-limit", type=int, default=1000, help="proteins in the HTML report (the first N)")
    pr.add_argument("--plots", metavar="DIR", help="also draw one PNG per protein into this folder")
    pr.add_argument("--plots-limit", type=int, default=100, help="proteins drawn with --plots (the first N)")
    model_options(pr)
    pr.set_defaults(func=cmd_predict)

    sv = command("serve", help="a web service and page for predictions (needs the `serve` extra)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port")
    sv.add_argument("--max-request-bytes", type=int, default=1_000_000, help="largest request body (413 above)")
    sv.add_argument("--max-sequences", type=int, default=100, help="most proteins in one request (413 above)")
    sv.add_argument("--max-residues", type=int, default=100_000, help="most residues in one request (413 above)")
    sv.add_argument("--batch-residues", type=int, default=16384,
                    help="residues of concurrent requests predicted together in one call")
    sv.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long a request waits for others to join it")
    sv.add_argument("--access-log", action="store_true", help="log every request")
    model_options(sv)
    sv.set_defaults(func=cmd_serve)

    em = command("embed", help="per-residue and per-protein embeddings of a FASTA file into HDF5 (needs the `embed` extra)")
    em.add_argument("fasta", help="input FASTA (.gz allowed)")
    em.add_argument("-o", "--out", required=True, help="HDF5 file")
    em.add_argument("--per-residue", action="store_true", help="only per-residue embeddings (default: both kinds)")
    em.add_argument("--per-protein", action="store_true", help="only per-protein embeddings (default: both kinds)")
    em.add_argument("--key", choices=["id", "md5"], default="id",
                    help="dataset names: the FASTA id (%%-escaped) or the sequence's md5 (repeated sequences once)")
    em.add_argument("--task", default="ss8", choices=["ss3", "ss8", "loc", "ms"],
                    help="whose input row gives the states (the control token the model reads)")
    em.add_argument("--chunk-size", type=int, default=64, help="proteins embedded and written at a time")
    em.add_argument("--resume", action="store_true", help="keep the proteins already complete in the file, do the rest")
    em.add_argument("--skip-invalid", action="store_true", help="skip bad records, report them at the end")
    em.add_argument("--quiet", action="store_true", help="no progress bar")
    model_options(em)
    em.set_defaults(func=cmd_embed)

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
    cv.add_argument("--max-step", type=positive_int, help="with --valid-table: only validations up to this step")
    cv.add_argument("--every", type=positive_int, help="with --valid-table: only validations at multiples of this step")
    cv.set_defaults(func=cmd_curves)

    ex = command("export", help="copy a checkpoint's weights (optionally in half precision) for shipping")
    ex.add_argument("checkpoint", help="checkpoint directory, e.g. runs/default/best")
    ex.add_argument("dest", help="destination directory")
    ex.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16")
    ex.set_defaults(func=cmd_export)

    ev = command("evaluate", help="score a model on CB513, TS115, CASP12 and DeepLoc test")
    ev.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    ev.add_argument("-o", "--out", default="evaluation", help="folder for evaluation.json and evaluation.md")
    ev.add_argument("--limit", type=positive_int, help="first N proteins of each set only (quick check)")
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
    b.add_argument("--proteins", type=positive_int, help="first N query proteins only")
    b.add_argument("--config-proteins", type=positive_int, default=4, help="proteins predicted end to end by preset configs")
    b.add_argument("--batch", type=positive_int, default=32, help="forward batch (the paper's setting: 32)")
    b.add_argument("--length", type=positive_int, default=1024, help="forward tokens per row (the paper's setting: 1024)")
    b.add_argument("--mmseqs-sizes", default="5000,10000,20000,50000,100000,200000,500000,1000000",
                   help="database sizes (beyond the 20k real sequences: residue-shuffled copies)")
    b.add_argument("--mmseqs-repeats", type=positive_int, default=1, help="searches per size (the fastest counts)")
    b.add_argument("--skip-mmseqs", action="store_true", help="dbmtl side only")
    b.add_argument("--memory-proteins", type=int, default=0, help="stream this many proteins, sampling memory (0: skip)")
    b.add_argument("--memory-max-length", type=positive_int, help="crop the memory run's proteins to this many residues")
    b.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    b.add_argument("--threads", type=positive_int, help="threads for torch and MMseqs2 (default: all CPUs)")
    b.add_argument("--device", default="auto", help="auto, cpu or cuda")
    b.add_argument("--batch-tokens", type=positive_int, help="tokens per prediction batch (default: predict's)")
    b.add_argument("--no-plot", action="store_true", help="skip the plot")
    b.add_argument("-o", "--out", default="benchmark", help="folder for benchmark.json, .md and .png")
    b.set_defaults(func=cmd_benchmark)
    return p


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input, options, config or model files (nothing was lost); 1 the run
    failed (disk full, I/O error, training diverged, an internal error); 130 interrupted (Ctrl-C). No
    traceback unless -v."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    name = f"dbmtl {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if args.verbose:
            traceback.print_exc()
        what = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        print(f"{name}: error: {what}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # the last boundary: a bug, said in one line (the traceback with -v)
        if args.verbose:
            traceback.print_exc()
        print(f"{name}: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
