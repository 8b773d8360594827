"""Raw per-request records: read the Locust processes' files, merge them, cut the measured window.

Window rule (the standard one): a request counts in the window when it *finished* inside it, so the
throughput is completions in the window divided by its length, and the latency percentiles are those of
the requests that completed in it. Selecting by start time instead would, at saturation, keep only the
requests lucky enough to finish before the window closed. Requests that *started* in the window and had
not finished when it closed are counted as ``unfinished`` (never silently dropped). An open-loop arrival
refused by the in-flight cap is a failure with status ``dropped`` at its intended time.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("start", "latency_ms", "ttft_ms", "status", "ok", "n", "lag_ms", "error")


@dataclass(frozen=True, slots=True)
class Record:
    start: float  # wall clock, seconds; the intended send time in open loop
    latency_ms: float | None  # None: never finished (unfinished, dropped)
    ttft_ms: float | None
    status: str
    ok: bool
    n: int = 0
    lag_ms: float | None = None
    error: str = ""

    @property
    def end(self) -> float | None:
        return None if self.latency_ms is None else self.start + self.latency_ms / 1000.0


@dataclass(kw_only=True)
class Window:
    start: float
    end: float
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    dropped: int = 0
    failures_by_status: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # successful completions
    finished_latencies_ms: list[float] = field(default_factory=list)  # successes and failures (Little)
    ttfts_ms: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # chunks / frames / polls of the completions
    lags_ms: list[float] = field(default_factory=list)  # open loop: actual minus intended send time
    completion_times: list[float] = field(default_factory=list)  # wall clock, successful completions

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _float(text: str) -> float | None:
    return float(text) if text else None


def parse_rows(rows: Iterable[dict[str, str]]) -> list[Record]:
    return [
        Record(
            start=float(row["start"]),
            latency_ms=_float(row["latency_ms"]),
            ttft_ms=_float(row["ttft_ms"]),
            status=row["status"],
            ok=row["ok"] == "1",
            n=int(row["n"] or 0),
            lag_ms=_float(row["lag_ms"]),
            error=row.get("error") or "",
        )
        for row in rows
    ]


def read_records(paths: Sequence[Path]) -> list[Record]:
    records: list[Record] = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as handle:  # type: ignore[operator]
            records.extend(parse_rows(csv.DictReader(handle)))
    records.sort(key=lambda r: r.start)
    return records


def write_records(records: Sequence[Record], path: Path) -> None:
    """gzip CSV, same columns as the per-process files (so read_records reads both)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    for r in records:
        writer.writerow(
            [
                f"{r.start:.6f}",
                "" if r.latency_ms is None else f"{r.latency_ms:.3f}",
                "" if r.ttft_ms is None else f"{r.ttft_ms:.3f}",
                r.status,
                1 if r.ok else 0,
                r.n,
                "" if r.lag_ms is None else f"{r.lag_ms:.3f}",
                r.error,
            ]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", compresslevel=6) as handle:
        handle.write(buffer.getvalue())


def cut_window(records: Iterable[Record], start: float, end: float) -> Window:
    window = Window(start=start, end=end)
    failures: Counter[str] = Counter()
    for r in records:
        finish = r.end
        if r.status == "dropped":
            if start <= r.start < end:
                window.dropped += 1
                window.failed += 1
                failures["dropped"] += 1
            continue
        if finish is not None and start <= finish < end:
            window.finished_latencies_ms.append(r.latency_ms)  # type: ignore[arg-type]
            if r.lag_ms is not None:
                window.lags_ms.append(r.lag_ms)
            if r.ok:
                window.completed += 1
                window.latencies_ms.append(r.latency_ms)  # type: ignore[arg-type]
                window.counts.append(r.n)
                window.completion_times.append(finish)
                if r.ttft_ms is not None:
                    window.ttfts_ms.append(r.ttft_ms)
            else:
                window.failed += 1
                failures[r.status] += 1
        elif start <= r.start < end and (finish is None or finish >= end):
            window.unfinished += 1
    window.failures_by_status = dict(sorted(failures.items()))
    return window
