"""Training the shipped kind, onepass: every labeled protein is one row scored on every label it has.

Micro-batches come in two groups: "labeled" (one pool of all labeled proteins, residue- and
protein-labeled alike, token-budget batches around a random protein) and "lm" (the corpus, as masked-LM
rows of the same shape). A micro-batch's loss is sum over the tasks it carries of w_t x that task's mean
loss, divided by its group's weight; with `mixing: "joint"` every step has one micro-batch of each group
scaled by group weight / all weights, with "sample" one group drawn by weight. Either way the expected
loss is sum_t w_t / sum w x mean loss of t, as for the paper's kinds. A labeled micro-batch holds up to
`batch_tokens` tokens, an LM one `task_batch_tokens["lm"]` (default: `batch_tokens` too).

Each task's loss and what it is read from: dbmtl.model.heads.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data.catalog import TrainingData
from ..data.batching import bucketed
from ..data.onepass import PREFIX, OnePassBatch, OnePassExample, OnePassLayout, collate_one_pass, one_pass_examples
from ..data.pools import LabeledPool
from ..data.rows import mask_residues
from ..model.config import ModelConfig
from ..model.heads import OnePassHeads, one_pass_logits
from ..tasks import TASKS
from ..tokens import Alphabet
from .config import TrainConfig
from .inputs import Slot, lm_validation_rows, validation_sample

LABELED = ("ss3", "ss8", "loc", "ms")
ONLY = {"ss3": {"ss8": None}, "ss8": {"ss3": None}, "loc": {"membrane": None},  # a record keeping one label
        "ms": {"location": None, "locations": None}}


class OnePassObjective:
    """The Trainer's kind-specific part for the onepass kind: the pools, micro-batches, loss and
    validation rows of `<LOC> <MS> residues` rows."""

    def __init__(self, cfg: TrainConfig, model: ModelConfig, alphabet: Alphabet, layout: OnePassLayout,
                 device: torch.device):
        if cfg.tasks.get("lm", 0) > 0 and cfg.lm_objective != "masked":
            raise ValueError("a onepass model's LM task is masked LM: set lm_objective 'masked'")
        self.cfg, self.alphabet, self.layout, self.device = cfg, alphabet, layout, device
        self.weights = {t: w for t, w in cfg.tasks.items() if w > 0}
        groups = {"labeled": sum(w for t, w in self.weights.items() if t in LABELED), "lm": self.weights.get("lm", 0)}
        self.groups = {g: w for g, w in groups.items() if w > 0}
        self.heads = OnePassHeads(alphabet, device)
        self.masked_lm = True

    def lm_row(self, alphabet: Alphabet, task, sequence: str, context: int) -> OnePassExample:
        """A corpus sequence's row (called by the corpus stream as it calls masked_lm_example)."""
        return self.layout.lm_example(sequence)

    def pools(self, train: TrainingData) -> dict[str, LabeledPool]:
        if "labeled" not in self.groups:
            return {}
        examples = one_pass_examples(train, self.layout, masked_lm=self.cfg.mask_labeled)
        if not examples:
            raise ValueError("no labeled training proteins in the data")
        return {"labeled": LabeledPool(examples, np.random.default_rng(self.cfg.seed))}

    def micro_batch(self, slot: Slot, group: str, pools: dict[str, LabeledPool]) -> OnePassBatch:
        tokens = self.cfg.tokens_for("lm") if group == "lm" else self.cfg.batch_tokens
        rows = slot.lm.sample(tokens) if group == "lm" else pools["labeled"].sample(slot.rng, tokens)
        rows = bucketed(rows, lambda n: self.layout.row("X" * (n - PREFIX)), self.cfg.shape_buckets, self.layout.context)
        return self._masked(collate_one_pass(rows, self.alphabet.pad_id).to(self.device))

    def _masked(self, batch: OnePassBatch, generator: torch.Generator | None = None) -> OnePassBatch:
        """Hide residues of the rows that take part in masked LM (fresh each time, like dropout)."""
        if bool((batch.residues != self.alphabet.pad_id).any()):
            batch.inputs, batch.lm_weights = mask_residues(batch.inputs, batch.residues, self.alphabet,
                                                           self.cfg.mask_rate, generator)
        return batch

    def loss(self, model: torch.nn.Module, batch: OnePassBatch, group: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The micro-batch's loss, and the mean loss of each trained task it carries (to log)."""
        logits = one_pass_logits(model, batch)
        scores = self.heads.scores(logits, batch)
        means = {t: s["sum"] / s["n"] for t, s in scores.items() if t in self.weights}
        # a batch without a label of any trained task gives no gradient, through every parameter
        loss = sum((self.weights[t] * m for t, m in means.items()), logits.float().sum() * 0.0)
        return loss / self.groups[group], means

    def validation_rows(self, valid: TrainingData, data: TrainingData) -> dict[str, list]:
        """Per task, the proteins an encoder validates on (each task's records with that label, up to the
        encoder's T-1 residues, drawn by the same rule; a protein of exactly T-1 residues, which a one-pass
        row cannot hold, is left out), each row scored on that task only, so the numbers compare with an
        encoder's."""
        context = self.layout.context

        def candidates(name: str) -> list:
            task = TASKS[name]
            if task.kind == "residue":
                return [(r, None) for r in valid.residue if getattr(r, name) is not None and len(r.sequence) < context]
            return [(None, r) for r in valid.protein if getattr(r, task.field) is not None]

        def build(name: str, records: tuple) -> OnePassExample | None:
            return self.layout.example(*(r and replace(r, **ONLY[name]) for r in records))

        def lm_rows() -> list:
            return lm_validation_rows(self.cfg, data, self.alphabet, context, make_example=self.lm_row)

        return validation_sample(self.cfg, self.weights, candidates, lm_rows, build)

    def validation_sums(self, model: torch.nn.Module, name: str, rows: list, offset: int) -> tuple[float, float, float, float]:
        """One pass per chunk, scored on `name` only (SS3 on the SS3 derived from SS8); LM rows hide the
        same residues at every validation."""
        batch = collate_one_pass(rows, self.alphabet.pad_id).to(self.device)
        if name == "lm":
            batch = self._masked(batch, torch.Generator(self.device).manual_seed(self.cfg.validation_seed + offset))
        scores = self.heads.scores(one_pass_logits(model, batch), batch).get(name)
        if not scores:
            return 0.0, 0.0, 0.0, 0.0
        return float(scores["sum"]), float(scores["n"]), float(scores["correct"]), float(scores["n"])
