"""The report's summary and its comparison with ISF 2019.

Three pieces, all plain frames so a report can be rebuilt from an output folder:

- :func:`series_diagnostics` (needs the estimation results, so the pipeline runs it and writes
  ``diagnostics.csv``): per population × outcome, the pre-trend Wald test and the HonestDiD
  breakdown value of the headline method;
- :func:`summary_rows`: per population × outcome, the headline method's effects at the follow-up
  years with their pointwise intervals, how many years the robust methods agree, and one
  plain-language sentence;
- :data:`ISF_2019_PATTERN` and :func:`isf_comparison`: the sign pattern ISF (2019) published,
  as data with its source, beside this run's signs. A comparison with published findings, not a
  test: ISF estimated another model on other years.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.report.estimates import _outcome_rank, _population_rank, population_outcomes
from finsam_eval.report.labels import (
    ROBUST_METHODS,
    method_label,
    outcome_label,
    population_label,
    text,
)

if TYPE_CHECKING:
    from finsam_eval.estimators.result import EstimationResult

__all__ = [
    "DIAGNOSTICS_COLUMNS",
    "ISF_2019_PATTERN",
    "PublishedFinding",
    "headline_method",
    "isf_comparison",
    "series_breakdown",
    "series_diagnostics",
    "summary_rows",
]

SIGNIFICANCE = 0.05
DIAGNOSTICS_COLUMNS = [
    "population",
    "outcome",
    "method",
    "pretrend_W",
    "pretrend_df",
    "pretrend_p",
    "pretrend_note",
    "breakdown",
    "breakdown_note",
]
_SEED_001 = "ISF 2019, seed 001_5bd59affdc4fd9dd.txt"


@dataclass(frozen=True)
class PublishedFinding:
    """One published sign: ``sign`` +1 (the share rises), -1 (falls) or 0 (no effect found) for
    a population × outcome at follow-up ``years``, with the source's words."""

    population: str
    outcome: str
    years: tuple[int, ...]
    sign: int
    claim_sv: str
    claim_en: str
    source: str = _SEED_001


#: ISF (2019) results (seed 001, "Sammanfattning" and "Samordningsförbunden gör skillnad"). ISF's
#: six follow-up years are read as years 1–6 after joining.
ISF_2019_PATTERN: tuple[PublishedFinding, ...] = (
    PublishedFinding(
        "alla", "sjukpenning", (5, 6), -1,
        "minskar med 0,3 procentenheter, säkerställt fem och sex år efter bildandet",
        "falls by 0.3 percentage points, significant five and six years after formation",
    ),
    PublishedFinding(
        "alla", "sa", (1, 2, 3, 4, 5, 6), +1,
        "ökar för samtliga sex uppföljningsår",
        "rises in all six follow-up years",
    ),
    PublishedFinding(
        "man", "af_till_arbete", (1, 2, 3, 4, 5, 6), +1,
        "män lämnar arbetslöshet för arbete i högre utsträckning",
        "men leave unemployment for work more often",
    ),
    PublishedFinding(
        "kvinnor", "af_till_arbete", (1, 2, 3, 4, 5, 6), 0,
        "ingen sådan effekt för kvinnor",
        "no such effect for women",
    ),
    PublishedFinding(
        "unga", "uvas", (1, 2, 3, 4, 5, 6), +1,
        "högre andel unga som varken arbetar eller studerar, i princip alla sex år",
        "higher share of young people neither working nor studying, in nearly all six years",
    ),
    PublishedFinding(
        "alla", "ekonomiskt_bistand", (1, 2, 3, 4, 5, 6), 0,
        "ingen påverkan för hela populationen",
        "no effect for the whole population",
    ),
    PublishedFinding(
        "unga", "ekonomiskt_bistand", (1, 2, 3, 4, 5, 6), 0,
        "ingen påverkan för ungdomar",
        "no effect for the young",
    ),
    PublishedFinding(
        "aldre", "ekonomiskt_bistand", (3, 4, 5, 6), +1,
        "större andel äldre med ekonomiskt bistånd efter mer än två år",
        "a larger share of older people receive economic assistance after more than two years",
    ),
)  # fmt: skip


def headline_method(methods: Sequence[str]) -> str:
    """The method the summary leads with: Callaway & Sant'Anna when run, else the first robust
    method, else the first method."""
    methods = [str(m) for m in methods]
    if not methods:
        raise ValueError("no methods in the estimates")
    if "cs" in methods:
        return "cs"
    robust = [m for m in methods if m in ROBUST_METHODS]
    return robust[0] if robust else methods[0]


def _reason(error: BaseException) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    return message[:160]


def series_diagnostics(
    results: Mapping[tuple[str, str, str], EstimationResult],
    method: str,
    event_times: Sequence[int],
    *,
    honest: bool = True,
    tol: float = 0.05,
    grid_points: int = 200,
    on_series: Callable[[str, str], None] | None = None,
    breakdowns: Mapping[tuple[str, str], tuple[float, str]] | None = None,
) -> pd.DataFrame:
    """Pre-trend test and HonestDiD breakdown value of every series of one method.

    Parameters
    ----------
    results
        Estimation results keyed by (population, outcome, method).
    method
        The method to diagnose (the report's headline method).
    event_times
        Follow-up years ``[first, ..., last]``: the breakdown value is for the average effect
        over the post-periods among them.
    honest
        Compute breakdown values (``finsam_eval.inference.honest.breakdown_value``, relative
        magnitudes, Rambachan & Roth 2023); False records "not computed".
    tol, grid_points
        Bisection tolerance and the test-inversion grid of the breakdown value.
    on_series
        Called with (population, outcome) before each series (progress).
    breakdowns
        (population, outcome) → (breakdown, note) already computed by :func:`series_breakdown`
        with the same ``event_times``, ``tol`` and ``grid_points`` (the pipeline computes them
        in worker processes while it estimates); series not in it are computed here.

    Returns
    -------
    pandas.DataFrame
        :data:`DIAGNOSTICS_COLUMNS`; a test that fails leaves NaN and its reason in the note
        column ("" when computed).
    """
    from finsam_eval.inference.pretrends import pretrend_wald

    breakdowns = {} if breakdowns is None else breakdowns
    rows = []
    for (population, outcome, key_method), res in results.items():
        if key_method != method:
            continue
        if on_series is not None:
            on_series(population, outcome)
        row: dict[str, Any] = {"population": population, "outcome": outcome, "method": method}
        try:
            test = pretrend_wald(res)
            row.update(
                pretrend_W=float(test["W"]),
                pretrend_df=int(test["df"]),
                pretrend_p=float(test["p_value"]),
                pretrend_note="",
            )
        except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
            row.update(pretrend_W=np.nan, pretrend_df=np.nan, pretrend_p=np.nan)
            row["pretrend_note"] = _reason(error)
        if not honest:
            value, note = np.nan, "[report] honest = false"
        elif (population, outcome) in breakdowns:
            value, note = breakdowns[(population, outcome)]
        else:
            value, note = series_breakdown(
                res.event_study, getattr(res, "vcov", None), event_times, tol=tol,
                grid_points=grid_points,
            )  # fmt: skip
        row.update(breakdown=value, breakdown_note=note)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=DIAGNOSTICS_COLUMNS)
    return _sort_series(frame)


@dataclass(frozen=True)
class _EventStudy:
    """What the HonestDiD functions read of a result (picklable, for worker processes)."""

    event_study: pd.DataFrame
    vcov: pd.DataFrame


def series_breakdown(
    event_study: pd.DataFrame,
    vcov: pd.DataFrame,
    event_times: Sequence[int],
    *,
    tol: float = 0.05,
    grid_points: int = 200,
) -> tuple[float, str]:
    """HonestDiD breakdown value of one series and its note ("" when computed).

    ``finsam_eval.inference.honest.breakdown_value`` under relative magnitudes (Rambachan &
    Roth 2023) for the average effect over the post-periods among ``event_times``, from a
    result's ``event_study`` and ``vcov`` (so it can run in a worker process). A failure gives
    NaN and its reason.
    """
    try:  # the HonestDiD module is being reworked; a missing function is a reason, not a crash
        from finsam_eval.inference.honest import breakdown_value
    except ImportError as error:
        return np.nan, _reason(error)
    times = {int(t) for t in event_times}
    try:
        es_times = event_study["event_time"].to_numpy(dtype=float)
        post = es_times[es_times >= 0]
        weights = np.isin(post, list(times)).astype(float)
        if weights.sum() == 0:
            raise ValueError("no post-period estimates among the follow-up years")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = breakdown_value(
                _EventStudy(event_study, vcov),
                restriction="relative_magnitude",
                l_vec=weights / weights.sum(),
                tol=tol,
                grid_points=grid_points,
            )
        return float(value), ""
    except Exception as error:  # noqa: BLE001 - reported in the summary, not raised
        return np.nan, _reason(error)


def _sort_series(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    keys = [
        (_population_rank(p), _outcome_rank(o))
        for p, o in zip(frame["population"], frame["outcome"], strict=True)
    ]
    order = sorted(range(len(frame)), key=lambda i: keys[i])
    return frame.iloc[order].reset_index(drop=True)


def _event_rows(estimates: pd.DataFrame) -> pd.DataFrame:
    rows = estimates
    if "term" in rows.columns:
        rows = rows[rows["term"].isna() | (rows["term"] == "event_time")]
    return rows.assign(event_time=pd.to_numeric(rows["event_time"], errors="coerce"))


def _class(estimate: float, p_value: float) -> int:
    """+1 / -1 for a significant positive / negative estimate, 0 otherwise."""
    if not (math.isfinite(estimate) and math.isfinite(p_value)) or p_value >= SIGNIFICANCE:
        return 0
    return 1 if estimate > 0 else -1


def _number(value: float, language: str, decimals: int = 2) -> str:
    text_ = f"{value:.{decimals}f}"
    if text_.startswith("-") and float(text_) == 0:
        text_ = text_[1:]
    text_ = text_.replace("-", "−")
    return text_.replace(".", ",") if language == "sv" else text_


def _interval(lo: float, hi: float, language: str) -> str:
    sep = "; " if language == "sv" else ", "
    return f"[{_number(lo, language)}{sep}{_number(hi, language)}]"


def summary_rows(
    estimates: pd.DataFrame,
    *,
    method: str,
    event_times: Sequence[int],
    diagnostics: pd.DataFrame | None = None,
    language: str = "sv",
) -> list[dict[str, Any]]:
    """One summary row per population × outcome (ISF order, outcomes defined for the population).

    Returns
    -------
    list of dict
        ``population``, ``outcome`` (labels), ``cells`` (per follow-up year: ``estimate`` and
        ``interval`` text, ``significant``), ``agree`` (text), ``pretrend`` (text),
        ``breakdown`` (text) and ``sentence``.
    """
    times = [int(t) for t in event_times]
    rows = _event_rows(estimates)
    rows = rows[rows["event_time"].isin(times)]
    methods = sorted(set(rows["method"].astype(str)))
    robust = [m for m in methods if m in ROBUST_METHODS]
    diag = {}
    if diagnostics is not None and not diagnostics.empty:
        diag = {(str(r["population"]), str(r["outcome"])): r for _, r in diagnostics.iterrows()}
    series = rows[["population", "outcome"]].astype(str).drop_duplicates()
    keys = sorted(
        map(tuple, series.to_numpy()), key=lambda k: (_population_rank(k[0]), _outcome_rank(k[1]))
    )
    # each series' rows, split in one pass (a mask per series cost 0.3 s in the run; issue 16)
    by_series = dict(
        iter(
            rows.groupby([rows["population"].astype(str), rows["outcome"].astype(str)], sort=False)
        )
    )
    robust_cells = _robust_cells(rows, robust)
    out = []
    for population, outcome in keys:
        defined = population_outcomes(population)
        if defined is not None and outcome not in defined:
            continue
        sub = by_series[(population, outcome)]
        head = sub[sub["method"].astype(str) == method].set_index("event_time")
        if head.empty:
            continue
        cells = []
        for t in times:
            if t not in head.index:
                cells.append({"estimate": "", "interval": "", "significant": False})
                continue
            r = head.loc[t]
            cls = _class(float(r["estimate"]), float(r["p_value"]))
            cells.append(
                {
                    "estimate": _number(float(r["estimate"]), language),
                    "interval": _interval(float(r["ci_lower"]), float(r["ci_upper"]), language),
                    "significant": cls != 0,
                }
            )
        # agreement: same class (sign if significant at 5 %, else "none") across robust methods
        if len(robust) >= 2:
            cells_of = robust_cells.get((population, outcome), {})
            # as pivot_table(index=event_time, columns=method) with its dropna: the event times
            # with a value, the methods with an estimate at any of them, NaN where one is missing
            present = {m for (_, m), (est, _) in cells_of.items() if not math.isnan(est)}
            observed = {t for t, _ in cells_of}
            agree = total = 0
            for t in times:
                if t not in observed:
                    continue
                classes = {
                    _class(*cells_of.get((t, m), (math.nan, math.nan)))
                    for m in robust
                    if m in present
                }
                total += 1
                agree += len(classes) == 1
            agree_text = text("agree_cell", language, agree=agree, total=total)
        else:
            agree_text = text("no_robust", language)
        d = diag.get((population, outcome))
        if d is None:
            pretrend = breakdown = text("not_computed", language, reason="—")
        else:
            pretrend = (
                _number(float(d["pretrend_p"]), language)
                if _finite(d["pretrend_p"])
                else text("not_computed", language, reason=str(d["pretrend_note"]))
            )
            if _finite(d["breakdown"]) and float(d["breakdown"]) == 0:
                # the interval covers 0 already under parallel trends
                breakdown = text("breakdown_zero", language)
            elif _finite(d["breakdown"]):
                breakdown = _number(float(d["breakdown"]), language)
            elif d["breakdown"] == np.inf or str(d["breakdown"]) == "inf":
                breakdown = "> 10"
            else:
                breakdown = text("not_computed", language, reason=str(d["breakdown_note"]))
        out.append(
            {
                "population_key": population,
                "outcome_key": outcome,
                "population": population_label(population, language),
                "outcome": outcome_label(outcome, language),
                "cells": cells,
                "agree": agree_text,
                "pretrend": pretrend,
                "breakdown": breakdown,
                "sentence": _sentence(head, population, outcome, method, times, language),
            }
        )
    return out


def _robust_cells(
    rows: pd.DataFrame, robust: Sequence[str]
) -> dict[tuple[str, str], dict[tuple[int, str], tuple[float, float]]]:
    """(population, outcome) -> (event time, method) -> (estimate, p-value) of the robust
    methods: the means per cell (one row each) and only cells with a value, as pivot_table."""
    sub = rows[rows["method"].astype(str).isin(list(robust))]
    if sub.empty:
        return {}
    keys = [sub[c].astype(str) for c in ("population", "outcome")]
    keys += [sub["event_time"], sub["method"].astype(str)]
    means = sub.groupby(keys, sort=False)[["estimate", "p_value"]].mean().dropna(how="all")
    out: dict[tuple[str, str], dict[tuple[int, str], tuple[float, float]]] = {}
    for (population, outcome, t, m), est, p in zip(
        means.index, means["estimate"].to_numpy(float), means["p_value"].to_numpy(float),
        strict=True,
    ):  # fmt: skip
        out.setdefault((population, outcome), {})[(int(t), m)] = (float(est), float(p))
    return out


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _sentence(
    head: pd.DataFrame,
    population: str,
    outcome: str,
    method: str,
    times: Sequence[int],
    language: str,
) -> str:
    """One plain-language sentence: the latest significant follow-up year, else the last one."""
    present = [t for t in times if t in head.index]
    significant = [
        t for t in present if _class(float(head.loc[t, "estimate"]), float(head.loc[t, "p_value"]))
    ]
    pop = population_label(population, language)
    out_label = outcome_label(outcome, language)
    if not out_label[:2].isupper():  # lower-case inside a sentence, acronyms (UVAS) kept
        out_label = out_label[0].lower() + out_label[1:]
    if significant:
        t = significant[-1]
        est = float(head.loc[t, "estimate"])
        return text(
            "sentence_sig",
            language,
            population=pop,
            outcome=out_label,
            direction=text("up" if est > 0 else "down", language),
            size=_number(abs(est), language),
            year=t,
            method=method_label(method),
        )
    t = present[-1]
    r = head.loc[t]
    return text(
        "sentence_ns",
        language,
        population=pop,
        outcome=out_label,
        year=t,
        estimate=_number(float(r["estimate"]), language),
        ci=_interval(float(r["ci_lower"]), float(r["ci_upper"]), language),
    )


def isf_comparison(
    estimates: pd.DataFrame,
    *,
    method: str,
    language: str = "sv",
    pattern: Sequence[PublishedFinding] = ISF_2019_PATTERN,
) -> list[dict[str, Any]]:
    """This run's signs beside the published ones, one row per published finding.

    "This run" is the sign of the mean of the headline method's estimates over the finding's
    years and how many of those years are significant at 5 % (pointwise). "Same sign" is yes
    when the mean has the published sign and at least one year is significant in that
    direction (for a published "no effect": no year is significant), "partly" when only the
    mean's sign matches, "no" otherwise. This compares with published findings; it is not a
    test of them.
    """
    rows = _event_rows(estimates)
    rows = rows[rows["method"].astype(str) == method]
    out = []
    for finding in pattern:
        sub = rows[
            (rows["population"].astype(str) == finding.population)
            & (rows["outcome"].astype(str) == finding.outcome)
            & rows["event_time"].isin(finding.years)
        ]
        published_sign = {1: "sign_up", -1: "sign_down", 0: "sign_none"}[finding.sign]
        years = (
            f"{min(finding.years)}–{max(finding.years)}"
            if len(finding.years) > 1
            else str(finding.years[0])
        )
        row = {
            "population": population_label(finding.population, language),
            "outcome": outcome_label(finding.outcome, language),
            "published": f"{text(published_sign, language)} ({text('years', language, years=years)}): "
            + (finding.claim_sv if language == "sv" else finding.claim_en),
            "source": finding.source,
        }
        if sub.empty:
            row.update(
                this_run=text("not_estimated", language), same=text("not_estimated", language)
            )
            out.append(row)
            continue
        est = sub["estimate"].to_numpy(dtype=float)
        classes = [
            _class(e, p) for e, p in zip(est, sub["p_value"].to_numpy(dtype=float), strict=True)
        ]
        mean = float(np.nanmean(est))
        n_sig = sum(c != 0 for c in classes)
        run_sign = "sign_up" if mean > 0 else "sign_down"
        row["this_run"] = (
            f"{text(run_sign, language)}, {text('years', language, years=years)} "
            f"{_number(mean, language)} ({text('significant_of', language, n=n_sig, total=len(classes))})"
        )
        if finding.sign == 0:
            same = "yes" if n_sig == 0 else "no"
        elif np.sign(mean) == finding.sign:
            same = "yes" if finding.sign in classes else "partly"
        else:
            same = "no"
        row["same"] = text(same, language)
        row["same_key"] = same
        out.append(row)
    return out
