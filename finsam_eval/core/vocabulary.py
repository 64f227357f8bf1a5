"""One vocabulary for draw counts and multiplier distributions (issue 12).

``reps`` counts draws everywhere (bootstrap draws, permutations, simulations), ``seed`` seeds
the numpy Generator, ``multiplier`` names the bootstrap weight distribution ("rademacher",
"mammen", "webb") and ``weights`` means sampling weights only. :func:`renamed_options` keeps
the old keyword names working for one release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["renamed_options"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_options(**old_to_new: str) -> Callable[[F], F]:
    """Accept the old keyword names of a function's options, warning once per call.

    ``@renamed_options(B="reps", weights="multiplier")`` turns ``f(B=99)`` into ``f(reps=99)``
    with a ``DeprecationWarning``; giving both names raises ``TypeError``.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{func.__name__}: give {new}= or its old name {old}=")
                warnings.warn(
                    f"{func.__name__}({old}=) is deprecated and will be removed in the next "
                    f"release; use {new}=",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
