"""A language-model corpus of any size as memory-mapped shards, and its split across ranks and workers.

`dbmtl prepare-corpus uniref50.fasta.gz out/` cuts the FASTA into blocks of `shard_size` records; worker
processes parse each block (strict rules, bad records skipped and counted), drop sequences identical to an
evaluation protein, put a digest-chosen `holdout_percent` aside for LM validation, and write per part

    train-00000.seq   the residues of every sequence, one byte each (ASCII letters, vocabulary-independent)
    train-00000.idx   int64 offsets (n + 1) into .seq, as .npy
    shard-00000.json  written last: the shard is complete (a rerun skips it)

and finally manifest.json. Memory stays bounded by a few blocks in flight; an interrupted run, started
again with the same arguments, redoes only the missing shards.

Reading: an epoch's order is a seeded shuffle of the shards and of the sequences inside each; stream j of n
takes every n-th sequence of that order, starting at j, and a DataLoader worker w of W takes every W-th of
its stream's, so the DataLoader's round-robin gives back the stream in order. Every sequence is seen exactly
once per epoch across all streams and workers, and (epoch, offset) is a complete position to resume from.
"""
from __future__ import annotations

import io
import json
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..durable import write_atomic
from ..readers.fasta import SkipReport, open_text, read_fasta
from ..readers.leakage import LeakageGuard, sequence_key
from .catalog import in_holdout

FORMAT = "dbmtl-corpus-shards/1"
PARTS = ("train", "valid")


# -- writing ---------------------------------------------------------------------------------------------
def fasta_blocks(paths: Sequence[str | Path], records_per_block: int) -> Iterator[str]:
    """The input files' text, cut at record starts into blocks of `records_per_block` records."""
    lines: list[str] = []
    count = 0
    for path in paths:
        with open_text(path) as fh:
            for line in fh:
                if line.startswith(">"):
                    if count == records_per_block:
                        yield "".join(lines)
                        lines, count = [], 0
                    count += 1
                lines.append(line)
        if lines and not lines[-1].endswith("\n"):
            lines.append("\n")
    if lines:
        yield "".join(lines)


def _write_array(path: Path, array: np.ndarray, raw: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        if raw:
            fh.write(array.tobytes())
        else:
            np.save(fh, array)
    os.replace(tmp, path)


def write_shard(out: Path, index: int, text: str, guard: LeakageGuard, holdout_percent: int) -> dict:
    """Parse one block and write its shard files; the .json marker goes last. Runs in a worker."""
    report = SkipReport()
    parts: dict[str, list[bytes]] = {p: [] for p in PARTS}
    leaks = 0
    for rec in read_fasta(io.StringIO(text), skip_invalid=True, report=report, check_duplicates=False):
        if guard.is_leak(sequence_key(rec.sequence)):
            leaks += 1
            continue
        parts["valid" if in_holdout(rec.sequence, holdout_percent) else "train"].append(rec.sequence.encode("ascii"))
    info = {"index": index, "leaks_removed": leaks, "skipped": report.total, "skipped_examples": report.examples[:3]}
    for part, seqs in parts.items():
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        _write_array(out / f"{part}-{index:05d}.seq", np.frombuffer(b"".join(seqs), dtype=np.uint8), raw=True)
        _write_array(out / f"{part}-{index:05d}.idx", offsets, raw=False)
        info[part] = {"sequences": len(seqs), "residues": int(offsets[-1])}
    marker = out / f"shard-{index:05d}.json"
    write_atomic(marker, json.dumps(info))
    return info


_WORKER_STATE: dict = {}


def _init_worker(out: Path, guard: LeakageGuard, holdout_percent: int) -> None:
    _WORKER_STATE.update(out=out, guard=guard, holdout=holdout_percent)


def _write_in_worker(index: int, text: str) -> dict:
    s = _WORKER_STATE
    return write_shard(s["out"], index, text, s["guard"], s["holdout"])


def prepare_corpus(inputs: Sequence[str | Path], out_dir: str | Path, guard: LeakageGuard, shard_size: int = 100_000,
                   workers: int = 1, holdout_percent: int = 2, progress=None) -> dict:
    """Write the shards and manifest.json; returns the manifest. Resumes an interrupted run in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = [Path(p) for p in inputs]
    for p in inputs:
        if not p.exists():
            raise FileNotFoundError(f"corpus input not found: {p}")
    settings = {
        "format": FORMAT,
        "inputs": [{"path": str(p.resolve()), "bytes": p.stat().st_size} for p in inputs],
        "shard_size": shard_size,
        "holdout_percent": holdout_percent,
        "evaluation_sequences": len(guard.keys),
    }
    settings_file = out / "prepare.json"
    if settings_file.exists():
        before = json.loads(settings_file.read_text())
        if before != settings:
            raise ValueError(f"{out} holds shards prepared from other inputs or settings ({settings_file}); "
                             "use a new folder or the same arguments")
    else:
        settings_file.write_text(json.dumps(settings, indent=1))

    infos: dict[int, dict] = {}
    pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(out, guard, holdout_percent)) if workers > 1 else None
    pending: set[Future] = set()
    try:
        for index, text in enumerate(fasta_blocks(inputs, shard_size)):
            marker = out / f"shard-{index:05d}.json"
            if marker.exists():  # finished by an earlier run
                infos[index] = json.loads(marker.read_text())
            elif pool is None:
                infos[index] = write_shard(out, index, text, guard, holdout_percent)
            else:
                pending.add(pool.submit(_write_in_worker, index, text))
                if len(pending) > workers:  # bounded memory: at most workers + 1 blocks of text in flight
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        info = f.result()
                        infos[info["index"]] = info
            if progress is not None:
                progress(index + 1)
        for f in pending:
            info = f.result()
            infos[info["index"]] = info
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    order = sorted(infos)
    manifest = {
        **settings,
        "shards": [infos[i] for i in order],
        "leaks_removed": sum(infos[i]["leaks_removed"] for i in order),
        "skipped": sum(infos[i]["skipped"] for i in order),
    }
    for part in PARTS:
        manifest[part] = {
            "sequences": sum(infos[i][part]["sequences"] for i in order),
            "residues": sum(infos[i][part]["residues"] for i in order),
        }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


# -- reading ----------------------------------------------------------------------------------------------
class CorpusShards:
    """One part ("train" or "valid") of a prepared corpus; shards are memory-mapped when first touched."""

    def __init__(self, directory: str | Path, part: str = "train"):
        self.directory = Path(directory)
        path = self.directory / "manifest.json"
        if not path.exists():
            raise FileNotFoundError(f"{self.directory} is not a prepared corpus (no manifest.json); "
                                    "run `dbmtl prepare-corpus` first, to the end")
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown corpus format {manifest.get('format')!r}, expected {FORMAT!r}")
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, not {part!r}")
        self.part = part
        shards = [s for s in manifest["shards"] if s[part]["sequences"] > 0]
        self.names = [f"{part}-{s['index']:05d}" for s in shards]
        self.counts = np.array([s[part]["sequences"] for s in shards], dtype=np.int64)
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self.counts.sum())

    def __getstate__(self):  # memory maps are reopened in each DataLoader worker, not pickled
        return {**self.__dict__, "_maps": {}}

    def _shard(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        if s not in self._maps:
            base = self.directory / self.names[s]
            offsets = np.load(base.with_suffix(".idx"), mmap_mode="r")
            residues = np.memmap(base.with_suffix(".seq"), dtype=np.uint8, mode="r") if offsets[-1] else np.zeros(0, np.uint8)
            self._maps[s] = (offsets, residues)
        return self._maps[s]

    def sequence(self, shard: int, i: int) -> str:
        offsets, residues = self._shard(shard)
        return residues[offsets[i] : offsets[i + 1]].tobytes().decode("ascii")

    def __iter__(self) -> Iterator[str]:
        """All sequences in file order (for checks and small corpora)."""
        for s, n in enumerate(self.counts):
            for i in range(n):
                yield self.sequence(s, i)

    def epoch_sequences(self, epoch: int, seed: int, positions: Iterable[int]) -> Iterator[str]:
        """The sequences at increasing `positions` of the epoch's shuffled order."""
        rng = np.random.default_rng([seed, epoch])
        shard_order = rng.permutation(len(self.counts))
        ends = np.cumsum(self.counts[shard_order])
        current, inner = -1, None
        for p in positions:
            q = int(np.searchsorted(ends, p, side="right"))
            if q >= len(ends):
                return
            if q != current:
                current = q
                inner = np.random.default_rng([seed, epoch, int(shard_order[q])]).permutation(self.counts[shard_order[q]])
            start = ends[q] - self.counts[shard_order[q]]
            yield self.sequence(int(shard_order[q]), int(inner[p - start]))

    def stream(self, index: int, count: int, epoch: int, offset: int = 0, seed: int = 0, workers: int = 0) -> Iterator[str]:
        """Stream `index` of `count` in `epoch`, from its `offset`-th sequence on; through a DataLoader
        with `workers` processes when workers > 0 (same order either way)."""
        dataset = ShardStream(self, index, count, epoch, offset, seed)
        if workers <= 0:
            return iter(dataset)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
        return iter(loader)


class ShardStream(torch.utils.data.IterableDataset):
    """Stream `index` of `count` of one epoch, split over the DataLoader's workers (see module doc)."""

    def __init__(self, shards: CorpusShards, index: int, count: int, epoch: int, offset: int = 0, seed: int = 0):
        if not 0 <= index < count:
            raise ValueError(f"stream {index} of {count} does not exist")
        self.shards, self.index, self.count, self.epoch, self.offset, self.seed = shards, index, count, epoch, offset, seed

    def __iter__(self) -> Iterator[str]:
        info = torch.utils.data.get_worker_info()
        w, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        total = len(self.shards)
        first = self.offset + w  # this worker's first item in the stream, then every n_workers-th
        positions = range(self.index + first * self.count, total, self.count * n_workers)
        return self.shards.epoch_sequences(self.epoch, self.seed, positions)
