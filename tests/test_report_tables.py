"""ISF tables and the long results table: formatting, ordering, writers, byte-identity."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import ISF_OUTCOMES, estimate_row

from finsam_eval.estimators.result import EstimationResult, wald_table
from finsam_eval.report import estimates as E
from finsam_eval.report import tables as T

ALL_OUTCOMES = list(ISF_OUTCOMES)


def make_estimates(seed: int = 0, methods=("cs", "twfe")) -> pd.DataFrame:
    """Every outcome for every population (also the undefined ones, which tables must drop)."""
    rng = np.random.default_rng(seed)
    rows = []
    for population in ("alla", "unga", "aldre"):
        for outcome in ALL_OUTCOMES:
            for method in methods:
                for t in range(-2, 7):
                    est = float(rng.normal(0, 0.3))
                    se = float(abs(rng.normal(0.1, 0.03)))
                    p = float(rng.uniform())
                    rows.append(estimate_row(population, outcome, method, t, est, se, p))
    return pd.DataFrame(rows)


def one_cell(estimate=-0.1234, se=0.0456, p_value=0.03, p_adjusted=np.nan, t=0, **extra):
    row = {
        "population": "alla",
        "outcome": "sjukpenning",
        "method": "cs",
        "event_time": t,
        "estimate": estimate,
        "se": se,
        "ci_lower": estimate - 2 * se,
        "ci_upper": estimate + 2 * se,
        "p_value": p_value,
        "p_adjusted": p_adjusted,
        "n_units": 290,
        "n_clusters": 290,
    }
    row.update(extra)
    return row


# ---------------------------------------------------------------------------------- cells


@pytest.mark.parametrize(
    ("p", "stars"),
    [
        (0.5, ""),
        (0.10, ""),  # strict inequality: p = 0.10 is not significant at 10 %
        (0.0999, "*"),
        (0.05, "*"),
        (0.0499, "**"),
        (0.01, "**"),
        (0.0099, "***"),
        (0.0, "***"),
        (np.nan, ""),
        (None, ""),
    ],
)
def test_stars_thresholds(p, stars):
    assert T.format_estimate(-0.1234, p) == "-0.123" + stars


def test_custom_thresholds_and_decimals():
    assert T.format_estimate(1.23456, 0.004, stars=(0.05,), decimals=2) == "1.23*"
    assert T.format_estimate(1.0, 0.004, stars=(0.01, 0.05, 0.10)) == "1.000***"


def test_no_negative_zero_and_missing():
    assert T.format_estimate(-0.0004, 0.5) == "0.000"
    assert T.format_estimate(np.nan, 0.01) == ""
    assert T.format_se(0.04449) == "(0.044)"
    assert T.format_se(np.nan) == ""
    assert T.format_se(-0.0) == "(0.000)"


# ---------------------------------------------------------------------------------- table


def test_isf_table_layout_and_se_row():
    table = T.isf_table(pd.DataFrame([one_cell()]), "alla", "cs")
    assert list(table.columns) == list(range(7))
    assert table.index.names == ["outcome", "statistic"]
    assert list(table.index) == [("sjukpenning", "estimate"), ("sjukpenning", "se")]
    assert table.loc[("sjukpenning", "estimate"), 0] == "-0.123**"
    assert table.loc[("sjukpenning", "se"), 0] == "(0.046)"
    # follow-up years without an estimate are empty cells, not "nan"
    assert table.loc[("sjukpenning", "estimate"), 3] == ""
    assert table.attrs["p_col"] == "p_value"


def test_outcomes_defined_per_population_in_isf_order():
    est = make_estimates()
    est = est.sample(frac=1.0, random_state=3)  # input order must not matter
    rows = {
        pop: list(T.isf_table(est, pop, "cs").index.get_level_values(0).unique())
        for pop in ("alla", "unga", "aldre")
    }
    assert rows["unga"] == ALL_OUTCOMES
    assert rows["alla"] == ALL_OUTCOMES[:5]  # uvas only for unga
    assert rows["aldre"] == ALL_OUTCOMES[:4]  # no studier for the older group


def test_outcomes_argument_cannot_add_undefined():
    est = make_estimates()
    table = T.isf_table(est, "aldre", "cs", outcomes=["studier", "sa", "sjukpenning"])
    assert list(table.index.get_level_values(0).unique()) == ["sa", "sjukpenning"]


def test_event_times_and_pre_periods_dropped():
    est = make_estimates()
    table = T.isf_table(est, "alla", "cs", event_times=range(0, 3))
    assert list(table.columns) == [0, 1, 2]
    assert T.isf_table(est, "alla", "cs").shape == (10, 7)


def test_stars_pointwise_and_dagger_for_adjusted_significance():
    """Stars follow the pointwise p-value (as the figures' pointwise 95 % intervals do); a dagger
    marks an adjusted p-value below 0.05 (issue 14: one statement of significance)."""
    est = pd.DataFrame([one_cell(p_value=0.001, p_adjusted=0.2)])
    table = T.isf_table(est, "alla", "cs")
    assert table.loc[("sjukpenning", "estimate"), 0] == "-0.123***"
    assert table.attrs["p_col"] == "p_value" and table.attrs["dagger"]
    est = pd.DataFrame([one_cell(p_value=0.001, p_adjusted=0.03)])
    assert T.isf_table(est, "alla", "cs").loc[("sjukpenning", "estimate"), 0] == "-0.123***†"
    # stars on the adjusted p-value when asked for: no dagger then
    explicit = T.isf_table(est, "alla", "cs", p_col="p_adjusted")
    assert explicit.loc[("sjukpenning", "estimate"), 0] == "-0.123**"
    assert not explicit.attrs["dagger"]
    # no adjusted p-values: no dagger, and the notes do not mention one
    est = pd.DataFrame([one_cell(p_value=0.001)])
    assert not T.isf_table(est, "alla", "cs").attrs["dagger"]
    assert "†" not in T.to_markdown(T.isf_table(est, "alla", "cs"))
    assert "†" in T.to_markdown(
        T.isf_table(pd.DataFrame([one_cell(p_adjusted=0.01)]), "alla", "cs")
    )


def test_every_star_agrees_with_the_pointwise_interval():
    """A ** (p < 0.05) is shown exactly when the pointwise 95 % interval excludes zero."""
    from scipy import stats

    rng = np.random.default_rng(3)
    rows = []
    for t in range(7):
        est_, se_ = rng.normal(0, 0.1), 0.05
        z = stats.norm.ppf(0.975)
        p = 2 * stats.norm.sf(abs(est_ / se_))
        rows.append(
            one_cell(estimate=est_, se=se_, p_value=p, t=t, ci_lower=est_ - z * se_,
                     ci_upper=est_ + z * se_)
        )  # fmt: skip
    est = pd.DataFrame(rows)
    table = T.isf_table(est, "alla", "cs")
    for r in rows:
        cell = table.loc[("sjukpenning", "estimate"), r["event_time"]]
        excludes = r["ci_lower"] > 0 or r["ci_upper"] < 0
        assert (cell.count("*") >= 2) == excludes


def test_scale():
    table = T.isf_table(pd.DataFrame([one_cell(estimate=-0.001234, se=0.0005)]), "alla", "cs",
                      scale=100.0)  # fmt: skip
    assert table.loc[("sjukpenning", "estimate"), 0] == "-0.123**"
    assert table.loc[("sjukpenning", "se"), 0] == "(0.050)"


def test_overall_rows_and_extra_columns_ignored():
    rows = [one_cell(term="event_time"), one_cell(term="overall", t=np.nan, estimate=9.0)]
    table = T.isf_table(pd.DataFrame(rows), "alla", "cs")
    assert table.loc[("sjukpenning", "estimate"), 0] == "-0.123**"
    assert "9.000" not in table.to_numpy().ravel().tolist()


def test_errors():
    est = pd.DataFrame([one_cell()])
    with pytest.raises(ValueError, match="no estimates"):
        T.isf_table(est, "alla", "sa")
    with pytest.raises(ValueError, match="duplicate"):
        T.isf_table(pd.concat([est, est]), "alla", "cs")
    with pytest.raises(ValueError, match="lacks column"):
        T.isf_table(est.drop(columns="se"), "alla", "cs")


def test_isf_tables_order():
    est = make_estimates().sample(frac=1.0, random_state=1)
    keys = list(T.isf_tables(est))
    assert keys == [(p, m) for p in ("alla", "unga", "aldre") for m in ("cs", "twfe")]
    keys = list(T.isf_tables(est, methods=["twfe", "cs"]))
    assert keys[:2] == [("alla", "twfe"), ("alla", "cs")]


def test_population_outcomes_agree_with_panel():
    populations = pytest.importorskip("finsam_eval.panel.populations")
    for name, spec in populations.POPULATIONS.items():
        assert set(E.population_outcomes(name)) == set(spec.outcomes)
        assert set(E._FALLBACK_POPULATION_OUTCOMES[name]) == set(spec.outcomes)


# ---------------------------------------------------------------------------------- writers


def test_markdown():
    est = make_estimates()
    md = T.to_markdown(T.isf_table(est, "unga", "cs"), language="sv")
    lines = md.splitlines()
    assert lines[0] == "**Unga 19–24 år: Callaway & Sant'Anna (2021)**"
    assert lines[2] == "| Utfall | 0 | 1 | 2 | 3 | 4 | 5 | 6 |"
    assert lines[3] == "|:---|---:|---:|---:|---:|---:|---:|---:|"
    assert lines[4].startswith("| Sjukpenning | ")
    assert lines[5].startswith("|  | (")  # SE row: empty label, parentheses
    assert len([x for x in lines if x.startswith("|")]) == 2 + 2 * 6
    assert "\\* p < 0.10, \\*\\* p < 0.05, \\*\\*\\* p < 0.01" in md
    assert md.endswith("\n") and "\r" not in md
    assert "| a\\|b |" in T.to_markdown(T.isf_table(est, "unga", "cs"), labels={"sa": "a|b"})


def test_latex_booktabs_escaping_and_minus():
    est = pd.DataFrame([one_cell(outcome="ekonomiskt_bistand")])
    table = T.isf_table(est, "alla", "cs")
    tex = T.to_latex(table, labels={})  # raw keys: the underscore must be escaped
    assert "ekonomiskt\\_bistand & $-$0.123** &" in tex
    assert "(0.046)" in tex
    for command in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrrrrrr}"):
        assert command in tex
    assert "\\label{tab:isf-alla-cs}" in tex
    assert "$p<0.10$" in tex
    assert tex.count("\\begin{") == tex.count("\\end{")
    bare = T.to_latex(table, float_env=False)
    assert bare.startswith("\\begin{tabular}") and "\\caption" not in bare
    assert T.latex_escape("a_b&c%d$e#f{g}h~i^j\\k<l") == (
        "a\\_b\\&c\\%d\\$e\\#f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j"
        "\\textbackslash{}k\\textless{}l"
    )
    assert T.latex_escape("19–64") == "19--64"


def test_html_fragment_escaped():
    from html.parser import HTMLParser

    est = make_estimates()
    fragment = T.to_html(T.isf_table(est, "alla", "twfe"), labels={"sa": "<b>&"})
    assert fragment.startswith('<table id="table-alla-twfe" class="isf-table">')
    assert "&lt;b&gt;&amp;" in fragment and "<b>" not in fragment
    assert fragment.count('<tr class="estimate"') == 5
    assert fragment.count('<tr class="se"') == 5
    assert 'data-outcome="uvas"' not in fragment
    HTMLParser().feed(fragment)


def test_text_outputs_byte_identical(tmp_path):
    est = make_estimates()
    first = T.write_tables(tmp_path / "a", est, formats=("md", "tex", "html"))
    second = T.write_tables(
        tmp_path / "b", est.sample(frac=1.0, random_state=7), formats=("md", "tex", "html")
    )
    assert [p.name for p in first] == [p.name for p in second]
    assert len(first) == 3 * 2 * 3
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        assert b"\r" not in a.read_bytes()
    assert first[0].name == "isf_alla_cs.md"


def test_write_tables_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown table format"):
        T.write_tables(tmp_path, make_estimates(), formats=("docx",))


def test_xlsx(tmp_path):
    table = T.isf_table(make_estimates(), "alla", "cs")
    if not T.xlsx_available():
        with pytest.raises(ImportError, match="openpyxl"):
            T.to_xlsx(table, tmp_path / "t.xlsx")
        with pytest.warns(UserWarning, match="openpyxl"):
            written = T.write_tables(tmp_path, make_estimates(), formats=("md", "xlsx"))
        assert all(p.suffix == ".md" for p in written)
        return
    path = T.to_xlsx(table, tmp_path / "t.xlsx", language="sv")
    back = pd.read_excel(path, dtype=str, keep_default_na=False)
    assert list(back.columns) == ["Utfall", *(str(t) for t in range(7))]
    assert back.iloc[0, 0] == "Sjukpenning" and back.iloc[1, 0] == ""
    assert back.iloc[1, 1].startswith("(")


def test_xlsx_is_byte_identical_across_runs(tmp_path, monkeypatch):
    if not T.xlsx_available():
        pytest.skip("openpyxl not installed: no xlsx tables")
    import datetime
    import zipfile

    import openpyxl

    table = T.isf_table(make_estimates(), "alla", "cs")
    first = T.to_xlsx(table, tmp_path / "a.xlsx").read_bytes()

    # what openpyxl stamps at saving (document properties, zip entries) is fixed
    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=tz)

    monkeypatch.setattr(datetime, "datetime", Later)
    second = T.to_xlsx(table, tmp_path / "b.xlsx").read_bytes()
    monkeypatch.undo()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.xlsx") as archive:
        assert archive.testzip() is None
        assert {entry.date_time for entry in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    book = openpyxl.load_workbook(tmp_path / "a.xlsx")
    assert book.properties.modified == datetime.datetime(1980, 1, 1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    T.to_xlsx(table, tmp_path / "c.xlsx")
    assert openpyxl.load_workbook(tmp_path / "c.xlsx").properties.created == datetime.datetime(
        2023, 11, 14, 22, 13, 20
    )
    for bad, rule in [("yesterday", "whole seconds"), ("1.5e9", "whole seconds"),
                      ("0", "before 1980-01-01")]:  # fmt: skip
        monkeypatch.setenv("SOURCE_DATE_EPOCH", bad)
        with pytest.raises(ValueError, match=rule) as caught:
            T.to_xlsx(table, tmp_path / "d.xlsx")
        assert bad in str(caught.value)


# ---------------------------------------------------------------------------------- long table


def test_csv_fixed_format_order_and_identity(tmp_path):
    est = make_estimates()
    est["zz_extra"] = "x"
    shuffled = est.sample(frac=1.0, random_state=5)[list(reversed(est.columns))]
    a = T.write_estimates_csv(est, tmp_path / "a.csv").read_bytes()
    b = T.write_estimates_csv(shuffled, tmp_path / "b.csv").read_bytes()
    assert a == b
    header = a.decode().splitlines()[0].split(",")
    assert header == [*T.ESTIMATE_COLUMNS, "zz_extra"]
    assert b"\r" not in a
    back = T.read_estimates_csv(tmp_path / "a.csv")
    pd.testing.assert_frame_equal(
        back[T.ESTIMATE_COLUMNS].drop(columns="p_adjusted"),
        T.sort_estimates(est)[T.ESTIMATE_COLUMNS].drop(columns="p_adjusted"),
        check_dtype=False,
        rtol=1e-9,
    )
    assert back["population"].iloc[0] == "alla"
    assert back["outcome"].iloc[0] == "sjukpenning"


def test_csv_float_format(tmp_path):
    est = pd.DataFrame([one_cell(estimate=1 / 3, se=0.1)])
    est = est.drop(columns="p_adjusted")  # added back as an empty column
    text = T.write_estimates_csv(est, tmp_path / "e.csv").read_text()
    row = text.splitlines()[1].split(",")
    assert row[:5] == ["alla", "sjukpenning", "cs", "0", "0.3333333333"]
    assert row[T.ESTIMATE_COLUMNS.index("p_adjusted")] == ""


def fake_result(method: str, shift: float = 0.0) -> EstimationResult:
    times = np.arange(-1, 7)
    estimate = 0.1 * times + shift
    se = np.full(times.shape, 0.05)
    es = wald_table(estimate, se)
    es.insert(0, "event_time", times)
    overall = wald_table(np.array([0.3]), np.array([0.1])).iloc[0]
    vcov = pd.DataFrame(np.diag(se**2), index=times, columns=times)
    info = {"outcome": "share", "n_units": 290, "n_clusters": 290}
    return EstimationResult(method, es, overall, vcov, info=info)


def test_estimates_from_fake_results(tmp_path):
    results = [
        ("alla", "sjukpenning", fake_result("cs")),
        ("alla", "sjukpenning", fake_result("twfe", shift=0.01)),
        ("unga", "uvas", fake_result("cs")),
    ]
    est = T.estimates_from_results(results)
    assert list(est.columns[: len(T.ESTIMATE_COLUMNS)]) == T.ESTIMATE_COLUMNS
    assert (est["term"] == "overall").sum() == 3
    assert est["n_units"].eq(290).all()
    table = T.isf_table(est, "alla", "twfe")
    assert table.loc[("sjukpenning", "estimate"), 1] == "0.110**"  # z = 2.2, p ≈ 0.028
    assert table.loc[("sjukpenning", "estimate"), 0] == "0.010"
    # the overall row round-trips through the CSV as an empty event time
    path = T.write_estimates_csv(est, tmp_path / "e.csv")
    back = T.read_estimates_csv(path)
    assert back.loc[back["term"] == "overall", "event_time"].isna().all()
    assert T.isf_table(back, "alla", "twfe").equals(table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.estimates_from_results([])
