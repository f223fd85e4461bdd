"""The benchmark's forward worker: a timed forward pass whose fraction of peak is sane."""
import math

import pytest

from dbmtl.benchmark.workers import forward_worker


def test_forward_worker_reports_a_sane_fraction_of_peak():
    r = forward_worker({"config": "tiny", "dtype": "fp32", "device": "cpu", "threads": 1, "batch": 2, "length": 64,
                        "min_time": 0.0, "max_repeats": 1})
    assert r["params"] > 0 and r["seconds"] > 0 and r["peak"]["flops"] > 0
    assert r["flops_per_s"] == pytest.approx(r["flops"]["total"] / r["seconds"])
    assert 0 < r["fraction_of_peak"] < 10 and math.isfinite(r["fraction_of_peak"])
    assert r["max_rss_mib"] > 0
