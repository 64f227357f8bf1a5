"""The person-year schema of register microdata and the transition outcomes built from it.

One row per person and year (a MONA-style extract, 1998–2018):

==================== ========= ===========================================================
column               type      meaning
==================== ========= ===========================================================
``person_id``        int64     pseudonymised person number (LopNr), the same in every year
``year``             int       calendar year of the row
``kommun_kod``       str (4)   kommun of residence on 31 December of ``year`` (folkbokföring,
                               the date of SCB's population statistics, so the denominators
                               match the kommun-level sources)
``sex``              str       "K" (kvinnor) or "M" (män)
``birth_year``       int       year of birth; age is ``year − birth_year`` (age at 31 December)
``sjukpenning``      bool      received sjukpenning during the year
``sa``               bool      sjuk- or aktivitetsersättning in December
``ekonomiskt_bistand`` bool    received ekonomiskt bistånd during the year
``af_till_arbete``   bool      left registered unemployment for work during the year
``studier``          bool      received studiemedel or studiehjälp during the year
``uvas``             bool      neither working nor studying (UVAS definition)
``arbete``           bool      in work (förvärvsarbetande, RAMS/LISA November definition)
``arbetslos``        bool      registered unemployed at Arbetsförmedlingen during the year
==================== ========= ===========================================================

The six ISF flags carry the library's outcome names
(:data:`finsam_eval.panel.populations.OUTCOMES`), so a person-year file aggregates to the
kommun panel with the same numerators the kommun-level sources give: the numerator of
population P and outcome o is the number of persons in P with flag o, its denominator the
number of persons in P.

Transition outcomes (:data:`TRANSITIONS`) follow the same person from year t−1 to year t.
"""

from __future__ import annotations

from dataclasses import dataclass

from finsam_eval.panel.populations import OUTCOMES

__all__ = [
    "AGE_POSSIBLE",
    "FLAG_COLUMNS",
    "KEY_COLUMNS",
    "MICRODATA_COLUMNS",
    "ORIGIN_STATES",
    "REJECT_REASONS",
    "STATE_COLUMNS",
    "TRANSITIONS",
    "TRANSITION_OUTCOMES",
    "Transition",
]

#: Identifying columns of a person-year row.
KEY_COLUMNS: tuple[str, ...] = ("person_id", "year", "kommun_kod", "sex", "birth_year")
#: State flags beyond the ISF outcomes, needed by the transitions.
STATE_COLUMNS: tuple[str, ...] = ("arbete", "arbetslos")
#: Every boolean flag: the six ISF outcomes, then ``arbete`` and ``arbetslos``.
FLAG_COLUMNS: tuple[str, ...] = (*OUTCOMES, *STATE_COLUMNS)
#: Every required column, in schema order.
MICRODATA_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FLAG_COLUMNS)
#: Ages outside this inclusive range are impossible (rejected); 0–120 covers every person
#: alive in the registers.
AGE_POSSIBLE: tuple[int, int] = (0, 120)
#: The states a transition can start from: on sjukpenning, SA, ekonomiskt bistånd or
#: registered unemployed in t−1 (ISF's target group of samordnade insatser).
ORIGIN_STATES: tuple[str, ...] = ("sjukpenning", "sa", "ekonomiskt_bistand", "arbetslos")

#: Reasons a person-year row is rejected, in the order they are checked (a row gets the first
#: that applies). Code → (name, description).
REJECT_REASONS: dict[int, tuple[str, str]] = {
    1: (
        "missing_key",
        "person_id, year, kommun_kod or birth_year missing or not a whole number (or person_id "
        "beyond ±2^54, year outside 1900–2154)",
    ),
    2: ("bad_sex", "sex is not 'K' or 'M'"),
    3: ("unknown_kommun", "kommun code unknown in the year of the row (after harmonisation)"),
    4: ("impossible_age", f"age year − birth_year outside {AGE_POSSIBLE[0]}–{AGE_POSSIBLE[1]}"),
    5: ("non_boolean_flag", "a state flag is missing or not true/false/1/0"),
    6: ("duplicate_person_year", "more than one row for the person and year (all copies)"),
}


@dataclass(frozen=True)
class Transition:
    """A year-to-year flow of the same person, as an outcome of the kommun panel.

    The row of kommun k, year t and population P has denominator = persons who in t−1 lived in
    k, belonged to P (sex, age in t−1) and were in one of ``origin`` (or, with ``negate``, in
    none of them), and who have a valid row in t; numerator = those of them in one of
    ``destination`` in t.

    Attributes
    ----------
    origin
        Flags of the starting state in t−1 (any of them).
    destination
        Flags of the end state in t (any of them).
    negate_origin
        The denominator is the persons *not* in ``origin`` in t−1 (entry flows).
    populations
        Populations (:data:`finsam_eval.panel.populations.POPULATIONS`) the outcome is built for.
    label
        English label.
    """

    origin: tuple[str, ...]
    destination: tuple[str, ...]
    negate_origin: bool
    populations: tuple[str, ...]
    label: str


_ALL = ("alla", "kvinnor", "man", "unga", "aldre")

#: The transition outcomes, in panel order (after the ISF outcomes).
TRANSITIONS: dict[str, Transition] = {
    "stod_till_arbete": Transition(
        ORIGIN_STATES, ("arbete",), False, _ALL, "From benefit or unemployment to work"
    ),
    "stod_till_studier": Transition(
        ORIGIN_STATES, ("studier",), False, _ALL[:4], "From benefit or unemployment to studies"
    ),
    "inflode_sa": Transition(("sa",), ("sa",), True, _ALL, "Entry into SA"),
    "kvar_i_stod": Transition(
        ORIGIN_STATES, ORIGIN_STATES, False, _ALL, "Persistence on benefit or unemployment"
    ),
}
#: Names of the transition outcomes.
TRANSITION_OUTCOMES: tuple[str, ...] = tuple(TRANSITIONS)
