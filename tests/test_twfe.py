"""Dynamic TWFE event study: parity with pyfixest's feols and the conventions of the estimator.

Reference numbers come from pyfixest run here on the same data, with relative-time dummies built
in the test exactly as the specification defines them (binned end points, reference omitted).
Tolerances: coefficients 1e-8 absolute, standard errors 1e-6 relative.

A dataset enters the parity tests through ``DATASETS``: a function returning a ``Case`` (the
frame and its column roles). The synthetic kommun panel (``finsam_eval.load_synthetic()``) is
meant to be added there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from finsam_eval.estimators import EstimationInputError, estimate, twfe
from finsam_eval.estimators.spec import EstimationSpec


def fit(data: pd.DataFrame, *columns: str, **options):
    """TWFE through ``fit(data, spec)`` with the spec built from ``estimate``-style options."""
    return twfe.fit(data, EstimationSpec.build("twfe", data, *columns, **options))


pf = pytest.importorskip("pyfixest")

# pyfixest's own deprecation noise under pandas 3 is not ours to fix
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword:Warning", "ignore:.*singleton fixed effect:UserWarning"
)

COEF_TOL = 1e-8
SE_RTOL = 1e-6


@dataclass(frozen=True)
class Case:
    """A panel and the roles of its columns."""

    data: pd.DataFrame
    outcome: str
    unit: str
    time: str
    cohort: str
    weights: str  # population-type weight, constant within unit
    covariate: str  # time-varying
    coarse_cluster: str  # constant within unit, coarser than unit
    window: tuple[int, int]  # a window that bins at least one end

    def panel(self, balanced: bool) -> pd.DataFrame:
        """The data, or without about 15% of its rows (seed 5): an unbalanced panel."""
        if balanced:
            return self.data
        rng = np.random.default_rng(5)
        return self.data.loc[rng.random(len(self.data)) > 0.15].reset_index(drop=True)


def _mpdta(shared_dir) -> Case:
    data = pd.read_csv(shared_dir / "reference" / "r-did" / "mpdta.csv")
    rng = np.random.default_rng(11)
    data["pop"] = np.exp(data["lpop"])
    data["x"] = rng.normal(size=len(data)) + 0.01 * data["year"]
    # counties grouped by their leading digits: 29 coarse clusters
    data["region"] = data["countyreal"] // 1000 * 10 + data["countyreal"] % 7
    return Case(data, "lemp", "countyreal", "year", "first.treat", "pop", "x", "region", (-3, 2))


def simulate_kommun_panel(n_units: int = 290, seed: int = 3, years=(2000, 2020)) -> pd.DataFrame:
    """Staggered kommun-like panel: cohorts 2004–2015, one never-treated unit in six."""
    rng = np.random.default_rng(seed)
    years_arr = np.arange(years[0], years[1] + 1)
    n_never = round(n_units * 49 / 290)
    cohorts = np.concatenate(
        [np.zeros(n_never, dtype=int), rng.integers(2004, 2016, size=n_units - n_never)]
    )
    rng.shuffle(cohorts)
    unit = np.repeat(np.arange(n_units), len(years_arr))
    year = np.tile(years_arr, n_units)
    cohort = cohorts[unit]
    rel = np.where(cohort > 0, year - cohort, -99)
    effect = np.where(rel >= 0, -0.3 - 0.05 * np.minimum(rel, 6) + 0.02 * (cohort - 2009), 0.0)
    x = rng.normal(size=len(unit)) + 0.1 * (year - 2010)
    y = (
        rng.normal(10, 2, n_units)[unit]
        + 0.1 * (year - 2000)
        + effect
        + 0.5 * x
        + rng.normal(0, 0.5, len(unit))
    )
    return pd.DataFrame(
        {
            "kommun_kod": [f"{u:04d}" for u in unit],
            "year": year,
            "cohort": cohort,
            "share": y,
            "x": x,
            "population": np.exp(rng.normal(9, 1, n_units))[unit],
            "lan": (np.arange(n_units) % 21)[unit],
        }
    )


def _simulated(shared_dir) -> Case:
    data = simulate_kommun_panel()
    return Case(data, "share", "kommun_kod", "year", "cohort", "population", "x", "lan", (-5, 5))


def _synthetic(shared_dir) -> Case:
    """alla × sjukpenning from the bundled synthetic panel: population weights (kommun mean),
    a time-varying covariate (log denominator) and län clusters."""
    from finsam_eval.synthetic import load_synthetic

    panel = load_synthetic()
    data = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")].copy()
    data["population_weight"] = data.groupby("kommun_kod")["denominator"].transform("mean")
    data["log_denominator"] = np.log(data["denominator"])
    data = data.reset_index(drop=True)
    return Case(
        data,
        "share",
        "kommun_kod",
        "year",
        "cohort",
        "population_weight",
        "log_denominator",
        "cluster_lan",
        (-5, 6),
    )


DATASETS: dict[str, Callable[..., Case]] = {
    "mpdta": _mpdta,
    "simulated_kommun": _simulated,
    "synthetic": _synthetic,
}


@pytest.fixture(params=sorted(DATASETS))
def case(request, shared_dir) -> Case:
    return DATASETS[request.param](shared_dir)


def _pyfixest_event_study(
    case: Case,
    data: pd.DataFrame,
    window: tuple[int, int] | None = None,
    normalized: tuple[int, ...] = (-1,),
    covariate: bool = False,
    weights: bool = False,
    vcov: dict | str | None = None,
):
    """feols with hand-built relative-time dummies; returns (event times, fitted model)."""
    d = data.copy()
    cohort = d[case.cohort].fillna(0).to_numpy()
    treated = cohort > 0
    rel = np.where(treated, d[case.time].to_numpy() - cohort, 0)
    if window is not None:
        rel = np.clip(rel, *window)
    event_times = sorted(set(rel[treated].tolist()) - set(normalized))
    names = []
    for e in event_times:
        name = f"rel_{'m' if e < 0 else 'p'}{abs(e)}"
        d[name] = (treated & (rel == e)).astype(float)
        names.append(name)
    rhs = " + ".join(names + ([case.covariate] if covariate else []))
    model = pf.feols(
        f"{case.outcome} ~ {rhs} | {case.unit} + {case.time}",
        data=d,
        vcov=vcov or {"CRV1": case.unit},
        weights=case.weights if weights else None,
        # a tight reference: pyfixest's default tolerance (1e-6) would limit the comparison
        demeaner=pf.MapDemeaner(fixef_tol=1e-13, fixef_maxiter=1_000_000),
    )
    return event_times, model


def _assert_matches(result, event_times, model, n_covariates: int = 0) -> None:
    estimated = result.event_study.loc[~result.event_study["reference"]]
    assert estimated["event_time"].tolist() == event_times
    ref_coef = model.coef().to_numpy()
    ref_se = model.se().to_numpy()
    coef = np.concatenate(
        [estimated["estimate"], result.info["covariate_coefficients"]["estimate"]]
    )
    se = np.concatenate([estimated["se"], result.info["covariate_coefficients"]["se"]])
    assert len(coef) == len(event_times) + n_covariates
    np.testing.assert_allclose(coef, ref_coef, rtol=0, atol=COEF_TOL)
    np.testing.assert_allclose(se, ref_se, rtol=SE_RTOL, atol=0)
    assert result.info["n_obs"] == model._N


def _fit(case: Case, data: pd.DataFrame | None = None, **options):
    return fit(
        case.data if data is None else data,
        outcome=case.outcome,
        unit=case.unit,
        time=case.time,
        cohort=case.cohort,
        **options,
    )


SPECS = {
    "plain": {},
    "window": {"window": True},
    "weights": {"weights": True},
    "covariate": {"covariate": True},
    "coarse_cluster": {"cluster": True},
    "all": {"window": True, "weights": True, "covariate": True, "cluster": True},
}


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("balanced", [True, False], ids=["balanced", "unbalanced"])
def test_matches_pyfixest_crv1(case: Case, spec: str, balanced: bool) -> None:
    flags = SPECS[spec]
    data = case.panel(balanced)
    window = case.window if flags.get("window") else None
    cluster = case.coarse_cluster if flags.get("cluster") else case.unit
    result = _fit(
        case,
        data,
        window=window,
        weights=case.weights if flags.get("weights") else None,
        covariates=[case.covariate] if flags.get("covariate") else None,
        cluster=case.coarse_cluster if flags.get("cluster") else None,
        unbalanced="balance" if balanced else "keep",
    )
    assert result.info["demeaning"] == ("closed form" if balanced else "direct solve")
    event_times, model = _pyfixest_event_study(
        case,
        data,
        window=window,
        covariate=bool(flags.get("covariate")),
        weights=bool(flags.get("weights")),
        vcov={"CRV1": cluster},
    )
    _assert_matches(result, event_times, model, n_covariates=int(bool(flags.get("covariate"))))
    assert result.info["n_clusters"] == data[cluster].nunique()


@pytest.mark.parametrize("vcov", ["hetero", "iid"])
@pytest.mark.parametrize("balanced", [True, False], ids=["balanced", "unbalanced"])
def test_matches_pyfixest_hetero_iid(case: Case, vcov: str, balanced: bool) -> None:
    data = case.data
    if not balanced:
        data = data.sample(frac=0.85, random_state=2).reset_index(drop=True)
    result = _fit(
        case,
        data,
        vcov=vcov,
        weights=case.weights,
        covariates=[case.covariate],
        unbalanced="balance" if balanced else "keep",
    )
    event_times, model = _pyfixest_event_study(case, data, covariate=True, weights=True, vcov=vcov)
    _assert_matches(result, event_times, model, n_covariates=1)


@pytest.mark.filterwarnings("ignore:.*treated at or before the first period")
def test_anticipation_and_reference_shift(case: Case) -> None:
    result = _fit(case, anticipation=1, window=case.window)
    assert result.info["reference"] == -2
    # units treated in the first year have no pre-period once anticipation shifts it: excluded
    cohort = case.data[case.cohort].fillna(0)
    usable = case.data.loc[~((cohort > 0) & (cohort - 1 <= case.data[case.time].min()))]
    event_times, model = _pyfixest_event_study(case, usable, case.window, normalized=(-2,))
    _assert_matches(result, event_times, model)
    result = _fit(case, reference=-3)
    event_times, model = _pyfixest_event_study(case, case.data, normalized=(-3,))
    _assert_matches(result, event_times, model)


def test_without_never_treated_normalises_most_negative(case: Case) -> None:
    data = case.data.loc[case.data[case.cohort].fillna(0) > 0].reset_index(drop=True)
    with pytest.warns(UserWarning, match="most negative relative time"):
        result = _fit(case, data)
    cohort = data[case.cohort].to_numpy()
    lowest = int((data[case.time].to_numpy() - cohort).min())
    assert result.info["normalized_event_times"] == [-1, lowest]
    refs = result.event_study.loc[result.event_study["reference"], "event_time"].tolist()
    assert refs == sorted([-1, lowest])
    event_times, model = _pyfixest_event_study(case, data, normalized=(-1, lowest))
    _assert_matches(result, event_times, model)
    # a binned window identifies the model without the extra normalisation
    binned = _fit(case, data, window=case.window)
    assert binned.info["normalized_event_times"] == [-1]


def test_result_layout(case: Case) -> None:
    result = _fit(case, window=case.window)
    es = result.event_study
    assert list(es.columns) == [
        "event_time", "estimate", "se", "ci_lower", "ci_upper", "p_value", "reference"
    ]  # fmt: skip
    ref_row = es.loc[es["reference"]].iloc[0]
    assert ref_row["event_time"] == -1 and ref_row["estimate"] == 0.0 and np.isnan(ref_row["se"])
    assert list(result.vcov.index) == es.loc[~es["reference"], "event_time"].tolist()
    np.testing.assert_allclose(
        np.sqrt(np.diag(result.vcov)), es.loc[~es["reference"], "se"], rtol=1e-12
    )
    # overall: equal-weight mean of post coefficients, the binned upper end point excluded
    lo, hi = case.window
    post = list(range(0, hi))
    assert result.info["overall_event_times"] == post
    assert result.info["binned"] == {"lower": True, "upper": True}
    a = np.full(len(post), 1 / len(post))
    expected = es.set_index("event_time").loc[post, "estimate"].to_numpy() @ a
    assert result.overall["estimate"] == pytest.approx(expected, rel=1e-12)
    v = result.vcov.loc[post, post].to_numpy()
    assert result.overall["se"] == pytest.approx(np.sqrt(a @ v @ a), rel=1e-12)
    assert result.info["vcov_type"] == "CRV1"
    assert result.info["n_clusters"] == result.info["n_units"]


def test_n_params_counts_year_effects_only_when_unit_effects_nested() -> None:
    data = simulate_kommun_panel(60, seed=1)
    result = fit(data, outcome="share", unit="kommun_kod", time="year", cohort="cohort")
    n_slopes = int((~result.event_study["reference"]).sum())
    assert result.info["n_params"] == n_slopes + 21
    iid = fit(data, outcome="share", unit="kommun_kod", time="year", cohort="cohort", vcov="iid")
    assert iid.info["n_params"] == n_slopes + 60 + 21 - 1


def test_dispatch_through_estimate() -> None:
    data = simulate_kommun_panel(60, seed=4)
    direct = fit(data, outcome="share", window=(-4, 4), cluster="lan")
    via_api = estimate(data, method="twfe", window=(-4, 4), cluster="lan")
    pd.testing.assert_frame_equal(direct.event_study, via_api.event_study)
    assert via_api.method == "twfe"


def test_input_errors() -> None:
    data = simulate_kommun_panel(40, seed=6)
    with pytest.raises(EstimationInputError, match="outside the window"):
        fit(data, outcome="share", window=(0, 3))
    with pytest.raises(EstimationInputError, match="vcov"):
        fit(data, outcome="share", vcov="CRV3")
    with pytest.raises(EstimationInputError, match="window"):
        fit(data, outcome="share", window=(3, -3))
    with pytest.raises(EstimationInputError, match="not observed"):
        fit(data, outcome="share", reference=-40)
    with pytest.raises(TypeError, match="refrence"):
        fit(data, outcome="share", refrence=-2)


def test_singletons_dropped_and_reported() -> None:
    data = simulate_kommun_panel(40, seed=7)
    lonely = data["kommun_kod"] == "0003"
    data = data.loc[~lonely | (data["year"] == 2010)].reset_index(drop=True)
    result = fit(data, outcome="share", unbalanced="keep")
    dropped = result.info["dropped"]
    assert (dropped["reason"].str.contains("singleton") & (dropped["unit"] == "0003")).any()
    assert result.info["n_units"] == 39


@pytest.mark.parametrize("spec", ["plain", "all"])
@pytest.mark.parametrize("balanced", [True, False], ids=["balanced", "unbalanced"])
def test_event_influence_reproduces_vcov(case: Case, spec: str, balanced: bool) -> None:
    """Cluster-summed psi'psi / n**2 (CR1 factor inside psi) is the CRV1 vcov, to rounding."""
    flags = SPECS[spec]
    data = case.panel(balanced)
    cluster = case.coarse_cluster if flags.get("cluster") else None
    result = _fit(
        case,
        data,
        window=case.window if flags.get("window") else None,
        weights=case.weights if flags.get("weights") else None,
        covariates=[case.covariate] if flags.get("covariate") else None,
        cluster=cluster,
        unbalanced="balance" if balanced else "keep",
    )
    psi = result.event_influence
    es = result.event_study
    n = result.info["n_units"]
    assert psi.shape == (n, len(es)) and len(result.unit_labels) == n
    assert np.all(psi[:, es["reference"].to_numpy()] == 0)
    if cluster is None:
        sums = psi
    else:
        cluster_of = data.groupby(case.unit)[cluster].first()
        codes = pd.factorize(cluster_of.reindex(result.unit_labels).to_numpy())[0]
        sums = np.zeros((codes.max() + 1, psi.shape[1]))
        np.add.at(sums, codes, psi)
    estimated = ~es["reference"].to_numpy()
    v = sums[:, estimated].T @ sums[:, estimated] / n**2
    np.testing.assert_allclose(v, result.vcov.to_numpy(), rtol=1e-10, atol=1e-14)
    hetero = _fit(case, data, vcov="hetero", unbalanced="keep")
    assert hetero.event_influence is None and len(hetero.unit_labels) == n


def test_event_influence_rows_are_the_retained_units() -> None:
    data = simulate_kommun_panel(40, seed=7)
    lonely = data["kommun_kod"] == "0003"
    data = data.loc[~lonely | (data["year"] == 2010)].reset_index(drop=True)
    result = fit(data, outcome="share", unbalanced="keep", cluster="lan")
    assert result.event_influence.shape[0] == 39 and "0003" not in set(result.unit_labels)
    lan = data.groupby("kommun_kod")["lan"].first().reindex(result.unit_labels).to_numpy()
    sums = pd.DataFrame(result.event_influence).groupby(lan).sum().to_numpy()
    estimated = ~result.event_study["reference"].to_numpy()
    np.testing.assert_allclose(
        sums[:, estimated].T @ sums[:, estimated] / 39**2, result.vcov.to_numpy(), rtol=1e-10
    )
