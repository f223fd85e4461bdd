"""The benchmark's child processes: `python -m dbmtl.benchmark KIND SPEC_JSON OUT_JSON`.

Each measurement runs in a fresh interpreter so that its peak memory is its own, not the benchmark's:

- `_forward`: the matmul peak, the attention rate and one timed forward pass;
- `_profile`: where the time of real predictions goes (torch.profiler);
- `_predict`: what `dbmtl predict` does (predict_fasta with the options the command would use), timed
  from outside, start-up and model loading included;
- `_save`: a preset with random weights as a checkpoint, for `_predict` to load;
- `_s4pred`: the S4PRED-sized speed comparator (dbmtl.benchmark.s4pred).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from .flops import forward_flops
from .machine import attention_rate, peak_matmul
from .s4pred import s4pred_worker
from .timing import Timed, best_time, rss_mib, run_timed, sync

CHUNK_SIZE = 256  # proteins `dbmtl predict` predicts and writes at a time unless told otherwise


def build_model(config: str, model_path: str | None):
    """`default` (or a checkpoint path): trained weights; a preset name: random weights."""
    from ..model import PRESETS, ModelConfig, Transformer
    from ..model.checkpoint import load_checkpoint, model_folder
    from ..tokens import Alphabet

    if config == "default":
        model, _, _ = load_checkpoint(model_folder(model_path or "default"))
        return model.eval()
    if config not in PRESETS:
        raise ValueError(f"unknown config {config!r}: 'default' (the --model checkpoint) or a preset ({', '.join(PRESETS)})")
    import torch

    torch.manual_seed(0)
    # the paper's decoder at the preset's size, as the benchmark has always measured it
    return Transformer(ModelConfig(vocab_size=len(Alphabet()), **{"kind": "decoder", **PRESETS[config]})).eval()


def save_random_checkpoint(config: str, dest: Path) -> Path:
    """A preset with random weights as a checkpoint directory, so that a prediction can load it."""
    import torch

    from ..model.checkpoint import save_checkpoint
    from ..tokens import Alphabet

    model = build_model(config, None)
    return save_checkpoint(dest, model, Alphabet(), extra={"note": f"random weights, preset {config} (benchmark)"},
                           dtype=torch.bfloat16)


def forward_worker(spec: dict) -> dict:
    """Peak matmul, attention rate and one timed forward at batch x length, all in this process."""
    import resource

    import torch

    from ..data.layouts import task_segment
    from ..inference.runtime import auto_attention, quantize_int8, resolve_dtype, set_attention
    from ..tasks import TASKS
    from ..tokens import Alphabet

    torch.set_num_threads(spec["threads"])
    device, precision = spec["device"], spec["dtype"]
    int8 = precision == "int8"
    dtype = resolve_dtype("fp32" if int8 else precision, device)
    model = build_model(spec["config"], spec.get("model"))
    cfg = model.cfg
    causal = cfg.kind == "decoder"
    out = {"config": spec["config"], "dtype": precision, "batch": spec["batch"], "length": spec["length"],
           "params": sum(p.numel() for p in model.parameters()), "kind": cfg.kind, "causal": causal}
    if not int8:
        out["peak"] = peak_matmul(dtype, device, sizes=(4096, 8192) if device.startswith("cuda") else (2048, 3072))
        for impl in ("sdpa", "blocked") if device == "cpu" else ("sdpa",):
            out[f"attention_flops_per_s_{impl}"] = attention_rate(cfg.n_head, cfg.n_embd // cfg.n_head, dtype, device,
                                                                  causal=causal, impl=impl)
    rss_before = rss_mib()
    model = model.to(device, dtype)
    if int8:
        model = quantize_int8(model)
    out["attention"] = auto_attention(torch.device(device), dtype)  # the kernel prediction picks
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
        seconds = best_time(lambda: model(tokens, **kw), device, min_time=spec.get("min_time", 2.0),
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


def load_predictor(spec: dict):
    """The Predictor `dbmtl predict --model M --device D --threads N [--batch-tokens B] --dtype P` (or
    `--int8` for precision int8) builds."""
    import torch

    from ..inference import Predictor

    torch.set_num_threads(spec["threads"])
    precision = spec["dtype"]
    return Predictor.from_pretrained(spec.get("model") or "default", device=spec["device"],
                                     batch_tokens=spec.get("batch_tokens"),
                                     dtype="fp32" if precision == "int8" else precision, int8=precision == "int8")


def profile_worker(spec: dict) -> dict:
    """Where the time of real predictions goes: torch.profiler over Predictor.predict on the first
    proteins of the query file; operator self-times as fractions of the total."""
    from torch.profiler import ProfilerActivity, profile

    from ..readers.fasta import read_fasta

    predictor = load_predictor(spec)
    records = [r for _, r in zip(range(spec["proteins"]), read_fasta(spec["fasta"], check_duplicates=False))]
    predictor.predict(records[:4])
    gpu = spec["device"].startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        t = time.perf_counter()
        predictor.predict(records)
        sync(spec["device"])
        wall = time.perf_counter() - t
    attr = "self_device_time_total" if gpu else "self_cpu_time_total"
    events = [(e.key, getattr(e, attr)) for e in prof.key_averages()]
    total = sum(t for _, t in events) or 1.0
    top = sorted(events, key=lambda kv: -kv[1])[:8]
    return {"proteins": len(records), "dtype": spec["dtype"], "wall_s": wall,
            "ops": [{"op": k, "fraction": v / total} for k, v in top]}


def predict_worker(spec: dict) -> dict:
    """All outputs of every protein of spec["fasta"] written to spec["out"], as `dbmtl predict` does."""
    from ..inference import predict_fasta
    from ..tasks import OUTPUT_TASKS

    run = predict_fasta(load_predictor(spec), spec["fasta"], spec["out"], tasks=OUTPUT_TASKS,
                        chunk_size=spec.get("chunk_size", CHUNK_SIZE))
    return {"written": run.written}


WORKERS = {"_forward": forward_worker, "_profile": profile_worker, "_predict": predict_worker,
           "_save": lambda spec: str(save_random_checkpoint(spec["config"], Path(spec["dest"]))),
           "_s4pred": s4pred_worker}


def main(argv: list[str]) -> int:
    """`KIND SPEC_JSON OUT_JSON`: run one worker, write its result."""
    kind, spec, dest = argv
    Path(dest).write_text(json.dumps(WORKERS[kind](json.loads(spec))))
    return 0


def run_worker(kind: str, spec: dict, work: Path, log: Path | None = None, on_poll=None,
               poll_s: float = 0.5) -> tuple[dict, Timed]:
    """Run one worker in a fresh interpreter; its result and its wall time, CPU time and peak memory."""
    path = work / f"{kind}_{os.getpid()}_{time.monotonic_ns()}.json"
    log = log or work / "children.log"
    t = run_timed([sys.executable, "-m", "dbmtl.benchmark", kind, json.dumps(spec), path], log=log,
                  on_poll=on_poll, poll_s=poll_s)
    if t.returncode != 0:
        raise RuntimeError(f"benchmark {kind} {spec} failed (exit {t.returncode}); see {log}:\n"
                           + log.read_text()[-3000:])
    result = json.loads(path.read_text())
    path.unlink()
    return result, t


def time_predict(fasta: Path, out: Path, model: str, dtype: str, threads: int, device: str,
                 batch_tokens: int | None, work: Path, log: Path | None = None, on_poll=None,
                 poll_s: float = 0.5) -> Timed:
    """A whole prediction run of `fasta` into `out` in a child process, timed end to end."""
    shutil.rmtree(out, ignore_errors=True)
    spec = {"fasta": str(fasta), "out": str(out), "model": model, "dtype": dtype, "threads": threads,
            "device": device, "batch_tokens": batch_tokens, "chunk_size": CHUNK_SIZE}
    _, t = run_worker("_predict", spec, work, log=log, on_poll=on_poll, poll_s=poll_s)
    return t
