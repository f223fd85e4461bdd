"""Training configuration: a JSON file, with the shipped model's recipe as defaults (configs/paper.json
is the paper's)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..data.catalog import LM_SOURCES, LOCALIZATION_SOURCES, SS_SOURCES
from ..model.config import PRESETS, Bound, ModelConfig, check_fields, strict_from_dict
from ..tasks import TASKS
from .distributed import PARALLEL_MODES


def preset_fields(spec: dict) -> dict:
    """A model dict as training configs write it, {"preset": name, ...overrides}, as plain ModelConfig
    fields: the preset's, then the overrides. Config files name a preset so that a recipe reads as
    "mini, but an encoder"."""
    if not isinstance(spec, dict):
        raise ValueError(f"training config: 'model' must be an object such as {{\"preset\": \"tiny\"}}, not {spec!r}")
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        raise ValueError(f"training config: unknown model 'preset' {preset!r}; choose from {sorted(PRESETS)}")
    return {**(PRESETS[preset] if preset else {}), **spec}


def model_from_spec(spec: dict) -> ModelConfig:
    """The model of a training config file: a preset and overrides on top of ModelConfig's defaults."""
    return ModelConfig.from_dict(preset_fields(spec))


SHIPPED_TASKS = {"lm": 0.25, "ss3": 1.0, "ss8": 1.0, "loc": 1.0, "ms": 0.5}
# What a saved training config without a key meant: each key's default before the defaults became the
# shipped recipe (the paper's schedule). Keys added since then keep their defaults.
SAVED_TRAIN_DEFAULTS = dict(tasks={name: 1.0 for name in TASKS}, lm_objective="causal", localization_sources="subsets",
                            lm_sources="mmseqs2", lr=2e-4, warmup_steps=16_000, decay_steps=250_000, max_steps=500_000,
                            batch_tokens=32_768, task_batch_tokens={}, grad_accum=96, eval_every=1000,
                            checkpoint_every=1000, valid_examples=128, out_dir="runs/paper")

# Ranges of the numeric keys (steps may be 0: no warm-up, no decay, or a run that only writes its start).
TRAIN_BOUNDS = {
    "tasks": Bound(0), "mask_rate": Bound(0, 1, True, True), "lr": Bound(0, lo_open=True), "warmup_steps": Bound(0),
    "decay_steps": Bound(0), "max_steps": Bound(0), "min_lr_ratio": Bound(0, 1), "betas": Bound(0, 1, hi_open=True),
    "weight_decay": Bound(0), "grad_clip": Bound(0), "batch_tokens": Bound(1), "task_batch_tokens": Bound(1),
    "grad_accum": Bound(1), "eval_every": Bound(1), "checkpoint_every": Bound(1), "log_every": Bound(1),
    "valid_examples": Bound(0), "seed": Bound(0), "valid_seed": Bound(0), "threads": Bound(1), "data_workers": Bound(0),
    "shape_buckets": Bound(0), "ema_decay": Bound(0, 1, hi_open=True),
}


@dataclass
class TrainConfig:
    """Defaults are the shipped model's recipe from scratch (experiments/configs/selection/onepass_equal.json
    with the bundled model's attention pooling): a mini onepass model, every task with masked LM at a
    quarter of the weight, 1500 steps of one 16k-token micro-batch (4k for LM) on the widest localization
    and LM data; Adam, lr 1e-3 after 80 warm-up steps, linear decay to `min_lr_ratio` x lr. A saved
    training config (a checkpoint's state.json) is read with `from_saved`, which keeps what older files
    meant.

    The global batch is `grad_accum` micro-batches of up to `batch_tokens` tokens (per task with joint
    mixing), whatever the number of processes: under torchrun with N processes each one computes
    grad_accum / N of them. Micro-batch slot j always draws the same data (its own random stream and its
    own share of the LM corpus), so 1 process and N processes train on the same examples.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: dict[str, float] = field(default_factory=lambda: dict(SHIPPED_TASKS))  # task weights
    # "joint": every optimizer step sums one micro-batch of each task, weighted (stable: a task with one
    # label per protein cannot swing the shared weights on its own); "sample": each micro-batch is one
    # task drawn with probability proportional to its weight (cheaper steps, noisier).
    mixing: Literal["joint", "sample"] = "joint"
    # LM task of an encoder: "causal" (next residue, left-to-right rows, as the decoder) or "masked"
    # (BERT: 15% of residues hidden, predicted from both sides, the same attention the other tasks use);
    # left out: "masked" for the onepass kind (the only one it has), "causal" for the paper's kinds
    lm_objective: Literal["causal", "masked"] | None = None
    mask_rate: float = 0.15
    lm_on_labeled: bool = False  # the LM task also reads the labeled training proteins' sequences
    mask_labeled: bool = False  # onepass kind: labeled rows also hide residues and predict them (masked LM)
    # where the training data come from (dbmtl.data.catalog): localization "subsets" (the default: what
    # the first models saw), "deeploc1" (the paper's DeepLoc 1.0 training partition) or
    # "deeploc1+deeploc2"; LM corpus "mmseqs2" (the default) or "mmseqs2+uniref"
    localization_sources: Literal[LOCALIZATION_SOURCES] = "deeploc1+deeploc2"  # see dbmtl.data.catalog
    lm_sources: Literal[LM_SOURCES] = "mmseqs2+uniref"
    ss_sources: Literal[SS_SOURCES] = "flip+cullpdb"  # secondary structure: see dbmtl.data.catalog
    lr: float = 1e-3
    warmup_steps: int = 80
    decay_steps: int = 1500
    max_steps: int = 1500
    min_lr_ratio: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    # >0: an exponential moving average of the weights (this decay per step) is what validation scores and
    # best/ keeps, the trained weights what the optimizer and checkpoint/ continue; validation logs both
    ema_decay: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    batch_tokens: int = 16_384
    # per-task token budgets that replace batch_tokens for those tasks, e.g. {"loc": 8192}: a per-protein
    # task gives one label per protein, so it can see more proteins per step without more steps; left
    # out: the recipe's {"lm": 4096} when LM is trained, else none
    task_batch_tokens: dict[str, int] | None = None
    grad_accum: int = 1
    eval_every: int = 50
    checkpoint_every: int = 25
    log_every: int = 10
    valid_examples: int = 200
    seed: int = 0
    # the validation sample's seed (None: `seed`): runs with different data orders keep one validation set
    valid_seed: int | None = None
    precision: Literal["fp32", "bf16"] = "fp32"  # or "bf16" (autocast)
    # onepass kind: pad each training micro-batch to a bucket shape (columns to a multiple of this, rows to
    # four steps per octave, dbmtl.data.batching.bucketed) so that a GPU plans its kernels for a few shapes
    # rather than one per batch; 0: off (the LM rows' random masks follow the batch shape, so runs differ)
    shape_buckets: int = 0
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", "cuda:1", ...
    threads: int | None = None
    parallel: Literal[PARALLEL_MODES] = "ddp"  # under torchrun: "ddp" (replicated weights) or "fsdp" (sharded weights/optimizer)
    data_dir: str | None = None
    corpus: str | None = None  # a `dbmtl prepare-corpus` folder for the LM task (default: data_dir's FASTA)
    data_workers: int = 0  # DataLoader processes per LM stream reading corpus shards (0: in the main process)
    out_dir: str = "runs/mini_onepass"
    # a model folder whose weights start the run ("default": the bundled model), e.g. an encoder's weights
    # for a onepass model of the same sizes; the step, optimizer and data positions start from zero
    init_from: str | None = None
    # a deeper model started from init_from's: for each of this model's blocks, the init_from block whose
    # weights it takes, or null for a block that starts as the identity (its residual outputs zero), so
    # the grown model computes what init_from's did; e.g. [0, null, 1, null] doubles a 2-block model
    init_layers: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        check_fields(self, "training config", TRAIN_BOUNDS)
        if self.init_layers is not None:
            if not self.init_from:
                raise ValueError("training config: 'init_layers' needs 'init_from' (the model it grows)")
            if len(self.init_layers) != self.model.n_layer:
                raise ValueError(f"training config: 'init_layers' has {len(self.init_layers)} entries, one per "
                                 f"block of the model ({self.model.n_layer})")
            if any(i is not None and i < 0 for i in self.init_layers):
                raise ValueError("training config: 'init_layers' entries are block numbers (0, 1, ...) or null")
        if self.lm_objective is None:
            self.lm_objective = "masked" if self.model.kind == "onepass" else "causal"
        if self.task_batch_tokens is None:
            self.task_batch_tokens = {"lm": 4096} if self.tasks.get("lm") else {}
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"training config: 'tasks' has unknown tasks {sorted(unknown)}; tasks are {sorted(TASKS)}")
        if not any(w > 0 for w in self.tasks.values()):
            raise ValueError("training config: 'tasks' needs at least one task with a positive weight")
        if self.mask_labeled and (self.model.kind != "onepass" or not self.tasks.get("lm")):
            raise ValueError("training config: 'mask_labeled' is for the onepass kind with an LM task weight "
                             "(its labeled rows are then also masked-LM rows)")
        if self.shape_buckets and self.model.kind != "onepass":
            raise ValueError("training config: 'shape_buckets' pads the onepass kind's batches; this model is "
                             f"{self.model.kind!r}")
        if self.ema_decay and self.parallel == "fsdp":
            raise ValueError("training config: 'ema_decay' needs whole weights on every process; use parallel 'ddp'")
        odd = set(self.task_batch_tokens) - set(self.tasks)
        if odd:
            raise ValueError(f"training config: 'task_batch_tokens' names tasks that are not trained: {sorted(odd)}")

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if step >= self.decay_steps:
            return self.lr * self.min_lr_ratio
        frac = (step - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps)
        return self.lr * (1.0 - frac * (1.0 - self.min_lr_ratio))

    def data_settings(self) -> dict:
        """The keywords of dbmtl.data.catalog.load_training_data this config asks for."""
        return {"localization_sources": self.localization_sources, "lm_sources": self.lm_sources,
                "ss_sources": self.ss_sources}

    @property
    def validation_seed(self) -> int:
        return self.seed if self.valid_seed is None else self.valid_seed

    def tokens_for(self, task: str) -> int:
        """The token budget of one micro-batch of `task`."""
        return self.task_batch_tokens.get(task, self.batch_tokens)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The JSON form: `model` is a dict, a preset plus overrides or every field (as `to_dict` writes)."""
        if not isinstance(d, dict):
            raise ValueError(f"training config must be a JSON object of keys and values, not {d!r}")
        d = dict(d)
        if "model" in d:
            d["model"] = model_from_spec(d["model"])
        return strict_from_dict(cls, d, "training config")

    @classmethod
    def from_saved(cls, d: dict) -> "TrainConfig":
        """A training config as a checkpoint stores it (every key of its day, the model in full): a key the
        file lacks means what it meant then (SAVED_TRAIN_DEFAULTS, for the model SAVED_MODEL_DEFAULTS)."""
        if not isinstance(d, dict) or not isinstance(d.get("model"), dict):
            raise ValueError(f"a saved training config is an object with a 'model' object, not {d!r}")
        model = ModelConfig.from_saved(preset_fields(d["model"]))
        return strict_from_dict(cls, {**SAVED_TRAIN_DEFAULTS, **d, "model": model}, "training config")

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
