"""First prediction latency: how long a user waits for the answer about one protein. Measured as the real
`dbmtl predict ONE.fasta -o DIR` in a fresh process, from its start (interpreter, imports, model loading)
to its exit with the files written; the best of a few runs, as every timing here, so the file cache is warm.
Beside it, the time until the model is loaded: the same command line parsed and its predictor built in a
fresh process, which then exits."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .mmseqs import write_fasta
from .timing import Timed, run_timed

TARGET_S = 2.0  # a first answer within 2 s of the command

# What `dbmtl predict` does before it reads the input: its arguments parsed, its predictor built.
_LOAD_ONLY = ("import sys; from dbmtl.cli.parser import build_parser; from dbmtl.cli.commands import _predictor; "
              "_predictor(build_parser().parse_args(sys.argv[1:]))")


def predict_arguments(fasta: Path, out: Path, model: str, threads: int, device: str) -> list[str]:
    """`dbmtl predict` of one file with predict's defaults (float32, all outputs), the benchmark's threads."""
    return ["predict", str(fasta), "-o", str(out), "--model", model, "--threads", str(threads), "--device", device,
            "--quiet"]


def first_prediction(record: tuple[str, str], model: str, threads: int, device: str, work: Path,
                     repeats: int = 3) -> dict:
    """Wall seconds of `repeats` runs of `dbmtl predict` on one protein (the command run as
    `python -m dbmtl.cli` with this interpreter, so that it is this installation's), each into an empty
    folder, and of as many runs that stop once the model is loaded."""
    fasta, out, log = work / "first.fasta", work / "first_out", work / "latency.log"
    write_fasta(fasta, [record])
    args = predict_arguments(fasta, out, model, threads, device)
    runs, loads = [], []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        runs.append(_checked(run_timed([sys.executable, "-m", "dbmtl.cli", *args], log=log), log))
        loads.append(_checked(run_timed([sys.executable, "-c", _LOAD_ONLY, *args], log=log), log))
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    shutil.rmtree(out, ignore_errors=True)
    best = min(t.wall_s for t in runs)
    shown = predict_arguments(Path("ONE.fasta"), Path("OUT"), model, threads, device)
    return {"command": "dbmtl " + " ".join(shown), "protein": record[0], "residues": len(record[1]),
            "repeats": repeats, "wall_s": [t.wall_s for t in runs], "best_s": best,
            "max_rss_mib": max(t.max_rss_mib for t in runs), "written": written,
            "model_loaded_s": [t.wall_s for t in loads], "model_loaded_best_s": min(t.wall_s for t in loads),
            "target_s": TARGET_S, "met": best <= TARGET_S}


def _checked(t: Timed, log: Path) -> Timed:
    if t.returncode != 0:
        raise RuntimeError(f"benchmark: first prediction failed (exit {t.returncode}); see {log}:\n"
                           + log.read_text()[-3000:])
    return t
