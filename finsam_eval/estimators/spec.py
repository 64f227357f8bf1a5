"""The estimation specification: every option of an ``estimate`` call, validated once.

:class:`EstimationSpec` is a frozen, typed record of one request (pyfixest's
``EstimationConfig``, fixest's ``fixest_env``). :meth:`EstimationSpec.build` routes the options
of a call: the shared ones become fields, the method's own ones (declared in the method registry,
:mod:`finsam_eval.estimators.registry`) go to ``options`` with their defaults filled in, and an
option the method does not take raises :class:`UnknownOptionError` naming the methods that take
it. Every check of a *scalar* option (alpha, window, anticipation, seed, draw counts, the control
group, method-specific options) runs in the constructor; checks of the *data* (columns, outcome,
weights, cohorts, clusters) live in :mod:`finsam_eval.estimators.prepare`. The few-clusters rule
(:func:`few_clusters_inference`) is applied to every method's result here as well.

Every method's module exposes ``fit(data, spec)``; :func:`fit_contract` keeps the deprecated
direct call ``module.fit(data, outcome, ..., **options)`` working for one release.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.core.distributions import t_ppf, t_sf
from finsam_eval.core.multiplier import WEIGHT_KINDS
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel, prepare_panel
from finsam_eval.estimators.registry import METHODS, method_info

if TYPE_CHECKING:
    from finsam_eval.estimators.result import EstimationResult

__all__ = [
    "DEPRECATED_NAMES",
    "FEW_CLUSTERS",
    "MAX_DRAW_BYTES",
    "SHARED_OPTIONS",
    "EstimationSpec",
    "UnknownOptionError",
    "check_alpha",
    "check_count",
    "check_positive_count",
    "check_reference_period",
    "check_seed",
    "few_clusters_inference",
    "fit_contract",
    "result_first",
]


class UnknownOptionError(EstimationInputError, TypeError):
    """An option no estimator (or not the requested one) takes; a ``TypeError`` as in Python."""


# options every method takes (``finsam_eval.estimate``'s shared specification); the fields of
# EstimationSpec besides ``method`` and ``options``
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
    "reps",
    "seed",
    "alpha",
)

#: Old option names -> the one vocabulary of issue 12 (they warn for one release).
DEPRECATED_NAMES: Mapping[str, str] = MappingProxyType(
    {"bootstrap": "reps", "bootstrap_weights": "multiplier"}
)

# ``est_method`` and ``base_period`` are Callaway–Sant'Anna options; the pipeline passes them to
# every method, so the others accept est_method at its default and base_period as "varying" or
# "universal" (they measure effects against one fixed reference period -1 - anticipation, a
# universal base, so either value describes them) and record them as ignored
_CS_ONLY_DEFAULTS = {"est_method": ("dr", None), "base_period": ("varying", "universal", None)}
_BOOLEAN_OPTIONS = ("bootstrap_att_gt", "share_uncertainty", "dense", "pretrends", "leave_one_out")
_COLUMN_FIELDS = ("outcome", "unit", "time", "cohort")


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


def _check_positive_count(name: str, value: Any) -> None:
    if not _is_whole(value) or value < 1:
        raise EstimationInputError(f"{name} must be a positive integer, got {value!r}")


#: The same rules for the inference and report layers' own arguments (one rule each).
check_alpha, check_count, check_seed = _check_alpha, _check_count, _check_seed
check_positive_count = _check_positive_count


def _accepting(option: str) -> list[str]:
    return [m for m, info in METHODS.items() if option in info.options]


def _unknown_option_error(method: str, option: str) -> UnknownOptionError:
    known = [*SHARED_OPTIONS, *METHODS[method].options]
    accepting = _accepting(DEPRECATED_NAMES.get(option, option))
    if accepting:
        hint = f"it is an option of method(s) {accepting}"
    else:
        every = {o for info in METHODS.values() for o in info.options}
        close = difflib.get_close_matches(option, [*SHARED_OPTIONS, *every], 1)
        hint = f"did you mean {close[0]!r}?" if close else "no method takes it"
        hint += f" Options of method={method!r}: {sorted(known)}"
    return UnknownOptionError(f"method={method!r} got unknown option {option!r}: {hint}")


def _renamed(options: Mapping[str, Any], stacklevel: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Map deprecated option names to the new ones (with a DeprecationWarning each)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # new name -> the name the caller used (for messages)
    for name, value in options.items():
        new = DEPRECATED_NAMES.get(name)
        if new is None:
            out[name] = value
            given.setdefault(name, name)
            continue
        if new in options:
            raise EstimationInputError(f"give {new}= or its old name {name}=, not both")
        warnings.warn(
            f"{name}= is deprecated and will be removed in the next release; use {new}=",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        out[new] = value
        given[new] = name
    return out, given


@dataclass(frozen=True)
class EstimationSpec:
    """One validated estimation request: the shared options and the method's own ones.

    Build it with :meth:`build` (which routes and checks keyword options as ``estimate`` takes
    them) or directly; the constructor checks every value, so an ``EstimationSpec`` that exists is
    valid. Frozen: change a copy with :meth:`replace`.

    Attributes
    ----------
    method
        A key of the method registry (:data:`finsam_eval.estimators.registry.METHODS`).
    outcome, unit, time, cohort
        Column names; ``cohort`` is the first year of membership, 0 or NaN for never.
    control
        Control group, one the method defines (``MethodInfo.controls``).
    covariates, weights, cluster
        Covariate columns, the sampling-weight column (an analytic weight, constant within
        unit), the cluster column (constant within unit; None: clusters by unit).
    anticipation
        Periods before joining in which effects may already appear; the event-study methods'
        reference event time is :math:`-1 - a`.
    unbalanced
        "balance" (drop, and report, units not seen in every period) or "keep".
    window
        Event-time window (lo, hi) or None.
    reps, seed
        Bootstrap draws (0 = analytic only) and the seed of their numpy Generator. What is
        drawn is the method's ``MethodInfo.bootstrap``: "multiplier" (CS's multiplier
        bootstrap), "band" (Rademacher multiplier draws over clusters for a sup-t band), None
        (analytic variances only: a positive ``reps`` warns and is ignored).
    alpha
        Significance level (normal intervals unless the method says otherwise).
    options
        The method's own options, every one present (defaults filled in), read-only.
    ignored
        Options given that the method accepts and ignores (CS options at their defaults,
        ``seed`` for a method without draws), recorded in ``info["ignored_options"]``.
    """

    method: str
    outcome: str = "share"
    unit: str = "kommun_kod"
    time: str = "year"
    cohort: str = "cohort"
    control: str = "never"
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    cluster: str | None = None
    anticipation: int = 0
    unbalanced: str = "balance"
    window: tuple[int, int] | None = None
    reps: int = 0
    seed: int | None = None
    alpha: float = 0.05
    options: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        info = method_info(self.method)
        covariates = self.covariates
        if isinstance(covariates, str):
            raise EstimationInputError(
                f"covariates must be a list of column names, got the string {covariates!r} "
                f"(write covariates=[{covariates!r}])"
            )
        for name in _COLUMN_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise EstimationInputError(
                    f"{name} must be a column name (str), got {getattr(self, name)!r}"
                )
        _check_alpha(self.alpha)
        _check_window(self.window)
        _check_count("anticipation", self.anticipation)
        _check_seed(self.seed)
        _check_count("reps (the number of bootstrap draws)", self.reps)
        if self.control not in info.controls:
            raise EstimationInputError(
                f"control={self.control!r} is not defined for method={self.method!r}; "
                f"use one of {list(info.controls)}"
            )
        unknown = [name for name in self.options if name not in info.options]
        if unknown:
            raise _unknown_option_error(self.method, unknown[0])
        options = {**info.options, **self.options}
        for name in _BOOLEAN_OPTIONS:
            if name in options and not isinstance(options[name], bool | np.bool_):
                raise EstimationInputError(f"{name} must be True or False, got {options[name]!r}")
        if "multiplier" in options and options["multiplier"] not in WEIGHT_KINDS:
            raise EstimationInputError(
                f"multiplier must be one of {WEIGHT_KINDS}, got {options['multiplier']!r}"
            )
        # normalised, immutable values (a list of covariates becomes a tuple, bounds ints)
        fixed = {
            "covariates": tuple(covariates or ()),
            "window": None if self.window is None else (int(self.window[0]), int(self.window[1])),
            "anticipation": int(self.anticipation),
            "reps": int(self.reps),
            "alpha": float(self.alpha),
            "options": MappingProxyType(options),
            "ignored": tuple(self.ignored),
        }
        for name, value in fixed.items():
            object.__setattr__(self, name, value)

    @classmethod
    def build(
        cls,
        method: str,
        data: pd.DataFrame | None = None,
        /,
        *columns: str,
        _warn_level: int = 3,
        **options: Any,
    ) -> EstimationSpec:
        """Route the keyword options of an ``estimate`` call into a checked specification.

        Parameters
        ----------
        method
            A key of the method registry.
        data
            The panel, used only for the memory guard of the bootstrap draws (None skips it).
        *columns
            ``outcome, unit, time, cohort`` given by position (as ``estimate`` takes them).
        **options
            Shared options (:data:`SHARED_OPTIONS`) and the method's own ones. Deprecated
            names (:data:`DEPRECATED_NAMES`: ``bootstrap``, ``bootstrap_weights``) warn and are
            renamed. CS's ``est_method`` and ``base_period`` are accepted by every method at
            their defaults and ignored.

        Raises
        ------
        UnknownOptionError
            For an option ``method`` does not take, naming the methods that take it.
        EstimationInputError
            For a value outside its rule, naming the value and the rule.
        """
        info = method_info(method)
        if len(columns) > len(_COLUMN_FIELDS):
            raise TypeError(f"at most {len(_COLUMN_FIELDS)} column names by position: {columns}")
        clash = sorted(set(_COLUMN_FIELDS[: len(columns)]) & set(options))
        if clash:
            raise TypeError(f"got multiple values for {clash}")
        options = {**dict(zip(_COLUMN_FIELDS, columns, strict=False)), **options}
        # deprecation warnings point at the caller's line (estimate's caller: _warn_level=4)
        renamed, given = _renamed(options, stacklevel=_warn_level)
        shared: dict[str, Any] = {}
        own: dict[str, Any] = {}
        ignored: list[str] = []
        for name, value in renamed.items():
            if name in SHARED_OPTIONS:
                shared[name] = value
            elif name in info.options:
                own[name] = value
            elif name in _CS_ONLY_DEFAULTS and value in _CS_ONLY_DEFAULTS[name]:
                # the default of a CS option: nothing is being asked of this method
                if value is not None:
                    ignored.append(name)
            elif name in _CS_ONLY_DEFAULTS:
                raise UnknownOptionError(
                    f"{name}={value!r} is an option of method(s) {_accepting(name)}; "
                    f"method={method!r} has no {name} (leave it at its default)"
                )
            else:
                raise _unknown_option_error(method, given.get(name, name))
        if "seed" in shared and info.bootstrap is None:
            ignored.append("seed")  # no draws: the seed is checked, recorded and unused
        reps = shared.get("reps", 0)
        label = given.get("reps", "reps")
        _check_count(f"{label} (the number of bootstrap draws)", reps)
        if reps and isinstance(data, pd.DataFrame):
            unit = shared.get("unit", "kommun_kod")
            groups = data[unit].nunique() if unit in data.columns else len(data)
            need = int(reps) * max(int(groups), 1) * 8
            if need > MAX_DRAW_BYTES:
                raise EstimationInputError(
                    f"{label}={reps} draws over {groups} units need about "
                    f"{need / 1024**3:.1f} GiB for the multiplier weights (limit "
                    f"{MAX_DRAW_BYTES / 1024**3:.0f} GiB); use fewer draws (999 to 9999 suffice)"
                )
        return cls(method, **shared, options=own, ignored=tuple(sorted(ignored)))

    def option(self, name: str) -> Any:
        """The value of the method's own option ``name`` (its default when not given)."""
        return self.options[name]

    def values(self, names: str) -> tuple[Any, ...]:
        """The values of the space-separated ``names``: fields, then the method's own options.

        ``spec.values("window reps multiplier")`` unpacks what a ``fit`` uses in one line.
        """
        return tuple(
            list(self.ignored)
            if name == "ignored"
            else getattr(self, name)
            if name in _FIELDS
            else self.options[name]
            for name in names.split()
        )

    @property
    def columns(self) -> tuple[str, str, str, str]:
        """``(outcome, unit, time, cohort)``."""
        return self.outcome, self.unit, self.time, self.cohort

    def replace(self, **changes: Any) -> EstimationSpec:
        """A checked copy with ``changes`` (shared fields or the method's own options)."""
        own = {k: changes.pop(k) for k in list(changes) if k not in _FIELDS}
        if own:
            changes["options"] = {**self.options, **own}
        return dataclasses.replace(self, **changes)

    def fit_notes(self, panel: PreparedPanel) -> list[str]:
        """The notes a ``fit`` starts its ``info["warnings"]`` with: the panel's warnings, and
        (with a warning) that ``reps`` draws nothing for a method with analytic variances only
        (``MethodInfo.bootstrap`` None)."""
        notes = list(panel.warnings)
        if self.reps and METHODS[self.method].bootstrap is None:
            msg = f"method={self.method!r} has analytic variances only; reps={self.reps} is ignored"
            warnings.warn(msg, UserWarning, stacklevel=3)
            notes.append(msg)
        return notes

    def prepare(
        self, data: pd.DataFrame, control: str | None = None, unbalanced: str | None = None
    ) -> PreparedPanel:
        """``prepare_panel`` of ``data`` with this specification's columns and design.

        Procedures that replay a fit on its panel (the wild bootstraps rebuild its design or
        linear maps) prepare it here; ``control`` and ``unbalanced`` override the spec's (the
        regression-type methods prepare with every untreated row, ``control="notyet"``).
        """
        return prepare_panel(
            data,
            *self.columns,
            covariates=list(self.covariates) or None,
            weights=self.weights,
            cluster=self.cluster,
            anticipation=self.anticipation,
            control=self.control if control is None else control,
            unbalanced=self.unbalanced if unbalanced is None else unbalanced,
        )

    def as_options(self, changed_only: bool = False) -> dict[str, Any]:
        """The keyword options of ``estimate`` that rebuild this specification.

        ``changed_only``: only those that differ from ``estimate``'s and the method's defaults
        (what a caller would have written).
        """
        out = {name: getattr(self, name) for name in SHARED_OPTIONS}
        out["covariates"] = list(self.covariates) or None
        out.update(self.options)
        if changed_only:
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            defaults.update(METHODS[self.method].options, covariates=None)
            out = {k: v for k, v in out.items() if k not in defaults or defaults[k] != v}
        return out


_FIELDS = frozenset(f.name for f in dataclasses.fields(EstimationSpec))


def _carry(result: EstimationResult, spec: EstimationSpec, data: pd.DataFrame) -> EstimationResult:
    """The result carries its specification and data (inference reads them from there); its
    summary ``info`` shows the method, significance level and ignored options of the spec."""
    result.spec = spec
    result.data = data
    result.info.setdefault("method", spec.method)
    result.info.setdefault("alpha", spec.alpha)
    result.info.setdefault("ignored_options", list(spec.ignored))
    return result


#: The parameters every method's ``fit`` takes, documented once (:func:`fit_contract` puts them
#: in each ``fit``'s docstring after its summary line).
_FIT_PARAMETERS = """
    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    spec
        The validated :class:`~finsam_eval.estimators.spec.EstimationSpec`. Its fields mean
        what ``EstimationSpec`` documents, ``reps`` draws what the method's
        ``MethodInfo.bootstrap`` says, and ``est_method``/``base_period`` are Callaway &
        Sant'Anna's; *Specification* lists what this method adds: how it reads a field and
        its own options (``MethodInfo.options``).
"""


def _fit_docstring(doc: str | None) -> str:
    """``doc`` with :data:`_FIT_PARAMETERS` after its summary paragraph."""
    doc = doc or ""
    head, sep, rest = doc.partition("\n\n")
    return head + "\n" + _FIT_PARAMETERS + sep[1:] + rest


def fit_contract(method: str) -> Callable[[Callable], Callable]:
    """Give a method's ``fit(data, spec)`` its shared parameters' documentation, and the
    deprecated keyword form for one release.

    ``module.fit(data, "y", "id", "year", "g", window=(-2, 2))`` (the old call, with the
    method's old defaults, e.g. dCDH's ``control="notyet"``) warns and is turned into
    ``module.fit(data, EstimationSpec.build(method, data, ...))``.
    """

    def decorate(func: Callable[[pd.DataFrame, EstimationSpec], EstimationResult]) -> Callable:
        @functools.wraps(func)
        def fit(
            data: pd.DataFrame, spec: EstimationSpec | str | None = None, /, *columns: str,
            **options: Any,
        ) -> EstimationResult:  # fmt: skip
            if isinstance(spec, EstimationSpec) and not columns and not options:
                if spec.method != method:
                    raise ValueError(f"a spec for method={spec.method!r} given to {method!r}")
                return _carry(func(data, spec), spec, data)
            if isinstance(spec, EstimationSpec):
                raise TypeError("fit(data, spec) takes no further arguments")
            positional = ([] if spec is None else [spec]) + list(columns)
            warnings.warn(
                f"{func.__module__}.fit(data, ...options) is deprecated; call "
                f"finsam_eval.estimate(data, method={method!r}, ...) or "
                "fit(data, EstimationSpec.build(method, data, ...))",
                DeprecationWarning,
                stacklevel=2,
            )
            legacy = {k: v for k, v in METHODS[method].legacy_defaults.items() if k not in options}
            built = EstimationSpec.build(
                method, data, *positional, _warn_level=4, **legacy, **options
            )
            return _carry(func(data, built), built, data)

        fit.__doc__ = _fit_docstring(func.__doc__)
        return fit

    return decorate


def result_first(first: Any, rest: Sequence[Any], name: str) -> tuple[Any, list[Any]]:
    """The result and remaining arguments of an inference call that took ``(data, result, ...)``
    before issue 12: the old form warns and the result is given ``data``."""
    from finsam_eval.estimators.result import EstimationResult

    if isinstance(first, EstimationResult):
        return first, list(rest)
    if not rest or not isinstance(rest[0], EstimationResult):
        raise TypeError(f"{name} takes an EstimationResult, got {type(first).__name__}")
    warnings.warn(
        f"{name}(data, result, ...) is deprecated; the result carries its data: "
        f"{name}(result, ...)",
        DeprecationWarning,
        stacklevel=3,
    )
    result = copy.copy(rest[0])
    result.data = first
    return result, list(rest[1:])


def check_reference_period(method: str, passed: Mapping[str, Any]) -> None:
    """Anticipation and window rules a method's ``fit`` meets only after preparing the data.

    The pipeline calls this before reading data (``finsam-eval validate``); the fits keep their
    own checks, so ``estimate`` refuses the same. dCDH has no anticipation; TWFE's reference
    period ``reference - anticipation`` and stacked's ``-1 - anticipation`` must lie in the
    window, and stacked's window must contain event time 0.
    """
    anticipation = int(passed.get("anticipation", 0) or 0)
    if method == "dcdh" and anticipation:
        raise EstimationInputError("method='dcdh' has no anticipation option; use anticipation=0")
    window = passed.get("window")
    if window is None:
        return
    lo, hi = int(window[0]), int(window[1])
    if method == "twfe":
        ref = int(passed.get("reference", -1)) - anticipation
        if not lo <= ref <= hi:
            raise EstimationInputError(
                f"reference period {ref} lies outside the window {tuple(window)}"
            )
    elif method == "stacked" and (not lo <= -1 - anticipation < hi or hi < 0):
        raise EstimationInputError(
            f"window {(lo, hi)} must contain the reference period {-1 - anticipation} and event "
            "time 0"
        )


_TABLE_FIELDS = ("event_study", "att_gt")


def _t_columns(table: pd.DataFrame, df: int, alpha: float) -> pd.DataFrame:
    est = table["estimate"].to_numpy(dtype=float)
    se = table["se"].to_numpy(dtype=float)
    crit = t_ppf(1 - alpha / 2, df)
    out = table.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ci_lower"] = est - crit * se
        out["ci_upper"] = est + crit * se
        out["p_value"] = 2 * t_sf(np.abs(est / se), df)
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
    if result.vcov_type != "CRV1" or result.n_clusters is None:
        return result  # not clustered
    n_clusters = int(result.n_clusters)
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
    if n_clusters >= 2 and result.df_t is None:
        result.df_t = n_clusters - 1  # the t(G - 1) intervals of the few-clusters rule
    for name in _TABLE_FIELDS:
        table = getattr(result, name, None)
        if isinstance(table, pd.DataFrame) and {"estimate", "se"} <= set(table.columns):
            setattr(result, name, fix(table))
    result.overall = _fix_overall(result.overall, fix)
    aggregator = getattr(result, "aggregator", None)
    if aggregator is not None:
        # res.aggregate(kind) recomputes its tables: every aggregation follows the same rule
        result.aggregator = _few_clusters_aggregator(aggregator, fix, msg, n_clusters, alpha)
    return result


def _fix_overall(overall: Any, fix: Any) -> Any:
    """An overall-effect Series with ``fix`` applied to its se, interval and p-value."""
    if not (isinstance(overall, pd.Series) and {"estimate", "se"} <= set(overall.index)):
        return overall
    fixed = fix(pd.DataFrame({"estimate": [float(overall["estimate"])],
                              "se": [float(overall["se"])]}))  # fmt: skip
    overall = overall.copy()
    for key in ("se", "ci_lower", "ci_upper", "p_value"):
        if key in overall.index:
            overall[key] = fixed[key].iloc[0]
    return overall


def _few_clusters_aggregator(
    aggregator: Any, fix: Any, msg: str, n_clusters: int, alpha: float
) -> Any:
    """``aggregator`` whose tables and overall effect follow the few-clusters rule and warn.

    The multiplier-bootstrap band of an aggregation is widened to at least the t(G-1) critical
    value (as the event study's, :func:`_t_columns`); with G < 2 it is NaN.
    """

    def wrapped(kind: str, **options: Any) -> Any:
        agg = aggregator(kind, **options)
        warnings.warn(msg, UserWarning, stacklevel=3)
        table = agg.table
        if isinstance(table, pd.DataFrame) and {"estimate", "se"} <= set(table.columns):
            agg.table = fix(table)
        agg.overall = _fix_overall(agg.overall, fix)
        crit = getattr(agg, "critical_value", None)
        if crit is not None:
            agg.critical_value = (
                max(float(crit), float(t_ppf(1 - alpha / 2, n_clusters - 1)))
                if n_clusters >= 2
                else None
            )
        return agg

    return wrapped
