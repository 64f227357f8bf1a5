"""Checks of an estimation request made once, in ``finsam_eval.estimate``, before any method runs.

Every check of a *scalar* option (alpha, window, anticipation, seed, draw counts, the control
group, method-specific options) lives here, so the ``EstimationSpec`` of issue 12 can absorb them
in one place; checks of the *data* (columns, outcome, weights, cohorts, clusters) live in
:mod:`finsam_eval.estimators.prepare`. Unknown options raise an error that names the methods
which accept them, as fixest's argument checks do. The few-clusters rule
(:func:`few_clusters_inference`) is applied to every method's result here as well.
"""

from __future__ import annotations

import difflib
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.estimators.prepare import EstimationInputError

__all__ = [
    "FEW_CLUSTERS",
    "MAX_DRAW_BYTES",
    "METHOD_OPTIONS",
    "SHARED_OPTIONS",
    "UnknownOptionError",
    "check_extras",
    "few_clusters_inference",
    "validate_request",
]


class UnknownOptionError(EstimationInputError, TypeError):
    """An option no estimator (or not the requested one) takes; a ``TypeError`` as in Python."""


# options every method takes (``finsam_eval.estimate``'s shared specification)
SHARED_OPTIONS: tuple[str, ...] = (
    "outcome",
    "unit",
    "time",
    "cohort",
    "control",
    "covariates",
    "weights",
    "cluster",
    "anticipation",
    "unbalanced",
    "window",
    "bootstrap",
    "seed",
    "alpha",
)

# method -> its own options and their defaults. ``est_method`` and ``base_period`` are
# Callaway–Sant'Anna options; the pipeline passes them to every method, so other methods accept
# est_method only at its default and base_period as "varying" or "universal".
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "cs": {
        "est_method": "dr",
        "base_period": "varying",
        "bootstrap_weights": "rademacher",
        "bootstrap_att_gt": False,
        # the evaluated cohorts (finsam_eval.design.isf_design): others are comparisons only
        "cohorts": None,
    },
    "twfe": {"reference": -1, "vcov": "cluster"},
    "sa": {"share_uncertainty": True, "dense": False},
    "imputation": {"effect_weights": None, "pretrends": True, "leave_one_out": False},
    "two_stage": {},
    "stacked": {"algorithm": "auto"},
    "dcdh": {"treatment": None, "effects": None, "placebo": None},
}
# the other methods measure effects against one fixed reference period (-1 - anticipation), a
# universal base, so either base_period value describes them and is accepted (the pipeline passes
# its configured value to every method)
_CS_ONLY_DEFAULTS = {"est_method": ("dr", None), "base_period": ("varying", "universal", None)}

# control groups each method defines (TWFE's year effects use every untreated row whatever is
# asked; it records the request)
CONTROLS: dict[str, tuple[str, ...]] = {
    "cs": ("never", "notyet"),
    "twfe": ("never", "notyet"),
    "sa": ("never", "lasttreated"),
    "imputation": ("never", "notyet"),
    "two_stage": ("never", "notyet"),
    "stacked": ("never", "notyet"),
    "dcdh": ("never", "notyet"),
}
_BOOLEAN_OPTIONS = ("bootstrap_att_gt", "share_uncertainty", "dense", "pretrends", "leave_one_out")

#: Below this many clusters every method uses t(G-1) critical values and warns. Cameron & Miller
#: (2015, "A practitioner's guide to cluster-robust inference", J. Human Resources 50(2), sec.
#: VI) put "few" at roughly 20-50 clusters; MacKinnon & Webb (2017, J. Applied Econometrics
#: 32(2)) show that cluster-robust t-tests over-reject below about 50 clusters, more so with
#: unequal cluster sizes (Swedish län differ twentyfold in kommuner). Above it each method keeps
#: its reference convention (normal critical values for CS, as R's did).
FEW_CLUSTERS = 50

#: Memory guard of the multiplier bootstrap: draws × clusters × 8 bytes must stay below this.
MAX_DRAW_BYTES = 2 * 1024**3


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_whole(value: Any) -> bool:
    """An integer, or a float holding a whole number (2.0), but never a bool or a string."""
    if _is_int(value):
        return True
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and bool(np.isfinite(value))
        and float(value) == int(value)
    )


def _check_alpha(alpha: Any) -> None:
    if (
        not isinstance(alpha, numbers.Real)
        or isinstance(alpha, bool | np.bool_)
        or not np.isfinite(alpha)
        or not 0 < alpha < 1
    ):
        raise EstimationInputError(
            f"alpha must be a number strictly between 0 and 1 (e.g. 0.05), got {alpha!r}"
        )


def _check_window(window: Any) -> None:
    if window is None:
        return
    rule = "window must be two integers (lo, hi) with lo <= hi, e.g. (-5, 5)"
    if isinstance(window, str | bytes) or not hasattr(window, "__len__") or len(window) != 2:
        raise EstimationInputError(f"{rule}; got {window!r}")
    lo, hi = window
    if not (_is_whole(lo) and _is_whole(hi)):
        raise EstimationInputError(f"{rule}; got non-integer bound(s) in {window!r}")
    if lo > hi:
        raise EstimationInputError(f"{rule}; got lo={lo} > hi={hi}")


def _check_count(name: str, value: Any) -> None:
    if not _is_whole(value) or value < 0:
        raise EstimationInputError(f"{name} must be a non-negative integer, got {value!r}")


def _check_seed(seed: Any) -> None:
    if seed is None:
        return
    if not _is_int(seed) or seed < 0:
        raise EstimationInputError(
            f"seed must be None or a non-negative integer (numpy Generator seed), got {seed!r}"
        )


def _accepting(option: str) -> list[str]:
    return [m for m, opts in METHOD_OPTIONS.items() if option in opts]


def _unknown_option_error(method: str, option: str) -> UnknownOptionError:
    known = [*SHARED_OPTIONS, *METHOD_OPTIONS[method]]
    accepting = _accepting(option)
    if accepting:
        hint = f"it is an option of method(s) {accepting}"
    else:
        close = difflib.get_close_matches(
            option, [*SHARED_OPTIONS, *{o for opts in METHOD_OPTIONS.values() for o in opts}], 1
        )
        hint = f"did you mean {close[0]!r}?" if close else "no method takes it"
        hint += f" Options of method={method!r}: {sorted(known)}"
    return UnknownOptionError(f"method={method!r} got unknown option {option!r}: {hint}")


def check_extras(method: str, extras: Mapping[str, Any]) -> list[str]:
    """Raise on options a ``fit`` caught in ``**kwargs``; return the names it may ignore.

    A method's ``fit`` called directly accepts ``seed`` (unused without draws) and the CS options
    at their defaults; anything else raises :class:`UnknownOptionError` naming the methods that
    take the option.
    """
    ignored = []
    for name, value in extras.items():
        if name == "seed":
            _check_seed(value)
        elif name in _CS_ONLY_DEFAULTS and value in _CS_ONLY_DEFAULTS[name]:
            pass
        elif name in _CS_ONLY_DEFAULTS:
            raise UnknownOptionError(
                f"{name}={value!r} is an option of method(s) {_accepting(name)}; "
                f"method={method!r} has no {name} (leave it at its default)"
            )
        else:
            raise _unknown_option_error(method, name)
        ignored.append(name)
    return sorted(ignored)


def validate_request(method: str, data: pd.DataFrame, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check an ``estimate`` request and return the options to pass to ``method``'s ``fit``.

    Parameters
    ----------
    method
        A key of ``METHOD_OPTIONS``.
    data
        The panel (used only for the memory guard of the bootstrap draws).
    options
        Every option given to ``estimate`` (shared and method-specific).

    Returns
    -------
    dict
        The options ``method`` takes; CS-only options at their defaults are dropped for the
        other methods.

    Raises
    ------
    UnknownOptionError
        For an option ``method`` does not take, naming the methods that do take it.
    EstimationInputError
        For a value outside its rule, naming the value and the rule.
    """
    own = METHOD_OPTIONS[method]
    passed: dict[str, Any] = {}
    for name, value in options.items():
        if name in SHARED_OPTIONS or name in own:
            passed[name] = value
        elif name in _CS_ONLY_DEFAULTS and value in _CS_ONLY_DEFAULTS[name]:
            continue  # the default of a CS option: nothing is being asked of this method
        elif name in _CS_ONLY_DEFAULTS:
            raise UnknownOptionError(
                f"{name}={value!r} is an option of method(s) {_accepting(name)}; "
                f"method={method!r} has no {name} (leave it at its default)"
            )
        else:
            raise _unknown_option_error(method, name)

    _check_alpha(passed.get("alpha", 0.05))
    _check_window(passed.get("window"))
    _check_count("anticipation", passed.get("anticipation", 0))
    _check_seed(passed.get("seed"))
    bootstrap = passed.get("bootstrap", 0)
    _check_count("bootstrap (the number of multiplier draws)", bootstrap)
    control = passed.get("control", "never")
    if control not in CONTROLS[method]:
        raise EstimationInputError(
            f"control={control!r} is not defined for method={method!r}; "
            f"use one of {list(CONTROLS[method])}"
        )
    for name in _BOOLEAN_OPTIONS:
        if name in passed and not isinstance(passed[name], bool | np.bool_):
            raise EstimationInputError(f"{name} must be True or False, got {passed[name]!r}")
    for name in ("outcome", "unit", "time", "cohort"):
        if name in passed and not isinstance(passed[name], str):
            raise EstimationInputError(f"{name} must be a column name (str), got {passed[name]!r}")
    covariates = passed.get("covariates")
    if isinstance(covariates, str):
        raise EstimationInputError(
            f"covariates must be a list of column names, got the string {covariates!r} "
            f"(write covariates=[{covariates!r}])"
        )
    if bootstrap and isinstance(data, pd.DataFrame):
        unit = passed.get("unit", "kommun_kod")
        groups = data[unit].nunique() if unit in data.columns else len(data)
        need = int(bootstrap) * max(int(groups), 1) * 8
        if need > MAX_DRAW_BYTES:
            raise EstimationInputError(
                f"bootstrap={bootstrap} draws over {groups} units need about "
                f"{need / 1024**3:.1f} GiB for the multiplier weights (limit "
                f"{MAX_DRAW_BYTES / 1024**3:.0f} GiB); use fewer draws (999 to 9999 suffice)"
            )
    return passed


_TABLE_FIELDS = ("event_study", "att_gt")


def _t_columns(table: pd.DataFrame, df: int, alpha: float) -> pd.DataFrame:
    est = table["estimate"].to_numpy(dtype=float)
    se = table["se"].to_numpy(dtype=float)
    from scipy import stats  # lazy: scipy.stats costs ~0.5 s at import (issue 16)

    crit = stats.t.ppf(1 - alpha / 2, df)
    out = table.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ci_lower"] = est - crit * se
        out["ci_upper"] = est + crit * se
        out["p_value"] = 2 * stats.t.sf(np.abs(est / se), df)
        if {"band_lower", "band_upper"} <= set(out.columns):
            # a simultaneous band is never narrower than the pointwise t(G-1) interval
            band = np.nanmax((out["band_upper"].to_numpy(dtype=float) - est) / se, initial=0.0)
            wide = max(float(band), float(crit))
            out["band_lower"] = est - wide * se
            out["band_upper"] = est + wide * se
    return out


def _nan_columns(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in ("se", "ci_lower", "ci_upper", "p_value"):
        out[col] = np.nan
    for col in ("band_lower", "band_upper"):
        if col in out:
            out[col] = np.nan
    return out


def few_clusters_inference(result: Any, alpha: float) -> Any:
    """Apply the few-clusters rule to ``result`` in place and return it.

    With fewer than 2 clusters no variance is identified: SEs, intervals and p-values become
    NaN and a warning says so. With fewer than :data:`FEW_CLUSTERS` clusters, pointwise
    intervals and p-values use t(G-1) critical values (Cameron & Miller 2015; Bester, Conley &
    Hansen 2011) and a warning points to the wild cluster bootstrap
    (``finsam_eval.inference.wild_results``). TWFE and stacked already use t(G-1) (fixest's
    convention), so their numbers do not move. Heteroskedasticity-robust or iid variances
    (``vcov="hetero"``/``"iid"``) are not clustered and are left alone.
    """
    info = result.info
    if info.get("vcov_type", info.get("vcov", "CRV1")) in ("HC1", "iid", "hetero"):
        return result
    n_clusters = info.get("n_clusters")
    if n_clusters is None:
        return result
    n_clusters = int(n_clusters)
    notes = info.setdefault("warnings", [])
    if n_clusters < 2:
        msg = (
            f"only {n_clusters} cluster: no cluster-robust variance is identified; SEs, "
            "intervals and p-values are NaN"
        )
        fix = _nan_columns
    elif n_clusters < FEW_CLUSTERS:
        msg = (
            f"only {n_clusters} clusters (< {FEW_CLUSTERS}): intervals and p-values use t({n_clusters - 1}) "
            "critical values (Cameron & Miller 2015), which can still over-reject; prefer the "
            "wild cluster bootstrap (finsam_eval.inference.wild_results)"
        )

        def fix(table: pd.DataFrame) -> pd.DataFrame:
            return _t_columns(table, n_clusters - 1, alpha)
    else:
        return result
    warnings.warn(msg, UserWarning, stacklevel=3)
    notes.append(msg)
    info["few_clusters_df"] = n_clusters - 1 if n_clusters >= 2 else None
    for name in _TABLE_FIELDS:
        table = getattr(result, name, None)
        if isinstance(table, pd.DataFrame) and {"estimate", "se"} <= set(table.columns):
            setattr(result, name, fix(table))
    overall = result.overall
    if isinstance(overall, pd.Series) and {"estimate", "se"} <= set(overall.index):
        fixed = fix(pd.DataFrame({"estimate": [float(overall["estimate"])],
                                  "se": [float(overall["se"])]}))  # fmt: skip
        overall = overall.copy()
        for key in ("se", "ci_lower", "ci_upper", "p_value"):
            if key in overall.index:
                overall[key] = fixed[key].iloc[0]
        result.overall = overall
    return result
