"""A comparison, rendered: Markdown for people (the step summary, comparison.md) and JSON for machines.

Renders only: the judge (``loadtests.analysis.compare``) has decided every figure before this runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from loadtests.analysis import gate_stats
from loadtests.analysis.compare import (
    ERROR_RATE_SLACK,
    METRICS,
    RANK_TEST_REPEATS,
    Change,
    Comparison,
    Row,
    describe_key,
)
from loadtests.analysis.resampling import METHOD
from loadtests.results import RunResults


@dataclass(frozen=True, kw_only=True)
class Shown:
    """How the two runs are named in the text, and the rule they were judged by."""

    baseline: str  # a path, or "base <commit>"
    current: str
    tolerance: float
    gate: tuple[str, ...]


def to_json(comparison: Comparison) -> dict[str, object]:
    """The comparison for machines: every row's figures, tests and decisions (NaN as null)."""

    def clean(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    rows = [
        {
            "variant": r.key[0],
            "scenario": r.key[1],
            "load_model": r.key[2],
            "load": r.key[3],
            "repeats": {"base": r.n_base, "current": r.n_cur},
            "test": "rank" if r.rank_tested else "bootstrap" if r.bootstrapped else "tolerance",
            "regression": r.regression,
            "figures": [{**asdict(c), "regression": c.regression} for c in r.changes],
        }
        for r in comparison.rows
    ]
    return clean(  # type: ignore[return-value]
        {
            "result": "regression" if comparison.failed else "ok",
            "method": {
                "rank_test": gate_stats.METHOD,
                "rank_test_repeats": RANK_TEST_REPEATS,
                "alpha": gate_stats.ALPHA,
                "bootstrap": METHOD,
                "error_rate_slack": ERROR_RATE_SLACK,
            },
            "rows": rows,
            "lost": comparison.lost,
            "missing": [list(k) for k in comparison.missing],
            "only_base": [list(k) for k in comparison.only_base],
            "only_current": [list(k) for k in comparison.only_cur],
            "capacity": [{**asdict(c), "regression": c.regression} for c in comparison.capacity],
            "agreement": [{**asdict(a), "agree": a.agree} for a in comparison.agreement],
            "skipped": comparison.skipped,
            "note": comparison.scenario_note,
        }
    )


def render(
    comparison: Comparison,
    baseline: RunResults,
    current: RunResults,
    shown: Shown,
    *,
    columns: Sequence[str] | None = None,
) -> str:
    """The markdown for people; ``columns`` limits the tables to those figures (the gate's view)."""
    lines = ["## Benchmark comparison", ""]
    lines.append(f"- Baseline: `{shown.baseline}` ({_run_label(baseline)})")
    lines.append(f"- Current: `{shown.current}` ({_run_label(current)})")
    lines.append(
        f"- Rule: a regression is a change of more than {shown.tolerance:.0%} the wrong way "
        f"(throughput down, latency up) in a gated metric ({', '.join(shown.gate)}) that is also beyond "
        "the noise; for errors, "
        f"a rise of more than {ERROR_RATE_SLACK * 100:g} percentage point in the failed share."
    )
    lines += _noise_lines(comparison.rows)
    if comparison.scenario_note:
        lines.append(f"- Note: {comparison.scenario_note}.")
    lines += ["", _result_line(comparison), ""]
    lines += _sections(comparison, columns)
    return "\n".join(lines).rstrip() + "\n"


def _noise_lines(rows: Sequence[Row]) -> list[str]:
    """Which test judged the noise of how many points, and the false-alarm bound of the rank test."""
    lines = []
    ranked = [r for r in rows if r.rank_tested]
    if ranked:
        gated_tests = sum(
            1 for r in ranked for c in r.changes if c.gated and c.metric != "errors" and not c.missing
        )
        n = min(min(r.n_base, r.n_cur) for r in ranked)
        size = gate_stats.achievable_size(n, n) if n <= 8 else gate_stats.ALPHA
        lines.append(
            f"- Noise: {gate_stats.METHOD}; used for the {len(ranked)} of {len(rows)} point(s) with "
            f"{RANK_TEST_REPEATS}+ counted repeats on both sides. False alarms: at most {size:.2%} per gated "
            f"figure ({n} rounds a side), at most {min(1.0, size * gated_tests):.1%} over the "
            f"{gated_tests} rank-tested gated figures (Bonferroni bound)."
        )
    boot = [r for r in rows if r.bootstrapped and not r.rank_tested]
    if boot or not ranked:
        lines.append(
            f"- Noise: {METHOD}; used for the {len(boot)} of {len(rows)} point(s) with 2-4 valid repeats on "
            "both sides."
            + (
                f" The other {len(rows) - len(boot) - len(ranked)} point(s) have fewer than 2 valid repeats "
                "on a side: the tolerance alone decides there."
                if len(boot) + len(ranked) < len(rows)
                else ""
            )
        )
    return lines


def _result_line(comparison: Comparison) -> str:
    rows = comparison.rows
    if not comparison.failed:
        return f"**Result: no regression in {len(rows)} compared point(s).**"
    lost = f", {len(comparison.lost)} point(s) no longer valid" if comparison.lost else ""
    if comparison.missing:
        lost += f", {len(comparison.missing)} point(s) missing"
    capacity = sum(c.regression for c in comparison.capacity)
    if capacity:
        lost += f", {capacity} capacity drop(s)"
    return f"**Result: {len(comparison.regressions)} regression(s) in {len(rows)} compared point(s){lost}.**"


def _sections(comparison: Comparison, columns: Sequence[str] | None) -> list[str]:
    """What moved, what was lost or missing, the capacities, and every compared point."""
    lines: list[str] = []
    if comparison.lost:
        lines += ["### Points that became invalid (counted as regressions)", ""]
        lines += [f"- {s}" for s in comparison.lost] + [""]
    if comparison.missing:
        lines += ["### Points missing from the current run (counted as regressions)", ""]
        lines += [f"- {describe_key(k)}" for k in comparison.missing] + [""]
    if comparison.capacity:
        lines += ["### Capacity (users within the SLO; one search a run, the tolerance decides)", ""]
        lines += ["| variant · scenario | baseline | current | verdict |", "|---|---|---|---|"]
        for c in comparison.capacity:
            cur = "missing" if c.cur_users is None else str(c.cur_users)
            verdict = "**REGRESSION**" if c.regression else "ok"
            lines.append(f"| {c.variant} · {c.scenario} | {c.base_users} | {cur} | {verdict} |")
        lines.append("")
    rows = comparison.rows
    flagged = [r for r in rows if any(c.worse or c.better or c.missing for c in r.changes)]
    if flagged:
        lines += ["### Changes beyond the tolerance", "", *_table(flagged, columns), ""]
    if flagged != rows:
        lines += ["<details><summary>All compared points</summary>", "", *_table(rows, columns), ""]
        lines += ["</details>", ""]
    if comparison.skipped:
        lines += ["### Invalid repeats (each line says whether they were counted)", ""]
        lines += [f"- {s}" for s in comparison.skipped] + [""]
    return lines + _agreement_lines(comparison) + _only_lines(comparison)


def _agreement_lines(comparison: Comparison) -> list[str]:
    """Which capacities and figures the two runs agree on (their 95 % intervals overlap) and which differ
    beyond their noise; reported, not gated (the exit code is the regressions' alone)."""
    rows = comparison.agreement
    if not rows:
        return []
    differ = [a for a in rows if not a.agree]
    lines = [
        "### Agreement (95 % intervals)",
        "",
        f"{len(rows) - len(differ)} of {len(rows)} figures measured in both runs agree: their intervals "
        "overlap, so one value fits both." + (" These differ beyond their noise:" if differ else ""),
        "",
    ]
    if differ:
        lines += ["| figure | point | baseline | current |", "|---|---|---|---|"]
        lines += [f"| {a.what} | {a.key} | {_span_text(a.base)} | {_span_text(a.current)} |" for a in differ]
        lines.append("")
    capacities = [a for a in rows if a.what == "capacity"]
    if capacities:
        lines += ["| capacity | baseline | current | agree |", "|---|---|---|---|"]
        lines += [
            f"| {a.key} | {_span_text(a.base)} | {_span_text(a.current)} | {'yes' if a.agree else '**no**'} |"
            for a in capacities
        ]
        lines.append("")
    return lines


def _span_text(span: tuple[float | None, float | None]) -> str:
    low, high = span
    shown = [f"{v:.4g}" if v is not None else "" for v in (low, high)]
    return f"{shown[0]}-{shown[1]}" if high is not None else f"{shown[0]}+"


def _only_lines(comparison: Comparison) -> list[str]:
    lines = []
    shown_only = ((("baseline", comparison.only_base),) if comparison.shared_only else ()) + (
        ("current run", comparison.only_cur),
    )
    for label, keys in shown_only:
        if keys:
            shown = ", ".join(describe_key(k) for k in keys[:12])
            more = f" and {len(keys) - 12} more" if len(keys) > 12 else ""
            lines.append(f"Only in the {label} (not compared): {len(keys)} point(s): {shown}{more}.")
            lines.append("")
    return lines


COLUMNS = {
    "throughput": "throughput (rps)",
    "p50": "p50 (ms)",
    "p95": "p95 (ms)",
    "p99": "p99 (ms)",
    "errors": "failed",
    "cpu": "server CPU (ms/req)",
    "overhead_p50": "overhead p50 (ms)",
    "overhead_p95": "overhead p95 (ms)",
    "cpu_rel": "server CPU (x mock's)",
    "overhead_p50_rel": "overhead p50 (x mock CPU)",
    "overhead_p95_rel": "overhead p95 (x mock CPU)",
    "throughput_rel": "throughput (x mock CPU)",
    "memory": "server USS (MB)",
}


def _table(rows: Sequence[Row], columns: Sequence[str] | None = None) -> list[str]:
    shown = [
        m
        for m in METRICS
        if (columns is None or m in columns) and any(c.metric == m for r in rows for c in r.changes)
    ]
    out = [
        "| point | repeats (base/cur) | " + " | ".join(COLUMNS[m] for m in shown) + " | verdict |",
        "|---|---|" + "---|" * len(shown) + "---|",
    ]
    for row in rows:
        cells = {c.metric: _cell(c) for c in row.changes}
        out.append(
            f"| {describe_key(row.key)} | {row.n_base}/{row.n_cur} | "
            + " | ".join(cells.get(m, "") for m in shown)
            + f" | {_verdict(row, quiet=columns is not None)} |"
        )
    return out


def _cell(c: Change) -> str:
    if c.missing:
        return f"{_fmt(c.base)} → missing"
    p = f" p={c.p_value:.3f}" if c.p_value is not None else ""
    if c.metric == "errors":
        return f"{c.base:.1%} → {c.cur:.1%}{p}"
    interval = f" [{c.low:.2f}, {c.high:.2f}]" if c.low is not None and c.high is not None else ""
    return f"{_fmt(c.base)} → {_fmt(c.cur)} (×{c.ratio:.2f}{interval}{p})"


def _verdict(row: Row, *, quiet: bool = False) -> str:
    parts = []
    for c in row.changes:
        if quiet and not c.gated:
            continue
        if c.missing:
            parts.append(f"**REGRESSION** {c.metric} missing")
            continue
        pct = f"{(c.cur - c.base) * 100:+.1f} points" if c.metric == "errors" else f"{(c.ratio - 1):+.0%}"
        if c.regression:
            parts.append(f"**REGRESSION** {c.metric} {pct}")
        elif c.not_significant:
            parts.append(f"{c.metric} {pct}: not significant")
        elif c.worse:
            if not quiet:  # a table that shows only some figures names only the gated ones
                parts.append(f"{c.metric} {pct}: not gated")
        elif c.better:
            parts.append(f"{c.metric} {pct}: better")
    if not parts:
        return "ok"
    basis = (
        "" if row.bootstrapped or all(c.missing for c in row.changes) else " (tolerance only: < 2 repeats)"
    )
    return "; ".join(parts) + basis


def _run_label(run: RunResults) -> str:
    md = run.metadata
    return (
        f"preset {md.get('preset', '?')}, profile {md.get('mock_profile', '?')}, time scale "
        f"{md.get('time_scale', '?')}, {md.get('started_at', '?')}, git {str(md.get('git_commit', '?'))[:10]}"
    )


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"
