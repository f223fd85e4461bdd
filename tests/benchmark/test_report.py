"""The benchmark's targets, checked against the measurements of a run: each target is there when its
measurement is, with the ratio it was judged by and whether it was met."""
from __future__ import annotations

import pytest

from dbmtl.benchmark.report import check_targets


def run(memory_late: float = 520.0, **mmseqs) -> dict:
    """A run's measurements: the default config predicted in float32 (8 s) and bfloat16 (4 s), forward
    passes at 62% and 30% of peak (int8 has no peak), a first prediction, a memory curve."""
    return {
        "configs": [{"config": "default", "predict": [
            {"dtype": "fp32", "wall_s": 8.0, "proteins": 10, "ms_per_protein": 800.0},
            {"dtype": "bf16", "wall_s": 4.0, "proteins": 10, "ms_per_protein": 400.0}],
            "forward": [{"dtype": "fp32", "batch": 2, "length": 64, "fraction_of_peak": 0.62},
                        {"dtype": "bf16", "batch": 2, "length": 64, "fraction_of_peak": 0.30},
                        {"dtype": "int8", "batch": 2, "length": 64}]}],
        "mmseqs": mmseqs,
        "latency": {"best_s": 1.4, "target_s": 2.0, "repeats": 3, "model_loaded_best_s": 0.6, "met": True},
        "memory": {"proteins": 100_000, "rss_max_10_25pct_mib": 500.0, "rss_max_75_100pct_mib": memory_late},
    }


def test_every_measured_target_is_judged_against_the_best_precision():
    mm = {"easy_search": {"wall_s": 6.0, "size": 21_000},
          "fits": {"linear_all": {"ms_per_query_at_uniref50": 30_000.0}, "power_all": {"ms_per_query_at_uniref50": 60_000.0}}}
    targets = check_targets(run(**mm))
    easy, extrapolated, fp32, bf16, latency, memory = targets
    assert "10 query proteins faster than mmseqs easy-search against 21,000" in easy["target"]
    assert (easy["dbmtl_s"], easy["dbmtl_dtype"], easy["ratio"], easy["met"]) == (4.0, "bf16", 1.5, True)
    # 30 s per query at UniRef50 is 75x bfloat16's 400 ms per protein: short of 100x; the power law says 150x
    assert "fit `linear_all`" in extrapolated["target"] and not extrapolated["met"]
    assert extrapolated["ratio"] == pytest.approx(75)
    assert extrapolated["ratios_other_fits"] == pytest.approx({"linear_all": 75, "power_all": 150})
    assert (fp32["fraction"], fp32["met"], bf16["fraction"], bf16["met"]) == (0.62, True, 0.30, False)
    assert "(fp32) >= 50% of the fp32 matmul peak" in fp32["target"]
    assert (latency["first_prediction_s"], latency["met"]) == (1.4, True) and "within 2 s" in latency["target"]
    assert (memory["growth_mib"], memory["met"]) == (20.0, True)  # within 5% of 500 MiB


def test_a_target_without_its_measurement_is_left_out_and_growth_beyond_five_percent_fails():
    targets = check_targets(run(memory_late=530.0))  # no MMseqs2 run
    assert not any("mmseqs" in t["target"].lower() for t in targets)
    assert [t["met"] for t in targets if "growth_mib" in t] == [False]
    assert len(targets) == 4  # two forward passes, the first prediction, the memory
    linear_large = {"easy_search": {"wall_s": 2.0, "size": 600}, "fits": {
        "linear_large": {"ms_per_query_at_uniref50": 80_000.0}, "linear_all": {"ms_per_query_at_uniref50": 1.0}}}
    easy, extrapolated = check_targets(run(**linear_large))[:2]
    assert not easy["met"] and easy["ratio"] == 0.5
    assert "fit `linear_large`" in extrapolated["target"] and extrapolated["met"]  # the primary fit when there is one
