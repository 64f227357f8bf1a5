"""The estimation contract (issue 12): one validated specification, one method registry."""

from __future__ import annotations

import ast
import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finsam_eval
from finsam_eval.estimators import dcdh, estimate
from finsam_eval.estimators.registry import METHODS, method_info, methods_where
from finsam_eval.estimators.spec import EstimationSpec, UnknownOptionError

PACKAGE = Path(finsam_eval.__file__).parent


def _panel(seed: int = 0) -> pd.DataFrame:
    """40 units over 8 years, cohorts 2004/2006 and never; effect 1 after joining."""
    rng = np.random.default_rng(seed)
    units = np.arange(40)
    cohort = np.select([units < 12, units < 24], [2004, 2006], 0)
    frame = pd.DataFrame(
        [(u, t, cohort[u]) for u in units for t in range(2001, 2009)], columns=["id", "year", "g"]
    )
    treated = (frame["g"] > 0) & (frame["year"] >= frame["g"])
    frame["y"] = rng.normal(size=len(frame)) + frame["id"] * 0.1 + treated * 1.0
    frame["lan"] = frame["id"] % 5
    return frame


def test_every_method_is_registered_with_its_facts():
    assert list(METHODS) == ["cs", "twfe", "sa", "imputation", "two_stage", "stacked", "dcdh"]
    for key, info in METHODS.items():
        assert info.key == key and info.label and info.citation
        assert callable(info.fit)
        assert "never" in info.controls
    assert methods_where(wild=True) == ("cs", "twfe", "imputation", "two_stage")
    assert method_info("sa").control_for("notyet") == "never"
    with pytest.raises(ValueError, match="unknown method 'ols'"):
        method_info("ols")


def test_spec_is_frozen_validated_and_fills_defaults():
    spec = EstimationSpec.build("cs", None, "y", "id", "year", "g", covariates=["x"])
    assert spec.columns == ("y", "id", "year", "g")
    assert spec.covariates == ("x",)
    assert dict(spec.options) == dict(METHODS["cs"].options)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.alpha = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.options["est_method"] = "ipw"  # type: ignore[index]
    assert spec.replace(est_method="ipw").option("est_method") == "ipw"
    with pytest.raises(ValueError, match="alpha"):
        spec.replace(alpha=2.0)
    # constructed directly, the same checks run
    with pytest.raises(UnknownOptionError, match=re.escape("['stacked']")):
        EstimationSpec("cs", options={"algorithm": "rows"})


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_names_the_owners_of_a_foreign_option(method):
    foreign = next(
        (name, key)
        for key, info in METHODS.items()
        if key != method
        for name in info.options
        if name not in METHODS[method].options and name not in ("est_method", "base_period")
    )
    with pytest.raises(UnknownOptionError, match=re.escape(repr(foreign[0]))) as caught:
        EstimationSpec.build(method, None, **{foreign[0]: object()})
    assert foreign[1] in str(caught.value)


def test_result_carries_its_spec_and_data():
    data = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = estimate(data, "y", "id", "year", "g", method="twfe", cluster="lan")
    assert res.spec.method == "twfe" and res.spec.cluster == "lan"
    assert res.data is data


def test_deprecated_direct_fit_warns_and_matches_the_spec_form():
    data = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.warns(DeprecationWarning, match="deprecated"):
            old = dcdh.fit(data, "y", "id", "year", "g", window=(-2, 2))
        # the old direct call's default control group of dCDH was "notyet"
        spec = EstimationSpec.build("dcdh", data, "y", "id", "year", "g", control="notyet",
                                    window=(-2, 2))  # fmt: skip
        new = dcdh.fit(data, spec)
    pd.testing.assert_frame_equal(old.event_study, new.event_study)


def _method_names(node: ast.AST) -> list[str]:
    """Method keys among the string constants of a list, tuple, set or dict display."""
    if isinstance(node, ast.Dict):
        items = [*node.keys]
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = node.elts
    else:
        return []
    return [
        item.value
        for item in items
        if isinstance(item, ast.Constant) and isinstance(item.value, str) and item.value in METHODS
    ]


def test_no_list_of_method_names_outside_the_registry():
    """Report, pipeline, inference and power take method facts from the registry alone: no
    list, tuple, set or dict display in the package names two or more methods, and no
    module-level constant names one (comparisons with one method, such as ``method == "cs"``,
    are code paths, not lists of facts)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "estimators/registry.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # a module-level constant naming even one method is a method fact kept elsewhere
        constants = {
            id(value)
            for stmt in tree.body
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None
            for value in ast.walk(stmt.value)
        }
        for node in ast.walk(tree):
            names = _method_names(node)
            # "sa" alone is also the outcome sjuk- och aktivitetsersättning
            alone = [name for name in names if name != "sa"]
            if len(names) >= 2 or (alone and id(node) in constants):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {names}")
    assert not offenders, "method names listed outside the registry:\n" + "\n".join(offenders)


@pytest.fixture(scope="module")
def twfe_result():
    data = _panel(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return estimate(data, "y", "id", "year", "g", method="twfe", cluster="lan",
                        window=(-3, 3))  # fmt: skip


def test_old_wild_bootstrap_call_warns_and_matches_the_result_form(twfe_result):
    from finsam_eval.inference.wild_results import wild_bootstrap, wild_bootstrap_event_study

    new = wild_bootstrap(twfe_result, reps=99, multiplier="webb", seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.warns(DeprecationWarning, match="wild_bootstrap_event_study"):
            old = wild_bootstrap_event_study(twfe_result.data, "twfe", cluster="lan", B=99,
                                             weights="webb", seed=4, outcome="y", unit="id",
                                             cohort="g", window=(-3, 3))  # fmt: skip
    pd.testing.assert_frame_equal(old, new)


def test_old_design_call_warns(twfe_result):
    from finsam_eval.inference.wild_results import twfe_design

    with pytest.warns(DeprecationWarning, match="twfe_design"):
        old = twfe_design(twfe_result.data, twfe_result)
    np.testing.assert_array_equal(old.X, twfe_design(twfe_result).X)


def test_old_band_names_warn(twfe_result):
    from finsam_eval.inference.bands import add_bands

    new = add_bands(twfe_result, reps=500, multiplier="mammen", seed=1)
    with pytest.warns(DeprecationWarning, match="use reps="):
        old = add_bands(twfe_result, draws=500, weights="mammen", seed=1)
    pd.testing.assert_frame_equal(old.event_study, new.event_study)
    with pytest.raises(TypeError, match="bogus"):
        add_bands(twfe_result, bogus=1)


def test_old_randomization_call_warns_and_matches_the_result_form(twfe_result):
    from finsam_eval.inference.randomization import randomization_inference

    new = randomization_inference(twfe_result, reps=5, seed=3, progress=False, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.warns(DeprecationWarning, match="randomization_inference"):
            old = randomization_inference(twfe_result.data, "twfe", 5, seed=3, progress=False,
                                          n_jobs=1, outcome="y", unit="id", cohort="g",
                                          cluster="lan", window=(-3, 3))  # fmt: skip
    pd.testing.assert_frame_equal(old.table, new.table)
