"""The machine a benchmark ran on, and what its hardware can do: the matmul peak and the attention rate
at the model's head size, measured so that a forward pass can be read as a fraction of them."""
from __future__ import annotations

import os
import platform
from typing import Sequence

from .timing import best_time


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


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
            "load_average": load_average(),
            # oneDNN told to use no newer instructions than this (e.g. AVX512_CORE: no bf16 dot products)
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_matmul(dtype, device: str = "cpu", sizes: Sequence[int] = (2048, 3072)) -> dict:
    """The machine's matmul FLOP/s in this precision: the best n x n x n product over a few sizes."""
    import torch

    best = {"flops": 0.0, "n": None}
    with torch.inference_mode():
        for n in sizes:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            s = best_time(lambda: a @ b, device, min_time=0.5, max_repeats=5)
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
        s = best_time(lambda: fn(q, k, v, causal=causal), device, min_time=0.5)
    return 4 * batch * n_head * length * length * head_dim * (0.5 if causal else 1.0) / s


def machine_line(m: dict) -> str:
    """The report's one-line description of the machine of `machine_info` (load average at end added)."""
    isa = f"; oneDNN limited to {m['onednn_max_cpu_isa']} (ONEDNN_MAX_CPU_ISA)" if m.get("onednn_max_cpu_isa") else ""
    return (f"{m['cpu']}, {m['cpu_count']} CPUs, {m['threads']} torch threads, torch {m['torch']}, "
            f"device {m['device']}{' (' + m['gpu'] + ')' if m.get('gpu') else ''}; features "
            f"{', '.join(m['cpu_features']) or 'n/a'}{isa}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in m['load_average'] or [])}, at end "
            f"{', '.join(f'{x:.2f}' for x in m.get('load_average_end') or [])}")
