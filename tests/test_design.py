"""The one ISF design (finsam_eval.design) against seed 001, and its alternative."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import finsam_eval as fe
from finsam_eval.design import EvaluationDesign, all_cohorts_design, isf_design


def _seed_001(seeds_dir) -> str:
    (path,) = seeds_dir.glob("001_*.txt")
    # the seed breaks lines and hyphenates words: compare on collapsed whitespace
    return re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))


def test_isf_design_matches_seed_001(seeds_dir):
    text = _seed_001(seeds_dir)
    design = fe.isf_design()
    # "förbund som bildas under hela perioden 2005–2010"
    first, last = re.search(r"bildas under hela perioden (\d{4})–(\d{4})", text).groups()
    assert design.cohorts == tuple(range(int(first), int(last) + 1))
    # "en uppföljningstid på sex år"
    assert "uppföljningstid på sex år" in text
    assert design.follow_up == 6
    assert design.event_times == tuple(range(7))
    # "kommuner som (ännu) inte har gått med": later joiners compare until they join
    assert "som (ännu) inte har gått med" in text
    assert design.control == "notyet"
    assert design.window == (-5, 6)
    assert list(design.years()) == list(range(1998, 2017))
    sources = dict(design.sources)
    for key in ("cohorts", "follow_up", "control"):
        assert sources[key].startswith("seed 001")
    for key in ("first_year", "last_year", "leads"):
        assert sources[key].startswith("assumed")


def test_design_is_frozen_and_validated():
    design = isf_design()
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.follow_up = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="control"):
        EvaluationDesign("x", (2005,), 6, "sometimes", 1998, 2016)
    with pytest.raises(ValueError, match="ascending"):
        EvaluationDesign("x", (2006, 2005), 6, "notyet", 1998, 2016)
    assert isf_design() == isf_design()


def test_roles():
    cohort = np.array([0, 2004, 2005, 2010, 2011, 2016, 2017])
    roles = isf_design().roles(cohort)
    expected = ["never", "before_design", "evaluated", "evaluated", "not_yet", "not_yet", "never"]
    assert list(roles) == expected
    alt = all_cohorts_design()
    assert alt.cohorts is None and alt.control == "notyet"
    assert list(alt.roles(cohort, last_year=2018)) == ["never", *["evaluated"] * 6]
    with pytest.raises(ValueError, match="last year"):
        alt.roles(cohort)
