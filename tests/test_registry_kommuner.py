"""The kommun registry against the shared reference list, name resolution and code history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finsam_eval import registry


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> pd.DataFrame:
    path = shared_dir / "reference" / "kommuner.csv"
    if not path.is_file():
        pytest.skip(f"reference kommun list not found at {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_registry_has_the_290_reference_codes_names_and_lan(reference: pd.DataFrame) -> None:
    ours = registry.kommuner().sort_values("kommun_kod").reset_index(drop=True)
    theirs = reference.sort_values("kommun_kod").reset_index(drop=True)
    assert len(ours) == len(theirs) == 290
    for column in ("kommun_kod", "kommun", "lan_kod", "lan"):
        assert ours[column].tolist() == theirs[column].tolist(), column


def test_codes_are_four_characters_and_lan_prefix() -> None:
    table = registry.kommuner()
    assert table["kommun_kod"].str.fullmatch(r"\d{4}").all()
    assert (table["kommun_kod"].str[:2] == table["lan_kod"]).all()
    assert table["kommun_kod"].is_unique
    assert set(table["lan_kod"]) == set(registry.lan()["lan_kod"])
    assert len(registry.lan()) == 21


@pytest.mark.parametrize(
    ("given", "year", "expected"),
    [
        ("0180", None, "0180"),
        (180, None, "0180"),
        ("Stockholm", None, "0180"),
        ("Stockholms stad", None, "0180"),
        ("Malung", None, "2023"),
        ("Malung-Sälen", None, "2023"),
        (1917, 2005, "0331"),
        ("1917", 2006, "0331"),
        ("Staffanstorps", None, "1230"),
        ("Ljusnaberg", None, "1864"),
        ("Ljusnarberg", None, "1864"),
        ("Upplands Bro", None, "0139"),
        ("Upplands-Bro", None, "0139"),
        ("Upplands Väsby", None, "0114"),
        ("Nordmalning", None, "2401"),
        ("Göteborgs stad", None, "1480"),
        ("Bergs kommun", None, "2326"),
        ("Lindesbergs", None, "1885"),
    ],
)
def test_kommun_code_resolves_codes_names_and_seed_spellings(
    given: str | int, year: int | None, expected: str
) -> None:
    assert registry.kommun_code(given, year=year) == expected


def test_upplands_vasby_and_upplands_bro_stay_distinct() -> None:
    assert registry.kommun_code("Upplands Väsby") != registry.kommun_code("Upplands Bro")


def test_heby_historical_code_only_in_its_years() -> None:
    with pytest.raises(registry.UnknownKommunError, match="1917"):
        registry.kommun_code("1917", year=2010)


def test_unknown_name_error_names_it_and_suggests() -> None:
    with pytest.raises(registry.UnknownKommunError) as caught:
        registry.kommun_code("Stockholmm")
    message = str(caught.value)
    assert "Stockholmm" in message
    assert "Did you mean" in message and "Stockholm" in message


def test_unknown_code_is_an_error() -> None:
    with pytest.raises(registry.UnknownKommunError, match="9999"):
        registry.kommun_code("9999")


def test_kommun_name_returns_current_name() -> None:
    assert registry.kommun_name("Malung") == "Malung-Sälen"
    assert registry.kommun_name(1917) == "Heby"


def test_harmonise_codes_maps_heby_1917_before_2007_only() -> None:
    frame = pd.DataFrame(
        {
            "kommun_kod": ["1917", "1917", "0331", "0180", "331"],
            "year": [2005, 2006, 2007, 2005, 2008],
            "value": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    harmonised, changes = registry.harmonise_codes(frame)
    assert harmonised["kommun_kod"].tolist() == ["0331", "0331", "0331", "0180", "0331"]
    assert harmonised["value"].tolist() == frame["value"].tolist()
    assert changes["row"].tolist() == [0, 1]
    assert set(changes["old_code"]) == {"1917"}
    assert set(changes["new_code"]) == {"0331"}
    assert changes["reason"].str.contains("Heby").all()
    assert frame["kommun_kod"].tolist()[0] == "1917"  # input left untouched


def test_nykvarn_split_from_sodertalje_in_1999_is_in_the_code_history(shared_dir) -> None:
    domain = (shared_dir / "DOMAIN.md").read_text(encoding="utf-8")
    assert "Nykvarn (0140) split from Södertälje (0181)" in domain
    assert "on 1 January 1999" in " ".join(domain.split())
    history = registry.code_history().set_index("kommun_kod")
    assert history.loc["0140", "historical_name"] == "Nykvarn"
    assert history.loc["0140", "valid_from"] == 1999
    assert "0181" in history.loc["0140", "event"]
    assert registry.kommun_code("Nykvarn") == "0140"
    assert registry.kommun_code("0140", 1999) == "0140"
    with pytest.raises(registry.UnknownKommunError, match="did not exist in 1998"):
        registry.kommun_code("0140", 1998)


def test_harmonise_codes_division_conventions() -> None:
    # SCB: "Folkmängden per den 31 december avser den regionala indelningen 1 januari året
    # efter", so a 31 December 2006 figure is on the 2007 division, where Heby is 0331
    frame = pd.DataFrame({"kommun_kod": ["1917", "1917", "0331"], "year": [2005, 2006, 2006]})
    start, start_changes = registry.harmonise_codes(frame)
    assert start["kommun_kod"].tolist() == ["0331", "0331", "0331"]
    assert start_changes["row"].tolist() == [0, 1]
    end, end_changes = registry.harmonise_codes(frame, division="end_of_year")
    assert end["kommun_kod"].tolist() == ["0331", "1917", "0331"]
    assert end_changes["row"].tolist() == [0]
    assert end_changes["reason"].str.contains("following year").all()
    assert registry.division_year(2006, "end_of_year") == 2007
    assert registry.division_year(2006) == 2006
    with pytest.raises(ValueError, match="unknown division"):
        registry.harmonise_codes(frame, division="mid_year")
