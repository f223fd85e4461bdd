"""The reports of a finished `dbmtl predict` run (`--html`, `--plots`), drawn from its predictions.jsonl."""
from __future__ import annotations

from pathlib import Path

from dbmtl.cli import main
from dbmtl.readers.fasta import read_fasta
from dbmtl.reports import read_records

from reports.test_html import embedded_data


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"

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
