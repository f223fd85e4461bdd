"""Small shared builders for tests: a random-weight tiny model and a small real-data training set; random
inputs and the `dbmtl` child processes the fault tests run, kill and resume."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dbmtl.data.catalog import TrainingData, load_training_data
from dbmtl.model import PRESETS, Transformer, ModelConfig
from dbmtl.inference.predictor import Predictor
from dbmtl.tokens import Alphabet


def tiny_predictor(label_inputs: str = "placeholder", seed: int = 0, context: int = 1024, kind: str = "decoder",
                   conv_kernel: int = 0) -> Predictor:
    torch.manual_seed(seed)
    alphabet = Alphabet()
    cfg = ModelConfig(vocab_size=len(alphabet), **{**PRESETS["tiny"], "context": context}, label_inputs=label_inputs,
                      kind=kind, conv_kernel=conv_kernel, protein_pooling="cls")
    return Predictor(Transformer(cfg).eval(), alphabet, batch_tokens=4096)


def saved_tiny_model(folder: Path) -> Path:
    """A tiny random-weight encoder (convolution 3) saved as a model folder `dbmtl --model` loads."""
    from dbmtl.model.checkpoint import save_checkpoint

    p = tiny_predictor(kind="encoder", conv_kernel=3)
    return save_checkpoint(folder, p.model, p.alphabet)


def random_fasta(path: Path, n: int, lengths: tuple[int, int], rng: random.Random, name: str = "p{i}") -> Path:
    """`n` random proteins written to `path`, headers `name` with {i} their number, lengths drawn from
    `lengths` (both ends included) by `rng`, which goes on from there."""
    path.write_text("".join(f">{name.format(i=i)}\n{''.join(rng.choice('ACDEFGHIKLMNPQRSTVWY') for _ in range(rng.randint(*lengths)))}\n"
                            for i in range(n)))
    return path


# -- `dbmtl` in a child process --------------------------------------------------------------------------
SRC = Path(__file__).resolve().parents[1] / "src"


def cli_env(**extra: str) -> dict:
    """This process's environment with this checkout's src/ on PYTHONPATH, for a child running dbmtl."""
    return {**os.environ, "PYTHONPATH": str(SRC), **extra}


def child(script: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -c script *args` with this checkout's dbmtl; its output captured."""
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout)


# `python -c KILL_AT_BYTE LIMIT ARGS...`: the dbmtl command ARGS in a child that dies (SIGKILL-like: os._exit,
# no clean-up) once its output writes reach byte LIMIT; the bytes before it reach the file, as in a kill
# mid-write.
KILL_AT_BYTE = r"""
import os, sys
from dbmtl.inference import writers

limit, written = int(sys.argv[1]), [0]
append = writers.PredictionWriter.append

def dying_append(self, name, text):
    room = limit - written[0]
    if len(text) >= room:
        append(self, name, text[:room])
        self.files[name].flush()
        os._exit(137)
    written[0] += len(text)
    append(self, name, text)

writers.PredictionWriter.append = dying_append
from dbmtl.cli import main
sys.exit(main(sys.argv[2:]))
"""


def slowed(method: str) -> str:
    """`python -c slowed(method) ARGS...`: the dbmtl command ARGS with Predictor.<method> slowed down by 0.2 s
    a chunk, still running when a second run starts."""
    return rf"""
import sys, time
from dbmtl.inference.predictor import Predictor
{method} = Predictor.{method}
Predictor.{method} = lambda self, *a, **k: (time.sleep(0.2), {method}(self, *a, **k))[1]
from dbmtl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def kill_after_first_write(args: list[str], watched: Path, rng: random.Random, jitter_s: float,
                           wait_s: float) -> tuple[int, bool, str]:
    """`dbmtl ARGS` in a child, killed (SIGKILL) a random 0..`jitter_s` seconds after its first write to
    `watched` (a change of its mtime; given up on after `wait_s`): (exit code, whether it was still running
    when killed, its stderr)."""
    seen = watched.stat().st_mtime_ns if watched.exists() else None
    proc = subprocess.Popen([sys.executable, "-m", "dbmtl.cli", *args], env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + wait_s
    while time.time() < deadline and proc.poll() is None and (
            not watched.exists() or watched.stat().st_mtime_ns == seen):
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, jitter_s))
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    return code, running, proc.stderr.read()


def second_run_during_first(first_args: list[str], second_args: list[str], slow: str,
                            started: Path) -> tuple[subprocess.CompletedProcess, int, str]:
    """`dbmtl FIRST_ARGS` in a child with Predictor.<slow> slowed down, and once it has made `started`,
    `dbmtl SECOND_ARGS` to its end while the first still runs; then the first to its end: (the second's
    result, the first's exit code, the first's stderr)."""
    env = cli_env()
    first = subprocess.Popen([sys.executable, "-c", slowed(slow), *first_args], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and first.poll() is None and not started.exists():
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before the second could start"
    second = subprocess.run([sys.executable, "-m", "dbmtl.cli", *second_args], env=env, capture_output=True,
                            text=True, timeout=120)
    assert first.poll() is None, "the first run ended before the second was refused: no test"
    _, first_err = first.communicate(timeout=300)
    return second, first.returncode, first_err


def small_training_data(data_dir, n_residue: int = 400, n_protein: int = 600) -> TrainingData:
    """A real-data subset: the first proteins of each source, both splits, plus the streamed corpus."""
    full = load_training_data(data_dir)
    residue = [r for r in full.residue if r.split == "train" and len(r.sequence) < 300][:n_residue]
    residue += [r for r in full.residue if r.split == "valid" and r.ss8 is not None][:24]
    residue += [r for r in full.residue if r.split == "valid" and r.ss8 is None][:24]
    protein = [r for r in full.protein if r.split == "train" and len(r.sequence) < 400][:n_protein]
    protein += [r for r in full.protein if r.split == "train" and r.membrane and len(r.sequence) < 400][:200]
    protein += [r for r in full.protein if r.split == "valid" and r.membrane][:24]
    protein += [r for r in full.protein if r.split == "valid" and not r.membrane][:24]
    return TrainingData(residue, protein, full.corpus_paths, full.guard)


# tiny models of the shipped kind and of the paper's decoder, as training configs name them
ONEPASS = {"preset": "tiny", "kind": "onepass", "conv_kernel": 3, "protein_pooling": "attention", "dropout": 0.1}
DECODER = {"preset": "tiny", "kind": "decoder", "dropout": 0.1}


def tiny_train_config(tmp_path, **kw):
    """A TrainConfig for seconds-long CPU runs on small_training_data, written as a config file would be:
    a tiny onepass model (the shipped kind) unless `model` says otherwise, on the data small_training_data
    reads (the localization subsets and the MMseqs2 corpus)."""
    from dbmtl.training import TrainConfig

    base = dict(model=ONEPASS, localization_sources="subsets", lm_sources="mmseqs2", lr=3e-3, warmup_steps=5,
                decay_steps=60, max_steps=60, batch_tokens=3000, task_batch_tokens={}, grad_accum=1, eval_every=1000,
                checkpoint_every=1000, log_every=5, valid_examples=24, seed=0, threads=1, out_dir=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig.from_dict(base)


def straight_and_resumed(cfg, data, tmp_path, stop: int):
    """(a run to cfg.max_steps, a run stopped at `stop` then resumed from its checkpoint to the end)."""
    from dbmtl.training import Trainer

    straight = Trainer(cfg, data, out_dir=tmp_path / "a", progress=False)
    straight.fit()
    Trainer(cfg, data, out_dir=tmp_path / "b", progress=False).fit(max_steps=stop)
    resumed = Trainer(cfg, data, out_dir=tmp_path / "b", progress=False)
    resumed.resume()
    assert resumed.step == stop
    resumed.fit()
    return straight, resumed


def need(data_dir, rel: str):
    """The path of a shared data file; the test is skipped when the data folder lacks it."""
    path = data_dir / rel
    if not path.exists():
        pytest.skip(f"{rel} not in the data folder")
    return path
