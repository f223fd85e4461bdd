"""The HTML report holds what it claims: one offline file with the predictions, whatever the data holds."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dbmtl.readers.fasta import read_fasta
from dbmtl.reports import write_html_report
from dbmtl.tasks import OUTPUT_TASKS, TASKS, output_label
from helpers import tiny_predictor


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


@pytest.fixture(scope="module")
def predictions():
    predictor = tiny_predictor(kind="encoder")
    records = list(read_fasta(EXAMPLES))
    preds = predictor.predict(records)
    for p, r in zip(preds, records):
        p.description = r.description
    return preds


def embedded_data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="dbmtl-data">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


def test_report_is_one_offline_file_with_the_predictions(predictions, tmp_path):
    path = write_html_report(predictions, tmp_path / "sub" / "r.html", title="a <b> test", note="capped")
    html = path.read_text()
    assert "http://" not in html and "https://" not in html and " src=" not in html and "<link" not in html
    assert "a &lt;b&gt; test" in html
    data = embedded_data(html)
    assert data["note"] == "capped" and set(data["tasks"]) == set(OUTPUT_TASKS)
    for got, p in zip(data["proteins"], predictions):
        assert got["id"] == p.id and got["description"] == p.description
        for name in OUTPUT_TASKS:
            assert got[TASKS[name].field] == output_label(name, p.labels[name])
        np.testing.assert_allclose(got["ss8_probabilities"], p.probabilities["ss8"], atol=6e-5)


def test_script_end_in_data_cannot_break_the_page(tmp_path):
    record = {"id": "x", "description": "</script><script>alert(1)</script>", "length": 1, "sequence": "M"}
    html = write_html_report([record], tmp_path / "r.html").read_text()
    assert "alert(1)</script>" not in html
    assert embedded_data(html)["proteins"][0]["description"] == record["description"]
