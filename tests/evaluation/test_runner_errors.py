"""`evaluate` refuses what would give a misleading report: a --limit below 1 (0 meant "everything", -1
"all but one"), a data folder without test sets (an empty report and exit status 0), an empty set file."""
import pytest

from dbmtl.cli import main
from dbmtl.data.catalog import TEST_SET_FILES
from dbmtl.evaluation.runner import evaluate

from helpers import need, tiny_predictor


@pytest.mark.parametrize("limit", [0, -1, -100])
def test_a_limit_below_one_is_an_error(data_dir, limit):
    with pytest.raises(ValueError, match=f"--limit must be at least 1, not {limit}"):
        evaluate(tiny_predictor(), data_dir, limit=limit, log=lambda m: None)


def test_a_limit_of_one_scores_one_protein_per_set(data_dir):
    need(data_dir, TEST_SET_FILES["TS115"])
    results = evaluate(tiny_predictor(), data_dir, limit=1, audit=False, sets=["TS115"], log=lambda m: None)
    assert results["sets"]["TS115"]["n_proteins"] == 1


def test_a_folder_without_test_sets_is_an_error_naming_it_and_the_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        evaluate(tiny_predictor(), tmp_path, log=lambda m: None)
    message = str(err.value)
    assert f"no test sets in the data folder {tmp_path}" in message
    assert all(rel in message for rel in TEST_SET_FILES.values())


def test_a_test_set_file_without_proteins_is_an_error_naming_it(tmp_path, data_dir):
    header = need(data_dir, TEST_SET_FILES["TS115"]).read_text().splitlines()[0]
    path = tmp_path / TEST_SET_FILES["TS115"]
    path.parent.mkdir(parents=True)
    path.write_text(header + "\n")
    with pytest.raises(ValueError, match=f"test set TS115: {path} holds no proteins"):
        evaluate(tiny_predictor(), tmp_path, log=lambda m: None)


def test_the_command_reports_these_errors_with_exit_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # the option parser refuses it, with argparse's usage line
        main(["evaluate", "--limit", "0", "--data-dir", str(tmp_path), "-o", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "argument --limit: must be at least 1, not 0" in capsys.readouterr().err
    assert main(["evaluate", "--data-dir", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert f"no test sets in the data folder {tmp_path}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

