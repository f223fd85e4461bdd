"""Corpus shards (`dbmtl prepare-corpus`): every valid sequence once, leaks filtered, only missing shards
redone, every sequence once per epoch across ranks and DataLoader workers, a resumable position in training."""
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch

from dbmtl.data.catalog import evaluation_guard, load_training_data, residue_test_sets
from dbmtl.data.shards import CorpusShards, prepare_corpus
from dbmtl.readers.fasta import read_fasta
from dbmtl.training import TrainConfig

from helpers import straight_and_resumed
from training.test_distributed import tiny_config


QUERY = "unlabeled/mmseqs2_examples/QUERY.fasta"


# -- corpus shards ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(data_dir, tmp_path_factory):
    """QUERY.fasta plus a bad record and a copy of a CB513 protein, in shards of 37 records."""
    tmp = tmp_path_factory.mktemp("shards")
    guard = evaluation_guard(data_dir)
    leak = residue_test_sets(data_dir)["CB513"][0].sequence
    extra = tmp / "extra.fasta"
    extra.write_text(f">bad\nMKV1LL\n>leak copy of CB513\n{leak}\n>ok\nMKVLLAG\n")
    inputs = [data_dir / QUERY, extra]
    manifest = prepare_corpus(inputs, tmp / "out", guard, shard_size=37, workers=2)
    expected = [r.sequence for r in read_fasta(data_dir / QUERY) if not guard.is_leak(r.sequence)] + ["MKVLLAG"]
    return tmp / "out", manifest, expected, inputs, guard


def test_prepare_corpus_keeps_every_valid_sequence_once_and_filters_leaks(prepared):
    out, manifest, expected, _, _ = prepared
    assert manifest["skipped"] == 1 and manifest["leaks_removed"] >= 1
    train, valid = CorpusShards(out, "train"), CorpusShards(out, "valid")
    assert len(manifest["shards"]) == -(-502 // 37)
    got = list(train) + list(valid)
    assert Counter(got) == Counter(expected)
    assert 0 < len(valid) < 0.1 * len(got)  # the LM validation part, chosen by digest


def test_prepare_corpus_redoes_only_missing_shards(prepared, tmp_path):
    out, manifest, _, inputs, guard = prepared
    marker = out / "shard-00003.json"
    marker.unlink()  # as if the run had been killed while writing shard 3
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("train-*.seq")}
    again = prepare_corpus(inputs, out, guard, shard_size=37, workers=2)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("train-*.seq")}
    assert again == manifest
    assert [n for n in before if before[n] != after[n]] == ["train-00003.seq"]
    with pytest.raises(ValueError, match="other inputs or settings"):
        prepare_corpus(inputs, out, guard, shard_size=50)


def test_two_ranks_times_two_workers_see_every_sequence_once_per_epoch(prepared):
    out, *_ = prepared
    shards = CorpusShards(out, "train")
    everything = Counter(shards)
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            stream = list(shards.stream(rank, 2, epoch, workers=2, seed=5))
            assert stream == list(shards.stream(rank, 2, epoch, workers=0, seed=5))  # workers keep the order
            seen += stream
        assert Counter(seen) == everything
    assert list(shards.stream(0, 2, 0, seed=5)) != list(shards.stream(0, 2, 1, seed=5))  # reshuffled per epoch
    full = list(shards.stream(1, 2, 0, seed=5))
    assert list(shards.stream(1, 2, 0, offset=17, workers=2, seed=5)) == full[17:]  # resume mid-epoch


def test_training_reads_the_lm_task_from_shards_and_resumes_its_position(prepared, data_dir, tmp_path):
    out, *_ = prepared
    data = load_training_data(data_dir)
    # the decoder: its LM rows draw nothing from torch's random stream, which a DataLoader with workers also
    # draws from when it starts (masked LM with data_workers > 0 does not resume bit for bit: an open issue)
    cfg = TrainConfig.load(tiny_config(tmp_path / "cfg.json", "decoder", tasks={"lm": 1}, corpus=str(out),
                                       data_workers=1, max_steps=6, checkpoint_every=3))
    straight, resumed = straight_and_resumed(cfg, data, tmp_path, stop=3)
    assert [s.lm.state() for s in resumed.slots] == [s.lm.state() for s in straight.slots]
    assert sum(s.lm.state()["offset"] + s.lm.state()["epoch"] * 1000 for s in straight.slots) > 0
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_prepare_corpus_command(data_dir, tmp_path):
    env = {**os.environ, "DBMTL_DATA": str(data_dir)}
    run = subprocess.run([sys.executable, "-m", "dbmtl.cli", "prepare-corpus", str(data_dir / QUERY), str(tmp_path / "c"),
                          "--shard-size", "200", "--workers", "1"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "3 shards" in run.stdout
    guard = evaluation_guard(data_dir)
    kept = sum(not guard.is_leak(r.sequence) for r in read_fasta(data_dir / QUERY))
    assert len(CorpusShards(tmp_path / "c", "train")) + len(CorpusShards(tmp_path / "c", "valid")) == kept
    missing = subprocess.run([sys.executable, "-m", "dbmtl.cli", "train", "--config", str(tiny_config(tmp_path / "c.json")),
                              "--corpus", str(tmp_path / "nothing")], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "not a prepared corpus" in missing.stderr
