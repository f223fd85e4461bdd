"""`dbmtl predict` under torchrun: 2 CPU processes split the input by chunks and write one merged output,
byte-identical to one process's; an interrupted sharded run resumes."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import tiny_predictor

from dbmtl.cli import main
from dbmtl.model.checkpoint import save_checkpoint

OUTPUTS = ("residues.tsv", "proteins.tsv", "predictions.jsonl")
SRC = Path(__file__).resolve().parents[2] / "src"


def torchrun_predict(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "dbmtl.cli", "predict", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    p = tiny_predictor(kind="encoder", conv_kernel=3)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "m", p.model, p.alphabet)


def proteins(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(f">q{i} sharded {i}\n{''.join(rng.choice('ACDEFGHIKLMNPQRSTVWY') for _ in range(rng.randint(15, 80)))}\n"
                   for i in range(n))


def files(out: Path) -> dict:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_two_processes_write_what_one_writes(model, tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(proteins(23))  # 8 chunks of 3: rank 0 gets 4, rank 1 gets 4, the last one short
    common = ["--model", model, "--quiet", "--chunk-size", "3", "--threads", "1"]
    assert main(["predict", str(fasta), "-o", str(tmp_path / "one"), *map(str, common)]) == 0
    run = torchrun_predict(fasta, "-o", tmp_path / "two", *common)
    assert run.returncode == 0, run.stderr[-3000:]
    assert files(tmp_path / "two") == files(tmp_path / "one")
    assert not (tmp_path / "two" / ".dbmtl-predict").exists()
    assert run.stdout.count("proteins ->") == 1 and "23 proteins" in run.stdout  # rank 0 reports


def test_an_interrupted_sharded_run_resumes(model, tmp_path):
    fasta = tmp_path / "in.fasta"
    good = proteins(17, seed=1)
    fasta.write_text(good + ">bad\nMKJ\n" + proteins(4, seed=2).replace(">q", ">r"))
    common = ["--model", model, "--quiet", "--chunk-size", "2", "--threads", "1"]
    failed = torchrun_predict(fasta, "-o", tmp_path / "two", *common)
    assert failed.returncode != 0 and "'bad'" in failed.stderr
    assert not (tmp_path / "two" / "proteins.tsv").exists()
    fasta.write_text(good + ">bad\nMKV\n" + proteins(4, seed=2).replace(">q", ">r"))
    resumed = torchrun_predict(fasta, "-o", tmp_path / "two", *common, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed" in resumed.stderr
    assert main(["predict", str(fasta), "-o", str(tmp_path / "one"), *map(str, common)]) == 0
    assert files(tmp_path / "two") == files(tmp_path / "one")
