"""What each `dbmtl` command does: parse nothing, check little, call the library, print a summary."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..readers.fasta import plural


def cmd_train(args) -> int:
    """Runs alone or, unchanged, as each process of `torchrun --nproc_per_node N -m dbmtl.cli train ...`."""
    from dataclasses import replace

    from ..data.catalog import load_training_data, resolve_data_dir
    from ..training.distributed import destroy_process_group
    from ..training import TrainConfig, Trainer

    cfg = TrainConfig.load(args.config)
    cfg = replace(cfg, out_dir=args.out or cfg.out_dir,
                  max_steps=cfg.max_steps if args.max_steps is None else args.max_steps,
                  corpus=args.corpus or cfg.corpus, threads=args.threads or cfg.threads)
    data = load_training_data(resolve_data_dir(args.data_dir or cfg.data_dir), **cfg.data_settings())
    trainer = None
    try:
        trainer = Trainer(cfg, data, progress=not args.quiet, resuming=args.resume)
        if args.resume:
            trainer.resume()
        if args.validate:
            scores = trainer.validate()
            if trainer.group.is_main:
                print(json.dumps({"step": trainer.step, "init_from": cfg.init_from, "valid": scores}, indent=1))
            return 0
        trainer.fit()
        if trainer.group.is_main and (trainer.out / "checkpoint").exists():
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
    from ..data.catalog import evaluation_guard, resolve_data_dir
    from ..data.shards import prepare_corpus
    from ..readers.leakage import LeakageGuard

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

    from ..inference import predict_fasta
    from ..inference.formats import check_formats
    from ..inference.writers import output_names
    from ..durable import Busy
    from ..inference.stream import JOURNAL, STAGING, Journal, Shard, check_tasks
    from ..tasks import OUTPUT_TASKS

    tasks = check_tasks(args.tasks.split(",") if args.tasks else OUTPUT_TASKS)
    formats = check_formats([f for f in args.formats.split(",") if f], tasks)
    shard = Shard.join()  # under torchrun: this process's share of the input
    predictor = _predictor(args)
    bar = tqdm(unit=" proteins", disable=args.quiet or shard.rank > 0, desc="predict")
    staging = Path(args.out) / STAGING
    journal = staging / (JOURNAL if shard.world == 1 else f"rank{shard.rank}/{JOURNAL}")
    try:
        run = predict_fasta(predictor, args.fasta, args.out, tasks=tasks, chunk_size=args.chunk_size,
                            resume=args.resume, skip_invalid=args.skip_invalid,
                            allow_nucleotides=args.allow_nucleotides, on_chunk=bar.update,
                            log=lambda message: print(f"dbmtl predict: {message}", file=sys.stderr), shard=shard,
                            formats=formats)
        shard.leave()
    except BaseException as exc:
        bar.close()
        kept = Journal.load(journal).proteins if journal.exists() and not isinstance(exc, Busy) else 0
        if kept:
            print(f"dbmtl predict: {plural(kept, 'finished protein')} kept in {staging}; {Path(args.out)}/ is "
                  "unchanged. Rerun with --resume to continue.", file=sys.stderr)
        raise
    bar.close()
    if shard.rank > 0:
        return 0
    if run.resumed:
        print(f"dbmtl predict: resumed after {plural(run.resumed, 'finished protein')}", file=sys.stderr)
    if run.skipped.total:
        print(f"dbmtl predict: {run.skipped.summary()}", file=sys.stderr)
        for msg in run.skipped.examples:
            print(f"  {msg}", file=sys.stderr)
    print(f"{plural(run.resumed + run.written, 'protein')} -> {Path(args.out)}/ ({', '.join(output_names(tasks, formats))})")
    predict_reports(args)
    return 0


def predict_reports(args) -> None:
    """--html and --plots: drawn from the finished run's predictions.jsonl."""
    if args.html or args.plots:
        from ..reports.run import render_run_reports

        for line in render_run_reports(args.out, args.html, args.html_limit, args.plots, args.plots_limit):
            print(line)


def _predictor(args):
    """The Predictor that the model options of predict and evaluate ask for."""
    import torch

    from ..inference import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    return Predictor.from_pretrained(args.model, **_predictor_options(args))


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
    from ..data.catalog import resolve_data_dir
    from ..evaluation.plots import write_evaluation_plots
    from ..evaluation.runner import evaluate, to_markdown, write_report

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
        from ..service.app import serve
    except ImportError as exc:
        raise ValueError(f"dbmtl serve needs the serve extra: pip install 'dbmtl[serve]' ({exc})") from None
    from ..service.inputs import Limits

    if args.threads:
        torch.set_num_threads(args.threads)
    limits = Limits(max_bytes=args.max_request_bytes, max_sequences=args.max_sequences, max_residues=args.max_residues)
    serve(args.model, args.host, args.port, limits, batch_residues=args.batch_residues, wait_ms=args.batch_wait_ms,
          access_log=args.access_log, **_predictor_options(args))
    return 0


def cmd_embed(args) -> int:
    from ..inference.embed import embed_fasta

    both = not args.per_residue and not args.per_protein  # neither flag: both kinds
    predictor = _predictor(args)
    run = embed_fasta(predictor, args.fasta, args.out, per_residue=both or args.per_residue,
                      per_protein=both or args.per_protein, key=args.key, task=args.task, chunk_size=args.chunk_size,
                      allow_nucleotides=args.allow_nucleotides,
                      resume=args.resume, skip_invalid=args.skip_invalid, progress=not args.quiet, model_name=str(args.model))
    if run.skipped.total:
        print(f"dbmtl embed: {run.skipped.summary()}", file=sys.stderr)
    print(f"{plural(run.written, 'protein')} embedded -> {args.out}" + (f" ({run.kept} already there)" if run.kept else ""))
    return 0


def _named(items: list[str]) -> dict[str, str]:
    """NAME=PATH arguments (a bare PATH is named after its folder)."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        out[name if sep else Path(item).parent.name if Path(item).is_file() else Path(item).name] = path if sep else item
    return out


def cmd_compare(args) -> int:
    from ..evaluation.compare import comparison_markdown

    table = comparison_markdown(_named(args.reports))
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table)
    return 0


def cmd_learning_curve(args) -> int:
    from ..evaluation.learning_curve import learning_curve_markdown

    table = learning_curve_markdown(_named(args.reports), args.seconds_per_micro_batch)
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table)
    return 0


def cmd_curves(args) -> int:
    from ..evaluation.compare import plot_curves, validation_markdown

    if args.valid_table:
        print(validation_markdown(_named(args.runs), args.max_step, args.every), end="")
        return 0
    print(plot_curves(_named(args.runs), args.out, x=args.x))
    return 0


def cmd_export(args) -> int:
    import torch

    from ..model.checkpoint import load_checkpoint, save_checkpoint

    model, alphabet, meta = load_checkpoint(args.checkpoint)
    meta = {k: v for k, v in meta.items() if k != "model"}
    meta["exported_from"] = str(args.checkpoint)
    dtype = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
    path = save_checkpoint(args.dest, model, alphabet, extra=meta, dtype=dtype)
    size = sum(f.stat().st_size for f in path.iterdir())
    params = sum(p.numel() for p in model.parameters())
    print(f"exported {args.checkpoint} -> {path} ({params:,} parameters, {size / 2**20:.1f} MiB, weights {args.dtype})")
    return 0


def cmd_calibrate(args) -> int:
    import torch

    from ..data.catalog import resolve_data_dir, trained_localization_sources
    from ..evaluation.calibration import fit_calibration, reliability_lines, validation_proteins, write_calibration
    from ..inference.predictor import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.from_pretrained(args.model)
    records = validation_proteins(predictor, resolve_data_dir(args.data_dir), args.limit)
    calibration = fit_calibration(predictor, records)
    if not calibration:
        raise ValueError(f"{args.model}: no validation proteins with a per-protein label to calibrate on")
    sources = trained_localization_sources(predictor.meta)
    how = (f"dbmtl calibrate on the validation hold-out of localization_sources {sources!r}"
           + (f" (first {args.limit} proteins)" if args.limit else ""))
    path = write_calibration(args.model, calibration, how)
    for task, e in calibration.items():
        print(f"{task}: temperature {e['temperature']:.3f} on {e['proteins']} validation proteins; "
              f"NLL {e['nll_before']:.4f} -> {e['nll_after']:.4f}, ECE {e['ece_before']:.4f} -> {e['ece_after']:.4f}")
        print("\n".join(reliability_lines(task, e)))
    print(f"written to {path}")
    return 0


def cmd_fit_readout(args) -> int:
    import torch

    from ..data.catalog import resolve_data_dir
    from ..inference.predictor import Predictor
    from ..model.checkpoint import model_folder
    from ..training.readout import fit_readout, fit_residue_readout, write_with_readouts

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder for the model with its readout")
    predictor = Predictor.from_pretrained(args.model)
    data_dir = resolve_data_dir(args.data_dir)
    command = "dbmtl " + " ".join(sys.argv[1:]) if sys.argv and "dbmtl" in sys.argv[0] else None
    readouts = {}
    if args.only in (None, "protein"):
        readouts["readout"] = fit_readout(predictor, data_dir, hidden=args.hidden, members=args.members,
                                          termini=args.termini, limit=args.limit)
    if args.only in (None, "residue"):
        readouts["residue_readout"] = fit_residue_readout(predictor, data_dir, hidden=args.residue_hidden,
                                                          kernel=args.kernel, max_epochs=args.residue_epochs,
                                                          schedule=args.residue_schedule, limit=args.limit)
    for _, report in readouts.values():
        report["command"] = command
    write_with_readouts(model_folder(args.model), out, readouts)
    seconds = sum(r["forward_s"] + r["fit_s"] for _, r in readouts.values())
    calibrate = f"; its answers are not calibrated yet: dbmtl calibrate {out}" if "readout" in readouts else ""
    print(f"written to {out} ({seconds:.0f} s of forward passes and fits){calibrate}")
    return 0


def cmd_benchmark(args) -> int:
    from ..benchmark.run import BenchmarkSpec, run_benchmark

    split = lambda s: tuple(x for x in s.split(",") if x) if s else None
    spec = BenchmarkSpec(
        out=args.out, model=args.model, configs=split(args.configs), dtypes=split(args.dtypes), queries=args.queries,
        proteins=args.proteins, config_proteins=args.config_proteins, batch=args.batch, length=args.length,
        mmseqs_sizes=tuple(int(x) for x in split(args.mmseqs_sizes)), mmseqs_repeats=args.mmseqs_repeats,
        skip_mmseqs=args.skip_mmseqs, memory_proteins=args.memory_proteins, memory_max_length=args.memory_max_length,
        data_dir=args.data_dir, threads=args.threads, device=args.device, batch_tokens=args.batch_tokens,
        s4pred_proteins=args.s4pred_proteins, latency_repeats=args.latency_repeats, plot=not args.no_plot,
        command="dbmtl " + " ".join(sys.argv[1:]) if sys.argv and "dbmtl" in sys.argv[0] else None)
    run_benchmark(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(Path(args.out) / "benchmark.md")
    return 0
