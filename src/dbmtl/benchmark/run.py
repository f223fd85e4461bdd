"""`dbmtl benchmark`: how fast dbmtl predicts on this machine, beside the alignment baseline, in one run.

Measured, every number in the same run and on the same machine:

- the machine's matmul peak (a large float32 and bfloat16 matmul, best of a few), and the throughput of
  torch's fused attention at the model's head size;
- per model config (`default`: the bundled model or --model; any preset name, e.g. `paper`, with random
  weights, which is fine for speed) and precision: one forward pass at batch 32 x 1024 tokens (the paper's
  setting: 0.033 s per 1024-residue protein on one GPU), its FLOP count (2 x parameters x tokens + the
  attention term, as nanoGPT's estimate_mfu; causal attention counted as half) and the achieved FLOP/s as
  a fraction of the peak of the same precision measured in the same process, and its peak memory;
- end to end: what `dbmtl predict` does (reading, all outputs, writing) on the query proteins, in a child
  process timed by wall clock from start-up to exit, with its peak resident memory; proteins/s,
  residues/s, ms/protein; for half precision and int8, agreement of the labels with float32;
- beside an S4PRED-sized single-sequence predictor (dbmtl.benchmark.s4pred: five 3-layer BiGRUs, hidden
  1024, random weights) timed on the first query proteins in a child process, same device and threads:
  seconds per protein and per residue, and the speed ratio per residue of `dbmtl predict` to it;
- the first prediction (dbmtl.benchmark.latency): the real `dbmtl predict` command on one protein, from a
  cold process to its exit, and the time until its model is loaded;
- the alignment baseline (dbmtl.benchmark.mmseqs): MMseqs2 searching the same proteins against databases
  of growing size, fitted and extrapolated to UniRef50;
- resident memory of a prediction run sampled while it streams many proteins (flat = bounded).

Writes benchmark.json, benchmark.md and (with matplotlib, the `plots` extra) benchmark.png to spec.out.
Every measurement of dbmtl runs in a child process (dbmtl.benchmark.workers), so its peak memory is its own.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .flops import predict_flops, predict_floor_s
from .latency import first_prediction
from .machine import load_average, machine_info
from .memory import memory_curve
from .mmseqs import find_mmseqs, read_real, run_mmseqs_baseline, write_fasta
from .report import check_targets, write_outputs
from .s4pred import speed_ratios
from .workers import run_worker, time_predict

QUERY_REL = Path("unlabeled/mmseqs2_examples/QUERY.fasta")
DB_REL = Path("unlabeled/mmseqs2_examples/DB.fasta.gz")


@dataclass
class BenchmarkSpec:
    """What one benchmark run measures (the options of `dbmtl benchmark`). None: chosen for the machine
    or taken from the data folder, as run_benchmark says."""

    out: str | Path = "benchmark"
    model: str = "default"  # checkpoint of the `default` config
    configs: Sequence[str] = ("default", "paper")  # `default` and/or presets (random weights)
    dtypes: Sequence[str] | None = None  # None: fp32, bf16 (and int8 on a CPU)
    paper_dtypes: Sequence[str] | None = None  # of the presets; None: dtypes without int8
    queries: str | Path | None = None  # None: the data folder's MMseqs2 QUERY.fasta
    proteins: int | None = None  # first N query proteins only
    config_proteins: int = 4  # proteins predicted end to end by preset configs
    batch: int = 32
    length: int = 1024
    mmseqs_sizes: Sequence[int] = (5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000)
    mmseqs_repeats: int = 1
    skip_mmseqs: bool = False
    memory_proteins: int = 0  # 0: no memory curve
    memory_max_length: int | None = None
    memory_dtype: str | None = None  # None: the fastest precision of the default config
    data_dir: str | Path | None = None
    threads: int | None = None  # None: all CPUs
    device: str = "auto"
    batch_tokens: int | None = None  # None: the predictor's default
    profile_proteins: int = 48  # 0: no profile
    s4pred_proteins: int = 20  # first N query proteins through the S4PRED-sized ensemble; 0: skip
    latency_repeats: int = 3  # runs of `dbmtl predict` on the first query protein, the best counts; 0: skip
    plot: bool = True
    command: str | None = None  # the command line, for the report


def run_benchmark(spec: BenchmarkSpec, log=print) -> dict:
    """Everything in the module docstring; returns the results dict (also written to spec.out)."""
    import torch

    from ..data.catalog import resolve_data_dir
    from ..inference.runtime import default_batch_tokens
    from ..readers.fasta import read_fasta

    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = list(spec.configs)
    threads = spec.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    device = spec.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device.startswith("cuda")
    dtypes = list(spec.dtypes or (["fp32", "bf16"] if gpu else ["fp32", "bf16", "int8"]))
    paper_dtypes = list(spec.paper_dtypes or [d for d in dtypes if d != "int8"])
    data = (resolve_data_dir(spec.data_dir) if (spec.queries is None or not spec.skip_mmseqs or spec.memory_proteins)
            else None)
    query = Path(spec.queries) if spec.queries else data / QUERY_REL
    started = time.time()
    results: dict = {"command": spec.command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "machine": machine_info(device, threads), "query_fasta": str(query),
                     "batch": spec.batch, "length": spec.length, "configs": [],
                     "batch_tokens": spec.batch_tokens or default_batch_tokens(device)}
    work = Path(tempfile.mkdtemp(prefix="dbmtl-bench-"))
    try:
        records = list(read_fasta(query, check_duplicates=False))
        if spec.proteins:
            records = records[: spec.proteins]
        subset = work / "query.fasta"
        write_fasta(subset, ((r.id, r.sequence) for r in records))
        lengths = [len(r.sequence) for r in records]
        results["query"] = {"proteins": len(records), "residues": int(sum(lengths)),
                            "mean_length": float(np.mean(lengths)), "max_length": int(max(lengths))}
        log(f"benchmark: {len(records)} query proteins ({sum(lengths):,} residues), device {device}, {threads} threads")

        for config in configs:
            entry = _bench_config(spec, config, dtypes if config == "default" else paper_dtypes, records, subset,
                                  threads, device, work, log)
            results["configs"].append(entry)
        if spec.profile_proteins and "default" in configs:
            best = min((r for r in results["configs"][configs.index("default")]["predict"]),
                       key=lambda r: r["wall_s"])["dtype"]
            prof, _ = run_worker("_profile", {"fasta": str(subset), "proteins": spec.profile_proteins, "dtype": best,
                                              "device": device, "threads": threads, "model": spec.model}, work)
            results["profile"] = prof
            log("profile (" + best + "): " + ", ".join(f"{o['op']} {100 * o['fraction']:.0f}%" for o in prof["ops"][:5]))
        results["s4pred"] = _bench_s4pred(spec, subset, results, threads, device, work, log)
        if spec.latency_repeats:
            lat = first_prediction((records[0].id, records[0].sequence), spec.model, threads, device, work,
                                   repeats=spec.latency_repeats)
            log(f"first prediction: dbmtl predict of one protein ({lat['residues']} residues) in {lat['best_s']:.2f} s "
                f"(best of {lat['repeats']}; model loaded after {lat['model_loaded_best_s']:.2f} s)")
            results["latency"] = lat
        else:
            results["latency"] = {"skipped": "--latency-repeats 0"}

        if spec.skip_mmseqs:
            results["mmseqs"] = {"skipped": "--skip-mmseqs"}
        elif find_mmseqs() is None:
            msg = ("mmseqs not found: the alignment baseline was not run. Install it with "
                   "`bash scripts/setup_benchmark.sh` (Debian package mmseqs2) and rerun.")
            log("benchmark: " + msg)
            results["mmseqs"] = {"skipped": msg}
        else:
            results["mmseqs"] = run_mmseqs_baseline(subset, data / DB_REL, spec.mmseqs_sizes, work / "mmseqs", threads,
                                                    repeats=spec.mmseqs_repeats, log=log)
        if spec.memory_proteins:
            real = read_real(data / DB_REL)
            results["memory"] = memory_curve(real, spec.memory_proteins, spec.memory_max_length, spec.model,
                                             spec.memory_dtype or _fastest(results), threads, device,
                                             spec.batch_tokens, work, log=log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = load_average()
    results["elapsed_s"] = time.time() - started
    results["targets"] = check_targets(results)
    write_outputs(results, out, plot=spec.plot, log=log)
    return results


def _bench_s4pred(spec: BenchmarkSpec, subset: Path, results: dict, threads: int, device: str, work: Path,
                  log) -> dict:
    """The S4PRED-sized ensemble on the first spec.s4pred_proteins query proteins, and the speed ratio per
    residue of each `dbmtl predict` run of the default config to it."""
    if not spec.s4pred_proteins:
        return {"skipped": "--s4pred-proteins 0"}
    s4, t = run_worker("_s4pred", {"fasta": str(subset), "proteins": spec.s4pred_proteins, "threads": threads,
                                   "device": device}, work)
    s4["max_rss_mib"] = t.max_rss_mib
    rows = next((c["predict"] for c in results["configs"] if c["config"] == "default"), [])
    s4["speedup_per_residue"] = speed_ratios(s4, rows)
    log(f"S4PRED-sized ensemble ({s4['params'] / 1e6:.0f}M parameters): {s4['proteins']} proteins in "
        f"{s4['seconds']:.1f} s ({s4['s_per_residue'] * 1000:.2f} ms per residue); dbmtl predict per residue: "
        + (", ".join(f"{dt} {x:.1f}x its speed" for dt, x in s4["speedup_per_residue"].items()) or "not run"))
    return s4


def _fastest(results: dict) -> str:
    rows = next((c["predict"] for c in results["configs"] if c["config"] == "default" and c["predict"]), None)
    return min(rows, key=lambda r: r["wall_s"])["dtype"] if rows else "fp32"


def _bench_config(spec: BenchmarkSpec, config: str, dtypes: list[str], records, subset: Path, threads: int,
                  device: str, work: Path, log) -> dict:
    """Forward passes in every precision, then whole prediction runs (all precisions for `default`, one
    on the first spec.config_proteins proteins for a preset), and the FLOPs those predictions need."""
    batch, length = spec.batch, spec.length
    entry: dict = {"config": config, "forward": [], "predict": []}
    for dt in dtypes:
        fw_spec = {"config": config, "model": spec.model, "dtype": dt, "device": device, "threads": threads,
                   "batch": batch, "length": length, "min_time": 2.0 if config == "default" else 0.0,
                   "max_repeats": 3 if config == "default" else 1}
        fw, _ = run_worker("_forward", fw_spec, work)
        entry["forward"].append(fw)
        frac = f", {100 * fw['fraction_of_peak']:.0f}% of the {dt} matmul peak" if "fraction_of_peak" in fw else ""
        log(f"{config} {dt}: forward {batch}x{length} in {fw['seconds']:.2f} s ({fw['s_per_row'] * 1000:.1f} ms per "
            f"{length}-token protein), {fw['flops_per_s'] / 1e9:.0f} GFLOP/s{frac}, peak RSS {fw['max_rss_mib']:.0f} MiB")
    entry["params"] = entry["forward"][0]["params"]
    entry["kind"] = entry["forward"][0]["kind"]
    if config == "default":
        model_dir, subset_e2e, recs = spec.model, subset, records
    else:
        model_dir = str(work / f"model_{config}")
        run_worker("_save", {"config": config, "dest": model_dir}, work)  # not here: it would grow this process
        recs = records[: spec.config_proteins]
        subset_e2e = work / f"query_{config}.fasta"
        write_fasta(subset_e2e, ((r.id, r.sequence) for r in recs))
    residues = sum(len(r.sequence) for r in recs)
    runs = {}
    e2e_dtypes = dtypes if config == "default" else [("bf16" if "bf16" in dtypes else dtypes[0])]
    for dt in e2e_dtypes:
        dest = work / f"pred_{config}_{dt}"
        t = time_predict(subset_e2e, dest, model_dir, dt, threads, device, spec.batch_tokens, work,
                         log=work / "predict.log")
        row = {"dtype": dt, "proteins": len(recs), "residues": residues, "wall_s": t.wall_s, "cpu_s": t.cpu_s,
               "max_rss_mib": t.max_rss_mib, "proteins_per_s": len(recs) / t.wall_s,
               "residues_per_s": residues / t.wall_s, "ms_per_protein": 1000 * t.wall_s / len(recs)}
        runs[dt] = dest
        if dt != "fp32" and "fp32" in runs:
            row["agreement_with_fp32"] = label_agreement(runs["fp32"], dest)
        entry["predict"].append(row)
        log(f"{config} {dt}: dbmtl predict {len(recs)} proteins in {t.wall_s:.1f} s ({row['proteins_per_s']:.1f} "
            f"proteins/s, {row['residues_per_s']:.0f} residues/s), peak RSS {t.max_rss_mib:.0f} MiB")
    from ..model import ModelConfig
    from ..model.checkpoint import model_folder

    cfg_dir = model_folder(model_dir)
    cfg = ModelConfig.from_saved(json.loads((cfg_dir / "config.json").read_text())["model"])
    need = predict_flops(cfg, [len(r.sequence) for r in recs])
    if need is not None:
        entry["predict_flops"] = need
        entry["predict_floor_s"] = predict_floor_s(need, entry["forward"])
    for path in runs.values():
        shutil.rmtree(path, ignore_errors=True)
    return entry


def label_agreement(reference: Path, other: Path) -> dict:
    """Fraction of identical labels, and the largest probability difference, between two predict runs."""
    same = {"ss3": [0, 0], "ss8": [0, 0], "location": [0, 0], "membrane": [0, 0]}
    max_diff = 0.0
    with open(reference / "predictions.jsonl") as fa, open(other / "predictions.jsonl") as fb:
        for la, lb in zip(fa, fb):
            a, b = json.loads(la), json.loads(lb)
            for key in ("ss3", "ss8"):
                x, y = np.frombuffer(a[key].encode(), np.uint8), np.frombuffer(b[key].encode(), np.uint8)
                same[key][0] += int((x == y).sum())
                same[key][1] += len(x)
                diff = np.abs(np.asarray(a[f"{key}_probabilities"]) - np.asarray(b[f"{key}_probabilities"]))
                max_diff = max(max_diff, float(diff.max()))
            for key in ("location", "membrane"):
                same[key][0] += int(a[key] == b[key])
                same[key][1] += 1
    return {k: (v[0] / v[1] if v[1] else None) for k, v in same.items()} | {"max_probability_difference": max_diff}
