"""The training loop: weighted task mixing, gradient accumulation, validation, checkpoints, resume.

A run directory holds:
  checkpoint/   the latest state (weights, optimizer by parameter name, RNG per rank, data position per
                micro-batch slot): `--resume` continues here, with 1 process or N
  best/         the weights with the lowest mean validation loss (model selection on validation data only)
  log.jsonl     one line per logged step and per validation
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..data.catalog import TrainingData
from ..data.corpus import CorpusStream, FastaCorpus, WithLabeledSequences
from ..data.layouts import Batch, collate, layout_for, mask_residues
from ..data.pools import LabeledPool, labeled_examples
from ..data.shards import CorpusShards
from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..model.transformer import Transformer
from ..tasks import TASKS
from ..tokens import Alphabet
from .config import TrainConfig
from .distributed import full_model_state, full_optimizer_state, gradient_sync, init_process_group, load_full_state, wrap_model

log = logging.getLogger("dbmtl")


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


@dataclass
class Slot:
    """One of the global batch's `grad_accum` micro-batch slots: its own random stream (which proteins,
    which task) and its own share of the LM corpus. A process computes the slots it owns."""

    index: int
    rng: np.random.Generator
    lm: CorpusStream | None


class Trainer:
    def __init__(self, cfg: TrainConfig, data: TrainingData, out_dir: str | Path | None = None, progress: bool = True):
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
        self.model = Transformer(cfg.model).to(self.device)
        self.context = self.model.cfg.context
        self.layout = layout_for(self.model.cfg.kind, self.alphabet, self.context, self.model.cfg.n_segments)
        self.label_inputs = self.model.cfg.label_inputs
        self.label_noise = self.model.cfg.label_noise if self.label_inputs in ("noised", "sampled") else 0.0
        self.masked_lm = cfg.lm_objective == "masked"
        if self.masked_lm and self.model.cfg.kind != "encoder":
            raise ValueError("lm_objective 'masked' needs a bidirectional model: set model kind 'encoder'")
        self.wrapped = wrap_model(self.model, self.group, self.device, cfg.parallel)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        torch.manual_seed(cfg.seed + 1 + self.group.rank)  # dropout differs across ranks
        self.step = 0
        self.best_valid = math.inf
        self.weights = {t: w for t, w in cfg.tasks.items() if w > 0}

        train, valid = data.split("train"), data.split("valid")
        self.pools: dict[str, LabeledPool] = {}
        build_rng = np.random.default_rng(cfg.seed)
        for name in self.weights:
            if name == "lm":
                continue
            examples = labeled_examples(name, train, self.layout)
            if not examples:
                raise ValueError(f"task {name!r} has no training examples in the data")
            self.pools[name] = LabeledPool(examples, build_rng)
        self.corpus = None
        if "lm" in self.weights:
            if cfg.corpus:
                self.corpus = CorpusShards(cfg.corpus, "train")
            elif data.corpus_paths:
                self.corpus = FastaCorpus(data, "train")
            else:
                raise ValueError("task 'lm' has a weight but no corpus files were found")
            if cfg.lm_on_labeled:
                labeled = sorted({r.sequence for r in train.residue} | {r.sequence for r in train.protein})
                self.corpus = WithLabeledSequences(self.corpus, labeled)
        per_rank = cfg.grad_accum // self.group.world_size
        self.slots = [self._slot(j) for j in range(self.group.rank * per_rank, (self.group.rank + 1) * per_rank)]
        self.valid = self._validation_examples(valid, data)
        log.info("training examples: %s", {k: len(v) for k, v in self.pools.items()})

    def _slot(self, index: int, rng_state: dict | None = None, lm_state: dict | None = None) -> Slot:
        rng = np.random.default_rng([self.cfg.seed, index])
        if rng_state is not None:
            rng.bit_generator.state = rng_state
        lm = None
        if self.corpus is not None:
            lm = CorpusStream(self.corpus, self.alphabet, self.context, index=index, count=self.cfg.grad_accum,
                              seed=self.cfg.seed, workers=self.cfg.data_workers, masked=self.masked_lm,
                              **(lm_state or {}))
        return Slot(index, rng, lm)

    def _validation_examples(self, valid: TrainingData, data: TrainingData) -> dict[str, list]:
        """A fixed random sample (its own seed) of each task's validation examples: files are often
        sorted by class, so the first N would not be representative."""
        n = self.cfg.valid_examples
        pick = np.random.default_rng(self.cfg.seed + 1)
        out = {}
        for name in self.weights:
            if name == "lm":
                corpus = CorpusShards(self.cfg.corpus, "valid") if self.cfg.corpus else FastaCorpus(data, "valid")
                stream = CorpusStream(corpus, self.alphabet, self.context, seed=self.cfg.seed, masked=self.masked_lm)
                examples = []
                while len(examples) < n and stream.epoch == 0:
                    examples += stream.sample(self.cfg.batch_tokens)
                out[name] = examples[:n]
                if self.masked_lm:  # the same hidden residues at every validation
                    fixed = torch.Generator().manual_seed(self.cfg.seed)
                    for ex in out[name]:
                        ex.inputs, ex.weights = mask_residues(ex.inputs, ex.targets, self.alphabet, self.cfg.mask_rate, fixed)
            else:
                examples = labeled_examples(name, valid, self.layout)
                chosen = sorted(pick.choice(len(examples), size=min(n, len(examples)), replace=False)) if examples else []
                out[name] = [examples[i] for i in chosen]
        return {k: v for k, v in out.items() if v}

    # -- one optimizer step -----------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _plan(self, slot: Slot) -> list[tuple[str, float]]:
        """(task, loss scale) of each micro-batch this slot contributes to one optimizer step."""
        total = sum(self.weights.values())
        if self.cfg.mixing == "joint":
            return [(task, w / total) for task, w in self.weights.items()]
        names = list(self.weights)
        p = np.array([self.weights[n] for n in names], dtype=float)
        return [(names[int(slot.rng.choice(len(names), p=p / p.sum()))], 1.0)]

    def _micro_batch(self, slot: Slot, task: str):
        tokens = self.cfg.tokens_for(task)
        examples = slot.lm.sample(tokens) if task == "lm" else self.pools[task].sample(slot.rng, tokens)
        batch = collate(examples, self.alphabet.pad_id).to(self.device)
        if task == "lm" and self.masked_lm:  # fresh residues hidden each time (torch's stream, like dropout)
            batch.inputs, batch.weights = mask_residues(batch.inputs, batch.targets, self.alphabet, self.cfg.mask_rate)
        return batch

    def train_step(self) -> dict[str, float]:
        self.model.train()
        lr = self.cfg.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses: dict[str, list[float]] = {}
        passes = [(slot, task, scale) for slot in self.slots for task, scale in self._plan(slot)]
        for i, (slot, task, scale) in enumerate(passes):
            batch = self._micro_batch(slot, task)
            # gradients are all-reduced once per step, in the last backward pass
            with gradient_sync(self.wrapped, i == len(passes) - 1):
                with self._autocast():
                    loss, _, _ = task_loss(self.wrapped, batch, self.alphabet, self.label_inputs, self.label_noise)
                (loss * scale / len(self.slots)).backward()
            losses.setdefault(task, []).append(loss.item())
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {t: float(np.mean(v)) for t, v in losses.items()}

    # -- validation ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self) -> dict[str, dict[str, float]]:
        """Per task: mean loss over label tokens, and accuracy restricted to the task's label tokens.
        Every rank computes the same numbers (FSDP needs all ranks in the forward pass anyway).

        For a teacher-forced decoder the per-residue numbers read the true previous labels (the paper's
        leak): they are training diagnostics, not scores. `dbmtl evaluate` gives the honest ones."""
        self.model.eval()
        result = {}
        for name, examples in self.valid.items():
            task = TASKS[name]
            total = count = correct = 0.0
            for i in range(0, len(examples), 16):
                batch = collate(examples[i : i + 16], self.alphabet.pad_id).to(self.device)
                with self._autocast():
                    _, loss_sum, logits = task_loss(self.model, batch, self.alphabet, self.label_inputs)
                w, targets = batch.weights, batch.targets
                total += float(loss_sum)
                count += float(w.sum())
                if task.labels:
                    ids = torch.tensor(self.alphabet.label_ids(task), device=self.device)
                    pred = ids[logits.float()[..., ids].argmax(-1)]
                    is_label = torch.isin(targets, ids) & (w > 0)
                    correct += float((pred == targets)[is_label].sum())
                    result.setdefault(name, {})["n_labels"] = result.get(name, {}).get("n_labels", 0) + int(is_label.sum())
            entry = result.setdefault(name, {})
            entry["loss"] = total / max(count, 1.0)
            if task.labels:
                entry["accuracy"] = correct / max(entry["n_labels"], 1)
        return result

    # -- persistence ----------------------------------------------------------------------------------
    def _slot_states(self) -> list[dict]:
        """Every slot's data position, gathered from the ranks that own them, in slot order."""
        mine = [{"index": s.index, "rng": s.rng.bit_generator.state, "lm": s.lm.state() if s.lm else None}
                for s in self.slots]
        return sorted((s for rank in self.group.gather(mine) for s in rank), key=lambda s: s["index"])

    def save(self) -> Path:
        """Write the resumable checkpoint atomically (a temp dir renamed over the old one). A collective:
        every rank calls it, rank 0 writes."""
        final = self.out / "checkpoint"
        weights = full_model_state(self.model)
        optim = full_optimizer_state(self.model, self.optimizer)
        slots = self._slot_states()
        rng = {f"torch.{r}": t for r, t in enumerate(self.group.gather(torch.get_rng_state()))}
        if self.device.type == "cuda":
            rng.update({f"cuda.{r}": t for r, t in enumerate(self.group.gather(torch.cuda.get_rng_state(self.device).cpu()))})
        if self.group.is_main:
            tmp = self.out / "checkpoint.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_checkpoint(tmp, self.model, self.alphabet, extra={"train": self.cfg.to_dict(), "step": self.step},
                            weights=weights)
            tensors = {f"{name}::{key}": v if torch.is_tensor(v) else torch.tensor(v)
                       for name, st in optim["state"].items() for key, v in st.items()}
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            save_file(rng, str(tmp / "rng.safetensors"))
            state = {"step": self.step, "best_valid": self.best_valid, "world_size": self.group.world_size,
                     "slots": slots, "train_config": self.cfg.to_dict(), "param_groups": optim["param_groups"]}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            _replace_dir(tmp, final)
        self.group.barrier()
        return final

    def _save_best(self, valid: dict) -> None:
        weights = full_model_state(self.model)
        if self.group.is_main:
            tmp = self.out / "best.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_checkpoint(tmp, self.model, self.alphabet, weights=weights,
                            extra={"train": self.cfg.to_dict(), "step": self.step, "valid": valid})
            _replace_dir(tmp, self.out / "best")

    def resume(self) -> None:
        """Every rank loads the same checkpoint; each takes its own slots' data positions."""
        # A crash between the two renames of _replace_dir leaves the complete previous checkpoint in .old.
        ckpt = next((c for c in (self.out / "checkpoint", self.out / "checkpoint.old") if (c / "state.json").exists()), None)
        if ckpt is None:
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {self.out / 'checkpoint'}")
        state = json.loads((ckpt / "state.json").read_text())
        saved = TrainConfig.from_dict(state["train_config"])
        if saved.model != self.model.cfg:
            raise ValueError(f"{ckpt} was trained with model {saved.model}, the config now asks for {self.model.cfg}")
        if saved.grad_accum != self.cfg.grad_accum or saved.seed != self.cfg.seed:
            raise ValueError(f"{ckpt} was trained with grad_accum {saved.grad_accum} and seed {saved.seed}; "
                             "the data streams follow both, so they cannot change on resume")
        model, _, _ = load_checkpoint(ckpt)
        optim: dict = {"state": {}, "param_groups": state["param_groups"]}
        for key, value in load_file(str(ckpt / "optimizer.safetensors")).items():
            name, field_ = key.split("::", 1)
            optim["state"].setdefault(name, {})[field_] = value
        load_full_state(self.model, self.optimizer, model.state_dict(), optim)
        rng = load_file(str(ckpt / "rng.safetensors"))
        if state["world_size"] == self.group.world_size:
            torch.set_rng_state(rng[f"torch.{self.group.rank}"])
            if self.device.type == "cuda" and f"cuda.{self.group.rank}" in rng:
                torch.cuda.set_rng_state(rng[f"cuda.{self.group.rank}"], self.device)
        else:  # dropout streams cannot be mapped to a new number of processes; data positions can
            log.warning("resuming %d processes from a %d-process checkpoint: new dropout random streams",
                        self.group.world_size, state["world_size"])
            torch.manual_seed(self.cfg.seed + 1 + self.group.rank + 7919 * state["step"])
        slots = {s["index"]: s for s in state["slots"]}
        self.slots = [self._slot(s.index, slots[s.index]["rng"], slots[s.index]["lm"]) for s in self.slots]
        self.step = state["step"]
        self.best_valid = state["best_valid"]
        if self.group.is_main:
            self._truncate_log()
        log.info("resumed from %s at step %d", ckpt, self.step)

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint, which the resumed run will write again."""
        path = self.out / "log.jsonl"
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
            path.write_text("".join(line + "\n" for line in kept))

    def _log(self, record: dict) -> None:
        if self.group.is_main:
            with open(self.out / "log.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self, max_steps: int | None = None) -> dict:
        """Train until `max_steps` (default: the config's); returns the last validation result."""
        if self.group.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
        end = max_steps if max_steps is not None else self.cfg.max_steps
        ema: dict[str, float] = {}
        last_valid: dict = {}
        bar = tqdm(total=end, initial=self.step, disable=not self.progress, dynamic_ncols=True, desc="train")
        started = time.time()
        while self.step < end:
            losses = self.train_step()
            for t, v in losses.items():
                ema[t] = v if t not in ema else 0.9 * ema[t] + 0.1 * v
            bar.update(1)
            bar.set_postfix({t: f"{v:.3f}" for t, v in sorted(ema.items())})
            if self.step % self.cfg.log_every == 0:
                every = self.group.gather(losses)  # the loss of the whole global batch, not rank 0's share
                merged = {t: float(np.mean([r[t] for r in every if t in r])) for t in {t for r in every for t in r}}
                self._log({"step": self.step, "lr": self.cfg.lr_at(self.step - 1), "loss": merged,
                           "elapsed_s": round(time.time() - started, 1)})
            if self.step % self.cfg.eval_every == 0 or self.step == end:
                last_valid = self.validate()
                mean = float(np.mean([v["loss"] for v in last_valid.values()])) if last_valid else math.inf
                self._log({"step": self.step, "valid": last_valid})
                summary = " ".join(f"{k}:{v['loss']:.3f}" + (f"/{v['accuracy']:.3f}" if "accuracy" in v else "")
                                   for k, v in last_valid.items())
                if self.progress:
                    bar.write(f"step {self.step} valid loss/acc {summary}")
                if mean < self.best_valid:
                    self.best_valid = mean
                    self._save_best(last_valid)
            if self.step % self.cfg.checkpoint_every == 0 or self.step == end:
                self.save()
        bar.close()
        return last_valid


def _replace_dir(new: Path, final: Path) -> None:
    """Put `new` in place of `final`: the old copy is kept as `.old` until the new one is in place."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
