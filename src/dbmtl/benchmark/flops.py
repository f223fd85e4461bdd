"""FLOP counts of the model: what a forward pass does, and what predicting given proteins needs, so that
measured times can be read against the machine's peak."""
from __future__ import annotations

from typing import Sequence

import numpy as np


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
    cropped protein for per-protein tasks) per task; onepass `<LOC> <MS> residues` once for every task (a
    longer protein: its windows plus one cropped row). None for decoder models (their rows differ per mode)."""
    from ..data.layouts import layout_for
    from ..data.onepass import PREFIX
    from ..inference.windows import residue_windows
    from ..tasks import TASKS
    from ..tokens import Alphabet

    if cfg.kind not in ("encoder", "onepass"):
        return None
    per_tok = linear_flops_per_token(cfg)
    layout = layout_for(cfg.kind, Alphabet(), cfg.context)
    window = layout.max_residue_length()

    def crop(n: int) -> int:  # residues of a per-protein row
        return len(layout.crop_protein("A" * n))

    rows: list[int] = []
    if cfg.kind == "onepass":
        for n in lengths:
            spans = residue_windows(n, window)
            rows += [e - s + PREFIX for s, e in spans] + ([crop(n) + PREFIX] if len(spans) > 1 else [])
    else:
        for name in tasks:
            for n in lengths:
                if TASKS[name].kind == "residue":
                    rows += [e - s + 1 for s, e in residue_windows(n, window)]
                else:
                    rows.append(crop(n) + 1)
    r = np.asarray(rows, dtype=np.float64)
    lin = float(per_tok * r.sum())
    att = float(4 * cfg.n_layer * cfg.n_embd * (r * r).sum())
    return {"tokens": int(r.sum()), "rows": len(rows), "linear": lin, "attention": att, "total": lin + att}


def predict_floor_s(need: dict, forward: Sequence[dict]) -> dict:
    """Seconds the work `need` (predict_flops) takes at least, per precision, at the rates measured beside
    each forward pass: linear layers at the matmul peak, attention at the rate of the implementation in use."""
    floors = {}
    for fw in forward:
        if "peak" in fw:
            rate = fw[f"attention_flops_per_s_{fw['attention']}"]
            floors[fw["dtype"]] = need["linear"] / fw["peak"]["flops"] + need["attention"] / rate
    return floors
