"""What every model kind's rows are made of: one aligned example, a padded batch of them, the crop that
keeps both ends of a long protein, and BERT's masking of residues."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tokens import STANDARD_AMINO_ACIDS, Alphabet


@dataclass
class Example:
    task: str
    inputs: torch.Tensor     # (n,) token ids the model reads
    targets: torch.Tensor    # (n,) token id to predict at each position
    weights: torch.Tensor    # (n,) loss weight of each target
    positions: torch.Tensor  # (n,) position (within the segment, for decoder answers)
    segments: torch.Tensor   # (n,) 0 = sequence, 1 = control token and answer (decoder), 2+ = task (encoder)
    causal: bool = True      # decoder / LM rows; False: bidirectional rows


@dataclass
class Batch:
    inputs: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    positions: torch.Tensor
    segments: torch.Tensor
    valid: torch.Tensor      # True for real tokens, False for padding
    causal: bool = True

    def to(self, device) -> "Batch":
        moved = (t.to(device, non_blocking=True) for t in
                 (self.inputs, self.targets, self.weights, self.positions, self.segments, self.valid))
        return Batch(*moved, causal=self.causal)


def collate(examples: list[Example], pad_id: int, left: bool = False) -> Batch:
    """Pad into (B, T); padding has weight 0 and valid False. Right padding for training and one-pass
    prediction; left padding for free-running decoding, so every row's next token is the last column.
    A batch holds rows of one attention kind (causal or bidirectional)."""
    causal = examples[0].causal
    if any(e.causal != causal for e in examples):
        raise ValueError("a batch mixes causal and bidirectional rows")
    longest = max(len(e.inputs) for e in examples)
    B = len(examples)
    inputs = torch.full((B, longest), pad_id, dtype=torch.long)
    targets = torch.full((B, longest), pad_id, dtype=torch.long)
    weights = torch.zeros((B, longest))
    positions = torch.zeros((B, longest), dtype=torch.long)
    segments = torch.zeros((B, longest), dtype=torch.long)
    valid = torch.zeros((B, longest), dtype=torch.bool)
    for i, e in enumerate(examples):
        n = len(e.inputs)
        cols = slice(longest - n, longest) if left else slice(0, n)
        inputs[i, cols] = e.inputs
        targets[i, cols] = e.targets
        weights[i, cols] = e.weights
        positions[i, cols] = e.positions
        segments[i, cols] = e.segments
        valid[i, cols] = True
    return Batch(inputs, targets, weights, positions, segments, valid, causal)


def crop_ends(sequence: str, budget: int) -> str:
    """A per-protein row's residues: the first and last halves of `budget` (N- and C-terminal signals)."""
    if len(sequence) <= budget:
        return sequence
    head = (budget + 1) // 2
    return sequence[:head] + sequence[len(sequence) - (budget - head):]


def mask_residues(inputs: torch.Tensor, targets: torch.Tensor, alphabet: Alphabet, rate: float = 0.15,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking over rows whose residue targets are the residues themselves (any shape): every
    residue target is chosen with probability `rate`; a chosen residue is read as <mask> (80%), as a
    random standard amino acid (10%) or as itself (10%). Returns (inputs to read, loss weights: 1 on
    chosen residues only)."""
    def uniform():
        return torch.rand(inputs.shape, generator=generator, device=inputs.device)

    candidate = (targets != alphabet.pad_id) & (inputs == targets)
    chosen = candidate & (uniform() < rate)
    how = uniform()
    standard = torch.tensor([alphabet.index[a] for a in STANDARD_AMINO_ACIDS], device=inputs.device)
    random_aa = standard[(uniform() * len(standard)).long().clamp(max=len(standard) - 1)]
    read = torch.where(chosen & (how < 0.8), torch.full_like(inputs, alphabet.mask_id), inputs)
    read = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_aa, read)
    return read, chosen.float()
