"""Fast inference: batch composition never changes a prediction, blocked attention says what SDPA says,
half precision and int8 stay close to float32, and the vectorized label strings say what the per-residue
join said."""
import json
import random

import numpy as np
import pytest
import torch

from dbmtl.cli import main
from dbmtl.data.layouts import layout_for
from dbmtl.inference.predictor import Predictor, label_string
from dbmtl.model.checkpoint import save_checkpoint
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import OUTPUT_TASKS, TASKS
from dbmtl.tokens import Alphabet

from helpers import tiny_predictor


CONTEXT = 96  # small context: windows (decoder 47 residues, encoder 95) and crops happen at modest lengths


@pytest.fixture(scope="module")
def mixed_sequences(data_dir):
    """Real proteins of mixed lengths: tiny, typical, and longer than one window (several windows)."""
    recs = list(read_fasta(data_dir / "unlabeled/mmseqs2_examples/QUERY.fasta", check_duplicates=False))
    real = [r.sequence for r in recs]
    rng = random.Random(0)
    picked = rng.sample([s for s in real if len(s) < 60], 3) + rng.sample([s for s in real if 60 <= len(s) < 130], 2)
    picked += [s[:230] for s in real[:40] if len(s) >= 400][:1]
    return picked + ["M", "MK", "ACDEFGHIKLMNPQRSTVWYXBZUO"]


def _all_outputs(p: Predictor, seqs):
    return {s: pr for s, pr in zip(seqs, p.predict(seqs))}


# (kind, label_inputs, conv_kernel)
CASES = [("encoder", "placeholder", 0), ("encoder", "placeholder", 5), ("decoder", "placeholder", 0), ("decoder", "teacher", 0)]


@pytest.mark.parametrize("kind,label_inputs,conv", CASES)
def test_any_batch_composition_gives_the_same_predictions(mixed_sequences, kind, label_inputs, conv):
    """Every output (SS3, SS8, location, membrane) of every protein is the same, to float tolerance,
    whether it is predicted alone, with all others, in another order, or under any token budget."""
    base = tiny_predictor(label_inputs, kind=kind, context=CONTEXT, conv_kernel=conv)
    assert any(len(s) > layout_for(kind, Alphabet(), CONTEXT).max_residue_length() for s in mixed_sequences)  # windows are exercised
    p = Predictor(base.model, base.alphabet, batch_tokens=100_000)
    reference = {s: p.predict([s])[0] for s in mixed_sequences}  # alone: a batch of one
    rng = random.Random(1)
    # budget 1: one row per batch (free-running decoding then takes a step per row: slow, left to the others)
    for budget in ((250, 100_000) if label_inputs == "teacher" else (1, 250, 100_000)):
        p.batch_tokens = budget
        order = mixed_sequences[:]
        rng.shuffle(order)
        got = _all_outputs(p, order)
        for s in mixed_sequences:
            for task in OUTPUT_TASKS:
                np.testing.assert_allclose(got[s].probabilities[task], reference[s].probabilities[task], atol=2e-5,
                                           err_msg=f"{kind}/{label_inputs}/conv {conv} budget {budget} task {task} length {len(s)}")
                assert got[s].labels[task] == reference[s].labels[task]
            assert got[s].probabilities["ss3"].shape == (len(s), 3)


@pytest.mark.parametrize("kind,label_inputs,conv", CASES)
def test_blocked_attention_predicts_what_sdpa_predicts(mixed_sequences, kind, label_inputs, conv):
    """The bf16 CPU attention path, run in float32 so that only the algorithm differs, with blocks far
    smaller than a batch: the same probabilities as torch's SDPA under any batch budget."""
    base = tiny_predictor(label_inputs, kind=kind, context=CONTEXT, conv_kernel=conv)
    sdpa = Predictor(base.model, base.alphabet, batch_tokens=100_000, attention="sdpa")
    blocked = Predictor(base.model, base.alphabet, batch_tokens=300, attention="blocked")
    assert all(m.attention == "sdpa" for m in base.model.modules() if hasattr(m, "attention"))  # not touched
    for a, b in zip(sdpa.predict(mixed_sequences), blocked.predict(mixed_sequences)):
        for task in OUTPUT_TASKS:
            np.testing.assert_allclose(a.probabilities[task], b.probabilities[task], atol=2e-5)


def test_a_protein_beside_duplicates_of_itself_and_different_neighbours(mixed_sequences):
    """The same protein in one batch several times, or next to much longer ones (more padding), gets the
    same numbers as alone."""
    p = tiny_predictor(kind="encoder", context=CONTEXT)
    short = "MKTAYIAKQRQISFVKSHFSRQ"
    alone = p.predict([short])[0]
    crowd = p.predict([short, short, mixed_sequences[-4], short, mixed_sequences[7]])
    for i in (0, 1, 3):
        for task in OUTPUT_TASKS:
            np.testing.assert_allclose(crowd[i].probabilities[task], alone.probabilities[task], atol=2e-5)


@pytest.mark.parametrize("kind,label_inputs,conv", CASES[:3])
def test_bf16_is_batch_invariant_and_close_to_fp32(mixed_sequences, kind, label_inputs, conv):
    base = tiny_predictor(label_inputs, kind=kind, context=CONTEXT, conv_kernel=conv)
    fp32 = Predictor(base.model, base.alphabet, batch_tokens=500)
    bf16 = Predictor(base.model, base.alphabet, batch_tokens=500, dtype="bf16")
    assert next(base.model.parameters()).dtype == torch.float32  # the model passed in is left as it was
    batched = bf16.predict(mixed_sequences)
    exact = fp32.predict(mixed_sequences)
    for s, b, e in zip(mixed_sequences, batched, exact):
        alone = bf16.predict([s])[0]
        for task in OUTPUT_TASKS:
            np.testing.assert_allclose(b.probabilities[task], alone.probabilities[task], atol=1e-2)
            np.testing.assert_allclose(b.probabilities[task], e.probabilities[task], atol=5e-2)


@pytest.mark.parametrize("conv", [0, 5])
def test_int8_predictor_runs_and_stays_close(mixed_sequences, conv):
    base = tiny_predictor(kind="encoder", context=CONTEXT, conv_kernel=conv)
    q = Predictor(base.model, base.alphabet, int8=True)
    out, ref = q.predict(mixed_sequences[:5]), base.predict(mixed_sequences[:5])
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.probabilities["ss3"], b.probabilities["ss3"], atol=0.1)
        np.testing.assert_allclose(a.probabilities["ss3"].sum(1), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="int8"):
        Predictor(base.model, base.alphabet, int8=True, dtype="bf16")


def test_label_string_matches_the_per_residue_join():
    rng = np.random.default_rng(0)
    for task in (TASKS["ss3"], TASKS["ss8"]):
        idx = rng.integers(0, len(task.labels), 500)
        assert label_string(task.labels, idx) == "".join(task.labels[i] for i in idx)
    assert label_string(("HH", "E"), np.array([1, 0])) == "EHH"  # multi-letter labels still work


def test_predict_cli_half_precision_and_int8(tmp_path):
    p = tiny_predictor(kind="encoder")
    model = save_checkpoint(tmp_path / "m", p.model, p.alphabet)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQISFVK\n>b\nMSTNPKPQRK\n")
    rows = {}
    for flags in ([], ["--dtype", "bf16"], ["--dtype", "bf16", "--attention", "sdpa"], ["--int8"]):
        out = tmp_path / ("out" + "".join(flags))
        assert main(["predict", str(fasta), "-o", str(out), "--model", str(model), "--quiet", *flags]) == 0
        rows[tuple(flags)] = [json.loads(line) for line in open(out / "predictions.jsonl")]
    for got in rows.values():
        assert [r["id"] for r in got] == ["a", "b"] and len(got[0]["ss3"]) == 16
