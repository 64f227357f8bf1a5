"""Numerical kernels: within transformation and cluster sums against dense-dummy least squares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_eval.core import (
    complete_two_way_cells,
    demean,
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    small_sample_factor,
    unique_codes,
)
from finsam_eval.core.demean import _alternating_projections

TOL = 1e-9  # demeaned values against an exact least-squares solve


def _dense_residuals(x: np.ndarray, factors: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    """Weighted least-squares residuals on explicit dummies (the definition, small n only)."""
    dummies = np.column_stack([np.eye(f.max() + 1)[f] for f in factors])
    sw = np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(dummies * sw, x * sw, rcond=None)[0]
    return x - dummies @ coef


def _panel(n_units: int, n_times: int, rng: np.random.Generator):
    unit = np.repeat(np.arange(n_units), n_times)
    time = np.tile(np.arange(n_times), n_units)
    x = rng.normal(size=(len(unit), 3)) + unit[:, None] * 0.3 - time[:, None] * 0.2
    return unit, time, x


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_closed_form_balanced(shuffle: bool, weighted: bool) -> None:
    rng = np.random.default_rng(0)
    unit, time, x = _panel(30, 7, rng)
    w = rng.uniform(0.5, 3, 30)[unit] if weighted else np.ones(len(unit))
    if shuffle:
        order = rng.permutation(len(unit))
        unit, time, x, w = unit[order], time[order], x[order], w[order]
    out = demean(x, [unit, time], w if weighted else None)
    assert out.method == "closed form"
    np.testing.assert_allclose(out.values, _dense_residuals(x, [unit, time], w), atol=TOL)


def test_closed_form_with_weights_constant_within_second_factor() -> None:
    rng = np.random.default_rng(1)
    unit, time, x = _panel(12, 9, rng)
    w = rng.uniform(0.5, 3, 9)[time]
    out = demean(x, [unit, time], w)
    assert out.method == "closed form"
    np.testing.assert_allclose(out.values, _dense_residuals(x, [unit, time], w), atol=TOL)


def test_two_way_unbalanced_weighted_direct_and_alternating() -> None:
    rng = np.random.default_rng(2)
    unit, time, x = _panel(60, 12, rng)
    keep = rng.random(len(unit)) > 0.3
    unit, time, x = unit[keep], time[keep], x[keep]
    w = rng.uniform(0.2, 5, len(unit))  # varies within unit: no closed form
    expected = _dense_residuals(x, [unit, time], w)
    out = demean(x, [unit, time], w, tol=1e-13)
    assert out.method == "direct solve" and out.converged
    np.testing.assert_allclose(out.values, expected, atol=TOL)
    # the factor order does not matter, nor does the route
    swapped = demean(x, [time, unit], w, tol=1e-13)
    np.testing.assert_allclose(swapped.values, expected, atol=TOL)
    values, _, converged = _alternating_projections(x, [(unit, 60), (time, 12)], w, 1e-13, 10**5)
    assert converged
    np.testing.assert_allclose(values, expected, atol=TOL)


def test_direct_solve_disconnected_layout() -> None:
    # two groups of units observed in disjoint years: two connected components, so the reduced
    # year system has two zero eigenvalues; the residuals are still the least-squares ones
    unit = np.repeat(np.arange(8), 3)
    time = np.where(unit < 4, 0, 3) + np.tile(np.arange(3), 8)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(len(unit), 2))
    out = demean(x, [unit, time])
    assert out.method == "direct solve"
    np.testing.assert_allclose(out.values, _dense_residuals(x, [unit, time], np.ones(24)), atol=TOL)


def test_alternating_projections_three_factors_and_1d_input() -> None:
    rng = np.random.default_rng(3)
    unit, time, x = _panel(25, 8, rng)
    third = rng.integers(0, 5, len(unit))
    out = demean(x[:, 0], [unit, time, third])
    assert out.values.shape == (len(unit), 1) and out.converged
    expected = _dense_residuals(x[:, :1], [unit, time, third], np.ones(len(unit)))
    np.testing.assert_allclose(out.values, expected, atol=TOL)


def test_weighted_balanced_but_varying_weights_falls_back() -> None:
    rng = np.random.default_rng(4)
    unit, time, x = _panel(15, 6, rng)
    w = rng.uniform(0.5, 2, len(unit))
    out = demean(x, [unit, time], w, tol=1e-13)
    assert out.method == "direct solve"
    np.testing.assert_allclose(out.values, _dense_residuals(x, [unit, time], w), atol=TOL)


def test_single_factor_is_one_projection() -> None:
    rng = np.random.default_rng(5)
    unit, _, x = _panel(10, 4, rng)
    out = demean(x, [unit])
    expected = x - pd.DataFrame(x).groupby(unit).transform("mean").to_numpy()
    np.testing.assert_allclose(out.values, expected, atol=1e-12)


def test_complete_layout_detects_duplicated_pairs() -> None:
    # margins are balanced (each unit twice, each time twice) but pairs repeat
    rows = np.array([0, 0, 1, 1])
    cols = np.array([0, 0, 1, 1])
    assert complete_two_way_cells(rows, cols, 2, 2) is None
    assert complete_two_way_cells(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]), 2, 2) is not None


def test_demean_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="integer"):
        demean(np.ones(3), [np.array([0.0, 1.0, 1.0])])
    with pytest.raises(ValueError, match="weights"):
        demean(np.ones(3), [np.array([0, 1, 1])], np.array([1.0, -1.0, 1.0]))


def test_group_sums_matches_groupby() -> None:
    rng = np.random.default_rng(6)
    values = rng.normal(size=(50, 3))
    groups = rng.integers(0, 7, 50)
    weights = rng.normal(size=50)
    expected = pd.DataFrame(values * weights[:, None]).groupby(groups).sum().to_numpy()
    np.testing.assert_allclose(group_sums(values, groups, 7, weights), expected, atol=1e-12)
    np.testing.assert_allclose(
        group_sums(values[:, 0], groups, 7), np.bincount(groups, values[:, 0])
    )


def test_nesting_and_parameter_count() -> None:
    unit = np.repeat(np.arange(6), 4)
    time = np.tile(np.arange(4), 6)
    region = unit // 2
    assert is_nested(unit, region) and is_nested(unit, unit)
    assert not is_nested(time, region)
    # unit effects nested in the clusters count as one; year effects count their levels
    assert n_params_with_fixed_effects(3, [6, 4], [True, False]) == 3 + 4
    assert n_params_with_fixed_effects(3, [6, 4]) == 3 + 6 + 4 - 1


def test_small_sample_factors() -> None:
    assert small_sample_factor("CRV1", 100, 10, 20) == pytest.approx(20 / 19 * 99 / 90)
    assert small_sample_factor("HC1", 100, 10) == pytest.approx(100 / 90)
    assert small_sample_factor("iid", 100, 10) == pytest.approx(1 / 90)
    with pytest.raises(ValueError, match="2 clusters"):
        small_sample_factor("CRV1", 100, 10, 1)


def test_multiplier_bootstrap_many_equals_separate_calls() -> None:
    # one set of multipliers for several influence matrices: each result is bit-identical to
    # its own call with a generator in the same state
    from finsam_eval.core.multiplier import multiplier_bootstrap, multiplier_bootstrap_many

    rng = np.random.default_rng(8)
    first, second = rng.normal(size=(300, 4)), rng.normal(size=(300, 1))
    cluster = rng.integers(0, 40, 300)
    many = multiplier_bootstrap_many(
        [first, second], 499, np.random.default_rng(3), cluster=cluster, block=64
    )
    for influence, result in zip([first, second], many, strict=True):
        alone = multiplier_bootstrap(
            influence, 499, np.random.default_rng(3), cluster=cluster, block=64
        )
        np.testing.assert_array_equal(result.draws, alone.draws)
        np.testing.assert_array_equal(result.se, alone.se)
        assert result.critical_value == alone.critical_value
    # and the draws are the bootstrap's: their spread matches the analytic cluster-robust SE
    from finsam_eval.core.multiplier import analytic_se

    np.testing.assert_allclose(many[0].se, analytic_se(first, cluster), rtol=0.15)


def test_blas_threads_caps_and_restores() -> None:
    from threadpoolctl import threadpool_info

    from finsam_eval.core.blas import blas_threads

    def blas_threads_now() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads_now()
    assert before  # numpy's BLAS is loaded
    with blas_threads(1):
        assert blas_threads_now() == [1] * len(before)
        a = np.arange(12.0).reshape(3, 4)
        np.testing.assert_array_equal(a @ a.T, np.einsum("ij,kj->ik", a, a))
    assert blas_threads_now() == before
    with blas_threads(None):
        assert blas_threads_now() == before


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).integers(-5, 2000, 50_000),  # cohort × event-time keys
        np.array([2011, 0, 2011, 2005, 0]),
        np.array([7]),
        np.random.default_rng(2).integers(0, 2**40, 1000),  # too wide a range: np.unique
        np.random.default_rng(3).integers(0, 100, 500).astype(np.int32),
        np.array([0.5, -1.0, 0.5]),  # not integers: np.unique
        np.array([], dtype=np.int64),
    ],
)
def test_unique_codes_equals_numpy_unique(values: np.ndarray) -> None:
    # the reference is numpy's own definition; values, dtypes and codes must agree exactly
    expected, expected_codes = np.unique(values, return_inverse=True)
    got, codes = unique_codes(values)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert codes.dtype == expected_codes.dtype and np.array_equal(codes, expected_codes)
