"""The README's block on the reference run and its repeat: both capacity intervals a variant, whether they
overlap, the claims whose status moved, and both wall times (rendered from a computed Reproduction)."""

from __future__ import annotations

from loadtests.analysis.reproduction import Interval, Reproduction


def _interval(interval: Interval | None) -> str:
    if interval is None:
        return "not searched"
    lo, hi = interval
    return f"{lo}-{hi}" if hi is not None else f"{lo}+"


def _minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def repeat_block(repro: Reproduction, *, names: tuple[str, str]) -> str:
    """A summary line, the capacity table and the claims that differ (or that none does)."""
    first, second = names
    commits = {c[:10] for c in repro.commits if c}
    on = f"commit `{commits.pop()}`" if len(commits) == 1 else "different commits"
    presets = {p or "custom" for p in repro.presets}
    preset = f"the `{presets.pop()}` preset" if len(presets) == 1 else "presets " + ", ".join(sorted(presets))
    lines = [
        f"`{first}` and `{second}`: {preset} twice on {on}, "
        f"{_minutes(repro.wall_s[0])} and {_minutes(repro.wall_s[1])}. "
        f"{repro.capacities_agree} of {len(repro.capacities)} capacity intervals overlap; "
        f"{repro.claims_same} of {len(repro.claims)} claims have the same status.",
        "",
        "| variant | scenario | capacity, first run | capacity, second run | overlap |",
        "|---|---|---|---|---|",
    ]
    for c in repro.capacities:
        bounds = [b or "-" for b in c.bound]
        lines.append(
            f"| {c.variant} | {c.scenario} | {_interval(c.first)} ({bounds[0]}) "
            f"| {_interval(c.second)} ({bounds[1]}) | {'yes' if c.agree else '**no**'} |"
        )
    moved = [c for c in repro.claims if not c.same]
    lines.append("")
    if not moved:
        lines.append("Every claim has the same status in both runs.")
    for c in moved:
        second_status = c.second or "absent"
        lines.append(f"- `{c.claim_id}`: **{c.first}** in the first run, **{second_status}** in the second.")
    return "\n".join(lines)
