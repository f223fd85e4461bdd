"""The page of `dbmtl serve` in real headless Chromium (selenium, the system chromedriver; nothing
downloaded). Skipped with a message when Chromium is absent (scripts/setup_browser.sh installs it); the
HTML report, the same view from a file, is tested with this browser in tests/reports/test_html_browser.py."""
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
    record = prediction_record(expected)
    for css, field in ((".location", "location_reliable"), (".membrane", "membrane_reliable"), ("summary .title-loc",
                                                                                                 "location_reliable")):
        marks = protein.find_elements(By.CSS_SELECTOR, f"{css} .guess-mark")  # "guess" under the model's threshold
        assert bool(marks) == (record[field] is False), (expected.id, css)


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
    assert [r["location_reliable"] for r in rows] == [
        {True: "yes", False: "no"}[prediction_record(p)["location_reliable"]] for p in predictions]
    cli = downloads / "cli"
    cli.mkdir(exist_ok=True)
    with PredictionWriter(cli, OUTPUT_TASKS):  # the header `dbmtl predict` writes
        pass
    assert open(path).readline() == open(cli / "proteins.tsv").readline()  # the page's file has the CLI's columns


def test_bad_input_after_a_good_run_replaces_the_results_with_a_sentence(server, browser):
    browser.get(server[1] + "/")
    box = browser.find_element(By.ID, "fasta")
    box.send_keys(">HBB\n" + HBB + "\n")
    browser.find_element(By.ID, "submit").click()
    wait(browser, 'details.protein[data-id="HBB"]')
    box.clear()
    box.send_keys(">x\nMKJ\n")
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 30).until(lambda d: error.is_displayed())
    assert not browser.find_elements(By.CSS_SELECTOR, "#results > *")  # the old results are gone
    text = error.text
    assert "invalid character 'J' at position 3" in text and "record 'x'" in text.lower()
    assert "<request>" not in text and not text.startswith("422") and text[0].isupper() and text.endswith(".")
    assert error.get_attribute("data-status") == "422"


def test_dna_is_refused_unless_the_user_insists(server, browser):
    dna = "ATGGTGCATCTGACTCCTGAGGAGAAGTCTGCCGTTACTGCCCTGTGGGGCAAGGTGAACGTG"  # HBB's first codons
    browser.get(server[1] + "/")
    browser.find_element(By.ID, "fasta").send_keys(">gene\n" + dna + "\n")
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 30).until(lambda d: error.is_displayed())
    assert "nucleotide" in error.text and error.get_attribute("data-status") == "422"
    browser.find_element(By.ID, "allow-nucleotides").click()
    browser.find_element(By.ID, "submit").click()
    wait(browser, 'details.protein[data-id="gene"]')
    assert not error.is_displayed()
