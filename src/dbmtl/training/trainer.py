"""The training loop: weighted task mixing, gradient accumulation, validation, checkpoints, resume.

A run directory holds:
  checkpoint/   the latest state (weights, optimizer, RNG and data positions): `--resume` continues here
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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..datasets import TrainingData, corpus_sequences
from ..examples import Batch, collate
from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..model.decoder import Decoder
from ..tasks import TASKS
from ..tokens import Alphabet
from .batches import CorpusStream, LabeledPool, labeled_examples
from .config import TrainConfig

log = logging.getLogger("dbmtl")


def placeholder_table(alphabet: Alphabet) -> torch.Tensor:
    """Token id -> id fed in its place: each per-residue label becomes its task's control token."""
    table = torch.arange(len(alphabet))
    for task in TASKS.values():
        if task.kind == "residue":
            table[alphabet.label_ids(task)] = alphabet.control_id(task)
    return table


_PLACEHOLDERS: dict[tuple, torch.Tensor] = {}


def model_inputs(inputs: torch.Tensor, alphabet: Alphabet, label_inputs: str) -> torch.Tensor:
    """What the model reads. In placeholder mode per-residue label inputs are hidden: each is replaced
    by the task's control token, so every label slot also says which task it is."""
    if label_inputs == "placeholder":
        key = (tuple(alphabet.tokens), str(inputs.device))
        if key not in _PLACEHOLDERS:
            _PLACEHOLDERS[key] = placeholder_table(alphabet).to(inputs.device)
        return _PLACEHOLDERS[key][inputs]
    return inputs


def task_loss(model: Decoder, batch: Batch, alphabet: Alphabet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted cross-entropy over a right-padded batch; returns (mean loss, summed loss, logits)."""
    inputs = model_inputs(batch.inputs, alphabet, model.cfg.label_inputs)
    logits = model(inputs, positions=batch.positions, segments=batch.segments,
                   valid=None if batch.causal else batch.valid, causal=batch.causal)
    targets, w = batch.targets, batch.weights
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    total = (nll * w.reshape(-1)).sum()
    return total / w.sum().clamp(min=1.0), total, logits


class Trainer:
    def __init__(self, cfg: TrainConfig, data: TrainingData, out_dir: str | Path | None = None, progress: bool = True):
        self.cfg = cfg
        self.out = Path(out_dir or cfg.out_dir)
        self.alphabet = Alphabet()
        self.progress = progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        if cfg.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(cfg.device)
        self.model = Decoder(cfg.model_config(len(self.alphabet))).to(self.device)
        self.context = self.model.cfg.context
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.step = 0
        self.best_valid = math.inf
        self.weights = {t: w for t, w in cfg.tasks.items() if w > 0}

        train, valid = data.split("train"), data.split("valid")
        self.pools: dict[str, LabeledPool] = {}
        for name in self.weights:
            if name == "lm":
                continue
            examples = labeled_examples(name, train, self.alphabet, self.context, self.model.cfg.kind)
            if not examples:
                raise ValueError(f"task {name!r} has no training examples in the data")
            self.pools[name] = LabeledPool(examples, self.rng)
        self.lm = None
        if "lm" in self.weights:
            if not data.corpus_paths:
                raise ValueError("task 'lm' has a weight but no corpus files were found")
            self.lm = CorpusStream(lambda: corpus_sequences(data), self.alphabet, self.context)
        self.valid = self._validation_examples(valid, data)
        log.info("training examples: %s", {k: len(v) for k, v in self.pools.items()})

    def _validation_examples(self, valid: TrainingData, data: TrainingData) -> dict[str, list]:
        """A fixed random sample (its own seed) of each task's validation examples: files are often
        sorted by class, so the first N would not be representative."""
        n = self.cfg.valid_examples
        pick = np.random.default_rng(self.cfg.seed + 1)
        out = {}
        for name in self.weights:
            if name == "lm":
                stream = CorpusStream(lambda: corpus_sequences(data, valid=True), self.alphabet, self.context)
                examples = []
                while len(examples) < n and stream.epoch == 0:
                    examples += stream.sample(self.cfg.batch_tokens)
                out[name] = examples[:n]
            else:
                examples = labeled_examples(name, valid, self.alphabet, self.context, self.model.cfg.kind)
                chosen = sorted(pick.choice(len(examples), size=min(n, len(examples)), replace=False)) if examples else []
                out[name] = [examples[i] for i in chosen]
        return {k: v for k, v in out.items() if v}

    # -- one optimizer step -----------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _sample_task(self) -> str:
        names = list(self.weights)
        p = np.array([self.weights[n] for n in names], dtype=float)
        return names[int(self.rng.choice(len(names), p=p / p.sum()))]

    def _micro_batch(self, task: str):
        examples = self.lm.sample(self.cfg.batch_tokens) if task == "lm" else self.pools[task].sample(self.rng, self.cfg.batch_tokens)
        return collate(examples, self.alphabet.pad_id).to(self.device)

    def train_step(self) -> dict[str, float]:
        self.model.train()
        lr = self.cfg.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses: dict[str, list[float]] = {}
        total_weight = sum(self.weights.values())
        for _ in range(self.cfg.grad_accum):
            if self.cfg.mixing == "joint":
                plan = [(task, w / total_weight) for task, w in self.weights.items()]
            else:
                plan = [(self._sample_task(), 1.0)]
            for task, scale in plan:
                batch = self._micro_batch(task)
                with self._autocast():
                    loss, _, _ = task_loss(self.model, batch, self.alphabet)
                (loss * scale / self.cfg.grad_accum).backward()
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
                    _, loss_sum, logits = task_loss(self.model, batch, self.alphabet)
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
    def _state(self) -> dict:
        return {
            "step": self.step,
            "best_valid": self.best_valid,
            "numpy_rng": self.rng.bit_generator.state,
            "lm_stream": self.lm.state() if self.lm else None,
            "train_config": self.cfg.to_dict(),
        }

    def save(self) -> Path:
        """Write the resumable checkpoint atomically (a temp dir renamed over the old one)."""
        final = self.out / "checkpoint"
        tmp = self.out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_checkpoint(tmp, self.model, self.alphabet, extra={"train": self.cfg.to_dict(), "step": self.step})
        opt = self.optimizer.state_dict()
        tensors = {"torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            tensors["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        for pid, st in opt["state"].items():
            for key, value in st.items():
                tensors[f"{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "state.json").write_text(json.dumps({**self._state(), "param_groups": opt["param_groups"]}, indent=1))
        _replace_dir(tmp, final)
        return final

    def _save_best(self, valid: dict) -> None:
        tmp = self.out / "best.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_checkpoint(tmp, self.model, self.alphabet, extra={"train": self.cfg.to_dict(), "step": self.step, "valid": valid})
        _replace_dir(tmp, self.out / "best")

    def resume(self) -> None:
        # A crash between the two renames of _replace_dir leaves the complete previous checkpoint in .old.
        ckpt = next((c for c in (self.out / "checkpoint", self.out / "checkpoint.old") if (c / "state.json").exists()), None)
        if ckpt is None:
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {self.out / 'checkpoint'}")
        state = json.loads((ckpt / "state.json").read_text())
        saved_model = TrainConfig.from_dict(state["train_config"]).model_config(len(self.alphabet))
        if saved_model != self.model.cfg:
            raise ValueError(f"{ckpt} was trained with model {saved_model}, the config now asks for {self.model.cfg}")
        model, _, _ = load_checkpoint(ckpt)
        self.model.load_state_dict(model.state_dict())
        tensors = load_file(str(ckpt / "optimizer.safetensors"))
        torch.set_rng_state(tensors.pop("torch_rng"))
        cuda_rng = tensors.pop("cuda_rng", None)
        if cuda_rng is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, self.device)
        opt_state: dict = {}
        for key, value in tensors.items():
            pid, name = key.split(".", 1)
            opt_state.setdefault(int(pid), {})[name] = value.to(self.device) if name != "step" else value
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
        self.step = state["step"]
        self.best_valid = state["best_valid"]
        self.rng.bit_generator.state = state["numpy_rng"]
        if self.lm is not None:
            where = state.get("lm_stream") or {"epoch": 0, "offset": state.get("lm_position", 0)}
            self.lm = CorpusStream(self.lm.open_stream, self.alphabet, self.context, **where)
        self._truncate_log()
        log.info("resumed from %s at step %d", ckpt, self.step)

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint, which the resumed run will write again."""
        path = self.out / "log.jsonl"
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
            path.write_text("".join(line + "\n" for line in kept))

    def _log(self, record: dict) -> None:
        with open(self.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self, max_steps: int | None = None) -> dict:
        """Train until `max_steps` (default: the config's); returns the last validation result."""
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
                self._log({"step": self.step, "lr": self.cfg.lr_at(self.step - 1), "loss": losses,
                           "elapsed_s": round(time.time() - started, 1)})
            if self.step % self.cfg.eval_every == 0 or self.step == end:
                last_valid = self.validate()
                mean = float(np.mean([v["loss"] for v in last_valid.values()])) if last_valid else math.inf
                self._log({"step": self.step, "valid": last_valid})
                summary = " ".join(f"{k}:{v['loss']:.3f}" + (f"/{v['accuracy']:.3f}" if "accuracy" in v else "")
                                   for k, v in last_valid.items())
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
