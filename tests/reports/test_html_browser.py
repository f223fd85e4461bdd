"""The page and report show, for each residue, the probability of the letter they show: an SS8 letter
stays inside its SS3 class and is then not always the likeliest of the eight (real headless Chromium;
skipped without it, as tests/service/test_app_page.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from selenium.webdriver.common.by import By

from service.test_app_page import browser, downloads, wait  # noqa: F401  (fixtures; skips without Chromium)

from dbmtl.inference.predictor import Predictor
from dbmtl.readers.fasta import read_fasta
from dbmtl.reports import write_html_report
from dbmtl.tasks import SS8_LABELS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


def test_each_ss8_cell_gives_its_own_letters_probability(browser, tmp_path):  # noqa: F811
    p = Predictor.from_pretrained("default").predict(list(read_fasta(EXAMPLE))[:1])[0]  # ubiquitin
    probs = np.round(p.probabilities["ss8"].astype(np.float64), 4)
    shown = probs[np.arange(len(p.ss8)), [SS8_LABELS.index(c) for c in p.ss8]]
    inside = np.flatnonzero(shown < probs.max(1))  # residues whose letter is not the likeliest of the eight
    assert len(inside)
    browser.get(write_html_report([p], tmp_path / "r.html").as_uri())
    cells = wait(browser, ".track-ss8 .cell", len(p.ss8))
    titles = [c.get_attribute("title") for c in cells]
    for k in inside:
        assert titles[k].startswith(f"{k + 1} {p.sequence[k]}: ")
        assert titles[k].endswith(f" {100 * shown[k]:.1f}%"), titles[k]
