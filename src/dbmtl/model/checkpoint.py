"""Checkpoints: safetensors weights + JSON config + the vocabulary (no pickle anywhere).

A checkpoint is a directory:
  model.safetensors   weights (fp32, or fp16 for the small bundled model; computed in fp32 on load)
  config.json         {"model": ModelConfig, ...extra: training config, step, data used, calibration}
  vocab.json          the alphabet the model was trained with, compared on load
  readout.safetensors optional: the per-protein readout (dbmtl.model.readout), named in config.json
  residue_readout.safetensors  optional: the per-residue readout, named in config.json
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from ..tokens import Alphabet
from .config import ModelConfig
from .readout import READOUT_FILE, RESIDUE_READOUT_FILE
from .transformer import Transformer

TIED = "head.weight"  # the same tensor as wte.weight; stored once
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "pretrained" / "default"  # bundled with the package


def model_folder(name: str | Path) -> Path:
    """The folder a model name means: "default" is the bundled model, anything else a path."""
    return DEFAULT_MODEL if str(name) == "default" else Path(name)


def save_checkpoint(path: str | Path, model: Transformer, alphabet: Alphabet, extra: dict | None = None,
                    dtype: torch.dtype | None = None, weights: dict[str, torch.Tensor] | None = None) -> Path:
    """`weights`: the model's full state dict when it is not `model.state_dict()` (gathered from FSDP shards)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = model.state_dict() if weights is None else weights
    state = {k: v.detach().to(dtype or v.dtype).contiguous().cpu() for k, v in weights.items() if k != TIED}
    tmp = path / "model.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(path / "model.safetensors")
    meta = {"model": model.cfg.to_dict(), **(extra or {})}
    (path / "config.json").write_text(json.dumps(meta, indent=1))
    alphabet.save(path / "vocab.json")
    return path


class CheckpointError(ValueError):
    """A model folder that cannot be used: missing or damaged files, or weights that do not fit."""


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Transformer, Alphabet, dict]:
    """Load a model folder, checking every file before use: the config (keys, types, sizes), the
    vocabulary, the safetensors header (names, shapes, dtypes against the config) and finite weights.
    Never unpickles. `meta["fingerprint"]` identifies the weights and their calibration (resume checks it)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"model folder {path} not found" if not path.exists() else f"{path} is not a model folder")
    for name in ("model.safetensors", "config.json", "vocab.json"):
        if not (path / name).is_file():
            raise CheckpointError(f"{path}: no {name} (a model folder holds model.safetensors, config.json, vocab.json)")
    meta = _read_json(path / "config.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{path / 'config.json'}: no 'model' section")
    try:
        cfg = ModelConfig.from_saved(meta["model"])
        tokens = _read_json(path / "vocab.json")
        alphabet = Alphabet(list(tokens["tokens"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        Alphabet().check_compatible(alphabet, where=str(path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    # built once, on the CPU: its shapes are what the file must hold (a model built on the "meta" device
    # would run its initialization through torch's reference ops, which import the compiler: 1.3 s)
    model = Transformer(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != TIED}
    weights = path / "model.safetensors"
    try:
        with safe_open(str(weights), framework="pt") as fh:
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    if shapes != expected:
        wrong = sorted(set(shapes) ^ set(expected)) or sorted(k for k in shapes if shapes[k] != expected[k])
        raise CheckpointError(f"{weights}: weights do not match config.json (first differences: {wrong[:3]})")
    try:
        data = weights.read_bytes()  # read once: the tensors and the fingerprint come from the same bytes
        state = {k: v.float() for k, v in load_safetensors(data).items()}
    except Exception as exc:
        raise CheckpointError(f"{weights}: damaged ({exc})") from None
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{weights}: weights contain NaN or inf ({', '.join(bad[:3])})")
    model.load_state_dict(state, strict=False)
    digest = hashlib.sha256(data)
    for readout in (READOUT_FILE, RESIDUE_READOUT_FILE):  # readouts answer in place of the head
        if (path / readout).is_file():
            digest.update((path / readout).read_bytes())
    if "calibration" in meta:  # it changes the probabilities, so it is part of what identifies the model
        digest.update(json.dumps(meta["calibration"], sort_keys=True).encode())
    meta["fingerprint"] = digest.hexdigest()[:16]
    return model.to(device).eval(), alphabet, meta


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
