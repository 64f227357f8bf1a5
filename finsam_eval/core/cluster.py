"""Cluster sums and small-sample factors for sandwich variance estimators.

The cluster-robust (CRV1) covariance of weighted least-squares slopes on within-transformed
regressors :math:`\\tilde Z` with residuals :math:`\\hat u` and analytic weights :math:`w` is

.. math::

    \\hat V = c \\, (\\tilde Z'W\\tilde Z)^{-1}
    \\Big(\\sum_{g=1}^{G} s_g s_g'\\Big) (\\tilde Z'W\\tilde Z)^{-1},
    \\qquad s_g = \\sum_{i \\in g} w_i \\hat u_i \\tilde z_i,

with the CR1 factor :math:`c = \\frac{G}{G-1}\\frac{N-1}{N-K}` (Cameron, Gelbach & Miller 2011;
Cameron & Miller 2015). HC1 replaces clusters by observations with :math:`c = N/(N-K)`, and the
iid estimator is :math:`\\hat\\sigma^2 (\\tilde Z'W\\tilde Z)^{-1}` with
:math:`\\hat\\sigma^2 = \\sum_i w_i\\hat u_i^2/(N-K)`.

:math:`K` counts the slopes and the fixed effects with fixest's convention
(``ssc(fixef.K = "nested")``, also Stata's ``xtreg, fe vce(cluster)``): a fixed effect whose every
level lies inside one cluster is *nested* and counts as one parameter, because its levels are
already absorbed by the cluster sums; every other fixed effect counts its levels, less one per
fixed effect after the first for the redundant level. With unit and year effects and clusters at
the unit level or coarser, :math:`K = k + T`. Nesting is only used for clustered variances; iid
and HC1 count every level.

References
----------
Cameron, A. C., Gelbach, J. B., & Miller, D. L. (2011). Robust inference with multiway clustering.
Journal of Business & Economic Statistics 29(2), 238–249.
Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference.
Journal of Human Resources 50(2), 317–372.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "group_sums",
    "unique_codes",
    "is_nested",
    "n_params_with_fixed_effects",
    "sandwich",
    "small_sample_factor",
]

# from this many columns on, one sparse indicator product is cheaper than per-column bincounts
_SPARSE_FROM = 8


def group_sums(
    values: np.ndarray, groups: np.ndarray, n_groups: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Sums of ``weights * values`` rows within groups, shape (n_groups, p).

    With ``weights = w * residual`` and ``values`` the demeaned regressors, the rows are the
    cluster scores :math:`s_g`. A sparse group-indicator product does all columns in one pass
    without materialising the n × p product ``weights[:, None] * values``.
    """
    values = np.asarray(values, dtype=np.float64)
    one_dim = values.ndim == 1
    if one_dim:
        values = values[:, None]
    n, p = values.shape
    if n_groups == n and np.array_equal(groups, np.arange(n)):
        # every row its own group in order (clusters = units): the sums are the rows themselves
        out = values.copy() if weights is None else values * np.asarray(weights)[:, None]
    elif p < _SPARSE_FROM:
        # a few columns: one bincount each beats building the sparse indicator
        out = np.empty((n_groups, p))
        for j in range(p):
            column = values[:, j] if weights is None else values[:, j] * weights
            out[:, j] = np.bincount(groups, weights=column, minlength=n_groups)
    else:
        import scipy.sparse as sp  # here, not at import: ~0.1 s of `import finsam_eval`

        data = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        indicator = sp.csr_matrix((data, (groups, np.arange(n))), shape=(n_groups, n))
        out = np.asarray(indicator @ values)
    return out[:, 0] if one_dim else out


def unique_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of a 1-d array, without sorting integers.

    Integer values within a moderate range (cohorts, years, cohort × event-time keys) are coded
    by one bincount over the range instead of a sort of all n values: the same sorted distinct
    values and codes, several times faster for the million-row arrays of the event-study
    estimators (issue 16). Other arrays go to ``np.unique``.
    """
    values = np.asarray(values)
    if values.ndim == 1 and values.size and values.dtype.kind in "iu":
        low = int(values.min())
        span = int(values.max()) - low + 1
        if span <= 4 * values.size + (1 << 20):
            offset = (values - low).astype(np.int64, copy=False)
            present = np.bincount(offset, minlength=span) > 0
            codes = (np.cumsum(present) - 1)[offset]
            return (np.flatnonzero(present) + low).astype(values.dtype), codes
    return np.unique(values, return_inverse=True)


def is_nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether every level of the integer-coded ``inner`` lies within a single ``outer`` level."""
    inner = np.asarray(inner)
    outer = np.asarray(outer)
    if inner.size == 0:
        return True
    # write one outer level per inner level (the last one wins), then check every row agrees
    outer_of = np.empty(int(inner.max()) + 1, dtype=outer.dtype)
    outer_of[inner] = outer
    return bool(np.array_equal(outer_of[inner], outer))


def n_params_with_fixed_effects(
    n_slopes: int, fe_levels: Sequence[int], fe_nested: Sequence[bool] | None = None
) -> int:
    """Parameter count :math:`K` for small-sample factors (fixest's ``fixef.K = "nested"``).

    Parameters
    ----------
    n_slopes
        Estimated (non-collinear) slope coefficients.
    fe_levels
        Levels of each fixed effect.
    fe_nested
        Whether each fixed effect is nested in the clusters (each nested one counts as 1);
        None for unclustered variances.

    Returns
    -------
    int
        ``n_slopes + sum(levels) - (n_fe - 1)``, with each nested fixed effect's levels replaced
        by one.
    """
    levels = list(fe_levels)
    nested = list(fe_nested) if fe_nested is not None else [False] * len(levels)
    if not levels:
        return n_slopes
    counted = sum(1 if is_in else n for n, is_in in zip(levels, nested, strict=True))
    return n_slopes + counted - (len(levels) - 1)


def small_sample_factor(
    kind: str, n_obs: int, n_params: int, n_clusters: int | None = None
) -> float:
    """Small-sample factor :math:`c` multiplying the sandwich.

    ``kind`` is "CRV1" (:math:`\\frac{G}{G-1}\\frac{N-1}{N-K}`), "HC1" (:math:`\\frac{N}{N-K}`) or
    "iid" (:math:`\\frac{1}{N-K}`, the divisor of :math:`\\hat\\sigma^2`).
    """
    if n_obs <= n_params:
        raise ValueError(f"{n_obs} observations cannot identify {n_params} parameters")
    if kind == "CRV1":
        if n_clusters is None or n_clusters < 2:
            raise ValueError(f"cluster-robust variance needs at least 2 clusters, got {n_clusters}")
        return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)
    if kind == "HC1":
        return n_obs / (n_obs - n_params)
    if kind == "iid":
        return 1.0 / (n_obs - n_params)
    raise ValueError(f"kind must be 'CRV1', 'HC1' or 'iid', got {kind!r}")


def sandwich(bread_inverse: np.ndarray, meat: np.ndarray, factor: float) -> np.ndarray:
    """:math:`c\\,B^{-1} M B^{-1}`, symmetrised against rounding."""
    v = factor * (bread_inverse @ meat @ bread_inverse)
    return (v + v.T) / 2
