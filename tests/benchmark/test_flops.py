"""FLOP counts that match the model's weights and the rows a prediction runs."""
import pytest
import torch

from dbmtl.benchmark.flops import forward_flops, linear_flops_per_token, predict_flops
from dbmtl.inference.windows import residue_windows
from dbmtl.model import PRESETS, ModelConfig, Transformer


def test_flop_counts():
    cfg = ModelConfig(**PRESETS["paper"])
    f = forward_flops(cfg, 32, 1024, causal=False)
    n = 12 * cfg.n_embd**2 * cfg.n_layer
    assert f["linear"] == 2 * (n + cfg.vocab_size * cfg.n_embd) * 32 * 1024
    assert f["attention"] == 4 * cfg.n_layer * 32 * 1024**2 * cfg.n_embd
    assert forward_flops(cfg, 32, 1024, causal=True)["attention"] == f["attention"] / 2
    enc = ModelConfig(**{**PRESETS["tiny"], "context": 64}, kind="encoder")
    need = predict_flops(enc, [10, 63, 64])
    # per-residue: 10+1, 63+1, and 64 residues -> windows of 63 (2 rows); per-protein: crop to 63 residues
    per_residue = [11, 64, 64, 64]
    per_protein = [11, 64, 64]
    assert need["tokens"] == 2 * sum(per_residue) + 2 * sum(per_protein)
    one = ModelConfig(**{**PRESETS["tiny"], "context": 64}, kind="onepass")
    # one row for every task: 10+2 and 62+2; 63 residues -> two windows of up to 62 plus one cropped row
    spans = [e - s for s, e in residue_windows(63, 62)]
    assert len(spans) == 2
    assert predict_flops(one, [10, 62, 63])["tokens"] == 12 + 64 + sum(n + 2 for n in spans) + 64
    assert predict_flops(one, [10])["tokens"] == 12 and predict_flops(enc, [10])["tokens"] == 4 * 11  # one pass vs four
    assert predict_flops(ModelConfig(**PRESETS["tiny"], kind="decoder"), [10]) is None  # decoder rows: not counted


@pytest.mark.parametrize("conv", [0, 9])
def test_linear_flops_count_every_weight_a_token_multiplies(conv):
    """2 FLOPs per multiply-add of every linear and convolution weight in the model's forward pass."""
    cfg = ModelConfig(**{**PRESETS["mini"], "vocab_size": 56}, kind="encoder", conv_kernel=conv)
    model = Transformer(cfg)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)))
    assert linear_flops_per_token(cfg) == 2 * weights
