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
- `mmseqs easy-search` of the queries against the 20k database, end to end, the issue's reference figure;
- fits of search time against database size, extrapolated to UniRef50 (about 53 million sequences).

Every run is a child process timed by wall clock, with its CPU time and peak resident memory from wait4
(see run_timed).
Nothing here needs MMseqs2 to import; `find_mmseqs()` says whether it is installed
(`bash scripts/setup_benchmark.sh` installs the Debian package `mmseqs2`).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..readers.fasta import read_fasta

UNIREF50_SEQUENCES = 53_000_000  # UniRef50, order of magnitude of current releases (about 53 million)


def find_mmseqs() -> str | None:
    return shutil.which("mmseqs")


def mmseqs_version(exe: str) -> str:
    try:
        return subprocess.run([exe, "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class Timed:
    """One command: wall seconds, CPU seconds (user + system), peak resident memory in MiB, exit status."""
    wall_s: float
    cpu_s: float
    max_rss_mib: float
    returncode: int


# A tiny interpreter (standard library only) between us and the measured command. It forks the command,
# waits for it with wait4 and reports its wall time, CPU time and peak RSS. Why not fork the command from
# here: Linux carries the RSS of the process that forks over exec into the child's ru_maxrss, so a child of
# this (large) process would report at least our memory; a child of the wrapper starts from ~10 MB.
_WRAPPER = r"""
import json, os, subprocess, sys, time
report, pidfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.perf_counter()
try:
    proc = subprocess.Popen(cmd)
except OSError as exc:
    print(f"cannot run {cmd[0]}: {exc}", file=sys.stderr)
    json.dump({"wall_s": 0.0, "cpu_s": 0.0, "max_rss_mib": 0.0, "returncode": 127}, open(report, "w"))
    sys.exit(0)
with open(pidfile + ".tmp", "w") as fh:
    fh.write(str(proc.pid))
os.replace(pidfile + ".tmp", pidfile)
_, status, usage = os.wait4(proc.pid, 0)
json.dump({"wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
           "max_rss_mib": usage.ru_maxrss / 1024, "returncode": os.waitstatus_to_exitcode(status)}, open(report, "w"))
"""


def run_timed(cmd: Sequence[str], cwd: str | Path | None = None, log: Path | None = None,
              env: dict | None = None, on_poll=None, poll_s: float = 0.5) -> Timed:
    """Run a command to completion: wall seconds, CPU seconds and peak resident memory (ru_maxrss, over the
    command and the processes it waited for) of that command alone. on_poll(pid) is called with the
    command's pid every poll_s seconds while it runs (used to sample its memory)."""
    with tempfile.TemporaryDirectory(prefix="dbmtl-timed-") as tmp:
        report, pidfile = Path(tmp) / "report.json", Path(tmp) / "pid"
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            proc = subprocess.Popen([sys.executable, "-S", "-c", _WRAPPER, str(report), str(pidfile), *map(str, cmd)],
                                    cwd=cwd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                    env=env)
            if on_poll is None:
                proc.wait()
            else:
                child = None
                while proc.poll() is None:
                    if child is None and pidfile.exists():
                        child = int(pidfile.read_text())
                    if child is not None:
                        on_poll(child)
                    time.sleep(poll_s)
        finally:
            if log:
                out.close()
        if not report.exists():
            return Timed(0.0, 0.0, 0.0, proc.returncode or 1)
        r = json.loads(report.read_text())
    return Timed(r["wall_s"], r["cpu_s"], r["max_rss_mib"], r["returncode"])


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


# -- fits -----------------------------------------------------------------------------------------
def fit_linear(sizes: Sequence[float], seconds: Sequence[float], at: float = UNIREF50_SEQUENCES) -> dict:
    """t = a + b N, least squares on relative errors (each point weighted 1/t, as the noise of a timing
    scales with it). Returns the coefficients with standard errors, the relative residuals and the value
    at N = `at` with a 95% interval from the coefficients' covariance (Student t, n - 2 dof)."""
    N, t = np.asarray(sizes, float), np.asarray(seconds, float)
    X = np.stack([np.ones_like(N), N], 1) / t[:, None]
    y = np.ones_like(t)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef  # relative residuals
    dof = max(1, len(t) - 2)
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(X.T @ X)
    g = np.array([1.0, at])
    pred, se = float(g @ coef), float(math.sqrt(max(0.0, g @ cov @ g)))
    tq = _t_quantile(dof)
    return {
        "model": "t = a + b*N (weighted least squares, relative errors)",
        "a_s": float(coef[0]), "a_se_s": float(math.sqrt(cov[0, 0])),
        "b_s_per_million": float(coef[1] * 1e6), "b_se_s_per_million": float(math.sqrt(cov[1, 1]) * 1e6),
        "relative_residuals": [float(r) for r in resid],
        "rms_relative_error": float(math.sqrt(float(resid @ resid) / len(t))),
        "at": at, "predicted_s": pred, "ci95_s": [pred - tq * se, pred + tq * se],
    }


def _fit_offset_power(N: np.ndarray, t: np.ndarray, grid: np.ndarray) -> tuple[float, float, float, float]:
    """Best (a, b, c, loss) of t = a + b N^c over the exponent grid; a, b >= 0 by weighted least squares."""
    best = (0.0, 0.0, 1.0, math.inf)
    for c in grid:
        X = np.stack([np.ones_like(N), N**c], 1) / t[:, None]
        coef, *_ = np.linalg.lstsq(X, np.ones_like(t), rcond=None)
        if coef[0] < 0:  # no negative start-up cost: fit the power law alone
            coef = np.array([0.0, float(np.linalg.lstsq(X[:, 1:], np.ones_like(t), rcond=None)[0][0])])
        if coef[1] <= 0:
            continue
        resid = np.ones_like(t) - X @ coef
        loss = float(resid @ resid)
        if loss < best[3]:
            best = (float(coef[0]), float(coef[1]), float(c), loss)
    return best


def fit_power(sizes: Sequence[float], seconds: Sequence[float], at: float = UNIREF50_SEQUENCES) -> dict:
    """t = a + b N^c (a: the per-run cost that does not grow with the database; c < 1: sub-linear growth),
    least squares on relative errors, c on a grid from 0.2 to 1.5. Uncertainty by jackknife: the fit is
    repeated leaving out each size in turn, and the spread of c and of the value at N = `at` is reported."""
    N, t = np.asarray(sizes, float), np.asarray(seconds, float)
    grid = np.arange(0.2, 1.5001, 0.005)
    a, b, c, loss = _fit_offset_power(N, t, grid)
    pred = a + b * at**c
    model = a + b * N**c
    jack_c, jack_pred = [], []
    if len(t) >= 4:
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            ja, jb, jc, _ = _fit_offset_power(N[keep], t[keep], grid)
            jack_c.append(jc)
            jack_pred.append(ja + jb * at**jc)
    return {
        "model": "t = a + b*N^c (least squares on relative errors; jackknife over sizes)",
        "a_s": a, "b": b, "c": c,
        "c_jackknife": [min(jack_c), max(jack_c)] if jack_c else None,
        "relative_residuals": [float(x) for x in (t - model) / model],
        "rms_relative_error": float(math.sqrt(float(np.mean(((t - model) / model) ** 2)))),
        "at": at, "predicted_s": float(pred),
        "jackknife_s": [float(min(jack_pred)), float(max(jack_pred))] if jack_pred else None,
    }


def _t_quantile(dof: int) -> float:
    """Two-sided 95% Student t quantile (table; no scipy)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    return table.get(dof, 2.0 if dof > 10 else 12.706)


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
    # the reference: easy-search end to end (createdb of both sides, search, convertalis)
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


def fit_all(sizes: Sequence[int], seconds: Sequence[float], n_real: int) -> dict:
    """The fits reported, each on the sizes where it applies (at least 3 sizes each):

    linear_large  t = a + b N on the databases larger than the real set (mostly shuffled copies): the regime
                  whose marginal cost per sequence no longer changes, the one that extrapolates (primary);
    linear_real   t = a + b N on the real sequences only: their homologues make each sequence dearer;
    linear_all    t = a + b N on every size;
    power_all     t = a + b N^c on every size (c < 1 here comes from the real-to-shuffled transition).
    """
    pairs = sorted(zip(sizes, seconds))
    groups = {"linear_large": [p for p in pairs if p[0] > n_real], "linear_real": [p for p in pairs if p[0] <= n_real],
              "linear_all": pairs, "power_all": pairs}
    fits = {}
    for name, group in groups.items():
        if len(group) >= 3:
            fit = (fit_power if name.startswith("power") else fit_linear)([n for n, _ in group], [t for _, t in group])
            fit["sizes"] = [n for n, _ in group]
            fits[name] = fit
    return fits


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
