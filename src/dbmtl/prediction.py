"""Predictions from sequence alone: the decoder never reads a true label here.

Per-residue labels (SS3, SS8) come from
  "placeholder"  one pass over `residues <CTRL> <CTRL>...` (models trained with placeholder label inputs:
                 every label input is the task's control token)
  "free"         free-running greedy decoding of `residues <CTRL>` with a KV cache, one label per residue,
                 restricted to the task's label tokens (models trained with teacher forcing)
Per-protein labels (location, membrane) are the token after `residues <CTRL>`, restricted to the task's
labels, with their probabilities. Proteins longer than the model's per-residue limit are predicted in
overlapping windows (each residue takes the window where it is most central); per-protein tasks crop to
the first and last halves of the context, as in training.

Speed (see docs/performance.md): rows are sorted by length and packed to a token budget (`batch_tokens`,
rows x longest row), every pass runs under `torch.inference_mode`, and the weights can run in bfloat16 or
float16 (`dtype`) or, on CPU, with dynamically quantized int8 linear layers (`int8`). A batch's result does
not depend on which other proteins share it (padding is masked), so any budget gives the same numbers to
float tolerance.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .examples import Example, answer_row, collate, crop_protein, encoder_row, max_residue_length
from .model.checkpoint import load_checkpoint
from .model.decoder import Decoder, KVCache, SelfAttention
from .tasks import TASKS, Task
from .tokens import AMINO_ACIDS, Alphabet

DEFAULT_MODEL = Path(__file__).parent / "models" / "default"
OUTPUT_TASKS = ("ss3", "ss8", "loc", "ms")
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}
_INVALID = re.compile(f"[^{AMINO_ACIDS}]")


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype:
    """"auto": bfloat16 on a GPU that supports it, else float32; otherwise a name from DTYPES."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        dev = torch.device(device)
        if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of every nn.Linear (weights int8, activations quantized per batch; CPU)."""
    from torch.ao.quantization import quantize_dynamic
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice in favour of torchao
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def set_attention(model: torch.nn.Module, attention: str) -> None:
    """Choose the attention implementation of every layer ("sdpa" or "blocked")."""
    for module in model.modules():
        if isinstance(module, SelfAttention):
            module.attention = attention


def default_batch_tokens(device: str | torch.device = "cpu") -> int:
    """Tokens per forward batch: a GPU wants large batches; on a CPU a batch whose activations stay in
    the last-level cache is faster (2,048 tokens: the MLP's hidden layer is 3-6 MB for the bundled model;
    measured 20-30% faster than 16,384 on the 2-core machine of docs/performance.md)."""
    return 16384 if torch.device(device).type == "cuda" else 2048


def label_string(labels: Sequence[str], indices: np.ndarray) -> str:
    """Per-residue label string (one letter per label) from argmax indices, no Python loop over residues."""
    table = np.frombuffer("".join(labels).encode("ascii"), dtype="S1")
    if len(table) != len(labels):
        return "".join(labels[i] for i in indices)  # multi-letter labels: slow path
    return table[np.asarray(indices)].tobytes().decode("ascii")


@dataclass
class ProteinPrediction:
    id: str
    sequence: str
    labels: dict[str, str] = field(default_factory=dict)             # task -> label string (per residue) or label
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # task -> (L, n) or (n,)

    @property
    def ss3(self) -> str | None:
        return self.labels.get("ss3")

    @property
    def ss8(self) -> str | None:
        return self.labels.get("ss8")

    @property
    def location(self) -> str | None:
        return self.labels.get("loc")

    @property
    def membrane(self) -> str | None:
        return self.labels.get("ms")


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


def token_budget_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped longest-first so that rows x longest row <= budget (at least one row each)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current, longest = [], [], 0
    for i in order:
        longer = max(longest, lengths[i])
        if current and longer * (len(current) + 1) > budget:
            batches.append(current)
            current, longest = [], 0
            longer = lengths[i]
        current.append(i)
        longest = longer
    if current:
        batches.append(current)
    return batches


class Predictor:
    """dtype: "fp32" (default; exact), "bf16" / "fp16" (weights and activations in half precision, outputs
    softmaxed in float32), or "auto" (bf16 on a GPU with bf16, else fp32). int8: dynamic int8 linear layers
    (CPU only). A half-precision or int8 predictor works on its own copy, never on the model passed in.
    batch_tokens: rows x longest row per forward batch (default: default_batch_tokens(device)).
    attention: "sdpa" (torch's fused kernels), "blocked" (dbmtl.model.decoder.blocked_attention) or
    "auto" (blocked for half precision on a CPU, else sdpa)."""

    def __init__(self, model: Decoder, alphabet: Alphabet, meta: dict | None = None,
                 device: str | torch.device = "cpu", batch_tokens: int | None = None,
                 dtype: str | torch.dtype | None = "fp32", int8: bool = False, attention: str | None = "auto"):
        self.device = torch.device(device)
        if batch_tokens is None:
            batch_tokens = default_batch_tokens(self.device)
        self.dtype = resolve_dtype(dtype, self.device)
        if int8 and (self.device.type != "cpu" or self.dtype != torch.float32):
            raise ValueError("int8 runs on the CPU with float32 activations (use dtype fp32 with int8)")
        original = model
        if self.dtype != torch.float32 or int8:
            model = copy.deepcopy(model)
        model = model.to(self.device, self.dtype).eval()
        if int8:
            model = quantize_int8(model)
        if self.device.type == "cpu" and self.dtype != torch.float32:
            # bf16 matmuls go through oneDNN, which caches a compiled kernel per matrix shape (1,024 by
            # default); prediction meets hundreds of shapes (peak RSS of `dbmtl predict --dtype bf16` on the
            # 500 query proteins, 1 thread: 808 MiB with the default cache, 572 MiB with 32; same speed).
            # A user's own setting wins; it only takes effect if no oneDNN kernel has run yet in this
            # process (true for `dbmtl predict`).
            os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
        if attention in (None, "auto"):
            # half precision on a CPU: plain bf16 matmuls in cache-sized blocks beat the fused kernel,
            # which computes in float32 (docs/performance.md); elsewhere torch's SDPA kernels
            attention = "blocked" if self.device.type == "cpu" and self.dtype != torch.float32 else "sdpa"
        if attention not in ("sdpa", "blocked"):
            raise ValueError(f"attention must be auto, sdpa or blocked, not {attention!r}")
        if attention != "sdpa" and model is original:
            model = copy.deepcopy(model)
        set_attention(model, attention)
        self.attention = attention
        self.model = model
        self.int8 = int8
        self.alphabet = alphabet
        self.meta = meta or {}
        self.batch_tokens = batch_tokens
        self.context = model.cfg.context
        self.kind = model.cfg.kind
        if self.kind == "encoder":
            self.residue_mode = "encoder"
        else:
            self.residue_mode = "placeholder" if model.cfg.label_inputs == "placeholder" else "free"

    @classmethod
    def from_pretrained(cls, path: str | Path = "default", device: str = "cpu", **kw) -> "Predictor":
        """Load a checkpoint directory; "default" is the model bundled with the package. Keywords go to
        the constructor (batch_tokens, dtype, int8)."""
        path = DEFAULT_MODEL if str(path) == "default" else Path(path)
        model, alphabet, meta = load_checkpoint(path, device)
        return cls(model, alphabet, meta, device=device, **kw)

    # -- public API -------------------------------------------------------------------------------
    def predict(self, sequences, tasks: Iterable[str] = OUTPUT_TASKS) -> list[ProteinPrediction]:
        """sequences: a list of strings, a dict id -> sequence, or records with .id and .sequence."""
        items = _as_items(sequences)
        for rid, seq in items:
            check_sequence(rid, seq)
        seqs = [s for _, s in items]
        preds = [ProteinPrediction(rid, seq) for rid, seq in items]
        for name in tasks:
            task = TASKS[name]
            if task.kind == "residue":
                results = self.predict_residues(seqs, task)
                for p, probs in zip(preds, results):
                    p.probabilities[name] = probs
                    p.labels[name] = label_string(task.labels, probs.argmax(1))
            elif task.kind == "protein":
                probs = self.predict_proteins(seqs, task)
                for p, pr in zip(preds, probs):
                    p.probabilities[name] = pr
                    p.labels[name] = task.labels[int(pr.argmax())]
            else:
                raise ValueError(f"task {name!r} has no prediction output")
        return preds

    @torch.inference_mode()
    def predict_proteins(self, sequences: Sequence[str], task: Task) -> list[np.ndarray]:
        """(n_labels,) probabilities per protein for a per-protein task: the logits at <CTRL>."""
        ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
        empty = torch.tensor([], dtype=torch.long)
        cropped = [crop_protein(s, self.context, self.kind) for s in sequences]
        if self.kind == "encoder":
            rows = [encoder_row(self.alphabet, task, s) for s in cropped]
        else:
            rows = [answer_row(self.alphabet, task, s, empty) for s in cropped]
        out: list[np.ndarray | None] = [None] * len(rows)
        for batch_ids, logits, batch in self._forward_batches(rows):
            last = torch.zeros_like(batch.valid[:, 0], dtype=torch.long) if self.kind == "encoder" else batch.valid.sum(1) - 1
            probs = torch.softmax(logits[torch.arange(len(batch_ids)), last][:, ids].float(), -1).cpu().numpy()
            for j, i in enumerate(batch_ids):
                out[i] = probs[j]
        return out

    @torch.inference_mode()
    def predict_residues(self, sequences: Sequence[str], task: Task, mode: str | None = None) -> list[np.ndarray]:
        """(L, n_labels) probabilities per protein for a per-residue task, never reading a true label."""
        mode = mode or self.residue_mode
        if (mode == "encoder") != (self.kind == "encoder"):
            raise ValueError(f"mode {mode!r} does not fit a {self.kind} model")
        if mode == "encoder":
            return self.windowed(sequences, lambda pieces: self._encoder_pass(pieces, task))
        if mode == "placeholder":
            return self.windowed(sequences, lambda pieces: self._placeholder_pass(pieces, task))
        if mode == "free":
            return self.windowed(sequences, lambda pieces: self._free_running(pieces, task))
        raise ValueError(f"unknown per-residue mode {mode!r}")

    def windowed(self, sequences: Sequence[str], predict_pieces, labels: Sequence[str] | None = None) -> list[np.ndarray]:
        """Cut proteins longer than the per-residue limit into windows, predict all pieces in one call
        (`predict_pieces(pieces)`; with `labels`, pieces are (sequence, labels) pairs) and stitch."""
        window = max_residue_length(self.context, self.kind)
        pieces, owners = [], []
        for k, seq in enumerate(sequences):
            wins = residue_windows(len(seq), window)
            owners.append(wins)
            pieces += [seq[s:e] if labels is None else (seq[s:e], labels[k][s:e]) for s, e in wins]
        piece_probs = predict_pieces(pieces)
        out, n = [], 0
        for seq, wins in zip(sequences, owners):
            probs = piece_probs[n : n + len(wins)]
            n += len(wins)
            out.append(probs[0] if len(wins) == 1 else stitch_windows(len(seq), wins, probs))
        return out

    # -- internals --------------------------------------------------------------------------------
    def _forward_batches(self, rows: list[Example]):
        """One causal pass per token-budget batch of right-padded rows: yields (row indices, logits, batch)."""
        for batch_ids in token_budget_batches([len(r.inputs) for r in rows], self.batch_tokens):
            batch = collate([rows[i] for i in batch_ids], self.alphabet.pad_id).to(self.device)
            # rows of equal length need no mask: SDPA can then take its fastest (flash) kernel
            padded = not batch.causal and not bool(batch.valid.all())
            logits = self.model(batch.inputs, positions=batch.positions, segments=batch.segments,
                                valid=batch.valid if padded else None, causal=batch.causal)
            yield batch_ids, logits, batch

    def _encoder_pass(self, pieces: list[str], task: Task) -> list[np.ndarray]:
        """Encoder: one bidirectional pass over `<CTRL> residues`; residue k's labels at column k + 1."""
        ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
        rows = [encoder_row(self.alphabet, task, p) for p in pieces]
        out: list[np.ndarray | None] = [None] * len(rows)
        for batch_ids, logits, _ in self._forward_batches(rows):
            probs = torch.softmax(logits[..., ids].float(), -1).cpu().numpy()
            for j, i in enumerate(batch_ids):
                out[i] = probs[j, 1 : len(pieces[i]) + 1]
        return out

    def label_slots_pass(self, pieces: list[str], task: Task, answers: list[torch.Tensor]) -> list[np.ndarray]:
        """Label probabilities from one pass over `residues <CTRL> answer`, read at the n label slots."""
        ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
        rows = [answer_row(self.alphabet, task, p, a) for p, a in zip(pieces, answers)]
        out: list[np.ndarray | None] = [None] * len(rows)
        for batch_ids, logits, _ in self._forward_batches(rows):
            probs = torch.softmax(logits[..., ids].float(), -1).cpu().numpy()
            for j, i in enumerate(batch_ids):
                n = len(pieces[i])
                out[i] = probs[j, n : 2 * n]  # <CTRL> and the n-1 slots after it predict labels 1..n
        return out

    def _placeholder_pass(self, pieces: list[str], task: Task) -> list[np.ndarray]:
        """The placeholder model's input: every label slot holds the control token, no label anywhere."""
        ctrl = self.alphabet.control_id(task)
        return self.label_slots_pass(pieces, task, [torch.full((len(p) - 1,), ctrl) for p in pieces])

    def _free_running(self, pieces: list[str], task: Task) -> list[np.ndarray]:
        """Greedy decoding, one label per residue, restricted to the task's labels, with a KV cache.
        Prompts are left-padded; label slot k sits at position k in every row, so one position per step."""
        ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
        prompts = [answer_row(self.alphabet, task, p, torch.tensor([], dtype=torch.long)) for p in pieces]
        out: list[np.ndarray | None] = [None] * len(prompts)
        for batch_ids in token_budget_batches([2 * len(p) for p in pieces], self.batch_tokens):
            batch = collate([prompts[i] for i in batch_ids], self.alphabet.pad_id, left=True).to(self.device)
            n_res = [len(pieces[i]) for i in batch_ids]
            steps = max(n_res)
            B, width = batch.inputs.shape
            cache = KVCache(self.model.cfg, B, width + steps, dtype=self.dtype, device=self.device)
            logits = self.model(batch.inputs, positions=batch.positions, segments=batch.segments,
                                valid=batch.valid, cache=cache)[:, -1]
            answer_segment = torch.ones((B, 1), dtype=torch.long, device=self.device)
            step_probs = []
            for k in range(1, steps + 1):
                probs = torch.softmax(logits[:, ids].float(), -1)
                step_probs.append(probs)
                if k == steps:
                    break
                choice = ids[probs.argmax(-1)]
                position = torch.full((B, 1), k, dtype=torch.long, device=self.device)
                logits = self.model(choice[:, None], positions=position, segments=answer_segment, cache=cache)[:, -1]
            stacked = torch.stack(step_probs, 1).cpu().numpy()
            for j, i in enumerate(batch_ids):
                out[i] = stacked[j, : n_res[j]]
        return out


def check_sequence(rid: str, seq: str) -> None:
    """Raise an error naming the protein and 1-based position of the first letter the model cannot read."""
    if not seq:
        raise ValueError(f"protein {rid!r}: empty sequence")
    bad = _INVALID.search(seq)
    if bad is not None:
        raise ValueError(f"protein {rid!r}: invalid character {bad.group()!r} at position {bad.start() + 1}")


def _as_items(sequences) -> list[tuple[str, str]]:
    if isinstance(sequences, str):
        raise TypeError("pass a list of sequences, not a single string")
    if isinstance(sequences, dict):
        return [(str(k), v.upper()) for k, v in sequences.items()]
    items = []
    for n, s in enumerate(sequences, 1):
        if isinstance(s, str):
            items.append((f"seq{n}", s.upper()))
        else:
            items.append((s.id, s.sequence))
    return items
