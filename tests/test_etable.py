"""etable: several results side by side (pyfixest's etable); isf_table on unknown outcomes."""

from __future__ import annotations

import pandas as pd
import pytest

import finsam_eval
from finsam_eval import estimate, load_synthetic
from finsam_eval.report import isf_table
from finsam_eval.report.etable import etable


@pytest.fixture(scope="module")
def fits():
    panel = load_synthetic()
    data = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")]
    # any outcome name: the share column renamed
    data = data.rename(columns={"share": "min_egen_utfallsvariabel"})
    spec = {"outcome": "min_egen_utfallsvariabel", "window": (-3, 4)}
    return (
        estimate(data, method="cs", control="notyet", **spec),
        estimate(data, method="twfe", **spec),
    )


def test_dataframe_puts_estimates_side_by_side(fits):
    cs, twfe = fits
    table = etable([cs, twfe], labels=["CS", "TWFE"])
    assert list(table.columns) == ["CS", "TWFE"]
    assert finsam_eval.etable is etable
    # estimate with stars over "(se)", from the results' own numbers
    row = cs.event_study.set_index("event_time").loc[2]
    est = table.loc[("e = 2", "estimate"), "CS"]
    assert est.rstrip("*") == f"{row['estimate']:.3f}"
    stars = sum(row["p_value"] < t for t in (0.10, 0.05, 0.01))
    assert len(est) - len(est.rstrip("*")) == stars
    assert table.loc[("e = 2", "se"), "CS"] == f"({row['se']:.3f})"
    # TWFE's reference period is not a row of its column
    assert table.loc[("e = -1", "estimate"), "TWFE"] == ""
    assert table.loc[("Overall", "estimate"), "CS"].startswith(f"{cs.overall['estimate']:.3f}")
    info = table.xs("info", level="statistic")
    assert info.loc["N kommuner"].tolist() == ["290", "290"]
    assert info.loc["Clusters"].tolist() == ["290", "290"]
    assert info.loc["Cohorts", "CS"] == str(cs.att_gt["cohort"].nunique())
    assert info.loc["Outcome"].tolist() == ["min_egen_utfallsvariabel"] * 2
    assert info.loc["Control group", "CS"] == "not yet treated"
    assert "simple ATT" in table.attrs["notes"]


def test_headers_from_a_mapping_and_numbering_of_repeats(fits):
    cs, twfe = fits
    assert list(etable({"A": cs, "B": twfe}).columns) == ["A", "B"]
    assert list(etable([cs, twfe], labels={"cs": "Callaway"}).columns) == ["Callaway", "twfe"]
    assert list(etable([cs, cs]).columns) == ["(1) cs", "(2) cs"]


def test_aggregation_rows(fits):
    cs, twfe = fits
    table = etable([cs, twfe], rows="aggregations")
    group = cs.aggregate("group").overall
    assert table.loc[("ATT (group)", "estimate"), "cs"].rstrip("*") == f"{group['estimate']:.3f}"
    assert table.loc[("ATT (group)", "estimate"), "twfe"] == ""  # no group-time effects


@pytest.mark.parametrize("fmt", ["markdown", "latex", "html"])
def test_text_formats(fits, fmt):
    cs, twfe = fits
    out = etable([cs, twfe], fmt, event_times=[0, 1], caption="Sjukpenning & co")
    assert isinstance(out, str)
    se = f"({cs.event_study.set_index('event_time').loc[1, 'se']:.3f})"
    assert se in out
    assert "N kommuner" in out and "290" in out
    if fmt == "latex":
        assert r"\toprule" in out and r"Sjukpenning \& co" in out
        assert "min\\_egen\\_utfallsvariabel" in out
    if fmt == "html":
        assert out.startswith('<table class="finsam-etable">') and "&amp;" in out
    if fmt == "markdown":
        assert "| e = 0 |" in out


def test_great_tables_object(fits):
    great_tables = pytest.importorskip("great_tables")
    out = etable(list(fits), "gt", caption="Sjukpenning")
    assert isinstance(out, great_tables.GT)
    page = out.as_raw_html()
    assert "Sjukpenning" in page and "N kommuner" in page


def test_gt_without_great_tables_names_the_package(fits, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("great_tables"):
            raise ImportError("no great_tables")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match="great_tables"):
        etable(list(fits), "gt")


def test_bad_input(fits):
    cs, twfe = fits
    with pytest.raises(ValueError, match="format"):
        etable([cs], "docx")
    with pytest.raises(ValueError, match="rows"):
        etable([cs], rows="cohort")
    with pytest.raises(ValueError, match="event times \\[99\\]"):
        etable([cs], event_times=[99])
    with pytest.raises(ValueError, match="2 labels for 1 results"):
        etable([cs], labels=["a", "b"])
    with pytest.raises(ValueError, match="unknown columns"):
        etable([cs], labels={"sa": "x"})
    with pytest.raises(TypeError, match="EstimationResult"):
        etable([cs.aggregate("group")])
    with pytest.raises(ValueError, match="at least one"):
        etable([])


def _long(outcome: str) -> pd.DataFrame:
    rows = [
        {"population": "alla", "outcome": outcome, "method": "cs", "term": "event_time",
         "event_time": t, "estimate": 0.1 * t, "se": 0.05, "ci_lower": 0.0, "ci_upper": 0.2,
         "p_value": 0.03, "n_units": 290, "n_clusters": 290}
        for t in range(3)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_isf_table_keeps_an_outcome_outside_the_catalogue():
    table = isf_table(_long("min_egen_utfallsvariabel"), "alla", "cs", event_times=[0, 1, 2])
    assert table.index.get_level_values("outcome").unique().tolist() == ["min_egen_utfallsvariabel"]
    assert table.loc[("min_egen_utfallsvariabel", "estimate"), 1] == "0.100**"


def test_isf_table_refuses_an_outcome_not_defined_for_the_population():
    # uvas is defined for unga only: an empty table would be silent
    with pytest.raises(ValueError, match="no outcome to show.*uvas"):
        isf_table(_long("uvas"), "alla", "cs", event_times=[0, 1, 2])
