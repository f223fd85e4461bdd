"""predict_fasta, the library loop behind `dbmtl predict`: the same answers as Predictor.predict, in
chunks, resumable, and every output field derived from the task table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_predictor

from dbmtl.inference import predict_fasta
from dbmtl.inference.stream import STAGING
from dbmtl.inference.writers import JSONL_FILE, PROTEIN_FILE, RESIDUE_FILE
from dbmtl.readers.fasta import FastaFormatError, read_fasta
from dbmtl.tasks import OUTPUT_TASKS, TASKS, output_label

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


@pytest.fixture(scope="module")
def predictor():
    return tiny_predictor(kind="encoder", conv_kernel=3)


def test_chunks_give_what_one_predict_call_gives(tmp_path, predictor):
    records = list(read_fasta(EXAMPLE))
    chunks = []
    run = predict_fasta(predictor, EXAMPLE, tmp_path, chunk_size=1, on_chunk=chunks.append)
    assert run.written == len(records) and run.resumed == 0 and chunks == [1] * len(records)
    direct = {p.id: p for p in predictor.predict(records)}
    lines = [json.loads(line) for line in (tmp_path / JSONL_FILE).read_text().splitlines()]
    assert [line["id"] for line in lines] == [r.id for r in records]
    for line in lines:
        p = direct[line["id"]]
        for name in OUTPUT_TASKS:
            field = TASKS[name].field
            assert line[field] == output_label(name, p.labels[name]) == output_label(name, getattr(p, field))
        np.testing.assert_allclose(line["ss8_probabilities"], p.probabilities["ss8"], atol=6e-5)


def test_resume_skips_finished_proteins_and_a_bad_record_keeps_the_ones_before(tmp_path, predictor):
    good = EXAMPLE.read_text()
    bad = tmp_path / "in.fasta"
    bad.write_text(good + ">broken\nMKJ\n")
    out = tmp_path / "out"
    with pytest.raises(FastaFormatError, match="broken"):
        predict_fasta(predictor, bad, out, chunk_size=2)
    n = good.count(">")
    assert not (out / JSONL_FILE).exists()
    assert len((out / STAGING / JSONL_FILE).read_text().splitlines()) == n
    bad.write_text(good + ">extra\nMKVLA\n")
    run = predict_fasta(predictor, bad, out, resume=True, chunk_size=2)
    assert (run.resumed, run.written, run.complete) == (n, 1, True)
    ids = [json.loads(line)["id"] for line in (out / JSONL_FILE).read_text().splitlines()]
    assert ids[-1] == "extra" and len(ids) == len(set(ids)) == n + 1
    proteins = (out / PROTEIN_FILE).read_text().splitlines()
    assert len(proteins) == n + 2  # header + every protein once
    assert not (out / STAGING).exists()


def test_a_task_subset_writes_only_its_columns(tmp_path, predictor):
    predict_fasta(predictor, EXAMPLE, tmp_path, tasks=("loc",))
    assert not (tmp_path / RESIDUE_FILE).exists()
    header = (tmp_path / PROTEIN_FILE).read_text().splitlines()[0].split("\t")
    assert header[:4] == ["id", "description", "length", "location"] and "membrane" not in header
    with pytest.raises(ValueError, match="unknown tasks"):
        predict_fasta(predictor, EXAMPLE, tmp_path, tasks=("lm",))
