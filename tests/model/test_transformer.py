"""The transformer: cached decoding equals a full pass, padding changes nothing, attention pooling and the local
convolution read what they should, blocked attention equals SDPA."""
import pytest
import torch

from dbmtl.model import PRESETS, Transformer, KVCache, ModelConfig
from dbmtl.model.transformer import blocked_attention
from dbmtl.tokens import Alphabet


def make(seed=0, **kw):
    """A tiny random model; a decoder (the kind that decodes with a KV cache) unless `kind` says otherwise."""
    torch.manual_seed(seed)
    return Transformer(ModelConfig(vocab_size=len(Alphabet()), **{**PRESETS["tiny"], "kind": "decoder", **kw})).eval()


def test_kv_cache_matches_full_pass():
    model = make()
    x = torch.randint(3, 28, (3, 40))
    with torch.no_grad():
        full = model(x)
        cache = KVCache(model.cfg, 3, 40)
        parts = [model(x[:, :25], cache=cache)] + [model(x[:, t : t + 1], cache=cache) for t in range(25, 40)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_left_padding_with_positions_matches_unpadded():
    model = make()
    x = torch.randint(3, 28, (1, 30))
    padded = torch.cat([torch.zeros(1, 7, dtype=torch.long), x], 1)
    valid = torch.ones(1, 37, dtype=torch.bool)
    valid[:, :7] = False
    positions = (valid.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        assert torch.allclose(model(padded, positions=positions, valid=valid)[:, 7:], model(x), atol=1e-5)


def test_attention_pooling_ignores_padding_and_reads_every_residue():
    """The per-protein answer (column 0) of a padded encoder row equals the unpadded one, and depends on
    residues far from the control token only through the pooling as well as attention."""
    model = make(kind="encoder", protein_pooling="attention")
    assert sum(p.numel() for p in model.parameters()) == model.cfg.n_params()
    torch.nn.init.normal_(model.pool.weight, std=0.5)  # sharp scores, so a wrong mask would show
    x = torch.randint(3, 28, (1, 30))
    padded = torch.cat([x, torch.zeros(1, 9, dtype=torch.long)], 1)
    valid = torch.ones(1, 39, dtype=torch.bool)
    valid[:, 30:] = False
    with torch.no_grad():
        alone = model(x, causal=False)
        together = model(padded, valid=valid, causal=False)
        assert torch.allclose(together[:, :30], alone, atol=1e-5)
        changed = x.clone()
        changed[0, -1] = 3 if x[0, -1] != 3 else 4
        assert not torch.allclose(model(changed, causal=False)[:, 0], alone[:, 0], atol=1e-4)
    with pytest.raises(ValueError, match="encoder"):
        make(protein_pooling="attention")


def test_context_overflow_is_an_error():
    model = make(context=16)
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_local_convolution_ignores_padding_sees_only_its_window_and_looks_back_in_causal_rows():
    """With conv_kernel k, a bidirectional row padded in a batch equals the row alone; in a model whose
    attention is cut off (zeroed output projections), a residue changes exactly the outputs within
    n_layer * (k // 2) positions (both sides), and in causal rows only later ones."""
    model = make(kind="encoder", conv_kernel=5)
    assert sum(p.numel() for p in model.parameters()) == model.cfg.n_params()
    x = torch.randint(3, 28, (1, 30))
    padded = torch.cat([x, torch.randint(3, 28, (1, 9))], 1)  # padding with real-looking tokens
    valid = torch.ones(1, 39, dtype=torch.bool)
    valid[:, 30:] = False
    with torch.no_grad():
        assert torch.allclose(model(padded, valid=valid, causal=False)[:, :30], model(x, causal=False), atol=1e-5)
        for block in model.blocks:
            block.attn.proj.weight.zero_()
            block.attn.proj.bias.zero_()
        changed = x.clone()
        changed[0, 15] = 3 if x[0, 15] != 3 else 4
        reach = model.cfg.n_layer * (5 // 2)
        for causal, expected in ((False, set(range(15 - reach, 15 + reach + 1))), (True, set(range(15, 15 + 2 * reach + 1)))):
            diff = (model(changed, causal=causal) - model(x, causal=causal)).abs().amax(-1)[0]
            assert {int(i) for i in torch.nonzero(diff > 1e-6)} == expected
    for bad in (4, -3):
        with pytest.raises(ValueError, match="odd"):
            make(kind="encoder", conv_kernel=bad)
    with pytest.raises(ValueError, match="encoder"):
        make(conv_kernel=5)


def test_attention_dropout_is_its_own_setting_and_defaults_to_dropout():
    """attention_dropout None keeps `dropout` on the attention weights (every earlier model); a value of its
    own replaces it there alone, and 0 with dropout 0 makes a training-mode pass equal the eval pass."""
    x = torch.randint(3, 28, (2, 30))
    assert make(dropout=0.1).blocks[0].attn.dropout == 0.1
    assert make(dropout=0.1, attention_dropout=0.0).blocks[0].attn.dropout == 0.0
    quiet = make(dropout=0.0, attention_dropout=0.0, kind="encoder")
    noisy = make(dropout=0.0, attention_dropout=0.5, kind="encoder")
    with torch.no_grad():
        assert torch.allclose(quiet.train()(x, causal=False), quiet.eval()(x, causal=False), atol=1e-6)
        assert not torch.allclose(noisy.train()(x, causal=False), noisy.eval()(x, causal=False), atol=1e-3)
    with pytest.raises(ValueError, match="attention_dropout"):
        make(attention_dropout=1.0)
    assert ModelConfig.from_dict({"dropout": 0.2}).attention_dropout is None  # older config.json files load


@pytest.mark.parametrize("case", ["plain", "causal", "prefix", "arbitrary", "causal+padding"])
def test_blocked_attention_equals_sdpa(case):
    torch.manual_seed(0)
    B, H, T, D = 3, 4, 70, 16
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    lengths = torch.tensor([70, 41, 5])
    prefix = (torch.arange(T)[None, :] < lengths[:, None])[:, None, None, :]
    mask, causal = None, False
    if case == "causal":
        causal = True
    elif case == "prefix":
        mask = prefix
    elif case == "arbitrary":
        mask = (torch.rand(B, 1, T, T) > 0.5) | torch.eye(T, dtype=torch.bool)
    elif case == "causal+padding":  # the decoder's left-padded rows: causal, valid keys, a query sees itself
        eye = torch.eye(T, dtype=torch.bool)
        mask = (torch.ones(T, T, dtype=torch.bool).tril() & prefix.flip(-1)) | eye
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    for block in (1, 500, 1 << 21):  # a row of a block at a time ... everything at once
        got = blocked_attention(q, k, v, mask, causal=causal, block_elements=block)
        torch.testing.assert_close(got, ref, atol=2e-6, rtol=1e-5)
