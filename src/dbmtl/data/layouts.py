"""The row layout of each model kind, chosen once per model by `layout_for`: the shipped onepass kind's
rows are in dbmtl.data.onepass; here are the paper's decoder and its named fix, the encoder, with the
paper's rules for long proteins.

Every Example is already aligned for the loss: the model reads `inputs` and is scored on predicting
`targets[i]` at position i with weight `weights[i]` (0 for context, padding and unresolved residues).

Decoder layouts (the paper's; next-token prediction, causal attention; T = model context):
  LM           <UNIREF50> residues <eos>          first T-2 residues kept (paper: first 1024)
  per-residue  residues <CTRL> labels <eos>       proteins with > (T-2)//2 residues are not trained on
                                                  (paper: "drop > 512"; with T = 1024 the cut is 511)
  per-protein  residues <CTRL> label <eos>        first and last (T-3)//2 residues kept (paper: 512 + 512)
Encoder layouts (the paper's named fix; bidirectional attention, an output at every residue):
  per-residue  <CTRL> residues                    label of residue k read at residue k; up to T-1 residues
  per-protein  <CTRL> residues                    label read at <CTRL>; first and last (T-1)//2 residues
  LM           as for the decoder (causal, lm_objective "causal"), or
  masked LM    <UNIREF50> residues, bidirectional (lm_objective "masked"): residues chosen at batch time
               by mask_residues are hidden and predicted at their own position; first T-1 residues kept

Aligned positions (decoder). Every token has a segment (0: the sequence, 1: the control token and what
follows) and a position within its segment. The slot that predicts label k (the control token for k = 0,
else the input slot of label k-1) has position k, the same as residue k, so with rotary attention
"which residue am I labelling" is distance 0 rather than arithmetic on the protein's length.
"""
from __future__ import annotations

import torch

from ..tasks import TASKS, Task
from ..tokens import Alphabet
from .onepass import OnePassLayout
from .rows import Batch, Example, collate, crop_ends, mask_residues

__all__ = ["Batch", "Example", "collate", "mask_residues", "Layout", "DecoderLayout", "EncoderLayout", "OnePassLayout",
           "layout_for", "answer_row", "encoder_row", "lm_example", "masked_lm_example", "task_segment", "SEGMENTS_USED"]


# -- decoder ---------------------------------------------------------------------------------------
def answer_row(alphabet: Alphabet, task: Task, residues: str, answer: torch.Tensor) -> Example:
    """The full decoder row `residues <CTRL> answer` (no shift): what prediction feeds the model."""
    res = alphabet.encode_residues(residues)
    tail = torch.cat([torch.tensor([alphabet.control_id(task)]), answer.long()])
    n, m = len(res), len(tail)
    tokens = torch.cat([res, tail])
    return Example(task.name, tokens, torch.zeros_like(tokens), torch.zeros(n + m),
                   torch.cat([torch.arange(n), torch.arange(m)]),
                   torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(m, dtype=torch.long)]))


def _shifted(row: Example, weights: torch.Tensor) -> Example:
    """Next-token training example from a full row: read tokens[:-1], predict tokens[1:]."""
    return Example(row.task, row.inputs[:-1], row.inputs[1:], weights[1:], row.positions[:-1], row.segments[:-1])


def lm_example(alphabet: Alphabet, task: Task, sequence: str, context: int) -> Example:
    residues = alphabet.encode_residues(sequence[: context - 2])
    tokens = torch.cat([torch.tensor([alphabet.control_id(task)]), residues, torch.tensor([alphabet.eos_id])])
    n = len(tokens)
    return Example(task.name, tokens[:-1], tokens[1:], torch.ones(n - 1), torch.arange(n - 1),
                   torch.zeros(n - 1, dtype=torch.long))


def masked_lm_example(alphabet: Alphabet, task: Task, sequence: str, context: int) -> Example:
    """Encoder row `<UNIREF50> residues` whose targets are the residues themselves, none scored yet:
    mask_residues picks which ones are hidden and scored, fresh for every batch."""
    ex = encoder_row(alphabet, task, sequence[: context - 1])
    ex.targets[1:] = ex.inputs[1:]
    return ex


# -- encoder ---------------------------------------------------------------------------------------
def encoder_row(alphabet: Alphabet, task: Task, residues: str) -> Example:
    """`<CTRL> residues`, bidirectional: per-protein output at 0, residue k's output at k + 1.

    Every token also carries the task as its segment (see task_segment), so each residue knows which
    label set it answers without first having to find the control token."""
    tokens = torch.cat([torch.tensor([alphabet.control_id(task)]), alphabet.encode_residues(residues)])
    n = len(tokens)
    return Example(task.name, tokens, torch.zeros_like(tokens), torch.zeros(n), torch.arange(n),
                   torch.full((n,), task_segment(task), dtype=torch.long), causal=False)


def task_segment(task: Task) -> int:
    """Segment ids: 0 sequence and 1 answer (decoder rows); 2 + task index for encoder rows."""
    return 2 + list(TASKS).index(task.name)


SEGMENTS_USED = 2 + len(TASKS)  # the model's `n_segments` must be at least this


# -- the paper's two layouts -----------------------------------------------------------------------
class Layout:
    """How one of the paper's model kinds lays out its rows: what fits the context, the training examples of labeled
    tasks, and the rows prediction feeds (with where their answers are read)."""

    kind: str

    def __init__(self, alphabet: Alphabet, context: int):
        self.alphabet, self.context = alphabet, context

    def max_residue_length(self) -> int:
        """Longest protein whose per-residue layout fits the context."""
        raise NotImplementedError

    def protein_budget(self) -> int:
        """Residues a per-protein row keeps."""
        raise NotImplementedError

    def crop_protein(self, sequence: str) -> str:
        """Per-protein rule: keep the first and last half of the budget (N- and C-terminal signals)."""
        return crop_ends(sequence, self.protein_budget())

    def protein_row(self, task: Task, sequence: str) -> Example:
        """The row prediction feeds for a per-protein task (sequence already cropped)."""
        raise NotImplementedError

    def protein_answer_column(self, batch: Batch) -> torch.Tensor:
        """(B,) the column of each row whose logits hold the per-protein answer."""
        raise NotImplementedError


class DecoderLayout(Layout):
    """`residues <CTRL> answer`, causal: the answer follows the control token."""

    kind = "decoder"

    def max_residue_length(self) -> int:
        return (self.context - 2) // 2

    def protein_budget(self) -> int:
        return self.context - 3

    def residue_example(self, task: Task, sequence: str, labels: str, resolved) -> Example | None:
        n = len(sequence)
        if n > self.max_residue_length():
            return None
        answer = torch.cat([self.alphabet.encode_labels(task, labels), torch.tensor([self.alphabet.eos_id])])
        weights = torch.zeros(2 * n + 2)
        weights[n + 1 : 2 * n + 1] = torch.as_tensor(resolved, dtype=torch.float32)
        weights[-1] = 1.0
        return _shifted(answer_row(self.alphabet, task, sequence, answer), weights)

    def protein_example(self, task: Task, sequence: str, label: str) -> Example:
        label_id = self.alphabet.index[task.label_token(label)]
        row = answer_row(self.alphabet, task, self.crop_protein(sequence), torch.tensor([label_id, self.alphabet.eos_id]))
        weights = torch.zeros(len(row.inputs))
        weights[-2] = 1.0
        return _shifted(row, weights)

    def protein_row(self, task: Task, sequence: str) -> Example:
        return answer_row(self.alphabet, task, sequence, torch.tensor([], dtype=torch.long))

    def protein_answer_column(self, batch: Batch) -> torch.Tensor:
        return batch.valid.sum(1) - 1


class EncoderLayout(Layout):
    """`<CTRL> residues`, bidirectional: the per-protein answer at column 0, residue k's at column k + 1."""

    kind = "encoder"

    def max_residue_length(self) -> int:
        return self.context - 1

    def protein_budget(self) -> int:
        return self.context - 1

    def residue_example(self, task: Task, sequence: str, labels: str, resolved) -> Example | None:
        if len(sequence) > self.max_residue_length():
            return None
        ex = encoder_row(self.alphabet, task, sequence)
        ex.targets[1:] = self.alphabet.encode_labels(task, labels)
        ex.weights[1:] = torch.as_tensor(resolved, dtype=torch.float32)
        return ex

    def protein_example(self, task: Task, sequence: str, label: str) -> Example:
        ex = encoder_row(self.alphabet, task, self.crop_protein(sequence))
        ex.targets[0] = self.alphabet.index[task.label_token(label)]
        ex.weights[0] = 1.0
        return ex

    def protein_row(self, task: Task, sequence: str) -> Example:
        return encoder_row(self.alphabet, task, sequence)

    def protein_answer_column(self, batch: Batch) -> torch.Tensor:
        return torch.zeros_like(batch.valid[:, 0], dtype=torch.long)


LAYOUTS = {layout.kind: layout for layout in (OnePassLayout, DecoderLayout, EncoderLayout)}


def layout_for(kind: str, alphabet: Alphabet, context: int, n_segments: int = SEGMENTS_USED) -> Layout | OnePassLayout:
    """The layout of a model kind ("onepass", "decoder" or "encoder") for a model with `context` positions
    and `n_segments` segment embeddings."""
    if n_segments < SEGMENTS_USED:
        raise ValueError(f"the row layouts use {SEGMENTS_USED} segments; the model has {n_segments}")
    return LAYOUTS[kind](alphabet, context)
