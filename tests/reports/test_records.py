"""The one JSON form of predictions the front ends share: predictions.jsonl read back (capped, a torn last
line from an interrupted run not counted), and the task table a viewer needs to draw any record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbmtl.inference import predict_fasta
from dbmtl.reports import read_records, task_table
from dbmtl.tasks import OUTPUT_TASKS, TASKS

from helpers import tiny_predictor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory):
    """predictions.jsonl of a tiny model's run over the example proteins."""
    out = tmp_path_factory.mktemp("run")
    predict_fasta(tiny_predictor(kind="encoder"), EXAMPLES, out)
    return out / "predictions.jsonl"


def test_read_records_caps_the_records_and_counts_them_all(jsonl):
    lines = jsonl.read_text().splitlines()
    records, total = read_records(jsonl)
    assert total == len(lines) == EXAMPLES.read_text().count(">") and records == [json.loads(x) for x in lines]
    first, total = read_records(jsonl, limit=2)
    assert first == records[:2] and total == len(lines)


def test_a_torn_last_line_is_not_a_record(jsonl, tmp_path):
    torn = tmp_path / "predictions.jsonl"
    text = jsonl.read_text()
    torn.write_text(text[: len(text) - 40])  # killed mid-way through the last protein's line
    records, total = read_records(torn)
    assert total == len(records) == text.count("\n") - 1


def test_the_task_table_names_every_label_a_record_holds(jsonl):
    table = task_table()
    assert list(table) == list(OUTPUT_TASKS)
    for record in read_records(jsonl)[0]:
        for name, meta in table.items():
            task = TASKS[name]
            assert meta["field"] == task.field and meta["kind"] == task.kind
            assert len(meta["labels"]) == len(meta["names"]) == len(meta["colors"]) == len(task.labels)
            if task.kind == "protein":  # the answer and every class's probability, by a label of the table
                assert record[task.field] in meta["labels"] and list(record[f"{name}_probabilities"]) == meta["labels"]
            else:  # one letter per residue, each a label of the table
                assert set(record[task.field]) <= set(meta["labels"]) and record[f"{name}_states"] == meta["labels"]
    assert table["ms"]["names"] == ["Membrane-bound", "Soluble"]
    assert len(set(table["ss8"]["colors"])) == 8  # each SS8 state its own colour
    assert list(task_table(["loc"])) == ["loc"]
