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

from helpers import tiny_predictor

from dbmtl.cli import main
from dbmtl.inference.stream import STAGING
from dbmtl.model.checkpoint import save_checkpoint

OUTPUTS = ("residues.tsv", "proteins.tsv", "predictions.jsonl")
TRIALS = int(os.environ.get("DBMTL_FAULT_TRIALS", "4"))  # more for a campaign (docs/reliability.md)

# Runs `dbmtl predict` in a child that dies (SIGKILL-like: os._exit, no clean-up) once its output writes
# reach a byte offset; the bytes before the offset reach the file, as in a kill mid-write.
KILL_AT_BYTE = r"""
import os, sys
from dbmtl.inference import writers

limit, written = int(sys.argv[1]), [0]
append = writers.PredictionWriter.append

def dying_append(self, name, text):
    room = limit - written[0]
    if len(text) >= room:
        append(self, name, text[:room])
        self.files[name].flush()
        os._exit(137)
    written[0] += len(text)
    append(self, name, text)

writers.PredictionWriter.append = dying_append
from dbmtl.cli import main
sys.exit(main(sys.argv[2:]))
"""

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
    p = tiny_predictor(kind="encoder", conv_kernel=3)
    model = save_checkpoint(root / "model", p.model, p.alphabet)
    rng = random.Random(0)
    fasta = root / "in.fasta"
    fasta.write_text("".join(f">p{i} protein {i}\n{''.join(rng.choice('ACDEFGHIKLMNPQRSTVWY') for _ in range(rng.randint(20, 90)))}\n"
                             for i in range(40)))
    whole = root / "whole"
    assert main(predict_args(fasta, whole, model)) == 0
    return model, fasta, {name: (whole / name).read_bytes() for name in OUTPUTS}


def predict_args(fasta, out, model, *extra):
    return ["predict", str(fasta), "-o", str(out), "--model", str(model), "--quiet", "--chunk-size", "7",
            "--threads", "1", *extra]


def child(script: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)


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
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    rng = random.Random(seed)
    out = previous_run(tmp_path, model)
    before = snapshot(out)
    journal = out / STAGING / "journal.json"
    mid_run = 0
    for _ in range(3):
        args = predict_args(fasta, out, model, *(["--resume"] if journal.exists() else []))
        seen = journal.stat().st_mtime_ns if journal.exists() else None
        proc = subprocess.Popen([sys.executable, "-m", "dbmtl.cli", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60  # wait for this run's first journal write, then kill at a random instant
        while time.time() < deadline and proc.poll() is None and (
                not journal.exists() or journal.stat().st_mtime_ns == seen):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))  # the rest of the run takes a few tenths of a second
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        assert "Traceback" not in proc.stderr.read()
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
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dbmtl.cli", *predict_args(fasta, out, model, "--chunk-size", "1")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
