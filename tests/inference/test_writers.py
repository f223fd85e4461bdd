"""File names made from protein ids: safe, bounded and distinct whatever the id."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from dbmtl.inference.writers import NAME_BYTES, safe_name

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


@pytest.mark.filterwarnings("ignore:Glyph")  # the title font lacks CJK; the file name is tested
def test_plots_of_long_and_non_latin_ids_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from dbmtl.reports.plots import write_plots

    record = {"id": "", "description": "", "length": 3, "sequence": "MKV", "ss3": "HHC",
              "ss3_probabilities": [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]}
    records = [dict(record, id=i) for i in ("A" * 300, "蛋白質" * 30, "A" * 299 + "B")]
    paths = write_plots(records, tmp_path)
    assert len({p.name for p in paths}) == 3 and all(p.exists() and len(p.name.encode()) <= NAME_BYTES + 4 for p in paths)
