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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .examples import crop_protein, max_residue_length
from .model.checkpoint import load_checkpoint
from .model.decoder import Decoder, KVCache
from .tasks import TASKS, Task
from .tokens import Alphabet

DEFAULT_MODEL = Path(__file__).parent / "models" / "default"
OUTPUT_TASKS = ("ss3", "ss8", "loc", "ms")


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
    def __init__(self, model: Decoder, alphabet: Alphabet, meta: dict | None = None,
                 device: str | torch.device = "cpu", batch_tokens: int = 16384):
        self.model = model.to(device).eval()
        self.alphabet = alphabet
        self.meta = meta or {}
        self.device = torch.device(device)
        self.batch_tokens = batch_tokens
        self.context = model.cfg.context
        self.residue_mode = "placeholder" if model.cfg.label_inputs == "placeholder" else "free"

    @classmethod
    def from_pretrained(cls, path: str | Path = "default", device: str = "cpu", **kw) -> "Predictor":
        """Load a checkpoint directory; "default" is the model bundled with the package."""
        path = DEFAULT_MODEL if str(path) == "default" else Path(path)
        model, alphabet, meta = load_checkpoint(path, device)
        return cls(model, alphabet, meta, device=device, **kw)

    # -- public API -------------------------------------------------------------------------------
    def predict(self, sequences, tasks: Iterable[str] = OUTPUT_TASKS) -> list[ProteinPrediction]:
        """sequences: a list of strings, a dict id -> sequence, or records with .id and .sequence."""
        items = _as_items(sequences)
        for rid, seq in items:
            self.alphabet.encode_residues(seq)  # raises on a letter the model cannot read
        seqs = [s for _, s in items]
        preds = [ProteinPrediction(rid, seq) for rid, seq in items]
        for name in tasks:
            task = TASKS[name]
            if task.kind == "residue":
                results = self.predict_residues(seqs, task)
                for p, probs in zip(preds, results):
                    p.probabilities[name] = probs
                    p.labels[name] = "".join(task.labels[i] for i in probs.argmax(1))
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
        """(n_labels,) probabilities per protein for a per-protein task."""
        ctrl = self.alphabet.control_id(task)
        ids = torch.tensor(self.alphabet.label_ids(task))
        rows = [torch.cat([self.alphabet.encode_residues(crop_protein(s, self.context)), torch.tensor([ctrl])])
                for s in sequences]
        out: list[np.ndarray | None] = [None] * len(rows)
        for batch in token_budget_batches([len(r) for r in rows], self.batch_tokens):
            tokens, lengths = self._right_pad([rows[i] for i in batch])
            logits = self.model(tokens)
            last = logits[torch.arange(len(batch)), lengths - 1][:, ids].float()
            probs = torch.softmax(last, -1).cpu().numpy()
            for j, i in enumerate(batch):
                out[i] = probs[j]
        return out

    @torch.inference_mode()
    def predict_residues(self, sequences: Sequence[str], task: Task, mode: str | None = None) -> list[np.ndarray]:
        """(L, n_labels) probabilities per protein for a per-residue task, never reading a true label."""
        mode = mode or self.residue_mode
        window = max_residue_length(self.context)
        pieces, owners = [], []
        for k, seq in enumerate(sequences):
            wins = residue_windows(len(seq), window)
            owners.append(wins)
            pieces += [seq[s:e] for s, e in wins]
        if mode == "placeholder":
            piece_probs = self._placeholder_pass(pieces, task)
        elif mode == "free":
            piece_probs = self._free_running(pieces, task)
        else:
            raise ValueError(f"unknown per-residue mode {mode!r}")
        out, n = [], 0
        for seq, wins in zip(sequences, owners):
            probs = piece_probs[n : n + len(wins)]
            n += len(wins)
            out.append(probs[0] if len(wins) == 1 else stitch_windows(len(seq), wins, probs))
        return out

    # -- internals --------------------------------------------------------------------------------
    def _right_pad(self, rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(r) for r in rows])
        tokens = torch.full((len(rows), int(lengths.max())), self.alphabet.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, : len(r)] = r
        return tokens.to(self.device), lengths.to(self.device)

    def _placeholder_pass(self, pieces: list[str], task: Task) -> list[np.ndarray]:
        ctrl = self.alphabet.control_id(task)
        ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
        rows = [torch.cat([self.alphabet.encode_residues(p), torch.full((len(p),), ctrl)]) for p in pieces]
        out: list[np.ndarray | None] = [None] * len(rows)
        for batch in token_budget_batches([len(r) for r in rows], self.batch_tokens):
            tokens, _ = self._right_pad([rows[i] for i in batch])
            logits = self.model(tokens)[..., ids].float()
            probs = torch.softmax(logits, -1).cpu().numpy()
            for j, i in enumerate(batch):
                n = len(pieces[i])
                out[i] = probs[j, n : 2 * n]  # the logits at <CTRL> and each placeholder: labels 1..n
        return out

    def _free_running(self, pieces: list[str], task: Task) -> list[np.ndarray]:
        ctrl = self.alphabet.control_id(task)
        ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
        prompts = [torch.cat([self.alphabet.encode_residues(p), torch.tensor([ctrl])]) for p in pieces]
        out: list[np.ndarray | None] = [None] * len(prompts)
        for batch in token_budget_batches([2 * len(p) for p in prompts], self.batch_tokens):
            rows = [prompts[i] for i in batch]
            n_res = [len(pieces[i]) for i in batch]
            width = max(len(r) for r in rows)
            tokens = torch.full((len(rows), width), self.alphabet.pad_id, dtype=torch.long)
            valid = torch.zeros((len(rows), width), dtype=torch.bool)
            for j, r in enumerate(rows):  # left-pad so every prompt ends at the same column
                tokens[j, width - len(r):] = r
                valid[j, width - len(r):] = True
            tokens, valid = tokens.to(self.device), valid.to(self.device)
            positions = (valid.cumsum(1) - 1).clamp(min=0)
            steps = max(n_res)
            cache = KVCache(self.model.cfg, len(rows), width + steps, dtype=next(self.model.parameters()).dtype,
                            device=self.device)
            logits = self.model(tokens, positions=positions, valid=valid, cache=cache)[:, -1]
            next_pos = positions[:, -1] + 1
            step_probs = []
            for t in range(steps):
                probs = torch.softmax(logits[:, ids].float(), -1)
                step_probs.append(probs)
                if t == steps - 1:
                    break
                choice = ids[probs.argmax(-1)]
                logits = self.model(choice[:, None], positions=next_pos[:, None].clamp(max=self.context - 1),
                                    cache=cache)[:, -1]
                next_pos = next_pos + 1
            stacked = torch.stack(step_probs, 1).cpu().numpy()
            for j, i in enumerate(batch):
                out[i] = stacked[j, : n_res[j]]
        return out


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
