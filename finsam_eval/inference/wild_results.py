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
* ``method`` in ("imputation", "two_stage", "cs"), default (``refit=True``): the wild cluster
  bootstrap-t that *re-estimates* the estimate and its analytic standard error on every
  bootstrap outcome :math:`y^* = \\hat y + v_g\\hat u`, restricted (WCR, default) or
  unrestricted (WCU), by :mod:`finsam_eval.inference.wild_refit` (all three estimators are
  linear in the outcome, so this costs :math:`O(G^2)` per draw; the Callaway-Sant'Anna maps and
  bootstrap model are in :mod:`finsam_eval.inference.wild_refit_cs`, for every aggregation).
  The imputation estimator's pre-period rows come from BJS's separate lead regression on the
  untreated observations, a regression: they get its WCR/WCU like TWFE
  (:func:`imputation_lead_design`).
* ``refit=False``: these estimators return unit-level influence functions, and the bootstrap is
  the wild *score* bootstrap of Kline & Santos (2012): the cluster sums of the influence
  functions are perturbed by one weight per cluster, without re-estimation. It is unrestricted
  (the WCU analogue); the bootstrap t-statistic of each draw is studentised by the
  cluster-robust variance of the perturbed scores (for Rademacher weights this is the analytic
  variance itself), and the observed t-statistic by the analytic standard error.

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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core.multiplier import WEIGHT_KINDS, cluster_weights
from finsam_eval.core.vocabulary import renamed_options
from finsam_eval.estimators.api import estimate
from finsam_eval.estimators.registry import methods_where
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import check_alpha, check_positive_count, check_seed, result_first

# the rows twfe.fit keeps: the replay must drop the same singletons
from finsam_eval.estimators.twfe import _drop_singletons
from finsam_eval.inference.wild_cluster import wild_cluster_bootstrap
from finsam_eval.inference.wild_refit import linear_event_study, refit_bootstrap
from finsam_eval.inference.wild_refit_cs import linear_cs_aggregate

__all__ = [
    "TwfeDesign",
    "imputation_lead_design",
    "score_bootstrap",
    "twfe_design",
    "wild_bootstrap",
    "wild_bootstrap_event_study",
]

# the registry's wild-bootstrap kinds of each method
REGRESSION_METHODS = methods_where(wild="regression")
SCORE_METHODS = methods_where(wild="score")
# the key column of each Callaway-Sant'Anna aggregation
_KEY_COLUMN = {"dynamic": "event_time", "group": "cohort", "calendar": "time", "simple": None}
# methods with the re-estimating bootstrap (linear replays of the estimator)
_REFIT = methods_where(refit=True)
# per-row results of every bootstrap, and the facts of its draws
_ROW_STATISTICS = ("se", "t_stat", "p_value", "ci_lower", "ci_upper")
_RUN_FACTS = ("n_boot", "n_clusters", "enumerated")
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


def twfe_design(result: EstimationResult, *legacy: Any) -> TwfeDesign:
    """Rebuild the regression behind a ``twfe.fit`` result from the prepared panel.

    ``twfe.fit`` forms its moments without materialising the design, so the design is rebuilt here
    from :func:`~finsam_eval.estimators.prepare.prepare_panel` with the result's ``spec``
    (``result.prepared_panel``): rows with zero weight dropped, singleton observations removed
    iteratively in unbalanced panels, indicators ``1[b(t - g_i) = e]`` (``b`` clipping to ``window``
    when it is set) for the event times ``e`` that ``twfe.fit`` estimated (``result.vcov.index``:
    the reference and any normalised or collinear event time excluded), the covariates it kept, and
    unit and year effects.

    With analytic weights ``w`` (constant within unit) the weighted regression is ordinary least
    squares on ``sqrt(w)``-scaled data. Scaling leaves the span of the unit indicators unchanged
    (the weight is constant within unit), so unit effects are still absorbed by group means,
    but scaled year indicators are no longer indicators: they enter ``X`` as regressors.

    Parameters
    ----------
    result
        The ``twfe.fit`` result (clustered variance); it carries its data and specification.
        (The old call ``twfe_design(data, result, unbalanced)`` warns.)
    """
    result, rest = result_first(result, legacy, "twfe_design")
    panel = result.prepared_panel(control="notyet", unbalanced=rest[0] if rest else None)
    frame = panel.data
    keep = frame["weight"].to_numpy(dtype=float) > 0
    if not panel.balanced:
        unit, year = frame["unit"].to_numpy(), frame["time"].to_numpy()
        keep &= _drop_singletons(unit, year - year.min())
    frame = frame.loc[keep]
    cohort = frame["cohort"].to_numpy()
    relative = frame["time"].to_numpy() - cohort
    window = result.spec.window
    if window is not None:
        relative = np.clip(relative, window[0], window[1])
    event_times = [int(e) for e in result.vcov.index]
    indicators = np.column_stack([(cohort > 0) & (relative == e) for e in event_times])
    dropped = set(result.collinear_dropped)
    covariates = [c for c in panel.covariates if c not in dropped]
    return _scaled_design(frame, indicators, covariates, event_times)


def _scaled_design(
    frame: pd.DataFrame, indicators: np.ndarray, covariates: list[str], event_times: list[int]
) -> TwfeDesign:
    """The weighted regression of ``frame``'s outcome on ``indicators``, covariates and unit and
    year effects, as OLS on ``sqrt(w)``-scaled data: unit effects stay absorbable (the weight
    is constant within unit); year effects are absorbed without weights and are regressors with
    them."""
    w = frame["weight"].to_numpy(dtype=float)
    unit = np.unique(frame["unit"].to_numpy(), return_inverse=True)[1]
    year_code = np.unique(frame["time"].to_numpy(), return_inverse=True)[1]
    columns = [indicators.astype(float)]
    if covariates:
        columns.append(frame[covariates].to_numpy(dtype=float))
    if not np.all(w == w[0]):
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


def imputation_lead_design(result: EstimationResult, *legacy: Any) -> TwfeDesign:
    """Rebuild the pre-trend regression (BJS Test 1) behind an imputation result's leads.

    Borusyak, Jaravel & Spiess's Test 1 regresses the outcome on unit and year effects, the
    covariates and lead indicators ``1[t - g_i = k]`` on the untreated observations only
    (weighted by the analytic weight); ``imputation.fit`` reports the lead coefficients as the
    pre-period rows of its event study. The design is rebuilt from the prepared panel with the
    result's ``spec`` and the leads the fit estimated (``result.pretest_leads``), in
    the form ``wild_cluster_bootstrap`` takes (``sqrt(w)``-scaled, unit effects absorbed, year
    effects absorbed without weights and regressors with them, as :func:`twfe_design`).
    (The old call ``imputation_lead_design(data, result, unbalanced)`` warns.)
    """
    result, rest = result_first(result, legacy, "imputation_lead_design")
    leads = [int(k) for k in result.pretest_leads]
    if not leads:
        raise ValueError("the imputation fit has no lead coefficients (pretrends=False?)")
    panel = result.prepared_panel(control="notyet", unbalanced=rest[0] if rest else None)
    frame = panel.data
    cohort = frame["cohort"].to_numpy()
    time = frame["time"].to_numpy()
    untreated = (cohort == 0) | (time < cohort - result.spec.anticipation)
    frame = frame.loc[untreated & (frame["weight"].to_numpy(dtype=float) > 0)]
    cohort = frame["cohort"].to_numpy()
    relative = frame["time"].to_numpy() - cohort
    indicators = np.column_stack([(cohort > 0) & (relative == k) for k in leads])
    return _scaled_design(frame, indicators, list(panel.covariates), leads)


def _exceeds(t_draws: np.ndarray, t_obs: np.ndarray) -> np.ndarray:
    """``|t*| > |t|`` strictly, with the tolerance ``wild_cluster_bootstrap`` uses for ties."""
    t_abs = np.abs(t_obs)
    return np.abs(t_draws) - t_abs > 1e-10 * np.maximum(1.0, t_abs)


@renamed_options(B="reps", weights="multiplier")
def score_bootstrap(
    influence: np.ndarray,
    estimate: np.ndarray,
    cluster: np.ndarray,
    reps: int = 9999,
    multiplier: str = "rademacher",
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
    reps, multiplier, seed
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
    B, weights = reps, multiplier  # the body's names for them
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
    v, enumerated = cluster_weights(weights, G, B, seed)
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


def _twfe_rows(
    result: EstimationResult, selected: list[int], overall: bool, boot: dict[str, Any]
) -> list[dict[str, Any]]:
    design = twfe_design(result)
    es = result.event_study.set_index("event_time")
    hypotheses: list[tuple[Any, np.ndarray, float, float]] = []
    k = design.X.shape[1]
    for e in selected:
        R = np.zeros(k)
        R[design.event_times.index(e)] = 1.0
        hypotheses.append((e, R, float(es.loc[e, "estimate"]), float(es.loc[e, "se"])))
    post = [e for e in result.overall_event_times or [] if e in design.event_times]
    if overall and post:
        R = np.zeros(k)
        R[[design.event_times.index(e) for e in post]] = 1.0 / len(post)
        hypotheses.append(("overall", R, float(result.overall["estimate"]), result.overall["se"]))
    return _regression_rows(design, hypotheses, boot, "TWFE", "twfe.fit")


def _regression_rows(
    design: TwfeDesign,
    hypotheses: list[tuple[Any, np.ndarray, float, float]],
    boot: dict[str, Any],
    what: str,
    source: str,
) -> list[dict[str, Any]]:
    """Wild cluster bootstrap of each ``(key, R, estimate, se)`` in a rebuilt regression."""
    rows = []
    for key, R, est, se in hypotheses:
        res = wild_cluster_bootstrap(
            design.y, design.X, design.cluster, fe=design.fe, R=R, r=0.0, **boot
        )
        if not np.isclose(res.estimate, est, rtol=_REBUILD_RTOL, atol=_REBUILD_RTOL * se):
            raise RuntimeError(
                f"the rebuilt {what} regression gives {res.estimate!r} for {key}, {source} "
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


def _aggregation_options(estimate_options: dict[str, Any]) -> dict[str, float]:
    """The event-time range of a ``window`` as ``result.aggregate``'s ``min_e``/``max_e``."""
    window = estimate_options.get("window")
    return {} if window is None else {"min_e": float(window[0]), "max_e": float(window[1])}


def _score_inputs(
    result: EstimationResult, method: str, aggregate: str, options: dict[str, float]
) -> tuple[list[Any], np.ndarray, np.ndarray, list[Any], np.ndarray]:
    """Keys, estimates and influence columns of the rows to test, plus the overall row."""
    if method == "cs":
        agg = result.aggregate(aggregate, **options)
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
    overall_if = result.overall_influence
    return (
        es.loc[estimated, "event_time"].tolist(),
        es.loc[estimated, "estimate"].to_numpy(dtype=float),
        result.event_influence[:, estimated],
        [float(result.overall["estimate"])],
        np.empty((len(result.event_influence), 0))
        if overall_if is None
        else np.asarray(overall_if, dtype=float).reshape(-1, 1),
    )


def _lead_rows(
    result: EstimationResult,
    keys: list[Any],
    boot: dict[str, Any],
    ci: bool,
    alpha: float,
) -> list[tuple[int, dict[str, Any]]]:
    """Imputation leads: wild cluster bootstrap of BJS's pre-trend regression, by position."""
    leads = set(int(k) for k in result.pretest_leads)
    wanted = [(j, int(k)) for j, k in enumerate(keys) if not _is_overall(k) and int(k) in leads]
    if not wanted:
        return []
    design = imputation_lead_design(result)
    es = result.event_study.set_index("event_time")
    hypotheses = []
    for _, k in wanted:
        R = np.zeros(design.X.shape[1])
        R[design.event_times.index(k)] = 1.0
        hypotheses.append((k, R, float(es.loc[k, "estimate"]), float(es.loc[k, "se"])))
    rows = _regression_rows(
        design, hypotheses, {**boot, "ci": ci, "alpha": alpha}, "pre-trend", "imputation.fit"
    )
    return [(j, row) for (j, _), row in zip(wanted, rows, strict=True)]


def _refit_rows(
    result: EstimationResult,
    keys: list[Any],
    impose_null: bool,
    B: int,
    weights: str,
    seed: int | None,
    ci: bool,
    alpha: float,
    aggregate: str = "dynamic",
    agg_options: dict[str, float] | None = None,
) -> dict[int, dict[str, float]]:
    """Re-estimating bootstrap of the rows ``keys`` it covers, by position in ``keys``.

    Imputation and two-stage: event times computed by the linear replay (the imputation effects
    at ``h >= -a``, every two-stage coefficient) and ``"overall"`` (equal weights on
    ``overall_event_times``); imputation leads (BJS Test 1 regression) are not covered here
    (:func:`_lead_rows`).
    Callaway-Sant'Anna: every key of the aggregation and its overall effect.
    """
    if result.method == "cs":
        model = linear_cs_aggregate(
            result,
            kind=aggregate,
            keys=[k for k in keys if not _is_overall(k)],
            **(agg_options or {}),
        )
        labels = list(model.event_times)
        positions = list(range(len(keys)))
        restrictions = list(np.eye(len(labels))[[labels.index(_label(k)) for k in keys]])
    else:
        post = [int(e) for e in result.overall_event_times or []]
        wanted = sorted({int(k) for k in keys if not _is_overall(k)} | set(post))
        model = linear_event_study(result, event_times=wanted)
        times = [int(t) for t in model.event_times]
        positions, restrictions = [], []
        for j, key in enumerate(keys):
            R = np.zeros(len(times))
            if _is_overall(key):
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
    facts = {name: out[name] for name in _RUN_FACTS}
    return {
        j: {"estimate": float(out["estimate"][i])}
        | {name: float(out[name][i]) for name in _ROW_STATISTICS}
        | facts
        for i, j in enumerate(positions)
    }


def _is_overall(key: Any) -> bool:
    return isinstance(key, str) and key == "overall"


def _label(key: Any) -> Any:
    """Row label of an aggregation key (numpy scalars as Python numbers)."""
    return key if _is_overall(key) else np.asarray(key).item()


def _checked_refit(
    method: str, spec: Any, weights: str, aggregate: str, refit: bool | None, impose_null: Any
) -> bool:
    """Validate the bootstrap options for ``method``; returns ``refit`` resolved (None: the
    re-estimating bootstrap where the method has one)."""
    if method not in REGRESSION_METHODS + SCORE_METHODS:
        raise ValueError(
            f"method must be one of {REGRESSION_METHODS + SCORE_METHODS}, got {method!r}"
        )
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"multiplier must be one of {WEIGHT_KINDS}, got {weights!r}")
    if aggregate not in _KEY_COLUMN:
        raise ValueError(f"aggregate must be one of {sorted(_KEY_COLUMN)}, got {aggregate!r}")
    if aggregate != "dynamic" and method != "cs":
        raise ValueError("aggregate is a Callaway-Sant'Anna option (method='cs')")
    if refit is None:
        refit = method in _REFIT
    if refit and method not in _REFIT:
        raise NotImplementedError(
            f"the re-estimating bootstrap (refit=True) is available for {_REFIT}, not "
            f"method={method!r}"
        )
    if method in SCORE_METHODS and impose_null and not refit:
        raise NotImplementedError(
            f"the score bootstrap (refit=False) is unrestricted: impose_null=True (WCR) needs the "
            f"re-estimating bootstrap (refit=None or True) for method={method!r}"
        )
    if spec.options.get("vcov", "cluster") not in ("cluster", "CRV1"):
        raise ValueError("the wild cluster bootstrap needs the clustered variance (vcov='cluster')")
    return refit


def _result_table(
    rows: list[dict],
    key_column: str | None,
    method: str,
    kind: str,
    weights: str,
    data: pd.DataFrame,
    cluster: str | None,
    estimate_options: dict,
) -> pd.DataFrame:
    """The bootstrap rows as the result table: term and key columns first, the intervals, then
    method, bootstrap kind, multiplier, draws, clusters and treated clusters per row."""
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
    table["n_treated_clusters"] = _treated_clusters(
        data, [r["key"] for r in rows], key_column, method, cluster, estimate_options
    )
    table["enumerated"] = [r["enumerated"] for r in rows]
    return table


def _twfe_wild(
    result: EstimationResult,
    event_times: Sequence[int] | None,
    overall: bool,
    impose_null: bool | None,
    boot: dict[str, Any],
) -> tuple[list[dict], str]:
    """Rows and kind (WCR unless ``impose_null=False``) of the TWFE wild cluster bootstrap."""
    wcr = impose_null is None or impose_null
    available = [int(e) for e in result.vcov.index]
    selected = available if event_times is None else [int(e) for e in event_times]
    missing = sorted(set(selected) - set(available))
    if missing:
        raise ValueError(f"event times {missing} are not estimated; estimated: {available}")
    boot = {**boot, "impose_null": wcr}
    rows = _twfe_rows(result, selected, overall, boot)
    kind = "WCR" if wcr else "WCU"
    return rows, kind


def wild_bootstrap(
    result: EstimationResult,
    reps: int = 9999,
    multiplier: str = "rademacher",
    seed: int | None = None,
    *,
    event_times: list[int] | None = None,
    impose_null: bool | None = None,
    ci: bool = False,
    alpha: float = 0.05,
    overall: bool = True,
    aggregate: str = "dynamic",
    refit: bool | None = None,
) -> pd.DataFrame:
    """Event-study effects tested by a wild bootstrap over (few) clusters.

    Takes a result of ``finsam_eval.estimate`` (which carries its data and specification: the
    method, its cluster column and its options) and tests ``theta = 0`` for every event-time effect
    (and the overall effect) with a bootstrap that stays accurate with about 20 clusters (the 21
    län):

    * ``twfe``: the restricted (WCR, ``impose_null=True``, default) or unrestricted (WCU) wild
      cluster bootstrap of the TWFE regression (Cameron, Gelbach & Miller 2008; Roodman et al.
      2019), one restriction per event time and ``mean(beta_e, e in post) = 0`` for the overall
      effect, with the fixed effects absorbed. The regression is rebuilt by
      :func:`twfe_design` and its coefficients must equal ``twfe.fit``'s.
    * ``imputation``, ``two_stage``, ``cs`` (``refit=True``, default): the re-estimating wild
      cluster bootstrap-t of :func:`finsam_eval.inference.wild_refit.refit_bootstrap`, WCR
      (default) or WCU (``impose_null=False``): each draw re-runs the estimator and its analytic
      variance on :math:`y^*_b = \\hat y + v_{gb}\\hat u`; rows labelled "WCR-refit" /
      "WCU-refit". Imputation leads (pre-period rows, BJS's lead regression on the untreated
      observations) get the regression WCR/WCU of that regression (rows "WCR"/"WCU"). For
      ``cs`` the rows are those of ``result.aggregate(aggregate)``, restricted
      to ``window`` when one is given (balanced panels;
      :mod:`finsam_eval.inference.wild_refit_cs`).
    * ``refit=False``: the wild score bootstrap of Kline & Santos (2012) on the cluster-summed
      influence functions (:func:`score_bootstrap`), unrestricted.

    Parameters
    ----------
    result
        A ``finsam_eval.estimate`` result of method "twfe", "imputation", "two_stage" or "cs"
        (``MethodInfo.wild``), clustered variance; the bootstrap clusters like it (its
        ``cluster``, None: by unit).
    reps
        Bootstrap draws. Rademacher weights with ``2^G <= reps`` enumerate all ``2^G`` sign
        vectors instead (the exact bootstrap distribution).
    multiplier
        "rademacher", "webb" (six points, for fewer than about 12 clusters; Webb 2014) or
        "mammen".
    seed
        Seed of the weight draws; every row uses the same draws.
    event_times
        Event times (keys of the aggregation for ``cs``) to test; None tests every estimated
        one (reference periods, with estimate 0 by construction, are never tested).
    impose_null
        None (default): WCR for ``twfe`` and for the re-estimating bootstrap, the
        unrestricted score bootstrap with ``refit=False``. False: WCU. True is not available
        for the score bootstrap (``refit=False``).
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
    refit
        ``imputation``/``two_stage``/``cs``: re-estimate on every draw (None, default: True) or
        use the score bootstrap (False). True with ``twfe`` raises ``NotImplementedError`` (its
        bootstrap re-estimates the regression anyway).

    Returns
    -------
    pandas.DataFrame
        One row per tested effect: ``term`` ("event_time", "cohort", "time" or "overall"), the
        key column (``event_time`` for event studies, ``cohort`` or ``time`` for ``cs`` group or
        calendar aggregations; missing on the overall row), ``estimate``, ``se`` (the
        estimator's analytic standard error), ``t_stat`` (``estimate / se``), ``p_value``
        (two-sided bootstrap p-value of ``theta = 0``), ``ci_lower``/``ci_upper`` with
        ``ci=True``, ``method``, ``bootstrap`` ("WCR", "WCU", "WCR-refit", "WCU-refit" or
        "score"), ``weights`` (the multiplier distribution; the column keeps its name),
        ``n_boot``, ``n_clusters``, ``n_treated_clusters`` (clusters with
        a treated observation behind the effect; with one or two the bootstrap is unreliable)
        and ``enumerated``.

    Raises
    ------
    NotImplementedError
        ``impose_null=True`` with the score bootstrap (``refit=False``): imposing
        ``theta = 0`` needs the estimator's residuals recomputed under the null, which the
        influence functions do not provide; ``refit=True`` with ``twfe``; ``cs`` re-estimation
        of an unbalanced panel kept whole (``unbalanced="keep"``).

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
    (about 0.07 at 5 % for ``cs``, 0.08-0.12 for ``imputation``/``two_stage``), while ``twfe``
    WCR is at its level.

    *Re-estimating bootstrap.* For ``imputation``, ``two_stage`` and ``cs`` the default re-runs
    the estimator and its analytic variance on every bootstrap outcome, so the bootstrap
    distribution of the t-statistic carries the variance's own small-sample error; in the same
    redraws the re-estimating bootstraps reject close to their level (docs/inference.md). See
    :mod:`finsam_eval.inference.wild_refit` (imputation, two-stage) and
    :mod:`finsam_eval.inference.wild_refit_cs` (CS) for the bootstrap models and restricted
    fits.
    """
    if not isinstance(result, EstimationResult) or result.spec is None:
        raise TypeError(
            "wild_bootstrap takes a result of finsam_eval.estimate (it carries its data and "
            f"specification), got {type(result).__name__}"
        )
    check_positive_count("reps", reps)
    check_seed(seed)
    check_alpha(alpha)
    method, spec, data = result.method, result.spec, result.data
    cluster, weights, B = spec.cluster, multiplier, reps
    estimate_options = spec.as_options()
    refit = _checked_refit(method, spec, weights, aggregate, refit, impose_null)
    key_column = "event_time" if method != "cs" else _KEY_COLUMN[aggregate]

    if method == "twfe":
        boot = {"reps": B, "multiplier": weights, "seed": seed, "ci": ci, "alpha": alpha}
        rows, kind = _twfe_wild(result, event_times, overall, impose_null, boot)
    else:
        rows, kind = _estimator_rows(
            result, estimate_options, event_times, overall, refit, impose_null,
            (B, weights, seed), ci, alpha, aggregate,
        )  # fmt: skip

    return _result_table(rows, key_column, method, kind, weights, data, cluster, estimate_options)


#: Options of the deprecated :func:`wild_bootstrap_event_study` that go to :func:`wild_bootstrap`
#: (the others go to ``estimate``).
_BOOTSTRAP_OPTIONS = ("impose_null", "seed", "ci", "alpha", "overall", "aggregate", "refit")


def wild_bootstrap_event_study(
    data: pd.DataFrame,
    method: str = "twfe",
    event_times: list[int] | None = None,
    cluster: str | None = "cluster_lan",
    B: int = 9999,
    weights: str = "rademacher",
    *,
    analytic_weights: str | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Deprecated form of :func:`wild_bootstrap`: estimates, then bootstraps the result.

    ``finsam_eval.estimate(data, method=method, cluster=cluster, weights=analytic_weights,
    **estimate_options)`` followed by ``wild_bootstrap(result, reps=B, multiplier=weights,
    event_times=event_times, **bootstrap_options)``, where ``options`` named in
    ``wild_bootstrap`` (``impose_null``, ``seed``, ``ci``, ``alpha``, ``overall``,
    ``aggregate``, ``refit``) are its bootstrap options and the rest ``estimate``'s; warns
    (``DeprecationWarning``) and goes in the next release.
    """
    warnings.warn(
        "wild_bootstrap_event_study(data, method, ..., B=, weights=) is deprecated; call "
        "wild_bootstrap(finsam_eval.estimate(data, ...), reps=, multiplier=)",
        DeprecationWarning,
        stacklevel=2,
    )
    boot = {name: options.pop(name) for name in _BOOTSTRAP_OPTIONS if name in options}
    result = estimate(data, method=method, cluster=cluster, weights=analytic_weights, **options)
    return wild_bootstrap(result, reps=B, multiplier=weights, event_times=event_times, **boot)


def _estimator_rows(
    result: EstimationResult,
    estimate_options: dict[str, Any],
    event_times: list[Any] | None,
    overall: bool,
    refit: bool,
    impose_null: bool | None,
    draws: tuple[int, str, int | None],
    ci: bool,
    alpha: float,
    aggregate: str,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the imputation, two-stage and CS bootstraps: re-estimating where available
    (imputation leads: their regression's), the score bootstrap for the rest."""
    method = result.method
    B, weights, seed = draws
    agg_options = _aggregation_options(estimate_options)
    keys, est, infl, overall_est, overall_if = _score_inputs(result, method, aggregate, agg_options)
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
    # each row from the re-estimating bootstrap (imputation leads: their regression's)
    # where available, the score bootstrap for the rest
    filled: dict[int, dict[str, Any]] = {}
    kinds: list[str] = ["score"] * len(keys)
    if refit:
        wcr = impose_null is None or impose_null
        refitted = _refit_rows(
            result,
            keys,
            wcr,
            B,
            weights,
            seed,
            ci,
            alpha,
            aggregate,
            agg_options,
        )
        for j, refit_out in refitted.items():
            if not np.isclose(refit_out["estimate"], est[j], rtol=1e-9, atol=1e-12):
                raise RuntimeError(
                    f"the linear replay of {method} gives {refit_out['estimate']!r} for "
                    f"{keys[j]}, the estimator {est[j]!r}"
                )
            filled[j] = refit_out
            kinds[j] = "WCR-refit" if wcr else "WCU-refit"
        if method == "imputation":
            boot = {"reps": B, "multiplier": weights, "impose_null": wcr, "seed": seed}
            for j, lead_row in _lead_rows(result, keys, boot, ci, alpha):
                filled[j] = lead_row
                kinds[j] = "WCR" if wcr else "WCU"
    rest = [j for j in range(len(keys)) if j not in filled]
    if rest:
        unit_cluster = result.cluster_codes
        score = score_bootstrap(infl[:, rest], est[rest], unit_cluster, B, weights, seed, alpha)
        for i, j in enumerate(rest):
            filled[j] = {name: score[name][i] for name in _ROW_STATISTICS} | {
                name: score[name] for name in _RUN_FACTS
            }
    rows = []
    for j, key in enumerate(keys):
        row = {
            "key": key,
            "estimate": float(est[j]),
            **{name: float(filled[j][name]) for name in ("se", "t_stat", "p_value")},
            **{name: filled[j][name] for name in _RUN_FACTS},
        }
        if ci:
            row["ci_lower"] = float(filled[j].get("ci_lower", np.nan))
            row["ci_upper"] = float(filled[j].get("ci_upper", np.nan))
        rows.append(row)
    return rows, kinds


def _treated_clusters(
    data: pd.DataFrame,
    keys: list[Any],
    key_column: str | None,
    method: str,
    cluster: str | None,
    options: dict[str, Any],
) -> list[int]:
    """Clusters with a treated observation behind each tested effect.

    Event time ``e``: treated units observed ``e`` periods after joining (binned end points for
    TWFE with a window); cohort ``g``: its post-period observations; year ``t``: units treated
    by ``t``; overall: every post-period observation (within the window). With one or two
    treated clusters the wild bootstrap has almost nothing to resample (MacKinnon & Webb 2018).
    """
    unit = options.get("unit", "kommun_kod")
    cohort = pd.to_numeric(data[options.get("cohort", "cohort")], errors="coerce")
    cohort = cohort.fillna(0).to_numpy(dtype=float)
    time = pd.to_numeric(data[options.get("time", "year")], errors="coerce").to_numpy(float)
    label = data[cluster if cluster is not None else unit].to_numpy()
    treated = cohort > 0
    event = np.where(treated, time - cohort, np.nan)
    window = options.get("window")
    if window is not None and method == "twfe":
        event = np.clip(event, window[0], window[1])
    post = treated & (event >= 0)
    if window is not None:
        post &= event <= window[1]
    counts = []
    for key in keys:
        if _is_overall(key):
            mask = post
        elif key_column == "cohort":
            mask = treated & (cohort == key) & (event >= 0)
        elif key_column == "time":
            mask = treated & (time == key) & (event >= 0)
        else:
            mask = treated & (event == key)
        counts.append(int(pd.unique(label[mask]).size))
    return counts
