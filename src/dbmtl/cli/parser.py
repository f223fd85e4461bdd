"""The `dbmtl` command line: every command, option and default."""
from __future__ import annotations

import argparse
import os

from .commands import (cmd_benchmark, cmd_calibrate, cmd_compare, cmd_curves, cmd_embed, cmd_evaluate, cmd_export,
                       cmd_fit_readout, cmd_learning_curve, cmd_predict, cmd_prepare_corpus, cmd_serve, cmd_train)


def int_at_least(low: int):
    """argparse type: an integer of at least `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


positive_int = int_at_least(1)
ALLOW_NUCLEOTIDES = ("read records that look like DNA or RNA (20 letters or more, 95%% of them A, C, G, T, U "
                     "or N) as proteins instead of refusing them")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default is argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class CommandListFormatter(argparse.HelpFormatter):
    """`dbmtl --help`: each command and its summary on one line. argparse measures the command names one
    indent short, so the longest (prepare-corpus, learning-curve) would sit alone on a line: start wider."""

    def __init__(self, prog: str):
        super().__init__(prog)
        self._action_max_length = 4 + len("learning-curve")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(prog="dbmtl", description="Protein features from the amino-acid sequence alone: "
                                "secondary structure, localization, membrane-bound or soluble.",
                                formatter_class=CommandListFormatter)
    p.add_argument("--version", action="version", version=f"dbmtl {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        """A subcommand; its one-line summary is its line in `dbmtl --help` and heads its own --help."""
        return sub.add_parser(name, help=summary, description=summary, formatter_class=DefaultsHelpFormatter)

    def model_options(sp):
        sp.add_argument("--model", default="default", help="checkpoint directory (default: the bundled model)")
        sp.add_argument("--device", default="cpu", help="cpu or cuda")
        sp.add_argument("--batch-tokens", type=positive_int, help="tokens per forward batch (default: 2048 on CPU, 16384 on GPU)")
        sp.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
        sp.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16", "auto"],
                        help="weights and activations (auto: bf16 on a GPU that has it or a CPU with bf16 dot products, else fp32)")
        sp.add_argument("--int8", action="store_true", help="dynamic int8 linear layers (CPU, with --dtype fp32)")
        sp.add_argument("--attention", default="auto", choices=["auto", "sdpa", "blocked"],
                        help="attention kernels (auto: blocked bf16 matmuls for half precision on a CPU, else SDPA)")

    pr = command("predict", "secondary structure, location and membrane of a FASTA file")
    pr.add_argument("fasta", help="input FASTA (.gz allowed)")
    pr.add_argument("-o", "--out", default="predictions", help="output folder")
    pr.add_argument("--tasks", help="comma-separated subset of ss3,ss8,loc,ms: secondary structure in 3 or 8 "
                                    "states, subcellular location, membrane-bound or soluble (default: all)")
    pr.add_argument("--skip-invalid", action="store_true", help="skip bad records, report them at the end")
    pr.add_argument("--allow-nucleotides", action="store_true", help=ALLOW_NUCLEOTIDES)
    pr.add_argument("--chunk-size", type=positive_int, default=256, help="proteins predicted and written at a time")
    pr.add_argument("--resume", action="store_true", help="keep the finished proteins in the output folder, do the rest")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.add_argument("--html", metavar="PATH", help="also write one self-contained HTML report (opens offline)")
    pr.add_argument("--html-limit", type=int, default=1000, help="proteins in the HTML report (the first N)")
    pr.add_argument("--plots", metavar="DIR", help="also draw one PNG per protein into this folder")
    pr.add_argument("--plots-limit", type=int, default=100, help="proteins drawn with --plots (the first N)")
    pr.add_argument("--formats", default="", metavar="LIST",
                    help="comma-separated extra outputs for other tools: ss2 (PSIPRED .ss2 per protein in ss2/), "
                         "horiz (PSIPRED .horiz per protein in horiz/), fasta (structure.fasta: sequence, SS3, SS8); "
                         "default: none, only residues.tsv, proteins.tsv, predictions.jsonl")
    model_options(pr)
    pr.set_defaults(func=cmd_predict)

    sv = command("serve", "web page and JSON API for predictions (`serve` extra)")
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

    em = command("embed", "per-residue and per-protein embeddings into HDF5")
    em.add_argument("fasta", help="input FASTA (.gz allowed)")
    em.add_argument("-o", "--out", required=True, help="HDF5 file")
    em.add_argument("--per-residue", action="store_true", help="only per-residue embeddings (default: both kinds)")
    em.add_argument("--per-protein", action="store_true", help="only per-protein embeddings (default: both kinds)")
    em.add_argument("--key", choices=["id", "md5"], default="id",
                    help="dataset names: the FASTA id (%%-escaped) or the sequence's md5 (repeated sequences once)")
    em.add_argument("--task", default="ss8", choices=["ss3", "ss8", "loc", "ms"],
                    help="whose input row gives the states: secondary structure in 3 or 8 states, location, or "
                         "ms, membrane-bound or soluble (the control token an encoder or decoder reads; a onepass "
                         "model, the bundled kind, has one row for all tasks)")
    em.add_argument("--chunk-size", type=int, default=64, help="proteins embedded and written at a time")
    em.add_argument("--resume", action="store_true", help="keep the proteins already complete in the file, do the rest")
    em.add_argument("--skip-invalid", action="store_true", help="skip bad records, report them at the end")
    em.add_argument("--allow-nucleotides", action="store_true", help=ALLOW_NUCLEOTIDES)
    em.add_argument("--quiet", action="store_true", help="no progress bar")
    model_options(em)
    em.set_defaults(func=cmd_embed)

    ev = command("evaluate", "score a model on CB513, TS115, CASP12 and DeepLoc test")
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

    b = command("benchmark", "speed, FLOP/s and memory, beside MMseqs2")
    b.add_argument("--model", default="default", help="checkpoint timed as the `default` config (default: the bundled model)")
    b.add_argument("--configs", default="default,paper",
                   help="`default` (the --model checkpoint) and/or presets with random weights, e.g. paper "
                        "(default: default,paper)")
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
    b.add_argument("--memory-proteins", type=int_at_least(0), default=0, help="stream this many proteins, sampling memory (0: skip)")
    b.add_argument("--memory-max-length", type=positive_int, help="crop the memory run's proteins to this many residues")
    b.add_argument("--s4pred-proteins", type=int_at_least(0), default=20,
                   help="time an S4PRED-sized predictor (five 3-layer BiGRUs, hidden 1024, random weights) on the "
                        "first N query proteins (0: skip)")
    b.add_argument("--latency-repeats", type=int_at_least(0), default=3,
                   help="runs of `dbmtl predict` on the first query protein, each a fresh process; the fastest "
                        "counts (0: skip)")
    b.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    b.add_argument("--threads", type=positive_int, help="threads for torch and MMseqs2 (default: all CPUs)")
    b.add_argument("--device", default="auto", help="auto, cpu or cuda")
    b.add_argument("--batch-tokens", type=positive_int, help="tokens per prediction batch (default: predict's)")
    b.add_argument("--no-plot", action="store_true", help="skip the plot")
    b.add_argument("-o", "--out", default="benchmark", help="folder for benchmark.json, .md and .png")
    b.set_defaults(func=cmd_benchmark)

    cp = command("compare", "one table of several `dbmtl evaluate` reports")
    cp.add_argument("reports", nargs="+", help="NAME=path/to/evaluation.json (or just the path)")
    cp.add_argument("-o", "--out", help="also write the markdown table here")
    cp.set_defaults(func=cmd_compare)

    t = command("train", "train a model from a JSON config")
    t.add_argument("--config", required=True, help="training config JSON (see configs/)")
    t.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    t.add_argument("--out", help="run directory (overrides the config's out_dir)")
    t.add_argument("--max-steps", type=int_at_least(0), help="stop after this many optimizer steps (0: build the data and model, log their sizes, train nothing)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    t.add_argument("--corpus", help="LM corpus prepared by `dbmtl prepare-corpus` (default: the data folder's FASTA)")
    t.add_argument("--threads", type=positive_int, help="torch CPU threads (overrides the config's)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--validate", action="store_true",
                   help="train nothing: score the starting weights (init_from, or the checkpoint with --resume) "
                        "on the config's validation split and print them as JSON")
    t.set_defaults(func=cmd_train)

    pc = command("prepare-corpus", "FASTA files of any size -> language-model training shards")
    pc.add_argument("inputs", nargs="+", help="FASTA files (.gz allowed), read in order")
    pc.add_argument("out", help="output folder (rerun with the same arguments to finish an interrupted run)")
    pc.add_argument("--shard-size", type=positive_int, default=100_000, help="records per shard")
    pc.add_argument("--workers", type=positive_int, default=max(1, (os.cpu_count() or 2) - 1), help="parsing processes")
    pc.add_argument("--data-dir", help="data folder with the evaluation sets to filter out (default: $DBMTL_DATA or ../shared/data)")
    pc.add_argument("--no-leakage-filter", action="store_true", help="keep sequences identical to evaluation proteins")
    pc.add_argument("--quiet", action="store_true", help="no progress messages")
    pc.set_defaults(func=cmd_prepare_corpus)

    ca = command("calibrate", "fit a model's per-protein temperatures (validation)")
    ca.add_argument("model", help="model folder to calibrate in place ('default': the bundled model)")
    ca.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    ca.add_argument("--limit", type=positive_int, help="first N validation proteins only (quick check)")
    ca.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    ca.set_defaults(func=cmd_calibrate)

    ex = command("export", "copy a checkpoint's weights (half precision) to ship")
    ex.add_argument("checkpoint", help="checkpoint directory, e.g. runs/default/best")
    ex.add_argument("dest", help="destination directory")
    ex.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16", help="precision of the copied weights")
    ex.set_defaults(func=cmd_export)

    fr = command("fit-readout", "fit readouts for every answer on a frozen backbone")
    fr.add_argument("model", help="onepass model folder ('default': the bundled model)")
    fr.add_argument("-o", "--out", required=True, help="new model folder: the model with its readouts")
    fr.add_argument("--only", choices=["protein", "residue"],
                    help="fit only this readout, keeping the folder's other one (default: both)")
    fr.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    fr.add_argument("--hidden", type=positive_int, default=256, help="per-protein: hidden units of each network")
    fr.add_argument("--members", type=positive_int, default=3, help="per-protein: networks per task (seeds), answers averaged")
    fr.add_argument("--termini", type=positive_int, default=40, help="per-protein: residues averaged at each terminus")
    fr.add_argument("--residue-hidden", type=positive_int, default=128, help="per-residue: channels of the first convolution")
    fr.add_argument("--kernel", type=positive_int, default=9, help="per-residue: width of both convolutions (odd)")
    fr.add_argument("--residue-epochs", type=positive_int, default=40,
                    help="per-residue: most passes over the training proteins (fewer when held-out loss stops falling)")
    fr.add_argument("--residue-schedule", choices=["constant", "cosine"], default="cosine",
                    help="per-residue: learning rate 1e-3 throughout, or falling to zero along a cosine over the epochs")
    fr.add_argument("--limit", type=positive_int, help="a random sample of N training proteins (quick check)")
    fr.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    fr.set_defaults(func=cmd_fit_readout)

    cv = command("curves", "plot training loss and validation scores of runs")
    cv.add_argument("runs", nargs="+", help="NAME=run folder (with log.jsonl), or just the folder")
    cv.add_argument("-o", "--out", default="curves.png", help="PNG file")
    cv.add_argument("--x", choices=["micro_batches", "step"], default="micro_batches",
                    help="x axis: compute (micro-batches) or optimizer steps")
    cv.add_argument("--valid-table", action="store_true",
                    help="print the validation losses and accuracies as a markdown table instead of plotting")
    cv.add_argument("--max-step", type=positive_int, help="with --valid-table: only validations up to this step")
    cv.add_argument("--every", type=positive_int, help="with --valid-table: only validations at multiples of this step")
    cv.set_defaults(func=cmd_curves)

    lc = command("learning-curve", "test scores against compute, solved for targets")
    lc.add_argument("reports", nargs="+", help="NAME=path/to/evaluation.json of models trained with different budgets")
    lc.add_argument("--seconds-per-micro-batch", type=float,
                    help="measured cost of one micro-batch on this machine, to print CPU hours as well")
    lc.add_argument("-o", "--out", help="also write the markdown tables here")
    lc.set_defaults(func=cmd_learning_curve)
    return p
