"""`write_html_report`: predictions as one self-contained HTML file (inline CSS, JS and data; no network),
the same view as the web page of `dbmtl serve`."""
from __future__ import annotations

import json
import re
from html import escape
from importlib import resources
from pathlib import Path
from typing import Sequence

from ..tasks import OUTPUT_TASKS
from ..inference.writers import prediction_record
from .records import task_table

ASSETS = resources.files(__package__) / "assets"


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def as_records(predictions: Sequence) -> list[dict]:
    """ProteinPredictions or records (dicts of predictions.jsonl) -> records."""
    return [p if isinstance(p, dict) else prediction_record(p) for p in predictions]


def result_document(records: list[dict], note: str | None = None) -> dict:
    """What the viewer renders: the tasks present, their labels and names, the proteins, a note."""
    tasks = [t for t in OUTPUT_TASKS if any(f"{t}_probabilities" in r for r in records)]
    return {"tasks": task_table(tasks), "proteins": records, "note": note}


def write_html_report(predictions: Sequence, path: str | Path, title: str = "dbmtl predictions",
                      note: str | None = None) -> Path:
    """Write the viewer with the predictions inlined. `predictions`: ProteinPredictions or records."""
    from .. import __version__

    data = json.dumps(result_document(as_records(predictions), note), separators=(",", ":"))
    data = data.replace("<", "\\u003c")  # no "</script>" can end the data block early
    fields = {"title": escape(title), "version": __version__, "css": asset("viewer.css"),
              "js": asset("viewer.js"), "data": data}
    html = re.sub(r"\{\{(\w+)\}\}", lambda m: fields[m.group(1)], asset("report.html"))  # one pass
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
