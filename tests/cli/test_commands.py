"""The command line end to end: predict writes every output, bad input keeps finished work, evaluate reports."""
import csv
import json
from pathlib import Path

import pytest

from dbmtl.cli import main
from dbmtl.model.checkpoint import save_checkpoint
from dbmtl.tasks import TASKS, output_label

from helpers import tiny_predictor


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    p = tiny_predictor()
    return save_checkpoint(tmp_path_factory.mktemp("model"), p.model, p.alphabet)


def read_tsv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_predict_writes_residue_protein_and_jsonl(tmp_path, tiny_model):
    out = tmp_path / "out"
    assert main(["predict", str(EXAMPLE), "-o", str(out), "--model", str(tiny_model)]) == 0
    seqs = {}
    for line in EXAMPLE.read_text().split(">")[1:]:
        head, *body = line.splitlines()
        seqs[head.split()[0]] = "".join(body)
    residues = read_tsv(out / "residues.tsv")
    assert len(residues) == sum(map(len, seqs.values()))
    assert [r["residue"] for r in residues if r["id"] == "P68871_HBB"] == list(seqs["P68871_HBB"])
    row = residues[0]
    assert row["ss3"] in "HEC" and row["ss8"] in "HGIEBTSC"
    assert sum(float(row[f"p_ss3_{x}"]) for x in "HEC") == pytest.approx(1.0, abs=2e-3)
    proteins = read_tsv(out / "proteins.tsv")
    assert [p["id"] for p in proteins] == list(seqs)
    assert all(p["location"] in [output_label("loc", c) for c in TASKS["loc"].labels] for p in proteins)
    assert {p["membrane"] for p in proteins} <= {"Membrane-bound", "Soluble"}  # spelled out
    assert [int(p["length"]) for p in proteins] == [len(s) for s in seqs.values()]
    records = [json.loads(line) for line in open(out / "predictions.jsonl")]
    assert [r["id"] for r in records] == list(seqs)
    assert len(records[0]["ss8"]) == len(records[0]["sequence"]) == len(records[0]["ss8_probabilities"])
    # the files say what the Python API says
    api = tiny_predictor().predict({k: v for k, v in seqs.items()})
    assert [output_label("loc", p.location) for p in api] == [p["location"] for p in proteins]
    assert "".join(p.ss3 for p in api) == "".join(r["ss3"] for r in residues)


def test_bad_record_is_named_and_earlier_proteins_are_kept(tmp_path, tiny_model, capsys):
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">ok1\nMKTAYIAKQR\n>ok2\nMSTNPKPQRK\n>broken desc\nMKT1AYI\n>ok3\nMKV\n")
    out = tmp_path / "out"
    rc = main(["predict", str(fasta), "-o", str(out), "--model", str(tiny_model), "--chunk-size", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "'broken'" in err and "'1'" in err and "position 4" in err
    assert "2 finished proteins kept" in err and "--resume" in err
    assert not (out / "proteins.tsv").exists()  # a failed run publishes nothing
    fasta.write_text(">ok1\nMKTAYIAKQR\n>ok2\nMSTNPKPQRK\n>broken desc\nMKTAYI\n>ok3\nMKV\n")  # fixed
    assert main(["predict", str(fasta), "-o", str(out), "--model", str(tiny_model), "--resume", "--quiet",
                 "--chunk-size", "1"]) == 0
    assert "resumed after 2 finished proteins" in capsys.readouterr().err
    assert [p["id"] for p in read_tsv(out / "proteins.tsv")] == ["ok1", "ok2", "broken", "ok3"]


def test_skip_invalid_reports_and_continues(tmp_path, tiny_model, capsys):
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">ok1\nMKTAYIAKQR\n>broken\nMKT1AYI\n>empty\n>ok1\nMKV\n>ok3\nmkv*\n")
    out = tmp_path / "out"
    assert main(["predict", str(fasta), "-o", str(out), "--model", str(tiny_model), "--skip-invalid"]) == 0
    err = capsys.readouterr().err
    assert "skipped 3 invalid records" in err
    proteins = read_tsv(out / "proteins.tsv")
    assert [(p["id"], p["length"]) for p in proteins] == [("ok1", "10"), ("ok3", "3")]


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", str(EXAMPLE), "-o", str(tmp_path), "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "model folder" in err and "nope not found" in err


def test_evaluate_writes_json_and_markdown(tmp_path, tiny_model, data_dir, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tiny_model), "--limit", "6", "--audit", "-o", str(out),
                 "--data-dir", str(data_dir)]) == 0
    results = json.loads((out / "evaluation.json").read_text())
    assert {"CB513", "TS115", "DeepLoc"} <= set(results["sets"])
    cb = results["sets"]["CB513"]["ss3"]
    assert cb["n_proteins"] == 6 and 0.0 <= cb["mean"] <= 1.0
    audit = cb["audit"]
    # copying the previous true label is the paper's leak: it scores far above an untrained model
    assert audit["copy_previous_true_label"]["mean"] > 0.6 > cb["mean"] - 0.2
    md = (out / "evaluation.md").read_text()
    assert "| CB513 | 6 |" in md and "teacher-forced" in md and "Q10" in md
    assert "| CB513 | 6 |" in capsys.readouterr().out


def test_a_failed_run_leaves_earlier_results_untouched(tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(EXAMPLE), "-o", str(out), "--model", str(tiny_model), "--quiet"]) == 0
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    bad_first = tmp_path / "bad.fasta"
    bad_first.write_text(">x\nMK1\n")
    for source in (tmp_path / "typo.fasta", tmp_path, bad_first):  # missing, a folder, a bad first record
        assert main(["predict", str(source), "-o", str(out), "--model", str(tiny_model), "--quiet"]) == 2
        assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
        assert "Traceback" not in capsys.readouterr().err


def test_resume_refuses_other_options_or_a_changed_input(tmp_path, tiny_model, capsys):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAKQR\n>b\nMSTNPKPQRK\n>c\nMKJ\n")
    out = tmp_path / "out"
    args = ["predict", str(fasta), "-o", str(out), "--model", str(tiny_model), "--quiet", "--chunk-size", "1"]
    assert main(args) == 2  # stops at c, a and b kept
    assert main(args + ["--resume", "--tasks", "loc"]) == 2
    assert "other options (tasks" in capsys.readouterr().err
    fasta.write_text(">a\nMKTAYIAKQR\n>b\nMSTNPKPQRA\n>c\nMKV\n")  # b changed
    assert main(args + ["--resume"]) == 2
    assert "input changed" in capsys.readouterr().err
    assert main(args) == 0  # without --resume it starts over


HBB_CDS = "ATGGTGCATCTGACTCCTGAGGAGAAGTCTGCCGTTACTGCCCTGTGGGGCAAGGTGAACGTGGATGAAGTTGGTGGTGAGGCCCTGGGCAGG"


def test_nucleotides_are_refused_skipped_or_allowed(tmp_path, tiny_model, capsys):
    fasta = tmp_path / "mixed.fasta"
    fasta.write_text(f">HBB protein\nMVHLTPEEKSAVTALWGKV\n>HBB_cds coding sequence\n{HBB_CDS[:60]}\n{HBB_CDS[60:]}\n")
    base = ["predict", str(fasta), "--model", str(tiny_model), "--quiet"]
    assert main(base + ["-o", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert f"{fasta} line 3: record 'HBB_cds': looks like a nucleotide sequence (DNA or RNA)" in err
    assert "--allow-nucleotides" in err and "Traceback" not in err
    assert main(base + ["-o", str(tmp_path / "skipped"), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 invalid record (1 nucleotide sequence)" in captured.err
    assert captured.out.startswith("1 protein -> ")
    assert [p["id"] for p in read_tsv(tmp_path / "skipped" / "proteins.tsv")] == ["HBB"]
    assert main(base + ["-o", str(tmp_path / "allowed"), "--allow-nucleotides"]) == 0
    assert capsys.readouterr().out.startswith("2 proteins -> ")
    proteins = read_tsv(tmp_path / "allowed" / "proteins.tsv")
    assert [(p["id"], p["length"]) for p in proteins] == [("HBB", "19"), ("HBB_cds", str(len(HBB_CDS)))]


def test_embed_refuses_nucleotides_unless_allowed(tmp_path, tiny_model, capsys):
    pytest.importorskip("h5py")
    fasta = tmp_path / "dna.fasta"
    fasta.write_text(f">cds\n{HBB_CDS}\n")
    base = ["embed", str(fasta), "-o", str(tmp_path / "e.h5"), "--model", str(tiny_model), "--quiet"]
    assert main(base) == 2
    assert "record 'cds': looks like a nucleotide sequence" in capsys.readouterr().err
    assert main(base + ["--allow-nucleotides"]) == 0
    assert capsys.readouterr().out.startswith("1 protein embedded -> ")


def test_invalid_letter_is_named_with_its_line(tmp_path, tiny_model, capsys):
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">a\nMKTAYIAKQR\nMKTJAYI\n")
    assert main(["predict", str(fasta), "-o", str(tmp_path / "out"), "--model", str(tiny_model)]) == 2
    assert f"{fasta} line 3: record 'a': invalid character 'J' at position 14" in capsys.readouterr().err
