"""One lent GPU window used to the full: the lineage trained for most of one device command, with the
best weights streamed back as they improve.

A lent machine comes for ~15 minutes of device time, one command of at most 10 minutes, bare, with no
data and no network, and only the files under $OUT come back (8 files at most). So the command is
prepared here and runs there without a decision left open:

    python scripts/gpu_window.py pack                       # here: data + start weights -> build/window
    python3 scripts/gpu_window.py run build/window --out "$OUT" --budget-s 560    # there (PYTHONPATH=src)

`pack` copies exactly the data files that training with the config reads (traced while loading them,
the test sets of the leakage guard included; the corpus files) into one compressed archive, checks that
the copy loads to the same records, and measures what would travel (working tree + the carried folder
< 64 MiB). `run` unpacks it, probes a few steps of each precision / shape-bucket variant (seconds per
step for fp32 vs bf16, on new batch shapes vs shapes seen before), takes the fastest, sizes max_steps,
the learning rate's decay and the validations to the time left, trains in segments of one validation
each and, after every validation that improves, exports the best weights in half precision to
$OUT/best.tar (with the log), so that a command cut off at its limit still returns the best so far. Then
`dbmtl predict` is timed on N proteins, and $OUT/summary.json says where the seconds went.
"""
from __future__ import annotations

import time

T0 = time.time()  # before the heavy imports: the command's whole time counts

import argparse  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/lineage/v5b_from_default_gpu.json"
TRAVEL_LIMIT = 64 * 2**20  # working tree + carried paths, per device call
OUT_FILES = ("window.log", "summary.json", "run_config.json", "train_log.jsonl", "best.tar")  # <= 8 come back
# Probe variants: (precision, shape_buckets, cuDNN on). "nocudnn" takes cuDNN out (convolution and its
# attention backend): if bf16 is slow with it and fast without, cuDNN's per-shape planning is the cost.
VARIANTS = {
    "fp32": ("fp32", 0, True),
    "bf16": ("bf16", 0, True),
    "bf16+nocudnn": ("bf16", 0, False),
    "bf16+buckets": ("bf16", 64, True),
    "fp32+buckets": ("fp32", 64, True),
}
# Dense peaks of the H100 / H200 SXM by the vendor's datasheet (TFLOP/s): bf16 on the tensor cores; fp32
# plain (torch leaves TF32 off for matmuls by default, and so does this command).
NEW_SHAPE_STEPS = 100  # steps of a bucketed run that meet a batch shape for the first time (an estimate)
PEAK_TFLOPS = {"bf16": 989.0, "fp32": 67.0}
PEAK_BASIS = "NVIDIA H100/H200 SXM datasheet, dense: bf16 989 TFLOP/s, fp32 (no TF32) 67 TFLOP/s"


# -- pack (here) ----------------------------------------------------------------------------------------
def traced_load(data_dir: Path, settings: dict):
    """(the training data, every file of `data_dir` that loading it read or that training streams), the
    files relative to `data_dir`. Traced with an audit hook on `open`, so the list follows the catalog's
    own rules rather than a copy of them."""
    from dbmtl.data.catalog import load_training_data

    opened: set[str] = set()
    tracing = [True]

    def hook(event: str, args: tuple) -> None:
        if tracing[0] and event == "open" and isinstance(args[0], (str, os.PathLike)):
            opened.add(os.path.abspath(os.fspath(args[0])))

    sys.addaudithook(hook)  # cannot be removed: it goes quiet instead
    try:
        data = load_training_data(data_dir, **settings)
    finally:
        tracing[0] = False
    root = data_dir.resolve()
    files = {Path(p).resolve() for p in opened} | {Path(p).resolve() for p in data.corpus_paths}
    return data, sorted(str(p.relative_to(root)) for p in files if p.is_file() and p.is_relative_to(root))


def data_counts(data) -> dict:
    """What a loaded data folder holds, to compare a copy with its original."""
    count = {}
    for kind in ("residue", "protein"):
        for split in ("train", "valid"):
            count[f"{kind}_{split}"] = sum(r.split == split for r in getattr(data, kind))
    count["corpus_files"] = sorted(Path(p).name for p in data.corpus_paths)
    count["guard"] = len(data.guard.keys)
    return count


def travelling_bytes(root: Path) -> int:
    """Bytes of the working tree that a device call sends: tracked and untracked-not-ignored files."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                           check=True, capture_output=True).stdout.split(b"\0")
    return sum((root / n.decode()).lstat().st_size for n in set(names) if n and (root / n.decode()).exists())


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(args) -> dict:
    from dbmtl.data.catalog import load_training_data, resolve_data_dir
    from dbmtl.model.checkpoint import load_checkpoint
    from dbmtl.training import TrainConfig

    cfg = TrainConfig.load(args.config)
    data_dir = resolve_data_dir(args.data_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("data.tar.gz", "manifest.json", "init", "data"):
        shutil.rmtree(out / old, ignore_errors=True) if (out / old).is_dir() else (out / old).unlink(missing_ok=True)
    data, files = traced_load(data_dir, cfg.data_settings())
    counts = data_counts(data)
    with tarfile.open(out / "data.tar.gz", "w:gz", compresslevel=args.compresslevel) as tar:
        for rel in files:
            tar.add(data_dir / rel, arcname=rel, recursive=False)
    init = None
    if args.init_from:  # weights not in the working tree (the bundled model travels with it anyway)
        load_checkpoint(args.init_from)  # a model folder that loads, or stop here rather than there
        shutil.copytree(args.init_from, out / "init")
        init = "init"
    with tempfile.TemporaryDirectory(prefix="dbmtl-pack-") as tmp:  # the copy must load to the same records
        with tarfile.open(out / "data.tar.gz") as tar:
            tar.extractall(tmp, filter="data")
        copied = data_counts(load_training_data(Path(tmp), **cfg.data_settings()))
    if copied != counts:
        raise SystemExit(f"pack: the packed data load differently from {data_dir}: {copied} vs {counts}")
    manifest = {"config": str(args.config), "settings": cfg.data_settings(), "counts": counts, "init_from": init,
                "source": str(data_dir), "files": [{"path": rel, "bytes": (data_dir / rel).stat().st_size,
                                                     "sha256": sha256(data_dir / rel)} for rel in files]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    carried = folder_bytes(out)
    tree = travelling_bytes(ROOT)
    inside = out.resolve().is_relative_to(ROOT)
    ignored = inside and subprocess.run(["git", "check-ignore", "-q", str(out.resolve())], cwd=ROOT).returncode == 0
    print(f"pack: {len(files)} data files ({sum(f['bytes'] for f in manifest['files']) / 2**20:.1f} MiB) -> "
          f"{out / 'data.tar.gz'} ({(out / 'data.tar.gz').stat().st_size / 2**20:.1f} MiB); records {counts}")
    print(f"pack: working tree {tree / 2**20:.1f} MiB + carried {out} {carried / 2**20:.1f} MiB = "
          f"{(tree + carried) / 2**20:.1f} MiB of the {TRAVEL_LIMIT / 2**20:.0f} MiB a device call takes")
    if inside and not ignored:
        raise SystemExit(f"pack: {out} is not ignored by git: it would travel as part of the tree; pack into build/")
    if inside and tree + carried > TRAVEL_LIMIT:
        raise SystemExit("pack: too large to travel")
    return manifest


# -- run (there) -----------------------------------------------------------------------------------------
class Window:
    """The command's clock, its log (stdout and $OUT/window.log) and its summary ($OUT/summary.json, rewritten
    as it grows, so a command cut off still says how far it got)."""

    def __init__(self, out: Path, budget_s: float):
        self.out, self.budget_s = out, budget_s
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / "window.log", "a")
        self.summary: dict = {"budget_s": budget_s, "phases_s": {}}

    def elapsed(self) -> float:
        return time.time() - T0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, message: str) -> None:
        line = f"[{self.elapsed():6.1f} s] {message}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def save(self, **parts) -> None:
        self.summary.update(parts)
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        write_json(self.out / "summary.json", self.summary)


def write_json(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    tmp.replace(path)


def use_variant(trainer, cfg) -> None:
    """Point a built trainer (and whatever parts of it keep the training config) at another precision /
    shape-bucket setting, without rebuilding its pools: the probe compares variants on one trainer."""
    for part in (trainer, *vars(trainer).values()):
        if type(getattr(part, "cfg", None)) is type(cfg):
            part.cfg = cfg


def validate_fp32(trainer) -> dict:
    """A validation in fp32 whatever the run trains in: its numbers compare with the lineage's earlier
    (fp32) validations, and a bf16 pass over the validation set's ~190 batch shapes would meet any per-shape
    kernel planning again (validation batches are not bucketed: their hidden LM residues must stay)."""
    cfg = trainer.cfg
    use_variant(trainer, replace(cfg, precision="fp32"))
    try:
        return type(trainer).validate(trainer)
    finally:
        use_variant(trainer, cfg)


def set_cudnn(enabled: bool) -> None:
    import torch

    torch.backends.cudnn.enabled = enabled
    torch.backends.cuda.enable_cudnn_sdp(enabled)


class BatchMeter:
    """Wraps a trainer's micro-batch builder to record each training batch's shape and its real work: the
    tokens of rows that carry a label or a masked-LM target (shape-bucket filler rows carry neither) and
    the model FLOPs they need, 3 x forward (forward + backward)."""

    def __init__(self, trainer):
        from dbmtl.benchmark.flops import attention_flops, linear_flops_per_token

        self.pad = trainer.alphabet.pad_id
        cfg = trainer.model.cfg
        self.per_token = linear_flops_per_token(cfg)
        self.per_square = attention_flops(cfg, rows=1, length=1, causal=False)  # x length^2 per row
        self.shapes: list[tuple[int, int]] = []
        self.tokens = 0
        self.flops = 0.0
        build = trainer._micro_batch

        def measured(*args, **kwargs):
            batch = build(*args, **kwargs)
            self.add(batch)
            return batch

        trainer._micro_batch = measured

    def add(self, b) -> None:
        self.shapes.append(tuple(b.inputs.shape))
        scored = ((b.ss8 >= 0).any(1) | (b.ss3 >= 0).any(1) | (b.loc.sum(1) > 0) | (b.ms >= 0)
                  | (b.residues != self.pad).any(1))
        lengths = (b.inputs != self.pad).sum(1)[scored].double()
        self.tokens += int(lengths.sum())
        self.flops += 3 * float(self.per_token * lengths.sum() + self.per_square * (lengths ** 2).sum())


def probe(trainer, variants: list[str], warmup: int, steps: int, sync, say) -> dict:
    """Seconds per training step of each variant on one trainer: `warmup` untimed steps, then `steps` timed
    ones, each marked new-shape when one of its batches has a shape this precision and cuDNN setting had
    not run before (kernel planning per shape would show as new-shape steps costing more than seen ones)."""
    meter = BatchMeter(trainer)
    seen: set = set()
    base = trainer.cfg
    results = {}
    for name in variants:
        precision, buckets, cudnn = VARIANTS[name]
        use_variant(trainer, replace(base, precision=precision, shape_buckets=buckets))
        set_cudnn(cudnn)
        times, new, shapes = [], [], set()
        tokens0, flops0 = meter.tokens, meter.flops
        for i in range(warmup + steps):
            first = len(meter.shapes)
            sync()
            t = time.perf_counter()
            try:
                trainer.train_step()
            except (RuntimeError, ValueError) as exc:  # out of memory, a kernel missing, a diverged step
                results[name] = {"precision": precision, "shape_buckets": buckets, "cudnn": cudnn, "error": str(exc)[:300]}
                break
            sync()
            dt = time.perf_counter() - t
            keys = {(precision, cudnn, s) for s in meter.shapes[first:]}
            fresh = bool(keys - seen)
            seen |= keys
            shapes |= {s for _, _, s in keys}
            if i >= warmup:
                times.append(dt)
                new.append(fresh)
            else:
                tokens0, flops0 = meter.tokens, meter.flops
        if name in results:
            say(f"probe {name:13s} failed: {results[name]['error']}")
            continue
        fresh_s = [t for t, n in zip(times, new) if n]
        seen_s = [t for t, n in zip(times, new) if not n]
        results[name] = {
            "precision": precision, "shape_buckets": buckets, "cudnn": cudnn, "steps": len(times),
            "step_s_mean": round(statistics.mean(times), 4), "step_s_median": round(statistics.median(times), 4),
            "new_shape_steps": len(fresh_s), "new_shape_step_s": round(statistics.mean(fresh_s), 4) if fresh_s else None,
            "seen_shape_steps": len(seen_s), "seen_shape_step_s": round(statistics.mean(seen_s), 4) if seen_s else None,
            "distinct_shapes": len(shapes), "shapes": sorted(shapes), "tokens_per_step": round((meter.tokens - tokens0) / len(times)),
            "flops_per_token": round((meter.flops - flops0) / max(1, meter.tokens - tokens0)),
        }
        # the run's steady rate: steps on shapes seen before where there are enough of them
        results[name]["expected_step_s"] = results[name]["seen_shape_step_s"] if len(seen_s) >= 3 else results[name]["step_s_mean"]
        say(f"probe {name:13s} {json.dumps(results[name])}")
    use_variant(trainer, base)
    return results


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


def run(args) -> None:
    import torch

    from dbmtl.data.catalog import load_training_data
    from dbmtl.training import TrainConfig, Trainer
    from dbmtl.training.budget import allocate_steps

    out = Path(args.out)
    w = Window(out, args.budget_s)
    handler = logging.StreamHandler(w.log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger("dbmtl").addHandler(handler)
    logging.getLogger("dbmtl").setLevel(logging.INFO)

    pack_dir = Path(args.pack)
    manifest = json.loads((pack_dir / "manifest.json").read_text())
    cfg = TrainConfig.load(args.config or manifest["config"])
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    run_dir = Path(args.run_dir or cfg.out_dir)
    shutil.rmtree(run_dir, ignore_errors=True)  # the window's run starts afresh; a repeat of it too
    work = run_dir.parent / f"{run_dir.name}.window"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data_dir = work / "data"  # not in the packed folder: a dry run here would make the next carry too large
    with tarfile.open(pack_dir / "data.tar.gz") as tar:
        tar.extractall(data_dir, filter="data")
    changes = {"device": device, "out_dir": str(run_dir), "threads": args.threads or cfg.threads,
               "init_from": str(pack_dir / manifest["init_from"]) if manifest.get("init_from") else cfg.init_from}
    if args.model:
        changes["model"] = replace(cfg.model, **json.loads(args.model))
    cfg = replace(cfg, **{**changes, **json.loads(args.override or "{}")})
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    w.save(device=name, torch=torch.__version__, config=str(args.config or manifest["config"]),
           cudnn_benchmark=args.cudnn_benchmark, pack=manifest["counts"])
    w.say(f"{name}, torch {torch.__version__}; data unpacked; config {args.config or manifest['config']}")

    data = load_training_data(data_dir, **cfg.data_settings())
    if data_counts(data) != manifest["counts"]:
        raise SystemExit(f"the unpacked data differ from what was packed: {data_counts(data)} vs {manifest['counts']}")
    if args.limit_records:  # dry runs: a cut of the data, so that building pools takes seconds
        data = replace(data, residue=data.residue[: args.limit_records], protein=data.protein[: args.limit_records])
    w.summary["phases_s"]["start_s"] = round(w.elapsed(), 1)
    w.say(f"data loaded: {manifest['counts']}")

    # -- probe ----------------------------------------------------------------------------------------------
    t = time.time()
    trainer = Trainer(replace(cfg, out_dir=str(work / "probe")), data, progress=False)
    build_s = time.time() - t
    variants = args.variants.split(",")
    rates = probe(trainer, variants, args.probe_warmup, args.probe_steps, sync, w.say)
    usable = [v for v in variants if "error" not in rates[v]]
    if not usable:
        raise SystemExit("every probe variant failed: see window.log")
    chosen = min(usable, key=lambda v: rates[v]["expected_step_s"])
    precision, buckets, cudnn = VARIANTS[chosen]
    use_variant(trainer, replace(trainer.cfg, precision=precision, shape_buckets=buckets))
    set_cudnn(cudnn)
    t = time.time()
    validate_fp32(trainer)
    valid_s = time.time() - t
    t = time.time()
    trainer.save()
    save_s = time.time() - t
    del trainer
    gc.collect()  # the wrappers put on the trainer hold it in a cycle
    if cuda:
        torch.cuda.empty_cache()
    probe_s = w.elapsed() - w.summary["phases_s"]["start_s"]
    w.summary["phases_s"]["probe_s"] = round(probe_s, 1)
    w.save(probe={"variants": rates, "chosen": chosen, "trainer_build_s": round(build_s, 2),
                  "valid_s": round(valid_s, 2), "checkpoint_s": round(save_s, 2)})
    w.say(f"chosen {chosen}: {rates[chosen]['expected_step_s']} s a step; a validation {valid_s:.1f} s, "
          f"a checkpoint {save_s:.2f} s, building a trainer {build_s:.1f} s")

    # -- plan -----------------------------------------------------------------------------------------------
    train_budget = w.left() - args.predict_s - args.final_s
    per_eval = valid_s + 3 * save_s  # validation, checkpoint, best/ and its export
    first_visits = 0.0
    if buckets and rates[chosen]["new_shape_step_s"] and rates[chosen]["seen_shape_step_s"]:
        # a bucketed run meets each of its ~100-150 batch shapes once (two micro-batches a step): an
        # estimate of 100 steps at the new-shape price, at most a fifth of the budget
        extra = rates[chosen]["new_shape_step_s"] - rates[chosen]["seen_shape_step_s"]
        first_visits = min(max(0.0, extra) * NEW_SHAPE_STEPS, train_budget / 5)
    steps, every = allocate_steps(train_budget, build_s + first_visits, rates[chosen]["expected_step_s"], per_eval,
                                  args.evals, safety=args.safety)
    if args.max_steps and steps > args.max_steps:  # dry runs: a few steps whatever the budget
        every = max(1, args.max_steps // args.evals)
        steps = every * args.evals
    run_cfg = replace(cfg, precision=precision, shape_buckets=buckets, max_steps=steps, decay_steps=steps,
                      eval_every=every, checkpoint_every=every, warmup_steps=min(cfg.warmup_steps, steps // 10))
    write_json(out / "run_config.json", run_cfg.to_dict())  # `dbmtl train --config` repeats the run
    plan = {"cudnn": cudnn, "train_budget_s": round(train_budget, 1), "max_steps": steps, "eval_every": every, "evals": args.evals,
            "warmup_steps": run_cfg.warmup_steps, "step_s": rates[chosen]["expected_step_s"], "per_eval_s": round(per_eval, 2),
            "new_shape_allowance_s": round(first_visits, 1), "validation_precision": "fp32"}
    w.save(plan=plan)
    w.say(f"plan: {json.dumps(plan)}")

    # -- train ----------------------------------------------------------------------------------------------
    t = time.time()
    trainer = Trainer(run_cfg, data, progress=False)
    w.summary["phases_s"]["build_s"] = round(time.time() - t, 1)
    meter = BatchMeter(trainer)
    validating = [0.0]

    def timed_validate():
        t = time.time()
        try:
            return validate_fp32(trainer)
        finally:
            validating[0] += time.time() - t

    trainer.validate = timed_validate
    train_deadline = T0 + args.budget_s - args.predict_s - args.final_s
    segments, history, best_step = [], [], None
    for k in range(1, args.evals + 1):
        if segments and time.time() + max(segments) > train_deadline:
            w.say(f"stopping after step {trainer.step}: the next segment would pass the training deadline")
            break
        before = trainer.best_valid
        t = time.time()
        valid = trainer.fit(max_steps=k * every)
        segments.append(time.time() - t)
        mean = sum(v["loss"] for v in valid.values()) / len(valid)
        improved = trainer.best_valid < before
        history.append({"step": trainer.step, "mean_loss": round(mean, 4), "improved": improved,
                        **{task: {m: round(x, 4) for m, x in v.items()} for task, v in valid.items()}})
        if improved:
            export_best(run_dir, out, work)
            best_step = trainer.step
        shutil.copyfile(run_dir / "log.jsonl", out / "train_log.jsonl")
        train_s = sum(segments)
        steps_s = train_s - validating[0]
        w.save(run=run_summary(trainer, meter, train_s, steps_s, validating[0], history, best_step, precision, cuda, name))
        w.say(f"step {trainer.step}/{steps}: mean validation loss {mean:.4f}{' (best, exported)' if improved else ''}; "
              f"segment {segments[-1]:.1f} s")
    w.summary["phases_s"]["train_s"] = round(sum(segments), 1)
    del trainer
    gc.collect()  # the wrappers put on the trainer hold it in a cycle
    if cuda:
        torch.cuda.empty_cache()

    # -- predict ----------------------------------------------------------------------------------------------
    left = w.left() - args.final_s
    if args.predict_proteins and best_step is not None and left > 5:
        t = time.time()
        fasta = work / "predict.fasta"
        n = predict_input(data.corpus_paths, args.predict_proteins, fasta)
        procs = args.predict_procs or (4 if cuda else 1)
        result = time_predict(work / "best_fp16", fasta, n, work / "predicted", device, args.predict_dtype, procs, left)
        w.summary["phases_s"]["predict_s"] = round(time.time() - t, 1)
        w.save(predict=result)
        w.say(f"predict: {json.dumps(result)}")
    else:
        w.say("predict: skipped" + ("" if args.predict_proteins else " (--predict-proteins 0)"))

    for v, r in rates.items():
        if "error" not in r:
            w.say(f"probe {v:13s} {r['step_s_mean']:.4f} s/step mean, {r['step_s_median']:.4f} median; new shapes "
                  f"{r['new_shape_step_s']} s ({r['new_shape_steps']}), seen shapes {r['seen_shape_step_s']} s "
                  f"({r['seen_shape_steps']}), {r['distinct_shapes']} shapes{'  <- chosen' if v == chosen else ''}")
    total_s = w.elapsed()
    w.summary["phases_s"]["total_s"] = round(total_s, 1)
    run_part = w.summary.get("run", {})
    w.save(total_s=round(total_s, 1), train_share=round(run_part.get("train_s", 0) / total_s, 3),
           steps_share=round(run_part.get("steps_s", 0) / total_s, 3))
    w.say(f"done: training {run_part.get('train_s', 0):.0f} s of {total_s:.0f} s "
          f"({100 * w.summary['train_share']:.1f}%; steps alone {100 * w.summary['steps_share']:.1f}%); "
          f"files in {out}: {sorted(p.name for p in out.iterdir())}")


def run_summary(trainer, meter: BatchMeter, train_s: float, steps_s: float, valid_s: float, history: list,
                best_step, precision: str, cuda: bool, device_name: str) -> dict:
    """The run so far: steps, tokens/s, model FLOP/s and their share of the chip's peak."""
    flops_per_s = meter.flops / steps_s if steps_s > 0 else 0.0
    peak = PEAK_TFLOPS[precision] if cuda and any(chip in device_name for chip in ("H100", "H200")) else None
    return {"steps": trainer.step, "tokens": meter.tokens, "train_s": round(train_s, 1), "steps_s": round(steps_s, 1),
            "valid_s": round(valid_s, 1), "tokens_per_s": round(meter.tokens / steps_s) if steps_s > 0 else None,
            "flops_per_token": round(meter.flops / max(1, meter.tokens)), "model_tflops_per_s": round(flops_per_s / 1e12, 3),
            "peak_tflops": peak, "peak_basis": PEAK_BASIS if peak else None,
            "peak_share": round(flops_per_s / 1e12 / peak, 4) if peak else None,
            "distinct_shapes": len(set(meter.shapes)), "best_step": best_step, "valid": history,
            "flops_note": "3 x forward (forward + backward) of the rows that carry a label or a masked-LM target; padding and filler rows not counted"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: the data training reads (and start weights) into one folder to carry")
    p.add_argument("--config", default=CONFIG, help=f"the training config whose data are packed (default {CONFIG})")
    p.add_argument("--out", default="build/window", help="the folder to carry (default build/window, ignored by git)")
    p.add_argument("--data-dir", help="data folder (default: $DBMTL_DATA or ../shared/data)")
    p.add_argument("--init-from", help="a model folder to start from instead of the config's init_from")
    p.add_argument("--compresslevel", type=int, default=6)
    r = sub.add_parser("run", help="there: probe, train inside the budget, stream the best weights to --out")
    r.add_argument("pack", help="the folder `pack` wrote (carried)")
    r.add_argument("--out", required=True, help="where the files that come back go ($OUT on the device)")
    r.add_argument("--budget-s", type=float, default=560, help="seconds for the whole command (default 560)")
    r.add_argument("--config", help="training config (default: the one packed with)")
    r.add_argument("--run-dir", help="the run folder (default: the config's out_dir)")
    r.add_argument("--device", default="auto")
    r.add_argument("--threads", type=int, help="torch CPU threads")
    r.add_argument("--variants", default=",".join(VARIANTS), help=f"probe variants, comma-separated, of {list(VARIANTS)}")
    r.add_argument("--probe-warmup", type=int, default=2, help="untimed steps per variant")
    r.add_argument("--probe-steps", type=int, default=10, help="timed steps per variant")
    r.add_argument("--evals", type=int, default=8, help="validations (and chances to export the best)")
    r.add_argument("--safety", type=float, default=0.95, help="share of the training budget planned with steps")
    r.add_argument("--predict-proteins", type=int, default=20_000, help="proteins for the timed `dbmtl predict` (0: none)")
    r.add_argument("--predict-s", type=float, default=45, help="seconds kept from training for predict")
    r.add_argument("--predict-procs", type=int, help="processes of the timed predict (default: 4 on a GPU, else 1)")
    r.add_argument("--predict-dtype", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    r.add_argument("--final-s", type=float, default=10, help="seconds kept at the end for the summary")
    r.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    r.add_argument("--model", help="dry runs: JSON model overrides, e.g. '{\"n_layer\": 1}'")
    r.add_argument("--override", help="dry runs: JSON training-config overrides, e.g. '{\"batch_tokens\": 2048}'")
    r.add_argument("--max-steps", type=int, help="dry runs: at most this many steps whatever the budget")
    r.add_argument("--limit-records", type=int, help="dry runs: train on the first N records of each kind")
    args = ap.parse_args()
    if args.command == "pack":
        pack(args)
        return
    try:
        run(args)
    except BaseException as exc:
        import traceback

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "window.log", "a") as fh:
            traceback.print_exc(file=fh)
        summary = out / "summary.json"
        state = json.loads(summary.read_text()) if summary.exists() else {}
        write_json(summary, {**state, "error": f"{type(exc).__name__}: {exc}", "elapsed_s": round(time.time() - T0, 1)})
        raise


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
