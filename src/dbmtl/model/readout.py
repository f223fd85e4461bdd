"""The per-protein readout: location and membrane answered from summaries of the backbone's final states
by small networks fitted to convergence on the frozen backbone (dbmtl.training.readout), in place of the
answers at <LOC> and <MS>. Optional: a model folder without `readout.safetensors` answers at its tokens.

The summaries of a one-pass row (`<LOC> <MS> residues`, final hidden states): the <LOC> and <MS> states,
the mean and the maximum over residues, and the means over the first and last `termini` residues, where
sorting signals sit. Each task's answer is the mean probability of `members` one-hidden-layer networks
(different seeds) over the standardized summaries.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.onepass import PREFIX  # <LOC> <MS>

SUMMARIES = ("loc_state", "ms_state", "mean", "max", "n_term", "c_term")
READOUT_FILE = "readout.safetensors"


def summaries(states: torch.Tensor, lengths: list[int], termini: int) -> torch.Tensor:
    """(B, 6 * n_embd) float32 summaries of right-padded one-pass rows' final states (B, T, n_embd);
    `lengths`: residues per row (padding never enters a summary)."""
    states = states.float()
    out = []
    for row, n in zip(states, lengths):
        res = row[PREFIX : PREFIX + n]
        k = min(termini, n)
        out.append(torch.cat([row[0], row[1], res.mean(0), res.amax(0), res[:k].mean(0), res[-k:].mean(0)]))
    return torch.stack(out)


class ProteinReadout(nn.Module):
    """Per task, `members` networks summaries -> hidden (ReLU) -> labels; answers are their mean softmax."""

    def __init__(self, n_embd: int, tasks: dict[str, int], hidden: int = 256, members: int = 3, termini: int = 40):
        super().__init__()
        self.settings = dict(n_embd=n_embd, tasks=dict(tasks), hidden=hidden, members=members, termini=termini)
        width = len(SUMMARIES) * n_embd
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.nets = nn.ModuleDict({
            task: nn.ModuleList(nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, n))
                                for _ in range(members))
            for task, n in tasks.items()})

    @property
    def termini(self) -> int:
        return self.settings["termini"]

    def logits(self, task: str, features: torch.Tensor, member: int) -> torch.Tensor:
        return self.nets[task][member]((features - self.center) / self.scale)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """{task: (B, n_labels) float32 probabilities} from (B, 6 * n_embd) summaries."""
        return {task: torch.stack([torch.softmax(self.logits(task, features, m).float(), -1)
                                   for m in range(len(nets))]).mean(0)
                for task, nets in self.nets.items()}

    def save(self, folder: str | Path) -> dict:
        """Write the weights into a model folder; returns the settings its config.json keeps ("readout")."""
        from safetensors.torch import save_file
        save_file({k: v.detach().float().contiguous() for k, v in self.state_dict().items()},
                  str(Path(folder) / READOUT_FILE))
        return dict(self.settings)

    @classmethod
    def from_settings(cls, settings: dict) -> "ProteinReadout":
        if not isinstance(settings, dict):
            raise ValueError(f"'readout' must be an object, not {settings!r}")
        try:
            return cls(**settings)
        except TypeError as exc:
            raise ValueError(f"'readout': {exc}") from None


def load_readout(folder: str | Path, settings) -> ProteinReadout:
    """The readout of a model folder whose config.json names one ("readout"), its file checked as the
    model's weights are: present, readable, the shapes its settings imply, finite."""
    from safetensors.torch import load_file
    path = Path(folder) / READOUT_FILE
    readout = ProteinReadout.from_settings(settings)
    if not path.is_file():
        raise ValueError(f"{path}: missing (config.json names a readout)")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = {k: tuple(v.shape) for k, v in readout.state_dict().items()}
    if {k: tuple(v.shape) for k, v in state.items()} != expected:
        raise ValueError(f"{path}: weights do not match the readout settings in config.json")
    if not all(torch.isfinite(v).all() for v in state.values()):
        raise ValueError(f"{path}: weights contain NaN or inf")
    readout.load_state_dict(state)
    return readout.eval()
