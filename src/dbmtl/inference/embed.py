"""`dbmtl embed`: per-residue and per-protein embeddings into HDF5, laid out as bio_embeddings does.

The embedding of a residue is the model's final hidden state there (after the last layer norm, what the
output head reads), from the row of one task, by default ss8: for an encoder `<SSP8> residues`,
bidirectional; for a decoder `residues <SSP8>`, causal; the bundled onepass model has one row for every
task. Proteins longer than the per-residue limit are embedded in windows and stitched as for prediction. The per-protein embedding is the mean over residues.

File layout: groups `per_residue` ((L, d) float32 datasets) and `per_protein` ((d,) float32), one dataset
per protein named by a safe key (the id, %-escaped, or the sequence's md5), with attributes original_id,
sequence_md5 and description; the root records the format (`dbmtl-embeddings/1`, how an embeddings
file of this tool is recognised), the model, its fingerprint, the task row and the dimension.

A run is transactional, as `dbmtl predict` is: it writes a staging file beside `out`
(`.NAME.dbmtl-embed`), chunk by chunk, flushed, and replaces `out` with it only when every protein is
done, so a failed or killed run leaves an earlier `out` as it was. `resume` continues an interrupted
run's staging file (the proteins that still read back in full, when a kill tore HDF5's index), or starts
from the proteins already complete in `out`, and keeps them; without it a
finished run replaces an `out` of ours (said on stderr). A file at `out` that is not one of ours is
refused, never replaced. One run at a time per `out` (a lock beside it).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..durable import exclusive, fsync, make_folder, remove_empty
from ..readers.fasta import SkipReport, read_fasta
from .writers import safe_name

FORMAT = "dbmtl-embeddings/1"  # root attribute `format` of every file dbmtl embed writes


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
        if group == "per_residue" and node.shape[0] != len(sequence):
            return False
    return True


def _write(h5, group: str, name: str, data: np.ndarray, record) -> None:
    if name in h5[group]:
        del h5[group][name]  # a torn write of an interrupted run
    ds = h5[group].create_dataset(name, data=data.astype(np.float32))
    ds.attrs["original_id"] = record.id
    ds.attrs["description"] = record.description
    ds.attrs["sequence_md5"] = sequence_md5(record.sequence)  # last: marks the dataset complete


def _stderr(message: str) -> None:
    print(f"dbmtl embed: {message}", file=sys.stderr)


def staging_file(out: Path) -> Path:
    """Where a run writes until it is complete: beside `out`, so the final rename is atomic."""
    return out.with_name(f".{out.name}.dbmtl-embed")


def is_embeddings(path: str | Path) -> bool:
    """An HDF5 file written by dbmtl embed (this format, or the attributes of earlier versions)."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return _ours(h5)
    except Exception:  # not HDF5, unreadable, damaged: not a file we may replace
        return False


def _ours(h5) -> bool:
    return h5.attrs.get("format") == FORMAT or {"task_row", "states"} <= set(h5.attrs)


def embed_to_h5(predictor, records: Iterable, out: str | Path, per_residue: bool = True, per_protein: bool = True,
                key: str = "id", task: str = "ss8", chunk_size: int = 64, resume: bool = False,
                on_chunk: Callable[[int], None] | None = None, model_name: str = "",
                log: Callable[[str], None] = _stderr, allow_nucleotides: bool = False) -> EmbedRun:
    """Embed `records` (with .id, .description, .sequence; read lazily) into the HDF5 file `out`,
    transactionally (module docstring)."""
    try:
        import h5py
    except ImportError:
        raise ValueError("dbmtl embed needs h5py: pip install 'dbmtl[embed]'") from None
    if key not in ("id", "md5"):
        raise ValueError(f"key must be 'id' or 'md5', not {key!r}")
    groups = [g for g, on in (("per_residue", per_residue), ("per_protein", per_protein)) if on]
    if not groups:
        raise ValueError("nothing to write: ask for per-residue and/or per-protein embeddings")
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out} is a folder; -o names the HDF5 file to write")
    if out.exists() and not is_embeddings(out):
        raise ValueError(f"{out} exists and is not an embeddings file of dbmtl embed: refusing to replace it "
                         "(choose another -o, or delete it)")
    made = make_folder(out.parent)
    staging, run = staging_file(out), EmbedRun()
    try:
        with exclusive(out.with_name(f".{out.name}.dbmtl-embed.lock"), str(out)):
            continued = _start(out, staging, resume, log)
            try:
                with h5py.File(staging, "a") as h5:
                    _fill(h5, predictor, records, groups, key, task, chunk_size, resume, on_chunk, model_name, run,
                          allow_nucleotides)
            except BaseException:
                if run.written == 0 and not continued:
                    staging.unlink(missing_ok=True)
                else:
                    log(f"the proteins embedded so far are kept in {staging}; {out} is unchanged. "
                        "Rerun with --resume to continue.")
                raise
            fsync(staging)
            staging.replace(out)
            fsync(out.parent)
    finally:
        remove_empty(made)
    return run


def _start(out: Path, staging: Path, resume: bool, log) -> bool:
    """Prepare the staging file; True when it is an interrupted run's, continued."""
    tmp = staging.with_name(staging.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a copy a kill cut short
    if staging.exists():
        if resume and (_readable(staging) or _salvage(staging, tmp, log)):
            return True
        if not resume:
            log(f"discarding the interrupted run in {staging} (rerun with --resume to continue it)")
        staging.unlink()
    if out.exists() and resume:
        shutil.copyfile(out, tmp)  # the complete proteins of out, continued in the copy
        os.replace(tmp, staging)
    elif out.exists():
        log(f"{out} will be replaced when this run finishes (--resume keeps its proteins)")
    return False


def _readable(path: Path) -> bool:
    """Ours, and every protein's entry and marking attribute can be read (metadata only, no arrays)."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            if not _ours(h5):
                return False
            for group in ("per_residue", "per_protein"):
                for name in h5.get(group, ()):
                    h5[group][name].attrs.get("sequence_md5")
        return True
    except Exception:
        return False


def _salvage(staging: Path, tmp: Path, log) -> bool:
    """A kill while HDF5 wrote its index can leave a staging file whose entries cannot all be read; copy
    every protein that still reads in full into a fresh staging file, so --resume recomputes only the rest.
    True when the interrupted run is continued (anything was kept)."""
    import h5py

    kept = lost = 0
    try:
        with h5py.File(staging, "r") as src, h5py.File(tmp, "w") as dst:
            for name, value in src.attrs.items():
                dst.attrs[name] = value
            for group in ("per_residue", "per_protein"):
                dst.require_group(group)
                for name in _names(src, group):
                    try:
                        ds = src[group][name]
                        attrs = dict(ds.attrs)
                        data = ds[()]
                    except Exception:
                        lost += 1
                        continue
                    if "sequence_md5" not in attrs:  # written but not marked complete
                        continue
                    dst[group].create_dataset(name, data=data)
                    dst[group][name].attrs.update(attrs)
                    kept += 1
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        log(f"{staging}, the interrupted run's file, cannot be read ({type(exc).__name__}: {exc}); "
            "starting again")
        return False
    log(f"{staging}, the interrupted run's file, was damaged by the kill: {kept} embeddings that read back "
        f"in full are kept, {lost} unreadable ones will be computed again")
    if not kept:
        tmp.unlink()
        return False
    fsync(tmp)
    os.replace(tmp, staging)
    return True


def _names(h5, group: str) -> list[str]:
    """The entries of a group that can be listed (a damaged index may end the listing early)."""
    names: list[str] = []
    try:
        for name in h5.get(group, ()):
            names.append(name)
    except Exception:
        pass
    return names


def _fill(h5, predictor, records, groups, key, task, chunk_size, resume, on_chunk, model_name, run,
          allow_nucleotides) -> None:
    """Embed every protein not yet complete in `h5`, chunk by chunk, flushing after each."""
    fingerprint = predictor.meta.get("fingerprint", "")
    if resume:
        for name, ours in (("task_row", task), ("fingerprint", fingerprint)):
            theirs = h5.attrs.get(name)
            if theirs is not None and ours and theirs != ours:
                raise ValueError(f"the embeddings to resume were made with another {name.replace('_', ' ')} "
                                 f"({theirs!r}, now {ours!r}): resume with the same, or start again without --resume")
    h5.attrs.update({"format": FORMAT, "model": model_name, "fingerprint": fingerprint, "task_row": task,
                     "kind": predictor.kind,
                     "states": "final hidden states before the output head; per_protein = mean over residues"})
    for group in groups:
        h5.require_group(group)
    h5.flush()  # one of ours from the start, so a kill before the first chunk leaves it resumable
    chunk: list = []

    def flush():
        states = predictor.embed([r.sequence for r in chunk], task=task, allow_nucleotides=allow_nucleotides)
        for record, residues in zip(chunk, states):
            name = protein_key(record, key)
            if "per_residue" in groups:
                _write(h5, "per_residue", name, residues, record)
            if "per_protein" in groups:
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


def embed_fasta(predictor, fasta: str | Path, out: str | Path, skip_invalid: bool = False, progress: bool = False,
                allow_nucleotides: bool = False, **options) -> EmbedRun:
    """embed_to_h5 over a FASTA file read strictly and lazily (bad records skipped and counted with
    skip_invalid; a DNA- or RNA-looking record is a bad one unless allow_nucleotides), with a progress bar
    if asked."""
    from tqdm import tqdm

    skipped = SkipReport()
    records = read_fasta(fasta, skip_invalid=skip_invalid, report=skipped, allow_nucleotides=allow_nucleotides)
    with tqdm(unit=" proteins", disable=not progress, desc="embed") as bar:
        run = embed_to_h5(predictor, records, out, on_chunk=bar.update, allow_nucleotides=allow_nucleotides, **options)
    run.skipped = skipped
    return run
