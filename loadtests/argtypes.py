"""Argument types every command shares: a number within bounds, a list of levels, names, a duration.

Each returns an argparse type (or parses one value); a bad value raises ``argparse.ArgumentTypeError``
with a message that names the flag, and ``errors.OneLineParser`` prints it as one line.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


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


def levels(kind: type, flag: str) -> Any:
    """Comma-separated positive finite numbers of ``kind``; ``none`` drops the preset's levels."""

    def parse(text: str) -> tuple[Any, ...]:
        if text.strip().lower() == "none":  # drop the preset's levels of this load model
            return ()
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{flag} needs at least one value")
        try:
            values = tuple(kind(item) for item in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes comma-separated numbers, not {text!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(f"{flag} takes finite numbers, not {text!r}")
        if any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{flag} values must be positive, not {text!r}")
        return values

    return parse


def names(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def names_or_none(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else names(text)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str) -> float:
    """Seconds from ``30``, ``30s``, ``2m``, ``1.5h`` or ``500ms`` (a bare number is seconds)."""
    cleaned = text.strip().lower()
    amount, unit = cleaned, "s"
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if cleaned.endswith(suffix):
            amount, unit = cleaned[: -len(suffix)].strip(), suffix
            break
    try:
        value = float(amount) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{flag} takes a duration such as 30, 30s, 2m or 500ms, not {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{flag} must be a positive finite duration, not {text!r}")
    return value


def duration(flag: str) -> Any:
    return lambda text: parse_duration(text, flag)
