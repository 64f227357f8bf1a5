"""Package attributes imported on first use (PEP 562).

A package lists ``name -> module`` in one mapping and gets its ``__getattr__`` and ``__dir__``
from :func:`lazy_exports`: ``import finsam_eval`` (and ``finsam_eval.inference``,
``finsam_eval.report``) then loads nothing heavy until a name is used, so a run's main process
need not import scipy.stats or matplotlib that only its workers use (issue 16).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: Mapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``exports`` (name -> module
    defining it) are imported on first access; ``namespace`` is the package's ``globals()``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(namespace))

    return __getattr__, __dir__
