"""`dbmtl predict` keeps its promises against a second run on the same folder, an input edited after a
finished run, and a run that fails before its first protein."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from helpers import random_fasta, saved_tiny_model, second_run_during_first

from dbmtl.cli import main
from dbmtl.inference.stream import STAGING

OUTPUTS = ("residues.tsv", "proteins.tsv", "predictions.jsonl")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return saved_tiny_model(tmp_path_factory.mktemp("guards") / "model")


def fasta_of(path: Path, n: int, seed: int = 0, prefix: str = "p") -> Path:
    return random_fasta(path, n, (30, 120), random.Random(seed), name=prefix + "{i}")


def args_of(fasta, out, model, *extra) -> list[str]:
    return ["predict", str(fasta), "-o", str(out), "--model", str(model), "--quiet", "--threads", "1", *extra]


def ids(out: Path) -> list[str]:
    return [line.split("\t")[0] for line in (out / "proteins.tsv").read_text().splitlines()[1:]]


def test_a_second_run_on_the_same_folder_is_refused_and_the_first_finishes(model, tmp_path):
    first_in, second_in = fasta_of(tmp_path / "a.fasta", 100), fasta_of(tmp_path / "b.fasta", 5, seed=1, prefix="q")
    out = tmp_path / "out"
    journal = out / STAGING / "journal.json"
    second, first_code, first_err = second_run_during_first(args_of(first_in, out, model, "--chunk-size", "2"),
                                                            args_of(second_in, out, model), "predict", journal)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another dbmtl run" in lines[0] and str(out) in lines[0]
    assert first_code == 0, first_err
    assert ids(out) == [f"p{i}" for i in range(100)]  # the first run's proteins, all of them
    assert not (out / STAGING).exists()
    assert main(args_of(second_in, out, model)) == 0  # the lock went with the first run
    assert ids(out) == [f"q{i}" for i in range(5)]


def test_resume_after_a_finished_run_refuses_an_edited_and_extended_input(model, tmp_path, capsys):
    fasta = fasta_of(tmp_path / "in.fasta", 6)
    out = tmp_path / "out"
    args = args_of(fasta, out, model, "--chunk-size", "4")
    assert main(args) == 0
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    assert main(args + ["--resume"]) == 0  # the same input: nothing to do
    capsys.readouterr()
    records = fasta.read_text().splitlines()
    records[3] = "MKTAYIAKQRQISFVKSHFSRQ"  # p1 edited
    changed = "\n".join(records) + "\n>added\nMSTNPKPQRKTKRNTNRRPQDVKFPGG\n"
    for text, what in ((changed, "it has 7 proteins"), ("\n".join(records) + "\n", "some of its proteins changed"),
                       (fasta.read_text() + ">added\nMSTNPK\n", "it has 7 proteins")):
        fasta.write_text(text)
        assert main(args + ["--resume"]) == 2
        err = capsys.readouterr().err
        assert what in err and "without --resume" in err and "Traceback" not in err
        assert {name: (out / name).read_bytes() for name in OUTPUTS} == before  # no stale run passed as done
    fasta.write_text(changed)
    assert main(args) == 0
    assert ids(out) == ["p0", "p1", "p2", "p3", "p4", "p5", "added"]


def test_a_failed_run_leaves_no_folder_it_made(model, tmp_path, capsys):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">x\nMK1\n")
    for source in (tmp_path / "typo.fasta", bad):
        out = tmp_path / "new" / "deeper"
        assert main(args_of(source, out, model)) == 2
        assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"  # a folder the user made: kept, empty as it was
    mine.mkdir()
    assert main(args_of(tmp_path / "typo.fasta", mine, model)) == 2
    assert mine.is_dir() and list(mine.iterdir()) == []
    assert "Traceback" not in capsys.readouterr().err
