"""Wild (cluster) bootstrap inference for the event-study estimators, valid with few clusters.

:func:`wild_bootstrap_event_study` estimates an event study and tests every event-time effect
(and the overall effect) with a wild bootstrap over clusters, for the 21 län as clusters:

* ``method="twfe"``: the wild cluster bootstrap of the TWFE event-study *regression* (Cameron,
  Gelbach & Miller 2008), restricted (WCR, the null imposed, default) or unrestricted (WCU), by
  :func:`finsam_eval.inference.wild_bootstrap.wild_cluster_bootstrap` (Roodman et al. 2019).
  The regression is rebuilt from :func:`finsam_eval.estimators.prepare.prepare_panel` exactly as
  :func:`finsam_eval.estimators.twfe.fit` builds it (relative-time indicators with binned end
  points, unit and year effects, analytic weights, covariates; the event times ``twfe.fit``
  estimated, after its normalisations and collinearity drops), and its coefficients are checked
  against ``twfe.fit``'s.
* ``method`` in ("imputation", "two_stage"), default (``refit=True``): the wild cluster
  bootstrap-t that *re-estimates* the estimate and its analytic standard error on every
  bootstrap outcome :math:`y^* = \\hat y + v_g\\hat u`, restricted (WCR, default) or
  unrestricted (WCU), by :mod:`finsam_eval.inference.wild_refit` (both estimators are linear in
  the outcome, so this costs :math:`O(G^2)` per draw). The imputation estimator's pre-period
  rows (BJS's separate lead regression) keep the score bootstrap below.
* ``method="cs"``, or ``refit=False``: these estimators are linear in the outcome
  and return unit-level influence functions; the bootstrap is the wild *score* bootstrap of Kline
  & Santos (2012): the cluster sums of the influence functions are perturbed by one weight per
  cluster, without re-estimation. It is unrestricted (the WCU analogue); the bootstrap
  t-statistic of each draw is studentised by the cluster-robust variance of the perturbed
  scores (for Rademacher weights this is the analytic variance itself), and the observed
  t-statistic by the analytic standard error. A restricted version (WCR) would need the
  estimators' residuals recomputed under each null and is not available.

References
----------
Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2008). Bootstrap-based improvements for inference
with clustered errors. Review of Economics and Statistics 90(3), 414-427.
Kline, P. & Santos, A. (2012). A score based approach to wild bootstrap inference. Journal of
Econometric Methods 1(1), 23-41.
MacKinnon, J. G. & Webb, M. D. (2018). The wild bootstrap for few (treated) clusters.
Econometrics Journal 21(2), 114-135.
Roodman, D., MacKinnon, J. G., Nielsen, M. Ø. & Webb, M. D. (2019). Fast and wild: bootstrap
inference in Stata using boottest. Stata Journal 19(1), 4-60.
Webb, M. D. (2014). Reworking wild bootstrap based inference for clustered errors. Queen's
Economics Department Working Paper 1315.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.estimators.api import estimate
from finsam_eval.estimators.prepare import prepare_panel
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.inference.wild_bootstrap import WEIGHTS, _draw_weights, wild_cluster_bootstrap
from finsam_eval.inference.wild_refit import REFIT_METHODS, linear_event_study, refit_bootstrap

__all__ = ["TwfeDesign", "score_bootstrap", "twfe_design", "wild_bootstrap_event_study"]

REGRESSION_METHODS = ("twfe",)
SCORE_METHODS = ("imputation", "two_stage", "cs")
# the key column of each Callaway-Sant'Anna aggregation
_KEY_COLUMN = {"dynamic": "event_time", "group": "cohort", "calendar": "time", "simple": None}
# relative tolerance of the check that the rebuilt regression reproduces twfe.fit
_REBUILD_RTOL = 1e-6


@dataclass
class TwfeDesign:
    """The TWFE event-study regression as ``wild_cluster_bootstrap`` takes it.

    Attributes
    ----------
    y, X
        Outcome (n,) and regressors (n, k), both multiplied by the square root of the analytic
        weight. The first ``len(event_times)`` columns are the event-time indicators, then the
        covariates, then (weighted fits only) year indicators for every year but the first.
    cluster
        Cluster code of each row.
    fe
        Integer codes of the absorbed fixed effects, shape (n, n_fe): unit and year without
        weights, unit only with weights.
    event_times
        The event time of each indicator column.
    """

    y: np.ndarray
    X: np.ndarray
    cluster: np.ndarray
    fe: np.ndarray
    event_times: list[int]


def _drop_singletons(unit: np.ndarray, time_code: np.ndarray) -> np.ndarray:
    """Rows kept after iteratively removing units or years observed once (as ``twfe.fit``)."""
    keep = np.ones(len(unit), dtype=bool)
    while True:
        single = (np.bincount(unit, weights=keep)[unit] == 1) | (
            np.bincount(time_code, weights=keep)[time_code] == 1
        )
        single &= keep
        if not single.any():
            return keep
        keep &= ~single


def twfe_design(
    data: pd.DataFrame, result: EstimationResult, unbalanced: str = "balance"
) -> TwfeDesign:
    """Rebuild the regression behind a ``twfe.fit`` result from the prepared panel.

    ``twfe.fit`` forms its moments without materialising the design, so the design is rebuilt
    here from :func:`~finsam_eval.estimators.prepare.prepare_panel` with the options recorded in
    ``result.info``: rows with zero weight dropped, singleton observations removed iteratively in
    unbalanced panels, indicators ``1[b(t - g_i) = e]`` (``b`` clipping to ``window`` when it is
    set) for the event times ``e`` that ``twfe.fit`` estimated (``result.vcov.index``: the
    reference and any normalised or collinear event time excluded), the covariates it kept, and
    unit and year effects.

    With analytic weights ``w`` (constant within unit) the weighted regression is ordinary least
    squares on ``sqrt(w)``-scaled data. Scaling leaves the span of the unit indicators unchanged
    (the weight is constant within unit), so unit effects are still absorbed by group means,
    but scaled year indicators are no longer indicators: they enter ``X`` as regressors.

    Parameters
    ----------
    data
        The panel passed to ``twfe.fit``.
    result
        The ``twfe.fit`` result (clustered variance).
    unbalanced
        The ``unbalanced`` option of the fit.
    """
    info = result.info
    panel = prepare_panel(
        data,
        info["outcome"],
        info["unit"],
        info["time"],
        info["cohort"],
        covariates=info["covariates"],
        weights=info["weights"],
        cluster=info["cluster"],
        anticipation=info["anticipation"],
        control="notyet",
        unbalanced=unbalanced,
    )
    frame = panel.data
    w = frame["weight"].to_numpy(dtype=float)
    keep = w > 0
    unit = frame["unit"].to_numpy()
    year = frame["time"].to_numpy()
    if not panel.balanced:
        keep &= _drop_singletons(unit, year - year.min())
    frame = frame.loc[keep]
    w = w[keep]
    unit = np.unique(frame["unit"].to_numpy(), return_inverse=True)[1]
    year_code = np.unique(frame["time"].to_numpy(), return_inverse=True)[1]
    cohort = frame["cohort"].to_numpy()
    relative = frame["time"].to_numpy() - cohort
    window = info.get("window")
    if window is not None:
        relative = np.clip(relative, window[0], window[1])
    event_times = [int(e) for e in result.vcov.index]
    indicators = np.column_stack([(cohort > 0) & (relative == e) for e in event_times])
    dropped = set(info.get("collinear_dropped", []))
    covariates = [c for c in panel.covariates if c not in dropped]
    columns = [indicators.astype(float)]
    if covariates:
        columns.append(frame[covariates].to_numpy(dtype=float))
    weighted = not np.all(w == w[0])
    if weighted:
        n_years = int(year_code.max()) + 1
        columns.append((year_code[:, None] == np.arange(1, n_years)[None, :]).astype(float))
        fe = unit[:, None]
    else:
        fe = np.column_stack([unit, year_code])
    root_w = np.sqrt(w)
    return TwfeDesign(
        y=root_w * frame["y"].to_numpy(dtype=float),
        X=root_w[:, None] * np.column_stack(columns),
        cluster=frame["cluster"].to_numpy(),
        fe=fe,
        event_times=event_times,
    )


def _exceeds(t_draws: np.ndarray, t_obs: np.ndarray) -> np.ndarray:
    """``|t*| > |t|`` strictly, with the tolerance ``wild_cluster_bootstrap`` uses for ties."""
    t_abs = np.abs(t_obs)
    return np.abs(t_draws) - t_abs > 1e-10 * np.maximum(1.0, t_abs)


def score_bootstrap(
    influence: np.ndarray,
    estimate: np.ndarray,
    cluster: np.ndarray,
    B: int = 9999,
    weights: str = "rademacher",
    seed: int | None = None,
    alpha: float = 0.05,
) -> dict[str, np.ndarray]:
    """Wild score bootstrap-t (Kline & Santos 2012) from unit-level influence functions.

    With cluster sums :math:`\\Psi_{gj} = \\sum_{i \\in g}\\psi_{ij}` of influence functions in
    R did's scale (:math:`\\hat V_j = \\sum_g \\Psi_{gj}^2/n^2`, :math:`n` = rows of
    ``influence``) and weights :math:`v_{gb}` (mean 0, variance 1, one per cluster), draw
    :math:`b` is

    .. math::

        t^*_{bj} = \\frac{\\sum_g v_{gb}\\Psi_{gj}}{\\sqrt{\\sum_g v_{gb}^2\\Psi_{gj}^2}},

    the perturbed score studentised by its own cluster-robust variance (Kline & Santos 2012,
    the score analogue of the WCU bootstrap; with Rademacher weights the denominator is the
    analytic :math:`n\\hat\\sigma_j`). The observed statistic is :math:`t_j = \\hat\\theta_j /
    \\hat\\sigma_j`, the p-value :math:`\\#\\{b: |t^*_{bj}| > |t_j|\\}/B` and the interval the
    symmetric bootstrap-t interval :math:`\\hat\\theta_j \\pm c_j\\hat\\sigma_j`, with
    :math:`c_j` the :math:`\\lceil \\alpha B\\rceil`-th largest :math:`|t^*_{bj}|`: it holds the
    values :math:`r` for which the test of :math:`\\theta_j = r` has p-value at least
    :math:`\\alpha`.

    Parameters
    ----------
    influence
        Unit-level influence functions, shape (n, m).
    estimate
        Point estimates, shape (m,).
    cluster
        Cluster label of each row of ``influence``.
    B, weights, seed
        Draws, weight distribution ("rademacher", "webb", "mammen") and seed. Rademacher
        weights are enumerated when ``2^G <= B`` (as in ``wild_cluster_bootstrap``).
    alpha
        Level of the interval.

    Returns
    -------
    dict
        ``se``, ``t_stat``, ``p_value``, ``ci_lower``, ``ci_upper`` (arrays of length m),
        ``draws`` (n_boot × m bootstrap t-statistics), ``estimate_draws`` (n_boot × m,
        :math:`\\hat\\theta^*_b - \\hat\\theta = \\sum_g v_{gb}\\Psi_g/n`), ``n_boot``,
        ``n_clusters``, ``enumerated``.
    """
    influence = np.asarray(influence, dtype=float)
    influence = influence[:, None] if influence.ndim == 1 else influence
    estimate = np.asarray(estimate, dtype=float).ravel()
    n = influence.shape[0]
    labels, codes = np.unique(np.asarray(cluster), return_inverse=True)
    G = len(labels)
    if G < 2:
        raise ValueError("need at least two clusters")
    sums = np.zeros((G, influence.shape[1]))
    np.add.at(sums, codes, influence)
    v, enumerated = _draw_weights(weights, G, B, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.sum(sums**2, axis=0)) / n
        se = np.where(se > 0, se, np.nan)
        numerator = v.T @ sums
        draws = numerator / np.sqrt((v.T**2) @ sums**2)
        t_stat = estimate / se
    p_value = np.mean(_exceeds(draws, t_stat), axis=0)
    p_value = np.where(np.isfinite(t_stat), p_value, np.nan)
    n_boot = v.shape[1]
    rank = min(max(int(np.ceil(alpha * n_boot)), 1), n_boot)
    critical = -np.sort(-np.abs(draws), axis=0)[rank - 1]
    return {
        "se": se,
        "t_stat": t_stat,
        "p_value": p_value,
        "ci_lower": estimate - critical * se,
        "ci_upper": estimate + critical * se,
        "draws": draws,
        "estimate_draws": numerator / n,
        "n_boot": n_boot,
        "n_clusters": G,
        "enumerated": enumerated,
    }


def _unit_clusters(
    data: pd.DataFrame, unit: str, cluster: str | None, labels: np.ndarray
) -> np.ndarray:
    """Cluster label of each unit in ``labels`` (the units themselves without ``cluster``)."""
    if cluster is None:
        return np.asarray(labels)
    by_unit = data.drop_duplicates(unit).set_index(unit)[cluster]
    out = by_unit.reindex(pd.Index(labels))
    if out.isna().any():
        raise ValueError(f"no {cluster!r} value for units {list(out.index[out.isna()])[:10]}")
    return out.to_numpy()


def _twfe_rows(
    data: pd.DataFrame,
    result: EstimationResult,
    selected: list[int],
    overall: bool,
    unbalanced: str,
    boot: dict[str, Any],
) -> list[dict[str, Any]]:
    design = twfe_design(data, result, unbalanced)
    es = result.event_study.set_index("event_time")
    hypotheses: list[tuple[Any, np.ndarray, float, float]] = []
    k = design.X.shape[1]
    for e in selected:
        R = np.zeros(k)
        R[design.event_times.index(e)] = 1.0
        hypotheses.append((e, R, float(es.loc[e, "estimate"]), float(es.loc[e, "se"])))
    post = [e for e in result.info.get("overall_event_times", []) if e in design.event_times]
    if overall and post:
        R = np.zeros(k)
        R[[design.event_times.index(e) for e in post]] = 1.0 / len(post)
        hypotheses.append(("overall", R, float(result.overall["estimate"]), result.overall["se"]))
    rows = []
    for key, R, est, se in hypotheses:
        res = wild_cluster_bootstrap(
            design.y, design.X, design.cluster, fe=design.fe, R=R, r=0.0, **boot
        )
        if not np.isclose(res.estimate, est, rtol=_REBUILD_RTOL, atol=_REBUILD_RTOL * se):
            raise RuntimeError(
                f"the rebuilt TWFE regression gives {res.estimate!r} for {key}, twfe.fit "
                f"{est!r}: the design does not reproduce the estimator"
            )
        row = {
            "key": key,
            "estimate": est,
            "se": float(se),
            "t_stat": est / se,
            "p_value": res.p_value,
            "n_boot": res.n_boot,
            "n_clusters": res.n_clusters,
            "enumerated": res.enumerated,
        }
        if res.ci is not None:
            row["ci_lower"], row["ci_upper"] = res.ci
        rows.append(row)
    return rows


def _score_inputs(
    result: EstimationResult, method: str, aggregate: str
) -> tuple[list[Any], np.ndarray, np.ndarray, list[Any], np.ndarray]:
    """Keys, estimates and influence columns of the rows to test, plus the overall row."""
    if method == "cs":
        agg = result.aggregate(aggregate)
        if agg.influence is None:
            raise ValueError("the Callaway-Sant'Anna aggregation has no influence functions")
        keys = agg.table["key"].tolist() if not agg.table.empty else []
        return (
            keys,
            agg.table["estimate"].to_numpy(dtype=float) if keys else np.empty(0),
            agg.influence[:, :-1],
            [float(agg.overall["estimate"])],
            agg.influence[:, -1:],
        )
    es = result.event_study
    if result.event_influence is None:
        raise ValueError(f"method {method!r} returned no event-time influence functions")
    estimated = (
        ~es["reference"].to_numpy(dtype=bool) if "reference" in es else np.ones(len(es), bool)
    )
    overall_if = result.info.get("overall_influence")
    return (
        es.loc[estimated, "event_time"].tolist(),
        es.loc[estimated, "estimate"].to_numpy(dtype=float),
        result.event_influence[:, estimated],
        [float(result.overall["estimate"])],
        np.empty((len(result.event_influence), 0))
        if overall_if is None
        else np.asarray(overall_if, dtype=float).reshape(-1, 1),
    )


def _refit_rows(
    data: pd.DataFrame,
    result: EstimationResult,
    keys: list[Any],
    unbalanced: str,
    impose_null: bool,
    B: int,
    weights: str,
    seed: int | None,
    ci: bool,
    alpha: float,
) -> dict[int, dict[str, float]]:
    """Re-estimating bootstrap of the rows ``keys`` it covers, by position in ``keys``.

    Event times computed by the linear replay (the imputation effects at ``h >= -a``, every
    two-stage coefficient) and ``"overall"`` (equal weights on ``overall_event_times``) are
    covered; imputation leads (BJS Test 1 regression) are not.
    """
    post = [int(e) for e in result.info.get("overall_event_times", [])]
    wanted = sorted({int(k) for k in keys if not isinstance(k, str)} | set(post))
    model = linear_event_study(data, result, unbalanced, wanted)
    times = [int(t) for t in model.event_times]
    positions, restrictions = [], []
    for j, key in enumerate(keys):
        R = np.zeros(len(times))
        if isinstance(key, str) and key == "overall":
            if not post or any(e not in times for e in post):
                continue
            R[[times.index(e) for e in post]] = 1.0 / len(post)
        elif int(key) in times:
            R[times.index(int(key))] = 1.0
        else:
            continue
        positions.append(j)
        restrictions.append(R)
    if not positions:
        return {}
    out = refit_bootstrap(
        model, np.vstack(restrictions), B, weights, impose_null, seed, ci=ci, alpha=alpha
    )
    names = ("estimate", "se", "t_stat", "p_value", "ci_lower", "ci_upper")
    return {j: {name: float(out[name][i]) for name in names} for i, j in enumerate(positions)}


def wild_bootstrap_event_study(
    data: pd.DataFrame,
    method: str = "twfe",
    event_times: list[int] | None = None,
    cluster: str | None = "cluster_lan",
    B: int = 9999,
    weights: str = "rademacher",
    impose_null: bool | None = None,
    seed: int | None = None,
    ci: bool = False,
    alpha: float = 0.05,
    overall: bool = True,
    aggregate: str = "dynamic",
    analytic_weights: str | None = None,
    refit: bool | None = None,
    **estimate_options: Any,
) -> pd.DataFrame:
    """Event-study effects tested by a wild bootstrap over (few) clusters.

    Fits ``finsam_eval.estimate(data, method=method, cluster=cluster, weights=analytic_weights,
    **estimate_options)`` and
    tests ``theta = 0`` for every event-time effect (and the overall effect) with a bootstrap
    that stays accurate with about 20 clusters (the 21 län):

    * ``twfe``: the restricted (WCR, ``impose_null=True``, default) or unrestricted (WCU) wild
      cluster bootstrap of the TWFE regression (Cameron, Gelbach & Miller 2008; Roodman et al.
      2019), one restriction per event time and ``mean(beta_e, e in post) = 0`` for the overall
      effect, with the fixed effects absorbed. The regression is rebuilt by
      :func:`twfe_design` and its coefficients must equal ``twfe.fit``'s.
    * ``imputation``, ``two_stage`` (``refit=True``, default): the re-estimating wild cluster
      bootstrap-t of :func:`finsam_eval.inference.wild_refit.refit_bootstrap`, WCR (default) or
      WCU (``impose_null=False``): each draw re-runs the estimator and its analytic variance on
      :math:`y^*_b = \\hat y + v_{gb}\\hat u`; rows labelled "WCR-refit" / "WCU-refit".
      Imputation leads (pre-period rows of BJS's lead regression) use the score bootstrap.
    * ``cs`` (and the two above with ``refit=False``): the wild score bootstrap of Kline &
      Santos (2012) on the cluster-summed influence functions (:func:`score_bootstrap`),
      unrestricted. For ``cs`` the rows are those of ``result.aggregate(aggregate)``.

    Parameters
    ----------
    data
        Long panel, one row per unit and year.
    method
        "twfe", "imputation", "two_stage" or "cs".
    event_times
        Event times (keys of the aggregation for ``cs``) to test; None tests every estimated
        one (reference periods, with estimate 0 by construction, are never tested).
    cluster
        Cluster column, constant within unit; the estimator's analytic variance is clustered
        the same way. None clusters by unit.
    B
        Bootstrap draws. Rademacher weights with ``2^G <= B`` enumerate all ``2^G`` sign
        vectors instead (the exact bootstrap distribution).
    weights
        "rademacher", "webb" (six points, for fewer than about 12 clusters; Webb 2014) or
        "mammen".
    impose_null
        None (default): WCR for ``twfe`` and for the re-estimating bootstrap of ``imputation``
        and ``two_stage``, the unrestricted score bootstrap otherwise. False: WCU. True is not
        available for the score bootstrap (``cs``, ``refit=False``).
    seed
        Seed of the weight draws; every row uses the same draws.
    ci
        Add ``ci_lower``/``ci_upper`` at level ``1 - alpha``: test inversion for ``twfe``
        (``wild_cluster_bootstrap(ci=True)``) and for "WCR-refit" rows, the symmetric
        bootstrap-t interval otherwise.
    alpha
        Level of the interval.
    overall
        Also test the overall effect (a last row with ``term="overall"``).
    aggregate
        ``cs`` only: "dynamic" (event study), "group", "calendar" or "simple".
    analytic_weights
        Analytic-weight column of the estimator (its ``weights=`` option, e.g. "weight" for
        population weights), renamed here because ``weights`` names the bootstrap weights.
    refit
        ``imputation``/``two_stage``: re-estimate on every draw (None, default: True) or use the
        score bootstrap (False). True with another method raises ``NotImplementedError``.
    **estimate_options
        Passed to ``finsam_eval.estimate`` (outcome, unit, time, cohort, window, weights,
        covariates, control, anticipation, unbalanced, ...).

    Returns
    -------
    pandas.DataFrame
        One row per tested effect: ``term`` ("event_time", "cohort", "time" or "overall"), the
        key column (``event_time`` for event studies, ``cohort`` or ``time`` for ``cs`` group or
        calendar aggregations; missing on the overall row), ``estimate``, ``se`` (the
        estimator's analytic standard error), ``t_stat`` (``estimate / se``), ``p_value``
        (two-sided bootstrap p-value of ``theta = 0``), ``ci_lower``/``ci_upper`` with
        ``ci=True``, ``method``, ``bootstrap`` ("WCR", "WCU", "WCR-refit", "WCU-refit" or
        "score"), ``weights``,
        ``n_boot``, ``n_clusters`` and ``enumerated``.

    Raises
    ------
    NotImplementedError
        ``impose_null=True`` with the score bootstrap (``cs``, or ``refit=False``): imposing
        ``theta = 0`` needs the estimator's residuals recomputed under the null, which the
        influence functions do not provide; ``refit=True`` with ``cs``.

    Notes
    -----
    *TWFE.* The reported ``se`` and ``t_stat`` are ``twfe.fit``'s (CRV1 with fixest's nested
    parameter count); ``wild_cluster_bootstrap`` counts every absorbed unit level instead, which
    rescales its observed and bootstrap t-statistics alike and leaves the p-value unchanged.

    *Score bootstrap.* For an estimator linear in the outcome, perturbing the cluster sums of
    the influence functions is the wild bootstrap that keeps the fitted values and re-weights
    the residuals by cluster (WCU), except that the bootstrap variance is not re-estimated from
    bootstrap residuals (Kline & Santos 2012 show the studentised score statistic matches the
    wild bootstrap one to :math:`O_p(n^{-1})` in the linear model). The bootstrap-t is free of
    the variance's scale, but because residuals are not re-estimated it cannot correct an
    analytic variance that is too small with few clusters: in Monte Carlo redraws of the
    synthetic panel with 21 län (docs/inference.md) its rejection rates track the normal test's
    (close to nominal for ``cs``, about 0.08-0.12 at 5 % for ``imputation``/``two_stage``),
    while ``twfe`` WCR is at its level.

    *Re-estimating bootstrap.* For ``imputation`` and ``two_stage`` the default re-runs the
    estimator and its analytic variance on every bootstrap outcome, so the bootstrap
    distribution of the t-statistic carries the variance's own small-sample error; in the same
    redraws WCU-refit rejects at its level and WCR-refit slightly below it (docs/inference.md).
    See :mod:`finsam_eval.inference.wild_refit` for the bootstrap model and the restricted fit.
    """
    if method not in REGRESSION_METHODS + SCORE_METHODS:
        raise ValueError(
            f"method must be one of {REGRESSION_METHODS + SCORE_METHODS}, got {method!r}"
        )
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if aggregate not in _KEY_COLUMN:
        raise ValueError(f"aggregate must be one of {sorted(_KEY_COLUMN)}, got {aggregate!r}")
    if aggregate != "dynamic" and method != "cs":
        raise ValueError("aggregate is a Callaway-Sant'Anna option (method='cs')")
    if refit is None:
        refit = method in REFIT_METHODS
    if refit and method not in REFIT_METHODS:
        raise NotImplementedError(
            f"the re-estimating bootstrap (refit=True) is available for {REFIT_METHODS}, not "
            f"method={method!r}"
        )
    if method in SCORE_METHODS and impose_null and not refit:
        raise NotImplementedError(
            f"the restricted wild bootstrap (WCR, impose_null=True) is available for "
            f"method='twfe' only; method={method!r} uses the unrestricted wild score bootstrap "
            "of its influence functions (impose_null=None or False)"
        )
    if estimate_options.get("vcov", "cluster") not in ("cluster", "CRV1"):
        raise ValueError("the wild cluster bootstrap needs the clustered variance (vcov='cluster')")
    result = estimate(
        data, method=method, cluster=cluster, weights=analytic_weights, **estimate_options
    )
    key_column = "event_time" if method != "cs" else _KEY_COLUMN[aggregate]

    if method == "twfe":
        wcr = impose_null is None or impose_null
        available = [int(e) for e in result.vcov.index]
        selected = available if event_times is None else [int(e) for e in event_times]
        missing = sorted(set(selected) - set(available))
        if missing:
            raise ValueError(f"event times {missing} are not estimated; estimated: {available}")
        boot = {
            "B": B,
            "weights": weights,
            "impose_null": wcr,
            "seed": seed,
            "ci": ci,
            "alpha": alpha,
        }
        rows = _twfe_rows(
            data, result, selected, overall, estimate_options.get("unbalanced", "balance"), boot
        )
        kind = "WCR" if wcr else "WCU"
    else:
        keys, est, infl, overall_est, overall_if = _score_inputs(result, method, aggregate)
        if event_times is not None:
            chosen = [keys.index(e) if e in keys else -1 for e in event_times]
            if -1 in chosen:
                absent = [e for e, j in zip(event_times, chosen, strict=True) if j < 0]
                raise ValueError(f"keys {absent} are not estimated; estimated: {keys}")
            keys, est, infl = [keys[j] for j in chosen], est[chosen], infl[:, chosen]
        if overall and overall_if.shape[1]:
            keys = [*keys, "overall"]
            est = np.r_[est, overall_est]
            infl = np.column_stack([infl, overall_if])
        if not keys:
            raise ValueError("nothing to test")
        unit_cluster = _unit_clusters(
            data, result.info.get("unit", "kommun_kod"), cluster, result.unit_labels
        )
        out = score_bootstrap(infl, est, unit_cluster, B, weights, seed, alpha)
        kinds = ["score"] * len(keys)
        if refit:
            wcr = impose_null is None or impose_null
            refitted = _refit_rows(
                data,
                result,
                keys,
                estimate_options.get("unbalanced", "balance"),
                wcr,
                B,
                weights,
                seed,
                ci,
                alpha,
            )
            for name in ("se", "t_stat", "p_value", "ci_lower", "ci_upper"):
                out[name] = np.array(out[name], dtype=float)
            for j, refit_out in refitted.items():
                if not np.isclose(refit_out["estimate"], est[j], rtol=1e-9, atol=1e-12):
                    raise RuntimeError(
                        f"the linear replay of {method} gives {refit_out['estimate']!r} for "
                        f"{keys[j]}, the estimator {est[j]!r}"
                    )
                for name in ("se", "t_stat", "p_value", "ci_lower", "ci_upper"):
                    out[name][j] = refit_out[name]
                kinds[j] = "WCR-refit" if wcr else "WCU-refit"
        rows = []
        for j, key in enumerate(keys):
            row = {
                "key": key,
                "estimate": float(est[j]),
                **{name: float(out[name][j]) for name in ("se", "t_stat", "p_value")},
                "n_boot": out["n_boot"],
                "n_clusters": out["n_clusters"],
                "enumerated": out["enumerated"],
            }
            if ci:
                row["ci_lower"] = float(out["ci_lower"][j])
                row["ci_upper"] = float(out["ci_upper"][j])
            rows.append(row)
        kind = kinds

    table = pd.DataFrame(rows)
    is_overall = table["key"].astype(str) == "overall"
    table.insert(0, "term", np.where(is_overall, "overall", key_column or "overall"))
    if key_column is None:
        table = table.drop(columns="key")
    else:
        table = table.rename(columns={"key": key_column})
        table[key_column] = table[key_column].where(~is_overall, pd.NA)
    columns = [c for c in ("ci_lower", "ci_upper") if c in table]
    table = table[
        [c for c in table.columns if c not in ("n_boot", "n_clusters", "enumerated", *columns)]
        + columns
    ]
    table["method"] = method
    table["bootstrap"] = kind
    table["weights"] = weights
    table["n_boot"] = [r["n_boot"] for r in rows]
    table["n_clusters"] = [r["n_clusters"] for r in rows]
    table["enumerated"] = [r["enumerated"] for r in rows]
    return table
