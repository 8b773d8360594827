"""Argument types every command shares: a number within bounds, named by its flag when it is not.

Each returns an argparse type; a bad value raises ``argparse.ArgumentTypeError`` with a message that
names the flag, and ``errors.OneLineParser`` prints it as one line.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(
    flag: str,
    *,
    kind: type[int] | type[float] = float,
    minimum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    what: str | None = None,
) -> Callable[[str], float]:
    """``kind`` parsed from the text, finite, >= ``minimum``, > ``above`` and < ``below`` (each bound
    optional); ``what`` says the rule in the error ("positive", "at least 3" when not given)."""
    rule = what or _describe(minimum=minimum, above=above, below=below)

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{flag} takes {noun}, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{flag} takes a finite number, not {text!r}")
        if (
            (minimum is not None and value < minimum)
            or (above is not None and value <= above)
            or (below is not None and value >= below)
        ):
            raise argparse.ArgumentTypeError(f"{flag} must be {rule}, not {text}")
        return value

    return parse


def _describe(*, minimum: float | None, above: float | None, below: float | None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"at least {minimum:g}")
    if above is not None:
        parts.append("positive" if above == 0 else f"above {above:g}")
    if below is not None:
        parts.append(f"below {below:g}")
    return " and ".join(parts) or "a number"
