"""``--profile replay:FILE``: per-call timings replayed from a file, and how close the mock came to it.

The file is CSV (a ``.csv`` name, with a header row) or JSONL (one object per line), one recorded call per
row, in seconds at time scale 1:

- ``ttft_s``: time to first token (for a non-streamed call: to the first byte of its body);
- ``total_s``: the whole call; or, instead, ``tokens_per_s`` with ``output_tokens`` (total = TTFT +
  output_tokens / tokens_per_s);
- ``output_tokens``: optional with ``total_s``; other columns (``python -m mock_llm record`` writes the
  endpoint, whether it streamed) are ignored.

Calls take the records in file order, wrapping around, each scaled by the time scale; the text is the
mock's own. The mock keeps what it really did with each replayed call (on its own clock, divided by the time
scale) and states, per measure, the two-sample Kolmogorov-Smirnov distance D between those timings and the
file's, with the 5 % critical value (D above it: the run did not reproduce the file). A second distance
compares them with the records the run actually used (the mock's accuracy alone, without the sampling of a
run that used only part of the file).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_llm.profiles import LatencyPlan
from mock_llm.stats import Reservoir

FIELDS = ("ttft_s", "total_s", "tokens_per_s", "output_tokens")
MEASURES = ("ttft_s", "total_s", "tokens_per_s")
KS_C_05 = 1.3581  # c(alpha) of the two-sample Kolmogorov-Smirnov test at alpha = 0.05


@dataclass(frozen=True, kw_only=True)
class TimingRecord:
    ttft_s: float
    total_s: float
    output_tokens: int | None = None

    def tokens_per_s(self) -> float | None:
        span = self.total_s - self.ttft_s
        return self.output_tokens / span if self.output_tokens and span > 0 else None


def _number(row: dict[str, Any], name: str, where: str) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name}: expected a number of seconds or tokens, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{where}: {name}: expected a finite number of at least 0, got {value!r}")
    return number


def parse_record(row: dict[str, Any], where: str) -> TimingRecord:
    ttft, total, rate, tokens = (_number(row, name, where) for name in FIELDS)
    if ttft is None:
        raise ValueError(f"{where}: ttft_s is required")
    if tokens is not None and tokens != int(tokens):
        raise ValueError(f"{where}: output_tokens: expected a whole number, got {row.get('output_tokens')!r}")
    if total is None:
        if not rate or tokens is None:
            raise ValueError(f"{where}: give total_s, or tokens_per_s (above 0) with output_tokens")
        total = ttft + tokens / rate
    if total < ttft:
        raise ValueError(f"{where}: total_s ({total:g}) is shorter than ttft_s ({ttft:g})")
    return TimingRecord(ttft_s=ttft, total_s=total, output_tokens=None if tokens is None else int(tokens))


def _rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".csv":
            for number, row in enumerate(csv.DictReader(handle), start=2):
                yield f"{path}:{number}", row
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not a JSON object: {exc}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            yield f"{path}:{number}", row


def load_trace(path: Path) -> tuple[TimingRecord, ...]:
    """The file's records; ValueError naming the file, the line and the field when one is wrong."""
    try:
        records = tuple(parse_record(row, where) for where, row in _rows(path))
    except OSError as exc:
        raise ValueError(f"replay file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"replay file {path}: not UTF-8 text ({exc.reason})") from None
    if not records:
        raise ValueError(f"replay file {path}: no records (expected CSV with a header row, or JSONL)")
    return records


def ks_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov D: the largest gap between the two empirical distribution functions."""
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    if not n or not m:
        raise ValueError("ks_distance needs two non-empty samples")
    i = j = 0
    gap = 0.0
    while i < n and j < m:  # one merge pass: both functions stepped past each value, ties together
        value = min(xs[i], ys[j])
        while i < n and xs[i] <= value:
            i += 1
        while j < m and ys[j] <= value:
            j += 1
        gap = max(gap, abs(i / n - j / m))
    return gap


def ks_critical(n: int, m: int) -> float:
    """D beyond which two samples of n and m differ at the 5 % level (large-sample approximation)."""
    return KS_C_05 * math.sqrt((n + m) / (n * m))


def file_measures(records: Sequence[TimingRecord]) -> dict[str, list[float]]:
    rates = [r for r in (record.tokens_per_s() for record in records) if r is not None]
    return {
        "ttft_s": [record.ttft_s for record in records],
        "total_s": [record.total_s for record in records],
        "tokens_per_s": rates,
    }


class Replayer:
    """Hands out the records in turn and keeps what each replayed call really took."""

    def __init__(self, records: tuple[TimingRecord, ...], *, path: str, time_scale: float, seed: int) -> None:
        self.records = records
        self.path = path
        self.time_scale = time_scale
        self._next = 0
        self._file = file_measures(records)
        self.observed = {name: Reservoir(seed=seed + i) for i, name in enumerate(MEASURES)}
        self.used = {name: Reservoir(seed=seed + i) for i, name in enumerate(MEASURES)}

    def next_call(self) -> tuple[TimingRecord, LatencyPlan]:
        record = self.records[self._next % len(self.records)]
        self._next += 1
        scale = self.time_scale
        return record, LatencyPlan(ttft_s=record.ttft_s * scale, total_s=record.total_s * scale)

    def observe(self, record: TimingRecord, *, ttft_s: float | None, total_s: float) -> None:
        """One replayed call that completed: its first delta (streams) and last byte, in wall seconds."""
        scale = self.time_scale
        if scale <= 0:
            return  # nothing to compare at time scale 0: every delay is nil
        self._add("total_s", total_s / scale, record.total_s)
        if ttft_s is None:
            return
        self._add("ttft_s", ttft_s / scale, record.ttft_s)
        rate = record.tokens_per_s()
        if rate is not None and total_s > ttft_s:
            self._add("tokens_per_s", record.output_tokens / ((total_s - ttft_s) / scale), rate)  # type: ignore[operator]

    def _add(self, measure: str, observed: float, used: float) -> None:
        self.observed[measure].add(observed)
        self.used[measure].add(used)

    def reset(self) -> None:
        for reservoir in (*self.observed.values(), *self.used.values()):
            reservoir.clear()

    def snapshot(self) -> dict[str, Any]:
        ks: dict[str, Any] = {}
        for measure in MEASURES:
            observed, reference = self.observed[measure].samples, self._file[measure]
            if not observed or not reference:
                ks[measure] = None
                continue
            ks[measure] = {
                "d": round(ks_distance(observed, reference), 4),
                "critical_05": round(ks_critical(len(observed), len(reference)), 4),
                "n": len(observed),
                "m": len(reference),
                "d_used": round(ks_distance(observed, self.used[measure].samples), 4),
            }
        return {"file": self.path, "records": len(self.records), "replayed": self._next, "ks": ks}
