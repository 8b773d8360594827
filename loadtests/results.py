"""The versioned result format: one ``results.json`` per run, pyperf-style.

``results.json`` holds ``version``, ``metadata``, ``variants`` (what was served and how, or why it was
not measured) and ``points`` (one per variant, scenario, load level and repeat). Raw per-request
records sit beside it in ``raw/``. Reading a document of another version is an error, never a guess.
Writes are atomic (temporary file, then rename) so an interrupted sweep never leaves half a file.

``metadata`` keys the sweep writes and the report and compare read:
``started_at``/``finished_at`` (ISO 8601 UTC), ``python``, ``packages`` ({name: version}), ``cpu_count``,
``cpu_model``, ``platform``, ``git_commit``, ``git_dirty``, ``command_line``, ``preset``, ``mock_profile``,
``time_scale``, ``seed``, ``upstream_latency_s`` (the nominal duration of one upstream call after the time
scale, L in every Little's-law ceiling), ``scenarios`` and ``load_models`` (what the run covered).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from loadtests.errors import UserError

FORMAT_VERSION = 1
RESULTS_FILE = "results.json"

LoadModel = Literal["closed", "open"]


class ResultsFormatError(UserError, ValueError):
    """A results file that cannot be read: unreadable, not JSON, another version, or a bad key."""


@dataclass(frozen=True, kw_only=True)
class Percentiles:
    """Exact percentiles (nearest-rank on the sorted raw samples), in milliseconds."""

    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float
    min: float
    count: int


@dataclass(frozen=True, kw_only=True)
class LittlesLaw:
    """Little's law, L = lambda x W: in-flight requests implied by throughput and mean latency."""

    expected_in_flight: float  # users (closed loop) or offered rate x mean latency (open loop)
    measured_in_flight: float  # throughput_rps x mean latency in seconds
    ratio: float  # measured / expected; 1.0 is perfect agreement


@dataclass(frozen=True, kw_only=True)
class CpuUsage:
    """CPU of each party over the measured window, in percent of one core."""

    loadgen_percent: float
    server_percent: float
    mock_percent: float


@dataclass(frozen=True, kw_only=True)
class Point:
    variant: str
    scenario: str
    load_model: LoadModel
    users: int | None  # closed loop
    rate: float | None  # open loop, requests per second offered
    repeat: int  # 0-based repeat index
    warmup_s: float
    duration_s: float  # the measured window
    completed: int  # finished inside the window, successfully
    failed: int  # finished inside the window with an error
    unfinished: int  # started but not finished when the window closed
    failures_by_status: dict[str, int]  # "503": 3, "timeout": 1, ...
    throughput_rps: float  # completed / duration_s
    latency_ms: Percentiles | None
    ttft_ms: Percentiles | None  # time to first chunk/frame, for streams
    upstream_peak_in_flight: int | None  # the mock's ground truth
    upstream_requests: int | None
    predicted_ceiling: int
    littles_law: LittlesLaw | None
    server_cpu_ms_per_request: float | None
    cpu: CpuUsage | None
    valid: bool
    invalid_reasons: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # scenario-specific figures (polls per job, ...)
    raw_file: str | None = None  # relative to the run directory
    # Second wave (optional, so first-wave files still read):
    steady_state: dict[str, Any] | None = None  # the test that ended the warm-up, its figures, the bound
    upstream_latency_s: float | None = None  # L measured in this window: the mock's mean injected delay
    hung: int = 0  # requests open longer than the window and than 1.5 x its slowest answer
    breakdown_ms: dict[str, Any] | None = None  # p50/p95/p99 before, during and after the upstream call
    overhead_ms: Percentiles | None = None  # latency minus the upstream's time, per request
    # Memory (optional too): the server's whole process tree, peak over the window, sampled at least once a
    # second (details in extra["memory"]); and the mock's gauge averaged over the window, so memory can be
    # set against the calls actually in flight rather than the users offered.
    server_rss_mb: float | None = None
    server_uss_mb: float | None = None
    in_flight_mean: float | None = None
    # Third wave: 95 % intervals (loadtests.analysis.intervals). latency_ci_ms: {"p50": [lo, hi], "p95": ...,
    # "p99": ... or null, "effective_n": {...}, "why": {"p99": "71 completions (...): a p99 needs 372"},
    # "method": ...}; throughput_ci_rps: [lo, hi] or null (too few batches).
    latency_ci_ms: dict[str, Any] | None = None
    throughput_ci_rps: list[float] | None = None

    @property
    def load(self) -> float:
        """The load level whichever the model: users (closed) or rate (open)."""
        value = self.users if self.load_model == "closed" else self.rate
        assert value is not None
        return float(value)

    @property
    def key(self) -> tuple[str, str, str, float]:
        """What matches a point across two runs (repeats share a key)."""
        return (self.variant, self.scenario, self.load_model, self.load)


@dataclass(frozen=True, kw_only=True)
class VariantInfo:
    name: str
    framework: str
    server: str
    worker_class: str
    workers: int
    predicted_ceiling: int
    verified: bool
    reason: str | None = None  # why it was not measured, when it was not
    log_file: str | None = None


@dataclass(kw_only=True)
class RunResults:
    metadata: dict[str, Any]
    variants: list[VariantInfo] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    # From ``python -m loadtests capacity``: {"variant", "scenario", "users", "throughput_rps", "bound",
    # "points", ...} per variant and scenario.
    capacity: list[dict[str, Any]] = field(default_factory=list)
    # From ``python -m loadtests faults``: {"variant", "fault_rate", "retries", "goodput_rps", ...,
    # "point": {...}} per variant, retry budget and fault rate.
    faults: list[dict[str, Any]] = field(default_factory=list)
    # From ``python -m loadtests reach``: {"variant", "streams", "held", "first_failure", ..., "point"} per
    # variant and level.
    reach: list[dict[str, Any]] = field(default_factory=list)
    # From ``python -m loadtests cpu``: {"variant", "scenario", "cpu_ms_per_request", "samples",
    # "classified_share", "components", ..., "point"} per variant and scenario (the profiled point, kept
    # here and never in ``points``: the profiler costs CPU too).
    cpu: list[dict[str, Any]] = field(default_factory=list)
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "metadata": self.metadata,
            "variants": [asdict(v) for v in self.variants],
            "points": [asdict(p) for p in self.points],
            "capacity": list(self.capacity),
            "faults": list(self.faults),
            "reach": list(self.reach),
            "cpu": list(self.cpu),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "results") -> RunResults:
        if not isinstance(data, dict):
            raise ResultsFormatError(f"{source}: top level must be a JSON object")
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise ResultsFormatError(
                f"{source}: format version {version!r} is unknown (this harness reads {FORMAT_VERSION})"
            )
        metadata = _require(data, "metadata", dict, source)
        variants = [
            _build(VariantInfo, item, f"{source}: variants[{i}]")
            for i, item in enumerate(_require(data, "variants", list, source))
        ]
        points = [
            _point_from_dict(item, f"{source}: points[{i}]")
            for i, item in enumerate(_require(data, "points", list, source))
        ]
        lists = {}
        for key in ("capacity", "faults", "reach", "cpu"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
                raise ResultsFormatError(f"{source}: key {key!r} must be a list of objects")
            lists[key] = value
        return cls(metadata=metadata, variants=variants, points=points, **lists)

    def save(self, run_dir: Path) -> Path:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / RESULTS_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path


def results_path(run: Path) -> Path:
    """Accept a run directory or a results.json path."""
    return run / RESULTS_FILE if run.is_dir() else run


def load_results(run: Path) -> RunResults:
    path = results_path(run)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultsFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsFormatError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return RunResults.from_dict(data, source=str(path))


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _require(data: dict[str, Any], key: str, kind: type, source: str) -> Any:
    if key not in data:
        raise ResultsFormatError(f"{source}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise ResultsFormatError(f"{source}: key {key!r} must be a {kind.__name__}")
    return value


def _build(cls: type, item: Any, source: str) -> Any:
    if not isinstance(item, dict):
        raise ResultsFormatError(f"{source}: must be a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(item) - names)
    if unknown:
        raise ResultsFormatError(f"{source}: unknown key {unknown[0]!r}")
    try:
        return cls(**item)
    except TypeError as exc:
        missing = sorted(
            f.name
            for f in fields(cls)
            if f.name not in item and f.default is MISSING and f.default_factory is MISSING
        )
        detail = f"missing key {missing[0]!r}" if missing else str(exc)
        raise ResultsFormatError(f"{source}: {detail}") from None


def _point_from_dict(item: Any, source: str) -> Point:
    if not isinstance(item, dict):
        raise ResultsFormatError(f"{source}: must be a JSON object")
    item = dict(item)
    for key, cls in (
        ("latency_ms", Percentiles),
        ("ttft_ms", Percentiles),
        ("littles_law", LittlesLaw),
        ("cpu", CpuUsage),
        ("overhead_ms", Percentiles),
    ):
        if item.get(key) is not None:
            item[key] = _build(cls, item[key], f"{source}.{key}")
    point = _build(Point, item, source)
    if point.load_model not in ("closed", "open"):
        raise ResultsFormatError(f"{source}: load_model must be 'closed' or 'open', not {point.load_model!r}")
    if (point.users if point.load_model == "closed" else point.rate) is None:
        raise ResultsFormatError(
            f"{source}: a {point.load_model}-loop point needs "
            f"{'users' if point.load_model == 'closed' else 'rate'}"
        )
    return point
