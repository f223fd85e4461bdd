"""The HTML report and the per-protein plots hold what they claim; `dbmtl predict --html --plots`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dbmtl.cli import main
from dbmtl.readers.fasta import read_fasta
from dbmtl.reports import prediction_record, read_records, write_html_report
from dbmtl.inference.writers import safe_name
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


def test_plots_open_and_are_named_by_id(predictions, tmp_path):
    import matplotlib.image as mpimg

    from dbmtl.reports.plots import _title, write_plots

    records = [prediction_record(p) for p in predictions]
    records[0] = dict(records[0], id="sp/P1|odd")
    paths = write_plots(records, tmp_path)
    assert [p.name for p in paths] == [f"{safe_name(r['id'])}.png" for r in records]
    assert paths[0].name == "sp%2FP1|odd.png"
    for path in paths:
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 800
    assert "human ubiquitin" in _title(records[0]) and "(76 residues)" in _title(records[0])


def test_safe_names_are_distinct():
    ids = ["a/b", "a%2Fb", "a_b", ".", "..", ".x"]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids) and all("/" not in n and n not in (".", "..") for n in names)


def test_predict_html_and_plots_from_the_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(EXAMPLES), "-o", str(out), "--quiet", "--html", str(tmp_path / "r.html"),
                 "--html-limit", "3", "--plots", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out
    assert "first 3 of 4 proteins" in printed
    data = embedded_data((tmp_path / "r.html").read_text())
    records = list(read_fasta(EXAMPLES))
    assert [p["id"] for p in data["proteins"]] == [r.id for r in records[:3]]
    assert [p["description"] for p in data["proteins"]] == [r.description for r in records[:3]]
    assert "first 3 of 4" in data["note"]
    jsonl, total = read_records(out / "predictions.jsonl")
    assert total == 4 and data["proteins"][0]["ss3"] == jsonl[0]["ss3"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f"{r.id}.png" for r in records)


def test_plot_titles_mark_an_answer_under_the_guess_threshold(predictions, tmp_path, monkeypatch):
    import matplotlib.axes

    from dbmtl.reports.plots import plot_protein

    titles, set_title = [], matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **kw: titles.append(text) or set_title(self, text, *a, **kw))
    record = prediction_record(predictions[0])
    plot_protein(dict(record, location_reliable=False, membrane_reliable=True), tmp_path / "a.png")
    assert [t for t in titles if "a guess" in t] == [
        "Subcellular location (eukaryotic classes): a guess (under the model's threshold)"]
    titles.clear()
    plot_protein(dict(record, location_reliable=None, membrane_reliable=False), tmp_path / "b.png")
    assert [t for t in titles if "a guess" in t] and all(not t.startswith("Subcellular") for t in titles if "a guess" in t)
