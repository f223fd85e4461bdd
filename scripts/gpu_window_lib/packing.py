"""`gpu_window.py pack` (here): the data files training reads, traced and packed into one archive that
is checked to load to the same records, and what a device call would carry measured."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAVEL_LIMIT = 64 * 2**20  # working tree + carried paths, per device call


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
