"""experiments/layer_readout.py: its summaries are the product's where they should be, and a block's
kept output is that block's residual stream."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from dbmtl.inference import Predictor
from dbmtl.training.readout import protein_features

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))
spec = importlib.util.spec_from_file_location("layer_readout", ROOT / "experiments" / "layer_readout.py")
lr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lr)

SEQUENCES = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEG",
             "MSTNPKPQRKTKRNTNRRPQDVKFPGG", "MLSRAVCGTSRQLAPALGYLGSRQKHSLPDLPYDYGALEPHINAQIMQLHHSKHHAAYVNNLNV"]


def test_final_summaries_are_the_products_and_the_last_block_feeds_the_final_norm():
    torch.set_num_threads(1)
    predictor = Predictor.from_pretrained("default")
    feats = lr.protein_layer_features(predictor, SEQUENCES)
    product, _ = protein_features(predictor, SEQUENCES, 40)
    torch.testing.assert_close(torch.from_numpy(feats["final"]), product)
    n_blocks = len(predictor.runner.model.blocks)
    assert sorted(feats) == sorted(["final", *(f"block{k}" for k in range(1, n_blocks))])
    # the hook keeps each block's output: the final norm of the last one's residues gives the final states
    model = predictor.runner.model
    row = predictor.layout.prediction_row(SEQUENCES[0])
    with lr.BlockOutputs(model) as hooks, torch.inference_mode():
        final = model(row.inputs[None], positions=row.positions[None], segments=row.segments[None],
                      causal=row.causal, hidden=True)
        torch.testing.assert_close(model.ln_f(hooks.outputs[-1])[:, lr.PREFIX:], final[:, lr.PREFIX:])
        assert not torch.allclose(hooks.outputs[1], hooks.outputs[2])
    assert not any(block._forward_hooks for block in model.blocks)  # the hooks leave with the block
