"""A speed comparator of S4PRED's size: the single-sequence secondary-structure predictor that reaches
CB513 Q3 75.3 (Moffat & Jones 2021) with an ensemble of five 3-layer bidirectional GRUs, hidden size 1024,
on a 128-wide embedding of the residues (about 224M parameters). Random weights: the time of a recurrent
network does not depend on its values, so no trained weights are needed to measure it.

Timed as S4PRED predicts: one protein at a time (batch 1), every member over the whole sequence, the
members' log-probabilities averaged, a 3-state label per residue.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from .timing import sync

MEMBERS, LAYERS, HIDDEN, EMBED = 5, 3, 1024, 128  # S4PRED's ensemble
VOCAB = 22  # 20 amino acids, X (any other letter), padding
PUBLISHED_CB513_Q3 = 75.3  # S4PRED's paper, single sequence
_INDEX = {a: i for i, a in enumerate("ACDEFGHIKLMNPQRSTVWY")}


class Member(nn.Module):
    """One bidirectional GRU over the embedded residues, a linear 3-state head on each residue."""

    def __init__(self, layers: int = LAYERS, hidden: int = HIDDEN, embed: int = EMBED):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, embed, padding_idx=VOCAB - 1)
        self.gru = nn.GRU(embed, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.embed(tokens))
        return torch.log_softmax(self.head(states), dim=-1)


class Ensemble(nn.Module):
    """The members' log-probabilities, averaged."""

    def __init__(self, members: int = MEMBERS, **sizes):
        super().__init__()
        self.members = nn.ModuleList(Member(**sizes) for _ in range(members))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(tokens) for m in self.members]).mean(0)


def build_ensemble(device: str = "cpu", seed: int = 0, **sizes) -> Ensemble:
    """The ensemble with random weights; on device "meta" nothing is allocated (for counting parameters)."""
    torch.manual_seed(seed)
    with torch.device(device):
        return Ensemble(**sizes).eval()


def encode(sequence: str) -> torch.Tensor:
    """Residue indices of one protein as a batch of one (letters outside the 20 amino acids: X)."""
    return torch.tensor([[_INDEX.get(a, VOCAB - 2) for a in sequence]])


def s4pred_worker(spec: dict) -> dict:
    """Time the ensemble (float32) on the first spec["proteins"] of spec["fasta"], one protein at a time,
    after one untimed call on the start of the first; spec["hidden"] only shrinks it for tests."""
    from ..readers.fasta import read_fasta

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    sequences = [r.sequence for _, r in zip(range(spec["proteins"]), read_fasta(spec["fasta"], check_duplicates=False))]
    model = build_ensemble(device, hidden=spec.get("hidden", HIDDEN))
    with torch.inference_mode():
        model(encode(sequences[0][:32]).to(device))
        sync(device)
        start = time.perf_counter()
        for seq in sequences:
            model(encode(seq).to(device)).argmax(-1).cpu()
        sync(device)
        seconds = time.perf_counter() - start
    gru = model.members[0].gru
    residues = sum(len(s) for s in sequences)
    return {"members": len(model.members), "layers": gru.num_layers, "bidirectional": gru.bidirectional,
            "hidden": gru.hidden_size, "embed": gru.input_size, "params": sum(p.numel() for p in model.parameters()),
            "dtype": "fp32", "device": device, "threads": spec["threads"], "proteins": len(sequences),
            "residues": residues, "seconds": seconds, "s_per_protein": seconds / len(sequences),
            "s_per_residue": seconds / residues, "published_cb513_q3": PUBLISHED_CB513_Q3}


def speed_ratios(s4pred: dict, predict_rows: list[dict]) -> dict:
    """Speed per residue of each `dbmtl predict` run (one per precision) over the ensemble's (above 1: dbmtl
    is faster): the two ran on different numbers of proteins, so only per-residue times compare."""
    return {row["dtype"]: s4pred["s_per_residue"] / (row["wall_s"] / row["residues"]) for row in predict_rows}
