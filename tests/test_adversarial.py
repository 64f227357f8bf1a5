"""Bad input, as a tough new user would give it: every case raises a clear error.

Each case asserts the error type and that the message names the problem (the offending value
and/or the rule). The panel is built here (no bundled data), so the cases do not depend on the
synthetic numbers. Issue 13, item 8.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import finsam_eval as fe
from finsam_eval.estimators import EstimationInputError
from finsam_eval.estimators.spec import FEW_CLUSTERS, UnknownOptionError
from finsam_eval.sources.cache import CacheCorruptError, Provenance, SeriesCache

METHODS = ["cs", "twfe", "sa", "imputation", "two_stage", "stacked", "dcdh"]
COLUMNS = {"outcome": "y", "unit": "id", "time": "year", "cohort": "g"}


def panel(n_units: int = 60, seed: int = 0) -> pd.DataFrame:
    """Balanced yearly panel 2000–2011, cohorts 2004/2006/2008 and never-treated units."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2012)
    cohort = np.resize([0, 0, 2004, 2006, 2008], n_units)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(1, n_units + 1), len(years)),
            "year": np.tile(years, n_units),
            "g": np.repeat(cohort, len(years)),
            "x": np.repeat(rng.normal(size=n_units), len(years)),
            "w": np.repeat(rng.uniform(1, 3, size=n_units), len(years)),
            "lan": np.repeat(np.arange(n_units) % 6, len(years)),
        }
    )
    treated = (frame["g"] > 0) & (frame["year"] >= frame["g"])
    frame["y"] = rng.normal(size=len(frame)) + treated * 0.5
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return panel()


def run(frame: pd.DataFrame, method: str, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fe.estimate(frame, method=method, **{**COLUMNS, **options})


def check(exc: type[Exception], fragments: list[str], frame, method, **options) -> None:
    with pytest.raises(exc) as info:
        run(frame, method, **options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


# ---- scalar options -------------------------------------------------------------------------

BAD_ALPHA = [0, 1, -0.1, 1.5, float("nan"), "0.05", True]


@pytest.mark.parametrize("alpha", BAD_ALPHA, ids=repr)
@pytest.mark.parametrize("method", ["cs", "twfe", "imputation"])
def test_alpha_outside_unit_interval(data, method, alpha):
    check(EstimationInputError, ["alpha", "between 0 and 1", repr(alpha)], data, method,
          alpha=alpha)  # fmt: skip


BAD_WINDOWS = [((3, -3), "lo=3 > hi=-3"), ((1.5, 3), "non-integer"), ("ab", "'ab'"),
               ((1, 2, 3), "(1, 2, 3)"), (5, "got 5"), (("a", 2), "non-integer")]  # fmt: skip


@pytest.mark.parametrize(("window", "named"), BAD_WINDOWS, ids=lambda v: repr(v))
@pytest.mark.parametrize("method", ["cs", "sa", "stacked"])
def test_window_must_be_two_ordered_integers(data, method, window, named):
    check(EstimationInputError, ["window must be two integers", named], data, method,
          window=window)  # fmt: skip


@pytest.mark.parametrize("value", [-1, 1.5, "1", True], ids=repr)
def test_anticipation_non_negative_integer(data, value):
    check(EstimationInputError, ["anticipation", "non-negative integer", repr(value)], data,
          "cs", anticipation=value)  # fmt: skip


@pytest.mark.parametrize("value", [-1, 1.5, "abc", True], ids=repr)
@pytest.mark.parametrize("method", ["cs", "imputation"])
def test_seed_integer(data, method, value):
    check(EstimationInputError, ["seed", repr(value)], data, method, seed=value)


@pytest.mark.parametrize("value", [-1, 2.5, "999", None], ids=repr)
def test_bootstrap_count(data, value):
    check(EstimationInputError, ["bootstrap", "non-negative integer", repr(value)], data, "cs",
          bootstrap=value)  # fmt: skip


def test_bootstrap_memory_guard(data):
    check(EstimationInputError, ["bootstrap=10000000000", "GiB"], data, "cs",
          bootstrap=10**10)  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_bogus_control(data, method):
    check(EstimationInputError, ["control='bogus'", f"method={method!r}"], data, method,
          control="bogus")  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_misspelt_option_is_named_with_suggestion(data, method):
    check(UnknownOptionError, ["'clustr'", "did you mean 'cluster'"], data, method,
          clustr="lan")  # fmt: skip


def test_unknown_option_is_a_type_error(data):
    with pytest.raises(TypeError, match="clustr"):
        run(data, "imputation", clustr="lan")


FOREIGN = [("cs", {"vcov": "hetero"}, "['twfe']"), ("cs", {"algorithm": "rows"}, "['stacked']"),
           ("twfe", {"treatment": "d"}, "['dcdh']"), ("sa", {"pretrends": False}, "['imputation']"),
           ("two_stage", {"share_uncertainty": False}, "['sa']"),
           ("dcdh", {"bootstrap_weights": "mammen"}, "['cs']"),
           ("stacked", {"reference": -2}, "['twfe']")]  # fmt: skip


@pytest.mark.parametrize(("method", "option", "owners"), FOREIGN, ids=lambda v: str(v))
def test_foreign_option_names_the_methods_that_take_it(data, method, option, owners):
    check(UnknownOptionError, [next(iter(option)), owners], data, method, **option)


@pytest.mark.parametrize("method", ["twfe", "sa", "imputation", "two_stage", "stacked", "dcdh"])
def test_est_method_is_cs_only(data, method):
    check(UnknownOptionError, ["est_method='reg'", "['cs']"], data, method, est_method="reg")


@pytest.mark.parametrize("method", ["twfe", "stacked", "dcdh"])
def test_base_period_is_cs_only(data, method):
    check(UnknownOptionError, ["base_period='bogus'", "['cs']"], data, method,
          base_period="bogus")  # fmt: skip


@pytest.mark.parametrize(("option", "value"), [("bootstrap_att_gt", "yes"), ("pretrends", 1)])
def test_boolean_options_are_booleans(data, option, value):
    method = "cs" if option == "bootstrap_att_gt" else "imputation"
    check(EstimationInputError, [option, "True or False", repr(value)], data, method,
          **{option: value})  # fmt: skip


def test_covariates_as_a_string(data):
    check(EstimationInputError, ["covariates must be a list", "['x']"], data, "cs",
          covariates="x")  # fmt: skip


def test_unknown_method(data):
    with pytest.raises(ValueError, match=re.escape("unknown method 'ols'")):
        run(data, "ols")


# ---- the outcome ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.inf, -np.inf], ids=["inf", "-inf"])
@pytest.mark.parametrize("method", METHODS)
def test_infinite_outcome_names_rows(data, method, value):
    frame = data.copy()
    frame.loc[17, "y"] = value
    check(EstimationInputError, ["must be finite", "±inf in 1 rows", "17"], frame, method)


@pytest.mark.parametrize("method", ["cs", "twfe", "dcdh"])
def test_non_numeric_outcome(data, method):
    frame = data.astype({"y": object})
    frame.loc[5, "y"] = "n/a"
    check(EstimationInputError, ["must be numeric", "'n/a'"], frame, method)


def test_constant_outcome(data):
    check(EstimationInputError, ["constant"], data.assign(y=1.0), "twfe")


def test_all_missing_outcome(data):
    check(EstimationInputError, ["missing in every row"], data.assign(y=np.nan), "cs")


# ---- weights -------------------------------------------------------------------------------

BAD_WEIGHTS = [(-1.0, "negative"), (np.inf, "infinite"), (np.nan, "missing")]


@pytest.mark.parametrize(("value", "rule"), BAD_WEIGHTS, ids=["neg", "inf", "nan"])
@pytest.mark.parametrize("method", METHODS)
def test_bad_weight_values_name_rows(data, method, value, rule):
    frame = data.copy()
    frame.loc[frame["id"] == 7, "w"] = value
    check(EstimationInputError, ["weights 'w'", "finite, non-negative", rule], frame, method,
          weights="w")  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_all_zero_weights(data, method):
    check(EstimationInputError, ["zero in every row"], data.assign(w=0.0), method, weights="w")


@pytest.mark.parametrize("method", ["cs", "imputation", "stacked"])
def test_weights_varying_within_unit(data, method):
    frame = data.copy()
    frame.loc[(frame["id"] == 9) & (frame["year"] == 2003), "w"] = 99.0
    check(EstimationInputError, ["constant within id", "[9]"], frame, method, weights="w")


# ---- cohorts, units, periods, clusters ------------------------------------------------------


def test_cohort_after_the_panel_warns_naming_units(data):
    frame = data.copy()
    frame.loc[frame["id"] == 3, "g"] = 2100  # a typo for 2010
    with pytest.warns(UserWarning, match=r"cohorts \[2100\].*treated as never treated.*\[3\]"):
        fe.estimate(frame, method="cs", **COLUMNS)


@pytest.mark.parametrize(("value", "rule"), [("soon", "must be numeric"), (-5, "non-negative"),
                                             (2004.5, "whole")])  # fmt: skip
def test_bad_cohort_values(data, value, rule):
    frame = data.astype({"g": object})
    frame.loc[frame["id"] == 4, "g"] = value
    check(EstimationInputError, ["cohort column 'g'", rule], frame, "cs")


def test_cohort_varying_within_unit(data):
    frame = data.copy()
    frame.loc[(frame["id"] == 3) & (frame["year"] == 2001), "g"] = 2006
    check(EstimationInputError, ["cohort must be constant within id", "[3]"], frame, "cs")


@pytest.mark.parametrize("method", ["stacked", "dcdh"])
def test_missing_year_refused_in_one_line(data, method):
    frame = data[data["year"] != 2005]
    check(EstimationInputError, ["needs consecutive periods", "[2005]"], frame, method)


def test_sun_abraham_missing_reference_year(data):
    frame = data[data["year"] != 2005]  # the reference year of cohort 2006
    check(EstimationInputError, ["cohort(s) [2006]", "reference period"], frame, "sa")


@pytest.mark.parametrize("method", ["cs", "imputation", "two_stage", "twfe"])
def test_missing_year_is_handled(data, method):
    res = run(data[data["year"] != 2005], method)
    assert np.isfinite(res.overall["estimate"])


def test_missing_column(data):
    check(EstimationInputError, ["['yy']", "not found"], data, "cs", outcome="yy")


def test_duplicate_rows(data):
    frame = pd.concat([data, data.iloc[[3]]])
    check(EstimationInputError, ["duplicate id × year rows", "2 rows"], frame, "twfe")


def test_non_numeric_time(data):
    frame = data.astype({"year": str})
    frame.loc[0, "year"] = "2000a"
    check(EstimationInputError, ["time column 'year' must be numeric", "2000a"], frame, "cs")


def test_cluster_with_missing_values(data):
    frame = data.astype({"lan": float})
    frame.loc[frame["id"] == 2, "lan"] = np.nan
    check(EstimationInputError, ["cluster variable 'lan'", "missing"], frame, "cs", cluster="lan")


def test_cluster_varying_within_unit(data):
    frame = data.copy()
    frame.loc[(frame["id"] == 5) & (frame["year"] == 2002), "lan"] = 99
    check(EstimationInputError, ["'lan' must be constant within id", "[5]"], frame, "cs",
          cluster="lan")  # fmt: skip


# ---- covariates ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cs", "twfe", "imputation", "two_stage", "sa"])
def test_constant_covariate_is_named(data, method):
    check(EstimationInputError, ["covariate 'c'", "constant"], data.assign(c=1.0), method,
          covariates=["c"])  # fmt: skip


def test_separating_covariate_is_named(data):
    frame = data.assign(sep=(data["g"] > 0) * 1.0 + data["id"] % 5 / 100)
    check(EstimationInputError, ["'sep' separates cohort", "no overlap"], frame, "cs",
          covariates=["sep"])  # fmt: skip


def test_infinite_covariate(data):
    frame = data.copy()
    frame.loc[11, "x"] = np.inf
    check(EstimationInputError, ["covariate 'x' must be finite", "11"], frame, "twfe",
          covariates=["x"])  # fmt: skip


@pytest.mark.parametrize("method", ["stacked", "dcdh"])
def test_covariates_refused_where_unsupported(data, method):
    check(EstimationInputError, [f"method={method!r} does not take covariates"], data, method,
          covariates=["x"])  # fmt: skip


# ---- few clusters --------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_one_cluster_never_gives_a_finite_se(data, method):
    frame = data.assign(one=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = fe.estimate(frame, method=method, cluster="one", **COLUMNS)
        except ValueError as err:  # refusing is the other honest answer
            assert "at least 2 clusters, got 1" in str(err)
            return
    assert any("only 1 cluster" in str(w.message) for w in caught)
    assert res.event_study["se"].isna().all() and np.isnan(res.overall["se"])
    assert res.event_study["p_value"].isna().all()


@pytest.mark.parametrize("method", METHODS)
def test_few_clusters_use_t_critical_values(data, method):
    with pytest.warns(UserWarning, match=f"only 6 clusters .< {FEW_CLUSTERS}.*wild"):
        res = fe.estimate(data, method=method, cluster="lan", **COLUMNS)
    es = res.event_study.dropna(subset=["se"])
    es = es[es["se"] > 0]
    from scipy import stats

    crit = stats.t.ppf(0.975, 5)
    np.testing.assert_allclose((es["ci_upper"] - es["estimate"]) / es["se"], crit, rtol=1e-9)
    np.testing.assert_allclose(
        es["p_value"], 2 * stats.t.sf(np.abs(es["estimate"] / es["se"]), 5), rtol=1e-9
    )


# ---- the cache -----------------------------------------------------------------------------


def _entry(cache: SeriesCache, series: str, source: str = "kolada") -> Provenance:
    prov = Provenance(series=series, source=source, urls=["u"], query={"kpi": series},
                      retrieved_at="2026-01-01T00:00:00+00:00", content_hash="sha256:0",
                      years=[2020, 2021])  # fmt: skip
    frame = pd.DataFrame({"year": [2020, 2021], "value": [1.0, 2.0]})
    return cache.put(frame, prov)


@pytest.mark.parametrize("source", ["..", "../..", ".", "/etc", "a/../../b"])
def test_cache_key_never_escapes_root(tmp_path, source):
    cache = SeriesCache(tmp_path / "cache", fmt="csv")
    prov = _entry(cache, "kolada:N1", source=source)
    root = (tmp_path / "cache").resolve()
    assert root in type(tmp_path)(prov.path).resolve().parents


def test_cache_renamed_entry_is_not_returned(tmp_path):
    cache = SeriesCache(tmp_path, fmt="csv")
    other = _entry(cache, "kolada:N2")
    meta = type(tmp_path)(other.path).with_suffix(".json")
    wanted_key = cache.key("kolada:N1", [2020, 2021])
    for path in (type(tmp_path)(other.path), meta):
        path.rename(path.with_name(wanted_key + path.suffix))
    with pytest.raises(CacheCorruptError, match=r"kolada:N2.*not the requested.*kolada:N1"):
        cache.get("kolada", "kolada:N1", [2020, 2021])


def test_cache_query_must_match(tmp_path):
    cache = SeriesCache(tmp_path, fmt="csv")
    _entry(cache, "kolada:N1")
    assert cache.get("kolada", "kolada:N1", [2020], query={"kpi": "kolada:N1"}) is not None
    with pytest.raises(CacheCorruptError, match="was fetched with query"):
        cache.get("kolada", "kolada:N1", [2020, 2021], query={"kpi": "other"})


def test_cache_truncated_provenance_names_file(tmp_path):
    cache = SeriesCache(tmp_path, fmt="csv")
    prov = _entry(cache, "kolada:N1")
    meta = type(tmp_path)(prov.path).with_suffix(".json")
    meta.write_text(meta.read_text()[:40])
    with pytest.raises(CacheCorruptError, match=re.escape(str(meta))):
        cache.get("kolada", "kolada:N1", [2020, 2021])


def test_cache_provenance_with_foreign_fields_names_file(tmp_path):
    cache = SeriesCache(tmp_path, fmt="csv")
    prov = _entry(cache, "kolada:N1")
    meta = type(tmp_path)(prov.path).with_suffix(".json")
    meta.write_text(json.dumps({"series": "kolada:N1", "bogus": 1}))
    with pytest.raises(CacheCorruptError, match="unreadable or truncated"):
        cache.get("kolada", "kolada:N1", [2020, 2021])


# ---- data with nothing to estimate ----------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_no_treated_unit_is_refused(data, method):
    with pytest.raises(EstimationInputError) as info:
        run(data.assign(g=0), method)
    message = str(info.value)
    assert "Empty DataFrame" not in message and "zero-size" not in message, message
    assert re.search(r"treat|cohort|chang", message), message


def test_twfe_anticipation_beyond_the_data(data):
    check(EstimationInputError, ["anticipation", "no event-time effect"], data, "twfe",
          anticipation=20)  # fmt: skip


def test_two_stage_single_cohort_without_comparison_has_no_fake_precision(data):
    """Every unit joins in 2004: the placebos are zero by construction (p = 0 before)."""
    check(EstimationInputError, ["identifies no effect", "same year"], data.assign(g=2004),
          "two_stage")  # fmt: skip


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_dcdh_single_cohort_names_the_missing_comparison(data, control):
    check(EstimationInputError, ["no comparison", "same year"], data.assign(g=2004), "dcdh",
          control=control)  # fmt: skip


@pytest.mark.parametrize(("value", "shown"), [(2004.5, "2004.5"), (-1, "-1")])
def test_dcdh_cohort_must_be_whole_and_non_negative(data, value, shown):
    frame = data.assign(g=data["g"].replace(2004, value))
    check(EstimationInputError, ["whole, non-negative", shown], frame, "dcdh")


def test_dcdh_cohort_varying_within_unit_points_to_treatment(data):
    frame = data.assign(g=np.where(data["year"] > 2009, 2004, data["g"]))
    check(EstimationInputError, ["constant within id", "treatment="], frame, "dcdh")


# ---- inference and helper arguments ---------------------------------------------------------


@pytest.fixture(scope="module")
def cs_result(data):
    return run(data, "cs")


@pytest.mark.parametrize("m", [[-1.0], [0.5, float("nan")]], ids=repr)
def test_honest_did_refuses_negative_or_missing_m(cs_result, m):
    with pytest.raises(ValueError, match=r"m \(Mbar or M\) must be finite, non-negative"):
        fe.honest_did(cs_result, m=m)


@pytest.mark.parametrize("alpha", [0, 2, "0.05"], ids=repr)
def test_honest_did_and_bands_check_alpha(cs_result, alpha):
    for call in (fe.honest_did, fe.add_bands):
        with pytest.raises(EstimationInputError, match="alpha must be a number strictly between"):
            call(cs_result, alpha=alpha)


@pytest.mark.parametrize("reps", [-1, 2.5, "100"], ids=repr)
def test_bands_reps_count(cs_result, reps):
    with pytest.raises(EstimationInputError, match="reps must be a non-negative integer"):
        fe.add_bands(cs_result, reps=reps)


@pytest.mark.parametrize(("options", "named"), [({"reps": "10"}, "reps"), ({"seed": 1.5}, "seed"),
                                                ({"reps": 1}, "at least 2")], ids=str)  # fmt: skip
def test_simulate_checks_reps_and_seed(options, named):
    with pytest.raises(ValueError, match=named):
        fe.simulate(["cs"], **options)


@pytest.mark.parametrize("seed", ["a", 1.5, -3], ids=repr)
def test_compatible_calendars_seed(seed):
    with pytest.raises(
        ValueError, match="seed must be a non-negative integer or a numpy Generator"
    ):
        fe.compatible_calendars(2, seed)


def test_adjust_pvalues_takes_a_table():
    with pytest.raises(TypeError, match="takes a DataFrame"):
        fe.adjust_pvalues([0.01, 0.2], method="holm")


def test_adjust_pvalues_names_a_missing_column():
    with pytest.raises(ValueError, match=r"column 'p_value' not found.*p_col="):
        fe.adjust_pvalues(pd.DataFrame({"p": [0.01]}), method="holm")


@pytest.mark.parametrize(("values", "named"), [(["a", "0.2"], "non-numeric values in rows [0]"),
                                               ([0.01, 1.5], "outside [0, 1] in rows [1]")])  # fmt: skip
def test_adjust_pvalues_names_bad_rows(values, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        fe.adjust_pvalues(pd.DataFrame({"p_value": values}), method="bh")


def test_build_panel_names_requested_years_absent_from_the_sources():
    from finsam_eval.registry import calendar_to_cohorts
    from finsam_eval.synthetic import load_synthetic_sources

    src = load_synthetic_sources()
    first = int(src.numerators["year"].min())
    with pytest.warns(UserWarning, match=rf"requested years absent.*numerators: \[{first - 2}, "):
        built = fe.build_panel(src.numerators, src.population, calendar_to_cohorts(src.calendar),
                               years=range(first - 2, first + 2))  # fmt: skip
    assert sorted(built.panel["year"].unique()) == [first, first + 1]


@pytest.fixture(scope="module")
def twfe_result(data):
    return run(data, "twfe")


@pytest.mark.parametrize(("options", "named"), [
    ({"reps": -1}, "reps must be a positive integer"),
    ({"reps": 0}, "reps must be a positive integer"),
    ({"reps": "99"}, "got '99'"),
    ({"reps": 99, "seed": "a"}, "seed must be None or a non-negative integer"),
    ({"reps": 99, "alpha": 2}, "alpha must be a number strictly between"),
], ids=str)  # fmt: skip
def test_wild_bootstrap_checks_its_arguments(twfe_result, options, named):
    with pytest.raises(EstimationInputError, match=re.escape(named)):
        fe.wild_bootstrap(twfe_result, **options)


@pytest.mark.parametrize(("options", "exc", "named"), [
    ({"reps": 0}, EstimationInputError, "reps (permutations) must be a positive integer"),
    ({"reps": "9"}, EstimationInputError, "got '9'"),
    ({"reps": 9, "seed": -1}, EstimationInputError, "seed must be None or a non-negative"),
    ({"reps": 9, "within": "nope"}, ValueError, "within='nope': no such column"),
], ids=str)  # fmt: skip
def test_randomization_inference_checks_its_arguments(cs_result, options, exc, named):
    with pytest.raises(exc, match=re.escape(named)):
        fe.randomization_inference(cs_result, progress=False, **options)


@pytest.mark.parametrize(("options", "named"), [({"power": 1.5}, "power must be a number"),
                                                ({"alpha": 0}, "alpha must be a number")],
                         ids=str)  # fmt: skip
def test_minimum_detectable_effect_checks_power_and_alpha(options, named):
    with pytest.raises(ValueError, match=named):
        fe.minimum_detectable_effect(reps=10, progress=False, **options)


def test_pretrend_wald_refuses_post_period_leads(cs_result):
    with pytest.raises(ValueError, match=r"leads must be pre-period event times.*\[2\]"):
        fe.pretrend_wald(cs_result, leads=[-2, 2])


@pytest.mark.parametrize(("options", "named"), [({"alpha": 5}, "alpha must be a number"),
                                                ({"reps": -5}, "reps must be a positive")],
                         ids=str)  # fmt: skip
def test_pretest_power_checks_its_arguments(cs_result, options, named):
    with pytest.raises(EstimationInputError, match=named):
        fe.pretest_power(cs_result, trend=0.01, **options)


@pytest.mark.parametrize("call", [fe.pretrend_wald, lambda r: fe.pretest_power(r, trend=0.01)])
def test_pretests_take_a_result(call):
    with pytest.raises(TypeError, match="takes a result of finsam_eval.estimate"):
        call({"event_study": None})


def test_compare_refuses_options_of_methods_not_compared(data):
    with pytest.raises(ValueError, match=r"method_options names method\(s\) \['twfe'\]"):
        fe.compare(data, methods=["cs"], method_options={"twfe": {"window": (-3, 3)}}, **COLUMNS)
