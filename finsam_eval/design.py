"""The evaluation design, defined once: which cohorts are evaluated, for how long, against whom.

:func:`isf_design` is the design of ISF's evaluation of the activity financed by
samordningsförbund (ISF 2019, the second of three reports; seed 001 of the reference material):

- **cohorts 2005–2010**: "vi [inkluderar] förbund som bildas under hela perioden 2005–2010";
- **follow-up 6 years**: "[vi] använder en uppföljningstid på sex år";
- **control "notyet"**: the comparison is "kommuner som (ännu) inte har gått med i ett förbund",
  so kommuner that join later are comparisons until they join (and never after);
- **aggregated kommun data** (shares of each kommun's population), not individual data.

What the report does not say, and this design assumes (each switchable by building another
:class:`EvaluationDesign`): the first panel year (1998, the library's panel start), the last
year (2016 = 2010 + 6, so the last evaluated cohort has its six follow-up years), the event
window's lead length (5 years before joining) and that year 0 is the first member year. The
report names no estimator. docs/methods.md lists this line by line.

:func:`all_cohorts_design` is the named alternative: every cohort in the data is evaluated
over the whole panel (the pipeline's former default).

This module imports nothing else from the package, so every layer (synthetic, estimators,
inference, report, pipeline) may import it.

References
----------
ISF, Inspektionen för socialförsäkringen (2019). Utvärdering av den verksamhet som
samordningsförbunden finansierar, del 2 (summary in seed 001_5bd59affdc4fd9dd.txt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CONTROLS", "EvaluationDesign", "all_cohorts_design", "isf_design"]

#: Comparison groups a design may name (as ``estimate``'s ``control``).
CONTROLS = ("notyet", "never")

#: Roles of a kommun in a design (see :meth:`EvaluationDesign.roles`).
ROLES = ("evaluated", "not_yet", "never", "before_design")


@dataclass(frozen=True)
class EvaluationDesign:
    """A staggered-adoption evaluation design (immutable).

    Attributes
    ----------
    name
        Short name ("isf", "all_cohorts", ...).
    cohorts
        Evaluated cohorts (first member years), ascending; ``None``: every cohort in the data.
    follow_up
        Follow-up years after joining: event times 0..follow_up are reported.
    control
        "notyet" (kommuner not yet members are comparisons until they join, and never-members)
        or "never" (never-members only).
    first_year
        First panel year.
    last_year
        Last panel year; ``None``: the data's last year.
    leads
        Pre-joining event times shown (the window starts at ``-leads``).
    sources
        ``(attribute, source)`` pairs: where each value comes from ("seed 001: ..." or
        "assumed: ...").
    """

    name: str
    cohorts: tuple[int, ...] | None
    follow_up: int
    control: str
    first_year: int
    last_year: int | None
    leads: int = 5
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, got {self.control!r}")
        if self.follow_up < 0 or self.leads < 1:
            raise ValueError(
                f"follow_up must be >= 0 and leads >= 1, got {self.follow_up}, {self.leads}"
            )
        if self.cohorts is not None:
            cohorts = tuple(int(g) for g in self.cohorts)
            if not cohorts or list(cohorts) != sorted(set(cohorts)):
                raise ValueError(f"cohorts must be distinct and ascending, got {self.cohorts}")
            if cohorts[0] <= self.first_year:
                raise ValueError(
                    f"the first evaluated cohort {cohorts[0]} needs a pre-joining year after "
                    f"first_year {self.first_year}"
                )
            object.__setattr__(self, "cohorts", cohorts)
        if self.last_year is not None and self.last_year < self.first_year:
            raise ValueError(f"last_year {self.last_year} is before first_year {self.first_year}")

    @property
    def window(self) -> tuple[int, int]:
        """Event-time window ``(-leads, follow_up)`` (``estimate``'s ``window``)."""
        return (-self.leads, self.follow_up)

    @property
    def event_times(self) -> tuple[int, ...]:
        """The follow-up event times 0..follow_up."""
        return tuple(range(self.follow_up + 1))

    def years(self, data_years: Sequence[int] | None = None) -> np.ndarray:
        """Panel years of the design (within ``data_years`` when given)."""
        if data_years is None:
            if self.last_year is None:
                raise ValueError(f"design {self.name!r} has no last year: pass the data's years")
            return np.arange(self.first_year, self.last_year + 1)
        years = np.unique(np.asarray(data_years, dtype=int))
        last = years.max() if self.last_year is None else self.last_year
        return years[(years >= self.first_year) & (years <= last)]

    def roles(self, cohort: np.ndarray, last_year: int | None = None) -> np.ndarray:
        """The role of each kommun given its first member year (0 = never).

        - "evaluated": cohort among ``cohorts`` (all cohorts inside the years if ``None``);
        - "not_yet": joins later, inside the panel years; a comparison until it joins
          (``control="notyet"``), not used with ``control="never"``;
        - "never": not a member by the last panel year (never-members, and later joiners,
          whose joining lies outside the panel);
        - "before_design": joined before the first evaluated cohort: neither evaluated nor
          untreated, so not used.
        """
        cohort = np.asarray(cohort, dtype=int)
        last = self.last_year if self.last_year is not None else last_year
        if last is None:
            raise ValueError(f"design {self.name!r} has no last year: pass last_year")
        first_cohort = min(self.cohorts) if self.cohorts is not None else self.first_year + 1
        never = (cohort == 0) | (cohort > last)
        evaluated = (
            (cohort >= first_cohort) & (cohort <= last)
            if self.cohorts is None
            else np.isin(cohort, self.cohorts)
        )
        before = ~never & (cohort < first_cohort)
        out = np.full(cohort.shape, "not_yet", dtype=object)
        out[never] = "never"
        out[evaluated] = "evaluated"
        out[before] = "before_design"
        return out

    def describe(self) -> str:
        """One line: cohorts, follow-up, comparison and years."""
        cohorts = "all" if self.cohorts is None else f"{self.cohorts[0]}–{self.cohorts[-1]}"
        last = "last data year" if self.last_year is None else str(self.last_year)
        return (
            f"{self.name}: cohorts {cohorts}, follow-up {self.follow_up} years, control "
            f"{self.control!r}, years {self.first_year}–{last}, window {self.window}"
        )


_ISF_SOURCES = (
    ("cohorts", "seed 001: 'förbund som bildas under hela perioden 2005–2010'"),
    ("follow_up", "seed 001: 'en uppföljningstid på sex år'; 'samtliga sex uppföljningsår'"),
    ("control", "seed 001: 'kommuner som (ännu) inte har gått med i ett förbund'"),
    ("first_year", "assumed: the library's panel start (1998); seed 001 gives no start year"),
    ("last_year", "assumed: 2010 + 6 = 2016, six follow-up years for the last cohort"),
    ("leads", "assumed: five pre-joining years shown (event times -5..-1)"),
)


def isf_design() -> EvaluationDesign:
    """The ISF (2019) design: cohorts 2005–2010, six follow-up years, not-yet-joined comparisons.

    Returns
    -------
    EvaluationDesign
        ``cohorts`` (2005, ..., 2010), ``follow_up`` 6, ``control`` "notyet", ``first_year``
        1998, ``last_year`` 2016, ``window`` (-5, 6), ``event_times`` 0..6. ``sources`` says
        which values come from the ISF report (seed 001) and which are assumed.

    References
    ----------
    ISF (2019), summary in seed 001: difference-in-differences on aggregated kommun data,
    förbund formed 2005–2010, six years of follow-up, comparison with kommuner that had not
    (yet) joined.
    """
    return EvaluationDesign(
        name="isf",
        cohorts=tuple(range(2005, 2011)),
        follow_up=6,
        control="notyet",
        first_year=1998,
        last_year=2016,
        leads=5,
        sources=_ISF_SOURCES,
    )


def all_cohorts_design(first_year: int = 1998, last_year: int | None = None) -> EvaluationDesign:
    """The all-cohorts alternative: every cohort in the data, the whole panel, not-yet controls.

    Not ISF's design (which evaluates 2005–2010 only); it uses every adoption year the data
    hold, with the same six-year follow-up window and comparison.
    """
    return EvaluationDesign(
        name="all_cohorts",
        cohorts=None,
        follow_up=6,
        control="notyet",
        first_year=first_year,
        last_year=last_year,
        leads=5,
        sources=(
            ("cohorts", "assumed: every cohort in the data (not ISF's 2005–2010)"),
            *_ISF_SOURCES[1:3],
            ("first_year", "assumed: the library's panel start (1998)"),
            ("last_year", "assumed: the data's last year"),
            _ISF_SOURCES[5],
        ),
    )
