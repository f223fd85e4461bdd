"""The output writers: file names made from protein ids are safe, bounded and distinct whatever the id;
residues.tsv rows say what per-residue formatting says."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from dbmtl.inference.writers import NAME_BYTES, residue_rows, safe_name

from helpers import tiny_predictor


ids = st.text(min_size=0, max_size=400) | st.text("αβγ蛋白質ДНК🧬/.%~", min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(ids, ids)
def test_names_are_safe_bounded_and_distinct(tmp_path_factory, a, b):
    name = safe_name(a)
    assert 0 < len(name.encode("utf-8")) <= NAME_BYTES and name.isascii()
    assert "/" not in name and "\0" not in name and name not in (".", "..") and not name.startswith(".")
    assert safe_name(a) == name  # stable: a rerun names the same file
    if a != b:
        assert safe_name(b) != name
    folder = tmp_path_factory.mktemp("names")
    (folder / f"{name}.png").write_bytes(b"x")  # the file system takes it, with a suffix
    assert [p.name for p in folder.iterdir()] == [f"{name}.png"]


def test_short_ids_keep_their_readable_name_and_long_ones_a_hash():
    assert safe_name("sp|P68871|HBB_HUMAN") == "sp|P68871|HBB_HUMAN"
    assert safe_name("a/b") == "a%2Fb"
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    assert safe_name(long_a) != safe_name(long_b) and safe_name(long_a).startswith("x" * 80)
    cjk = "蛋" * 40  # 120 bytes of UTF-8, 360 characters %-escaped
    assert len(safe_name(cjk)) <= NAME_BYTES and "%" in safe_name(cjk)


def test_residue_rows_match_per_residue_formatting():
    p = tiny_predictor(kind="encoder").predict({"x1": "MKTAYIAKQRQ"})[0]
    p.probabilities["ss3"][:4] = np.float32([[0.12345, 0.5, 0.37655], [0.00005, 0.99995, 0.0],
                                             [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    tasks = ["ss3", "ss8"]
    expected = []
    for i, aa in enumerate(p.sequence):
        cells = [p.id, str(i + 1), aa] + [p.labels[t][i] for t in tasks]
        cells += [f"{v:.4f}" for t in tasks for v in p.probabilities[t][i]]
        expected.append("\t".join(cells))
    assert residue_rows(p, tasks) == "\n".join(expected) + "\n"


def test_safe_names_are_distinct():
    ids = ["a/b", "a%2Fb", "a_b", ".", "..", ".x"]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids) and all("/" not in n and n not in (".", "..") for n in names)
