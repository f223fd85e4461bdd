"""The per-protein plots: they open, are named by id whatever the id, and mark an answer under the
model's guess threshold."""
from __future__ import annotations

import pytest

from dbmtl.inference.writers import NAME_BYTES, safe_name
from dbmtl.reports import prediction_record

from reports.test_html import predictions  # noqa: F401  (the fixture: a tiny model's predictions of the examples)


@pytest.mark.filterwarnings("ignore:Glyph")  # the title font lacks CJK; the file name is tested
def test_plots_of_long_and_non_latin_ids_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from dbmtl.reports.plots import write_plots

    record = {"id": "", "description": "", "length": 3, "sequence": "MKV", "ss3": "HHC",
              "ss3_probabilities": [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]}
    records = [dict(record, id=i) for i in ("A" * 300, "蛋白質" * 30, "A" * 299 + "B")]
    paths = write_plots(records, tmp_path)
    assert len({p.name for p in paths}) == 3 and all(p.exists() and len(p.name.encode()) <= NAME_BYTES + 4 for p in paths)


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
