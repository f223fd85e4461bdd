"""The run directory: what a run writes so that `--resume` continues it exactly, with 1 process or N.

  checkpoint/   the latest state: weights (config.json, model.safetensors, vocab.json), optimizer by
                parameter name (optimizer.safetensors), torch RNG per rank (rng.safetensors) and
                state.json (step, best validation loss, world size, each micro-batch slot's data position,
                the training config, the optimizer's param groups), and with ema_decay the moving
                average of the weights (average/, a model folder)
  best/         the scored weights (the moving average with ema_decay) with the lowest mean validation
                loss (model selection on validation data only)
  log.jsonl     one line per logged step and per validation
  train_config.json  the config the run was started with
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel

from ..durable import fsync, write_atomic
from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..model.transformer import Transformer
from ..tokens import Alphabet
from .config import TrainConfig
from .distributed import ProcessGroup, full_model_state, full_optimizer_state, load_full_state
from .inputs import Slot

log = logging.getLogger("dbmtl")

AVERAGE_DIR = "average"


@dataclass
class Resumed:
    """Where a resumed run continues: its step, best validation loss and each slot's data position."""

    path: Path
    step: int
    best_valid: float
    slots: dict[int, dict]  # slot index -> Slot.state()


class RunDirectory:
    """Reads and writes one run's files. `save`, `save_best` and `resume` are collectives (every rank
    calls them: gathering FSDP shards and per-rank state needs all); only rank 0 writes."""

    def __init__(self, path: Path, cfg: TrainConfig, model: Transformer, optimizer: torch.optim.Optimizer,
                 alphabet: Alphabet, group: ProcessGroup, device: torch.device, average: AveragedModel | None = None):
        self.path, self.cfg, self.model, self.optimizer = path, cfg, model, optimizer
        self.alphabet, self.group, self.device, self.average = alphabet, group, device, average

    def start(self) -> None:
        if self.group.is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path / "train_config.json", json.dumps(self.cfg.to_dict(), indent=1))

    def log(self, record: dict) -> None:
        if self.group.is_main:
            with open(self.path / "log.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def save(self, step: int, best_valid: float, slots: list[Slot]) -> Path:
        """Write the resumable checkpoint atomically (a temp dir renamed over the old one)."""
        final = self.path / "checkpoint"
        weights = full_model_state(self.model)
        optim = full_optimizer_state(self.model, self.optimizer)
        # every slot's data position, gathered from the ranks that own them, in slot order
        positions = sorted((s for rank in self.group.gather([s.state() for s in slots]) for s in rank),
                           key=lambda s: s["index"])
        rng = {f"torch.{r}": t for r, t in enumerate(self.group.gather(torch.get_rng_state()))}
        if self.device.type == "cuda":
            rng.update({f"cuda.{r}": t for r, t in enumerate(self.group.gather(torch.cuda.get_rng_state(self.device).cpu()))})
        if self.group.is_main:
            tmp = self.path / "checkpoint.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_checkpoint(tmp, self.model, self.alphabet, extra={"train": self.cfg.to_dict(), "step": step},
                            weights=weights)
            tensors = {f"{name}::{key}": v if torch.is_tensor(v) else torch.tensor(v)
                       for name, st in optim["state"].items() for key, v in st.items()}
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            save_file(rng, str(tmp / "rng.safetensors"))
            if self.average is not None:  # a model folder of its own, as best/ is
                save_checkpoint(tmp / AVERAGE_DIR, self.average.module, self.alphabet)
            state = {"step": step, "best_valid": best_valid, "world_size": self.group.world_size,
                     "slots": positions, "train_config": self.cfg.to_dict(), "param_groups": optim["param_groups"]}
            if self.average is not None:
                state["averaged_steps"] = int(self.average.n_averaged)
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            _replace_dir(tmp, final)
        self.group.barrier()
        return final

    def save_best(self, step: int, valid: dict) -> None:
        model = self.average.module if self.average is not None else self.model
        weights = full_model_state(model)
        if self.group.is_main:
            tmp = self.path / "best.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            save_checkpoint(tmp, model, self.alphabet, weights=weights,
                            extra={"train": self.cfg.to_dict(), "step": step, "valid": valid})
            _replace_dir(tmp, self.path / "best")

    def resume(self) -> Resumed:
        """Load the checkpoint's weights, optimizer state and this rank's RNG into the run; every rank
        reads the same checkpoint. Refuses a checkpoint whose model, grad_accum or seed differ."""
        ckpt = saved_checkpoint(self.path)
        if ckpt is None:
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {self.path / 'checkpoint'}")
        state = json.loads((ckpt / "state.json").read_text())
        saved = TrainConfig.from_saved(state["train_config"])
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
        if self.average is not None:
            if "averaged_steps" in state:
                self.average.module.load_state_dict(load_checkpoint(ckpt / AVERAGE_DIR)[0].state_dict())
                self.average.n_averaged.fill_(state["averaged_steps"])
            else:  # a checkpoint written without ema_decay: the average starts at the resumed weights
                self.average.n_averaged.zero_()
                log.info("%s has no moving average: it starts from the resumed weights", ckpt)
        self._restore_rng(load_file(str(ckpt / "rng.safetensors")), state)
        return Resumed(ckpt, state["step"], state["best_valid"], {s["index"]: s for s in state["slots"]})

    def _restore_rng(self, rng: dict[str, torch.Tensor], state: dict) -> None:
        rank = self.group.rank
        if state["world_size"] == self.group.world_size:
            torch.set_rng_state(rng[f"torch.{rank}"])
            if self.device.type == "cuda" and f"cuda.{rank}" in rng:
                torch.cuda.set_rng_state(rng[f"cuda.{rank}"], self.device)
        else:  # dropout streams cannot be mapped to a new number of processes; data positions can
            log.warning("resuming %d processes from a %d-process checkpoint: new dropout random streams",
                        self.group.world_size, state["world_size"])
            torch.manual_seed(self.cfg.seed + 1 + rank + 7919 * state["step"])

    def truncate_log(self, step: int) -> None:
        """Drop log lines written after `step` (the checkpoint's), which the resumed run will write again."""
        path = self.path / "log.jsonl"
        if self.group.is_main and path.exists():
            kept = [line for line in path.read_text().splitlines() if _logged_step(line) <= step]
            write_atomic(path, "".join(line + "\n" for line in kept))


def saved_checkpoint(run: Path) -> Path | None:
    """The resumable checkpoint of a run directory, if any. A crash between the two renames of
    _replace_dir leaves the complete previous checkpoint in checkpoint.old."""
    return next((c for c in (run / "checkpoint", run / "checkpoint.old") if (c / "state.json").exists()), None)


def _logged_step(line: str) -> float:
    """The step of a log line; a line torn by a kill in mid-write counts as after every checkpoint."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")


def _replace_dir(new: Path, final: Path) -> None:
    """Put the complete directory `new` in place of `final`; at every instant one of `final` and
    `final.old` is complete, so a kill at any point leaves a checkpoint to resume from.

    `.old` is deleted only while `final` exists: after a kill between the two renames `final` is missing
    and `.old` is the only good copy (the one a resume reads) until `new` has replaced it. The files are
    flushed to disk before the renames, so a power cut cannot leave a renamed but empty checkpoint."""
    old = final.with_name(final.name + ".old")
    for f in new.rglob("*"):  # the files of a subfolder (average/) too
        fsync(f)
    fsync(new)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    new.rename(final)
    fsync(final.parent)
    shutil.rmtree(old, ignore_errors=True)
