"""The decoder: cached decoding equals a full pass, left padding changes nothing, checkpoints round-trip."""
import json

import pytest
import torch

from dbmtl.model import PRESETS, Transformer, KVCache, ModelConfig
from dbmtl.model.checkpoint import load_checkpoint, save_checkpoint
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


def test_paper_preset_size():
    cfg = ModelConfig(vocab_size=len(Alphabet()), **PRESETS["paper"])
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.dropout, cfg.context) == (12, 1024, 16, 0.2, 1024)
    assert 150e6 < cfg.n_params() < 155e6


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_checkpoint_round_trip(tmp_path, dtype):
    model = make(seed=3)
    save_checkpoint(tmp_path / "ck", model, Alphabet(), extra={"step": 7}, dtype=dtype)
    assert not list((tmp_path / "ck").glob("*.pt")) and not list((tmp_path / "ck").glob("*.bin"))
    loaded, alphabet, meta = load_checkpoint(tmp_path / "ck")
    assert meta["step"] == 7 and alphabet.tokens == Alphabet().tokens
    x = torch.randint(3, 28, (2, 20))
    with torch.no_grad():
        tol = 1e-6 if dtype is None else 2e-2
        assert torch.allclose(loaded(x), model(x), atol=tol)
    assert loaded.head.weight.data_ptr() == loaded.wte.weight.data_ptr()  # still tied after loading


def test_checkpoint_with_other_vocabulary_is_refused(tmp_path):
    save_checkpoint(tmp_path / "ck", make(), Alphabet())
    vocab = json.loads((tmp_path / "ck" / "vocab.json").read_text())
    vocab["tokens"][5], vocab["tokens"][6] = vocab["tokens"][6], vocab["tokens"][5]
    (tmp_path / "ck" / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ValueError, match="vocabulary"):
        load_checkpoint(tmp_path / "ck")


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
