"""How a model runs at prediction time: number format, int8 layers, attention kernels, batch size.

A predictor never changes the model it is given: a half-precision, int8 or blocked-attention run works
on its own copy.
"""
from __future__ import annotations

import copy
import os
import warnings

import torch

from ..model.transformer import SelfAttention

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}
ATTENTION = ("sdpa", "blocked")


def cpu_has_bf16_dot() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX-BF16). Only there is bf16
    faster than float32; elsewhere bf16 matmuls are emulated and run at about half speed."""
    try:
        with open("/proc/cpuinfo") as fh:
            return any(flag in line.split() for line in fh if line.startswith("flags")
                       for flag in ("avx512_bf16", "amx_bf16"))
    except OSError:
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype:
    """"auto": bfloat16 on a GPU that supports it and on a CPU with bf16 dot products, else float32;
    otherwise a name from DTYPES."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        dev = torch.device(device)
        if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if dev.type == "cpu" and cpu_has_bf16_dot():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of every nn.Linear (weights int8, activations quantized per batch; CPU)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice in favour of torchao
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def set_attention(model: torch.nn.Module, attention: str) -> None:
    """Choose the attention implementation of every layer ("sdpa" or "blocked")."""
    for module in model.modules():
        if isinstance(module, SelfAttention):
            module.attention = attention


def auto_attention(device: torch.device, dtype: torch.dtype) -> str:
    """Half precision on a CPU: plain bf16 matmuls in cache-sized blocks beat the fused kernel, which
    computes in float32 (docs/performance.md); elsewhere torch's SDPA kernels."""
    return "blocked" if device.type == "cpu" and dtype != torch.float32 else "sdpa"


def default_batch_tokens(device: str | torch.device = "cpu") -> int:
    """Tokens per forward batch: a GPU wants large batches; on a CPU a batch whose activations stay in
    the last-level cache is faster (2,048 tokens: the MLP's hidden layer is 3-6 MB for the bundled model;
    measured 20-30% faster than 16,384 on the 2-core machine of docs/performance.md)."""
    return 16384 if torch.device(device).type == "cuda" else 2048


def prepare_model(model: torch.nn.Module, device: torch.device, dtype: torch.dtype, int8: bool = False,
                  attention: str | None = "auto") -> tuple[torch.nn.Module, str]:
    """The model as prediction runs it (on `device`, in `dtype`, eval mode), and the attention kernel
    chosen. Works on a copy whenever anything but the device changes."""
    if int8 and (device.type != "cpu" or dtype != torch.float32):
        raise ValueError("int8 runs on the CPU with float32 activations (use dtype fp32 with int8)")
    if attention in (None, "auto"):
        attention = auto_attention(device, dtype)
    if attention not in ATTENTION:
        raise ValueError(f"attention must be auto, sdpa or blocked, not {attention!r}")
    original = model
    if dtype != torch.float32 or int8:
        model = copy.deepcopy(model)
    model = model.to(device, dtype).eval()
    if int8:
        model = quantize_int8(model)
    if device.type == "cpu" and dtype != torch.float32:
        # bf16 matmuls go through oneDNN, which caches a compiled kernel per matrix shape (1,024 by
        # default); prediction meets hundreds of shapes (peak RSS of `dbmtl predict --dtype bf16` on the
        # 500 query proteins, 1 thread: 808 MiB with the default cache, 572 MiB with 32; same speed).
        # A user's own setting wins; it only takes effect if no oneDNN kernel has run yet in this
        # process (true for `dbmtl predict`).
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
    if attention != "sdpa" and model is original:
        model = copy.deepcopy(model)
    set_attention(model, attention)
    return model, attention
