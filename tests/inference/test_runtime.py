"""`--dtype auto`: bf16 only where the hardware computes it natively."""
from __future__ import annotations

import builtins
import io

import torch

from dbmtl.inference import runtime


def fake_cpuinfo(monkeypatch, flags: str):
    real_open = builtins.open

    def fake(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return io.StringIO(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake)


def test_auto_is_bf16_on_a_cpu_with_bf16_dot_products_only(monkeypatch):
    fake_cpuinfo(monkeypatch, "avx512f avx512_bf16")
    assert runtime.cpu_has_bf16_dot() and runtime.resolve_dtype("auto", "cpu") == torch.bfloat16
    fake_cpuinfo(monkeypatch, "amx_bf16 amx_tile")
    assert runtime.resolve_dtype("auto", "cpu") == torch.bfloat16
    fake_cpuinfo(monkeypatch, "avx512f avx512_vnni")  # no bf16 instructions: emulated bf16 is slower
    assert not runtime.cpu_has_bf16_dot() and runtime.resolve_dtype("auto", "cpu") == torch.float32
    assert runtime.resolve_dtype("fp32", "cpu") == torch.float32 and runtime.resolve_dtype("bf16", "cpu") == torch.bfloat16


def test_without_cpuinfo_auto_is_float32(monkeypatch):
    def no_file(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(builtins, "open", no_file)
    assert runtime.resolve_dtype("auto", "cpu") == torch.float32
