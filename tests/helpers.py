"""Shared builders for the tests (imported as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import math

#: Each method's natural specification on the kommun panel; TWFE as evaluators run it: a
#: (-5, 6) window with binned end points.
NATURAL_SPEC: dict[str, dict] = {
    "cs": {"control": "notyet"},
    "sa": {"control": "never"},
    "imputation": {"control": "notyet"},
    "two_stage": {"control": "notyet"},
    "stacked": {"control": "notyet", "window": (-5, 6)},
    "dcdh": {"control": "notyet", "window": (-5, 6)},
    "twfe": {"window": (-5, 6)},
}

#: The HTML report's sections (element ids), in page order.
REPORT_SECTIONS = (
    "summary",
    "isf-comparison",
    "specification",
    "tables",
    "figures",
    "notes",
    "manifest",
)


def estimate_row(
    population: str,
    outcome: str,
    method: str,
    event_time: int,
    estimate: float,
    se: float,
    p_value: float,
    *,
    z: float = 1.96,
    p_adjusted: float = math.nan,
    n: int = 290,
) -> dict:
    """One row of the long results table: interval ``estimate ± z se``, ``n`` units and clusters."""
    return {
        "population": population,
        "outcome": outcome,
        "method": method,
        "event_time": event_time,
        "estimate": estimate,
        "se": se,
        "ci_lower": estimate - z * se,
        "ci_upper": estimate + z * se,
        "p_value": p_value,
        "p_adjusted": p_adjusted,
        "n_units": n,
        "n_clusters": n,
    }
