"""Normal, t, chi-squared and F tails and quantiles without importing scipy.stats.

``scipy.stats`` takes about half a second to import, most of the library's inference needs only
these few functions, and scipy.stats' frozen-distribution machinery adds ~0.1 ms of argument
handling per call (issue 16). Each function here evaluates the same ``scipy.special`` routine
that the matching ``scipy.stats`` method calls (``norm.ppf`` is ``ndtri``, ``t.sf`` is
``stdtr(df, -x)``, ``chi2.sf`` is ``chdtrc``, ``f.sf`` is ``fdtrc``), so the values are
bit-identical to scipy.stats'; the edges that scipy.stats handles outside the special function
(the support's ends, invalid degrees of freedom) are handled the same way here.
tests/test_distributions.py checks both against scipy.stats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["chi2_sf", "f_sf", "norm_cdf", "norm_isf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]


def _scalar_or_array(value: np.ndarray) -> Any:
    # scipy.stats returns a numpy scalar for scalar input
    return value[()] if value.ndim == 0 else value


def norm_ppf(q: Any) -> Any:
    """Standard normal quantile (``scipy.stats.norm.ppf``)."""
    from scipy.special import ndtri

    return ndtri(q)


def norm_isf(q: Any) -> Any:
    """Standard normal upper quantile (``scipy.stats.norm.isf``)."""
    from scipy.special import ndtri

    return -ndtri(q)


def norm_cdf(x: Any) -> Any:
    """Standard normal distribution function (``scipy.stats.norm.cdf``)."""
    from scipy.special import ndtr

    return ndtr(x)


def norm_sf(x: Any) -> Any:
    """Standard normal upper tail (``scipy.stats.norm.sf``)."""
    from scipy.special import ndtr

    return ndtr(np.negative(x))


def _valid_df(*dfs: np.ndarray) -> np.ndarray:
    valid = np.ones(np.broadcast(*dfs).shape, dtype=bool)
    for df in dfs:
        valid &= df > 0
    return valid


def t_sf(x: Any, df: Any) -> Any:
    """Student t upper tail (``scipy.stats.t.sf``)."""
    from scipy.special import stdtr

    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(_valid_df(df), stdtr(df, -x), np.nan)
        # scipy.stats sets the support's ends itself
        out = np.where(np.isposinf(x) & (df > 0), 0.0, out)
        out = np.where(np.isneginf(x) & (df > 0), 1.0, out)
    return _scalar_or_array(np.asarray(out, dtype=float))


def t_ppf(q: Any, df: Any) -> Any:
    """Student t quantile (``scipy.stats.t.ppf``)."""
    from scipy.special import stdtrit

    q, df = np.asarray(q, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        valid = _valid_df(df) & (q >= 0) & (q <= 1)
        out = np.where(valid, stdtrit(df, q), np.nan)
        out = np.where(valid & (q == 0), -np.inf, out)
        out = np.where(valid & (q == 1), np.inf, out)
    return _scalar_or_array(np.asarray(out, dtype=float))


def chi2_sf(x: Any, df: Any) -> Any:
    """Chi-squared upper tail (``scipy.stats.chi2.sf``)."""
    from scipy.special import chdtrc

    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        inside = (x > 0) & np.isfinite(x)
        out = np.where(inside, chdtrc(df, np.where(inside, x, 1.0)), np.nan)
        out = np.where(x <= 0, 1.0, out)
        out = np.where(np.isposinf(x), 0.0, out)
        out = np.where(_valid_df(df), out, np.nan)
    return _scalar_or_array(np.asarray(out, dtype=float))


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """F upper tail (``scipy.stats.f.sf``)."""
    from scipy.special import fdtrc

    x = np.asarray(x, dtype=float)
    dfn, dfd = np.asarray(dfn, dtype=float), np.asarray(dfd, dtype=float)
    with np.errstate(invalid="ignore"):
        inside = (x > 0) & np.isfinite(x)
        out = np.where(inside, fdtrc(dfn, dfd, np.where(inside, x, 1.0)), np.nan)
        out = np.where(x <= 0, 1.0, out)
        out = np.where(np.isposinf(x), 0.0, out)
        out = np.where(_valid_df(dfn, dfd), out, np.nan)
    return _scalar_or_array(np.asarray(out, dtype=float))
