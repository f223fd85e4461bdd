"""The alignment baseline: MMseqs2 searching the query proteins against databases of growing size.

Finding homologues is the first step of every alignment-based predictor (an MSA or a profile is built from
the hits), so its cost is a lower bound on theirs. Here:

- databases of 5k, 10k and 20k real UniProtKB sequences (the first N of MMseqs2's example `DB.fasta`), and
  larger ones made of those 20k plus residue-shuffled copies (each copy keeps a real protein's length and
  composition, so the k-mer prefilter, which dominates the cost, does the same work per sequence; shuffled
  copies have no true homologues, so fewer hits reach the alignment stage than in a real database of that
  size, which if anything makes MMseqs2 look faster than it is);
- per size: `mmseqs createdb` (database preparation, done once per database in real use, timed apart),
  then `mmseqs search` + `mmseqs convertalis` of the same query proteins (the per-query cost);
- `mmseqs easy-search` of the queries against the 20k database, end to end: the one command a user would
  run, the figure `dbmtl predict` is compared with directly;
- fits of search time against database size, extrapolated to UniRef50 (dbmtl.benchmark.fits).

Every run is a child process timed by wall clock, with its CPU time and peak resident memory from wait4
(see dbmtl.benchmark.timing.run_timed).
Nothing here needs MMseqs2 to import; `find_mmseqs()` says whether it is installed
(`bash scripts/setup_benchmark.sh` installs the Debian package `mmseqs2`).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..readers.fasta import read_fasta
from .fits import fit_all
from .timing import Timed, run_timed


def find_mmseqs() -> str | None:
    return shutil.which("mmseqs")


def mmseqs_version(exe: str) -> str:
    try:
        return subprocess.run([exe, "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- databases ------------------------------------------------------------------------------------
def write_fasta(path: Path, records: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """Write records; returns (sequences, residues)."""
    n = residues = 0
    with open(path, "w") as fh:
        for rid, seq in records:
            fh.write(f">{rid}\n{seq}\n")
            n += 1
            residues += len(seq)
    return n, residues


def database_records(real: Sequence[tuple[str, str]], size: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """The first `size` real sequences, or all of them followed by residue-shuffled copies up to `size`.
    Copy c is drawn from its own generator, protein after protein, so any size is a prefix of any larger
    one and the same seed gives the same database."""
    yield from real[:size]
    extra = size - len(real)
    copy = 0
    while extra > 0:
        copy += 1
        rng = np.random.default_rng([seed, copy])
        for rid, seq in real[: min(extra, len(real))]:
            letters = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
            yield f"shuffled{copy}_{rid}", rng.permutation(letters).tobytes().decode("ascii")
        extra -= len(real)


def read_real(db_fasta: Path) -> list[tuple[str, str]]:
    return [(r.id, r.sequence) for r in read_fasta(db_fasta)]


# -- the run --------------------------------------------------------------------------------------
def run_mmseqs_baseline(query_fasta: Path, db_fasta: Path, sizes: Sequence[int], work: Path, threads: int,
                        exe: str | None = None, seed: int = 0, repeats: int = 1, easy_search_size: int = 20_000,
                        log=print) -> dict:
    """Time MMseqs2 at every database size; returns a JSON-ready dict (see the module docstring)."""
    exe = exe or find_mmseqs()
    if exe is None:
        raise FileNotFoundError("mmseqs not found; run `bash scripts/setup_benchmark.sh` (Debian package mmseqs2)")
    work.mkdir(parents=True, exist_ok=True)
    logfile = work / "mmseqs.log"
    real = read_real(db_fasta)
    n_queries = sum(1 for _ in read_fasta(query_fasta, check_duplicates=False))
    qdb = work / "query_db"
    _remove(qdb)
    prep = run_timed([exe, "createdb", query_fasta, qdb, "-v", "1"], log=logfile)
    _check(prep, "createdb (queries)", logfile)
    result = {"version": mmseqs_version(exe), "threads": threads, "queries": n_queries,
              "query_fasta": str(query_fasta), "db_source": str(db_fasta), "real_sequences": len(real),
              "sensitivity": "default (-s 5.7)", "sizes": []}
    es_fasta = work / f"db_{easy_search_size}.fasta"
    for size in sorted(set(sizes)):
        fasta = work / f"db_{size}.fasta"
        _, residues = write_fasta(fasta, database_records(real, size, seed))
        db = work / f"db_{size}"
        made = run_timed([exe, "createdb", fasta, db, "-v", "1"], log=logfile)
        _check(made, f"createdb {size}", logfile)
        best = None
        aln, tmp, m8 = work / f"aln_{size}", work / f"tmp_{size}", work / f"hits_{size}.m8"
        for _ in range(max(1, repeats)):
            _remove(aln, tmp, m8)
            search = run_timed([exe, "search", qdb, db, aln, tmp, "--threads", threads, "-v", "1"], log=logfile)
            _check(search, f"search {size}", logfile)
            conv = run_timed([exe, "convertalis", qdb, db, aln, m8, "--threads", threads, "-v", "1"], log=logfile)
            _check(conv, f"convertalis {size}", logfile)
            total = search.wall_s + conv.wall_s
            if best is None or total < best["search_wall_s"]:
                with open(m8) as fh:
                    hits = sum(1 for _ in fh)
                best = {"search_wall_s": total, "search_cpu_s": search.cpu_s + conv.cpu_s,
                        "search_max_rss_mib": max(search.max_rss_mib, conv.max_rss_mib), "hits": hits,
                        "hit_queries": len({line.split("\t", 1)[0] for line in open(m8)})}
        entry = {"size": size, "real": min(size, len(real)), "shuffled": max(0, size - len(real)),
                 "residues": residues, "createdb_wall_s": made.wall_s, **best,
                 "ms_per_query": 1000 * best["search_wall_s"] / n_queries}
        log(f"mmseqs: {size:>9,} sequences  createdb {made.wall_s:6.1f} s  search {best['search_wall_s']:7.1f} s "
            f"({entry['ms_per_query']:.1f} ms/query, {best['hits']:,} hits)")
        result["sizes"].append(entry)
        _remove(aln, tmp, m8, db)
        if fasta != es_fasta:
            _remove(fasta)
    # the command a user would run: easy-search end to end (createdb of both sides, search, convertalis)
    if not es_fasta.exists():
        write_fasta(es_fasta, database_records(real, easy_search_size, seed))
    tmp = work / "tmp_easy"
    _remove(tmp, work / "easy.m8")
    es = run_timed([exe, "easy-search", query_fasta, es_fasta, work / "easy.m8", tmp, "--threads", threads, "-v", "1"],
                   log=logfile)
    _check(es, "easy-search", logfile)
    result["easy_search"] = {"size": easy_search_size, **asdict(es), "ms_per_query": 1000 * es.wall_s / n_queries}
    log(f"mmseqs: easy-search against {easy_search_size:,}: {es.wall_s:.1f} s ({1000 * es.wall_s / n_queries:.1f} ms/query)")
    _remove(tmp, es_fasta, work / "easy.m8", qdb)
    sz = [e["size"] for e in result["sizes"]]
    sec = [e["search_wall_s"] for e in result["sizes"]]
    result["fits"] = fit_all(sz, sec, len(real))
    for f in result["fits"].values():
        f["ms_per_query_at_uniref50"] = 1000 * f["predicted_s"] / n_queries
        spread = f.get("ci95_s") or f.get("jackknife_s")
        f["ms_per_query_range"] = [1000 * v / n_queries for v in spread] if spread else None
    return result


def _check(t: Timed, what: str, logfile: Path) -> None:
    if t.returncode != 0:
        tail = logfile.read_text()[-2000:] if logfile.exists() else ""
        raise RuntimeError(f"mmseqs {what} failed (exit {t.returncode}); log {logfile}:\n{tail}")


def _remove(*paths: Path) -> None:
    """Delete files, folders, and an MMseqs2 database's companion files (NAME.index, NAME_h, ...)."""
    for p in map(Path, paths):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()
        if p.suffix in (".fasta", ".m8") or not p.parent.exists():
            continue
        for pattern in (p.name + ".*", p.name + "_h", p.name + "_h.*"):
            for f in p.parent.glob(pattern):
                if f.is_file() and f.suffix != ".fasta":
                    f.unlink()
