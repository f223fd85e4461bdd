"""The fits of the alignment baseline's timings recover known curves."""
import pytest

from dbmtl.benchmark.fits import fit_all, fit_linear, fit_power


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
