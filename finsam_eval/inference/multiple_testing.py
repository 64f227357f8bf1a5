"""Multiple-testing adjustments of p-values across event times, outcomes and populations.

The ISF design tests many hypotheses (five outcomes × five populations × six follow-up years);
reading individual 5 % tests as findings inflates false positives. Four adjustments:

* ``"bonferroni"``: ``min(1, m p)``; controls the family-wise error rate (FWER) under any
  dependence, conservative.
* ``"holm"``: Holm's (1979) step-down version of Bonferroni; FWER under any dependence, uniformly
  more powerful than Bonferroni.
* ``"bh"``: Benjamini & Hochberg (1995) step-up; controls the false discovery rate (FDR) under
  independence or positive regression dependence, not the FWER.
* ``"romano_wolf"``: the bootstrap step-down procedure of Romano & Wolf (2005a, b) with the adjusted
  p-values of Romano & Wolf (2016); controls the FWER asymptotically and uses the joint
  dependence of the estimates (event-time estimates share control units and are strongly
  correlated), so it is less conservative than Holm when the tests are dependent.

Bonferroni, Holm and BH are computed by ``statsmodels.stats.multitest.multipletests`` (the tests
check it against the published formulas); Romano–Wolf needs joint bootstrap draws aligned with the table rows (layout below); they come for
free from the multiplier bootstrap of the influence functions (``core.multiplier``) or from
a wild cluster bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from finsam_eval.core.distributions import norm_isf

__all__ = ["METHODS", "adjust_pvalues", "romano_wolf"]

METHODS = ("romano_wolf", "holm", "bonferroni", "bh")


# statsmodels' names of the classical adjustments (Romano–Wolf is ours: it needs joint draws)
_STATSMODELS = {"bonferroni": "bonferroni", "holm": "holm", "bh": "fdr_bh"}


def _classical(p: np.ndarray, method: str) -> np.ndarray:
    """Bonferroni, Holm or Benjamini–Hochberg adjusted p-values via statsmodels' multipletests.

    Bonferroni ``min(1, m p)``; Holm (1979) ``p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))``;
    BH (1995) ``p_(i) -> min_{j >= i} min(1, m p_(j) / j)``.
    """
    # imported here: statsmodels (and scipy.stats under it) cost ~0.7 s at import, and the
    # default run adjusts by Romano–Wolf (issue 16)
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method=_STATSMODELS[method])[1]


def romano_wolf(t_obs: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """Romano–Wolf step-down adjusted p-values for two-sided tests.

    With hypotheses ordered by ``|t|`` from largest, ``|t_(1)| >= ... >= |t_(m)|``, the
    step ``k`` p-value is

    ``p_k = (1 + #{b : max_{j >= k} |t*_{b,(j)}| >= |t_(k)|}) / (B + 1)``

    and the adjusted p-values are ``max_{j <= k} p_j`` (Romano & Wolf 2016, Algorithm 4.1, with the
    ``+1`` that makes a test with ``B`` draws exact under exchangeability). The running maximum
    over the not-yet-rejected hypotheses is one reversed cumulative maximum over sorted columns.

    Parameters
    ----------
    t_obs
        Observed t-statistics, shape (m,).
    t_draws
        Bootstrap t-statistics *centred at the estimate*, shape (B, m), column ``j`` aligned with
        ``t_obs[j]``: ``(theta*_bj - theta_hat_j) / se_j`` (the null distribution of the t-stats).

    References
    ----------
    Romano, J. P. & Wolf, M. (2005). Stepwise multiple testing as formalized data snooping.
    Econometrica 73(4), 1237-1282.
    Romano, J. P. & Wolf, M. (2016). Efficient computation of adjusted p-values for
    resampling-based stepdown multiple testing. Statistics & Probability Letters 113, 38-40.
    """
    t_abs = np.abs(np.asarray(t_obs, dtype=float))
    draws = np.abs(np.asarray(t_draws, dtype=float))
    if draws.ndim != 2 or draws.shape[1] != len(t_abs):
        raise ValueError(
            f"draws must have shape (n_boot, {len(t_abs)}) aligned with the hypotheses, "
            f"got {draws.shape}"
        )
    order = np.argsort(-t_abs, kind="stable")
    # max over hypotheses k..m (in the sorted order): reversed cumulative maximum
    tail_max = np.maximum.accumulate(draws[:, order][:, ::-1], axis=1)[:, ::-1]
    exceed = (tail_max >= t_abs[order][None, :]).sum(axis=0)
    p_step = (1.0 + exceed) / (draws.shape[0] + 1.0)
    out = np.empty(len(t_abs))
    out[order] = np.maximum.accumulate(p_step)
    return out


def adjust_pvalues(
    table: pd.DataFrame,
    method: str = "romano_wolf",
    p_col: str = "p_value",
    family_cols: Sequence[str] | None = None,
    draws: np.ndarray | None = None,
    *,
    draws_kind: str = "t",
    estimate_col: str = "estimate",
    se_col: str = "se",
    out_col: str = "p_adjusted",
) -> pd.DataFrame:
    """Add adjusted p-values to a results table.

    Parameters
    ----------
    table
        One row per hypothesis (e.g. an event study, or several stacked with ``outcome`` and
        ``population`` columns). Rows with a missing p-value (e.g. the reference period) are
        left out of the family and get a missing adjusted p-value.
    method
        "romano_wolf", "holm", "bonferroni" or "bh".
    family_cols
        Columns defining families adjusted separately (e.g. ``["outcome", "population"]`` for one
        family per event study); default: the whole table is one family.
    draws
        Romano–Wolf only: joint bootstrap draws, shape ``(n_boot, len(table))``, column ``j``
        aligned with row ``j`` of ``table`` (by position). With ``draws_kind="t"`` (default)
        they are centred t-statistics ``(theta*_bj - theta_hat_j) / se_j``; with
        ``draws_kind="estimate"`` they are bootstrap estimates ``theta*_bj`` and are centred at
        ``table[estimate_col]`` and divided by ``table[se_col]`` here. Observed statistics are
        ``estimate / se`` (or, without those columns, ``Phi^{-1}(1 - p / 2)``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``out_col`` added; ``attrs["adjustment"]`` names the method.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"adjust_pvalues takes a DataFrame with a {p_col!r} column (one row per "
            f"hypothesis), got {type(table).__name__}"
        )
    if p_col not in table.columns:
        raise ValueError(
            f"column {p_col!r} not found in the table; columns: {list(table.columns)} "
            "(name the p-value column with p_col=)"
        )
    out = table.copy()
    numeric = pd.to_numeric(out[p_col], errors="coerce")
    bad = numeric.isna() & out[p_col].notna()
    if bad.any():
        raise ValueError(
            f"{p_col} must be numeric; non-numeric values in rows "
            f"{np.flatnonzero(bad.to_numpy())[:10].tolist()}"
        )
    p = numeric.to_numpy(dtype=float)
    outside = (p < 0) | (p > 1)
    if np.any(outside):
        raise ValueError(
            f"{p_col} has values outside [0, 1] in rows {np.flatnonzero(outside)[:10].tolist()}: "
            f"{p[outside][:10].tolist()}"
        )

    t_obs = t_draws = None
    if method == "romano_wolf":
        if draws is None:
            raise ValueError("method='romano_wolf' needs joint bootstrap draws")
        t_draws = np.asarray(draws, dtype=float)
        if t_draws.ndim != 2 or t_draws.shape[1] != len(out):
            raise ValueError(
                f"draws must have shape (n_boot, {len(out)}) aligned with the table rows, "
                f"got {t_draws.shape}"
            )
        has_est = {estimate_col, se_col}.issubset(out.columns)
        if has_est:
            est = out[estimate_col].to_numpy(dtype=float)
            se = out[se_col].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_obs = est / se
        else:
            t_obs = norm_isf(p / 2)
        if draws_kind == "estimate":
            if not has_est:
                raise ValueError(f"draws_kind='estimate' needs {estimate_col!r} and {se_col!r}")
            with np.errstate(divide="ignore", invalid="ignore"):
                t_draws = (t_draws - est[None, :]) / se[None, :]
        elif draws_kind != "t":
            raise ValueError(f"draws_kind must be 't' or 'estimate', got {draws_kind!r}")

    valid = np.isfinite(p)
    if t_obs is not None:
        valid &= np.isfinite(t_obs) & np.all(np.isfinite(t_draws), axis=0)
    if family_cols:
        codes = out.groupby(list(family_cols), sort=False, dropna=False).ngroup().to_numpy()
    else:
        codes = np.zeros(len(out), dtype=int)

    adjusted = np.full(len(out), np.nan)
    for code in np.unique(codes):  # one pass per family, not per row
        idx = np.flatnonzero((codes == code) & valid)
        if idx.size == 0:
            continue
        if method == "romano_wolf":
            adjusted[idx] = romano_wolf(t_obs[idx], t_draws[:, idx])
        else:
            adjusted[idx] = _classical(p[idx], method)
    out[out_col] = adjusted
    out.attrs["adjustment"] = method
    return out
