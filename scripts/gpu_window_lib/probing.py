"""`gpu_window.py run` (there): the precision / shape-bucket variants, switched on one built trainer, and
the probe that times a few training steps of each, with the batch meter that counts their work."""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace

# Probe variants: (precision, shape_buckets, cuDNN on). "nocudnn" takes cuDNN out (convolution and its
# attention backend): if bf16 is slow with it and fast without, cuDNN's per-shape planning is the cost.
VARIANTS = {
    "fp32": ("fp32", 0, True),
    "bf16": ("bf16", 0, True),
    "bf16+nocudnn": ("bf16", 0, False),
    "bf16+buckets": ("bf16", 64, True),
    "fp32+buckets": ("fp32", 64, True),
}


def use_variant(trainer, cfg) -> None:
    """Point a built trainer (and whatever parts of it keep the training config) at another precision /
    shape-bucket setting, without rebuilding its pools: the probe compares variants on one trainer."""
    for part in (trainer, *vars(trainer).values()):
        if type(getattr(part, "cfg", None)) is type(cfg):
            part.cfg = cfg


def validate_fp32(trainer, model=None) -> dict:
    """A validation in fp32 whatever the run trains in: its numbers compare with the lineage's earlier
    (fp32) validations, and a bf16 pass over the validation set's ~190 batch shapes would meet any per-shape
    kernel planning again (validation batches are not bucketed: their hidden LM residues must stay).
    `model` as Trainer.validate takes it (with a moving average, the trained weights are scored too)."""
    cfg = trainer.cfg
    use_variant(trainer, replace(cfg, precision="fp32"))
    try:
        return type(trainer).validate(trainer, model)
    finally:
        use_variant(trainer, cfg)


def set_cudnn(enabled: bool) -> None:
    import torch

    torch.backends.cudnn.enabled = enabled
    torch.backends.cuda.enable_cudnn_sdp(enabled)


class BatchMeter:
    """Wraps a trainer's micro-batch builder to record each training batch's shape and its real work: the
    tokens of rows that carry a label or a masked-LM target (shape-bucket filler rows carry neither) and
    the model FLOPs they need, 3 x forward (forward + backward)."""

    def __init__(self, trainer):
        from dbmtl.benchmark.flops import attention_flops, linear_flops_per_token

        self.pad = trainer.alphabet.pad_id
        cfg = trainer.model.cfg
        self.per_token = linear_flops_per_token(cfg)
        self.per_square = attention_flops(cfg, rows=1, length=1, causal=False)  # x length^2 per row
        self.shapes: list[tuple[int, int]] = []
        self.tokens = 0
        self.flops = 0.0
        build = trainer._micro_batch

        def measured(*args, **kwargs):
            batch = build(*args, **kwargs)
            self.add(batch)
            return batch

        trainer._micro_batch = measured

    def add(self, b) -> None:
        self.shapes.append(tuple(b.inputs.shape))
        scored = ((b.ss8 >= 0).any(1) | (b.ss3 >= 0).any(1) | (b.loc.sum(1) > 0) | (b.ms >= 0)
                  | (b.residues != self.pad).any(1))
        lengths = (b.inputs != self.pad).sum(1)[scored].double()
        self.tokens += int(lengths.sum())
        self.flops += 3 * float(self.per_token * lengths.sum() + self.per_square * (lengths ** 2).sum())


def probe(trainer, variants: list[str], warmup: int, steps: int, sync, say) -> dict:
    """Seconds per training step of each variant on one trainer: `warmup` untimed steps, then `steps` timed
    ones, each marked new-shape when one of its batches has a shape this precision and cuDNN setting had
    not run before (kernel planning per shape would show as new-shape steps costing more than seen ones)."""
    meter = BatchMeter(trainer)
    seen: set = set()
    base = trainer.cfg
    results = {}
    for name in variants:
        precision, buckets, cudnn = VARIANTS[name]
        use_variant(trainer, replace(base, precision=precision, shape_buckets=buckets))
        set_cudnn(cudnn)
        times, new, shapes = [], [], set()
        tokens0, flops0 = meter.tokens, meter.flops
        for i in range(warmup + steps):
            first = len(meter.shapes)
            sync()
            t = time.perf_counter()
            try:
                trainer.train_step()
            except (RuntimeError, ValueError) as exc:  # out of memory, a kernel missing, a diverged step
                results[name] = {"precision": precision, "shape_buckets": buckets, "cudnn": cudnn, "error": str(exc)[:300]}
                break
            sync()
            dt = time.perf_counter() - t
            keys = {(precision, cudnn, s) for s in meter.shapes[first:]}
            fresh = bool(keys - seen)
            seen |= keys
            shapes |= {s for _, _, s in keys}
            if i >= warmup:
                times.append(dt)
                new.append(fresh)
            else:
                tokens0, flops0 = meter.tokens, meter.flops
        if name in results:
            say(f"probe {name:13s} failed: {results[name]['error']}")
            continue
        fresh_s = [t for t, n in zip(times, new) if n]
        seen_s = [t for t, n in zip(times, new) if not n]
        results[name] = {
            "precision": precision, "shape_buckets": buckets, "cudnn": cudnn, "steps": len(times),
            "step_s_mean": round(statistics.mean(times), 4), "step_s_median": round(statistics.median(times), 4),
            "new_shape_steps": len(fresh_s), "new_shape_step_s": round(statistics.mean(fresh_s), 4) if fresh_s else None,
            "seen_shape_steps": len(seen_s), "seen_shape_step_s": round(statistics.mean(seen_s), 4) if seen_s else None,
            "distinct_shapes": len(shapes), "shapes": sorted(shapes), "tokens_per_step": round((meter.tokens - tokens0) / len(times)),
            "flops_per_token": round((meter.flops - flops0) / max(1, meter.tokens - tokens0)),
        }
        # the run's steady rate: steps on shapes seen before where there are enough of them
        results[name]["expected_step_s"] = results[name]["seen_shape_step_s"] if len(seen_s) >= 3 else results[name]["step_s_mean"]
        say(f"probe {name:13s} {json.dumps(results[name])}")
    use_variant(trainer, base)
    return results
