"""The HTML report in real headless Chromium (skipped without it, as tests/service/test_app_page.py, whose
browser and checks of the page it shares): it opens offline and shows the page's view, a summary table that
sorts, titles that expand and collapse, full-width tracks, and for each residue the probability of the
letter it shows (an SS8 letter stays inside its SS3 class and is then not always the likeliest of the eight)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# the browser fixtures (this module is skipped with them when Chromium is absent) and the page's checks
from service.test_app_page import HBB, browser, check_protein, downloads, shown, wait  # noqa: F401
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from dbmtl.inference.predictor import Predictor
from dbmtl.inference.writers import prediction_record
from dbmtl.readers.fasta import read_fasta
from dbmtl.reports import write_html_report
from dbmtl.tasks import SS8_LABELS


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


@pytest.fixture(scope="module")
def bundled():
    return Predictor.from_pretrained("default")


def test_each_ss8_cell_gives_its_own_letters_probability(bundled, browser, tmp_path):  # noqa: F811
    p = bundled.predict(list(read_fasta(EXAMPLES))[:1])[0]  # ubiquitin
    probs = np.round(p.probabilities["ss8"].astype(np.float64), 4)
    shown = probs[np.arange(len(p.ss8)), [SS8_LABELS.index(c) for c in p.ss8]]
    inside = np.flatnonzero(shown < probs.max(1))  # residues whose letter is not the likeliest of the eight
    assert len(inside)
    browser.get(write_html_report([p], tmp_path / "r.html").as_uri())
    cells = wait(browser, ".track-ss8 .cell", len(p.ss8))
    titles = [c.get_attribute("title") for c in cells]
    for k in inside:
        assert titles[k].startswith(f"{k + 1} {p.sequence[k]}: ")
        # one decimal of its own letter's probability (JavaScript rounds a tie such as 21.25 up, Python to even)
        assert abs(float(titles[k].rsplit(" ", 1)[1].rstrip("%")) - 100 * shown[k]) <= 0.05 + 1e-9, titles[k]


def test_html_report_opens_offline(bundled, browser, tmp_path):
    """The self-contained report shows the same view from a file:// URL (no server)."""
    records = list(read_fasta(EXAMPLES))
    predictions = bundled.predict(records)
    for p, r in zip(predictions, records):
        p.description = r.description
    report = write_html_report(predictions, tmp_path / "report.html")
    browser.get(report.as_uri())
    for p in predictions:
        check_protein(browser, p)
    assert records[0].description.split(maxsplit=1)[1] in browser.find_element(By.CSS_SELECTOR, "details.protein summary").text


def test_report_table_titles_expand_collapse_and_full_width_tracks(bundled, browser, tmp_path):
    """13 proteins (3 beyond the 10 drawn at once): a sortable summary table, the location in every title
    line, expand / collapse all, sequence lines as wide as the page."""
    base = [r.sequence for r in read_fasta(EXAMPLES)]
    seqs = {"HBB": HBB, **{f"p{k:02d}": base[k % 4][k: 40 + 9 * k] for k in range(12)}}
    predictions = bundled.predict(seqs)
    threshold = round(sorted(float(p.probabilities["loc"].max()) for p in predictions)[6], 4)
    for p in predictions:  # a threshold with guesses and sure answers among these proteins
        p.guess_below = {"loc": threshold}
    records = [prediction_record(p) for p in predictions]
    assert {r["location_reliable"] for r in records} == {True, False}
    browser.get(write_html_report(predictions, tmp_path / "r.html").as_uri())
    sections = wait(browser, "details.protein", 13)
    assert [s.get_attribute("open") for s in sections] == ["true"] * 10 + [None] * 3
    for sec, rec in zip(sections, records):  # every title line, drawn or not
        where = sec.find_element(By.CSS_SELECTOR, "summary .title-loc")
        assert where.get_attribute("data-label") == rec["location"]
        assert f"{100 * rec['location_confidence']:.1f}%" in where.text
        assert bool(where.find_elements(By.CSS_SELECTOR, ".guess-mark")) == (not rec["location_reliable"])

    table = browser.find_element(By.CSS_SELECTOR, "table.summary")
    assert [th.text.strip(" \u25b2\u25bc") for th in table.find_elements(By.CSS_SELECTOR, "th")] == [
        "id", "description", "length", "location", "confidence", "membrane"]

    def order():
        return [tr.get_attribute("data-id") for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    assert order() == [r["id"] for r in records]
    first = table.find_element(By.CSS_SELECTOR, "tbody tr")
    assert first.find_element(By.CSS_SELECTOR, ".col-location").text == records[0]["location"]
    assert first.find_element(By.CSS_SELECTOR, ".col-membrane").text.startswith(records[0]["membrane"])
    confidence = table.find_element(By.CSS_SELECTOR, 'th[data-key="confidence"] button')
    confidence.click()
    assert order() == [r["id"] for r in sorted(records, key=lambda r: r["location_confidence"])]
    confidence.click()
    assert order() == [r["id"] for r in sorted(records, key=lambda r: -r["location_confidence"])]
    table.find_element(By.CSS_SELECTOR, 'th[data-key="length"] button').click()
    assert order() == [r["id"] for r in sorted(records, key=lambda r: r["length"])]
    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        rec = records[[r["id"] for r in records].index(tr.get_attribute("data-id"))]
        assert bool(tr.find_elements(By.CSS_SELECTOR, ".col-confidence .guess-mark")) == (not rec["location_reliable"])

    table.find_element(By.CSS_SELECTOR, 'tr[data-id="p11"] .col-id a').click()  # jumps to a closed protein
    WebDriverWait(browser, 10).until(lambda d: sections[-1].get_attribute("open") == "true")
    assert sections[-1].find_elements(By.CSS_SELECTOR, ".sequence-view")
    browser.find_element(By.CSS_SELECTOR, 'button.toggle-all[data-action="collapse"]').click()
    assert [s.get_attribute("open") for s in sections] == [None] * 13
    browser.find_element(By.CSS_SELECTOR, 'button.toggle-all[data-action="expand"]').click()
    assert [s.get_attribute("open") for s in sections] == ["true"] * 13
    assert all(s.find_elements(By.CSS_SELECTOR, ".sequence-view") for s in sections)

    hbb = sections[0]  # 147 residues: its first line is full
    line = hbb.find_element(By.CSS_SELECTOR, ".row.residues")
    assert line.size["width"] > 0.75 * hbb.size["width"]
    assert shown(hbb, "ss8") == predictions[0].labels["ss8"]
