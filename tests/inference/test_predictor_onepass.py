"""The onepass kind at prediction: all four answers from one pass, independent of batch neighbours, SS3
the summed SS8 distribution, long proteins covered."""
import numpy as np
import pytest
import torch

from dbmtl.data.onepass import PREFIX
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import OUTPUT_TASKS, SS3_LABELS, SS8_LABELS, SS8_TO_SS3, TASKS

from helpers import tiny_predictor


@pytest.fixture(scope="module")
def sequences(data_dir):
    recs = list(read_fasta(data_dir / "unlabeled/mmseqs2_examples/QUERY.fasta", check_duplicates=False))
    return [r.sequence for r in recs[:10]] + ["MK", "A"]


def onepass(**kw):
    return tiny_predictor(kind="onepass", conv_kernel=5, **kw)


def answers(predictor, seqs):
    return [{t: p.probabilities[t] for t in OUTPUT_TASKS} for p in predictor.predict(seqs)]


def count_forward_calls(predictor):
    calls = []
    predictor.model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_a_proteins_four_answers_do_not_depend_on_its_batch_neighbours(sequences):
    p = onepass()
    together = answers(p, sequences)
    alone = [answers(p, [s])[0] for s in sequences]
    p.runner.batch_tokens = 700
    calls = count_forward_calls(p)
    other_batches = answers(p, sequences[::-1])[::-1]
    assert len(calls) > 3  # other neighbours indeed
    for a, b, c, s in zip(together, alone, other_batches, sequences):
        assert a["ss8"].shape == (len(s), 8) and a["ss3"].shape == (len(s), 3)
        for t in OUTPUT_TASKS:
            np.testing.assert_allclose(a[t], b[t], atol=1e-5)
            np.testing.assert_allclose(a[t], c[t], atol=1e-5)


def test_ss3_is_the_summed_ss8_distribution(sequences):
    p = onepass(seed=3)
    preds = p.predict(sequences)
    differs = 0
    for pred in preds:
        ss8, ss3 = pred.probabilities["ss8"], pred.probabilities["ss3"]
        summed = np.stack([ss8[:, [SS8_TO_SS3[s] == c for s in SS8_LABELS]].sum(1) for c in SS3_LABELS], 1)
        np.testing.assert_allclose(ss3, summed, atol=1e-6)
        np.testing.assert_allclose(ss3.sum(1), 1.0, atol=1e-5)
        # the SS3 label is the argmax of the summed distribution, and the SS8 label the likeliest SS8 state
        # inside that class, so the SS8 letter maps to the SS3 letter even where the SS8 argmax alone would
        # not (H 0.3, G 0.1 vs E 0.35: SS3 says H, and SS8 then says H, not E)
        assert pred.ss3 == "".join(SS3_LABELS[i] for i in ss3.argmax(1))
        assert "".join(SS8_TO_SS3[c] for c in pred.ss8) == pred.ss3
        differs += int((np.array([SS8_TO_SS3[SS8_LABELS[i]] for i in ss8.argmax(1)]) != np.array(list(pred.ss3))).sum())
    assert differs > 0  # an untrained model has such residues: the rule above was exercised


def test_every_answer_comes_from_one_forward_pass_per_batch(sequences):
    p = onepass()
    p.runner.batch_tokens = 10**6  # every protein in one batch
    calls = count_forward_calls(p)
    out = p.predict(sequences)
    assert len(calls) == 1
    assert all(o.ss3 and o.ss8 and o.location and o.membrane for o in out)
    # the answers of a protein that fits are read from that one row: location at <LOC>, membrane at <MS>,
    # residue k at column k + 2
    row = p.layout.prediction_row(sequences[0])
    with torch.no_grad():
        logits = p.model(row.inputs[None], positions=row.positions[None], segments=row.segments[None], causal=False)[0]
    for task, column in (("loc", 0), ("ms", 1)):
        ids = p.alphabet.label_ids(TASKS[task])
        np.testing.assert_allclose(out[0].probabilities[task], torch.softmax(logits[column, ids], -1).numpy(), atol=1e-5)
    expected = torch.softmax(logits[PREFIX:, p.alphabet.label_ids(TASKS["ss8"])], -1).numpy()
    np.testing.assert_allclose(out[0].probabilities["ss8"], expected, atol=1e-5)


def test_a_long_protein_gets_every_residue_and_its_cropped_per_protein_answers():
    p = onepass(context=64)  # 62 residues per row
    long = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ" * 5)[:157]
    calls = count_forward_calls(p)
    p.runner.batch_tokens = 10**6
    out = p.predict([long, long[:62]])
    assert len(calls) == 1  # windows of the long protein, its cropped row and the short one: one batch
    assert len(out[0].ss8) == len(long) == len(out[0].probabilities["ss3"])
    assert len(out[1].ss8) == 62
    cropped = p.predict([p.layout.crop_protein(long)])[0]
    np.testing.assert_allclose(out[0].probabilities["loc"], cropped.probabilities["loc"], atol=1e-5)
    np.testing.assert_allclose(out[0].probabilities["ms"], cropped.probabilities["ms"], atol=1e-5)


def test_single_task_calls_give_the_same_numbers(sequences):
    p = onepass()
    full = p.predict(sequences[:4])
    only_loc = p.predict(sequences[:4], tasks=("loc",))
    assert only_loc[0].ss3 is None
    for a, b in zip(full, only_loc):
        np.testing.assert_allclose(a.probabilities["loc"], b.probabilities["loc"], atol=1e-6)
    assert p.residue_mode == "onepass"
    with pytest.raises(ValueError, match="never reads labels"):
        p.teacher_forced_residues(sequences[:1], ["C" * len(sequences[0])], TASKS["ss3"])
