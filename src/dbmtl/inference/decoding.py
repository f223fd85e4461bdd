"""From rows to label probabilities, never reading a true label (except `label_slots`, for the audit).

Per-residue strategies, one per way a model was trained:
  "encoder"      one bidirectional pass over `<CTRL> residues`; residue k's labels at column k + 1
  "placeholder"  one pass over `residues <CTRL> <CTRL>...` (decoders trained with placeholder label
                 inputs: every label input is the task's control token)
  "free"         free-running greedy decoding of `residues <CTRL>` with a KV cache, one label per residue,
                 restricted to the task's label tokens (decoders trained with teacher forcing)
Per-protein labels are read where the layout puts the answer, restricted to the task's labels.
A onepass model answers everything from one pass per row (`one_pass`).
Rows are sorted by length and packed to a token budget; a row's result does not depend on which other
rows share its batch (padding is masked).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..data.batching import token_budget_batches
from ..data.layouts import Batch, Example, Layout, answer_row, collate, encoder_row
from ..data.onepass import PREFIX, OnePassLayout
from ..model.heads import OnePassHeads
from ..model.readout import ProteinReadout, ResidueReadout, summaries
from ..model.transformer import KVCache
from ..tasks import SS8_IN_SS3, SS8_LABELS, TASKS, Task
from ..tokens import Alphabet
from .windows import cut, stitch

_SS8_IN_SS3 = np.array(SS8_IN_SS3)  # (8, 3): which SS3 class each SS8 state falls in


def label_string(labels, indices: np.ndarray) -> str:
    """Per-residue label string (one letter per label) from label indices, no Python loop over residues."""
    table = np.frombuffer("".join(labels).encode("ascii"), dtype="S1")
    if len(table) != len(labels):
        return "".join(labels[i] for i in indices)  # multi-letter labels: slow path
    return table[np.asarray(indices)].tobytes().decode("ascii")


def residue_letters(probabilities: dict[str, np.ndarray]) -> dict[str, str]:
    """One protein's per-residue letters from its (L, n) probabilities per task: the one place they are
    decided. With both SS3 and SS8, SS3 is the likeliest 3-state class and SS8 the likeliest 8-state letter
    within that class, so every SS8 letter maps to its residue's SS3 letter (each task's own argmax
    disagrees on about one residue in ten: H 0.30, G 0.25, E 0.45 is SS8 E but SS3 H). With one of them,
    its own argmax. A model with separate SS3 and SS8 heads gets the same rule from its own SS3
    probabilities; a onepass model's SS3 is its SS8 summed per class."""
    both = "ss3" in probabilities and "ss8" in probabilities
    letters = {t: label_string(TASKS[t].labels, np.asarray(p).argmax(1))
               for t, p in probabilities.items() if not (both and t == "ss8")}
    if both:
        ss3 = np.asarray(probabilities["ss3"]).argmax(1)
        inside = np.where(_SS8_IN_SS3[:, ss3].T, probabilities["ss8"], -np.inf)
        letters["ss8"] = label_string(SS8_LABELS, inside.argmax(1))
    return letters


@dataclass
class BatchedModel:
    """A prepared model (see runtime.prepare_model) fed token-budget batches under inference mode."""

    model: torch.nn.Module
    alphabet: Alphabet
    device: torch.device
    dtype: torch.dtype
    batch_tokens: int

    def label_ids(self, task: Task) -> torch.Tensor:
        return torch.tensor(self.alphabet.label_ids(task), device=self.device)

    def forward_batches(self, rows: list[Example], states: bool = False) -> Iterator[tuple[list[int], torch.Tensor, Batch]]:
        """One pass per token-budget batch of right-padded rows: yields (row indices, logits, batch);
        states=True yields the final hidden states instead of logits."""
        for batch_ids in token_budget_batches([len(r.inputs) for r in rows], self.batch_tokens):
            batch = collate([rows[i] for i in batch_ids], self.alphabet.pad_id).to(self.device)
            # rows of equal length need no mask: SDPA can then take its fastest (flash) kernel
            padded = not batch.causal and not bool(batch.valid.all())
            logits = self.model(batch.inputs, positions=batch.positions, segments=batch.segments,
                                valid=batch.valid if padded else None, causal=batch.causal, hidden=states)
            yield batch_ids, logits, batch


@torch.inference_mode()
def protein_probabilities(runner: BatchedModel, layout: Layout, task: Task, sequences: list[str]) -> list[np.ndarray]:
    """(n_labels,) probabilities per protein, read where the layout puts the answer."""
    ids = runner.label_ids(task)
    rows = [layout.protein_row(task, layout.crop_protein(s)) for s in sequences]
    out: list[np.ndarray | None] = [None] * len(rows)
    for batch_ids, logits, batch in runner.forward_batches(rows):
        column = layout.protein_answer_column(batch)
        probs = torch.softmax(logits[torch.arange(len(batch_ids)), column][:, ids].float(), -1).cpu().numpy()
        for j, i in enumerate(batch_ids):
            out[i] = probs[j]
    return out


@torch.inference_mode()
def encoder_residues(runner: BatchedModel, task: Task, pieces: list[str]) -> list[np.ndarray]:
    """Encoder: one bidirectional pass over `<CTRL> residues`; residue k's labels at column k + 1."""
    ids = runner.label_ids(task)
    rows = [encoder_row(runner.alphabet, task, p) for p in pieces]
    out: list[np.ndarray | None] = [None] * len(rows)
    for batch_ids, logits, _ in runner.forward_batches(rows):
        probs = torch.softmax(logits[..., ids].float(), -1).cpu().numpy()
        for j, i in enumerate(batch_ids):
            out[i] = probs[j, 1 : len(pieces[i]) + 1]
    return out


@torch.inference_mode()
def label_slots(runner: BatchedModel, task: Task, pieces: list[str], answers: list[torch.Tensor]) -> list[np.ndarray]:
    """Label probabilities from one pass over `residues <CTRL> answer`, read at the n label slots."""
    ids = runner.label_ids(task)
    rows = [answer_row(runner.alphabet, task, p, a) for p, a in zip(pieces, answers)]
    out: list[np.ndarray | None] = [None] * len(rows)
    for batch_ids, logits, _ in runner.forward_batches(rows):
        probs = torch.softmax(logits[..., ids].float(), -1).cpu().numpy()
        for j, i in enumerate(batch_ids):
            n = len(pieces[i])
            out[i] = probs[j, n : 2 * n]  # <CTRL> and the n-1 slots after it predict labels 1..n
    return out


def placeholder_residues(runner: BatchedModel, task: Task, pieces: list[str]) -> list[np.ndarray]:
    """The placeholder model's input: every label slot holds the control token, no label anywhere."""
    ctrl = runner.alphabet.control_id(task)
    return label_slots(runner, task, pieces, [torch.full((len(p) - 1,), ctrl) for p in pieces])


@torch.inference_mode()
def free_running_residues(runner: BatchedModel, task: Task, pieces: list[str]) -> list[np.ndarray]:
    """Greedy decoding, one label per residue, restricted to the task's labels, with a KV cache.
    Prompts are left-padded; label slot k sits at position k in every row, so one position per step."""
    model, device = runner.model, runner.device
    ids = runner.label_ids(task)
    prompts = [answer_row(runner.alphabet, task, p, torch.tensor([], dtype=torch.long)) for p in pieces]
    out: list[np.ndarray | None] = [None] * len(prompts)
    for batch_ids in token_budget_batches([2 * len(p) for p in pieces], runner.batch_tokens):
        batch = collate([prompts[i] for i in batch_ids], runner.alphabet.pad_id, left=True).to(device)
        n_res = [len(pieces[i]) for i in batch_ids]
        steps = max(n_res)
        B, width = batch.inputs.shape
        cache = KVCache(model.cfg, B, width + steps, dtype=runner.dtype, device=device)
        logits = model(batch.inputs, positions=batch.positions, segments=batch.segments,
                       valid=batch.valid, cache=cache)[:, -1]
        answer_segment = torch.ones((B, 1), dtype=torch.long, device=device)
        step_probs = []
        for k in range(1, steps + 1):
            probs = torch.softmax(logits[:, ids].float(), -1)
            step_probs.append(probs)
            if k == steps:
                break
            choice = ids[probs.argmax(-1)]
            position = torch.full((B, 1), k, dtype=torch.long, device=device)
            logits = model(choice[:, None], positions=position, segments=answer_segment, cache=cache)[:, -1]
        stacked = torch.stack(step_probs, 1).cpu().numpy()
        for j, i in enumerate(batch_ids):
            out[i] = stacked[j, : n_res[j]]
    return out


@torch.inference_mode()
def residue_states(runner: BatchedModel, layout: Layout, task: Task, pieces: list[str]) -> list[np.ndarray]:
    """(L, n_embd) float32 final hidden states of each residue, from the row the model reads for `task`:
    an encoder's `<CTRL> residues` (columns 1..L, bidirectional), a onepass model's one row (`task` does
    not matter), a decoder's `residues <CTRL>`
    (columns 0..L-1, causal: residue k has seen residues 1..k only)."""
    cfg = runner.model.cfg
    if cfg.kind == "encoder":
        rows, first = [encoder_row(runner.alphabet, task, p) for p in pieces], 1
    elif cfg.kind == "onepass":  # one row for every task: `<LOC> <MS> residues`
        rows, first = [layout.prediction_row(p) for p in pieces], PREFIX
    else:
        rows, first = [answer_row(runner.alphabet, task, p, torch.tensor([], dtype=torch.long)) for p in pieces], 0
    out: list[np.ndarray | None] = [None] * len(rows)
    for batch_ids, states, _ in runner.forward_batches(rows, states=True):
        states = states.float().cpu().numpy()
        for j, i in enumerate(batch_ids):
            out[i] = states[j, first : first + len(pieces[i])].copy()  # not a view of the batch
    return out


@torch.inference_mode()
def one_pass(runner: BatchedModel, layout: OnePassLayout, sequences: list[str],
             readout: ProteinReadout | None = None,
             residue_readout: ResidueReadout | None = None) -> list[dict[str, np.ndarray]]:
    """Every answer of a onepass model, {"ss8", "ss3", "loc", "ms"} per protein (OnePassHeads.probabilities;
    with a `readout`, location and membrane from it; with a `residue_readout`, the SS8 logits from it). A
    protein that fits the context is one row, read once for all four; a longer one is windows for the
    per-residue answers (each residue from the window where it is most central) plus its first/last-cropped
    row for the per-protein answers."""
    heads = OnePassHeads(runner.alphabet, runner.device)
    spans = cut(sequences, layout.max_residue_length())
    rows, owners = [], []  # owners: (protein, piece number or None, whether it gives the per-protein answers)
    for k, seq in enumerate(sequences):
        for n, (s, e) in enumerate(spans[k]):
            rows.append(layout.prediction_row(seq[s:e]))
            owners.append((k, n, len(spans[k]) == 1))
        if len(spans[k]) > 1:
            rows.append(layout.prediction_row(layout.crop_protein(seq)))
            owners.append((k, None, True))
    first = np.cumsum([0] + [len(w) for w in spans])  # each protein's first piece
    pieces: dict[str, list] = {"ss8": [None] * first[-1], "ss3": [None] * first[-1]}
    out: list[dict] = [{} for _ in sequences]
    reads_states = readout is not None or residue_readout is not None
    for batch_ids, output, _ in runner.forward_batches(rows, states=reads_states):
        logits = runner.model.head(output) if reads_states else output
        lengths = [len(rows[i].inputs) - PREFIX for i in batch_ids]
        if residue_readout is not None:
            logits = logits.float()
            logits[:, PREFIX:, heads.ss8] = residue_readout(output[:, PREFIX:], logits[:, PREFIX:, heads.ss8], lengths)
        answers = heads.probabilities(logits)
        if readout is not None:
            answers.update(readout(summaries(output, lengths, readout.termini)))
        probs = {t: p.cpu().numpy() for t, p in answers.items()}
        for j, i in enumerate(batch_ids):
            k, n, whole = owners[i]
            if n is not None:
                s, e = spans[k][n]
                for t in pieces:
                    pieces[t][first[k] + n] = probs[t][j, PREFIX : PREFIX + e - s]
            if whole:
                out[k]["loc"], out[k]["ms"] = probs["loc"][j], probs["ms"][j]
    for t, per_piece in pieces.items():
        for k, stitched in enumerate(stitch(sequences, spans, per_piece)):
            out[k][t] = stitched
    return out


RESIDUE_STRATEGIES = {"encoder": encoder_residues, "placeholder": placeholder_residues, "free": free_running_residues}


def residue_strategy(kind: str, label_inputs: str) -> str:
    """The honest per-residue strategy for a model: what it was trained to read in place of labels."""
    if kind in ("encoder", "onepass"):
        return kind
    return "placeholder" if label_inputs == "placeholder" else "free"
