"""`dbmtl embed`: per-residue and per-protein embeddings into HDF5, laid out as bio_embeddings does.

The embedding of a residue is the model's final hidden state there (after the last layer norm, what the
output head reads), from the row of one task, by default ss8: for an encoder `<SSP8> residues`,
bidirectional; for a decoder `residues <SSP8>`, causal; the bundled onepass model has one row for every
task. Proteins longer than the per-residue limit are embedded in windows and stitched as for prediction. The per-protein embedding is the mean over residues.

File layout: groups `per_residue` ((L, d) float32 datasets) and `per_protein` ((d,) float32), one dataset
per protein named by a safe key (the id, %-escaped, or the sequence's md5), with attributes original_id,
sequence_md5 and description; the root records the model, the task row and the dimension. Proteins are
written chunk by chunk and flushed; `resume` keeps the proteins already complete in the file.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..readers.fasta import SkipReport, read_fasta
from .writers import safe_name


@dataclass
class EmbedRun:
    written: int = 0
    kept: int = 0       # already complete in the file (resume), or a repeated sequence under md5 keys
    skipped: SkipReport = field(default_factory=SkipReport)  # invalid records (embed_fasta, skip_invalid)


def sequence_md5(sequence: str) -> str:
    return hashlib.md5(sequence.encode("ascii")).hexdigest()


def protein_key(record, key: str) -> str:
    return sequence_md5(record.sequence) if key == "md5" else safe_name(record.id)


def _complete(h5, name: str, groups: list[str], sequence: str) -> bool:
    """Written in full: present in every group asked for, attributes set last, for this sequence."""
    for group in groups:
        node = h5.get(f"{group}/{name}")
        if node is None or node.attrs.get("sequence_md5") != sequence_md5(sequence):
            return False
    return True


def _write(h5, group: str, name: str, data: np.ndarray, record) -> None:
    if name in h5[group]:
        del h5[group][name]  # a torn write of an interrupted run
    ds = h5[group].create_dataset(name, data=data.astype(np.float32))
    ds.attrs["original_id"] = record.id
    ds.attrs["description"] = record.description
    ds.attrs["sequence_md5"] = sequence_md5(record.sequence)  # last: marks the dataset complete


def embed_to_h5(predictor, records: Iterable, out: str | Path, per_residue: bool = True, per_protein: bool = True,
                key: str = "id", task: str = "ss8", chunk_size: int = 64, resume: bool = False,
                on_chunk: Callable[[int], None] | None = None, model_name: str = "") -> EmbedRun:
    """Embed `records` (with .id, .description, .sequence; read lazily) into the HDF5 file `out`."""
    try:
        import h5py
    except ImportError:
        raise ValueError("dbmtl embed needs h5py: pip install 'dbmtl[embed]'") from None
    if key not in ("id", "md5"):
        raise ValueError(f"key must be 'id' or 'md5', not {key!r}")
    groups = [g for g, on in (("per_residue", per_residue), ("per_protein", per_protein)) if on]
    if not groups:
        raise ValueError("nothing to write: ask for per-residue and/or per-protein embeddings")
    run = EmbedRun()
    with h5py.File(out, "a" if resume else "w") as h5:
        h5.attrs.update({"model": model_name, "task_row": task, "kind": predictor.kind,
                         "states": "final hidden states before the output head; per_protein = mean over residues"})
        for group in groups:
            h5.require_group(group)
        chunk: list = []

        def flush():
            states = predictor.embed([r.sequence for r in chunk], task=task)
            for record, residues in zip(chunk, states):
                name = protein_key(record, key)
                if per_residue:
                    _write(h5, "per_residue", name, residues, record)
                if per_protein:
                    _write(h5, "per_protein", name, residues.mean(0), record)
            h5.attrs["dim"] = states[0].shape[1]
            h5.flush()
            run.written += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
            chunk.clear()

        pending: set[str] = set()
        for record in records:
            name = protein_key(record, key)
            if name in pending or _complete(h5, name, groups, record.sequence):
                run.kept += 1
                continue
            pending.add(name)
            chunk.append(record)
            if len(chunk) >= chunk_size:
                flush()
                pending.clear()
        if chunk:
            flush()
    return run


def embed_fasta(predictor, fasta: str | Path, out: str | Path, skip_invalid: bool = False, progress: bool = False,
                **options) -> EmbedRun:
    """embed_to_h5 over a FASTA file read strictly and lazily (bad records skipped and counted with
    skip_invalid), with a progress bar if asked."""
    from tqdm import tqdm

    skipped = SkipReport()
    with tqdm(unit=" proteins", disable=not progress, desc="embed") as bar:
        run = embed_to_h5(predictor, read_fasta(fasta, skip_invalid=skip_invalid, report=skipped), out,
                          on_chunk=bar.update, **options)
    run.skipped = skipped
    return run
