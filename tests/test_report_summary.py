"""The report's summary, ISF 2019 comparison, notes section, language and label catalogue."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPORT_SECTIONS, estimate_row

from finsam_eval.core.progress import progress, step
from finsam_eval.report import labels as L
from finsam_eval.report.html import rebuild_report, render_report
from finsam_eval.report.manifest import build_manifest, write_manifest
from finsam_eval.report.summary import (
    ISF_2019_PATTERN,
    headline_method,
    isf_comparison,
    series_diagnostics,
    summary_rows,
)
from finsam_eval.report.tables import write_estimates_csv


def estimates_with(effects: dict[tuple[str, str, str], list[float]], se: float = 0.05):
    """Long table with given effects for years 0..6 (normal p-values and 95 % intervals)."""
    from scipy import stats

    rows = []
    for (population, outcome, method), values in effects.items():
        for t, est in enumerate(values):
            p = 2 * stats.norm.sf(abs(est / se))
            rows.append(
                estimate_row(
                    population,
                    outcome,
                    method,
                    t,
                    est,
                    se,
                    p,
                    z=1.959964,
                    p_adjusted=min(1.0, 7 * p),
                )  # fmt: skip
            )
    return pd.DataFrame(rows)


SJUK_DOWN = [0.0, -0.02, -0.05, -0.1, -0.2, -0.3, -0.32]
NULL = [0.01, -0.01, 0.02, 0.0, -0.02, 0.01, 0.0]


@pytest.fixture
def estimates() -> pd.DataFrame:
    return estimates_with(
        {
            ("alla", "sjukpenning", "cs"): SJUK_DOWN,
            ("alla", "sjukpenning", "sa"): SJUK_DOWN,
            ("alla", "sjukpenning", "twfe"): [0.3] * 7,
            # SA: the published sign is "up"; this run says down (a disagreement to show)
            ("alla", "sa", "cs"): [-0.2] * 7,
            ("alla", "sa", "sa"): NULL,
            ("kvinnor", "af_till_arbete", "cs"): NULL,
        }
    )


def test_headline_method():
    assert headline_method(["twfe", "sa", "cs"]) == "cs"
    assert headline_method(["twfe", "imputation"]) == "imputation"
    assert headline_method(["twfe"]) == "twfe"
    with pytest.raises(ValueError):
        headline_method([])


def test_summary_rows_effects_agreement_and_sentences(estimates):
    rows = summary_rows(estimates, method="cs", event_times=range(7), language="en")
    assert [(r["population_key"], r["outcome_key"]) for r in rows] == [
        ("alla", "sjukpenning"),
        ("alla", "sa"),
        ("kvinnor", "af_till_arbete"),
    ]
    sjuk = rows[0]
    # years 0..6 with the pointwise interval; significant where |t| > 1.96
    assert [c["estimate"] for c in sjuk["cells"]][-1] == "−0.32"
    assert sjuk["cells"][-1]["interval"] == "[−0.42, −0.22]"
    assert [c["significant"] for c in sjuk["cells"]] == [
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    # cs and sa identical: agree every year
    assert sjuk["agree"] == "7 of 7 years"
    assert sjuk["sentence"].startswith("Everyone 19–64: the share with sickness benefit")
    assert "lower by 0.32 percentage points 6 years after joining" in sjuk["sentence"]
    # SA: cs significant negative every year, sa never significant: no year agrees
    assert rows[1]["agree"] == "0 of 7 years"
    assert "no effect can be established" in rows[2]["sentence"]
    # no diagnostics given: said so, not left blank
    assert rows[0]["pretrend"].startswith("not computed")
    swedish = summary_rows(estimates, method="cs", event_times=range(7), language="sv")
    assert swedish[0]["cells"][-1]["estimate"] == "−0,32"
    assert "är lägre med 0,32 procentenheter år 6" in swedish[0]["sentence"]


def test_isf_comparison_is_data_with_citation(estimates):
    # the published pattern of seed 001 (shared/DOMAIN.md "Headline results")
    pattern = {(f.population, f.outcome): (f.sign, f.years) for f in ISF_2019_PATTERN}
    assert pattern[("alla", "sjukpenning")] == (-1, (5, 6))
    assert pattern[("alla", "sa")][0] == +1 and len(pattern[("alla", "sa")][1]) == 6
    assert pattern[("man", "af_till_arbete")][0] == +1
    assert pattern[("kvinnor", "af_till_arbete")][0] == 0
    assert pattern[("unga", "uvas")][0] == +1
    assert pattern[("aldre", "ekonomiskt_bistand")] == (+1, (3, 4, 5, 6))
    assert all("001_5bd59affdc4fd9dd" in f.source for f in ISF_2019_PATTERN)

    rows = isf_comparison(estimates, method="cs", language="en")
    by = {(r["population"], r["outcome"]): r for r in rows}
    sjuk = by[("Everyone 19–64", "Sickness benefit (sjukpenning)")]
    assert sjuk["same_key"] == "yes" and "2 of 2 significant" in sjuk["this_run"]
    assert by[("Everyone 19–64", "Sickness and activity compensation (SA)")]["same_key"] == "no"
    assert by[("Women 19–64", "From unemployment to work")]["same_key"] == "yes"
    assert by[("Men 19–64", "From unemployment to work")]["same"] == "not estimated"


class FakeResult:
    """Just what the diagnostics read: an event study and its covariance."""

    def __init__(self, times, est, vcov):
        se = np.sqrt(np.diag(vcov)) if vcov is not None else np.full(len(times), np.nan)
        self.event_study = pd.DataFrame({"event_time": times, "estimate": est, "se": se})
        self.vcov = None if vcov is None else pd.DataFrame(vcov, index=times, columns=times)


def test_series_diagnostics_report_failures_as_reasons():
    times = [-3, -2, 0, 1]
    good = FakeResult(times, np.array([0.01, -0.01, -0.3, -0.35]), np.eye(4) * 0.01)
    bad = FakeResult(times, np.array([0.01, -0.01, -0.3, -0.35]), None)
    results = {("alla", "sjukpenning", "cs"): good, ("alla", "sa", "cs"): bad}
    frame = series_diagnostics(results, "cs", range(0, 2), honest=False)
    assert list(frame["outcome"]) == ["sjukpenning", "sa"]
    assert frame.loc[0, "pretrend_note"] == "" and 0 < frame.loc[0, "pretrend_p"] < 1
    assert np.isnan(frame.loc[1, "pretrend_p"]) and frame.loc[1, "pretrend_note"]
    assert (frame["breakdown_note"] == "[report] honest = false").all()


@pytest.fixture
def out_dir(tmp_path, estimates) -> Path:
    out = tmp_path / "results"
    write_estimates_csv(estimates, out / "estimates.csv")
    notes = pd.DataFrame(
        [
            ("alla", "sjukpenning", "sa", "warning", "sa: control='notyet' is not defined"),
            ("alla", "sa", "cs", "excluded", "cohort 2015 trimmed: 12 entries"),
        ],
        columns=["population", "outcome", "method", "kind", "message"],
    )
    notes.to_csv(out / "notes.csv", index=False)
    config = {"methods": ["twfe", "cs", "sa"], "event_times": [0, 6], "control": "notyet"}
    manifest = build_manifest(
        {"design": config, "report": {"report_language": "en"}}, "", None,
        extra={"design": {"n_kommuner": 290, "n_cohorts": 6, "cohort_years": "2005–2010",
                          "n_never": 49}},
    )  # fmt: skip
    write_manifest(manifest, out / "manifest.json")
    return out


def section_ids(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', text)


def test_report_sections_in_order_with_notes(out_dir):
    text = rebuild_report(out_dir).read_text(encoding="utf-8")
    assert section_ids(text) == list(REPORT_SECTIONS)
    summary = text[
        text.index('<section id="summary">') : text.index('<section id="isf-comparison">')
    ]
    assert "N: 290 kommuner, 290 clusters, 6 cohorts." in summary
    assert '<html lang="en">' in text  # the run's configured language
    notes = text[text.index('<section id="notes">') :]
    assert "cohort 2015 trimmed: 12 entries" in notes
    assert "control=&#39;notyet&#39; is not defined" in notes
    assert "Sun &amp; Abraham (2021)" in notes  # method labels, not keys
    # N with each table, significance stated once the same way
    table = text[text.index('id="table-alla-cs"') :]
    table = table[: table.index("</table>")]
    assert "N: 290 kommuner, 290 clusters, 6 cohorts" in table
    assert "pointwise" in table and "†" in table
    assert 'id="table-alla-sunab"' in text and 'id="table-alla-sa"' not in text
    spec = text[text.index('<section id="specification">') :]
    assert "compares with kommuner that never joined" in spec
    assert "290 kommuner in 6 cohorts (2005–2010) and 49 that never joined" in spec


def test_report_language_swedish_by_default(estimates):
    text = render_report(estimates, {}, {})
    assert '<html lang="sv">' in text
    assert "<h2>Sammanfattning</h2>" in text and "<h2>Jämförelse med ISF 2019</h2>" in text
    assert "Summary" not in text
    english = render_report(estimates, {}, {}, language="en")
    assert "<h2>Summary</h2>" in english
    with pytest.raises(ValueError, match="language"):
        render_report(estimates, {}, {}, language="de")


def test_message_catalogue_complete():
    assert set(L.MESSAGES["sv"]) == set(L.MESSAGES["en"])
    for language in L.LANGUAGES:
        for key, template in L.MESSAGES[language].items():
            fields = set(re.findall(r"{(\w+)}", template))
            other = "en" if language == "sv" else "sv"
            assert fields == set(re.findall(r"{(\w+)}", L.MESSAGES[other][key])), key
    assert L.method_slug("sa") == "sunab" and L.method_slug("cs") == "cs"
    assert L.method_label("sa") == "Sun & Abraham (2021)"


def test_progress_plain_lines_without_carriage_returns():
    stream = io.StringIO()  # not a terminal
    assert list(progress(range(25), 25, "estimating", stream=stream)) == list(range(25))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "estimating: 0/25" and lines[-1].startswith("estimating: 25/25 done in")
    assert 3 <= len(lines) <= 12
    step("report: figures", stream=stream)
    assert stream.getvalue().endswith("report: figures\n")
    quiet = io.StringIO()
    assert list(progress([1, 2], 2, "x", enabled=False, stream=quiet)) == [1, 2]
    assert quiet.getvalue() == ""


def test_cli_version_and_help_for_every_option(capsys):
    import finsam_eval
    from finsam_eval.cli import _cli_syntax, _parser, main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"finsam-eval {finsam_eval.__version__}"
    parser = _parser()
    subparsers = parser._subparsers._group_actions[0].choices
    for name, sub in [("", parser), *subparsers.items()]:
        for action in sub._actions:
            if action.option_strings:
                assert action.help, f"{name} {action.option_strings} has no help"
    # library hints in Python syntax become command-line syntax
    message = "no file; download it and pass files={'sjukpenning': path}."
    assert _cli_syntax(message) == "no file; download it and pass --file sjukpenning=PATH."


def test_latex_notes_escape_percent_and_dagger():
    """The Swedish notes say "95 %-intervall": an unescaped % would comment out the rest of the
    LaTeX line; the dagger needs \\dag."""
    from finsam_eval.report.tables import isf_table, to_latex

    est = estimates_with({("alla", "sjukpenning", "cs"): [-0.3] * 7})
    tex = to_latex(isf_table(est, "alla", "cs"), language="sv")
    assert not re.search(r"(?<!\\)%", tex), "unescaped % in the LaTeX table"
    assert "\\dag{}" in tex and "†" not in tex
    assert "\\cmidrule(l){2-8}" in tex and "\\toprule" in tex and "\\bottomrule" in tex


def test_report_section_of_the_configuration():
    from finsam_eval.pipeline import load_config

    default = load_config(None)
    assert default.report_language == "sv" and default.report_honest is True
    config = load_config(text='[report]\nlanguage = "en"\nhonest = false\n')
    assert config.report_language == "en" and config.report_honest is False
    # the [report] section's errors: tests/test_pipeline_config.py


def test_series_breakdown_in_a_worker_matches_honest_did():
    # the pipeline bisects breakdown values in forked workers from the event study and vcov
    # alone: the same number as breakdown_value on the result, and used as given
    from finsam_eval.inference.honest import breakdown_value
    from finsam_eval.report.background import Background
    from finsam_eval.report.summary import series_breakdown

    times = [-3, -2, 0, 1, 2]
    est = np.array([0.02, -0.01, -0.3, -0.35, -0.4])
    vcov = np.diag([0.01, 0.01, 0.012, 0.013, 0.015])
    res = FakeResult(times, est, vcov)
    direct = breakdown_value(
        res, restriction="relative_magnitude", l_vec=[0, 0.5, 0.5], tol=0.05, grid_points=200
    )
    with Background(2) as background:
        pending = background.map(series_breakdown, [(res.event_study, res.vcov, range(1, 3))])
        value, note = pending.get()[0]
    assert note == "" and value == direct and 0 < value < 10
    results = {("alla", "sjukpenning", "cs"): res}
    given = {("alla", "sjukpenning"): (value, note)}
    frame = series_diagnostics(results, "cs", range(1, 3), breakdowns=given)
    assert frame.loc[0, "breakdown"] == direct
    here = series_diagnostics(results, "cs", range(1, 3))
    assert here.loc[0, "breakdown"] == direct


def test_summary_agreement_with_gaps_matches_a_pivot_table_count():
    # robust methods missing some years, a cell with NaN estimate and p-value, a method with no
    # estimate at all: the count is the one a pivot_table (event time x method) gives
    from finsam_eval.report.summary import _class

    rng = np.random.default_rng(7)
    effects = {
        ("alla", "sjukpenning", m): list(rng.normal(0, 0.15, 7)) for m in ("cs", "sa", "imputation")
    }
    est = estimates_with(effects)
    drop = (est["method"] == "sa") & est["event_time"].isin([4, 5, 6])
    est = est[~drop].copy()
    gap = (est["method"] == "imputation") & (est["event_time"] == 2)
    est.loc[gap, ["estimate", "p_value"]] = np.nan
    robust = ["cs", "imputation", "sa"]
    table = est[est["method"].isin(robust)].pivot_table(
        index="event_time", columns="method", values=["estimate", "p_value"]
    )
    expected = 0
    for t in table.index:
        classes = {
            _class(float(table.loc[t, ("estimate", m)]), float(table.loc[t, ("p_value", m)]))
            for m in robust
            if ("estimate", m) in table.columns
        }
        expected += len(classes) == 1
    rows = summary_rows(est, method="cs", event_times=range(7), language="en")
    assert rows[0]["agree"] == f"{expected} of {len(table.index)} years"
