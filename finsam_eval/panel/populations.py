"""The ISF (2019) populations and outcomes, as data.

Every other layer (the synthetic generator, the configuration, the report tables) reads the
definitions from here, so a population or outcome is defined in exactly one place.

The numerator source tables are by sex and age band (:data:`AGE_BANDS`); the population table is by
sex and single-year age. A population's numerator is the sum over the bands inside its age range
and over its sexes; its denominator is the sum of the population over the same sexes and
single-year ages. A band must therefore lie wholly inside or wholly outside every population's
range, which the three ISF bands do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "AGE_BANDS",
    "OUTCOMES",
    "POPULATIONS",
    "SEXES",
    "Population",
    "band_position",
    "is_defined",
    "outcome_label",
    "parse_age_band",
    "population_label",
]

#: Sex codes of the source tables: "K" (kvinnor, women) and "M" (män, men).
SEXES: tuple[str, ...] = ("K", "M")

#: Outcomes in ISF order; every outcome is a share (percent) of the population.
OUTCOMES: tuple[str, ...] = (
    "sjukpenning",
    "sa",
    "ekonomiskt_bistand",
    "af_till_arbete",
    "studier",
    "uvas",
)

#: The age bands of the numerator source tables, inclusive (lowest, highest) age.
AGE_BANDS: dict[str, tuple[int, int]] = {"19-24": (19, 24), "25-54": (25, 54), "55-64": (55, 64)}

_FIVE = OUTCOMES[:5]


@dataclass(frozen=True)
class Population:
    """A population of the ISF design.

    Attributes
    ----------
    sex
        Sex codes included: ``("K", "M")``, ``("K",)`` or ``("M",)``.
    age_min, age_max
        Inclusive age range.
    outcomes
        Outcomes defined for the population, in :data:`OUTCOMES` order.
    label
        English label for tables and figures.
    """

    sex: tuple[str, ...]
    age_min: int
    age_max: int
    outcomes: tuple[str, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.sex or any(s not in SEXES for s in self.sex):
            raise ValueError(
                f"Population sex must be a non-empty subset of {SEXES}, got {self.sex}"
            )
        if self.age_min > self.age_max:
            raise ValueError(f"Population age_min {self.age_min} > age_max {self.age_max}")
        unknown = [o for o in self.outcomes if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"Unknown outcome(s) {unknown}; known: {list(OUTCOMES)}")

    @property
    def n_ages(self) -> int:
        """Number of single-year ages in the range."""
        return self.age_max - self.age_min + 1

    def bands(self, bands: Mapping[str, tuple[int, int]] | None = None) -> tuple[str, ...]:
        """Names of the age bands lying inside the population's age range.

        Parameters
        ----------
        bands
            Band name → (lowest, highest) age; :data:`AGE_BANDS` when None.

        Raises
        ------
        ValueError
            If a band straddles the range (partly inside, partly outside): its numerator cannot
            be split by single-year age.
        """
        bands = AGE_BANDS if bands is None else bands
        inside = []
        for name, (lo, hi) in bands.items():
            position = band_position(lo, hi, self.age_min, self.age_max)
            if position == "straddles":
                raise ValueError(
                    f"Age band {name!r} ({lo}–{hi}) straddles the population's age range "
                    f"{self.age_min}–{self.age_max}: a band must lie wholly inside or outside it"
                )
            if position == "inside":
                inside.append(name)
        return tuple(inside)


#: The five ISF populations, in report order.
POPULATIONS: dict[str, Population] = {
    "alla": Population(("K", "M"), 19, 64, _FIVE, "Everyone 19–64"),
    "kvinnor": Population(("K",), 19, 64, _FIVE, "Women 19–64"),
    "man": Population(("M",), 19, 64, _FIVE, "Men 19–64"),
    "unga": Population(("K", "M"), 19, 24, OUTCOMES, "Young 19–24"),
    "aldre": Population(("K", "M"), 55, 64, OUTCOMES[:4], "Older 55–64"),
}

_OUTCOME_LABELS = {
    "sjukpenning": "Sickness benefit",
    "sa": "Sickness/activity compensation",
    "ekonomiskt_bistand": "Economic assistance",
    "af_till_arbete": "Unemployment to work",
    "studier": "Study allowances",
    "uvas": "Neither working nor studying (UVAS)",
}


def is_defined(population: str, outcome: str) -> bool:
    """Whether the ISF design defines ``outcome`` for ``population``.

    Parameters
    ----------
    population
        Population name (a key of :data:`POPULATIONS`).
    outcome
        Outcome name.

    Returns
    -------
    bool
        False for unknown names and for the pairs the design leaves out (uvas outside *unga*,
        studier for *aldre*).
    """
    spec = POPULATIONS.get(population)
    return spec is not None and outcome in spec.outcomes


def population_label(population: str) -> str:
    """English label of a population (the name itself when unknown)."""
    spec = POPULATIONS.get(population)
    return spec.label if spec is not None and spec.label else population


def outcome_label(outcome: str) -> str:
    """English label of an outcome (the name itself when unknown)."""
    return _OUTCOME_LABELS.get(outcome, outcome)


def band_position(lo: int, hi: int, age_min: int, age_max: int) -> str:
    """Where the band ``lo``–``hi`` lies relative to the range ``age_min``–``age_max``.

    Returns
    -------
    str
        ``"inside"``, ``"outside"`` or ``"straddles"``.
    """
    if lo >= age_min and hi <= age_max:
        return "inside"
    if hi < age_min or lo > age_max:
        return "outside"
    return "straddles"


def parse_age_band(band: str) -> tuple[int, int]:
    """Parse an age band label such as ``"19-24"`` (or ``"65+"``) into inclusive ages.

    Raises
    ------
    ValueError
        If the label is not ``"<lo>-<hi>"`` with ``lo <= hi``, or ``"<lo>+"``.
    """
    if band in AGE_BANDS:
        return AGE_BANDS[band]
    text = str(band).strip().replace("–", "-").replace(" ", "")
    if text.endswith("+") and text[:-1].isdigit():
        return int(text[:-1]), 200
    parts = text.split("-")
    if len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[0]) <= int(parts[1]):
        return int(parts[0]), int(parts[1])
    raise ValueError(f"Age band {band!r} is not of the form '19-24' (or '65+')")
