"""The alignment baseline: databases are real sequences then shuffled copies, and MMseqs2 runs on tiny
databases (only when installed)."""
import random

import pytest

from dbmtl.benchmark.mmseqs import database_records, find_mmseqs, run_mmseqs_baseline
from dbmtl.readers.fasta import read_fasta


def test_databases_are_real_first_then_shuffled_copies_and_prefixes_of_each_other():
    rng = random.Random(0)
    real = [(f"p{i}", "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(20 + i))) for i in range(7)]
    small = list(database_records(real, 5))
    assert small == real[:5]
    big = list(database_records(real, 23, seed=3))
    assert len(big) == 23 and big[:7] == real
    assert big[:16] == list(database_records(real, 16, seed=3))  # any size is a prefix of a larger one
    for k, (rid, seq) in enumerate(big[7:]):
        src = real[k % 7][1]
        assert rid.endswith(real[k % 7][0]) and sorted(seq) == sorted(src)  # same length and composition
    assert sum(a[1] != b[1] for a, b in zip(big[7:14], real)) >= 6  # actually shuffled
    assert big != list(database_records(real, 23, seed=4))


@pytest.mark.skipif(find_mmseqs() is None, reason="mmseqs not installed (bash scripts/setup_benchmark.sh)")
def test_mmseqs_baseline_on_tiny_databases(tmp_path, data_dir):
    src = data_dir / "unlabeled/mmseqs2_examples"
    query = tmp_path / "q.fasta"
    recs = list(read_fasta(src / "QUERY.fasta", check_duplicates=False))[:10]
    query.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in recs))
    r = run_mmseqs_baseline(query, src / "DB.fasta.gz", [300, 600, 21_000], tmp_path / "w", threads=1,
                            easy_search_size=300, log=lambda m: None)
    assert [e["size"] for e in r["sizes"]] == [300, 600, 21_000]
    assert r["sizes"][-1]["shuffled"] == 1_000 and r["sizes"][0]["real"] == 300
    assert all(e["search_wall_s"] > 0 and e["hits"] >= 0 for e in r["sizes"])
    assert r["easy_search"]["returncode"] == 0 and r["queries"] == 10
    assert set(r["fits"]) == {"linear_all", "power_all"}  # 2 real sizes and 1 larger: too few for the others
    assert "predicted_s" in r["fits"]["linear_all"] and "c" in r["fits"]["power_all"]
    assert not list((tmp_path / "w").glob("db_*"))  # databases cleaned up
