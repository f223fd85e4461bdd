"""What the model reads while training and how it is scored: label inputs (true, hidden, noised or the
model's own), one forward pass, and the weighted cross-entropy shared by training and validation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.layouts import Batch
from ..tasks import TASKS
from ..tokens import Alphabet


def label_input_tables(alphabet: Alphabet) -> torch.Tensor:
    """(3, vocab) lookup tables, indexed by token id: [0] the id fed in its place in placeholder mode
    (each per-residue label becomes its task's control token, others stay), [1] the first label id and
    [2] the number of labels of its per-residue task (0 for other tokens), for drawing noised labels."""
    placeholder = torch.arange(len(alphabet))
    first = torch.zeros(len(alphabet), dtype=torch.long)
    size = torch.zeros(len(alphabet), dtype=torch.long)
    for task in TASKS.values():
        if task.kind == "residue":
            ids = alphabet.label_ids(task)
            if ids != list(range(ids[0], ids[0] + len(ids))):
                raise ValueError(f"labels of {task.name} are not contiguous in the alphabet")
            placeholder[ids] = alphabet.control_id(task)
            first[ids], size[ids] = ids[0], len(ids)
    return torch.stack([placeholder, first, size])


_TABLES: dict[tuple, torch.Tensor] = {}


def _tables(alphabet: Alphabet, device) -> torch.Tensor:
    """label_input_tables, built once per alphabet and device rather than every micro-batch."""
    key = (tuple(alphabet.tokens), str(device))
    if key not in _TABLES:
        _TABLES[key] = label_input_tables(alphabet).to(device)
    return _TABLES[key]


def model_inputs(inputs: torch.Tensor, alphabet: Alphabet, label_inputs: str, noise: float = 0.0) -> torch.Tensor:
    """What the model reads. In placeholder mode per-residue label inputs are hidden: each is replaced
    by the task's control token, so every label slot also says which task it is. With `noise` > 0
    (noised teacher inputs, training only) each per-residue label input is replaced, with that
    probability, by a label of its task drawn uniformly (torch's random stream, like dropout)."""
    if label_inputs == "placeholder":
        return _tables(alphabet, inputs.device)[0][inputs]
    if noise > 0:
        _, first, size = _tables(alphabet, inputs.device)
        n = size[inputs]
        hit = (n > 0) & (torch.rand(inputs.shape, device=inputs.device) < noise)
        drawn = first[inputs] + (torch.rand(inputs.shape, device=inputs.device) * n).long()
        return torch.where(hit, drawn, inputs)
    return inputs


def forward(model: torch.nn.Module, inputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Logits for `inputs` laid out as `batch` (padding masked only in bidirectional rows)."""
    return model(inputs, positions=batch.positions, segments=batch.segments,
                 valid=None if batch.causal else batch.valid, causal=batch.causal)


@torch.no_grad()
def own_label_inputs(model: torch.nn.Module, batch: Batch, alphabet: Alphabet, rate: float) -> torch.Tensor:
    """Scheduled sampling, parallel variant: the batch's inputs with each per-residue label input replaced,
    with probability `rate`, by the model's own prediction of that label (argmax over its task's labels)
    from one gradient-free pass over the true labels. Other tokens are kept; in a decoder row the label
    at input position t is predicted by the logits at t - 1."""
    inputs = batch.inputs
    _, first, size = _tables(alphabet, inputs.device)
    is_label = size[inputs] > 0
    if rate <= 0 or not bool(is_label.any()):
        return inputs
    logits = forward(model, inputs, batch).float()
    lo, n = first[inputs[:, 1:]], size[inputs[:, 1:]]  # the label range of each label input
    k = int(n.max())
    span = lo.unsqueeze(-1) + torch.arange(k, device=inputs.device)  # (B, T-1, k) candidate label ids
    scores = logits[:, :-1].gather(-1, span.clamp(max=logits.shape[-1] - 1))
    scores = scores.masked_fill(torch.arange(k, device=inputs.device) >= n.unsqueeze(-1), float("-inf"))
    predicted = lo + scores.argmax(-1)
    hit = is_label[:, 1:] & (torch.rand(predicted.shape, device=inputs.device) < rate)
    out = inputs.clone()
    out[:, 1:] = torch.where(hit, predicted, inputs[:, 1:])
    return out


def task_loss(model: torch.nn.Module, batch: Batch, alphabet: Alphabet, label_inputs: str, noise: float = 0.0
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted cross-entropy over a right-padded batch; returns (mean loss, summed loss, logits).
    `model` may be the bare transformer or its DDP/FSDP wrapper. `noise` > 0 is training only: the
    label-input replacement rate of "noised" and "sampled" (validation reads the true labels)."""
    if label_inputs == "sampled":
        inputs = own_label_inputs(model, batch, alphabet, noise)
    else:
        inputs = model_inputs(batch.inputs, alphabet, label_inputs, noise)
    logits = forward(model, inputs, batch)
    targets, w = batch.targets, batch.weights
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    total = (nll * w.reshape(-1)).sum()
    return total / w.sum().clamp(min=1.0), total, logits
