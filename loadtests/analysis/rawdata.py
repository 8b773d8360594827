"""Raw per-request records: read the Locust processes' files, merge them, cut the measured window.

Window rule (the standard one): a request counts in the window when it *finished* inside it, so the
throughput is completions in the window divided by its length, and the latency percentiles are those of
the requests that completed in it. Selecting by start time instead would, at saturation, keep only the
requests lucky enough to finish before the window closed. Requests that *started* in the window and had
not finished when it closed are counted as ``unfinished`` (never silently dropped). An open-loop arrival
refused by the in-flight cap is a failure with status ``dropped`` at its intended time.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("start", "latency_ms", "ttft_ms", "status", "ok", "n", "lag_ms", "error", "rid", "mono")


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
    rid: str = ""  # the x-request-id sent (the mock records its upstream call under it)
    mono: float | None = None  # the same start on the system-wide monotonic clock (the mock's clock)

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
    arrivals: int = 0  # requests whose (intended) start fell in the window, dropped ones included
    backlog_start: int = 0  # requests in the system (started, not finished) when the window opened
    backlog_end: int = 0  # ... and when it closed
    hung: int = 0  # open at the window's end for longer than the window and than 1.5 x its slowest answer
    oldest_open_s: float = 0.0  # age at the window's end of the oldest request still open
    joined: list[Record] = field(default_factory=list)  # completions (ok or not) with an id and a clock
    completed_smooth: float = 0.0  # successful completions, counted without whole-completion quantisation

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
            rid=row.get("rid") or "",
            mono=_float(row.get("mono") or ""),
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
                r.rid,
                "" if r.mono is None else f"{r.mono:.6f}",
            ]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", compresslevel=6) as handle:
        handle.write(buffer.getvalue())


def smooth_count(ends: Sequence[float], start: float, end: float) -> float:
    """Successful completions in the window, free of whole-completion quantisation: the least-squares slope
    of the completion count against time over the window's completions (``ends`` sorted, the whole run's),
    times the window's length. Saturated sync workers finish in clusters (flask-sync's four within 80 ms,
    once a period), so a plain count jumps by up to four with where the window's edges fall (30 of 32 was
    seen), and a rate between two completions is off by the part of a cluster an edge cuts (+5 % was seen);
    the slope through every completion is within about 1 % wherever the edges fall. A slope needs
    completions spread over the window: one cluster alone (a window cut short, 4 ends in 50 ms of 1 s)
    would make 80/s of 4/s, so then the plain count stands."""
    inside = ends[bisect.bisect_left(ends, start) : bisect.bisect_left(ends, end)]
    n = len(inside)
    if n < 3 or inside[-1] - inside[0] < 0.5 * (end - start):
        return float(n)
    mean_t = math.fsum(inside) / n
    mean_k = (n - 1) / 2.0
    sxx = math.fsum((t - mean_t) ** 2 for t in inside)
    sxy = math.fsum((t - mean_t) * (k - mean_k) for k, t in enumerate(inside))
    return sxy / sxx * (end - start)


def _open_at(r: Record, t: float) -> bool:
    finish = r.end
    return r.start <= t and (finish is None or finish > t)


def cut_window(records: Iterable[Record], start: float, end: float) -> Window:
    """Count the window's completions, failures and unfinished requests; also its arrivals, the backlog
    at both edges (open-loop steady state) and the requests that hung."""
    records = list(records)
    window = Window(start=start, end=end)
    failures: Counter[str] = Counter()
    for r in records:
        finish = r.end
        if start <= r.start < end:
            window.arrivals += 1
        if r.status != "dropped":
            window.backlog_start += _open_at(r, start)
            window.backlog_end += _open_at(r, end)
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
            if r.rid and r.mono is not None:
                window.joined.append(r)
        elif start <= r.start < end and (finish is None or finish >= end):
            window.unfinished += 1
    # A queued request is as old as the answers ahead of it; one older than every answer the window saw
    # (and than the window itself) is stuck, not queued.
    slowest_s = max(window.finished_latencies_ms, default=0.0) / 1000.0
    limit = max(end - start, 1.5 * slowest_s)
    for r in records:
        if r.status != "dropped" and _open_at(r, end):
            age = end - r.start
            window.oldest_open_s = max(window.oldest_open_s, age)
            if age > limit:
                window.hung += 1
    ends = sorted(e for r in records if r.ok and (e := r.end) is not None)
    window.completed_smooth = smooth_count(ends, start, end) if ends else 0.0
    window.failures_by_status = dict(sorted(failures.items()))
    return window
