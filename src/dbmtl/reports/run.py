"""Reports of a finished `dbmtl predict` run, drawn from its predictions.jsonl (not from the streaming
loop), so they never change what or how the run writes."""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from .records import read_records

JSONL = "predictions.jsonl"


def _capped(out_dir: Path, limit: int) -> tuple[list[dict], str | None]:
    records, total = read_records(out_dir / JSONL, limit)
    note = f"Showing the first {len(records)} of {total} proteins (raise the limit to see more)." if total > len(records) else None
    return records, note


def render_run_reports(out_dir: str | Path, html: str | Path | None = None, html_limit: int = 1000,
                       plots: str | Path | None = None, plots_limit: int = 100) -> list[str]:
    """Write the HTML report and/or the per-protein plots of a run; returns one line per output."""
    out_dir = Path(out_dir)
    lines = []
    if html:
        from .html import write_html_report

        records, note = _capped(out_dir, html_limit)
        path = write_html_report(records, html, note=note)
        lines.append(f"HTML report: {path} ({len(records)} proteins{'; ' + note if note else ''})")
    if plots:
        from .plots import write_plots

        if find_spec("matplotlib") is None:
            return lines + ["plots skipped: matplotlib is not installed (pip install 'dbmtl[plots]')"]
        records, note = _capped(out_dir, plots_limit)
        paths = write_plots(records, plots)
        lines.append(f"plots: {len(paths)} files in {plots}{' (' + note + ')' if note else ''}")
    return lines
