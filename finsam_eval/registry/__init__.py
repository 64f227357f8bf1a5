"""Registry layer: the kommuner, their codes over time, and documented förbund membership."""

from finsam_eval.registry.kommuner import (
    UnknownKommunError,
    code_history,
    harmonise_codes,
    kommun_code,
    kommun_name,
    kommuner,
    lan,
)

__all__ = [
    "UnknownKommunError",
    "code_history",
    "harmonise_codes",
    "kommun_code",
    "kommun_name",
    "kommuner",
    "lan",
]
