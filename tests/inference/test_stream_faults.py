"""Fault injection against `dbmtl predict`: killed at random byte offsets of its writes and at random
times, and a file-size limit standing in for a full disk. Each time the output folder keeps what it had,
and `--resume` ends with exactly the files of one uninterrupted run."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import KILL_AT_BYTE, child, cli_env, kill_after_first_write, random_fasta, saved_tiny_model

from dbmtl.cli import main
from dbmtl.inference.stream import STAGING

OUTPUTS = ("residues.tsv", "proteins.tsv", "predictions.jsonl")
TRIALS = int(os.environ.get("DBMTL_FAULT_TRIALS", "4"))  # more for a campaign (docs/reliability.md)

# A file-size limit: writes past it fail with EFBIG, as writes to a full disk fail with ENOSPC.
SIZE_LIMIT = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from dbmtl.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model, a 40-protein input and the files of one uninterrupted run."""
    root = tmp_path_factory.mktemp("faults")
    model = saved_tiny_model(root / "model")
    fasta = random_fasta(root / "in.fasta", 40, (20, 90), random.Random(0), name="p{i} protein {i}")
    whole = root / "whole"
    assert main(predict_args(fasta, whole, model)) == 0
    return model, fasta, {name: (whole / name).read_bytes() for name in OUTPUTS}


def predict_args(fasta, out, model, *extra):
    return ["predict", str(fasta), "-o", str(out), "--model", str(model), "--quiet", "--chunk-size", "7",
            "--threads", "1", *extra]


def snapshot(out: Path) -> dict:
    return {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} if out.exists() else {}


def finished(out: Path, expected: dict) -> bool:
    return all((out / name).exists() and (out / name).read_bytes() == data for name, data in expected.items())


def publishing(out: Path) -> bool:
    journal = out / STAGING / "journal.json"
    return journal.exists() and '"publishing"' in journal.read_text()


def previous_run(tmp_path, model) -> Path:
    """An output folder holding another input's finished predictions."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    other = tmp_path / "other.fasta"
    other.write_text(">old1\nMKTAYIAKQR\n>old2\nMSTNPK\n")
    assert main(predict_args(other, out, model)) == 0
    return out


def test_killed_at_random_byte_offsets_then_resumed(setup, tmp_path):
    model, fasta, expected = setup
    total = sum(map(len, expected.values()))
    rng = random.Random(1)
    kills = 0
    for trial in range(TRIALS):
        out = previous_run(tmp_path / f"t{trial}", model)
        before = snapshot(out)
        first = child(KILL_AT_BYTE, rng.randrange(total), *predict_args(fasta, out, model))
        assert first.returncode == 137, first.stderr
        kills += 1
        assert snapshot(out) == before  # the old results are untouched
        # killed again while resuming, then resumed to the end
        second = child(KILL_AT_BYTE, rng.randrange(total // 2), *predict_args(fasta, out, model, "--resume"))
        if second.returncode == 137:
            kills += 1
            assert snapshot(out) == before
        else:
            assert second.returncode == 0, second.stderr
        if second.returncode != 0:
            assert main(predict_args(fasta, out, model, "--resume")) == 0
        assert {name: (out / name).read_bytes() for name in OUTPUTS} == expected
        assert not (out / STAGING).exists()
    assert kills >= TRIALS


@pytest.mark.parametrize("seed", range(2, 2 + max(1, TRIALS - 1)))
def test_killed_at_random_times_then_resumed(setup, tmp_path, seed):
    model, fasta, expected = setup
    rng = random.Random(seed)
    out = previous_run(tmp_path, model)
    before = snapshot(out)
    journal = out / STAGING / "journal.json"
    mid_run = 0
    for _ in range(3):
        args = predict_args(fasta, out, model, *(["--resume"] if journal.exists() else []))
        # this run's first journal write, then a random instant: the rest of the run takes a few tenths of a second
        code, running, err = kill_after_first_write(args, journal, rng, jitter_s=0.1, wait_s=60)
        assert "Traceback" not in err
        if code == 0 or finished(out, expected):  # the kill came after the last write
            break
        mid_run += running and journal.exists()
        if not publishing(out):  # a kill while the finished files replace the old ones: resume completes it
            assert snapshot(out) == before
    resume = ["--resume"] if (out / STAGING / "journal.json").exists() else []
    if not resume and snapshot(out) == before:
        assert main(predict_args(fasta, out, model)) == 0
    elif resume:
        assert main(predict_args(fasta, out, model, *resume)) == 0
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == expected
    assert mid_run >= 1  # at least one kill landed while the run was writing


@pytest.mark.parametrize("limit", [0, 3000, 20000, 60000] + [random.Random(k).randrange(90000) for k in range(TRIALS - 4)])
def test_a_full_disk_stops_cleanly_and_resume_finishes(setup, tmp_path, limit):
    model, fasta, expected = setup
    out = tmp_path / "out"
    out.mkdir()
    failed = child(SIZE_LIMIT, limit, *predict_args(fasta, out, model))
    assert failed.returncode == 1, failed.stderr
    assert "File too large" in failed.stderr and "Traceback" not in failed.stderr
    assert not any((out / name).exists() for name in OUTPUTS)
    if (out / STAGING / "journal.json").exists():
        assert main(predict_args(fasta, out, model, "--resume")) == 0
    else:  # the disk was full before the first chunk: nothing to resume, start again
        assert main(predict_args(fasta, out, model)) == 0
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == expected


def test_ctrl_c_stops_cleanly_and_resume_finishes(setup, tmp_path):
    model, fasta, _ = setup
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dbmtl.cli", *predict_args(fasta, out, model, "--chunk-size", "1")],
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out / STAGING / "journal.json"
    deadline = time.time() + 60
    while time.time() < deadline and not (journal.exists() and '"proteins": 0' not in journal.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt landed")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert not (out / "proteins.tsv").exists()
    assert main(predict_args(fasta, out, model, "--resume", "--chunk-size", "1")) == 0
    whole = tmp_path / "whole"  # chunks of one protein batch differently: compare with the same chunks
    assert main(predict_args(fasta, whole, model, "--chunk-size", "1")) == 0
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == {name: (whole / name).read_bytes() for name in OUTPUTS}
