"""Pictures of predictions: the JSON form shared with the web service, a self-contained HTML report and
per-protein matplotlib figures; `render_run_reports` draws them from a finished `dbmtl predict` run."""
from .html import write_html_report
from ..inference.writers import prediction_record
from .records import read_records, task_table

__all__ = ["write_html_report", "prediction_record", "read_records", "task_table"]
