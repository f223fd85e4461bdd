"""Model folders: weights and vocabulary round-trip through safetensors, another vocabulary is refused, and the
bundled model ships small and predicts well."""
import json

import numpy as np
import pytest
import torch

from dbmtl.inference.predictor import Predictor
from dbmtl.model.checkpoint import DEFAULT_MODEL, load_checkpoint, save_checkpoint
from dbmtl.tokens import Alphabet

from model.test_transformer import make


def test_bundled_default_model_is_small_and_predicts_well(data_dir):
    """The bundled model must ship (< 20 MB) and be clearly better than constant guessing."""
    from dbmtl.data.catalog import residue_test_sets
    from dbmtl.evaluation.audit import majority_labels
    from dbmtl.evaluation.metrics import per_residue_accuracy

    predictor = Predictor.from_pretrained("default")
    size = sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir())
    assert size < 20 * 2**20
    hbb = predictor.predict({"HBB": "MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH"})[0]
    assert hbb.ss3.count("H") > 2 * hbb.ss3.count("E")  # an all-alpha globin
    assert np.isclose(hbb.probabilities["loc"].sum(), 1.0, atol=1e-4)
    records = residue_test_sets(data_dir)["TS115"][:40]
    gold, masks = [r.ss3 for r in records], [r.resolved for r in records]
    q3 = per_residue_accuracy([p.ss3 for p in predictor.predict([r.sequence for r in records], tasks=("ss3",))], gold, masks)
    majority = per_residue_accuracy(majority_labels(gold, masks), gold, masks)
    assert q3["mean"] > majority["mean"] + 0.15, (q3["mean"], majority["mean"])


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
