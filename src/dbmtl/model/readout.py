"""Readouts: small networks fitted to convergence on a onepass model's frozen backbone
(dbmtl.training.readout) that answer in place of its output head. Each is optional: a model folder without
its file answers from the head.

The per-protein readout (`readout.safetensors`, config.json "readout") answers location and membrane from
summaries of the backbone's final states, in place of the answers at <LOC> and <MS>. The per-residue
readout (`residue_readout.safetensors`, "residue_readout") adds to the head's SS8 logits at every residue
two 1-D convolutions over the residues' final states; SS3 is derived from its SS8 as always.

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
RESIDUE_READOUT_FILE = "residue_readout.safetensors"


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
        return _save(self, Path(folder) / READOUT_FILE)


class ResidueReadout(nn.Module):
    """SS8 logits at every residue: the head's own plus conv(relu(conv(standardized final states))). Its
    last convolution starts at zero, so an unfitted readout answers as the head does."""

    def __init__(self, n_embd: int, hidden: int = 128, kernel: int = 9, dropout: float = 0.25):
        super().__init__()
        self.settings = dict(n_embd=n_embd, hidden=hidden, kernel=kernel, dropout=dropout)
        self.register_buffer("center", torch.zeros(n_embd))
        self.register_buffer("scale", torch.ones(n_embd))
        self.first = nn.Conv1d(n_embd, hidden, kernel, padding=kernel // 2)
        self.last = nn.Conv1d(hidden, 8, kernel, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout)  # fitting only
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def forward(self, states: torch.Tensor, own: torch.Tensor, lengths: list[int] | torch.Tensor) -> torch.Tensor:
        """(B, T, 8) SS8 logits from right-padded residue states (B, T, n_embd), the head's (B, T, 8) SS8
        logits there and each row's residue count (padding reads as zero in both convolutions, as a
        protein's ends do, so a row's answers do not depend on its batch)."""
        lengths = torch.as_tensor(lengths, device=states.device)
        inside = torch.arange(states.shape[1], device=states.device)[None, :] < lengths[:, None]
        x = ((states.float() - self.center) / self.scale) * inside[..., None]
        h = self.dropout(torch.relu(self.first(x.transpose(1, 2)))) * inside[:, None, :]
        return own.float() + self.last(h).transpose(1, 2)

    def save(self, folder: str | Path) -> dict:
        """Write the weights into a model folder; returns the settings config.json keeps ("residue_readout")."""
        return _save(self, Path(folder) / RESIDUE_READOUT_FILE)


def _save(readout: nn.Module, path: Path) -> dict:
    from safetensors.torch import save_file
    save_file({k: v.detach().float().contiguous() for k, v in readout.state_dict().items()}, str(path))
    return dict(readout.settings)


# what config.json calls each readout, its class and its file
READOUTS = {"readout": (ProteinReadout, READOUT_FILE), "residue_readout": (ResidueReadout, RESIDUE_READOUT_FILE)}


def load_readout(folder: str | Path, settings, key: str = "readout") -> ProteinReadout | ResidueReadout:
    """The readout a model folder's config.json names under `key` ("readout" or "residue_readout"), its
    file checked as the model's weights are: present, readable, the shapes its settings imply, finite."""
    from safetensors.torch import load_file
    cls, name = READOUTS[key]
    path = Path(folder) / name
    if not isinstance(settings, dict):
        raise ValueError(f"{key!r} must be an object, not {settings!r}")
    try:
        readout = cls(**settings)
    except TypeError as exc:
        raise ValueError(f"{key!r}: {exc}") from None
    if not path.is_file():
        raise ValueError(f"{path}: missing (config.json names it under {key!r})")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = {k: tuple(v.shape) for k, v in readout.state_dict().items()}
    if {k: tuple(v.shape) for k, v in state.items()} != expected:
        raise ValueError(f"{path}: weights do not match the {key!r} settings in config.json")
    if not all(torch.isfinite(v).all() for v in state.values()):
        raise ValueError(f"{path}: weights contain NaN or inf")
    readout.load_state_dict(state)
    return readout.eval()
