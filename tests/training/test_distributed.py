"""Multi-process training on CPU (gloo) with torchrun, as it runs on GPUs: DDP and FSDP give the parameters
of a one-process run with the same global batch; a killed run resumes to the same parameters."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dbmtl.data.catalog import load_training_data
from dbmtl.training import TrainConfig, Trainer

from helpers import DECODER, ONEPASS


HERE = Path(__file__).parent
# attention pooling's bias has a gradient of exactly zero (a softmax does not see a constant shift), so Adam
# moves it on round-off alone, which differs between 1 and N processes: the onepass model here reads <LOC>
# and <MS> without the pooling layer
MODELS = {"onepass": {**ONEPASS, "dropout": 0.0, "protein_pooling": "cls"}, "decoder": {**DECODER, "dropout": 0.0}}
# the tasks of the 1-vs-N-process runs: masked LM hides residues drawn from each process's own torch stream
# (as dropout does), so with LM a onepass run reads the same examples on 1 and N processes, not the same masks
SAME_ON_N = {"onepass": {"ss3": 1, "ss8": 1, "loc": 1, "ms": 1}, "decoder": {"lm": 1, "ss3": 1, "loc": 1}}


def tiny_config(path: Path, kind: str = "onepass", **kw) -> Path:
    """A tiny model of `kind` (the shipped onepass unless named) on the data load_training_data reads by default."""
    cfg = dict(model=MODELS[kind], tasks={"lm": 1, "ss3": 1, "loc": 1}, mixing="sample", localization_sources="subsets",
               lm_sources="mmseqs2", task_batch_tokens={}, lr=3e-3, warmup_steps=2, decay_steps=20, max_steps=4, batch_tokens=2000, grad_accum=4,
               eval_every=1000, checkpoint_every=2, log_every=1, valid_examples=8, seed=0, threads=1)
    cfg.update(kw)
    path.write_text(json.dumps(cfg))
    return path


def torchrun(args: list, data_dir: Path, nproc: int = 2, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DBMTL_DATA": str(data_dir)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *map(str, args)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)


def finish(proc: subprocess.Popen, timeout: int = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (torchrun starts its workers in their own sessions)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def one_process_run(cfg_path: Path, data_dir: Path, out: Path) -> dict[str, torch.Tensor]:
    trainer = Trainer(TrainConfig.load(cfg_path), load_training_data(data_dir), out_dir=out, progress=False)
    trainer.fit()
    return {k: v.detach() for k, v in trainer.model.state_dict().items() if k != "head.weight"}


@pytest.fixture(scope="module")
def single_runs(data_dir, tmp_path_factory):
    """kind -> the weights of its one-process run, trained once per module."""
    runs: dict[str, dict] = {}

    def weights(kind: str) -> dict[str, torch.Tensor]:
        if kind not in runs:
            tmp = tmp_path_factory.mktemp(f"single_{kind}")
            cfg = tiny_config(tmp / "cfg.json", kind, tasks=SAME_ON_N[kind])
            runs[kind] = one_process_run(cfg, data_dir, tmp / "run")
        return runs[kind]

    return weights


@pytest.mark.parametrize("parallel, kind", [("ddp", "onepass"), ("fsdp", "onepass"), ("ddp", "decoder")])
def test_two_processes_train_exactly_like_one_with_the_same_global_batch(tmp_path, data_dir, single_runs, parallel, kind):
    single = single_runs(kind)
    cfg = tiny_config(tmp_path / "cfg.json", kind, tasks=SAME_ON_N[kind], parallel=parallel)
    finish(torchrun([HERE / "distributed_worker.py", cfg, tmp_path / "run", data_dir], data_dir))
    ranks = [load_file(str(tmp_path / "run" / f"rank{r}.safetensors")) for r in (0, 1)]
    full = load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 4
    assert [s["index"] for s in state["slots"]] == [0, 1, 2, 3]  # rank 0 saved rank 1's data positions too
    if parallel == "ddp":
        for name in ranks[0]:
            assert torch.equal(ranks[0][name], ranks[1][name]), name  # replicas never drift apart
    else:  # each rank holds half of every sharded parameter
        name = "blocks.0.mlp.0.weight" if "blocks.0.mlp.0.weight" in full else next(k for k in full if k.startswith("blocks.0") and full[k].dim() == 2)
        assert ranks[0][name].shape[0] + ranks[1][name].shape[0] == full[name].shape[0]
    assert set(full) == set(single)
    # the same gradients summed in another order (per rank, then all-reduced), and Adam scales a gradient near
    # zero up to a full step: a few weights differ by round-off, far below what other data or scaling would move
    for name, value in single.items():
        torch.testing.assert_close(full[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert any(not torch.equal(full[n], v) for n, v in one_process_init(cfg).items())  # it did train


def one_process_init(cfg_path: Path) -> dict[str, torch.Tensor]:
    from dbmtl.model import Transformer

    cfg = TrainConfig.load(cfg_path)
    torch.manual_seed(cfg.seed)
    model = Transformer(cfg.model)
    return {k: v for k, v in model.state_dict().items() if k != "head.weight"}


def test_a_killed_two_process_run_resumes_to_the_same_parameters(tmp_path, data_dir):
    cfg = tiny_config(tmp_path / "cfg.json", max_steps=10_000, checkpoint_every=2)
    train = ["-m", "dbmtl.cli", "train", "--config", cfg, "--quiet"]
    finish(torchrun(train + ["--out", tmp_path / "straight", "--max-steps", 12], data_dir))

    proc = torchrun(train + ["--out", tmp_path / "killed"], data_dir)
    state_file = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 240
    while not (state_file.exists() and json.loads(state_file.read_text())["step"] >= 2):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.05)
    kill_tree(proc.pid)  # the whole job, mid-way, with no chance to clean up
    proc.communicate()
    killed_at = json.loads(state_file.read_text())["step"]
    assert 2 <= killed_at < 12

    finish(torchrun(train + ["--out", tmp_path / "killed", "--resume", "--max-steps", 12], data_dir))
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "checkpoint" / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    records = [json.loads(line) for line in open(tmp_path / "killed" / "log.jsonl")]
    logged = [r["step"] for r in records if "lr" in r]
    assert logged == list(range(1, 13))  # no step lost or logged twice
