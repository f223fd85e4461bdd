"""`predict_fasta`: a FASTA file of any size -> prediction files, chunk by chunk, without ever losing work.

The loop the CLI, the benchmark and the web service share. The guarantees, and how:
- Nothing already in the output folder is touched until the run is complete. A run writes into a staging
  folder inside it (`.dbmtl-predict/`); at the end its files replace the old ones.
- Each chunk of `chunk_size` proteins reaches all three files together: the files are fsynced, then a
  journal (`journal.json`, replaced atomically) records how many proteins are done, the files' sizes,
  and a digest chained over the finished proteins' ids and sequences. A kill or a full disk at any byte
  leaves the journal of the last complete chunk; `resume` cuts the files back to it and continues.
- `resume` checks that the input and the options are the ones of the run it continues: the options are
  stored in the journal, and the first proteins of the input must chain to the journal's digest (so a
  later bad record may be fixed, but a changed protein is refused). This works for pipes too. After a
  finished run, `resume` does nothing only when the input is still the one predicted; an edited or
  extended input is refused (its predictions would be stale or missing).
- One run at a time per output folder: a lock in the staging folder (`durable.exclusive`) refuses a
  second run at once. A run that fails before finishing any protein leaves no staging folder, and no
  output folder if it created it.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..durable import exclusive, fsync, make_folder, remove_empty, write_atomic
from ..readers.fasta import SkipReport, read_fasta
from ..tasks import OUTPUT_TASKS
from .predictor import Predictor, check_tasks
from .formats import STRUCTURE_FILE, check_formats, publish_folders
from .writers import JSONL_FILE, PROTEIN_FILE, RESIDUE_FILE, PredictionWriter

STAGING = ".dbmtl-predict"
JOURNAL = "journal.json"
LOCK = "lock"  # in the staging folder: held by the run writing this output folder
RECORD = ".dbmtl-predict.json"  # kept beside the published files: what run made them
OUTPUT_FILES = (RESIDUE_FILE, PROTEIN_FILE, JSONL_FILE, STRUCTURE_FILE)  # and --formats' folders (formats.py)
FORMAT = "dbmtl-predict-journal/1"


class ResumeError(ValueError):
    """--resume cannot continue: no interrupted run, or one made from another input or other options."""


@dataclass
class PredictionRun:
    """What a predict_fasta call did: proteins predicted now, proteins kept from an interrupted run,
    records skipped (with skip_invalid), and whether the outputs were published."""

    written: int = 0
    resumed: int = 0
    skipped: SkipReport = field(default_factory=SkipReport)
    complete: bool = False


@dataclass
class Journal:
    options: dict
    proteins: int = 0
    chain: str = ""
    sizes: dict = field(default_factory=dict)
    chunks: int = 0
    ends: list = field(default_factory=list)  # sharded runs: the files' sizes after the header and each chunk
    state: str = "running"  # "running", "written" (every chunk done), "publishing", "complete"
    format: str = FORMAT

    @classmethod
    def load(cls, path: Path) -> "Journal":
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ResumeError(f"{path} is damaged ({exc}); start the run again without --resume") from None

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=1))


def chain(digest: str, record) -> str:
    """The journal's digest after one more finished protein."""
    return hashlib.sha256(f"{digest}\n{record.id}\n{record.sequence}".encode()).hexdigest()


def prepare_output(out_dir: str | Path) -> tuple[Path, list[Path]]:
    """The output folder, created if needed, and the folders this created; a clear error when it cannot
    hold the run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder")
    made = make_folder(out)
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {out} is not writable")
    return out, made


@dataclass(frozen=True)
class Shard:
    """This process's share of a prediction run under torchrun: chunk k of the input goes to rank
    k % world; rank 0 merges the ranks' files, in input order, into the same output one process writes."""

    rank: int = 0
    world: int = 1

    @classmethod
    def join(cls) -> "Shard":
        """The torchrun process group when there is one (gloo: only barriers travel), else one process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        return cls(dist.get_rank(), world)

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def leave(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def predict_fasta(predictor: Predictor, fasta: str | Path, out_dir: str | Path,
                  tasks: Sequence[str] = OUTPUT_TASKS, chunk_size: int = 256, resume: bool = False,
                  skip_invalid: bool = False, on_chunk: Callable[[int], None] | None = None,
                  log: Callable[[str], None] = lambda message: None, shard: Shard = Shard(),
                  formats: Sequence[str] = (), allow_nucleotides: bool = False) -> PredictionRun:
    """Predict every protein of `fasta` (a path, or '-' for standard input) into `out_dir`
    (residues.tsv, proteins.tsv, predictions.jsonl, and the extra `formats`: dbmtl.inference.formats).
    `on_chunk(n)` is called after each chunk of n proteins is durable (progress bars). A bad record stops
    the run with FastaFormatError; the proteins before it stay in the staging folder and `resume`
    continues once the record is fixed. Under torchrun (`shard`), every process reads the input and
    predicts its chunks; the merged files equal one process's."""
    tasks = check_tasks(tasks)
    formats = check_formats(formats, tasks)
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, not {chunk_size}")
    if shard.world > 1 and str(fasta) == "-":
        raise ValueError("standard input cannot be split over processes: give a file")
    out, made = prepare_output(out_dir)
    staging = out / STAGING
    try:
        with exclusive(staging / LOCK, f"output folder {out}") if shard.rank == 0 else nullcontext():
            try:
                return _predict(predictor, fasta, out, tasks, chunk_size, resume, skip_invalid, on_chunk, log, shard,
                                formats, allow_nucleotides)
            except BaseException:
                if shard.world == 1 and _kept(staging) == 0:  # nothing worth resuming: no staging left behind
                    _clear(staging)
                raise
    finally:
        if shard.rank == 0:
            try:
                staging.rmdir()  # empty once published or cleared; an interrupted run's stays
            except OSError:
                pass
            remove_empty(made)


def _predict(predictor: Predictor, fasta, out: Path, tasks: tuple[str, ...], chunk_size: int, resume: bool,
             skip_invalid: bool, on_chunk, log, shard: Shard, formats: tuple[str, ...],
             allow_nucleotides: bool = False) -> PredictionRun:
    """predict_fasta inside its output folder, holding its lock."""
    staging = out / STAGING
    work = staging if shard.world == 1 else staging / f"rank{shard.rank}"
    options = {"model": predictor.meta.get("fingerprint", ""), "tasks": list(tasks),
               "dtype": str(predictor.dtype).removeprefix("torch."), "int8": predictor.int8,
               "chunk_size": chunk_size, "processes": shard.world, **({"formats": list(formats)} if formats else {})}
    run = PredictionRun()
    records = read_fasta(fasta, skip_invalid=skip_invalid, report=run.skipped, allow_nucleotides=allow_nucleotides)
    first = next(records, None)  # an unreadable input or a bad first record stops here, nothing touched
    if first is None:
        raise ValueError(f"{fasta}: no proteins to predict" + (f" ({run.skipped.summary()})" if run.skipped.total else ""))
    records = itertools.chain([first], records)
    if resume:
        staged = Journal.load(staging / JOURNAL) if (staging / JOURNAL).exists() else None
        if staged is not None and staged.state == "publishing":
            shard.barrier()
            journal = staged
            if shard.rank == 0:
                _publish(out, staging, journal)
            run.resumed, run.complete = journal.proteins, True
            shard.barrier()
            return run
        journal = _resumable(out, work, options)
        if journal.state == "complete":  # the last run finished with these options: nothing to do if same input
            _check_finished(records, journal, fasta, out)
            run.resumed = journal.proteins
            run.complete = True
            return run
        run.resumed = journal.proteins
    else:
        if shard.rank == 0:
            if (staging / JOURNAL).exists() or (staging / "rank0" / JOURNAL).exists():
                log(f"discarding the interrupted run in {staging} (rerun with --resume to continue one)")
            _clear(staging)
            staging.mkdir(exist_ok=True)
        shard.barrier()
        work.mkdir(exist_ok=True)
        journal = Journal(options)
    with PredictionWriter(work, tasks, sizes=journal.sizes or None, formats=formats) as writer:  # cut back to the journal
        if not journal.sizes:
            journal.sizes = writer.commit()
            journal.ends = [journal.sizes] if shard.world > 1 else []
            journal.save(work / JOURNAL)
        own = (chunk for k, chunk in enumerate(_chunks(records, chunk_size)) if k % shard.world == shard.rank)
        _skip_finished(own, journal, fasta)
        for chunk in own:
            writer.write(predictor.predict(chunk, tasks=tasks, allow_nucleotides=True))  # read_fasta applied the rule
            journal.sizes = writer.commit()
            journal.chunks += 1
            if shard.world > 1:
                journal.ends.append(journal.sizes)
            for record in chunk:
                journal.chain = chain(journal.chain, record)
            journal.proteins += len(chunk)
            journal.save(work / JOURNAL)
            run.written += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    journal.state = "written"
    journal.save(work / JOURNAL)
    shard.barrier()
    if shard.rank == 0:
        if shard.world > 1:
            journal = _merge(staging, shard.world, options)
            run.written = journal.proteins - run.resumed  # rank 0 reports the whole run
        journal.state = "publishing"
        journal.save(staging / JOURNAL)
        _publish(out, staging, journal)
    shard.barrier()
    run.complete = True
    return run


def _merge(staging: Path, world: int, options: dict) -> Journal:
    """Interleave the ranks' chunks back into input order: chunk k is chunk k // world of rank k % world."""
    ranks = [Journal.load(staging / f"rank{r}" / JOURNAL) for r in range(world)]
    merged = Journal(options, proteins=sum(j.proteins for j in ranks), sizes={},
                     chain=_combined([j.chain for j in ranks]))
    chunks = sum(j.chunks for j in ranks)
    for name in ranks[0].sizes:
        sources = [open(staging / f"rank{r}" / name, "rb") for r in range(world)]
        with open(staging / name, "wb") as dst:
            dst.write(sources[0].read(ranks[0].ends[0][name]))  # the header, once
            for k in range(chunks):
                r, j = k % world, k // world
                start, end = ranks[r].ends[j][name], ranks[r].ends[j + 1][name]
                sources[r].seek(start)
                dst.write(sources[r].read(end - start))
            dst.flush()
            os.fsync(dst.fileno())
            merged.sizes[name] = dst.tell()
        for fh in sources:
            fh.close()
    return merged


def _combined(chains: list[str]) -> str:
    """A sharded run's digest: its ranks' chains, in rank order."""
    return hashlib.sha256("\n".join(chains).encode()).hexdigest()


def _check_finished(records: Iterable, journal: Journal, fasta, out: Path) -> None:
    """A finished run is kept only for the input it predicted: an edited protein would leave stale rows,
    an added one none at all."""
    world, size = journal.options.get("processes", 1), journal.options["chunk_size"]
    chains, count = [""] * world, 0
    for k, chunk in enumerate(_chunks(records, size)):
        for record in chunk:
            chains[k % world] = chain(chains[k % world], record)
        count += len(chunk)
    digest = chains[0] if world == 1 else _combined(chains)
    if count != journal.proteins or digest != journal.chain:
        what = ("some of its proteins changed" if count == journal.proteins
                else f"it has {count} proteins, the finished run {journal.proteins}")
        raise ResumeError(f"{fasta} is not the input of the finished run in {out} ({what}): its predictions would "
                          "be stale or missing; start again without --resume")


def _kept(staging: Path) -> int:
    """Proteins an interrupted run has finished in `staging` (a damaged journal counts as some)."""
    total = 0
    for path in [staging / JOURNAL, *staging.glob(f"rank*/{JOURNAL}")]:
        try:
            total += json.loads(path.read_text()).get("proteins", 1)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError):
            return 1
    return total


def _clear(staging: Path) -> None:
    """Empty the staging folder but for its lock (which its holder removes)."""
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _chunks(records: Iterable, size: int):
    chunk: list = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _resumable(out: Path, staging: Path, options: dict) -> Journal:
    """The interrupted run's journal, checked against this run's options; or, when there is none, the
    record of a finished run with the same options (state "complete": nothing to resume)."""
    if not (staging / JOURNAL).exists():
        finished = Journal.load(out / RECORD) if (out / RECORD).exists() else None
        if finished is not None and finished.options == options:
            return finished
        raise ResumeError(f"nothing to resume in {out}: no interrupted run (start without --resume)")
    journal = Journal.load(staging / JOURNAL)
    if journal.options != options:
        changed = sorted(k for k in options if journal.options.get(k) != options[k])
        raise ResumeError(f"the interrupted run in {out} used other options ({', '.join(changed)}: "
                          f"{', '.join(f'{k}={journal.options.get(k)!r}' for k in changed)}); "
                          "resume with the same ones, or start again without --resume")
    return journal


def _skip_finished(own_chunks, journal: Journal, fasta) -> None:
    """Consume this process's first chunks, checking they hold the proteins the journal finished."""
    digest = ""
    for _ in range(journal.chunks):
        chunk = next(own_chunks, None)
        if chunk is None:
            raise ResumeError(f"{fasta} is shorter than the interrupted run's input: the input changed; "
                              "start again without --resume")
        for record in chunk:
            digest = chain(digest, record)
    if digest != journal.chain:
        raise ResumeError(f"the first {journal.proteins} proteins of {fasta} are not the ones the interrupted "
                          "run predicted: the input changed; start again without --resume")


def _previous_formats(out: Path) -> tuple[str, ...]:
    """The extra formats of the run that made the published files (a damaged record: none), whose
    folders a run without them removes."""
    try:
        return tuple(Journal.load(out / RECORD).options.get("formats", ())) if (out / RECORD).exists() else ()
    except ResumeError:
        return ()


def _publish(out: Path, staging: Path, journal: Journal) -> None:
    """Move the finished files over the old ones (any of ours this run did not make is removed), then
    record the run and drop the staging folder. Safe to repeat after a crash half-way."""
    made = [name for name in OUTPUT_FILES if name in journal.sizes]
    for name in made:
        if (staging / name).exists():
            (staging / name).replace(out / name)
    for name in set(OUTPUT_FILES) - set(made):
        (out / name).unlink(missing_ok=True)
    publish_folders(out, staging, journal.sizes, _previous_formats(out))
    fsync(out)
    journal.state = "complete"
    journal.save(out / RECORD)
    _clear(staging)
