"""`dbmtl benchmark`: how fast dbmtl predicts on this machine, beside the alignment baseline, in one run.

Measured, every number in the same run and on the same machine:

- the machine's matmul peak (a large float32 and bfloat16 matmul, best of a few), and the throughput of
  torch's fused attention at the model's head size;
- per model config (`default`: the bundled model or --model; any preset name, e.g. `paper`, with random
  weights, which is fine for speed) and precision: one forward pass at batch 32 x 1024 tokens (the paper's
  setting: 0.033 s per 1024-residue protein on one GPU), its FLOP count (2 x parameters x tokens + the
  attention term, as nanoGPT's estimate_mfu; causal attention counted as half) and the achieved FLOP/s as
  a fraction of the peak of the same precision measured in the same process, and its peak memory;
- end to end: the real `dbmtl predict` command (a child process: reading, all outputs, writing) on the
  query proteins, timed by wall clock with its peak resident memory; proteins/s, residues/s, ms/protein;
  for half precision and int8, agreement of the labels with float32;
- the alignment baseline (dbmtl.mmseqs_baseline): MMseqs2 searching the same proteins against databases
  of growing size, fitted and extrapolated to UniRef50;
- resident memory of `dbmtl predict` sampled while it streams many proteins (flat = bounded).

Writes benchmark.json, benchmark.md and (with matplotlib, the `bench` extra) benchmark.png to --out.
Forward passes and predictions run in child processes (`python -m dbmtl.benchmark _forward ...` and
`python -m dbmtl.cli predict ...`), so each one's peak memory is its own.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .mmseqs import UNIREF50_SEQUENCES, Timed, find_mmseqs, run_mmseqs_baseline, run_timed

QUERY_REL = Path("unlabeled/mmseqs2_examples/QUERY.fasta")
DB_REL = Path("unlabeled/mmseqs2_examples/DB.fasta.gz")


# -- the machine ------------------------------------------------------------------------------------
def machine_info(device: str, threads: int) -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "device": device,
            "cpu_features": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni") if f" {f}" in flags],
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_time(fn: Callable[[], object], device: str, min_time: float = 1.0, max_repeats: int = 5) -> float:
    """Best wall time of fn() over repeats (after one untimed call), at least one timed run, stopping once
    `min_time` seconds were spent. The best, not the mean: the other load on a shared machine only ever
    adds time."""
    fn()
    _sync(device)
    best, spent, n = math.inf, 0.0, 0
    while n < max_repeats and (n == 0 or spent < min_time):
        t = time.perf_counter()
        fn()
        _sync(device)
        dt = time.perf_counter() - t
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def peak_matmul(dtype, device: str = "cpu", sizes: Sequence[int] = (2048, 3072)) -> dict:
    """The machine's matmul FLOP/s in this precision: the best n x n x n product over a few sizes."""
    import torch

    best = {"flops": 0.0, "n": None}
    with torch.inference_mode():
        for n in sizes:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            s = _best_time(lambda: a @ b, device, min_time=0.5, max_repeats=5)
            if 2 * n**3 / s > best["flops"]:
                best = {"flops": 2 * n**3 / s, "n": n}
    return best


def attention_rate(n_head: int, head_dim: int, dtype, device: str = "cpu", batch: int = 2, length: int = 1024,
                   causal: bool = False, impl: str = "sdpa") -> float:
    """FLOP/s of attention at the model's head size (4 B H T^2 D per call, half of it when causal), with
    torch's scaled_dot_product_attention ("sdpa") or dbmtl's blocked_attention ("blocked"); the default
    shape is one 2,048-token prediction batch."""
    import torch
    import torch.nn.functional as F

    from ..model.transformer import blocked_attention

    q, k, v = (torch.randn(batch, n_head, length, head_dim, device=device).to(dtype) for _ in range(3))
    fn = blocked_attention if impl == "blocked" else (lambda *a, causal: F.scaled_dot_product_attention(*a, is_causal=causal))
    with torch.inference_mode():
        s = _best_time(lambda: fn(q, k, v, causal=causal), device, min_time=0.5)
    return 4 * batch * n_head * length * length * head_dim * (0.5 if causal else 1.0) / s


# -- FLOP counts ------------------------------------------------------------------------------------
def linear_flops_per_token(cfg) -> int:
    """2 x the weights each token multiplies: per layer qkv (3d^2), proj (d^2), MLP (8d^2), and with a
    convolution its depthwise kernel (k d) and linear map (d^2); the output head."""
    d = cfg.n_embd
    conv = cfg.conv_kernel * d + d * d if cfg.conv_kernel else 0
    return 2 * ((12 * d * d + conv) * cfg.n_layer + cfg.vocab_size * d)


def attention_flops(cfg, rows: int, length: int, causal: bool) -> float:
    """Q K^T and A V: 2 x 2 x T^2 x d per row and layer; causal rows need half (the masked half is skipped)."""
    return 4 * cfg.n_layer * rows * length * length * cfg.n_embd * (0.5 if causal else 1.0)


def forward_flops(cfg, batch: int, length: int, causal: bool) -> dict:
    lin = linear_flops_per_token(cfg) * batch * length
    att = attention_flops(cfg, batch, length, causal)
    return {"linear": float(lin), "attention": float(att), "total": float(lin + att)}


def predict_flops(cfg, lengths: Sequence[int], tasks: Sequence[str] = ("ss3", "ss8", "loc", "ms")) -> dict | None:
    """FLOPs that one-pass prediction of proteins of these lengths needs (no padding counted), following
    the prediction's own rows: encoder `<CTRL> residues` (windows of context-1 for per-residue tasks, the
    cropped protein for per-protein tasks). None for decoder models (their rows differ per mode)."""
    from ..data.layouts import layout_for
    from ..inference.windows import residue_windows
    from ..tasks import TASKS
    from ..tokens import Alphabet

    if cfg.kind != "encoder":
        return None
    per_tok = linear_flops_per_token(cfg)
    layout = layout_for(cfg.kind, Alphabet(), cfg.context)
    window = layout.max_residue_length()
    rows: list[int] = []
    for name in tasks:
        for n in lengths:
            if TASKS[name].kind == "residue":
                rows += [e - s + 1 for s, e in residue_windows(n, window)]
            else:
                rows.append(len(layout.crop_protein("A" * n)) + 1)
    r = np.asarray(rows, dtype=np.float64)
    lin = float(per_tok * r.sum())
    att = float(4 * cfg.n_layer * cfg.n_embd * (r * r).sum())
    return {"tokens": int(r.sum()), "rows": len(rows), "linear": lin, "attention": att, "total": lin + att}


# -- one forward pass (child process) ---------------------------------------------------------------
def build_model(config: str, model_path: str | None):
    """`default` (or a checkpoint path): trained weights; a preset name: random weights."""
    from ..inference.predictor import DEFAULT_MODEL
    from ..model import PRESETS, ModelConfig, Transformer
    from ..model.checkpoint import load_checkpoint
    from ..tokens import Alphabet

    if config == "default":
        model, _, _ = load_checkpoint(DEFAULT_MODEL if model_path in (None, "default") else Path(model_path))
        return model.eval()
    if config not in PRESETS:
        raise ValueError(f"unknown config {config!r}: 'default' (the --model checkpoint) or a preset ({', '.join(PRESETS)})")
    import torch

    torch.manual_seed(0)
    return Transformer(ModelConfig(vocab_size=len(Alphabet()), **PRESETS[config])).eval()


def forward_worker(spec: dict) -> dict:
    """Peak matmul, attention rate and one timed forward at batch x length, all in this process."""
    import resource

    import torch

    from ..data.layouts import task_segment
    from ..inference.runtime import quantize_int8, resolve_dtype, set_attention
    from ..tasks import TASKS
    from ..tokens import Alphabet

    torch.set_num_threads(spec["threads"])
    device, precision = spec["device"], spec["dtype"]
    int8 = precision == "int8"
    dtype = resolve_dtype("fp32" if int8 else precision, device)
    model = build_model(spec["config"], spec.get("model"))
    cfg = model.cfg
    causal = cfg.kind != "encoder"
    out = {"config": spec["config"], "dtype": precision, "batch": spec["batch"], "length": spec["length"],
           "params": sum(p.numel() for p in model.parameters()), "kind": cfg.kind, "causal": causal}
    if not int8:
        out["peak"] = peak_matmul(dtype, device, sizes=(4096, 8192) if device.startswith("cuda") else (2048, 3072))
        for impl in ("sdpa", "blocked") if device == "cpu" else ("sdpa",):
            out[f"attention_flops_per_s_{impl}"] = attention_rate(cfg.n_head, cfg.n_embd // cfg.n_head, dtype, device,
                                                                  causal=causal, impl=impl)
    rss_before = _rss_mib()
    model = model.to(device, dtype)
    if int8:
        model = quantize_int8(model)
    # the attention implementation dbmtl.prediction picks for this precision and device
    out["attention"] = "blocked" if device == "cpu" and dtype != torch.float32 else "sdpa"
    set_attention(model, out["attention"])
    B, T = spec["batch"], spec["length"]
    alphabet = Alphabet()
    gen = torch.Generator().manual_seed(0)
    residues = torch.tensor([alphabet.index[a] for a in "ACDEFGHIKLMNPQRSTVWY"])
    tokens = residues[torch.randint(len(residues), (B, T), generator=gen)]
    kw: dict = {"causal": causal}
    if not causal:
        tokens[:, 0] = alphabet.control_id(TASKS["ss3"])
        kw["segments"] = torch.full((B, T), task_segment(TASKS["ss3"]), dtype=torch.long).to(device)
    tokens = tokens.to(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        model(tokens[: max(1, B // 16)], **{k: (v[: max(1, B // 16)] if torch.is_tensor(v) else v) for k, v in kw.items()})
        seconds = _best_time(lambda: model(tokens, **kw), device, min_time=spec.get("min_time", 2.0),
                             max_repeats=spec.get("max_repeats", 3))
    fl = forward_flops(cfg, B, T, causal)
    out.update({"seconds": seconds, "s_per_row": seconds / B, "tokens_per_s": B * T / seconds,
                "flops": fl, "flops_per_s": fl["total"] / seconds})
    if not int8:
        out["fraction_of_peak"] = out["flops_per_s"] / out["peak"]["flops"]
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["rss_before_model_mib"] = rss_before
    if device.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def profile_worker(spec: dict) -> dict:
    """Where the time of real predictions goes: torch.profiler over Predictor.predict on the first
    proteins of the query file; operator self-times as fractions of the total."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ..inference.predictor import Predictor
    from ..readers.fasta import read_fasta

    torch.set_num_threads(spec["threads"])
    records = [r for _, r in zip(range(spec["proteins"]), read_fasta(spec["fasta"], check_duplicates=False))]
    precision = spec["dtype"]
    predictor = Predictor.from_pretrained(spec.get("model") or "default", device=spec["device"],
                                          dtype="fp32" if precision == "int8" else precision,
                                          int8=precision == "int8")
    predictor.predict(records[:4])
    gpu = spec["device"].startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        t = time.perf_counter()
        predictor.predict(records)
        _sync(spec["device"])
        wall = time.perf_counter() - t
    attr = "self_device_time_total" if gpu else "self_cpu_time_total"
    events = [(e.key, getattr(e, attr)) for e in prof.key_averages()]
    total = sum(t for _, t in events) or 1.0
    top = sorted(events, key=lambda kv: -kv[1])[:8]
    return {"proteins": len(records), "dtype": precision, "wall_s": wall,
            "ops": [{"op": k, "fraction": v / total} for k, v in top]}


def _rss_mib(pid: int | str = "self") -> float | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _child(kind: str, spec: dict, work: Path) -> tuple[dict, Timed]:
    """Run forward_worker / profile_worker in a fresh interpreter; returns its result and rusage."""
    path = work / f"{kind}_{os.getpid()}_{time.monotonic_ns()}.json"
    log = work / "children.log"
    t = run_timed([sys.executable, "-m", "dbmtl.benchmark.run", kind, json.dumps(spec), path], log=log)
    if t.returncode != 0:
        raise RuntimeError(f"benchmark {kind} {spec} failed (exit {t.returncode}); see {log}:\n"
                           + log.read_text()[-3000:])
    result = json.loads(path.read_text())
    path.unlink()
    return result, t


# -- end to end: the real `dbmtl predict` -----------------------------------------------------------
def predict_command(fasta: Path, out: Path, model: str, dtype: str, threads: int, device: str,
                    batch_tokens: int | None, extra: Sequence[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "dbmtl.cli", "predict", str(fasta), "-o", str(out), "--quiet", "--model", model,
           "--threads", str(threads), "--device", device]
    cmd += ["--batch-tokens", str(batch_tokens)] if batch_tokens else []
    cmd += ["--int8"] if dtype == "int8" else ["--dtype", dtype]
    return cmd + list(extra)


def run_predict(fasta: Path, out: Path, model: str, dtype: str, threads: int, device: str, batch_tokens: int,
                log: Path, on_poll=None, poll_s: float = 0.5) -> Timed:
    shutil.rmtree(out, ignore_errors=True)
    t = run_timed(predict_command(fasta, out, model, dtype, threads, device, batch_tokens), log=log,
                  on_poll=on_poll, poll_s=poll_s)
    if t.returncode != 0:
        raise RuntimeError(f"dbmtl predict failed (exit {t.returncode}); see {log}:\n" + log.read_text()[-3000:])
    return t


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


def save_random_checkpoint(config: str, dest: Path) -> Path:
    """A preset with random weights as a checkpoint directory, so `dbmtl predict --model` can run it."""
    import torch

    from ..model.checkpoint import save_checkpoint
    from ..tokens import Alphabet

    model = build_model(config, None)
    return save_checkpoint(dest, model, Alphabet(), extra={"note": f"random weights, preset {config} (benchmark)"},
                           dtype=torch.bfloat16)


# -- memory while streaming -------------------------------------------------------------------------
def write_memory_fasta(path: Path, real: Sequence[tuple[str, str]], n: int, max_length: int | None, seed: int = 0) -> int:
    """n residue-shuffled copies of real proteins (their lengths, cropped to max_length), written as FASTA."""
    rng = np.random.default_rng(seed)
    residues = 0
    with open(path, "w") as fh:
        for k in range(n):
            _, seq = real[k % len(real)]
            letters = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
            if max_length and len(letters) > max_length:
                start = int(rng.integers(0, len(letters) - max_length + 1))
                letters = letters[start : start + max_length]
            s = rng.permutation(letters).tobytes().decode("ascii")
            fh.write(f">mem{k}\n{s}\n")
            residues += len(s)
    return residues


def memory_curve(real: Sequence[tuple[str, str]], n: int, max_length: int | None, model: str, dtype: str,
                 threads: int, device: str, batch_tokens: int, work: Path, interval_s: float = 1.0,
                 log=print) -> dict:
    """Stream n proteins through `dbmtl predict`, sampling its resident memory and how many proteins are
    finished (lines of predictions.jsonl, read incrementally) every interval_s seconds."""
    fasta, out = work / "memory.fasta", work / "memory_out"
    residues = write_memory_fasta(fasta, real, n, max_length)
    samples: list[tuple[float, int, float]] = []
    state = {"done": 0, "offset": 0, "start": time.perf_counter()}

    def poll(pid: int) -> None:
        rss = _rss_mib(pid)
        path = out / "predictions.jsonl"
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(state["offset"])
                chunk = fh.read()
            state["offset"] += len(chunk)
            state["done"] += chunk.count(b"\n")
        if rss is not None:
            samples.append((time.perf_counter() - state["start"], state["done"], rss))

    t = run_predict(fasta, out, model, dtype, threads, device, batch_tokens, work / "memory.log", on_poll=poll,
                    poll_s=interval_s)
    out_bytes = sum(f.stat().st_size for f in out.iterdir())
    shutil.rmtree(out, ignore_errors=True)
    fasta.unlink()
    if not samples:
        return {"proteins": n, "wall_s": t.wall_s, "max_rss_mib": t.max_rss_mib, "samples": [],
                "note": "no /proc: resident memory could not be sampled"}
    arr = np.asarray(samples)
    done, rss = arr[:, 1], arr[:, 2]
    # growth once the first chunks are in: RSS against proteins over the samples after 10% of the run
    late = done >= 0.1 * n
    slope = float(np.polyfit(done[late], rss[late], 1)[0]) if late.sum() >= 3 else None
    q = lambda lo, hi: float(rss[(done >= lo * n) & (done <= hi * n)].max()) if ((done >= lo * n) & (done <= hi * n)).any() else None
    result = {"proteins": n, "residues": residues, "max_length": max_length, "dtype": dtype, "model": model,
              "wall_s": t.wall_s, "proteins_per_s": n / t.wall_s, "max_rss_mib": t.max_rss_mib,
              "output_mib": out_bytes / 2**20,
              "rss_max_10_25pct_mib": q(0.10, 0.25), "rss_max_75_100pct_mib": q(0.75, 1.0),
              "slope_mib_per_10k_proteins": None if slope is None else slope * 1e4,
              "samples": [[round(s, 2), int(d), round(r, 1)] for s, d, r in samples]}
    log(f"memory: {n:,} proteins in {t.wall_s:.0f} s, peak RSS {t.max_rss_mib:.0f} MiB, "
        f"slope {result['slope_mib_per_10k_proteins'] or 0:.2f} MiB per 10k proteins")
    return result


# -- the whole run ----------------------------------------------------------------------------------
def run_benchmark(out_dir: str | Path, model: str = "default", configs: Sequence[str] = ("default", "paper"),
                  dtypes: Sequence[str] | None = None, paper_dtypes: Sequence[str] | None = None,
                  data_dir: str | Path | None = None, query_fasta: str | Path | None = None,
                  proteins: int | None = None, config_proteins: int = 4, batch: int = 32, length: int = 1024,
                  mmseqs_sizes: Sequence[int] = (5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000),
                  skip_mmseqs: bool = False, mmseqs_repeats: int = 1, memory_proteins: int = 0,
                  memory_max_length: int | None = None, memory_dtype: str | None = None,
                  threads: int | None = None, device: str = "auto", batch_tokens: int | None = None,
                  profile_proteins: int = 48, plot: bool = True, log=print, command: str | None = None) -> dict:
    """Everything in the module docstring; returns the results dict (also written to out_dir)."""
    import torch

    from ..data.catalog import resolve_data_dir
    from .mmseqs import read_real
    from ..inference.runtime import default_batch_tokens
    from ..readers.fasta import read_fasta

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device.startswith("cuda")
    dtypes = list(dtypes or (["fp32", "bf16"] if gpu else ["fp32", "bf16", "int8"]))
    paper_dtypes = list(paper_dtypes or [d for d in dtypes if d != "int8"])
    data = resolve_data_dir(data_dir) if (query_fasta is None or not skip_mmseqs or memory_proteins) else None
    query = Path(query_fasta) if query_fasta else data / QUERY_REL
    started = time.time()
    results: dict = {"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "machine": machine_info(device, threads), "query_fasta": str(query),
                     "batch": batch, "length": length, "configs": [],
                     "batch_tokens": batch_tokens or default_batch_tokens(device)}
    work = Path(tempfile.mkdtemp(prefix="dbmtl-bench-"))
    try:
        records = list(read_fasta(query, check_duplicates=False))
        if proteins:
            records = records[:proteins]
        subset = work / "query.fasta"
        with open(subset, "w") as fh:
            for r in records:
                fh.write(f">{r.id}\n{r.sequence}\n")
        lengths = [len(r.sequence) for r in records]
        results["query"] = {"proteins": len(records), "residues": int(sum(lengths)),
                            "mean_length": float(np.mean(lengths)), "max_length": int(max(lengths))}
        log(f"benchmark: {len(records)} query proteins ({sum(lengths):,} residues), device {device}, {threads} threads")

        for config in configs:
            entry = _bench_config(config, model, dtypes if config == "default" else paper_dtypes, records, subset,
                                  batch, length, threads, device, batch_tokens, config_proteins, work, log)
            results["configs"].append(entry)
        if profile_proteins and "default" in configs:
            best = min((r for r in results["configs"][configs.index("default")]["predict"]),
                       key=lambda r: r["wall_s"])["dtype"]
            prof, _ = _child("_profile", {"fasta": str(subset), "proteins": profile_proteins, "dtype": best,
                                          "device": device, "threads": threads, "model": model}, work)
            results["profile"] = prof
            log("profile (" + best + "): " + ", ".join(f"{o['op']} {100 * o['fraction']:.0f}%" for o in prof["ops"][:5]))

        if skip_mmseqs:
            results["mmseqs"] = {"skipped": "--skip-mmseqs"}
        elif find_mmseqs() is None:
            msg = ("mmseqs not found: the alignment baseline was not run. Install it with "
                   "`bash scripts/setup_benchmark.sh` (Debian package mmseqs2) and rerun.")
            log("benchmark: " + msg)
            results["mmseqs"] = {"skipped": msg}
        else:
            results["mmseqs"] = run_mmseqs_baseline(subset, data / DB_REL, mmseqs_sizes, work / "mmseqs", threads,
                                                    repeats=mmseqs_repeats, log=log)
        if memory_proteins:
            real = read_real(data / DB_REL)
            results["memory"] = memory_curve(real, memory_proteins, memory_max_length, model,
                                             memory_dtype or _fastest(results), threads, device, batch_tokens,
                                             work, log=log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["elapsed_s"] = time.time() - started
    results["targets"] = check_targets(results)
    write_outputs(results, out, plot=plot, log=log)
    return results


def _fastest(results: dict) -> str:
    rows = next((c["predict"] for c in results["configs"] if c["config"] == "default" and c["predict"]), None)
    return min(rows, key=lambda r: r["wall_s"])["dtype"] if rows else "fp32"


def _bench_config(config, model, dtypes, records, subset, batch, length, threads, device, batch_tokens,
                  config_proteins, work, log) -> dict:
    entry: dict = {"config": config, "forward": [], "predict": []}
    for dt in dtypes:
        spec = {"config": config, "model": model, "dtype": dt, "device": device, "threads": threads,
                "batch": batch, "length": length, "min_time": 2.0 if config == "default" else 0.0,
                "max_repeats": 3 if config == "default" else 1}
        fw, _ = _child("_forward", spec, work)
        entry["forward"].append(fw)
        frac = f", {100 * fw['fraction_of_peak']:.0f}% of the {dt} matmul peak" if "fraction_of_peak" in fw else ""
        log(f"{config} {dt}: forward {batch}x{length} in {fw['seconds']:.2f} s ({fw['s_per_row'] * 1000:.1f} ms per "
            f"{length}-token protein), {fw['flops_per_s'] / 1e9:.0f} GFLOP/s{frac}, peak RSS {fw['max_rss_mib']:.0f} MiB")
    entry["params"] = entry["forward"][0]["params"]
    entry["kind"] = entry["forward"][0]["kind"]
    if config == "default":
        model_dir, subset_e2e, recs = model, subset, records
    else:
        model_dir = str(work / f"model_{config}")
        _child("_save", {"config": config, "dest": model_dir}, work)  # not here: it would grow this process
        recs = records[:config_proteins]
        subset_e2e = work / f"query_{config}.fasta"
        with open(subset_e2e, "w") as fh:
            for r in recs:
                fh.write(f">{r.id}\n{r.sequence}\n")
    residues = sum(len(r.sequence) for r in recs)
    runs = {}
    e2e_dtypes = dtypes if config == "default" else [("bf16" if "bf16" in dtypes else dtypes[0])]
    for dt in e2e_dtypes:
        dest = work / f"pred_{config}_{dt}"
        t = run_predict(subset_e2e, dest, model_dir, dt, threads, device, batch_tokens, work / "predict.log")
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
    from ..inference.predictor import DEFAULT_MODEL

    cfg_dir = DEFAULT_MODEL if model_dir == "default" else Path(model_dir)
    cfg = ModelConfig.from_dict(json.loads((cfg_dir / "config.json").read_text())["model"])
    need = predict_flops(cfg, [len(r.sequence) for r in recs])
    if need is not None:
        entry["predict_flops"] = need
        floors = {}
        for fw in entry["forward"]:
            if "peak" in fw:
                rate = fw[f"attention_flops_per_s_{fw['attention']}"]
                floors[fw["dtype"]] = need["linear"] / fw["peak"]["flops"] + need["attention"] / rate
        entry["predict_floor_s"] = floors
    for dt, path in runs.items():
        shutil.rmtree(path, ignore_errors=True)
    return entry


# -- targets, report, plot --------------------------------------------------------------------------
def check_targets(r: dict) -> list[dict]:
    targets = []
    default = next((c for c in r["configs"] if c["config"] == "default"), None)
    mm = r.get("mmseqs", {})
    if default and default["predict"]:
        best = min(default["predict"], key=lambda x: x["wall_s"])
        if "easy_search" in mm:
            es = mm["easy_search"]["wall_s"]
            targets.append({"target": f"dbmtl predict (default model, all outputs) on the {best['proteins']} query proteins "
                                      f"faster than mmseqs easy-search against {mm['easy_search']['size']:,}",
                            "dbmtl_s": best["wall_s"], "dbmtl_dtype": best["dtype"], "mmseqs_s": es,
                            "ratio": es / best["wall_s"], "met": best["wall_s"] < es})
        fits = mm.get("fits", {})
        primary = "linear_large" if "linear_large" in fits else ("linear_all" if "linear_all" in fits else None)
        if primary:
            ms = fits[primary]["ms_per_query_at_uniref50"]
            targets.append({"target": "at least 100x faster per protein than the MMseqs2 search extrapolated to UniRef50 "
                                      f"(fit `{primary}`; the other fits in the MMseqs2 section)",
                            "dbmtl_ms_per_protein": best["ms_per_protein"], "mmseqs_ms_per_query": ms,
                            "ratio": ms / best["ms_per_protein"], "met": ms / best["ms_per_protein"] >= 100,
                            "ratios_other_fits": {k: f["ms_per_query_at_uniref50"] / best["ms_per_protein"]
                                                  for k, f in fits.items()}})
    for c in r["configs"]:
        for fw in c["forward"]:
            if "fraction_of_peak" in fw:
                targets.append({"target": f"forward {fw['batch']}x{fw['length']} of `{c['config']}` ({fw['dtype']}) "
                                          f">= 50% of the {fw['dtype']} matmul peak",
                                "fraction": fw["fraction_of_peak"], "met": fw["fraction_of_peak"] >= 0.5})
    mem = r.get("memory")
    if mem and mem.get("rss_max_10_25pct_mib") and mem.get("rss_max_75_100pct_mib"):
        growth = mem["rss_max_75_100pct_mib"] - mem["rss_max_10_25pct_mib"]
        targets.append({"target": f"resident memory flat while predicting {mem['proteins']:,} proteins "
                                  "(peak of the last quarter within 5% of the peak at 10-25%)",
                        "growth_mib": growth, "met": growth <= 0.05 * mem["rss_max_10_25pct_mib"]})
    return targets


def _g(x: float, unit: str = "") -> str:
    if x is None:
        return "n/a"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def to_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Command: `{r.get('command') or 'dbmtl benchmark'}`", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} CPUs, {m['threads']} torch threads, torch {m['torch']}, "
             f"device {m['device']}{' (' + m['gpu'] + ')' if m.get('gpu') else ''}; features "
             f"{', '.join(m['cpu_features']) or 'n/a'}; load average at start "
             f"{', '.join(f'{x:.2f}' for x in m['load_average'] or [])}, at end "
             f"{', '.join(f'{x:.2f}' for x in m.get('load_average_end') or [])}. Run: {r['started']}, "
             f"{r['elapsed_s'] / 60:.1f} min.", "",
             f"Query proteins: {r['query']['proteins']} ({r['query']['residues']:,} residues, mean length "
             f"{r['query']['mean_length']:.0f}, longest {r['query']['max_length']}) from `{r['query_fasta']}`.", ""]
    lines += ["### dbmtl", "",
              f"Forward: one pass at batch {r['batch']} x {r['length']} tokens (random residues; best of up to 3). "
              "FLOPs = 2 x weights x tokens + attention (4 x layers x T^2 x d per row, half for causal rows); "
              "peak = the best float32 / bfloat16 matmul in the same process. End to end: `dbmtl predict` "
              "(all outputs: SS3, SS8, location, membrane; files written), wall clock of the whole command "
              "including start-up and model loading.", "",
              f"| config | params | precision | attention | forward s per protein (batch {r['batch']} x {r['length']}) | forward FLOP/s | matmul peak | "
              "fraction of peak | forward peak RSS | predict proteins | proteins/s | residues/s | ms/protein | "
              "predict peak RSS |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in r["configs"]:
        pred = {p["dtype"]: p for p in c["predict"]}
        for fw in c["forward"]:
            p = pred.get(fw["dtype"], {})
            peak = fw.get("peak", {}).get("flops")
            lines.append(
                f"| {c['config']} ({c['kind']}) | {c['params'] / 1e6:.1f}M | {fw['dtype']} | {fw['attention']} | {fw['s_per_row']:.4f} | "
                f"{_g(fw['flops_per_s'], 'FLOP/s')} | {_g(peak, 'FLOP/s') if peak else 'n/a'} | "
                f"{('%.0f%%' % (100 * fw['fraction_of_peak'])) if 'fraction_of_peak' in fw else 'n/a (int8)'} | "
                f"{fw['max_rss_mib']:.0f} MiB | " + (f"{p['proteins']} | {p['proteins_per_s']:.2f} | {p['residues_per_s']:,.0f} | "
                f"{p['ms_per_protein']:.1f} | {p['max_rss_mib']:.0f} MiB |" if p else "not run | | | | |"))
    agree = [(c["config"], p) for c in r["configs"] for p in c["predict"] if "agreement_with_fp32" in p]
    if agree:
        lines += ["", "Agreement of lower-precision predictions with float32 on the same proteins:", "",
                  "| config | precision | SS3 residues | SS8 residues | location | membrane | max probability difference |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for name, p in agree:
            a = p["agreement_with_fp32"]
            lines.append(f"| {name} | {p['dtype']} | {100 * a['ss3']:.2f}% | {100 * a['ss8']:.2f}% | "
                         f"{100 * a['location']:.1f}% | {100 * a['membrane']:.1f}% | {a['max_probability_difference']:.3f} |")
    for c in r["configs"]:
        if c.get("predict_flops"):
            need = c["predict_flops"]
            att = {fw["dtype"]: (fw["attention"], fw.get(f"attention_flops_per_s_{fw['attention']}")) for fw in c["forward"]}
            lines += ["", f"Work that predicting the query proteins needs (`{c['config']}`, no padding): "
                      f"{need['rows']:,} rows, {need['tokens']:,} tokens, {_g(need['linear'], 'FLOP')} in linear layers, "
                      f"{_g(need['attention'], 'FLOP')} in attention. Floor at the rates measured in the same run (linear "
                      "layers at the matmul peak, attention at the measured rate of the implementation in use, one "
                      "2,048-token batch of 2 x 1024): "
                      + ", ".join(f"{dt} {s:.1f} s (attention: {att[dt][0]}, {_g(att[dt][1], 'FLOP/s')})"
                                  for dt, s in c.get("predict_floor_s", {}).items()) + "."]
    if r.get("profile"):
        pr = r["profile"]
        lines += ["", f"Profile of `Predictor.predict` ({pr['dtype']}, first {pr['proteins']} query proteins, "
                  "torch.profiler self CPU time): " + ", ".join(f"`{o['op']}` {100 * o['fraction']:.0f}%" for o in pr["ops"])]
    mm = r.get("mmseqs", {})
    lines += ["", "### MMseqs2 (alignment baseline)", ""]
    if "skipped" in mm:
        lines.append(f"Not run: {mm['skipped']}")
    else:
        lines += [f"MMseqs2 {mm['version']}, {mm['threads']} threads, sensitivity {mm['sensitivity']}, "
                  f"{mm['queries']} queries. Databases: the first N of `{Path(mm['db_source']).name}` "
                  f"({mm['real_sequences']:,} real sequences), beyond that residue-shuffled copies. "
                  "`createdb` is database preparation (once per database); search = `mmseqs search` + `convertalis`.", "",
                  "| database sequences | real | shuffled | residues | createdb s | search s | ms per query | hits | queries with hits | search peak RSS |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for e in mm["sizes"]:
            lines.append(f"| {e['size']:,} | {e['real']:,} | {e['shuffled']:,} | {e['residues']:,} | {e['createdb_wall_s']:.1f} | "
                         f"{e['search_wall_s']:.1f} | {e['ms_per_query']:.1f} | {e['hits']:,} | {e['hit_queries']} | "
                         f"{e['search_max_rss_mib']:.0f} MiB |")
        es = mm["easy_search"]
        lines += ["", f"`mmseqs easy-search` (query file against {es['size']:,} sequences, end to end): "
                  f"{es['wall_s']:.1f} s wall, {es['ms_per_query']:.1f} ms per query, peak RSS {es['max_rss_mib']:.0f} MiB."]
        descriptions = {"linear_large": "linear, databases larger than the real set (primary: constant marginal cost)",
                        "linear_real": "linear, real sequences only", "linear_all": "linear, every size",
                        "power_all": "power law with offset, every size"}
        if mm.get("fits"):
            lines += ["", f"Fits of search seconds t against database sequences N, extrapolated to UniRef50 "
                      f"({UNIREF50_SEQUENCES / 1e6:.0f}M sequences); relative residuals in the order of the sizes.", "",
                      "| fit | sizes | model | residuals | rms error | s per query at UniRef50 | interval |",
                      "|---|---|---|---|---:|---:|---|"]
            for name, f in mm["fits"].items():
                if name.startswith("power"):
                    model = f"t = {f['a_s']:.2f} + {f['b']:.3g} N^{f['c']:.3f}" + (
                        f" (c {f['c_jackknife'][0]:.2f}-{f['c_jackknife'][1]:.2f}, jackknife)" if f.get("c_jackknife") else "")
                    interval = "jackknife"
                else:
                    model = (f"t = {f['a_s']:.2f} (± {f['a_se_s']:.2f}) + {f['b_s_per_million']:.1f} "
                             f"(± {f['b_se_s_per_million']:.1f}) N / 1e6")
                    interval = "95% (coefficients)"
                rng = f.get("ms_per_query_range")
                lines.append(f"| {descriptions.get(name, name)} | {', '.join(_short(n) for n in f['sizes'])} | {model} | "
                             f"{', '.join(f'{100 * x:+.0f}%' for x in f['relative_residuals'])} | "
                             f"{100 * f['rms_relative_error']:.1f}% | {f['ms_per_query_at_uniref50'] / 1000:.2f} | "
                             + (f"{rng[0] / 1000:.2f}-{rng[1] / 1000:.2f} s ({interval})" if rng else "n/a") + " |")
    mem = r.get("memory")
    if mem:
        lines += ["", "### Memory while streaming", "",
                  f"`dbmtl predict` ({mem['dtype']}, model `{mem['model']}`) on {mem['proteins']:,} residue-shuffled copies of "
                  f"real proteins ({mem['residues']:,} residues"
                  + (f", cropped to at most {mem['max_length']} residues" if mem.get("max_length") else "")
                  + f"): {mem['wall_s']:.0f} s, {mem['proteins_per_s']:.0f} proteins/s, {mem['output_mib']:.0f} MiB written; "
                  f"RSS sampled every second: peak {mem['max_rss_mib']:.0f} MiB; highest at 10-25% of the run "
                  f"{_mib(mem.get('rss_max_10_25pct_mib'))}, at 75-100% {_mib(mem.get('rss_max_75_100pct_mib'))}; "
                  f"fitted growth after 10%: {_num(mem.get('slope_mib_per_10k_proteins'))} MiB per 10,000 proteins."]
    if r.get("targets"):
        lines += ["", "### Targets", "", "| target | measured | met |", "|---|---|---|"]
        for t in r["targets"]:
            lines.append(f"| {t['target']} | {_target_measure(t)} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _short(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def _mib(x) -> str:
    return "n/a" if x is None else f"{x:.0f} MiB"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _target_measure(t: dict) -> str:
    if "mmseqs_s" in t:
        return f"dbmtl {t['dbmtl_s']:.1f} s ({t['dbmtl_dtype']}) vs MMseqs2 {t['mmseqs_s']:.1f} s (MMseqs2 / dbmtl = {t['ratio']:.2f})"
    if "mmseqs_ms_per_query" in t:
        others = ", ".join(f"{k} {v:.0f}x" for k, v in t.get("ratios_other_fits", {}).items())
        return (f"dbmtl {t['dbmtl_ms_per_protein']:.0f} ms vs MMseqs2 {t['mmseqs_ms_per_query'] / 1000:.1f} s per protein "
                f"({t['ratio']:.0f}x; by fit: {others})")
    if "fraction" in t:
        return f"{100 * t['fraction']:.0f}%"
    if "growth_mib" in t:
        return f"{t['growth_mib']:+.1f} MiB"
    return ""


def plot_results(r: dict, path: Path) -> bool:
    """Seconds per protein against database size (MMseqs2 measured + fits; dbmtl flat), and the memory curve."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    mem = r.get("memory")
    fig, axes = plt.subplots(1, 2 if mem and mem.get("samples") else 1, figsize=(13 if mem else 7, 5), squeeze=False)
    ax = axes[0, 0]
    mm = r.get("mmseqs", {})
    xs = np.logspace(3, math.log10(UNIREF50_SEQUENCES * 1.5), 200)
    if mm.get("sizes"):
        sizes = [e["size"] for e in mm["sizes"]]
        ax.plot(sizes, [e["ms_per_query"] / 1000 for e in mm["sizes"]], "o", color="C3", label="MMseqs2 search, measured")
        q = mm["queries"]
        fits = mm.get("fits", {})
        fl = fits.get("linear_large") or fits.get("linear_all")
        fp = fits.get("power_all")
        if fp:
            ax.plot(xs, (fp["a_s"] + fp["b"] * xs ** fp["c"]) / q, ":", color="C3",
                    label=f"MMseqs2, power-law fit, all sizes (c = {fp['c']:.2f})")
        if fits.get("linear_real"):
            fr = fits["linear_real"]
            ax.plot(xs, (fr["a_s"] + fr["b_s_per_million"] * xs / 1e6) / q, "--", color="C1", lw=0.8,
                    label="MMseqs2, linear fit, real sequences only")
        if fl:
            ax.plot(xs, (fl["a_s"] + fl["b_s_per_million"] * xs / 1e6) / q, "-", color="C3",
                    label=f"MMseqs2, linear fit, N >= {_short(min(fl['sizes']))} (primary)")
            lo, hi = fl["ms_per_query_range"]
            ax.errorbar([UNIREF50_SEQUENCES], [fl["ms_per_query_at_uniref50"] / 1000],
                        yerr=[[max(1e-9, (fl["ms_per_query_at_uniref50"] - lo) / 1000)], [(hi - fl["ms_per_query_at_uniref50"]) / 1000]],
                        fmt="s", color="C3", capsize=4, label="primary fit at UniRef50 (95%)")
        es = mm.get("easy_search")
        if es:
            ax.plot([es["size"]], [es["ms_per_query"] / 1000], "^", color="C1", label="MMseqs2 easy-search, measured")
    colors, styles = ["C0", "C2", "C4", "C8"], {"fp32": "--", "bf16": "-.", "int8": ":", "fp16": (0, (6, 2))}
    for i, c in enumerate(r["configs"]):
        for p in c["predict"]:
            ax.plot(xs, np.full_like(xs, p["ms_per_protein"] / 1000), linestyle=styles.get(p["dtype"], "--"),
                    color=colors[i % len(colors)],
                    label=f"dbmtl {c['config']} {p['dtype']} (predict, {p['proteins']} proteins)")
    ax.axvline(UNIREF50_SEQUENCES, color="gray", lw=0.8)
    ax.annotate("UniRef50", (UNIREF50_SEQUENCES, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                color="gray", ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence database size (sequences)")
    ax.set_ylabel("seconds per query protein (wall clock)")
    ax.set_title(f"{r['machine']['cpu']}, {r['machine']['threads']} threads")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    if mem and mem.get("samples"):
        s = np.asarray(mem["samples"])
        ax2 = axes[0, 1]
        ax2.plot(s[:, 1], s[:, 2], "-", color="C0")
        ax2.set_xlabel("proteins predicted and written")
        ax2.set_ylabel("resident memory of dbmtl predict (MiB)")
        ax2.set_ylim(0, max(s[:, 2]) * 1.2)
        ax2.set_title(f"dbmtl predict, {mem['proteins']:,} proteins ({mem['dtype']})")
        ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_outputs(r: dict, out: Path, plot: bool = True, log=print) -> None:
    (out / "benchmark.json").write_text(json.dumps(r, indent=1))
    md = to_markdown(r)
    if plot:
        if plot_results(r, out / "benchmark.png"):
            md += "\n![seconds per protein against database size; memory curve](benchmark.png)\n"
        else:
            log("benchmark: matplotlib is not installed (pip install -e .[plots]); no plot written")
    (out / "benchmark.md").write_text(md)
    log(f"benchmark: written {out / 'benchmark.json'}, {out / 'benchmark.md'}")


def run_from_args(args) -> int:
    """`dbmtl benchmark` (the options are defined in dbmtl.cli)."""
    split = lambda s: [x for x in s.split(",") if x] if s else None
    run_benchmark(args.out, model=args.model, configs=split(args.configs), dtypes=split(args.dtypes),
                  data_dir=args.data_dir, query_fasta=args.queries, proteins=args.proteins,
                  config_proteins=args.config_proteins, batch=args.batch, length=args.length,
                  mmseqs_sizes=[int(x) for x in split(args.mmseqs_sizes)], skip_mmseqs=args.skip_mmseqs,
                  mmseqs_repeats=args.mmseqs_repeats, memory_proteins=args.memory_proteins,
                  memory_max_length=args.memory_max_length, threads=args.threads, device=args.device,
                  batch_tokens=args.batch_tokens, plot=not args.no_plot,
                  command="dbmtl " + " ".join(sys.argv[1:]) if sys.argv and "dbmtl" in sys.argv[0] else None,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    print(Path(args.out) / "benchmark.md")
    return 0


def _main(argv: list[str]) -> int:
    """Child-process entry points: `python -m dbmtl.benchmark _forward|_profile SPEC_JSON OUT_JSON`."""
    kind, spec, dest = argv
    fn = {"_forward": forward_worker, "_profile": profile_worker,
          "_save": lambda spec: str(save_random_checkpoint(spec["config"], Path(spec["dest"])))}[kind]
    Path(dest).write_text(json.dumps(fn(json.loads(spec))))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
