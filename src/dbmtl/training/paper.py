"""Training the paper's kinds, the decoder and its named fix the encoder (configs/paper.json): every row
carries one task's target, and every micro-batch is one task's rows.

What such a model reads while training and how it is scored: label inputs (true, hidden, noised or the
model's own), one forward pass, and the weighted cross-entropy shared by training and validation
(`task_loss`); `PaperObjective` plugs them into the Trainer. The shipped kind trains in `onepass`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.catalog import TrainingData
from ..data.layouts import Batch, Layout, collate, mask_residues
from ..data.pools import LabeledPool, labeled_examples
from ..model.config import ModelConfig
from ..tasks import TASKS
from ..tokens import Alphabet
from .config import TrainConfig
from .inputs import Slot, labeled_pools, lm_validation_rows, validation_sample


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


class PaperObjective:
    """The Trainer's kind-specific part for the decoder and encoder: one pool and one micro-batch kind per
    task (its `groups` are the task weights), rows scored by `task_loss`."""

    def __init__(self, cfg: TrainConfig, model: ModelConfig, alphabet: Alphabet, layout: Layout, device: torch.device):
        self.cfg, self.alphabet, self.layout, self.device = cfg, alphabet, layout, device
        self.masked_lm = cfg.lm_objective == "masked"
        if self.masked_lm and model.kind == "decoder":
            raise ValueError("lm_objective 'masked' needs a bidirectional model: set model kind 'encoder'")
        self.label_inputs = model.label_inputs
        self.label_noise = model.label_noise if self.label_inputs in ("noised", "sampled") else 0.0
        self.groups = {t: w for t, w in cfg.tasks.items() if w > 0}
        self.lm_row = None  # the corpus stream's own rows: causal, or masked as `masked_lm` says

    def pools(self, train: TrainingData) -> dict[str, LabeledPool]:
        return labeled_pools(self.groups, train, self.layout, self.cfg.seed)

    def micro_batch(self, slot: Slot, task: str, pools: dict[str, LabeledPool]) -> Batch:
        tokens = self.cfg.tokens_for(task)
        examples = slot.lm.sample(tokens) if task == "lm" else pools[task].sample(slot.rng, tokens)
        batch = collate(examples, self.alphabet.pad_id).to(self.device)
        if task == "lm" and self.masked_lm:  # fresh residues hidden each time (torch's stream, like dropout)
            batch.inputs, batch.weights = mask_residues(batch.inputs, batch.targets, self.alphabet, self.cfg.mask_rate)
        return batch

    def loss(self, model: torch.nn.Module, batch: Batch, task: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The micro-batch's loss, and the per-task losses to log."""
        loss, _, _ = task_loss(model, batch, self.alphabet, self.label_inputs, self.label_noise)
        return loss, {task: loss}

    def validation_rows(self, valid: TrainingData, data: TrainingData) -> dict[str, list]:
        """Each task's sampled validation examples; LM rows of a masked objective hide fixed residues."""
        def lm_rows() -> list:
            rows = lm_validation_rows(self.cfg, data, self.alphabet, self.layout.context, self.masked_lm)
            if self.masked_lm:  # the same hidden residues at every validation
                fixed = torch.Generator().manual_seed(self.cfg.validation_seed)
                for ex in rows:
                    ex.inputs, ex.weights = mask_residues(ex.inputs, ex.targets, self.alphabet, self.cfg.mask_rate, fixed)
            return rows

        return validation_sample(self.cfg, self.groups, lambda name: labeled_examples(name, valid, self.layout), lm_rows)

    def validation_sums(self, model: torch.nn.Module, name: str, examples: list, offset: int) -> np.ndarray:
        """(loss sum, loss weight, correct labels, labels) of one chunk of a task's validation examples."""
        batch = collate(examples, self.alphabet.pad_id).to(self.device)
        _, loss_sum, logits = task_loss(model, batch, self.alphabet, self.label_inputs)
        w, targets = batch.weights, batch.targets
        correct = labels = 0.0
        if TASKS[name].labels:
            ids = torch.tensor(self.alphabet.label_ids(TASKS[name]), device=self.device)
            pred = ids[logits.float()[..., ids].argmax(-1)]
            is_label = torch.isin(targets, ids) & (w > 0)
            correct, labels = float((pred == targets)[is_label].sum()), float(is_label.sum())
        return np.array([float(loss_sum), float(w.sum()), correct, labels])
