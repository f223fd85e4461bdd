"""What the shipped model answers, and its loss: every answer is a softmax over its own label tokens of
the tied output head, read from one bidirectional pass over `<LOC> <MS> residues` (dbmtl.data.onepass).

  SS8       at every residue, over the 8 <ss8:*> tokens
  SS3       derived: the SS8 distribution summed over each 3-state class (`OnePassHeads.ss3_from_ss8`, the
            one place; training and predict both call it), so the two never disagree in probability;
            trained as -log of the summed probability of the true class
  location  at <LOC>, over the 10 locations (a soft target: uniform over several known locations)
  membrane  at <MS>, membrane-bound or soluble
  masked LM at hidden residues, over the amino-acid tokens only
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.onepass import OnePassBatch
from ..tasks import SS8_IN_SS3, TASKS
from ..tokens import AMINO_ACIDS, Alphabet


def one_pass_logits(model: torch.nn.Module, batch: OnePassBatch) -> torch.Tensor:
    """(B, T, vocab) logits of a batch of one-pass rows; `model` may be the transformer or its DDP/FSDP
    wrapper. Every column is at its own position, in segment 0 (given as a tensor: the segment
    embedding's gradient is then summed as it always was, so training numbers stay the same)."""
    columns = torch.arange(batch.inputs.shape[1], device=batch.inputs.device).expand_as(batch.inputs)
    return model(batch.inputs, positions=columns, segments=torch.zeros_like(batch.inputs), valid=batch.valid,
                 causal=False)


class OnePassHeads:
    """Log-probabilities of every answer of a one-pass row, and the losses of a labeled batch."""

    def __init__(self, alphabet: Alphabet, device=None):
        def ids(tokens) -> torch.Tensor:
            return torch.tensor([alphabet.index[t] for t in tokens], device=device)

        self.ss8, self.loc, self.ms = (ids(TASKS[n].label_tokens) for n in ("ss8", "loc", "ms"))
        self.aa = ids(AMINO_ACIDS)
        self.aa_index = torch.full((len(alphabet),), -1, dtype=torch.long, device=device)
        self.aa_index[self.aa] = torch.arange(len(self.aa), device=device)
        # the (8, 3) 0/1 table saying which SS3 class each SS8 state falls in
        self.member = torch.tensor(SS8_IN_SS3, dtype=torch.float32, device=device)

    def ss3_from_ss8(self, ss8: torch.Tensor) -> torch.Tensor:
        """(..., 3) SS3 probabilities from (..., 8) SS8 probabilities: the mass of each class's states."""
        return ss8 @ self.member

    def probabilities(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """What predict reads: (B, T, 8) SS8 and (B, T, 3) SS3 at every column, (B, 10) location at <LOC>
        and (B, 2) membrane at <MS>, all float32 probabilities."""
        ss8 = torch.softmax(logits[..., self.ss8].float(), -1)
        return {"ss8": ss8, "ss3": self.ss3_from_ss8(ss8), "loc": torch.softmax(logits[:, 0, self.loc].float(), -1),
                "ms": torch.softmax(logits[:, 1, self.ms].float(), -1)}

    def ss8_ss3(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 8) and (B, T, 3) log-probabilities at every column of full-vocabulary logits."""
        return self.ss8_ss3_of(logits[..., self.ss8])

    def ss8_ss3_of(self, ss8_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 8) and (..., 3) log-probabilities from (..., 8) SS8 logits (the head's or a readout's); SS3
        as predict derives it (the smallest positive float keeps an underflowed class's loss finite)."""
        ss8 = F.log_softmax(ss8_logits.float(), -1)
        ss3 = self.ss3_from_ss8(ss8.exp()).clamp_min(torch.finfo(torch.float32).tiny)
        return ss8, ss3.log()

    def protein(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 10) location and (B, 2) membrane log-probabilities, at <LOC> and <MS>."""
        return (F.log_softmax(logits[:, 0, self.loc].float(), -1), F.log_softmax(logits[:, 1, self.ms].float(), -1))

    def amino_acids(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, T, 25) amino-acid log-probabilities (masked LM)."""
        return F.log_softmax(logits[..., self.aa].float(), -1)

    def scores(self, logits: torch.Tensor, batch: OnePassBatch) -> dict[str, dict]:
        """Per task present in the batch: summed loss ("sum", a tensor), label count ("n") and correct
        answers ("correct": argmax over the task's labels; a soft location target counts its argmax)."""
        out = {}

        def add(name, logp, target, mask):
            if bool(mask.any()):
                picked = logp[mask]
                out[name] = {"sum": -picked.gather(-1, target[mask][:, None]).sum(), "n": int(mask.sum()),
                             "correct": int((picked.argmax(-1) == target[mask]).sum())}

        ss8, ss3 = self.ss8_ss3(logits)
        add("ss8", ss8, batch.ss8.clamp(min=0), batch.ss8 >= 0)
        add("ss3", ss3, batch.ss3.clamp(min=0), batch.ss3 >= 0)
        loc, ms = self.protein(logits)
        known = batch.loc.sum(-1) > 0
        if bool(known.any()):
            out["loc"] = {"sum": -(batch.loc[known] * loc[known]).sum(), "n": int(known.sum()),
                          "correct": int((loc[known].argmax(-1) == batch.loc[known].argmax(-1)).sum())}
        add("ms", ms, batch.ms.clamp(min=0), batch.ms >= 0)
        hidden = batch.lm_weights > 0
        if bool(hidden.any()):
            add("lm", self.amino_acids(logits), self.aa_index[batch.residues].clamp(min=0), hidden)
        return out
