"""`dbmtl embed` is transactional as `dbmtl predict` is: a failed or killed run leaves an earlier file at
-o as it was, a file that is not ours is refused, --resume continues a killed run, one run at a time."""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import kill_after_first_write, random_fasta, saved_tiny_model, second_run_during_first

from dbmtl.cli import main
from dbmtl.inference.embed import staging_file

h5py = pytest.importorskip("h5py", reason="the embed extra (h5py) is not installed")
KILLS = int(os.environ.get("DBMTL_FAULT_TRIALS", "4"))  # more for a campaign (docs/reliability.md)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model, a 120-protein input, an earlier embeddings file of another input."""
    root = tmp_path_factory.mktemp("embed")
    model = saved_tiny_model(root / "model")
    fasta = random_fasta(root / "in.fasta", 120, (40, 200), random.Random(0))
    earlier = root / "earlier.h5"
    other = root / "other.fasta"
    other.write_text(">old1\nMKTAYIAKQR\n>old2\nMSTNPK\n")
    assert main(embed_args(other, earlier, model)) == 0
    return model, fasta, earlier


def embed_args(fasta, out, model, *extra) -> list[str]:
    return ["embed", str(fasta), "-o", str(out), "--model", str(model), "--quiet", "--threads", "1", *extra]


def contents(path: Path) -> dict:
    with h5py.File(path) as h5:
        return {f"{g}/{k}": h5[g][k][()] for g in ("per_residue", "per_protein") if g in h5 for k in h5[g]}


def test_a_failed_run_leaves_the_earlier_file_as_it_was(setup, tmp_path, capsys):
    model, fasta, earlier = setup
    out = tmp_path / "e.h5"
    out.write_bytes(earlier.read_bytes())
    before = out.read_bytes()
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok\nMKVLA\n>x\nMK1\n")
    for source in (tmp_path / "typo.fasta", bad):
        assert main(embed_args(source, out, model)) == 2
        assert out.read_bytes() == before
        assert "Traceback" not in capsys.readouterr().err
    assert not staging_file(out).exists()  # nothing embedded, nothing kept
    assert sorted(os.listdir(tmp_path)) == ["bad.fasta", "e.h5"]
    assert main(embed_args(tmp_path / "typo.fasta", tmp_path / "new" / "deeper" / "e.h5", model)) == 2
    assert sorted(os.listdir(tmp_path)) == ["bad.fasta", "e.h5"]  # no folder left that the run made


def test_a_file_that_is_not_ours_is_refused_and_ours_is_replaced_with_a_word(setup, tmp_path, capsys):
    model, fasta, earlier = setup
    small = tmp_path / "small.fasta"
    small.write_text(">a\nMKVLA\n")
    for name, data in (("notes.h5", b"my notes\n"), ("empty.h5", b"")):
        out = tmp_path / name
        out.write_bytes(data)
        assert main(embed_args(small, out, model)) == 2
        err = capsys.readouterr().err
        assert "not an embeddings file of dbmtl embed" in err and len(err.strip().splitlines()) == 1
        assert out.read_bytes() == data
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.arange(3)
    before = foreign.read_bytes()
    assert main(embed_args(small, foreign, model)) == 2 and foreign.read_bytes() == before
    ours = tmp_path / "ours.h5"
    ours.write_bytes(earlier.read_bytes())
    assert main(embed_args(small, ours, model)) == 0
    assert "will be replaced" in capsys.readouterr().err
    assert sorted(contents(ours)) == ["per_protein/a", "per_residue/a"]


def test_killed_mid_run_keeps_the_earlier_file_and_resumes(setup, tmp_path):
    model, fasta, earlier = setup
    whole = tmp_path / "whole.h5"
    assert main(embed_args(fasta, whole, model, "--chunk-size", "4")) == 0
    expected = contents(whole)
    out = tmp_path / "e.h5"
    out.write_bytes(earlier.read_bytes())
    before = out.read_bytes()
    rng = random.Random(3)
    killed = 0
    for attempt in range(KILLS):
        staged = staging_file(out)
        extra = ["--chunk-size", "4", *(["--resume"] if staged.exists() else [])]
        # this run's first write to the staging file, then a random instant
        code, _, err = kill_after_first_write(embed_args(fasta, out, model, *extra), staged, rng, jitter_s=0.3, wait_s=120)
        assert "Traceback" not in err
        if code == 0:
            break
        killed += 1
        if out.read_bytes() != before:  # killed after its atomic replace: only the whole new result may be there
            assert not staged.exists() and sorted(contents(out)) == sorted(expected)
            break
        assert staged.exists()  # killed before it: the earlier file, byte for byte, and the staging copy
    assert killed >= 1
    assert main(embed_args(fasta, out, model, "--chunk-size", "4", "--resume")) == 0
    got = contents(out)
    # the killed runs' staging started empty (no --resume at first): the result is this input's proteins
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-5)
    assert not staging_file(out).exists()


def test_resume_recomputes_only_what_a_damaged_staging_file_lost(setup, tmp_path, capsys):
    model, fasta, _ = setup
    whole = tmp_path / "whole.h5"
    assert main(embed_args(fasta, whole, model)) == 0
    expected = contents(whole)
    out = tmp_path / "e.h5"
    staged = staging_file(out)
    shutil.copyfile(whole, staged)  # an interrupted run that had embedded everything...
    with h5py.File(staged, "r") as h5:
        headers = [h5py.h5o.get_info(h5["per_residue"][name].id).addr for name in sorted(h5["per_residue"])[:3]]
    with open(staged, "r+b") as f:  # ...and whose kill tore three proteins' entries
        for address in headers:
            f.seek(address)
            f.write(b"\xff" * 32)
    assert main(embed_args(fasta, out, model, "--resume")) == 0
    err = capsys.readouterr().err
    assert "was damaged by the kill: 237 embeddings that read back in full are kept, 3 unreadable" in err
    got = contents(out)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-5)
    assert not staged.exists() and "Traceback" not in err


def test_resume_from_an_unreadable_staging_file_starts_again_and_keeps_the_earlier_proteins(setup, tmp_path, capsys):
    model, fasta, earlier = setup
    out = tmp_path / "e.h5"
    out.write_bytes(earlier.read_bytes())
    staging_file(out).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))  # cut short in its first write
    assert main(embed_args(fasta, out, model, "--resume")) == 0
    err = capsys.readouterr().err
    assert "cannot be read" in err and "starting again" in err and "Traceback" not in err
    names = {k.split("/")[1] for k in contents(out)}
    assert {"old1", "old2"} <= names and len(names) == 122  # out's proteins kept, as --resume promises


def test_resume_keeps_the_proteins_of_the_file_and_checks_the_task_row(setup, tmp_path, capsys):
    model, fasta, earlier = setup
    out = tmp_path / "e.h5"
    out.write_bytes(earlier.read_bytes())
    small = tmp_path / "small.fasta"
    small.write_text(">a\nMKVLA\n")
    assert main(embed_args(small, out, model, "--task", "ss3", "--resume")) == 2
    assert "another task row ('ss8', now 'ss3')" in capsys.readouterr().err
    assert main(embed_args(small, out, model, "--resume")) == 0
    assert sorted(k.split("/")[1] for k in contents(out)) == ["a", "a", "old1", "old1", "old2", "old2"]


def test_a_second_run_on_the_same_file_is_refused(setup, tmp_path):
    model, fasta, earlier = setup
    out = tmp_path / "e.h5"
    second, first_code, first_err = second_run_during_first(embed_args(fasta, out, model, "--chunk-size", "2"),
                                                            embed_args(fasta, out, model), "embed", staging_file(out))
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another dbmtl run" in lines[0]
    assert first_code == 0, first_err
    assert len(contents(out)) == 2 * 120
