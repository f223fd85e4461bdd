"""Checkpoints: safetensors weights + JSON config + the vocabulary (no pickle anywhere).

A checkpoint is a directory:
  model.safetensors   weights (fp32, or fp16 for the small bundled model; computed in fp32 on load)
  config.json         {"model": ModelConfig, ...extra: training config, step, data used}
  vocab.json          the alphabet the model was trained with, compared on load
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..tokens import Alphabet
from .config import ModelConfig
from .transformer import Transformer

TIED = "head.weight"  # the same tensor as wte.weight; stored once


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


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Transformer, Alphabet, dict]:
    path = Path(path)
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"no model.safetensors in {path}")
    meta = json.loads((path / "config.json").read_text())
    alphabet = Alphabet.load(path / "vocab.json")
    Alphabet().check_compatible(alphabet, where=str(path))
    model = Transformer(ModelConfig.from_dict(meta["model"]))
    state = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - {TIED} or unexpected:
        raise ValueError(f"{path}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    return model.to(device).eval(), alphabet, meta
