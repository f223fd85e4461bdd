"""experiments/light_attention_readout.py: the Light Attention head's answers do not depend on the batch."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))
spec = importlib.util.spec_from_file_location("light_attention_readout", ROOT / "experiments" / "light_attention_readout.py")
la = importlib.util.module_from_spec(spec)
spec.loader.exec_module(la)


def test_a_proteins_answer_does_not_depend_on_what_shares_its_batch():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    width = 16
    states = [rng.normal(size=(la.PREFIX + n, width)).astype(np.float16) for n in (7, 30, 12)]
    center, scale = torch.zeros(width), torch.ones(width)
    net = la.LightAttention(width, len(la.LABELS), hidden=8, kernel=5).eval()
    with torch.no_grad():
        alone = [net(*la.batch(states, [i], center, scale)) for i in range(3)]
        together = net(*la.batch(states, [0, 1, 2], center, scale))
    for i in range(3):
        torch.testing.assert_close(together[i], alone[i][0], atol=1e-5, rtol=1e-5)
    # predict returns one row per id, in the order asked, whatever order its length batches take
    probs = la.predict(net, states, [2, 0, 1], None, center, scale)
    torch.testing.assert_close(probs, torch.cat([alone[i] for i in (2, 0, 1)]).softmax(1), atol=1e-5, rtol=1e-5)
