"""Estimates pooled over adoption calendars compatible with the documented facts.

Most kommuner's join years are known only as intervals (docs/real-data.md; the registry's
``compatible_calendars`` draws complete calendars that honour every documented fact). Treating
the unknown cohort as missing data, :func:`estimate_over_calendars` fits the estimator once per
calendar draw :math:`m = 1..M` and pools with Rubin's rules (Rubin 1987, ch. 3): for each
event time, with draw estimates :math:`\\hat Q_m` and squared standard errors :math:`U_m`,

.. math::

    \\bar Q = M^{-1}\\textstyle\\sum_m \\hat Q_m,\\quad
    \\bar U = M^{-1}\\textstyle\\sum_m U_m,\\quad
    B = (M-1)^{-1}\\textstyle\\sum_m (\\hat Q_m - \\bar Q)^2,\\quad
    T = \\bar U + (1 + M^{-1}) B.

The pooled estimate is :math:`\\bar Q` with total standard error :math:`\\sqrt T` (``se``),
``within_se`` :math:`= \\sqrt{\\bar U}` (so ``se >= within_se`` always) and ``between_sd``
:math:`= \\sqrt B`. With :math:`r = (1 + M^{-1})B/\\bar U` the degrees of freedom are Rubin's
:math:`\\nu_M = (M-1)(1 + r^{-1})^2`; with a finite complete-data :math:`\\nu_{com}`
(``df_complete``) Barnard & Rubin's (1999) small-sample version
:math:`\\nu = (\\nu_M^{-1} + \\hat\\nu_{obs}^{-1})^{-1}`,
:math:`\\hat\\nu_{obs} = \\frac{\\nu_{com} + 1}{\\nu_{com} + 3}\\nu_{com}(1 - \\lambda)`,
:math:`\\lambda = (1 + M^{-1})B/T` (:math:`\\nu_{com}` itself when :math:`B = 0`).
Intervals and p-values use :math:`t_\\nu` (normal when :math:`\\nu` is infinite: :math:`B = 0`
without a complete-data df). ``fraction_missing_info`` is Rubin's
:math:`\\gamma = (r + 2/(\\nu + 3))/(1 + r)`.

Event times present in only some draws (a draw without a cohort old enough to reach event
time 6, say) are pooled over the draws that have them, with :math:`M` replaced by their number
``n_draws`` (reported per row, and listed in ``info["partial_event_times"]`` with a warning).

Work that does not depend on the cohorts is shared: with ``method="cs"`` the panel is
validated, balanced and coded once (``prepare_panel``) and only the cohort column changes per
draw (:func:`finsam_eval.estimators.callaway_santanna.fit_prepared`). Other methods are fitted
by ``estimate`` per draw, on the same data with the draw's cohort column.

Calendars drawn from the documented facts alone ignore the outcomes (improper imputation):
misclassified join years attenuate the estimates. ``imputation="outcome"`` first moves each
draw to one from the posterior given the facts and the outcomes (:func:`impute_calendars`,
data augmentation by :func:`augment_calendars`; Tanner & Wong 1987), which removes that bias;
its Rubin intervals are then conservative (97.5–100 % in the Monte Carlo): the imputation
model is more informative than CS, the uncongenial case (Meng 1994), and the imputation error
is negatively correlated with the sampling error. ``variance="bootstrap"`` replaces Rubin's
variance of the event study by a wild bootstrap of the whole procedure
(:mod:`finsam_eval.estimators.calendar_bootstrap`), calibrated in the Monte Carlo.
docs/methods.md gives the Monte Carlo figures and the alternatives measured.

References
----------
Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
Barnard, J., & Rubin, D. B. (1999). Small-sample degrees of freedom with multiple imputation.
Biometrika 86(4), 948–955.
Tanner, M. A., & Wong, W. H. (1987). The calculation of posterior distributions by data
augmentation. JASA 82(398), 528–540.
Meng, X.-L. (1994). Multiple-imputation inferences with uncongenial sources of input.
Statistical Science 9(4), 538–558.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.estimators.api import estimate
from finsam_eval.estimators.event_study import t_table
from finsam_eval.estimators.prepare import EstimationInputError, prepare_panel
from finsam_eval.estimators.result import AggregationResult, EstimationResult
from finsam_eval.estimators.spec import few_clusters_inference

__all__ = [
    "IMPUTATION_MODES",
    "POOLED_COLUMNS",
    "augment_calendars",
    "check_imputation",
    "count_constraints",
    "estimate_over_calendars",
    "impute_calendars",
    "join_units",
    "rubin_pool",
]

#: Columns of a pooled event study (besides ``event_time`` and any ``reference`` flag).
POOLED_COLUMNS = [
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "p_value",
    "within_se",
    "between_sd",
    "min_estimate",
    "max_estimate",
    "fraction_missing_info",
    "df",
    "n_draws",
]

# options with which CS's draws share one prepared panel (the deprecated names bootstrap= and
# bootstrap_weights= take the per-draw estimate() path, which warns and renames them)
_CS_SHARED_OPTIONS = {
    "outcome", "unit", "time", "cohort", "control", "est_method", "covariates", "weights",
    "cluster", "anticipation", "base_period", "unbalanced", "window", "seed",
    "alpha", "bootstrap_att_gt", "cohorts", "reps", "multiplier",
}  # fmt: skip


def rubin_pool(
    estimates: np.ndarray, se: np.ndarray, alpha: float = 0.05, df_complete: float | None = None
) -> pd.DataFrame:
    """Rubin's rules for draws × quantities arrays (NaN = quantity absent in that draw).

    Parameters
    ----------
    estimates, se
        Shape (M, K): per draw, the estimates and their standard errors.
    alpha
        Level of the intervals.
    df_complete
        Complete-data degrees of freedom :math:`\\nu_{com}` (None: infinite, i.e. the draws'
        own inference is normal); finite values give Barnard & Rubin's (1999) df.

    Returns
    -------
    pandas.DataFrame
        One row per quantity, columns :data:`POOLED_COLUMNS` (see the module docstring).
    """
    q = np.asarray(estimates, dtype=float)
    u = np.square(np.asarray(se, dtype=float))
    present = np.isfinite(q) & np.isfinite(u)
    m = present.sum(axis=0).astype(float)
    q = np.where(present, q, np.nan)
    u = np.where(present, u, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        q_bar = np.nanmean(q, axis=0)
        u_bar = np.nanmean(u, axis=0)
        b = np.where(m > 1, np.nansum(np.square(q - q_bar), axis=0) / np.maximum(m - 1, 1), 0.0)
        inflate = 1.0 + 1.0 / m
        total = u_bar + inflate * b
        r = inflate * b / u_bar
        nu = np.where(b > 0, (m - 1) * np.square(1.0 + 1.0 / r), np.inf)
        if df_complete is not None and np.isfinite(df_complete):
            lam = inflate * b / total
            nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
            # without between-draw variance nothing is missing: the complete-data df apply
            nu = np.where(b > 0, 1.0 / (1.0 / nu + 1.0 / nu_obs), float(df_complete))
        fmi = np.where(b > 0, (r + 2.0 / (nu + 3.0)) / (1.0 + r), 0.0)
        se_total = np.sqrt(total)
        interval = t_table(q_bar, se_total, nu, alpha)
        q_min = np.nanmin(q, axis=0)
        q_max = np.nanmax(q, axis=0)
    return pd.DataFrame(
        {
            **interval,
            "within_se": np.sqrt(u_bar),
            "between_sd": np.sqrt(b),
            "min_estimate": q_min,
            "max_estimate": q_max,
            "fraction_missing_info": fmi,
            "df": nu,
            "n_draws": m.astype(int),
        }
    )


def _cohort_matrix(
    data: pd.DataFrame, calendars: pd.DataFrame, unit: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ids, the data's units, and cohorts (draws × units) from the long calendars."""
    missing = {"draw", "kommun_kod", "cohort"} - set(calendars.columns)
    if missing:
        raise EstimationInputError(
            f"calendars need columns draw, kommun_kod, cohort; missing {sorted(missing)}"
        )
    if calendars.empty:
        raise EstimationInputError("calendars is empty: no calendar draw to estimate over")
    cohort = pd.to_numeric(calendars["cohort"], errors="coerce")
    bad = cohort.isna() | (cohort < 0) | (cohort % 1 != 0)
    if bad.any():
        raise EstimationInputError(
            "calendar cohorts must be whole non-negative years (0 = not a member); bad rows:\n"
            + calendars.loc[bad].head(10).to_string(index=False)
        )
    dup = calendars.duplicated(["draw", "kommun_kod"], keep=False)
    if dup.any():
        raise EstimationInputError(
            "each kommun must appear once per draw; duplicated (draw, kommun_kod):\n"
            + calendars.loc[dup, ["draw", "kommun_kod"]].head(10).to_string(index=False)
        )
    units = pd.Index(pd.unique(data[unit]))
    draws = pd.Index(pd.unique(calendars["draw"])).sort_values()
    row = draws.get_indexer(calendars["draw"])
    col = units.get_indexer(calendars["kommun_kod"])
    matrix = np.full((len(draws), len(units)), -1, dtype=np.int64)
    known = col >= 0
    matrix[row[known], col[known]] = cohort.to_numpy()[known].astype(np.int64)
    absent = matrix < 0
    if absent.all():
        raise EstimationInputError(
            f"no kommun_kod of calendars matches data[{unit!r}] (e.g. {list(units[:3])} vs "
            f"{list(pd.unique(calendars['kommun_kod'])[:3])}): codes must be the same values "
            "and type (strings such as '0114')"
        )
    if absent.any():
        bad_draws = np.flatnonzero(absent.any(axis=1))
        lines = [
            f"draw {draws[d]}: {[str(u) for u in units[absent[d]][:10]]}"
            + (f" and {int(absent[d].sum()) - 10} more" if absent[d].sum() > 10 else "")
            for d in bad_draws[:5]
        ]
        raise EstimationInputError(
            f"calendars must give a cohort for every kommun of the data ({unit}); "
            f"{len(bad_draws)} draw(s) lack some:\n" + "\n".join(lines)
        )
    return draws.to_numpy(), units.to_numpy(), matrix


def _fit_draws_cs(
    data: pd.DataFrame, units: np.ndarray, matrix: np.ndarray, options: dict[str, Any]
) -> list[EstimationResult]:
    """CS on every draw, preparing the panel once (validation, balance, coding, clusters)."""
    from finsam_eval.estimators.callaway_santanna import fit_prepared

    unit = options.get("unit", "kommun_kod")
    cohort = options.get("cohort", "cohort")
    position = pd.Index(units).get_indexer(data[unit])
    prep_keys = ("outcome", "unit", "time", "cohort", "covariates", "weights", "cluster",
                 "anticipation", "control", "unbalanced")  # fmt: skip
    defaults = {"outcome": "share", "unit": "kommun_kod", "time": "year", "cohort": "cohort"}
    prep = {k: options.get(k, defaults.get(k)) for k in prep_keys if k in options or k in defaults}
    fit_keys = ("control", "est_method", "base_period", "unbalanced", "window", "reps",
                "seed", "alpha", "multiplier", "bootstrap_att_gt", "cohorts")  # fmt: skip
    fit_options = {k: options[k] for k in fit_keys if k in options}
    first = data.assign(**{cohort: matrix[0][position]})
    base = prepare_panel(
        first,
        prep.pop("outcome"),
        prep.pop("unit"),
        prep.pop("time"),
        prep.pop("cohort"),
        **prep,
    )
    anticipation = base.anticipation
    last_period = int(base.times[-1])
    # unit codes of the prepared panel -> columns of the cohort matrix
    label_col = pd.Index(units).get_indexer(base.unit_labels)
    unit_of_row = base.data["unit"].to_numpy()
    results = []
    for d in range(matrix.shape[0]):
        cohort_of_unit = matrix[d][label_col]
        # as prepare_panel: cohorts after the last period are untreated inside the panel
        cohort_of_unit = np.where(cohort_of_unit > last_period + anticipation, 0, cohort_of_unit)
        if options.get("control", "never") == "never" and not (cohort_of_unit == 0).any():
            raise EstimationInputError(
                f"calendar draw {d}: control='never' needs never-treated kommuner, but every "
                "kommun is a member in this draw; use control='notyet'"
            )
        panel = copy.copy(base)
        panel.data = base.data.copy()
        panel.data["cohort"] = cohort_of_unit[unit_of_row]
        panel.cohorts = np.unique(cohort_of_unit[cohort_of_unit > 0])
        panel.dropped = base.dropped.copy()
        panel.warnings = list(base.warnings)
        draw_options = _with_draw_cohorts(
            fit_options, panel.cohorts, base.times[0], anticipation, d
        )
        results.append(fit_prepared(panel, **draw_options))
    return results


def _pool_frames(
    frames: Sequence[pd.DataFrame], key: str, alpha: float, df_complete: float | None
) -> pd.DataFrame:
    """Pool tables with a ``key`` column and ``estimate``/``se`` over draws."""
    keys = np.unique(np.concatenate([f[key].to_numpy() for f in frames]))
    est = np.full((len(frames), len(keys)), np.nan)
    se = np.full((len(frames), len(keys)), np.nan)
    for d, frame in enumerate(frames):
        idx = np.searchsorted(keys, frame[key].to_numpy())
        est[d, idx] = frame["estimate"].to_numpy(dtype=float)
        se[d, idx] = frame["se"].to_numpy(dtype=float)
    out = rubin_pool(est, se, alpha, df_complete)
    if keys.dtype.kind == "f" and np.all(np.mod(keys, 1) == 0):
        keys = keys.astype(np.int64)  # cohorts and years come back as floats from aggregations
    out.insert(0, key, keys)
    if all("reference" in f.columns for f in frames):
        ref = pd.concat(frames).groupby(key)["reference"].any()
        out.insert(1, "reference", ref.reindex(keys).to_numpy(dtype=bool))
        # reference rows are normalised (estimate 0, no se) in every draw: copied, not pooled
        first = pd.concat(frames).drop_duplicates(key).set_index(key)
        ref_keys = out.loc[out["reference"], key]
        counts = pd.concat(frames)[key].value_counts()
        for col in ("estimate", "se", "ci_lower", "ci_upper", "p_value"):
            out.loc[out["reference"], col] = first.loc[ref_keys, col].to_numpy(dtype=float)
        out.loc[out["reference"], "within_se"] = out.loc[out["reference"], "se"]
        out.loc[out["reference"], ["between_sd", "fraction_missing_info"]] = 0.0
        out.loc[out["reference"], ["min_estimate", "max_estimate"]] = np.column_stack(
            [out.loc[out["reference"], "estimate"]] * 2
        )
        out.loc[out["reference"], "n_draws"] = counts.reindex(ref_keys).to_numpy()
    return out


def _pool_overall(
    overalls: Sequence[pd.Series], alpha: float, df_complete: float | None
) -> pd.Series:
    est = np.array([[float(o.get("estimate", np.nan))] for o in overalls])
    se = np.array([[float(o.get("se", np.nan))] for o in overalls])
    return rubin_pool(est, se, alpha, df_complete).iloc[0].rename(None)


def _pooled_vcov(results: Sequence[EstimationResult], times: np.ndarray) -> pd.DataFrame:
    """Rubin's total covariance over the event times every draw has (NaN elsewhere)."""
    out = pd.DataFrame(np.nan, index=times, columns=times)
    common = set(times.tolist())
    for res in results:
        common &= set(res.event_study["event_time"].tolist())
    common_times = np.array(sorted(common))
    if not len(common_times):
        return out.rename_axis(index="event_time", columns="event_time")
    m = len(results)
    est = np.array(
        [
            res.event_study["estimate"].to_numpy(dtype=float)[
                np.searchsorted(res.event_study["event_time"].to_numpy(), common_times)
            ]
            for res in results
        ]
    )
    within = np.mean(
        [res.vcov.reindex(index=common_times, columns=common_times).to_numpy() for res in results],
        axis=0,
    )
    between = np.cov(est, rowvar=False, ddof=1).reshape(len(common_times), -1) if m > 1 else 0.0
    out.loc[common_times, common_times] = within + (1 + 1 / m) * between
    return out.rename_axis(index="event_time", columns="event_time")


def _pooled_influence(
    results: Sequence[EstimationResult], event_study: pd.DataFrame
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Mean influence functions over draws, columns rescaled to the pooled total SEs.

    An approximation for procedures that need joint draws across event times and series (the
    pipeline's Romano–Wolf step): it keeps the draws' average correlation structure and the
    pooled (total) variances. None when the draws differ in units or event times.
    """
    first = results[0]
    if first.event_influence is None or first.unit_labels is None:
        return None, None
    times = event_study["event_time"].to_numpy()
    mats = []
    for res in results:
        if (
            res.event_influence is None
            or res.unit_labels is None
            or not np.array_equal(res.unit_labels, first.unit_labels)
            or not np.array_equal(res.event_study["event_time"].to_numpy(), times)
        ):
            return None, None
        mats.append(np.asarray(res.event_influence, dtype=float))
    mean = np.mean(mats, axis=0)
    n = mean.shape[0]
    implied = np.sqrt(np.einsum("ij,ij->j", mean, mean)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(implied > 0, event_study["se"].to_numpy(dtype=float) / implied, 0.0)
    return mean * scale[None, :], first.unit_labels


def _fit_draws(
    data: pd.DataFrame,
    method: str,
    options: dict[str, Any],
    draws: np.ndarray,
    units: np.ndarray,
    matrix: np.ndarray,
    alpha: float,
) -> tuple[list[EstimationResult], bool]:
    """Fit every calendar draw: (results, whether CS shared one preparation across draws)."""
    anticipation = int(options.get("anticipation", 0))
    time = options.get("time", "year")
    first_period = pd.to_numeric(data[time], errors="coerce").min() if time in data else np.nan
    # a draw with kommuner treated in the first period changes which units prepare_panel
    # keeps: then every draw is prepared on its own (as estimate, which reports the drops)
    early = ((matrix > 0) & (matrix - anticipation <= first_period)).any()
    shared = method == "cs" and set(options) <= _CS_SHARED_OPTIONS and not early
    if shared:
        results = _fit_draws_cs(data, units, matrix, options)
        # the shared preparation bypasses estimate(): apply its few-clusters rule per draw,
        # with one warning for all draws
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = [few_clusters_inference(r, alpha) for r in results]
        for message in dict.fromkeys(str(w.message) for w in caught):
            warnings.warn(message, UserWarning, stacklevel=3)
    else:
        cohort = options.get("cohort", "cohort")
        position = pd.Index(units).get_indexer(data[options.get("unit", "kommun_kod")])
        results = []
        for d in range(len(draws)):
            cohorts = matrix[d][position]
            draw_options = _with_draw_cohorts(options, np.unique(cohorts), first_period,
                                              anticipation, d)  # fmt: skip
            results.append(estimate(data.assign(**{cohort: cohorts}), method=method,
                                    **draw_options))  # fmt: skip
    return results, shared


def _with_draw_cohorts(
    options: dict[str, Any], cohorts: np.ndarray, first_period: Any, anticipation: int, draw: int
) -> dict[str, Any]:
    """``options`` with ``cohorts`` (the evaluated cohorts) cut to those this calendar draw
    gives the data's kommuner with a pre-period: a calendar may place none of a cohort's
    kommuner where another draw does. Raises if the draw gives none of them."""
    if options.get("cohorts") is None or not np.isfinite(float(first_period)):
        return options  # no evaluated cohorts, or no usable time column (estimate reports it)
    start = int(first_period) + int(anticipation)
    has_pre = {int(g) for g in cohorts if g > start}
    chosen = [int(g) for g in options["cohorts"] if int(g) in has_pre]
    if not chosen:
        raise EstimationInputError(
            f"calendar draw {draw} gives none of the evaluated cohorts "
            f"{list(options['cohorts'])} to the data's kommuner"
        )
    return {**options, "cohorts": chosen}


def estimate_over_calendars(
    data: pd.DataFrame,
    calendars: pd.DataFrame,
    method: str = "cs",
    *,
    df_complete: float | None = None,
    imputation: str = "prior",
    imputation_options: dict[str, Any] | None = None,
    variance: str = "rubin",
    variance_options: dict[str, Any] | None = None,
    **options: Any,
) -> EstimationResult:
    """Fit an estimator on every compatible adoption calendar and pool with Rubin's rules.

    Parameters
    ----------
    data
        Long panel as for ``finsam_eval.estimate``; its cohort column is replaced per draw.
    calendars
        Long frame ``draw``, ``kommun_kod``, ``cohort`` (0 = not a member within the
        documented horizon), e.g. ``finsam_eval.registry.compatible_calendars(n, seed)``.
        Every kommun of ``data`` must have a cohort in every draw (the error names those
        that lack one); calendar kommuner absent from ``data`` are ignored (counted in
        ``info["calendar_kommuner_not_in_data"]``).
    method
        Estimator key of ``estimate``. "cs" shares the panel preparation across draws.
    df_complete
        Complete-data degrees of freedom for Barnard & Rubin's (1999) df; None takes the
        estimator's own t degrees of freedom (``result.df_t``: TWFE and stacked, G − 1) or
        else treats each draw's inference as normal (CS's analytic inference).
    imputation
        "prior" (default): pool the given calendars as they are (draws from the documented
        facts alone). "outcome": first move each of them to a draw from the posterior given
        the facts and the outcomes (:func:`impute_calendars`, proper multiple imputation;
        removes the attenuation of the prior draws, see docs/methods.md).
    imputation_options
        Options of :func:`impute_calendars` (``seed``, ``model``, ``iterations``, ``swaps``,
        ``horizon``) for ``imputation="outcome"``.
    variance
        "rubin" (default): Rubin's total variance, ``se >= within_se``. "bootstrap" (with
        ``imputation="outcome"``): the event study's SEs, intervals and p-values come from a
        wild bootstrap of the whole procedure
        (:func:`finsam_eval.estimators.calendar_bootstrap.calendar_bootstrap`), which also
        counts how the imputed calendars respond to the noise; Rubin's rules overstate the
        variance then (docs/methods.md). Its SE may lie below ``within_se``; Rubin's is kept
        as ``rubin_se``, the bootstrap world's bias as ``bootstrap_bias``, ``df`` becomes
        replications − 1, and ``vcov`` and ``event_influence`` are rescaled to the new SEs.
        The overall effect and aggregations keep Rubin's variance.
    variance_options
        ``replications`` (40), ``chains`` (2: calendars imputed per bootstrap data set) and
        ``seed`` (0) of the bootstrap.
    **options
        ``estimate`` options (``unit``, ``cohort``, ``control``, ``window``, ``alpha``, ...).

    Returns
    -------
    EstimationResult
        ``method`` as given; ``event_study`` with ``event_time``, :data:`POOLED_COLUMNS`;
        ``overall`` pooled the same way; ``vcov`` Rubin's total covariance over the event
        times of every draw; ``event_influence`` the draws' mean influence functions scaled
        to the pooled SEs (an approximation, see ``_pooled_influence``); ``att_gt`` None (the
        group-time cells differ between calendars); ``aggregate(kind, ...)`` pools each
        draw's aggregation the same way; ``info`` the first draw's facts plus ``n_draws``,
        ``draws``, ``pooling``, ``partial_event_times`` and ``draw_estimates`` (long table of
        each draw's event-study estimates and SEs).

    References
    ----------
    Rubin (1987); Barnard & Rubin (1999): see the module docstring.
    """
    unit = options.get("unit", "kommun_kod")
    alpha = float(options.get("alpha", 0.05))
    if unit not in data.columns:
        raise EstimationInputError(f"data has no unit column {unit!r}")
    check_imputation(imputation, imputation_options)
    from finsam_eval.estimators.calendar_bootstrap import check_variance

    boot_options = check_variance(variance, variance_options, imputation)
    run = None
    if imputation == "outcome":
        calendars, run = _impute(
            data, calendars, outcome=options.get("outcome", "share"), unit=unit,
            time=options.get("time", "year"), **(imputation_options or {}),
        )  # fmt: skip
    draws, units, matrix = _cohort_matrix(data, calendars, unit)
    if len(draws) == 1:
        warnings.warn("one calendar draw: nothing to pool (between variance 0)", UserWarning,
                      stacklevel=2)  # fmt: skip
    results, shared = _fit_draws(data, method, options, draws, units, matrix, alpha)
    calendar_units = set(pd.unique(calendars["kommun_kod"]).tolist())
    pooled = pool_results(
        results,
        method,
        alpha,
        df_complete,
        {
            "n_draws": len(draws),
            "draws": draws.tolist(),
            "calendar_kommuner_not_in_data": len(calendar_units - set(units.tolist())),
            "shared_preparation": shared,
            "imputation": imputation,
            "calendars": calendars if imputation == "outcome" else None,
            "draw_estimates": pd.concat(
                [
                    r.event_study[["event_time", "estimate", "se"]].assign(draw=draw)
                    for draw, r in zip(draws, results, strict=True)
                ],
                ignore_index=True,
            )[["draw", "event_time", "estimate", "se"]],
            "warnings": sorted({w for r in results for w in r.info.get("warnings", [])}),
        },
    )
    event_study = pooled.event_study
    partial = event_study.loc[event_study["n_draws"] < len(draws), "event_time"].tolist()
    partial = [int(e) for e in partial]
    if partial:
        warnings.warn(
            f"event times {partial} are estimated in only some calendar draws and are pooled "
            "over those draws (n_draws in the event study)",
            UserWarning,
            stacklevel=2,
        )
    pooled.info["partial_event_times"] = partial
    pooled.info["pooling"] = "Rubin (1987) rules; df " + (
        "Barnard & Rubin (1999)" if pooled.info["df_complete"] is not None else "Rubin (1987)"
    )
    pooled.info["variance"] = "rubin"
    if variance == "bootstrap":
        _bootstrap_event_study(pooled, data, method, options, run, boot_options, alpha)
    return pooled


def _bootstrap_event_study(
    pooled: EstimationResult,
    data: pd.DataFrame,
    method: str,
    options: dict[str, Any],
    run: ImputationRun,
    boot_options: dict[str, int],
    alpha: float,
) -> None:
    """Replace the pooled event study's Rubin variance by the calendar bootstrap's."""
    from finsam_eval.estimators.calendar_bootstrap import calendar_bootstrap

    es = pooled.event_study
    event_times = es["event_time"].to_numpy()
    outcome = options.get("outcome", "share")
    rows_unit = pd.Index(run.units).get_indexer(data[options.get("unit", "kommun_kod")])
    rows_time = pd.Index(run.years).get_indexer(data[options.get("time", "year")])

    def pool(y_star: np.ndarray, cohorts: np.ndarray) -> np.ndarray:
        boot_data = data.assign(**{outcome: y_star[rows_unit, rows_time]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the analysis has reported the data's warnings
            results, _ = _fit_draws(boot_data, method, options, np.arange(len(cohorts)),
                                    run.units, cohorts, alpha)  # fmt: skip
        return np.vstack(
            [
                r.event_study.set_index("event_time")["estimate"]
                .reindex(event_times)
                .to_numpy(dtype=float)
                for r in results
            ]
        )

    boot = calendar_bootstrap(
        run.y, run.years, run.start, run.join, run.imputed, run.state, pool, event_times,
        replications=boot_options["replications"], chains=boot_options["chains"],
        rng=np.random.default_rng(boot_options["seed"]), counts=run.counts,
        chain_options=run.chain_options,
    )  # fmt: skip
    rubin_se = es["se"].to_numpy(dtype=float)
    se = np.where(np.isfinite(rubin_se), boot.se, np.nan)
    table = t_table(es["estimate"].to_numpy(dtype=float), se, boot.df, alpha)
    for col in ("se", "ci_lower", "ci_upper", "p_value"):
        es[col] = table[col]
    es["df"] = float(boot.df)
    es["rubin_se"] = rubin_se
    es["bootstrap_bias"] = boot.bias
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rubin_se > 0, se / rubin_se, np.nan)
    if pooled.event_influence is not None:
        pooled.event_influence = pooled.event_influence * np.nan_to_num(ratio)[None, :]
    scale = pd.Series(ratio, index=event_times)
    vcov = pooled.vcov
    pooled.vcov = vcov * np.outer(scale.reindex(vcov.index), scale.reindex(vcov.columns))
    pooled.info["variance"] = (
        f"calendar bootstrap: {boot.replications} wild-bootstrap data sets, {boot.chains} "
        f"imputed calendars each, seed {boot_options['seed']}"
    )


def pool_results(
    results: Sequence[EstimationResult],
    method: str,
    alpha: float,
    df_complete: float | None,
    facts: Mapping[str, Any],
) -> EstimationResult:
    """One result from fits of the same estimator on several calendars (Rubin's rules).

    The event study, overall effect and every aggregation are pooled with :func:`rubin_pool`
    (Rubin 1987; Barnard & Rubin 1999 with ``df_complete``), ``vcov`` is Rubin's total
    covariance and ``event_influence`` the draws' mean influence functions scaled to the pooled
    SEs (``_pooled_influence``); ``att_gt`` is None (the group-time cells differ between
    calendars). ``df_complete`` None takes the draws' own t degrees of freedom
    (``result.df_t``: TWFE and stacked G − 1, or the few-clusters rule's) if they have one, else
    treats their inference as normal. ``info`` is the first draw's, updated with ``facts`` and
    ``df_complete``.
    """
    if df_complete is None and results[0].df_t is not None:
        df_complete = float(results[0].df_t)
    event_study = _pool_frames([r.event_study for r in results], "event_time", alpha,
                               df_complete)  # fmt: skip
    influence, labels = _pooled_influence(results, event_study)

    def aggregator(kind: str, **agg_options: Any) -> AggregationResult:
        parts = [r.aggregate(kind, **agg_options) for r in results]
        table = None
        if all(not p.table.empty for p in parts):
            table = _pool_frames([p.table for p in parts], "key", alpha, df_complete)
        over = _pool_overall([p.overall for p in parts], alpha, df_complete)
        return AggregationResult(kind, table if table is not None else pd.DataFrame(), over)

    return EstimationResult(
        method=method,
        event_study=event_study,
        overall=_pool_overall([r.overall for r in results], alpha, df_complete),
        vcov=_pooled_vcov(results, event_study["event_time"].to_numpy()),
        att_gt=None,
        event_influence=influence,
        unit_labels=labels,
        info={**results[0].info, **facts, "df_complete": df_complete},
        aggregator=aggregator,
        overall_event_times=results[0].overall_event_times,
        influence_level=results[0].influence_level,
    )


#: Signature of a calendar sampler: ``(n, seed) -> DataFrame[draw, kommun_kod, cohort]``.
CalendarSampler = Callable[[int, int], pd.DataFrame]


# ----------------------------------------------------------------------------------------------
# outcome-informed calendars: proper multiple imputation by data augmentation

#: Calendar imputation modes of :func:`estimate_over_calendars` and ``simulate``.
IMPUTATION_MODES = ("prior", "outcome")


def check_imputation(imputation: str, imputation_options: Any, prefix: str = "") -> None:
    """Raise unless ``imputation`` is one of :data:`IMPUTATION_MODES` and
    ``imputation_options`` are given only with "outcome"; ``prefix`` is the caller's option
    prefix (power's ``calendar_``) so the message names the caller's own option."""
    if imputation not in IMPUTATION_MODES:
        raise EstimationInputError(
            f"{prefix}imputation must be one of {IMPUTATION_MODES}, got {imputation!r}"
        )
    if imputation_options and imputation != "outcome":
        raise EstimationInputError(
            f"{prefix}imputation_options apply to {prefix}imputation='outcome' only"
        )


def count_constraints(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calendar model's cumulative-count constraints as arrays (years, low, high).

    ``model.constraints`` bounds the number of members by the end of each listed year (the
    Tabell 1 counts, the April 2007 list, ``count_2005``); a calendar sampler that changes the
    yearly counts must keep each inside its bounds.
    """
    table = model.constraints.sort_values("year")
    return (
        table["year"].to_numpy(dtype=np.int64),
        table["low"].to_numpy(dtype=np.int64),
        table["high"].to_numpy(dtype=np.int64),
    )


def join_units(
    start: np.ndarray, model: Any, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join units of every chain: unit label (M, n; −1 fixed), and unit intervals lo, hi (M, U).

    A unit is a group of kommuner that join in one year (``model.kommuner['group']``) or a
    single kommun. Norra Västmanland's six candidates (three unnamed 2007 members) are split by
    the chain's start: the early ones form one unit inside [first year, 2007] (one unit each
    when ``listed_2007_join_together`` is off), the late ones single units after 2007; the
    choice of which three are early stays that of the start draw.
    """
    table = model.kommuner.set_index("kommun_kod").reindex(codes)
    if table["earliest"].isna().any():
        lacking = [str(c) for c in np.asarray(codes)[table["earliest"].isna().to_numpy()]]
        raise EstimationInputError(f"the calendar model has no kommuner {lacking[:10]}")
    lo_k = table["earliest"].to_numpy(dtype=np.int64)
    hi_k = table["latest"].to_numpy(dtype=np.int64)
    group = table["group"].fillna("").to_numpy(dtype=object)
    candidate = table["member_2007"].eq("candidate").to_numpy()
    together = bool(model.assumptions.listed_2007_join_together)
    late_from = 2008 if model.assumptions.no_joins_may_dec_2007 else 2007
    n_chain, n = start.shape
    labels = np.full((n_chain, n), -1, dtype=np.int64)
    lows, highs = [], []
    for m in range(n_chain):  # a handful of chains; the kommun work is vectorised
        name = group.copy()
        early = candidate & (start[m] > 0) & (start[m] <= 2007)
        name[early] = "__early_candidates" if together else ""
        key = np.where(name == "", np.array([f"__k{i}" for i in range(n)], dtype=object), name)
        uniq, inverse = np.unique(key.astype(str), return_inverse=True)
        lo = np.full(len(uniq), -(10**9), dtype=np.int64)
        hi = np.full(len(uniq), 10**9, dtype=np.int64)
        lo_m = np.where(candidate, np.where(early, lo_k, late_from), lo_k)
        hi_m = np.where(candidate & early, 2007, hi_k)
        np.maximum.at(lo, inverse, lo_m)
        np.minimum.at(hi, inverse, hi_m)
        # the start must be a compatible calendar: one year per unit, inside its interval
        first = np.full(len(uniq), -1, dtype=np.int64)
        first[inverse] = start[m]
        bad = (first[inverse] != start[m]) | ((lo_m > 0) & (start[m] > 0) & (
            (start[m] < lo[inverse]) | (start[m] > hi[inverse])))  # fmt: skip
        bad |= (lo[inverse] > 0) & (start[m] == 0)
        if bad.any():
            raise EstimationInputError(
                f"start calendar {m} is not compatible with the calendar model (join groups "
                "share one year inside their documented interval), e.g. kommuner "
                f"{[str(c) for c in np.asarray(codes)[bad][:10]]}: start from draws of "
                "compatible_calendars"
            )
        movable = (lo < hi) & (lo > 0)
        labels[m] = np.where(movable[inverse], inverse, -1)
        lows.append(np.where(movable, lo, 0))
        highs.append(np.where(movable, hi, 0))
    width = max(len(x) for x in lows)
    lo_u = np.zeros((n_chain, width), dtype=np.int64)
    hi_u = np.zeros((n_chain, width), dtype=np.int64)
    for m in range(n_chain):
        lo_u[m, : len(lows[m])] = lows[m]
        hi_u[m, : len(highs[m])] = highs[m]
    return labels, lo_u, hi_u


def _event_bins(cohort: np.ndarray, years: np.ndarray, horizon: int) -> np.ndarray:
    """Post-treatment event-time column (0..horizon, ends binned) per (…, year); −1 untreated."""
    last = years[-1]
    event = years - cohort[..., None]
    treated = (cohort[..., None] > 0) & (cohort[..., None] <= last) & (event >= 0)
    return np.where(treated, np.minimum(event, horizon), -1)


def _cohort_designs(cand_bins: np.ndarray, n_t: int, n_par: int) -> np.ndarray:
    """Design (G, T, p) of a kommun in each candidate cohort: year effects (the first year's
    is zero) then the cohort's event-time bins."""
    design = np.zeros((len(cand_bins), n_t, n_par))
    design[:, 1:, : n_t - 1] = np.eye(n_t - 1)[None]
    gg, tt = np.nonzero(cand_bins >= 0)
    design[gg, tt, n_t - 1 + cand_bins[gg, tt]] = 1.0
    return design


def _swap_round(
    cohort: np.ndarray,
    labels: np.ndarray,
    size: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    unit_ll: np.ndarray,
    cand: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One Metropolis round of year swaps between random disjoint pairs of join units of one
    size (both years inside both units' intervals): the units' new years (M, U)."""
    n_chain, n_units = lo.shape
    chains = np.arange(n_chain)
    movable_rows = labels >= 0
    unit_year = np.zeros((n_chain, n_units), dtype=np.int64)
    mc, mi = np.nonzero(movable_rows)
    unit_year[mc, labels[mc, mi]] = cohort[mc, mi]
    # random disjoint pairs among units of one size: sort by (size, random key)
    key = rng.random((n_chain, n_units))
    order = np.argsort(size * 2.0 + key, axis=1)
    left, right = order[:, 0:-1:2], order[:, 1::2]
    ya = np.take_along_axis(unit_year, left, 1)
    yb = np.take_along_axis(unit_year, right, 1)
    lo_a, hi_a = np.take_along_axis(lo, left, 1), np.take_along_axis(hi, left, 1)
    lo_b, hi_b = np.take_along_axis(lo, right, 1), np.take_along_axis(hi, right, 1)
    ok = (
        (np.take_along_axis(size, left, 1) == np.take_along_axis(size, right, 1))
        & (np.take_along_axis(size, left, 1) > 0)
        & (lo_a > 0) & (lo_b > 0) & (ya != yb)
        & (yb >= lo_a) & (yb <= hi_a) & (ya >= lo_b) & (ya <= hi_b)
    )  # fmt: skip
    ga, gb = np.searchsorted(cand, ya), np.searchsorted(cand, yb)
    rows = chains[:, None]
    delta = (
        unit_ll[rows, left, gb] - unit_ll[rows, left, ga]
        + unit_ll[rows, right, ga] - unit_ll[rows, right, gb]
    )  # fmt: skip
    accept = ok & (np.log(rng.random(ok.shape)) < delta)
    new_year = unit_year.copy()
    np.put_along_axis(new_year, left, np.where(accept, yb, ya), 1)
    np.put_along_axis(new_year, right, np.where(accept, ya, yb), 1)
    return new_year


def _count_start(
    counts: tuple | None, cohort: np.ndarray, labels: np.ndarray
) -> tuple[tuple | None, np.ndarray | None]:
    """(count constraints as integer arrays, cumulative members of the fixed kommuner per
    constrained year); raises when a start calendar breaks the constraints."""
    fixed_cum = None
    if counts is not None:
        counts = tuple(np.asarray(x, dtype=np.int64) for x in counts)
        full = _cumulative(cohort, counts[0])
        outside = ((full < counts[1]) | (full > counts[2])).any(axis=1)
        if outside.any():
            raise ValueError(
                f"start calendars {np.flatnonzero(outside)[:10].tolist()} break the count "
                f"constraints (members by {counts[0].tolist()} in [{counts[1].tolist()}, "
                f"{counts[2].tolist()}]): start from compatible calendars"
            )
        fixed_cum = _cumulative(np.where(labels >= 0, 0, cohort), counts[0])
    return counts, fixed_cum


def augment_calendars(
    y: np.ndarray,
    years: np.ndarray,
    start: np.ndarray,
    labels: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    horizon: int | None = None,
    iterations: int = 20,
    swaps: int = 4,
    rng: np.random.Generator,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    shift_steps: int = 8,
) -> np.ndarray:
    """Draw calendars from their posterior given the intervals and the outcomes (Gibbs sampler).

    Data augmentation (Tanner & Wong 1987) with one chain per start calendar. Working model:
    :math:`y_{it} = \\alpha_i + \\lambda_t + \\tau_{b(t - g_i)} + u_{it}`, post-treatment
    event-time effects :math:`\\tau_0..\\tau_H` (the last bins :math:`e \\ge H`), AR(1) errors
    :math:`u_{it} = \\rho u_{i,t-1} + \\varepsilon_{it}`, :math:`\\varepsilon_{it} \\sim
    N(0, \\sigma_i^2)`. One iteration: (a) given the calendar, quasi-difference with the current
    :math:`\\hat\\rho`, absorb :math:`\\alpha_i` (within transformation, flat prior: it
    integrates out exactly), and draw :math:`(\\lambda, \\tau)` from their normal posterior
    given :math:`\\sigma_i^2`, then :math:`\\sigma_i^2` from its scaled inverse :math:`\\chi^2`
    posterior and :math:`\\hat\\rho` as the pooled lag-1 autocorrelation of the residuals;
    (b) given the parameters, ``swaps`` rounds of count-preserving Metropolis swaps: the join
    units of each size are paired at random (disjoint pairs, all proposed at once); a pair
    whose years lie each in the other's interval swaps years with probability
    :math:`\\min(1, L_{swap}/L)`, the likelihood ratio of the two units' series. The prior is
    uniform over compatible calendars, and a swap keeps every yearly count and interval. With
    ``counts`` (the calendar model's cumulative-count bounds, :func:`count_constraints`) each
    round also makes single-unit moves that change the yearly counts inside their bounds
    (:func:`_shift_moves`: 2006 <-> 2007, into or out of 2005), so the chain targets the full
    posterior; without it, the posterior restricted to its start's yearly counts (the start, a
    draw of the prior, supplies those). The last state of each chain is returned.

    Parameters
    ----------
    y
        Outcomes (n, T), balanced; or (M, n, T), one data set per chain.
    years
        Periods (T,), sorted.
    start
        Start calendars (M, n), cohorts (0 = untreated).
    labels, lo, hi
        Join units of each chain (see ``join_units``): unit label per kommun (−1 = fixed),
        and each unit's cohort interval.
    horizon, iterations, swaps
        Last event-time bin H (None: every event time its own effect, the default, since a
        binned end pools growing late effects and then favours calendars shifted by a year);
        Gibbs iterations; swap rounds per iteration.
    rng
        numpy Generator (the only source of randomness).
    counts
        Cumulative-count constraints ``(years, low, high)``: members by the end of each year
        (:func:`count_constraints`). Only valid when the chains hold every kommun of the
        calendar model (the counts are of the whole calendar); None keeps each chain's yearly
        counts (swaps only).
    shift_steps
        Sequential single-unit moves across a constrained year per swap round (with
        ``counts``).

    Returns
    -------
    numpy.ndarray
        Cohorts (M, n).

    References
    ----------
    Tanner, M. A., & Wong, W. H. (1987). The calculation of posterior distributions by data
    augmentation. JASA 82(398), 528–540. Rubin (1987), ch. 3 (proper imputation).
    """
    return augment_with_state(
        y, years, start, labels, lo, hi, horizon=horizon, iterations=iterations, swaps=swaps,
        rng=rng, counts=counts, shift_steps=shift_steps,
    )[0]  # fmt: skip


@dataclass(frozen=True)
class ChainState:
    """The working model's last parameter draw in each chain of :func:`augment_calendars`.

    ``beta`` (M, p) holds the year effects λ_1..λ_{T-1} (λ_0 = 0) and then the event-time
    effects τ_0..τ_H; ``cand`` are the candidate cohorts and ``cand_bins`` (G, T) their
    event-time column per year (−1 untreated).
    """

    beta: np.ndarray
    cand: np.ndarray
    cand_bins: np.ndarray

    def effects(self, event_times: np.ndarray) -> np.ndarray:
        """τ at ``event_times`` (M, K): 0 before treatment, the last bin beyond H."""
        n_t = self.cand_bins.shape[1]
        tau = self.beta[:, n_t - 1 :]
        e = np.asarray(event_times)
        col = np.clip(e, 0, tau.shape[1] - 1)
        return np.where(e[None, :] >= 0, tau[:, col], 0.0)

    def fitted(self, y: np.ndarray, cohort: np.ndarray) -> np.ndarray:
        """Fitted outcomes (M, n, T) of the working model at each chain's state and calendar:
        λ_t + τ_{t−g_i}, plus the kommun effect α_i as the mean of its remainder."""
        n_chain, n_t = self.beta.shape[0], self.cand_bins.shape[1]
        lam = np.concatenate([np.zeros((n_chain, 1)), self.beta[:, : n_t - 1]], axis=1)
        tau = np.concatenate([self.beta[:, n_t - 1 :], np.zeros((n_chain, 1))], axis=1)
        path = lam[:, None, :] + tau[:, self.cand_bins]  # (M, G, T); bin −1 -> the 0 column
        mu = path[np.arange(n_chain)[:, None], np.searchsorted(self.cand, cohort)]
        y = np.asarray(y, dtype=float)
        return mu + (y - mu).mean(axis=2, keepdims=True)


def augment_with_state(
    y: np.ndarray,
    years: np.ndarray,
    start: np.ndarray,
    labels: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    horizon: int | None = None,
    iterations: int = 20,
    swaps: int = 4,
    rng: np.random.Generator,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    shift_steps: int = 8,
) -> tuple[np.ndarray, ChainState]:
    """:func:`augment_calendars`, also returning each chain's last parameter draw (for the
    bootstrap variance, ``finsam_eval.estimators.calendar_bootstrap``)."""
    y = np.asarray(y, dtype=float)
    years = np.asarray(years)
    cohort = np.array(start, dtype=np.int64)
    n_chain, n = cohort.shape
    if not (isinstance(iterations, int | np.integer) and iterations >= 1):
        raise ValueError(f"iterations must be a whole number of at least 1, got {iterations!r}")
    if y.ndim == 3 and y.shape[:2] != (n_chain, n):
        raise ValueError(f"per-chain outcomes have shape {y.shape}, expected ({n_chain}, {n}, T)")
    n_t = len(years)
    if horizon is None:  # every post-treatment event time its own effect (no binning)
        horizon = int(years[-1] - years[0])
    chains = np.arange(n_chain)
    # candidate cohorts: every year a unit may take (0 for fixed non-members)
    movable = lo > 0
    span = np.arange(lo[movable].min(), hi[movable].max() + 1) if movable.any() else []
    cand = np.union1d(np.unique(cohort), span).astype(np.int64)
    cand_bins = _event_bins(cand, years, horizon)  # (G, T)
    n_par = (n_t - 1) + (horizon + 1)
    n_units = lo.shape[1]
    member = np.zeros((n_chain, n_units, n))
    movable_rows = labels >= 0
    mc, mi = np.nonzero(movable_rows)
    member[mc, labels[mc, mi], mi] = 1.0
    size = member.sum(axis=2)  # (M, U)
    rho = np.zeros(n_chain)
    w = np.ones((n_chain, n))  # 1 / sigma_i^2; OLS in the first iteration
    counts, fixed_cum = _count_start(counts, cohort, labels)
    # the design of a kommun depends only on its cohort: one (T, p) block per candidate cohort
    design = _cohort_designs(cand_bins, n_t, n_par)
    ys = y if y.ndim == 3 else np.broadcast_to(y, (n_chain, n, n_t))
    for _ in range(iterations):
        # (a) parameters given the calendar (quasi-differenced, within-transformed)
        xq = design[None, :, 1:] - rho[:, None, None, None] * design[None, :, :-1]
        xq = xq - xq.mean(axis=2, keepdims=True)  # (M, G, T-1, p)
        yq = ys[:, :, 1:] - rho[:, None, None] * ys[:, :, :-1]
        yq = yq - yq.mean(axis=2, keepdims=True)  # (M, n, T-1)
        at = np.zeros((n_chain, n, len(cand)))
        at[chains[:, None], np.arange(n)[None, :], np.searchsorted(cand, cohort)] = 1.0
        weight_g = np.einsum("mig,mi->mg", at, w)
        ysum_g = np.swapaxes(at * w[:, :, None], 1, 2) @ yq  # (M, G, T-1)
        a = np.einsum("mgtp,mgtq,mg->mpq", xq, xq, weight_g, optimize=True)
        b = np.einsum("mgtp,mgt->mp", xq, ysum_g, optimize=True)
        # a vague N(0, large) prior keeps A invertible: event bins absent from a calendar, and
        # (with rho = 0, the first iteration) a common shift of the year effects, which the
        # unit effects absorb and the calendar likelihood does not see
        ridge = 1e-8 * np.trace(a, axis1=1, axis2=2) / n_par
        a = a + ridge[:, None, None] * np.eye(n_par)[None]
        chol = np.linalg.cholesky(a)
        mean = np.linalg.solve(a, b[..., None])[..., 0]
        z = rng.standard_normal((n_chain, n_par))
        # beta = mean + A^{-1/2} z with A = L L': solve L' v = z
        beta = mean + np.linalg.solve(np.swapaxes(chol, 1, 2), z[..., None])[..., 0]
        fitted = xq @ beta[:, None, :, None]  # (M, G, T-1, 1)
        # squared residuals of every kommun at every candidate cohort
        sq = np.square(yq[:, :, None, :] - fitted[:, None, :, :, 0]).sum(axis=3)  # (M, n, G)
        ss = np.einsum("mig,mig->mi", sq, at)
        sigma2 = ss / rng.chisquare(n_t - 2, size=(n_chain, n))
        w = 1.0 / sigma2
        # AR(1) coefficient: pooled lag-1 autocorrelation of the within residuals in levels,
        # periods 1.. only: the conditional likelihood leaves the first period's year effect
        # free (and, with rho = 0, a common shift of the others, absorbed by the demeaning)
        lam = np.concatenate([np.zeros((n_chain, 1)), beta[:, : n_t - 1]], axis=1)
        tau = np.concatenate([beta[:, n_t - 1 :], np.zeros((n_chain, 1))], axis=1)  # [-1] = 0
        path = lam[:, None, :] + tau[:, cand_bins]  # (M, G, T)
        level = (ys - at @ path)[:, :, 1:]
        level = level - level.mean(axis=2, keepdims=True)
        num = np.einsum("mit,mit,mi->m", level[:, :, 1:], level[:, :, :-1], w)
        den = np.einsum("mit,mit,mi->m", level[:, :, :-1], level[:, :, :-1], w)
        # (b) calendar given the parameters (and the rho of this iteration's fit)
        loglik = -0.5 * sq * w[:, :, None]  # (M, n, G)
        rho = np.clip(num / den, -0.9, 0.95)
        unit_ll = member @ loglik  # (M, U, G)
        for _ in range(swaps):
            new_year = _swap_round(cohort, labels, size, lo, hi, unit_ll, cand, rng)
            if counts is not None:
                new_year = _shift_moves(new_year, size, lo, hi, unit_ll, cand, fixed_cum,
                                        counts, shift_steps, rng)  # fmt: skip
            cohort = np.where(
                movable_rows, new_year[chains[:, None], np.maximum(labels, 0)], cohort
            )
    return cohort, ChainState(beta=beta, cand=cand, cand_bins=cand_bins)


def _cumulative(cohort: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Members by each constrained year: #{i: 0 < g_i <= Y}, shape (M, C)."""
    joined = cohort > 0
    return ((cohort[:, :, None] <= years[None, None, :]) & joined[:, :, None]).sum(axis=1)


def _shift_moves(
    unit_year: np.ndarray,
    size: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    unit_ll: np.ndarray,
    cand: np.ndarray,
    fixed_cum: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    steps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Single-unit Metropolis moves that may change the yearly counts (within their bounds).

    A join unit moves to another year of its interval, proposed uniformly (a symmetric
    proposal); the move is accepted with the likelihood ratio if every cumulative-count
    constraint still holds (the prior is uniform over compatible calendars). Moves that cross
    no constrained year (2006 <-> 2007, say) leave every count constraint untouched and are
    conditionally independent given the parameters, so all units make one such proposal at
    once; moves across a constrained year (into or out of 2005) change a bounded count and are
    made one unit per chain at a time (``steps`` of them).
    """
    c_years, c_low, c_high = counts
    n_chain = unit_year.shape[0]
    chains = np.arange(n_chain)
    movable = (lo > 0) & (hi > lo) & (size > 0)
    width = np.where(movable, hi - lo, 1)
    # (1) every unit at once, moves that cross no constrained year
    b = lo + rng.integers(0, width)
    b = np.where(b >= unit_year, b + 1, b)
    low_end, high_end = np.minimum(unit_year, b), np.maximum(unit_year, b)
    crosses = ((c_years[None, None, :] >= low_end[..., None])
               & (c_years[None, None, :] < high_end[..., None])).any(axis=2)  # fmt: skip
    ga, gb = (
        np.searchsorted(cand, unit_year),
        np.searchsorted(cand, np.where(movable, b, unit_year)),
    )
    rows, cols = chains[:, None], np.arange(unit_year.shape[1])[None, :]
    delta = unit_ll[rows, cols, gb] - unit_ll[rows, cols, ga]
    accept = movable & ~crosses & (np.log(rng.random(unit_year.shape)) < delta)
    unit_year = np.where(accept, b, unit_year)
    # (2) one unit per chain at a time, any move that keeps the counts inside their bounds
    n_movable = movable.sum(axis=1)
    if steps < 1 or not n_movable.any():
        return unit_year
    position = np.cumsum(movable, axis=1)
    weight = np.where(movable, size, 0)
    cum = fixed_cum + np.einsum(
        "mu,muc->mc", weight, (unit_year[..., None] <= c_years[None, None, :]).astype(np.int64)
    )
    has = n_movable > 0
    for _ in range(steps):
        k = np.minimum((rng.random(n_chain) * n_movable).astype(np.int64), n_movable - 1)
        u = np.argmax(position > k[:, None], axis=1)  # the k-th movable unit of each chain
        a, s_u = unit_year[chains, u], weight[chains, u]
        lo_u, width_u = lo[chains, u], width[chains, u]
        b = lo_u + rng.integers(0, width_u)
        b = np.where(b >= a, b + 1, b)
        span = (c_years[None, :] >= np.minimum(a, b)[:, None]) & (
            c_years[None, :] < np.maximum(a, b)[:, None]
        )
        new_cum = cum + np.where(b < a, s_u, -s_u)[:, None] * span
        ok = has & ((new_cum >= c_low[None, :]) & (new_cum <= c_high[None, :])).all(axis=1)
        delta = (
            unit_ll[chains, u, np.searchsorted(cand, np.where(ok, b, a))]
            - unit_ll[chains, u, np.searchsorted(cand, a)]
        )
        accept = ok & (np.log(rng.random(n_chain)) < delta)
        unit_year[chains[accept], u[accept]] = b[accept]
        cum = np.where(accept[:, None], new_cum, cum)
    return unit_year


def impute_calendars(
    data: pd.DataFrame,
    calendars: pd.DataFrame,
    *,
    outcome: str = "share",
    unit: str = "kommun_kod",
    time: str = "year",
    seed: int | np.random.Generator = 0,
    model: Any = None,
    iterations: int = 20,
    swaps: int = 4,
    horizon: int | None = None,
    shift_steps: int = 8,
) -> pd.DataFrame:
    """Outcome-informed calendars: posterior draws given the documented facts and the data.

    Proper multiple imputation of the unknown join years (Rubin 1987, ch. 3): every draw of
    ``calendars`` (draws of the prior, e.g. ``compatible_calendars``) starts one chain of
    :func:`augment_calendars`, whose last state replaces it. Each chain keeps every yearly
    count inside the model's bounds (its start's counts when ``data`` lacks kommuner of the
    model) and respects every interval and join group of the calendar model, so every
    returned calendar is compatible with the documented facts.

    Parameters
    ----------
    data
        Long panel with ``unit``, ``time`` and ``outcome``; balanced, no missing outcomes.
    calendars
        Long frame ``draw``, ``kommun_kod``, ``cohort`` (the start calendars).
    outcome, unit, time
        Columns of ``data``.
    seed
        Seed or numpy Generator of the sampler.
    model
        ``finsam_eval.registry.CalendarModel`` whose intervals and join groups the draws keep
        (default ``calendar_model()``); it must be the model the start calendars came from.
    iterations, swaps, horizon, shift_steps
        See :func:`augment_calendars`. When ``data`` holds every kommun of ``model``, the
        chains also move the yearly counts inside the model's count constraints (``counts``
        of :func:`augment_calendars`); otherwise the counts of the whole calendar are unknown
        and each chain keeps its start's yearly counts.

    Returns
    -------
    pandas.DataFrame
        ``draw``, ``kommun_kod``, ``cohort`` for the kommuner of ``data``.

    References
    ----------
    Tanner & Wong (1987); Rubin (1987): see :func:`augment_calendars`.
    """
    return _impute(
        data, calendars, outcome=outcome, unit=unit, time=time, seed=seed, model=model,
        iterations=iterations, swaps=swaps, horizon=horizon, shift_steps=shift_steps,
    )[0]  # fmt: skip


@dataclass(frozen=True)
class ImputationRun:
    """What the bootstrap variance needs from one :func:`impute_calendars` call."""

    y: np.ndarray  # outcomes (n, T), kommuner in ``units`` order
    years: np.ndarray
    units: np.ndarray
    start: np.ndarray  # the prior start calendars (M, n)
    join: tuple[np.ndarray, np.ndarray, np.ndarray]  # join units: labels, lo, hi
    imputed: np.ndarray  # the chains' last calendars (M, n)
    state: ChainState
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    chain_options: dict[str, Any]


def _impute(
    data: pd.DataFrame,
    calendars: pd.DataFrame,
    *,
    outcome: str = "share",
    unit: str = "kommun_kod",
    time: str = "year",
    seed: int | np.random.Generator = 0,
    model: Any = None,
    iterations: int = 20,
    swaps: int = 4,
    horizon: int | None = None,
    shift_steps: int = 8,
) -> tuple[pd.DataFrame, ImputationRun]:
    """:func:`impute_calendars`, also returning the run (for the bootstrap variance)."""
    from finsam_eval.registry import calendar_model

    for col in (outcome, unit, time):
        if col not in data.columns:
            raise EstimationInputError(f"data has no column {col!r} (imputing calendars)")
    draws, units, matrix = _cohort_matrix(data, calendars, unit)
    wide = data.pivot_table(index=unit, columns=time, values=outcome, aggfunc="first")
    wide = wide.reindex(units)
    if data.duplicated([unit, time]).any():
        raise EstimationInputError(f"data has duplicated ({unit}, {time}) rows")
    gaps = wide.isna().any(axis=1)
    if gaps.any():
        raise EstimationInputError(
            "imputing calendars needs a balanced panel without missing outcomes; "
            f"kommuner with gaps: {[str(u) for u in wide.index[gaps][:10]]}"
            + (f" and {int(gaps.sum()) - 10} more" if gaps.sum() > 10 else "")
        )
    model = calendar_model() if model is None else model
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    years = wide.columns.to_numpy()
    labels, lo, hi = join_units(matrix, model, units)
    complete = set(model.kommuner["kommun_kod"].tolist()) <= set(np.asarray(units).tolist())
    counts = count_constraints(model) if complete else None
    chain_options = {"horizon": horizon, "iterations": iterations, "swaps": swaps,
                     "shift_steps": shift_steps}  # fmt: skip
    y = wide.to_numpy(dtype=float)
    cohorts, state = augment_with_state(
        y, years, matrix, labels, lo, hi, rng=rng, counts=counts, **chain_options
    )
    frame = pd.DataFrame(
        {
            "draw": np.repeat(draws, len(units)),
            "kommun_kod": np.tile(units, len(draws)),
            "cohort": cohorts.ravel(),
        }
    )
    run = ImputationRun(y, years, np.asarray(units), matrix, (labels, lo, hi), cohorts, state,
                        counts, chain_options)  # fmt: skip
    return frame, run
