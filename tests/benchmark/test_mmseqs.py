"""The alignment baseline: databases are real sequences then shuffled copies, the fits recover known
curves, and MMseqs2 runs on tiny databases (only when installed)."""
import random

import pytest

from dbmtl.benchmark.fits import fit_all, fit_linear, fit_power
from dbmtl.benchmark.mmseqs import database_records, find_mmseqs, run_mmseqs_baseline
from dbmtl.readers.fasta import read_fasta


def test_linear_fit_recovers_a_known_line_and_its_extrapolation():
    sizes = [5e3, 1e4, 2e4, 5e4, 1e5, 2e5]
    noise = [1.02, 0.98, 1.01, 0.99, 1.015, 0.985]
    secs = [(3.0 + 500e-6 * n) * e for n, e in zip(sizes, noise)]
    fit = fit_linear(sizes, secs, at=5.3e7)
    assert fit["a_s"] == pytest.approx(3.0, rel=0.1)
    assert fit["b_s_per_million"] == pytest.approx(500, rel=0.05)
    truth = 3.0 + 500e-6 * 5.3e7
    assert fit["ci95_s"][0] <= truth <= fit["ci95_s"][1]
    exact = fit_linear(sizes, [3.0 + 500e-6 * n for n in sizes])
    assert exact["predicted_s"] == pytest.approx(truth, rel=1e-6)


def test_power_fit_recovers_offset_and_exponent():
    sizes = [5e3, 1e4, 2e4, 5e4, 1e5, 2e5]
    fit = fit_power(sizes, [4.0 + 2e-3 * n**0.8 for n in sizes], at=1e7)
    assert fit["c"] == pytest.approx(0.8, abs=0.01)
    assert fit["a_s"] == pytest.approx(4.0, rel=0.05)
    assert fit["predicted_s"] == pytest.approx(4.0 + 2e-3 * 1e7**0.8, rel=0.1)
    assert fit["c_jackknife"][0] <= 0.8 + 0.01 and fit["c_jackknife"][1] >= 0.8 - 0.01


def test_fits_are_made_on_the_sizes_where_they_apply():
    sizes = [5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5]
    secs = [3.0, 4.0, 6.0, 9.0, 12.0, 18.0, 36.0]
    fits = fit_all(sizes, secs, n_real=20_000)
    assert fits["linear_large"]["sizes"] == [5e4, 1e5, 2e5, 5e5]
    assert fits["linear_real"]["sizes"] == [5e3, 1e4, 2e4]
    assert len(fits["linear_all"]["sizes"]) == len(fits["power_all"]["sizes"]) == 7
    assert "linear_large" not in fit_all(sizes[:5], secs[:5], n_real=20_000)  # two large sizes are not a fit


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
