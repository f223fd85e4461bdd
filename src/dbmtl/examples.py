"""Records -> token sequences the decoder trains on, with the paper's rules for long proteins.

Layouts (T = model context):
  LM           <UNIREF50> residues <eos>          first T-2 residues kept (paper: first 1024)
  per-residue  residues <CTRL> labels <eos>       proteins with > (T-2)//2 residues are not trained on
                                                  (paper: "drop > 512"; with T = 1024 the cut is 511)
  per-protein  residues <CTRL> label <eos>        first and last (T-3)//2 residues kept (paper: 512 + 512)
Loss is on the tokens after the control token only (labels and <eos>; for LM every residue and <eos>),
and unresolved residues carry zero loss weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .tasks import Task
from .tokens import Alphabet


@dataclass
class Example:
    task: str
    tokens: torch.Tensor   # (n,) input ids: the whole layout
    weights: torch.Tensor  # (n,) loss weight for predicting tokens[i] from tokens[:i]


def max_residue_length(context: int) -> int:
    """Longest protein whose per-residue layout fits the context."""
    return (context - 2) // 2


def crop_protein(sequence: str, context: int) -> str:
    """Per-protein rule: keep the first and last half of the budget (N- and C-terminal signals)."""
    budget = context - 3
    if len(sequence) <= budget:
        return sequence
    head = (budget + 1) // 2
    return sequence[:head] + sequence[len(sequence) - (budget - head):]


def lm_example(alphabet: Alphabet, task: Task, sequence: str, context: int) -> Example:
    residues = alphabet.encode_residues(sequence[: context - 2])
    tokens = torch.cat([torch.tensor([alphabet.control_id(task)]), residues, torch.tensor([alphabet.eos_id])])
    weights = torch.ones(len(tokens))
    weights[0] = 0.0
    return Example(task.name, tokens, weights)


def residue_example(
    alphabet: Alphabet, task: Task, sequence: str, labels: str, resolved, context: int
) -> Example | None:
    if len(sequence) > max_residue_length(context):
        return None
    residues = alphabet.encode_residues(sequence)
    label_ids = alphabet.encode_labels(task, labels)
    tokens = torch.cat([residues, torch.tensor([alphabet.control_id(task)]), label_ids, torch.tensor([alphabet.eos_id])])
    weights = torch.zeros(len(tokens))
    n = len(sequence)
    weights[n + 1 : 2 * n + 1] = torch.as_tensor(resolved, dtype=torch.float32)
    weights[-1] = 1.0
    return Example(task.name, tokens, weights)


def protein_example(alphabet: Alphabet, task: Task, sequence: str, label: str, context: int) -> Example:
    residues = alphabet.encode_residues(crop_protein(sequence, context))
    tail = torch.tensor([alphabet.control_id(task), alphabet.index[task.label_token(label)], alphabet.eos_id])
    tokens = torch.cat([residues, tail])
    weights = torch.zeros(len(tokens))
    weights[-2] = 1.0
    return Example(task.name, tokens, weights)


def collate(examples: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad into (B, T) tokens and weights; padding has weight 0."""
    longest = max(len(e.tokens) for e in examples)
    tokens = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    weights = torch.zeros((len(examples), longest))
    for i, e in enumerate(examples):
        tokens[i, : len(e.tokens)] = e.tokens
        weights[i, : len(e.weights)] = e.weights
    return tokens, weights
