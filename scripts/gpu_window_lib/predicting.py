"""`gpu_window.py run` (there): the best weights exported to $OUT as they improve, and `dbmtl predict`
timed on the packed corpus with them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def export_best(run_dir: Path, out: Path, work: Path) -> Path:
    """`dbmtl export RUN/best DEST --dtype float16`, then DEST as one tar in $OUT (replaced atomically)."""
    from dbmtl.cli import main as dbmtl

    dest = work / "best_fp16"
    shutil.rmtree(dest, ignore_errors=True)
    if dbmtl(["export", str(run_dir / "best"), str(dest), "--dtype", "float16"]) != 0:
        raise RuntimeError("dbmtl export failed")
    tmp = out / "best.tar.tmp"
    with tarfile.open(tmp, "w") as tar:
        tar.add(dest, arcname="best")
    tmp.replace(out / "best.tar")
    return dest


def predict_input(corpus: list[Path], n: int, path: Path) -> int:
    """The first `n` proteins of the packed corpus files (UniRef samples first), as one FASTA."""
    from dbmtl.readers.fasta import read_fasta

    written = 0
    with open(path, "w") as fh:
        for source in sorted(corpus, key=lambda p: ("uniref" not in p.name, p.name)):
            for record in read_fasta(source):
                if written == n:
                    return written
                fh.write(f">{record.id}\n{record.sequence}\n")
                written += 1
    return written


def time_predict(model: Path, fasta: Path, n: int, out: Path, device: str, dtype: str, procs: int,
                 timeout_s: float) -> dict:
    """Wall time of the whole `dbmtl predict` command (start-up, loading, prediction, the three output
    files) on `n` proteins, as `procs` processes sharing the device when more than one (torchrun: each
    writes its chunks, rank 0 merges them; the output files are Python-formatted text, so one process
    leaves a GPU waiting on them); cut off at `timeout_s`, the proteins its journals finished count instead."""
    from dbmtl.inference.stream import JOURNAL, STAGING, Journal

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    cmd = [sys.executable, *launcher, "-m", "dbmtl.cli", "predict", str(fasta), "-o", str(out), "--model", str(model),
           "--device", device, "--dtype", dtype, "--quiet"]
    shutil.rmtree(out, ignore_errors=True)
    result = {"proteins": n, "dtype": dtype, "device": device, "processes": procs}
    t = time.time()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)  # its own group: a cut-off ends every rank
    try:
        output, _ = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)
        child.wait()
        wall = time.time() - t
        finished = sum(Journal.load(j).proteins for j in (out / STAGING).rglob(JOURNAL))
        return {**result, "finished": False, "proteins_done": finished, "wall_s": round(wall, 2),
                "proteins_per_s": round(finished / wall, 1) if finished else None}
    wall = time.time() - t
    if child.returncode != 0:
        return {**result, "finished": False, "error": output.strip()[-500:]}
    return {**result, "finished": True, "wall_s": round(wall, 2), "proteins_per_s": round(n / wall, 1)}
