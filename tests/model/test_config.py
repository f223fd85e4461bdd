"""Model configs: the presets' sizes, the kinds and what each allows, a size checked before any allocation."""
import pytest

from dbmtl.model import PRESETS, ModelConfig
from dbmtl.tokens import Alphabet


def test_paper_preset_size():
    cfg = ModelConfig(vocab_size=len(Alphabet()), **PRESETS["paper"])
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.dropout, cfg.context) == (12, 1024, 16, 0.2, 1024)
    assert 150e6 < cfg.n_params() < 155e6


def test_onepass_config_allows_what_the_encoder_allows():
    cfg = ModelConfig(kind="onepass", conv_kernel=9, protein_pooling="attention")
    assert cfg.n_segments == 7  # one segment for the whole row: the default embedding table is enough
    with pytest.raises(ValueError, match="kind"):
        ModelConfig(kind="twopass")


def test_a_huge_model_is_refused_before_any_allocation():
    # n_params is arithmetic on the config; building the Transformer would need terabytes
    with pytest.raises(ValueError, match="billion parameters"):
        ModelConfig(n_layer=1024, n_embd=16384, n_head=128)
