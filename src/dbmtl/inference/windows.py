"""Proteins longer than a model's per-residue limit: overlapping windows, stitched back together."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def residue_windows(length: int, window: int) -> list[tuple[int, int]]:
    """Overlapping [start, end) windows covering a protein; stride half a window."""
    if length <= window:
        return [(0, length)]
    stride = max(1, window // 2)
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return [(s, s + window) for s in starts]


def stitch_windows(length: int, windows: list[tuple[int, int]], probs: list[np.ndarray]) -> np.ndarray:
    """Each residue takes the prediction of the window in which it lies farthest from an edge."""
    out = np.zeros((length, probs[0].shape[1]), dtype=np.float32)
    best = np.full(length, -1)
    for (s, e), p in zip(windows, probs):
        pos = np.arange(s, e)
        margin = np.minimum(pos - s, e - 1 - pos)
        take = margin > best[s:e]
        out[s:e][take] = p[take]
        best[s:e][take] = margin[take]
    return out


def cut(sequences: Sequence[str], window: int) -> list[list[tuple[int, int]]]:
    """Each protein's windows (one window when it fits)."""
    return [residue_windows(len(seq), window) for seq in sequences]


def stitch(sequences: Sequence[str], spans: list[list[tuple[int, int]]], piece_probs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per protein, its pieces' (len, n) arrays (in `spans` order, all proteins' pieces one after another)
    stitched into one (L, n) array."""
    out, n = [], 0
    for seq, wins in zip(sequences, spans):
        probs = list(piece_probs[n : n + len(wins)])
        n += len(wins)
        out.append(probs[0] if len(wins) == 1 else stitch_windows(len(seq), wins, probs))
    return out


def windowed(sequences: Sequence[str], window: int, predict_pieces: Callable[[list], list[np.ndarray]],
             labels: Sequence[str] | None = None) -> list[np.ndarray]:
    """Cut proteins longer than `window` into windows, predict all pieces in one call
    (`predict_pieces(pieces)`; with `labels`, pieces are (sequence, labels) pairs) and stitch."""
    spans = cut(sequences, window)
    pieces = [seq[s:e] if labels is None else (seq[s:e], labels[k][s:e])
              for k, seq in enumerate(sequences) for s, e in spans[k]]
    return stitch(sequences, spans, predict_pieces(pieces))
