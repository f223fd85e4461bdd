"""Model hyper-parameters and named presets."""
from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import asdict, dataclass, fields


def strict_from_dict(cls, d: dict, what: str):
    """Build a config dataclass, refusing unknown keys (a typo must not be silently ignored)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object of keys and values, not {d!r}")
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
    return cls(**d)


@dataclass(frozen=True)
class Bound:
    """The interval a numeric config value (or each element of a list or object value) must lie in."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x) -> bool:
        return ((self.lo is None or (x > self.lo if self.lo_open else x >= self.lo))
                and (self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)))

    def __str__(self) -> str:
        if self.hi is None:
            return f"{'above' if self.lo_open else 'at least'} {self.lo}"
        if self.lo is None:
            return f"{'below' if self.hi_open else 'at most'} {self.hi}"
        return f"in {'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _wrong_type(value, hint) -> str | None:
    """What `value` should have been to fit the annotation `hint`, or None when it fits. Checked strictly:
    a JSON "4" is not an integer and true is not a number, so a quoting slip fails here, not mid-run."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return None if value is None else _wrong_type(value, rest[0])
    if origin is typing.Literal:
        return None if isinstance(value, str) and value in args else f"one of {list(args)}"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "a number"
        return None if math.isfinite(value) else "a finite number"
    if origin is tuple and args[-1] is Ellipsis:  # a list of any length
        if not isinstance(value, (list, tuple)) or any(_wrong_type(v, args[0]) for v in value):
            return "a list of integers or nulls" if args[0] == int | None else "a list"
        return None
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args) or any(_wrong_type(v, a) for v, a in zip(value, args)):
            return f"a list of {len(args)} {'numbers' if args[0] is float else 'values'}"
        return None
    if origin is dict:
        if not isinstance(value, dict) or any(not isinstance(k, str) or _wrong_type(v, args[1]) for k, v in value.items()):
            return f"an object of {'numbers' if args[1] is float else 'integers' if args[1] is int else 'values'}"
        return None
    return None if isinstance(value, hint) else f"a {hint.__name__}"


def check_fields(obj, what: str, bounds: dict[str, Bound]) -> None:
    """Type-check every field of the config dataclass `obj` against its annotation and range-check those
    named in `bounds` (each element of a list, each value of an object); a ValueError names the key.
    Lists for tuple fields become tuples."""
    for f in fields(obj):
        value, hint = getattr(obj, f.name), _hints(type(obj))[f.name]
        expected = _wrong_type(value, hint)
        if expected:
            raise ValueError(f"{what}: {f.name!r} must be {expected}, not {value!r}")
        if isinstance(value, list):
            setattr(obj, f.name, value := tuple(value))
        bound = bounds.get(f.name)
        if bound is None or value is None:
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for key, x in items:
            if x not in bound:
                where = f"{f.name!r}" if key is None else f"{f.name!r} entry {key!r}"
                raise ValueError(f"{what}: {where} must be {bound}, not {x!r}")


LABEL_INPUTS = ("teacher", "placeholder", "noised", "sampled")
KINDS = ("decoder", "encoder", "onepass")
BIDIRECTIONAL = ("encoder", "onepass")  # kinds whose labeled rows are read both ways
# what `protein_pooling` and `conv_kernel` are when a config leaves them out: the shipped onepass model's,
# and for the paper's kinds what they always were
_PAPER_KINDS = dict(protein_pooling="cls", conv_kernel=0)
KIND_DEFAULTS = {"onepass": dict(protein_pooling="attention", conv_kernel=9), "encoder": _PAPER_KINDS, "decoder": _PAPER_KINDS}

# Sizes beyond these are typos (an extra zero), refused before any weight is allocated.
MAX_PARAMS = 20_000_000_000
MODEL_BOUNDS = {
    "vocab_size": Bound(1, 1 << 20), "n_layer": Bound(1, 1024), "n_head": Bound(1, 1024), "n_embd": Bound(1, 1 << 16),
    "context": Bound(1, 1 << 16), "n_segments": Bound(1, 1024), "dropout": Bound(0, 1, hi_open=True),
    "attention_dropout": Bound(0, 1, hi_open=True), "rope_base": Bound(0, lo_open=True), "label_noise": Bound(0, 1), "conv_kernel": Bound(hi=1025),
}


@dataclass
class ModelConfig:
    """The transformer of every kind (GPT-2 style, pre-LayerNorm, rotary positions, tied output). The
    defaults are the shipped model's (the bundled `default`): mini, onepass, a 9-wide convolution and
    attention pooling; `protein_pooling` and `conv_kernel` left out (None) are the kind's own defaults
    (the paper's kinds: "cls" and 0). A saved config.json is read with `from_saved`, which keeps what
    older files meant.

    context: tokens the model attends over; the per-task layouts in `dbmtl.data.layouts` fit inside it.
    n_segments: rows of the segment embedding (the layouts use 2 + one per task).
    kind: "onepass" (what ships: `<LOC> <MS> residues` read both ways, all four answers from one pass,
      dbmtl.data.onepass and dbmtl.model.heads), or the paper's "decoder" (labels generated after
      `residues <CTRL>`) or "encoder" (the paper's named fix: `<CTRL> residues` read both ways, an output
      at every residue; LM rows stay causal).
    attention_dropout: dropout on the attention weights (None: the same as `dropout`).
      0 lets training use torch's fused attention kernels: with dropout there, the weights are formed
      and a mask drawn for each of them (docs/performance.md, "Attention dropout").
    rope_base: rotary frequency base; small values make short distances easy to tell apart.
    label_inputs: what the decoder reads in place of the previous labels while training:
      "teacher"     the true labels (the paper's teacher forcing; honest prediction then decodes freely)
      "placeholder" the task's control token once per residue (prediction is one pass over the same)
      "noised"      the true labels, each replaced by a random label of its task with probability
                    label_noise (the model learns to read its own imperfect outputs; prediction decodes
                    freely, as for "teacher")
      "sampled"     scheduled sampling: the true labels, each replaced with probability label_noise by the
                    model's own prediction of that label (argmax over the task's labels, from a first
                    gradient-free pass over the true labels: the parallel variant of scheduled sampling,
                    one extra forward pass instead of one per residue); prediction decodes freely
    protein_pooling: how an encoder's per-protein answer (read at the control token) sees the residues:
      "cls"       the control token's own state (it attends to every residue in every layer)
      "attention" plus an attention-pooled summary of the residue states: for each feature a softmax over
                  residues of a learned score (light attention, Staerk et al. 2021, without its convolution)
    label_noise: replacement probability for "noised" and "sampled". 0.5 corrupts a third of SS3 inputs
      under "noised" (a random label may be the true one), about the error rate of the model's own
      predictions it reads later; under "sampled" it is the share of label inputs that are the model's own.
    conv_kernel: 0 (off) or an odd width: every block also mixes each token with its neighbours through a
      depthwise convolution over that many positions (centred in bidirectional rows, looking back only in
      causal rows), then a linear map. Secondary structure is mostly local; attention alone has to learn
      "look at my neighbours" from data, the convolution starts there. Encoder kind only (the decoder's
      KV-cache decoding has no convolution state).
    """

    vocab_size: int = 56
    n_layer: int = 5
    n_head: int = 4
    n_embd: int = 192
    context: int = 1024
    n_segments: int = 7
    dropout: float = 0.1
    attention_dropout: float | None = None
    kind: str = "onepass"
    rope_base: float = 1000.0
    label_inputs: str = "placeholder"
    label_noise: float = 0.5
    protein_pooling: str | None = None
    conv_kernel: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, "model config", MODEL_BOUNDS)
        if self.kind in KIND_DEFAULTS:  # an unknown kind is refused below
            for key, value in KIND_DEFAULTS[self.kind].items():
                if getattr(self, key) is None:
                    setattr(self, key, value)
        if self.n_embd % self.n_head:
            raise ValueError(f"model config: 'n_embd' {self.n_embd} is not divisible by 'n_head' {self.n_head}")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError(f"model config: 'n_embd' / 'n_head' = {self.n_embd // self.n_head} must be even "
                             "(rotary positions rotate pairs of features)")
        if self.n_params() > MAX_PARAMS:
            raise ValueError(f"model config: {self.n_params() / 1e9:.1f} billion parameters (n_layer {self.n_layer}, "
                             f"n_embd {self.n_embd}) is over the {MAX_PARAMS / 1e9:.0f} billion this code is built for")
        if self.kind not in KINDS:
            raise ValueError(f"model config: 'kind' must be one of {KINDS}, not {self.kind!r}")
        if self.label_inputs not in LABEL_INPUTS:
            raise ValueError(f"label_inputs must be one of {LABEL_INPUTS}, not {self.label_inputs!r}")
        if self.protein_pooling not in ("cls", "attention"):
            raise ValueError(f"protein_pooling must be 'cls' or 'attention', not {self.protein_pooling!r}")
        if self.protein_pooling == "attention" and self.kind not in BIDIRECTIONAL:
            raise ValueError("protein_pooling 'attention' is for the encoder and onepass kinds")
        if self.conv_kernel and (self.conv_kernel < 0 or self.conv_kernel % 2 == 0):
            raise ValueError(f"conv_kernel must be 0 or an odd width, not {self.conv_kernel}")
        if self.conv_kernel and self.kind not in BIDIRECTIONAL:
            raise ValueError("conv_kernel is for the encoder and onepass kinds (decoding with a KV cache has no convolution state)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return strict_from_dict(cls, d, "model config")

    @classmethod
    def from_saved(cls, d: dict) -> "ModelConfig":
        """A model config as a model folder or checkpoint stores it: a key the file lacks (it was written
        before the key existed) means what it meant then, SAVED_MODEL_DEFAULTS (a decoder, no convolution)."""
        return strict_from_dict(cls, {**SAVED_MODEL_DEFAULTS, **d} if isinstance(d, dict) else d, "model config")

    def n_params(self) -> int:
        d = self.n_embd
        per_layer = 12 * d * d + 13 * d
        if self.conv_kernel:  # norm, depthwise kernel + bias, pointwise linear
            per_layer += 2 * d + (self.conv_kernel + 1) * d + d * d + d
        pool = d * d + d if self.protein_pooling == "attention" else 0
        return self.n_layer * per_layer + (self.vocab_size + self.n_segments) * d + 2 * d + pool


# What a saved config.json without a key meant: the defaults every key had before the defaults became
# the shipped model's. Files written since name every key.
SAVED_MODEL_DEFAULTS = dict(vocab_size=56, n_layer=6, n_head=4, n_embd=256, context=1024, n_segments=7, dropout=0.0,
                            attention_dropout=None, kind="decoder", rope_base=1000.0, label_inputs="placeholder",
                            label_noise=0.5, protein_pooling="cls", conv_kernel=0)

# paper: Elnaggar et al. (12 layers, hidden 1024, 16 heads, dropout 0.2, length 1024), ~152M parameters.
# Others are sized for a 2-core CPU: tiny for tests, mini (2.4M) for the bundled model, small (5M).
PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, context=1024, dropout=0.0),
    "mini": dict(n_layer=5, n_head=4, n_embd=192, context=1024, dropout=0.1),
    "small": dict(n_layer=6, n_head=4, n_embd=256, context=1024, dropout=0.1),
    "base": dict(n_layer=8, n_head=6, n_embd=384, context=1024, dropout=0.1),
    "paper": dict(n_layer=12, n_head=16, n_embd=1024, context=1024, dropout=0.2, kind="decoder", label_inputs="teacher"),
}
