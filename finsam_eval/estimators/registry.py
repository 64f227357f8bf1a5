"""The one registry of estimation methods: every fact about a method lives in its ``MethodInfo``.

Report, pipeline, inference and power read method facts from here alone (labels, options and
their defaults, control groups, bootstrap and wild-bootstrap kinds, citations); nothing else in
the package lists method names (``tests/test_registry.py`` greps for such lists). This follows
linearmodels' ``CovarianceManager`` (one table of variants, one refusal message) and fixest's
argument checks (an option that belongs to another method is named as such).

Each method's module exposes ``fit(data, spec) -> EstimationResult`` taking an
:class:`~finsam_eval.estimators.spec.EstimationSpec`; the module is imported on first use, so
the registry imports no estimator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finsam_eval.estimators.result import EstimationResult
    from finsam_eval.estimators.spec import EstimationSpec

__all__ = [
    "DEFAULT_POWER_METHODS",
    "DEFAULT_RUN_METHODS",
    "METHODS",
    "MethodInfo",
    "method_info",
    "methods_where",
]


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class MethodInfo:
    """Facts about one estimation method.

    Attributes
    ----------
    key
        The ``method=`` value of ``finsam_eval.estimate``.
    label, short_label
        Label with its citation (report legends, captions, tables) and the short name used in
        side-by-side tables (``etable``).
    module
        Module in ``finsam_eval.estimators`` exposing ``fit(data, spec)``.
    options
        The method's own options and their defaults (``estimate(..., **options)``).
    controls
        Control groups the method defines.
    est_methods
        Values of ``est_method`` (the outcome-model variants; only CS has more than "dr").
    bootstrap
        What ``reps`` draws in the estimate itself: "multiplier" (multiplier bootstrap of the
        influence functions: CS's standard errors and sup-t bands), "band" (a multiplier sup-t
        band over the analytic variance) or None (analytic variances only; ``reps`` is ignored
        with a warning).
    wild
        The wild cluster bootstrap of its event study (``inference.wild_results``):
        "regression" (restricted WCR of the regression), "score" (score bootstrap of the
        influence functions) or None.
    refit
        The re-estimating wild bootstrap: "linear" (``inference.wild_refit``), "cs"
        (``inference.wild_refit_cs``) or None.
    control_fallback
        Configured control group -> the one the method uses instead (the run notes say so).
    takes_cohorts
        Takes the evaluated cohorts of a design (``finsam_eval.design``) itself.
    robust
        Robust to heterogeneous effects under staggered adoption (TWFE is not).
    balanced_only
        Refuses an unbalanced panel (``unbalanced="keep"``): dCDH's switcher comparisons need
        every unit in every period.
    slug
        Key in file names and HTML ids (``sa`` would be confused with the outcome ``sa``).
    power_options
        ``estimate`` options of the power simulation unless overridden.
    legacy_defaults
        Defaults of the deprecated direct call ``module.fit(data, **options)`` that differ from
        ``estimate``'s (kept for one release).
    citation
        The method's reference.
    """

    key: str
    label: str
    short_label: str
    module: str
    citation: str
    options: Mapping[str, Any] = field(default_factory=_frozen)
    controls: tuple[str, ...] = ("never", "notyet")
    est_methods: tuple[str, ...] = ("dr",)
    bootstrap: str | None = None
    wild: str | None = None
    refit: str | None = None
    control_fallback: Mapping[str, str] = field(default_factory=_frozen)
    takes_cohorts: bool = False
    robust: bool = True
    balanced_only: bool = False
    slug: str = ""
    power_options: Mapping[str, Any] = field(default_factory=_frozen)
    legacy_defaults: Mapping[str, Any] = field(default_factory=_frozen)

    @property
    def fit(self) -> Callable[[Any, EstimationSpec], EstimationResult]:
        """The method's ``fit(data, spec)`` (its module is imported on first use)."""
        return import_module(self.module).fit

    @property
    def file_slug(self) -> str:
        return self.slug or self.key

    def control_for(self, control: str) -> str:
        """The control group this method uses under the configured ``control``."""
        return self.control_fallback.get(control, control)


_ESTIMATORS = "finsam_eval.estimators."

METHODS: Mapping[str, MethodInfo] = _frozen(
    {
        info.key: info
        for info in (
            MethodInfo(
                key="cs",
                label="Callaway & Sant'Anna (2021)",
                short_label="Callaway & Sant'Anna",
                module=_ESTIMATORS + "callaway_santanna",
                citation=(
                    "Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with "
                    "multiple time periods. Journal of Econometrics 225(2), 200-230."
                ),
                options=_frozen(
                    {
                        "est_method": "dr",
                        "base_period": "varying",
                        "multiplier": "rademacher",
                        "bootstrap_att_gt": False,
                        # the evaluated cohorts (finsam_eval.design.isf_design): others are
                        # comparisons only
                        "cohorts": None,
                    }
                ),
                est_methods=("dr", "ipw", "reg"),
                bootstrap="multiplier",
                wild="score",
                refit="cs",
                takes_cohorts=True,
            ),
            MethodInfo(
                key="twfe",
                label="TWFE event study",
                short_label="TWFE event study",
                module=_ESTIMATORS + "twfe",
                citation=(
                    "Dynamic two-way fixed effects; CRV1 as Cameron, Gelbach & Miller (2011), "
                    "J. Business & Economic Statistics 29(2)."
                ),
                options=_frozen({"reference": -1, "vcov": "cluster"}),
                wild="regression",
                robust=False,
                # the conventional binned event study: end points -5 and 6 collect all earlier
                # and later event times
                power_options=_frozen({"window": (-5, 6)}),
            ),
            MethodInfo(
                key="sa",
                label="Sun & Abraham (2021)",
                short_label="Sun & Abraham",
                module=_ESTIMATORS + "sun_abraham",
                citation=(
                    "Sun, L., & Abraham, S. (2021). Estimating dynamic treatment effects in event "
                    "studies with heterogeneous treatment effects. J. Econometrics 225(2)."
                ),
                options=_frozen({"share_uncertainty": True, "dense": False}),
                controls=("never", "lasttreated"),
                bootstrap="band",
                # Sun & Abraham compare with never-treated (or last-treated) cohorts only
                control_fallback=_frozen({"notyet": "never"}),
                slug="sunab",
            ),
            MethodInfo(
                key="imputation",
                label="Borusyak, Jaravel & Spiess (2024)",
                short_label="Imputation (BJS)",
                module=_ESTIMATORS + "imputation",
                citation=(
                    "Borusyak, K., Jaravel, X., & Spiess, J. (2024). Revisiting event-study "
                    "designs: robust and efficient estimation. Review of Economic Studies 91(6)."
                ),
                options=_frozen(
                    {"effect_weights": None, "pretrends": True, "leave_one_out": False}
                ),
                bootstrap="band",
                wild="score",
                refit="linear",
            ),
            MethodInfo(
                key="two_stage",
                label="Gardner (2021) two-stage DiD",
                short_label="Two-stage DiD",
                module=_ESTIMATORS + "two_stage",
                citation=(
                    "Gardner, J. (2021). Two-stage differences in differences. arXiv:2207.05943."
                ),
                bootstrap="band",
                wild="score",
                refit="linear",
            ),
            MethodInfo(
                key="stacked",
                label="Stacked DiD (Wing, Freedman & Hollingsworth 2024)",
                short_label="Stacked DiD",
                module=_ESTIMATORS + "stacked",
                citation=(
                    "Wing, C., Freedman, S. M., & Hollingsworth, A. (2024). Stacked "
                    "difference-in-differences. NBER Working Paper 32054."
                ),
                options=_frozen({"algorithm": "auto"}),
            ),
            MethodInfo(
                key="dcdh",
                label="de Chaisemartin & D'Haultfœuille (2020)",
                short_label="de Chaisemartin & D'Haultfœuille",
                module=_ESTIMATORS + "dcdh",
                citation=(
                    "de Chaisemartin, C., & D'Haultfœuille, X. (2024). Difference-in-differences "
                    "estimators of intertemporal treatment effects. Review of Economics and "
                    "Statistics (NBER WP 29873)."
                ),
                options=_frozen({"treatment": None, "effects": None, "placebo": None}),
                legacy_defaults=_frozen({"control": "notyet"}),
                balanced_only=True,
            ),
        )
    }
)

#: Methods of the default analysis run (``pipeline.config``), in table order.
DEFAULT_RUN_METHODS: tuple[str, ...] = ("twfe", "cs", "sa", "imputation")
#: Methods of the default power simulation (``inference.power.simulate``), in its order.
DEFAULT_POWER_METHODS: tuple[str, ...] = ("cs", "sa", "imputation", "twfe")


def method_info(method: str) -> MethodInfo:
    """The registry entry of ``method``; raises ``ValueError`` naming the available methods."""
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {method!r}; available: {sorted(METHODS)}") from None


def methods_where(**facts: Any) -> tuple[str, ...]:
    """Keys of the methods whose attributes equal ``facts`` (``wild="score"``), in registry order.

    A fact given as ``True`` matches any truthy attribute (``wild=True``: methods with a wild
    bootstrap of any kind).
    """

    def matches(info: MethodInfo) -> bool:
        for name, wanted in facts.items():
            value = getattr(info, name)
            if wanted is True and not value or wanted is not True and value != wanted:
                return False
        return True

    return tuple(key for key, info in METHODS.items() if matches(info))
