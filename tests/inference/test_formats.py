"""`dbmtl predict --formats`: PSIPRED .ss2 and .horiz per protein and structure.fasta, parsed back against
residues.tsv; written through the same journal as the other files, so a kill and --resume end with
exactly the files of one uninterrupted run; the default files are the same with or without them."""
from __future__ import annotations

import csv
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import KILL_AT_BYTE, child, cli_env, random_fasta, saved_tiny_model

from dbmtl.cli import main
from dbmtl.inference.formats import confidence_digits, horiz_text, ss2_text
from dbmtl.inference.predictor import ProteinPrediction
from dbmtl.inference.stream import RECORD, STAGING
from dbmtl.inference.writers import safe_name
from dbmtl.readers.fasta import read_fasta

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"
DEFAULTS = ("residues.tsv", "proteins.tsv", "predictions.jsonl")

def tree(out: Path) -> dict:
    """Every published file (staging aside), by path relative to the output folder."""
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*"))
            if f.is_file() and STAGING not in f.parts}


def tsv(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """The bundled model's predictions of the example proteins with every extra format."""
    out = tmp_path_factory.mktemp("formats") / "out"
    assert main(["predict", str(EXAMPLE), "-o", str(out), "--formats", "ss2,horiz,fasta", "--threads", "1",
                 "--quiet"]) == 0
    return out


def test_ss2_parses_back_to_the_tsv(bundled_run):
    rows = tsv(bundled_run / "residues.tsv")
    for record in read_fasta(EXAMPLE):
        lines = (bundled_run / "ss2" / f"{safe_name(record.id)}.ss2").read_text().splitlines()
        assert lines[0].startswith("# PSIPRED VFORMAT") and lines[1] == ""
        mine = [r for r in rows if r["id"] == record.id]
        assert len(lines) - 2 == len(mine) == len(record.sequence)
        for line, r in zip(lines[2:], mine):
            pos, aa, ss, p_c, p_h, p_e = line.split()
            assert (int(pos), aa, ss) == (int(r["position"]), r["residue"], r["ss3"])
            for got, state in zip((p_c, p_h, p_e), "CHE"):  # PSIPRED's column order
                assert len(got.split(".")[1]) == 3
                assert abs(float(got) - float(r[f"p_ss3_{state}"])) <= 0.0005 + 0.00005 + 1e-9


def test_horiz_parses_back_to_the_tsv(bundled_run):
    rows = tsv(bundled_run / "residues.tsv")
    for record in read_fasta(EXAMPLE):
        text = (bundled_run / "horiz" / f"{safe_name(record.id)}.horiz").read_text()
        assert text.startswith("# PSIPRED HFORMAT")
        lines = text.splitlines()
        conf = "".join(line[6:] for line in lines if line.startswith("Conf: "))
        pred = "".join(line[6:] for line in lines if line.startswith("Pred: "))
        aa = "".join(line[6:] for line in lines if line.startswith("  AA: "))
        assert all(len(line) <= 66 for line in lines if line[:6] in ("Conf: ", "Pred: ", "  AA: "))
        assert aa == record.sequence
        assert pred == "".join(r["ss3"] for r in rows if r["id"] == record.id)
        ss2 = [line.split() for line in (bundled_run / "ss2" / f"{safe_name(record.id)}.ss2").read_text().splitlines()[2:]]
        assert conf == "".join(str(min(9, int(10 * max(map(float, r[3:])) + 1e-9))) for r in ss2)


def test_structure_fasta_holds_sequence_ss3_and_ss8(bundled_run):
    rows = tsv(bundled_run / "residues.tsv")
    got = list(read_fasta(bundled_run / "structure.fasta"))
    inputs = list(read_fasta(EXAMPLE))
    assert len(got) == 3 * len(inputs)
    for k, record in enumerate(inputs):
        seq, ss3, ss8 = got[3 * k : 3 * k + 3]
        mine = [r for r in rows if r["id"] == record.id]
        assert (seq.id, seq.description, seq.sequence) == (record.id, record.description, record.sequence)
        assert (ss3.id, ss3.sequence) == (f"{record.id}|ss3", "".join(r["ss3"] for r in mine))
        assert (ss8.id, ss8.sequence) == (f"{record.id}|ss8", "".join(r["ss8"] for r in mine))


def test_exact_layout_of_both_psipred_files():
    probs = np.tile(np.array([[0.7, 0.2, 0.1]], dtype=np.float32), (65, 1))  # H, E, C
    p = ProteinPrediction("x", "A" * 65, labels={"ss3": "H" * 65}, probabilities={"ss3": probs})
    ss2 = ss2_text(p).splitlines()
    assert ss2[2] == "   1 A H   0.100  0.700  0.200"
    assert ss2[-1] == "  65 A H   0.100  0.700  0.200"
    assert confidence_digits(probs[:1]) == "7"  # 10 x 0.7 (float32 0.69999999), truncated
    assert confidence_digits(np.array([[0.351, 0.0, 0.648], [0.003, 0.997, 0.0]])) == "69"  # S4PRED's 1qys
    lines = horiz_text(p).split("\n")
    assert lines[2:6] == ["Conf: " + "7" * 60, "Pred: " + "H" * 60, "  AA: " + "A" * 60,
                          "      " + "".join(f"{k:10d}" for k in range(10, 61, 10))]
    assert lines[6:12] == ["", "", "Conf: 77777", "Pred: HHHHH", "  AA: AAAAA", "      "]


def test_the_default_files_are_the_same_with_or_without_formats(bundled_run, tmp_path):
    assert main(["predict", str(EXAMPLE), "-o", str(tmp_path), "--threads", "1", "--quiet"]) == 0
    plain = tree(tmp_path)
    assert set(plain) == set(DEFAULTS) | {RECORD}
    full = tree(bundled_run)
    assert {name: full[name] for name in DEFAULTS} == {name: plain[name] for name in DEFAULTS}


def test_a_run_without_formats_removes_the_earlier_runs_folders(bundled_run, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(EXAMPLE), "-o", str(out), "--formats", "ss2,fasta", "--threads", "1", "--quiet"]) == 0
    assert (out / "ss2").is_dir() and (out / "structure.fasta").exists() and not (out / "horiz").exists()
    assert main(["predict", str(EXAMPLE), "-o", str(out), "--threads", "1", "--quiet", "--tasks", "loc"]) == 0
    assert not (out / "ss2").exists() and not (out / "structure.fasta").exists()
    (out / RECORD).write_text("{damaged")  # a damaged record of the last run does not stop the next one
    assert main(["predict", str(EXAMPLE), "-o", str(out), "--threads", "1", "--quiet", "--formats", "horiz"]) == 0
    assert (out / "horiz").is_dir()


@pytest.mark.parametrize("args, message", [(["--formats", "pdb"], "unknown formats ['pdb']"),
                                           (["--formats", "ss2", "--tasks", "ss8,loc"], "ss2 needs the ss3 task")])
def test_bad_formats_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["predict", str(EXAMPLE), "-o", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_killed_mid_write_then_resumed_gives_the_files_of_one_run(tmp_path):
    model = saved_tiny_model(tmp_path / "model")
    rng = random.Random(0)
    fasta = random_fasta(tmp_path / "in.fasta", 15, (20, 130), rng, name="p/{i} protein {i}")
    args = ["--model", str(model), "--quiet", "--chunk-size", "4", "--threads", "1", "--formats", "ss2,horiz,fasta"]
    assert main(["predict", str(fasta), "-o", str(tmp_path / "whole"), *args]) == 0
    expected = tree(tmp_path / "whole")
    assert len([n for n in expected if n.startswith("ss2/")]) == 15  # '/' in ids escaped, one file each
    total = sum(len(v) for k, v in expected.items() if k != RECORD)
    for trial, offset in enumerate([rng.randrange(total // 4, total) for _ in range(3)]):
        out = tmp_path / f"t{trial}"
        killed = child(KILL_AT_BYTE, offset, "predict", fasta, "-o", out, *args)
        assert killed.returncode == 137, killed.stderr
        assert tree(out) == {}  # nothing published, no stray per-protein file
        assert main(["predict", str(fasta), "-o", str(out), *args, "--resume"]) == 0
        assert tree(out) == expected


def test_two_processes_write_the_formats_one_writes(tmp_path):
    model = saved_tiny_model(tmp_path / "model")
    fasta = random_fasta(tmp_path / "in.fasta", 11, (15, 80), random.Random(3), name="s{i}")
    args = ["--model", str(model), "--quiet", "--chunk-size", "3", "--threads", "1", "--formats", "ss2,horiz,fasta"]
    assert main(["predict", str(fasta), "-o", str(tmp_path / "one"), *args]) == 0
    env = cli_env(OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "dbmtl.cli", "predict", str(fasta), "-o", str(tmp_path / "two"), *args],
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert len([n for n in one if n.startswith("horiz/")]) == 11
    assert {k: v for k, v in two.items() if k != RECORD} == {k: v for k, v in one.items() if k != RECORD}
