"""The same preset run twice on one commit: whether each capacity interval of one run overlaps the
other's and each claim has the same status, with both numbers and both wall times. The README states it
for the reference run and its repeat, so a reader sees how far a conclusion moves between two runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests.analysis.capacity import entry_interval, intervals_overlap
from loadtests.results import RunResults

Interval = tuple[int | None, int | None]


@dataclass(frozen=True, kw_only=True)
class CapacityPair:
    variant: str
    scenario: str
    first: Interval
    second: Interval | None  # None: the second run has no search of it
    bound: tuple[str, str | None]

    @property
    def agree(self) -> bool:
        """The intervals overlap ([lo, hi): at least lo, below hi), the rule `capacity --repeat` applies."""
        return self.second is not None and intervals_overlap(self.first, self.second)


@dataclass(frozen=True, kw_only=True)
class ClaimPair:
    claim_id: str
    statement: str
    first: str
    second: str | None  # None: the second run's verdict has no such claim

    @property
    def same(self) -> bool:
        return self.first == self.second


@dataclass(frozen=True, kw_only=True)
class Reproduction:
    capacities: list[CapacityPair]
    claims: list[ClaimPair]
    wall_s: tuple[float | None, float | None]
    commits: tuple[str | None, str | None]
    presets: tuple[str | None, str | None]

    @property
    def capacities_agree(self) -> int:
        return sum(1 for c in self.capacities if c.agree)

    @property
    def claims_same(self) -> int:
        return sum(1 for c in self.claims if c.same)


def reproduction(
    first: RunResults, first_verdict: dict[str, Any], second: RunResults, second_verdict: dict[str, Any]
) -> Reproduction:
    """Pairs every capacity search and claim of the first run with the second's (by variant and scenario,
    by claim id)."""
    others = {(e.get("variant"), e.get("scenario")): e for e in second.capacity}
    capacities = []
    for entry in first.capacity:
        other = others.get((entry.get("variant"), entry.get("scenario")))
        capacities.append(
            CapacityPair(
                variant=str(entry["variant"]),
                scenario=str(entry["scenario"]),
                first=_interval(entry),
                second=None if other is None else _interval(other),
                bound=(str(entry.get("bound")), None if other is None else str(other.get("bound"))),
            )
        )
    statuses = {str(c.get("id")): str(c.get("status")) for c in second_verdict.get("claims", [])}
    claims = [
        ClaimPair(
            claim_id=str(c.get("id")),
            statement=str(c.get("statement")),
            first=str(c.get("status")),
            second=statuses.get(str(c.get("id"))),
        )
        for c in first_verdict.get("claims", [])
    ]
    return Reproduction(
        capacities=capacities,
        claims=claims,
        wall_s=(_wall(first), _wall(second)),
        commits=(first.metadata.get("git_commit"), second.metadata.get("git_commit")),
        presets=(first.metadata.get("preset"), second.metadata.get("preset")),
    )


def _interval(entry: dict[str, Any]) -> Interval:
    lo, hi = entry_interval(entry)
    return (None if lo is None else int(lo), None if hi is None else int(hi))


def _wall(run: RunResults) -> float | None:
    wall = run.metadata.get("wall_time_s")
    return float(wall) if isinstance(wall, int | float) else None
