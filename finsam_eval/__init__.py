"""finsam_eval: staggered-adoption difference-in-differences for Finsam (samordningsförbund).

The public API, imported lazily so that ``import finsam_eval`` stays fast::

    finsam_eval.load_synthetic()            # the built synthetic kommun-year panel
    finsam_eval.load_synthetic_truth()      # its true effects
    finsam_eval.estimate(data, method=...)  # cs, twfe, sa, imputation, two_stage, stacked, dcdh
    finsam_eval.compare(data, methods=[...])
    finsam_eval.etable([res1, res2], format="markdown")  # results side by side
    finsam_eval.estimate_over_calendars(data, calendars)  # Rubin-pooled over join-year draws
    finsam_eval.isf_design()                # the one ISF design (cohorts, follow-up, control)
    finsam_eval.bacon_decomposition(...)
    finsam_eval.honest_did(res, ...)
    finsam_eval.adjust_pvalues(table, ...)
    finsam_eval.kommun_code("Malung")
    finsam_eval.outcome_catalogue()
"""

from __future__ import annotations

from finsam_eval._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "kommun_code": "finsam_eval.registry",
    "kommun_name": "finsam_eval.registry",
    "kommuner": "finsam_eval.registry",
    "calendar_model": "finsam_eval.registry",
    "compatible_calendars": "finsam_eval.registry",
    "build_panel": "finsam_eval.panel",
    "validate_panel": "finsam_eval.panel",
    "load_synthetic": "finsam_eval.synthetic",
    "load_synthetic_truth": "finsam_eval.synthetic",
    "load_synthetic_sources": "finsam_eval.synthetic",
    "generate_synthetic": "finsam_eval.synthetic",
    "estimate": "finsam_eval.estimators",
    "EstimationResult": "finsam_eval.estimators",
    "EstimationSpec": "finsam_eval.estimators",
    "compare": "finsam_eval.estimators.compare",
    "etable": "finsam_eval.report.etable",
    "bacon_decomposition": "finsam_eval.estimators.bacon",
    "honest_did": "finsam_eval.inference.honest",
    "adjust_pvalues": "finsam_eval.inference.multiple_testing",
    "wild_cluster_bootstrap": "finsam_eval.inference.wild_cluster",
    "wild_bootstrap": "finsam_eval.inference.wild_results",
    "wild_bootstrap_event_study": "finsam_eval.inference.wild_results",
    "pretrend_wald": "finsam_eval.inference.pretrends",
    "pretest_power": "finsam_eval.inference.pretrends",
    "randomization_inference": "finsam_eval.inference.randomization",
    "add_bands": "finsam_eval.inference.bands",
    "simulate": "finsam_eval.inference.power",
    "minimum_detectable_effect": "finsam_eval.inference.power",
    "outcome_catalogue": "finsam_eval.sources",
    "load_config": "finsam_eval.pipeline",
    "run_analysis": "finsam_eval.pipeline",
    "isf_design": "finsam_eval.design",
    "all_cohorts_design": "finsam_eval.design",
    "EvaluationDesign": "finsam_eval.design",
    "estimate_over_calendars": "finsam_eval.estimators",
    "impute_calendars": "finsam_eval.estimators",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


__getattr__, __dir__ = lazy_exports("finsam_eval", _EXPORTS, globals())
