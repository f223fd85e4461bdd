"""Training the onepass kind: every labeled protein is one row scored on every label it has.

Micro-batches come in two groups: "labeled" (one pool of all labeled proteins, residue- and
protein-labeled alike, token-budget batches around a random protein) and "lm" (the corpus, as masked-LM
rows of the same shape). A micro-batch's loss is sum over the tasks it carries of w_t x that task's mean
loss, divided by its group's weight; with `mixing: "joint"` every step has one micro-batch of each group
scaled by group weight / all weights, with "sample" one group drawn by weight. Either way the expected
loss is sum_t w_t / sum w x mean loss of t, as for the other kinds. A labeled micro-batch holds up to
`batch_tokens` tokens, an LM one `task_batch_tokens["lm"]` (default: `batch_tokens` too).

Losses (each a cross-entropy over its own tokens, dbmtl.data.onepass.OnePassHeads): SS8 at resolved
residues; SS3 on the SS3 derived from SS8 (-log of the summed SS8 probability of the true class); location
at <LOC> (soft: uniform over several locations); membrane at <MS> when M/S is known; masked LM at hidden
residues.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data.catalog import TrainingData
from ..data.layouts import mask_residues
from ..data.batching import bucketed
from ..data.onepass import PREFIX, OnePassBatch, OnePassHeads, collate_one_pass, one_pass_examples
from ..data.pools import LabeledPool
from ..tasks import TASKS
from .inputs import Slot, lm_validation_rows, make_slot
from .trainer import Trainer

LABELED = ("ss3", "ss8", "loc", "ms")
ONLY = {"ss3": {"ss8": None}, "ss8": {"ss3": None}, "loc": {"membrane": None},  # a record keeping one label
        "ms": {"location": None, "locations": None}}


def one_pass_forward(model: torch.nn.Module, batch: OnePassBatch) -> torch.Tensor:
    return model(batch.inputs, positions=batch.positions, segments=batch.segments, valid=batch.valid, causal=False)


def one_pass_scores(logits: torch.Tensor, batch: OnePassBatch, heads: OnePassHeads) -> dict[str, dict]:
    """Per task present in the batch: summed loss ("sum"), label count ("n") and correct answers ("correct";
    argmax over the task's labels; a soft location target counts the argmax of its target)."""
    out = {}

    def add(name, logp, target, mask):
        if bool(mask.any()):
            picked = logp[mask]
            out[name] = {"sum": -picked.gather(-1, target[mask][:, None]).sum(), "n": int(mask.sum()),
                         "correct": int((picked.argmax(-1) == target[mask]).sum())}

    ss8, ss3 = heads.ss8_ss3(logits)
    add("ss8", ss8, batch.ss8.clamp(min=0), batch.ss8 >= 0)
    add("ss3", ss3, batch.ss3.clamp(min=0), batch.ss3 >= 0)
    loc, ms = heads.protein(logits)
    known = batch.loc.sum(-1) > 0
    if bool(known.any()):
        out["loc"] = {"sum": -(batch.loc[known] * loc[known]).sum(), "n": int(known.sum()),
                      "correct": int((loc[known].argmax(-1) == batch.loc[known].argmax(-1)).sum())}
    add("ms", ms, batch.ms.clamp(min=0), batch.ms >= 0)
    hidden = batch.lm_weights > 0
    if bool(hidden.any()):
        add("lm", heads.amino_acids(logits), heads.aa_index[batch.residues].clamp(min=0), hidden)
    return out


class OnePassTrainer(Trainer):
    """Trainer for `kind: "onepass"` (Trainer(cfg, data) returns one for such a config)."""

    def __init__(self, cfg, data: TrainingData, out_dir=None, progress: bool = True, resuming: bool = False):
        if cfg.tasks.get("lm", 0) > 0 and cfg.lm_objective != "masked":
            raise ValueError("a onepass model's LM task is masked LM: set lm_objective 'masked'")
        self.groups = {"labeled": sum(w for t, w in cfg.tasks.items() if t in LABELED and w > 0),
                       "lm": cfg.tasks.get("lm", 0)}
        self.groups = {g: w for g, w in self.groups.items() if w > 0}
        super().__init__(cfg, data, out_dir, progress, resuming)
        self.heads = OnePassHeads(self.alphabet, self.device)

    def _build_pools(self, train: TrainingData) -> dict:
        if "labeled" not in self.groups:
            return {}
        examples = one_pass_examples(train, self.layout, masked_lm=self.cfg.mask_labeled)
        if not examples:
            raise ValueError("no labeled training proteins in the data")
        return {"labeled": LabeledPool(examples, np.random.default_rng(self.cfg.seed))}

    def _lm_row(self, alphabet, task, sequence: str, context: int):
        return self.layout.lm_example(sequence)

    def _slot(self, index: int, state: dict | None = None) -> Slot:
        return make_slot(self.cfg, index, self.corpus, self.alphabet, self.context, True, state, self._lm_row)

    def _validation_examples(self, valid: TrainingData, data: TrainingData) -> dict[str, list]:
        """Per task, the proteins an encoder validates on (each task's records with that label, up to the
        encoder's T-1 residues, drawn in the same order with the same seed; a protein of exactly T-1
        residues, which a one-pass row cannot hold, is left out), each row scored on that task only, so
        the numbers compare with an encoder's; LM: fixed hidden residues."""
        n, pick, out = self.cfg.valid_examples, np.random.default_rng(self.cfg.validation_seed + 1), {}
        for name in self.weights:
            if name == "lm":
                out[name] = lm_validation_rows(self.cfg, data, self.alphabet, self.context, make_example=self._lm_row)
                continue
            task = TASKS[name]
            if task.kind == "residue":
                records = [(r, None) for r in valid.residue if getattr(r, name) is not None and len(r.sequence) < self.context]
            else:
                records = [(None, r) for r in valid.protein if getattr(r, task.field) is not None]
            chosen = sorted(pick.choice(len(records), size=min(n, len(records)), replace=False)) if records else []
            rows = (self.layout.example(*(r and replace(r, **ONLY[name]) for r in records[i])) for i in chosen)
            out[name] = [ex for ex in rows if ex is not None]
        return {k: v for k, v in out.items() if v}

    def _plan(self, slot: Slot, weights: dict[str, float] | None = None) -> list[tuple[str, float]]:
        return super()._plan(slot, self.groups)

    def _micro_batch(self, slot: Slot, group: str) -> OnePassBatch:
        tokens = self.cfg.tokens_for("lm") if group == "lm" else self.cfg.batch_tokens
        rows = slot.lm.sample(tokens) if group == "lm" else self.pools["labeled"].sample(slot.rng, tokens)
        rows = bucketed(rows, lambda n: self.layout.row("X" * (n - PREFIX)), self.cfg.shape_buckets, self.context)
        return self._masked(collate_one_pass(rows, self.alphabet.pad_id).to(self.device))

    def _masked(self, batch: OnePassBatch, generator: torch.Generator | None = None) -> OnePassBatch:
        """Hide residues of the rows that take part in masked LM (fresh each time, like dropout)."""
        if bool((batch.residues != self.alphabet.pad_id).any()):
            batch.inputs, batch.lm_weights = mask_residues(batch.inputs, batch.residues, self.alphabet,
                                                           self.cfg.mask_rate, generator)
        return batch

    def _loss(self, batch: OnePassBatch, group: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = one_pass_forward(self.wrapped, batch)
        scores = one_pass_scores(logits, batch, self.heads)
        means = {t: s["sum"] / s["n"] for t, s in scores.items() if self.weights.get(t, 0) > 0}
        # a batch without a label of any trained task gives no gradient, through every parameter
        loss = sum((self.weights[t] * m for t, m in means.items()), logits.float().sum() * 0.0)
        return loss / self.groups[group], means

    def _validation_sums(self, name: str, rows: list, offset: int) -> tuple[float, float, float, float]:
        """One pass per chunk, scored on `name` only (SS3 on the SS3 derived from SS8); LM rows hide the
        same residues at every validation."""
        batch = collate_one_pass(rows, self.alphabet.pad_id).to(self.device)
        if name == "lm":
            batch = self._masked(batch, torch.Generator(self.device).manual_seed(self.cfg.validation_seed + offset))
        scores = one_pass_scores(one_pass_forward(self.model, batch), batch, self.heads).get(name)
        if not scores:
            return 0.0, 0.0, 0.0, 0.0
        return float(scores["sum"]), float(scores["n"]), float(scores["correct"]), float(scores["n"])
