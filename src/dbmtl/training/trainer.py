"""The training loop: weighted task mixing, gradient accumulation, validation, checkpoints, resume.

One loop for every model kind; what a kind's rows are, how they are batched and scored plug in as its
objective: `onepass.OnePassObjective` for the shipped kind, `paper.PaperObjective` for the paper's
decoder and encoder. The data are in `inputs`; the run directory's files (checkpoint/, best/,
log.jsonl) in `state`."""
from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..data.catalog import TrainingData
from ..data.layouts import layout_for
from ..model.checkpoint import load_checkpoint, model_folder
from ..model.transformer import Transformer
from ..tasks import TASKS
from ..tokens import Alphabet
from .config import TrainConfig
from .distributed import gradient_sync, init_process_group, wrap_model
from .inputs import Slot, lm_corpus, make_slot
from .onepass import OnePassObjective
from .paper import PaperObjective
from .state import RunDirectory, saved_checkpoint

# each model kind's objective: its pools, micro-batches, loss and validation rows
OBJECTIVES = {"onepass": OnePassObjective, "decoder": PaperObjective, "encoder": PaperObjective}

log = logging.getLogger("dbmtl")


class TrainingDiverged(ValueError):
    """A loss or gradient norm that is not finite: the step was not applied and the checkpoint on disk is
    the last good one, so the run can be resumed with a lower learning rate."""


def initialize_from(model: Transformer, folder: str, layers: tuple[int | None, ...] | None = None) -> None:
    """Copy the weights of a model folder into `model`. Every tensor of the folder must exist in `model`
    with the same shape (a model kind may differ: an encoder's weights start a onepass model); tensors
    the folder lacks (a new pooling layer) keep their fresh initialization and are logged. `layers` grows
    a deeper model (TrainConfig.init_layers): block i takes the folder's block layers[i], or starts as the
    identity when it is None."""
    path = model_folder(folder)
    source, _, _ = load_checkpoint(path)
    target, given = model.state_dict(), source.state_dict()
    if layers is not None:
        given = _blocks_renamed(given, layers, len(source.blocks))
    wrong = [k for k in given if k not in target or target[k].shape != given[k].shape]
    if wrong:
        raise ValueError(f"init_from {folder}: its weights do not fit this model's config "
                         f"(first differences: {wrong[:3]}); use a model folder of the same sizes")
    missing = sorted(set(target) - set(given))
    model.load_state_dict(given, strict=False)
    for block, old in zip(model.blocks, layers or ()):
        if old is None:
            block.start_as_identity()
    log.info("weights from %s%s", path, f"; freshly initialized: {missing}" if missing else "")


def _blocks_renamed(given: dict, layers: tuple[int | None, ...], n_source: int) -> dict:
    """The folder's weights with its blocks moved to where `layers` puts them (identity blocks: none)."""
    if any(i is not None and i >= n_source for i in layers):
        raise ValueError(f"init_layers names a block the init_from model lacks (it has {n_source}: 0-{n_source - 1})")
    renamed = {k: v for k, v in given.items() if not k.startswith("blocks.")}
    for new, old in enumerate(layers):
        if old is not None:
            prefix = f"blocks.{old}."
            renamed.update({f"blocks.{new}.{k[len(prefix):]}": v for k, v in given.items() if k.startswith(prefix)})
    return renamed


class Trainer:
    """One run: builds the model, its optimizer and its data from the config, then `fit` trains, validates
    and checkpoints. Under torchrun each process is one Trainer computing its share of the slots."""

    def __init__(self, cfg: TrainConfig, data: TrainingData, out_dir: str | Path | None = None, progress: bool = True,
                 resuming: bool = False):
        """`resuming`: `resume()` will follow, so init_from is not read when the run has a checkpoint
        (its weights replace init_from's anyway, and the init_from folder may be gone)."""
        self.cfg = cfg
        self.out = Path(out_dir or cfg.out_dir)
        self.alphabet = Alphabet()
        if cfg.model.vocab_size != len(self.alphabet):
            raise ValueError(f"the model config's vocab_size is {cfg.model.vocab_size} but the alphabet has "
                             f"{len(self.alphabet)} tokens: set it to {len(self.alphabet)} or leave it out")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.group, self.device = init_process_group(cfg.device)
        self.progress = progress and self.group.is_main
        if cfg.grad_accum % self.group.world_size:
            raise ValueError(f"grad_accum {cfg.grad_accum} (micro-batches per step, all processes together) "
                             f"must be divisible by the number of processes, {self.group.world_size}")
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.model = Transformer(cfg.model)
        if cfg.init_from and not (resuming and saved_checkpoint(self.out)):
            initialize_from(self.model, cfg.init_from, cfg.init_layers)
        self.model.to(self.device)
        self.context = self.model.cfg.context
        self.layout = layout_for(self.model.cfg.kind, self.alphabet, self.context, self.model.cfg.n_segments)
        self.objective = OBJECTIVES[self.model.cfg.kind](cfg, self.model.cfg, self.alphabet, self.layout, self.device)
        if data.settings and data.settings != cfg.data_settings():
            raise ValueError(f"the training data were built with {data.settings}, the config asks for {cfg.data_settings()}")
        self.wrapped = wrap_model(self.model, self.group, self.device, cfg.parallel)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        # the weights validation scores and best/ keeps: an exponential moving average when ema_decay > 0
        self.average = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
                        if cfg.ema_decay else None)
        torch.manual_seed(cfg.seed + 1 + self.group.rank)  # dropout differs across ranks
        self.run = RunDirectory(self.out, cfg, self.model, self.optimizer, self.alphabet, self.group, self.device,
                                self.average)
        self.step = 0
        self.saved_step: int | None = None  # the step of the checkpoint this run wrote or resumed from
        self.best_valid = math.inf

        train, valid = data.split("train"), data.split("valid")
        self.pools = self.objective.pools(train)
        self.corpus = lm_corpus(cfg, data, train) if cfg.tasks.get("lm", 0) > 0 else None
        per_rank = cfg.grad_accum // self.group.world_size
        self.slots = [self._slot(j) for j in range(self.group.rank * per_rank, (self.group.rank + 1) * per_rank)]
        self.valid = self.objective.validation_rows(valid, data)
        log.info("training examples: %s", {k: len(v) for k, v in self.pools.items()})

    def _slot(self, index: int, state: dict | None = None) -> Slot:
        return make_slot(self.cfg, index, self.corpus, self.alphabet, self.context, self.objective.masked_lm, state,
                         self.objective.lm_row)

    # -- one optimizer step -----------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _plan(self, slot: Slot) -> list[tuple[str, float]]:
        """(micro-batch kind, loss scale) of each micro-batch this slot contributes to one optimizer step:
        the objective's groups (the paper's kinds: one per task) with their weights."""
        weights = self.objective.groups
        total = sum(weights.values())
        if self.cfg.mixing == "joint":
            return [(task, w / total) for task, w in weights.items()]
        names = list(weights)
        p = np.array([weights[n] for n in names], dtype=float)
        return [(names[int(slot.rng.choice(len(names), p=p / p.sum()))], 1.0)]

    def _micro_batch(self, slot: Slot, group: str):
        return self.objective.micro_batch(slot, group, self.pools)

    def train_step(self) -> dict[str, float]:
        self.model.train()
        lr = self.cfg.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses: dict[str, list[float]] = {}
        problem = None
        passes = [(slot, task, scale) for slot in self.slots for task, scale in self._plan(slot)]
        for i, (slot, task, scale) in enumerate(passes):
            batch = self._micro_batch(slot, task)
            # gradients are all-reduced once per step, in the last backward pass
            with gradient_sync(self.wrapped, i == len(passes) - 1):
                with self._autocast():
                    loss, parts = self.objective.loss(self.wrapped, batch, task)
                (loss * scale / len(self.slots)).backward()
            value = loss.item()
            for name, part in parts.items():
                losses.setdefault(name, []).append(value if part is loss else part.item())
            if problem is None and not math.isfinite(value):
                problem = (0, f"the {task!r} loss is {value} in micro-batch {i + 1} of {len(passes)} (slot {slot.index})")
        # grad_clip 0 clips nothing (the factor is exactly 1) but still gives the norm to check
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or math.inf)
        norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP: a DTensor
        if problem is None and not math.isfinite(norm):
            problem = (1, f"the gradient norm is {norm} (every micro-batch loss was finite)")
        if self.group.any(problem is not None, self.device):  # every rank stops at the same step
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingDiverged(self._diverged(self.group.gather(problem)))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.step += 1
        return {t: float(np.mean(v)) for t, v in losses.items()}

    def _diverged(self, problems: list[tuple[int, str] | None]) -> str:
        """The error message; a bad loss on one rank makes the all-reduced gradients of every rank bad too,
        so a rank's loss is the cause to name before any rank's gradient norm."""
        (_, problem), rank = min((p, r) for r, p in enumerate(problems) if p is not None)
        where = f" on rank {rank}" if len(problems) > 1 else ""
        if self.saved_step is None:
            advice = (f"no checkpoint was written yet (checkpoint_every {self.cfg.checkpoint_every}): "
                      f"start again with a lower 'lr' (now {self.cfg.lr})")
        else:
            advice = (f"the last good checkpoint, {self.out / 'checkpoint'} (step {self.saved_step}), is intact: "
                      f"continue it with --resume and a lower 'lr' in the config (now {self.cfg.lr})")
        return (f"training diverged at step {self.step + 1}: {problem}{where}; the optimizer step was not "
                f"applied and {advice}")

    # -- validation ---------------------------------------------------------------------------------
    @property
    def scored_model(self) -> Transformer:
        """The weights validation scores and best/ keeps: the moving average, or the trained weights."""
        return self.average.module if self.average is not None else self.model

    @torch.inference_mode()
    def validate(self, model: Transformer | None = None) -> dict[str, dict[str, float]]:
        """Per task: mean loss over its label tokens, and accuracy over them where the task has labels,
        of `model` (default: `scored_model`). Every rank computes the same numbers (FSDP needs all ranks
        in the forward pass anyway).

        For a teacher-forced decoder the per-residue numbers read the true previous labels (the paper's
        leak): they are training diagnostics, not scores. `dbmtl evaluate` gives the honest ones."""
        model = model if model is not None else self.scored_model
        model.eval()
        result = {}
        for name, examples in self.valid.items():
            sums = np.zeros(4)  # loss sum, loss weight, correct, labels
            for i in range(0, len(examples), 16):
                with self._autocast():
                    sums += self.objective.validation_sums(model, name, examples[i : i + 16], i)
            result[name] = {"loss": sums[0] / max(sums[1], 1.0)}
            if TASKS[name].labels:
                result[name].update(accuracy=sums[2] / max(sums[3], 1.0), n_labels=int(sums[3]))
        return result

    # -- persistence ----------------------------------------------------------------------------------
    def save(self) -> Path:
        """Write the resumable checkpoint (a collective: every rank calls it, rank 0 writes)."""
        path = self.run.save(self.step, self.best_valid, self.slots)
        self.saved_step = self.step
        return path

    def resume(self) -> None:
        """Every rank loads the same checkpoint; each takes its own slots' data positions."""
        resumed = self.run.resume()
        self.slots = [self._slot(s.index, resumed.slots[s.index]) for s in self.slots]
        self.step = self.saved_step = resumed.step
        self.best_valid = resumed.best_valid
        self.run.truncate_log(self.step)
        log.info("resumed from %s at step %d", resumed.path, self.step)

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self, max_steps: int | None = None) -> dict:
        """Train until `max_steps` (default: the config's); returns the last validation result."""
        self.run.start()
        end = max_steps if max_steps is not None else self.cfg.max_steps
        ema: dict[str, float] = {}
        last_valid: dict = {}
        bar = tqdm(total=end, initial=self.step, disable=not self.progress, dynamic_ncols=True, desc="train")
        started = time.time()
        while self.step < end:
            try:
                losses = self.train_step()
            except TrainingDiverged as exc:
                self.run.log({"step": self.step + 1, "diverged": str(exc)})  # dropped again by a resume
                raise
            for t, v in losses.items():
                ema[t] = v if t not in ema else 0.9 * ema[t] + 0.1 * v
            bar.update(1)
            bar.set_postfix({t: f"{v:.3f}" for t, v in sorted(ema.items())})
            if self.step % self.cfg.log_every == 0:
                every = self.group.gather(losses)  # the loss of the whole global batch, not rank 0's share
                merged = {t: float(np.mean([r[t] for r in every if t in r])) for t in {t for r in every for t in r}}
                self.run.log({"step": self.step, "lr": self.cfg.lr_at(self.step - 1), "loss": merged,
                              "elapsed_s": round(time.time() - started, 1)})
            if self.step % self.cfg.eval_every == 0 or self.step == end:
                last_valid = self.validate()
                mean = float(np.mean([v["loss"] for v in last_valid.values()])) if last_valid else math.inf
                record = {"step": self.step, "valid": last_valid}
                if self.average is not None:  # what the average gains over the weights it averages
                    record["valid_trained"] = self.validate(self.model)
                self.run.log({**record, "elapsed_s": round(time.time() - started, 1)})
                summary = " ".join(f"{k}:{v['loss']:.3f}" + (f"/{v['accuracy']:.3f}" if "accuracy" in v else "")
                                   for k, v in last_valid.items())
                if self.progress:
                    bar.write(f"step {self.step} valid loss/acc {summary}")
                if mean < self.best_valid:
                    self.best_valid = mean
                    self.run.save_best(self.step, last_valid)
            if self.step % self.cfg.checkpoint_every == 0 or self.step == end:
                self.save()
        bar.close()
        return last_valid
