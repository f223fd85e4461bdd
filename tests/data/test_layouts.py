"""The two row layouts: what fits the context, where answers are read, the long-protein rules."""
from __future__ import annotations

import pytest
import torch

from dbmtl.data.layouts import SEGMENTS_USED, DecoderLayout, EncoderLayout, collate, layout_for
from dbmtl.model import ModelConfig
from dbmtl.tasks import TASKS
from dbmtl.tokens import Alphabet


SEQ = "MKT" + "A" * 40 + "LLVW"


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
def test_every_training_row_fits_the_context_and_too_long_proteins_are_dropped(kind):
    layout = layout_for(kind, Alphabet(), 64)
    limit = layout.max_residue_length()
    fits = "A" * limit
    ex = layout.residue_example(TASKS["ss3"], fits, "C" * limit, [1] * limit)
    assert ex is not None and len(ex.inputs) <= 64
    assert layout.residue_example(TASKS["ss3"], fits + "A", "C" * (limit + 1), [1] * (limit + 1)) is None
    long = "M" + "A" * 300 + "W"
    row = layout.protein_example(TASKS["loc"], long, "Nucleus")
    assert len(row.inputs) <= 64
    cropped = layout.crop_protein(long)
    assert cropped.startswith("MA") and cropped.endswith("AW") and len(cropped) == layout.protein_budget()


@pytest.mark.parametrize("layout_cls", [DecoderLayout, EncoderLayout])
def test_prediction_reads_the_per_protein_answer_where_training_puts_it(layout_cls):
    """The column protein_answer_column points at is the one the training example scores."""
    alphabet = Alphabet()
    layout = layout_cls(alphabet, 1024)
    task = TASKS["loc"]
    rows = [layout.protein_row(task, s) for s in (SEQ, SEQ[:10])]
    batch = collate(rows, alphabet.pad_id)
    columns = layout.protein_answer_column(batch)
    for i, s in enumerate((SEQ, SEQ[:10])):
        ex = layout.protein_example(task, s, "Nucleus")
        scored = int(torch.nonzero(ex.weights)[0])
        assert int(columns[i]) == scored
        assert int(ex.targets[scored]) == alphabet.index[task.label_token("Nucleus")]


def test_a_model_with_too_few_segment_embeddings_is_refused():
    with pytest.raises(ValueError, match="segments"):
        layout_for("encoder", Alphabet(), 1024, n_segments=SEGMENTS_USED - 1)
    assert ModelConfig().n_segments == SEGMENTS_USED  # the default fits the layouts
