"""`gpu_window.py run` (there): the command's clock, log and summary.json, and the run's arithmetic
(tokens/s, model FLOP/s and their share of the chip's peak)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dbmtl.durable import write_atomic

if TYPE_CHECKING:
    from .probing import BatchMeter

# Dense peaks of the H100 / H200 SXM by the vendor's datasheet (TFLOP/s): bf16 on the tensor cores; fp32
# plain (torch leaves TF32 off for matmuls by default, and so does this command).
PEAK_TFLOPS = {"bf16": 989.0, "fp32": 67.0}
PEAK_BASIS = "NVIDIA H100/H200 SXM datasheet, dense: bf16 989 TFLOP/s, fp32 (no TF32) 67 TFLOP/s"


class Window:
    """The command's clock, its log (stdout and $OUT/window.log) and its summary ($OUT/summary.json, rewritten
    as it grows, so a command cut off still says how far it got)."""

    def __init__(self, out: Path, budget_s: float, t0: float):
        self.out, self.budget_s, self.t0 = out, budget_s, t0
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / "window.log", "a")
        self.summary: dict = {"budget_s": budget_s, "phases_s": {}}

    def elapsed(self) -> float:
        return time.time() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, message: str) -> None:
        line = f"[{self.elapsed():6.1f} s] {message}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def save(self, **parts) -> None:
        self.summary.update(parts)
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        write_json(self.out / "summary.json", self.summary)


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value, indent=1) + "\n")


def run_summary(trainer, meter: BatchMeter, train_s: float, steps_s: float, valid_s: float, history: list,
                best_step, precision: str, cuda: bool, device_name: str) -> dict:
    """The run so far: steps, tokens/s, model FLOP/s and their share of the chip's peak."""
    flops_per_s = meter.flops / steps_s if steps_s > 0 else 0.0
    peak = PEAK_TFLOPS[precision] if cuda and any(chip in device_name for chip in ("H100", "H200")) else None
    return {"steps": trainer.step, "tokens": meter.tokens, "train_s": round(train_s, 1), "steps_s": round(steps_s, 1),
            "valid_s": round(valid_s, 1), "tokens_per_s": round(meter.tokens / steps_s) if steps_s > 0 else None,
            "flops_per_token": round(meter.flops / max(1, meter.tokens)), "model_tflops_per_s": round(flops_per_s / 1e12, 3),
            "peak_tflops": peak, "peak_basis": PEAK_BASIS if peak else None,
            "peak_share": round(flops_per_s / 1e12 / peak, 4) if peak else None,
            "distinct_shapes": len(set(meter.shapes)), "best_step": best_step, "valid": history,
            "flops_note": "3 x forward (forward + backward) of the rows that carry a label or a masked-LM target; padding and filler rows not counted"}
