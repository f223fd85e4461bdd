"""The package as a user gets it: a wheel built from this tree, installed into a fresh venv and run from a
folder outside the checkout. `pytest -m packaging` runs only these, `-m "not packaging"` skips them.

The fresh venv reaches the dependencies (torch and the rest) through a .pth line naming this
environment's site-packages, so nothing is downloaded; that line adds a plain folder (its .pth files,
the editable install's among them, are not read), so the only dbmtl the venv can import is the wheel's.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import dbmtl
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import OUTPUT_TASKS, TASKS, output_label

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "proteins.fasta"
PACKAGE_DATA = ["pretrained/default/config.json", "pretrained/default/model.safetensors",
                "pretrained/default/readout.safetensors", "pretrained/default/residue_readout.safetensors",
                "pretrained/default/train_config.json", "pretrained/default/vocab.json",
                "reports/assets/report.html", "reports/assets/viewer.css", "reports/assets/viewer.js",
                "service/static/index.html", "service/static/page.css", "service/static/page.js"]


def run(cmd, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_source_tree(dest: Path) -> None:
    """The files a fresh clone with this tree's changes would have (tracked and new, not ignored), so the
    checkout's build/, runs/ and caches cannot reach the wheel and the build writes nothing in the checkout."""
    try:
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = ["pyproject.toml", "README.md", "LICENSE"] + [
            str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the tree (decoy run outputs and caches added), installed without
    dependencies into a new venv; env has no PYTHONPATH and the venv's bin first on PATH; src is the copy
    the wheel was built from, the reference for its files while others edit the checkout."""
    root = tmp_path_factory.mktemp("packaging")
    tree = root / "tree"
    copy_source_tree(tree)
    for decoy in ("runs/default/best/model.safetensors", "src/dbmtl/__pycache__/stale.cpython-311.pyc"):
        (tree / decoy).parent.mkdir(parents=True, exist_ok=True)
        (tree / decoy).write_bytes(b"not for the wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", root / "dist", tree], cwd=root, env=env)
    (wheel,) = (root / "dist").glob("dbmtl-*.whl")

    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", venv], cwd=root, env=env)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", wheel],
        cwd=root, env=env)
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root, env=env).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "zz_dependencies_from_test_env.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))

    work = root / "work"
    work.mkdir()
    shutil.copy(EXAMPLE, work / "proteins.fasta")
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return SimpleNamespace(wheel=wheel, venv=venv, env=env, work=work, deps=deps, src=tree / "src" / "dbmtl")


def test_wheel_holds_the_package_its_data_and_license_only(installed):
    wheel = installed.wheel
    version = dbmtl.__version__
    assert wheel.name == f"dbmtl-{version}-py3-none-any.whl"
    dist_info = f"dbmtl-{version}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        weights = zf.read("dbmtl/pretrained/default/model.safetensors")
    assert {f"dbmtl/{name}" for name in PACKAGE_DATA} <= set(names)
    assert weights == (installed.src / "pretrained/default/model.safetensors").read_bytes()
    assert f"{dist_info}/licenses/LICENSE" in names
    assert {"dbmtl/__main__.py", "dbmtl/cli/__main__.py", "dbmtl/inference/predictor.py"} <= set(names)
    strays = [n for n in names if not n.startswith(("dbmtl/", f"{dist_info}/"))
              or "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n or "/runs/" in n]
    assert not strays
    assert f"\nVersion: {version}\n" in metadata and "\nLicense-Expression: MIT\n" in metadata
    assert "Requires-Dist: torch>=" in metadata and "Provides-Extra: serve" in metadata
    assert "dbmtl = dbmtl.cli:main" in entry_points


def test_installed_wheel_imports_its_own_copy(installed):
    venv, env, work = installed.venv, installed.env, installed.work
    probe = ("import json, sys, dbmtl, importlib.metadata as m; from dbmtl.model.checkpoint import DEFAULT_MODEL; "
             "from dbmtl.reports.html import ASSETS; "
             "print(json.dumps({'file': dbmtl.__file__, 'path': sys.path, 'version': m.version('dbmtl'), "
             "'data': [str(DEFAULT_MODEL), str(ASSETS)]}))")
    found = json.loads(run([venv / "bin" / "python", "-c", probe], cwd=work, env=env).stdout)
    site = Path(found["file"]).resolve().parents[1]
    assert site.is_relative_to(venv.resolve()) and site.name == "site-packages"
    assert all(Path(p).resolve().is_relative_to(site) for p in found["data"])
    in_checkout = [p for p in found["path"] if p and Path(p).resolve().is_relative_to(REPO) and p not in installed.deps]
    assert not in_checkout and str(REPO / "src") not in found["path"]
    assert found["version"] == dbmtl.__version__


def test_installed_command_predicts_the_example(installed, tmp_path):
    venv, env, work = installed.venv, installed.env, installed.work
    version = f"dbmtl {dbmtl.__version__}"
    assert run([venv / "bin" / "python", "-m", "dbmtl", "--version"], cwd=work, env=env).stdout.strip() == version
    assert run(["dbmtl", "--version"], cwd=work, env=env).stdout.strip() == version
    assert shutil.which("dbmtl", path=env["PATH"]) == str(venv / "bin" / "dbmtl")

    run(["dbmtl", "predict", "proteins.fasta", "-o", "out/", "--html", "report.html", "--threads", "1", "--quiet"],
        cwd=work, env=env)
    got = [json.loads(line) for line in (work / "out" / "predictions.jsonl").read_text().splitlines()]
    from dbmtl import Predictor

    want = Predictor.from_pretrained("default").predict(list(read_fasta(EXAMPLE)))  # this checkout's model
    assert [p["id"] for p in got] == [p.id for p in want] and len(want) == 4
    for g, w in zip(got, want):
        assert g["sequence"] == w.sequence
        for name in OUTPUT_TASKS:
            task = TASKS[name]
            assert g[task.field] == output_label(name, w.labels[name])
            probs = g[f"{name}_probabilities"]
            if task.kind == "protein":
                probs = [probs[output_label(name, label)] for label in task.labels]
            np.testing.assert_allclose(probs, w.probabilities[name], atol=2e-4)
    proteins = (work / "out" / "proteins.tsv").read_text().splitlines()
    residues = (work / "out" / "residues.tsv").read_text().splitlines()
    assert len(proteins) == 1 + len(want) and len(residues) == 1 + sum(len(p.sequence) for p in want)
    report = (work / "report.html").read_text()
    css = (installed.src / "reports/assets/viewer.css").read_text()
    assert css.strip()[:200] in report and "P01308_INS" in report  # the package's own assets, inlined


def test_installed_serve_extra_serves_the_page(installed):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    import urllib.request

    from dbmtl.service.load import get_json, post, running_server

    work = installed.work
    with running_server("--threads", "1", command=["dbmtl"], env=installed.env, cwd=work,
                        log_path=work / "serve.log") as (_, url):
        assert get_json(url + "/health", timeout=2)["status"] == "ok"
        for path, name in (("/", "service/static/index.html"), ("/static/page.js", "service/static/page.js"),
                           ("/assets/viewer.js", "reports/assets/viewer.js")):
            with urllib.request.urlopen(url + path, timeout=10) as answer:
                assert answer.read() == (installed.src / name).read_bytes(), path
        status, body = post(url + "/predict", b">HBB\nMVHLTPEEKSAVTALWGKV\n")
        assert status == 200 and len(json.loads(body)["proteins"][0]["ss3"]) == 19
