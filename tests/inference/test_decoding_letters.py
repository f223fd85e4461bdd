"""SS3 and SS8 letters agree on every residue (SS3 = the 3-state class of SS8) while SS3 stays the
likeliest 3-state class: in decoding.residue_letters, the API and the files `dbmtl predict` writes."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers import tiny_predictor

from dbmtl.cli import main
from dbmtl.inference.decoding import residue_letters
from dbmtl.inference.predictor import Predictor
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import SS3_LABELS, SS8_LABELS, SS8_TO_SS3, ss8_to_ss3

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"
MEMBER = np.array([[SS8_TO_SS3[s8] == s3 for s3 in SS3_LABELS] for s8 in SS8_LABELS], dtype=np.float32)


def distributions(n_states: int):
    """(L, n_states) rows of a softmax (float32, like the model's), L from 1 to 40."""
    return st.integers(1, 40).flatmap(lambda n: arrays(np.float32, (n, n_states),
                                                        elements=st.floats(-8, 8, width=32))).map(
        lambda x: (np.exp(x) / np.exp(x).sum(1, keepdims=True)).astype(np.float32))


def check(letters: dict, ss3: np.ndarray, ss8: np.ndarray) -> None:
    assert ss8_to_ss3(letters["ss8"]) == letters["ss3"]
    assert letters["ss3"] == "".join(SS3_LABELS[i] for i in ss3.argmax(1))
    for k, letter in enumerate(letters["ss8"]):  # the likeliest SS8 letter inside the SS3 class
        inside = [ss8[k, i] for i, s in enumerate(SS8_LABELS) if SS8_TO_SS3[s] == letters["ss3"][k]]
        assert ss8[k, SS8_LABELS.index(letter)] == max(inside)


@settings(max_examples=300, deadline=None)
@given(distributions(8))
def test_onepass_letters_agree_and_ss3_is_the_argmax_of_the_summed_distribution(ss8):
    ss3 = ss8 @ MEMBER
    check(residue_letters({"ss3": ss3, "ss8": ss8}), ss3, ss8)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_separate_heads_agree_too_and_keep_their_own_ss3(data):
    ss8 = data.draw(distributions(8))
    ss3 = data.draw(arrays(np.float32, (len(ss8), 3), elements=st.floats(0, 1, width=32)))
    check(residue_letters({"ss3": ss3, "ss8": ss8}), ss3, ss8)


def test_one_task_alone_is_its_own_argmax():
    ss8 = np.array([[0.30, 0.25, 0, 0.45, 0, 0, 0, 0]], dtype=np.float32)
    assert residue_letters({"ss8": ss8}) == {"ss8": "E"}
    # with SS3 beside it: H (0.55) beats E (0.45), so SS8 is the likeliest helix letter, H
    assert residue_letters({"ss3": ss8 @ MEMBER, "ss8": ss8}) == {"ss3": "H", "ss8": "H"}


def test_the_api_agrees_for_the_bundled_and_a_separate_heads_model():
    records = list(read_fasta(EXAMPLE))
    bundled = Predictor.from_pretrained("default")
    full = bundled.predict(records)
    for p in full:
        assert ss8_to_ss3(p.ss8) == p.ss3
        assert p.ss3 == "".join(SS3_LABELS[i] for i in p.probabilities["ss3"].argmax(1))
    # a onepass model's letters do not depend on which tasks were asked for
    assert [p.ss8 for p in bundled.predict(records, tasks=["ss8"])] == [p.ss8 for p in full]
    assert [p.ss3 for p in bundled.predict(records, tasks=["ss3"])] == [p.ss3 for p in full]
    for p in tiny_predictor(kind="encoder").predict(records, tasks=["ss3", "ss8"]):
        assert ss8_to_ss3(p.ss8) == p.ss3
        assert p.ss3 == "".join(SS3_LABELS[i] for i in p.probabilities["ss3"].argmax(1))


def test_predict_files_have_agreeing_letters_on_real_proteins(tmp_path):
    assert main(["predict", str(EXAMPLE), "-o", str(tmp_path), "--threads", "1", "--quiet"]) == 0
    with open(tmp_path / "residues.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == sum(len(r.sequence) for r in read_fasta(EXAMPLE))
    assert "".join(r["ss3"] for r in rows) == ss8_to_ss3("".join(r["ss8"] for r in rows))
    # ss3 is still the likeliest class (ties at 4 decimals aside)
    for r in rows:
        p = {s: float(r[f"p_ss3_{s}"]) for s in SS3_LABELS}
        assert p[r["ss3"]] == pytest.approx(max(p.values()), abs=1e-4)


def test_evaluate_scores_the_shipped_letters_and_shows_the_argmax_q8(data_dir):
    from dbmtl.evaluation.runner import evaluate, to_markdown

    results = evaluate(Predictor.from_pretrained("default"), data_dir, limit=40, sets=["CB513"], audit=False,
                       log=lambda message: None)
    ss3, ss8 = results["sets"]["CB513"]["ss3"], results["sets"]["CB513"]["ss8"]
    assert ss8["argmax"]["mean"] > ss8["mean"]  # on 40 proteins the shipped letters lose a little Q8 ...
    assert ss3["argmax"]["mean"] == ss3["mean"]  # ... and no Q3
    assert "| CB513 | " in to_markdown(results).split("own SS8 argmax, unconstrained")[1]


def test_plots_draw_the_probability_of_the_letter_shown():
    from dbmtl.inference.writers import prediction_record
    from dbmtl.reports.plots import letter_confidence
    from dbmtl.reports.records import task_table

    p = Predictor.from_pretrained("default").predict(list(read_fasta(EXAMPLE))[:1])[0]  # ubiquitin
    record, meta = prediction_record(p), task_table()["ss8"]
    labels, conf = letter_confidence(record, "ss8", meta)
    probs = np.asarray(record["ss8_probabilities"])
    assert "".join(meta["labels"][i] for i in labels) == p.ss8
    inside = conf < probs.max(1)  # residues whose SS8 letter is not the likeliest of the eight
    assert inside.any()
    np.testing.assert_array_equal(conf, probs[np.arange(len(labels)), labels])
