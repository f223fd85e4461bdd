"""The page of `dbmtl serve` and the HTML report in real headless Chromium (selenium, the system
chromedriver; nothing downloaded). Skipped with a message when Chromium is absent
(scripts/setup_browser.sh installs it)."""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

from dbmtl.inference.writers import PredictionWriter, prediction_record
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import OUTPUT_TASKS, TASKS, output_label

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HBB = "MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'dbmtl[test]')")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(f"headless browser tests need {CHROMIUM} and {CHROMEDRIVER}: run scripts/setup_browser.sh",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


def wait(driver, css: str, count: int = 1, seconds: float = 60):
    WebDriverWait(driver, seconds).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= count)
    return driver.find_elements(By.CSS_SELECTOR, css)


def shown(protein, task: str) -> str:
    """A per-residue track as the page shows it: the letters of its coloured cells, block after block."""
    return "".join(row.get_attribute("textContent") for row in protein.find_elements(By.CSS_SELECTOR, f".track-{task}"))


def check_protein(driver, expected) -> None:
    """The page's tracks, location bars and membrane line say what Predictor.predict says."""
    protein = wait(driver, f'details.protein[data-id="{expected.id}"]')[0]
    for task in ("ss3", "ss8"):
        assert shown(protein, task) == expected.labels[task]
    loc = TASKS["loc"]
    rows = protein.find_elements(By.CSS_SELECTOR, ".bars-loc .bar-row")
    names = [output_label("loc", label) for label in loc.labels]
    # as the page gets them: rounded to 4 decimals in the JSON; ties keep the class order (a stable sort)
    probs = prediction_record(expected)["loc_probabilities"]
    assert [r.get_attribute("data-label") for r in rows] == sorted(names, key=lambda lab: -probs[lab])
    top = protein.find_element(By.CSS_SELECTOR, ".bars-loc .bar-row.top")
    assert top.get_attribute("data-label") == output_label("loc", expected.labels["loc"])
    assert top.find_element(By.CSS_SELECTOR, ".bar-value").text == f"{100 * probs[top.get_attribute('data-label')]:.1f}%"
    membrane = protein.find_element(By.CSS_SELECTOR, ".membrane")
    assert membrane.get_attribute("data-label") == output_label("ms", expected.labels["ms"])
    word = {"M": "Membrane-bound", "S": "Soluble"}[expected.labels["ms"]]
    assert membrane.text.startswith(word) and "confidence" in membrane.text


def test_paste_predict_upload_download(server, bundled, browser, downloads):
    _, url = server
    browser.get(url + "/")
    assert "eukaryotic" in browser.find_element(By.TAG_NAME, "header").text
    browser.find_element(By.ID, "fasta").send_keys(">HBB human haemoglobin beta\n" + HBB + "\n")
    browser.find_element(By.ID, "submit").click()
    expected = bundled.predict({"HBB": HBB})[0]
    check_protein(browser, expected)
    assert "human haemoglobin beta" in browser.find_element(By.CSS_SELECTOR, "details.protein summary").text
    assert "eukaryotic" in browser.find_element(By.CSS_SELECTOR, ".results-head").text
    time.sleep(0.3)
    target = os.environ.get("DBMTL_PAGE_SCREENSHOT")  # docs/images/page.png is made this way
    assert browser.save_screenshot(target or str(downloads / "page.png"))

    browser.find_element(By.ID, "file").send_keys(str(EXAMPLES))  # upload: the file fills the text box
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "fasta").get_attribute("value").startswith(">P0CG48"))
    browser.find_element(By.ID, "submit").click()
    records = list(read_fasta(EXAMPLES))
    wait(browser, f'details.protein[data-id="{records[-1].id}"]')
    predictions = bundled.predict(records)
    for p in predictions:
        check_protein(browser, p)

    browser.find_element(By.CSS_SELECTOR, 'button[data-file="residues.tsv"]').click()
    path = downloads / "residues.tsv"
    WebDriverWait(browser, 20).until(lambda d: path.exists() and path.stat().st_size > 0)
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == sum(len(r.sequence) for r in records)
    for p in predictions:
        mine = [r for r in rows if r["id"] == p.id]
        assert "".join(r["residue"] for r in mine) == p.sequence
        assert "".join(r["ss8"] for r in mine) == p.labels["ss8"]
        assert abs(float(mine[0]["p_ss3_H"]) - p.probabilities["ss3"][0, 0]) < 1e-4
    browser.find_element(By.CSS_SELECTOR, 'button[data-file="proteins.tsv"]').click()
    path = downloads / "proteins.tsv"
    WebDriverWait(browser, 20).until(lambda d: path.exists() and path.stat().st_size > 0)
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["id"], r["description"], r["location"], r["membrane"]) for r in rows] == [
        (p.id, rec.description, output_label("loc", p.labels["loc"]), output_label("ms", p.labels["ms"]))
        for p, rec in zip(predictions, records)]
    assert [float(r["location_confidence"]) for r in rows] == pytest.approx(
        [float(p.probabilities["loc"].max()) for p in predictions], abs=1e-4)
    cli = downloads / "cli"
    cli.mkdir(exist_ok=True)
    with PredictionWriter(cli, OUTPUT_TASKS):  # the header `dbmtl predict` writes
        pass
    assert open(path).readline() == open(cli / "proteins.tsv").readline()  # the page's file has the CLI's columns


def test_bad_input_shows_the_message(server, browser):
    browser.get(server[1] + "/")
    browser.find_element(By.ID, "fasta").send_keys(">x\nMKJ\n")
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 30).until(lambda d: error.is_displayed())
    assert "422" in error.text and "invalid character 'J' at position 3" in error.text


def test_html_report_opens_offline(bundled, browser, tmp_path):
    """The self-contained report shows the same view from a file:// URL (no server)."""
    from dbmtl.reports import write_html_report

    records = list(read_fasta(EXAMPLES))
    predictions = bundled.predict(records)
    for p, r in zip(predictions, records):
        p.description = r.description
    report = write_html_report(predictions, tmp_path / "report.html")
    browser.get(report.as_uri())
    for p in predictions:
        check_protein(browser, p)
    assert records[0].description.split(maxsplit=1)[1] in browser.find_element(By.CSS_SELECTOR, "details.protein summary").text
