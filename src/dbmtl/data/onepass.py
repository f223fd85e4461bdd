"""The rows of the shipped kind, onepass: `<LOC> <MS> residues`, read both ways, every answer from one
forward pass (the heads that read the answers and score them: dbmtl.model.heads).

Column 0 (<LOC>) answers the location, column 1 (<MS>) membrane-bound or soluble, and residue k (column
k + 2) its 8-state secondary structure over the <ss8:*> label tokens of the tied output head; the 3-state
answer is the SS8 distribution summed over each class (dbmtl.model.heads.OnePassHeads.ss3_from_ss8), so SS3 and SS8 never
disagree in probability. In masked-LM rows the residue columns also predict their amino acid (restricted
to amino-acid tokens). The whole row is one segment (0): every row of the kind has the same shape, so
there is no task to tell apart, and the model needs no segment embedding beyond those it already has.

Long proteins, as the encoder: per-residue labels only up to T-2 residues (longer proteins keep their
per-protein labels on the first and last halves of T-2 residues); prediction windows longer ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tasks import LOCATIONS, MEMBRANE_LABELS, SS3_LABELS, SS8_LABELS, TASKS
from ..tokens import Alphabet
from .rows import Example, crop_ends

PREFIX = 2  # <LOC> <MS> before the residues
SEGMENT = 0


@dataclass
class OnePassExample:
    """One protein's row and every label it has. -1 marks a column (or protein) without that label."""

    inputs: torch.Tensor    # (n,) `<LOC> <MS> residues`
    ss8: torch.Tensor       # (n,) SS8 label index per column
    ss3: torch.Tensor       # (n,) SS3 label index per column, scored on the SS3 derived from SS8
    residues: torch.Tensor  # (n,) residue ids masked LM may hide and predict; pad where it may not
    loc: torch.Tensor       # (10,) location target distribution: one-hot, uniform over several, or zeros
    ms: int                 # membrane label index


@dataclass
class OnePassBatch:
    """Right-padded rows of one-pass examples and every label they carry. Every row has the same shape:
    column k at position k, all in segment 0 (dbmtl.model.heads.one_pass_logits), so a batch carries
    neither."""

    inputs: torch.Tensor
    residues: torch.Tensor
    ss8: torch.Tensor
    ss3: torch.Tensor
    loc: torch.Tensor
    ms: torch.Tensor
    valid: torch.Tensor
    lm_weights: torch.Tensor  # 1 on residues hidden for masked LM (set by mask_residues), else 0

    def to(self, device) -> "OnePassBatch":
        names = ("inputs", "residues", "ss8", "ss3", "loc", "ms", "valid", "lm_weights")
        return OnePassBatch(*(getattr(self, n).to(device, non_blocking=True) for n in names))


def collate_one_pass(examples: list[OnePassExample], pad_id: int) -> OnePassBatch:
    """Right-padded (B, T); padding is unscored and invalid."""
    longest = max(len(e.inputs) for e in examples)
    B = len(examples)

    def stack(name: str, fill: int) -> torch.Tensor:
        out = torch.full((B, longest), fill, dtype=torch.long)
        for i, e in enumerate(examples):
            out[i, : len(e.inputs)] = getattr(e, name)
        return out

    inputs = stack("inputs", pad_id)
    return OnePassBatch(inputs, stack("residues", pad_id), stack("ss8", -1), stack("ss3", -1),
                        torch.stack([e.loc for e in examples]), torch.tensor([e.ms for e in examples]),
                        inputs != pad_id, torch.zeros(B, longest))


def label_indices(values: str, labels: tuple[str, ...]) -> torch.Tensor:
    """Index of each one-letter label in `labels` (a lookup table, not a Python loop per residue)."""
    table = torch.full((256,), -1, dtype=torch.long)
    table[[ord(c) for c in labels]] = torch.arange(len(labels))
    index = table[torch.frombuffer(bytearray(values.encode("ascii")), dtype=torch.uint8).long()]
    if (index < 0).any():
        raise ValueError(f"not one of the labels {labels}: {values[int((index < 0).nonzero()[0])]!r}")
    return index


def location_target(location: str | None, locations: tuple[str, ...] | None) -> torch.Tensor:
    """One-hot for one location, uniform over several (a soft target), zeros when unknown."""
    target = torch.zeros(len(LOCATIONS))
    names = locations or ((location,) if location else ())
    for name in names:
        target[LOCATIONS.index(name)] = 1.0 / len(names)
    return target


class OnePassLayout:
    """`<LOC> <MS> residues`, bidirectional: location at column 0, membrane at 1, residue k at k + 2."""

    kind = "onepass"

    def __init__(self, alphabet: Alphabet, context: int):
        self.alphabet, self.context = alphabet, context

    def max_residue_length(self) -> int:
        return self.context - PREFIX

    def protein_budget(self) -> int:
        return self.context - PREFIX

    def crop_protein(self, sequence: str) -> str:
        """A protein too long for one row keeps its first and last halves for the per-protein answers."""
        return crop_ends(sequence, self.protein_budget())

    def row(self, sequence: str, masked_lm: bool = False) -> OnePassExample:
        """An unlabeled row of a sequence that fits; with masked_lm its residues may be hidden and scored."""
        al = self.alphabet
        residues = al.encode_residues(sequence)
        prefix = torch.tensor([al.control_id(TASKS["loc"]), al.control_id(TASKS["ms"])])
        inputs = torch.cat([prefix, residues])
        n = len(inputs)
        targets = torch.full((n,), al.pad_id, dtype=torch.long)
        if masked_lm:
            targets[PREFIX:] = residues
        none = torch.full((n,), -1, dtype=torch.long)
        return OnePassExample(inputs, none, none.clone(), targets, torch.zeros(len(LOCATIONS)), -1)

    def prediction_row(self, sequence: str) -> Example:
        """The row prediction feeds (a sequence that fits), as a plain bidirectional Example."""
        inputs = self.row(sequence).inputs
        n = len(inputs)
        return Example("onepass", inputs, torch.zeros_like(inputs), torch.zeros(n), torch.arange(n),
                       torch.full((n,), SEGMENT, dtype=torch.long), causal=False)

    def lm_example(self, sequence: str) -> OnePassExample:
        """A corpus sequence's masked-LM row: its first T-2 residues."""
        return self.row(sequence[: self.max_residue_length()], masked_lm=True)

    def example(self, residue_record=None, protein_record=None, masked_lm: bool = False) -> OnePassExample | None:
        """The training row of one protein with every label its records hold (None: no label at all).
        Per-residue labels of a protein longer than T-2 residues are dropped, as the encoder drops them;
        its per-protein labels stay, on the cropped sequence."""
        record = residue_record or protein_record
        sequence = record.sequence
        fits = len(sequence) <= self.max_residue_length()
        ex = self.row(sequence if fits else self.crop_protein(sequence), masked_lm and fits)
        labeled = False
        if residue_record is not None and fits:
            resolved = torch.as_tensor(residue_record.resolved, dtype=torch.bool)
            for name, labels in (("ss8", SS8_LABELS), ("ss3", SS3_LABELS)):
                values = getattr(residue_record, name)
                if values is not None:
                    getattr(ex, name)[PREFIX:] = torch.where(resolved, label_indices(values, labels), -1)
                    labeled = labeled or bool(resolved.any())
        if protein_record is not None:
            ex.loc = location_target(protein_record.location, protein_record.locations)
            if protein_record.membrane is not None:
                ex.ms = MEMBRANE_LABELS.index(protein_record.membrane)
            labeled = labeled or bool(ex.loc.sum() > 0) or ex.ms >= 0
        return ex if labeled else None


def one_pass_examples(data, layout: OnePassLayout, masked_lm: bool = False) -> list[OnePassExample]:
    """Every labeled protein of TrainingData once, with all its labels: a sequence with per-residue and
    per-protein records gets both. masked_lm: labeled rows also take part in masked LM."""
    by_seq: dict[str, list] = {}
    for r in data.residue:
        by_seq.setdefault(r.sequence, [None, None])[0] = r
    for r in data.protein:
        by_seq.setdefault(r.sequence, [None, None])[1] = r
    examples = (layout.example(res, prot, masked_lm) for res, prot in by_seq.values())
    return [ex for ex in examples if ex is not None]
