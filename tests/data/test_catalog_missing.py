"""`dbmtl train` on a data folder that lacks training files stops at once with their names, instead of a
traceback from the first reader or a smaller training set than the one asked for."""
import shutil

import pytest

from dbmtl.cli import main
from dbmtl.data.catalog import TEST_SET_FILES, TRAINING_FILES, load_training_data

from helpers import need


def test_training_on_a_folder_without_the_training_files_names_them(tmp_path, data_dir, capsys):
    """Only the test sets copied: `dbmtl train` stops before building anything and lists what is missing."""
    for rel in TEST_SET_FILES.values():
        if (data_dir / rel).exists():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(data_dir / rel, tmp_path / rel)
    (tmp_path / "cfg.json").write_text('{"model": {"preset": "tiny"}, "localization_sources": "subsets", "threads": 1}')
    argv = ["train", "--config", str(tmp_path / "cfg.json"), "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"dbmtl train: error: the data folder {tmp_path} lacks the training files" in err
    assert "secondary_structure/flip/sequences.fasta" in err and "localization/deeploc_train_subset/deeploc_train.csv" in err
    assert not (tmp_path / "run").exists()


def test_training_without_test_sets_is_an_error(tmp_path, data_dir):
    """Without the test sets the leakage guard would filter nothing: the training set could hold them."""
    for rel in TRAINING_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(need(data_dir, rel))
    with pytest.raises(FileNotFoundError, match=f"no test sets in the data folder {tmp_path}: looked for "):
        load_training_data(tmp_path)
