"""``python -m loadtests sweep``: measure server variants under load and write ``results/<run>/``.

For each variant (and each mock profile its scenarios need: ``overhead`` runs on the ``instant`` profile) it
starts the mock and the variant as real processes on free loopback ports, verifies the variant against the
server contract, runs every point (``loadtests.driver.pointrun``), and stops everything. ``results.json`` is
rewritten atomically after every point; raw per-request records go to ``raw/``, every process's log to
``logs/``. Ctrl-C stops every process, keeps the finished points and prints how to resume.

Load generation on more than one machine: ``--remote-workers N`` with ``--master-bind`` and
``--server-host`` (see loadtests/README.md); the run directory must be on a shared filesystem.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import shutil
import statistics
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.argtypes import number
from loadtests.driver.capacity import Slo, guess_levels, judge, search, seed_level
from loadtests.driver.interrupts import deferred_interrupts, stop_signals_interrupt
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.pointrun import (
    MEASUREMENT_FAILED,
    PointError,
    PointSpec,
    RemoteWorkers,
    Target,
    Timing,
    failed_point,
    guess_seconds,
    plan_timing,
    run_point,
)
from loadtests.driver.processes import (
    LOOPBACK,
    ManagedProcess,
    ProcessStartError,
    free_port,
    python_module_argv,
)
from loadtests.driver.targets import (
    UPSTREAM_API_KEY,
    RequestTemplate,
    TargetError,
    TargetSpec,
    known_targets,
    load_target,
    register,
)
from loadtests.driver.verify import ContractError, verify_target, verify_variant
from loadtests.errors import OneLineParser, UserError
from loadtests.presets import ALL_SCENARIOS, PRESETS, SweepSettings
from loadtests.results import RESULTS_FILE, Point, RunResults, VariantInfo, load_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOKEN = "bench-local-token"
POINT_OVERHEAD_S = 3.5  # Locust start and stop, merging raw files (for the ETA)
VARIANT_OVERHEAD_S = 6.0  # starting and verifying a variant and its mock (for the ETA)
OPEN_LOOP_CUT_L = 10.0  # an open-loop point whose mean latency rises past this x L is cut short
SETTING_FLAGS = {  # settings key -> the flag that sets it (for messages)
    "variants": "--variants",
    "scenarios": "--scenarios",
    "users": "--users",
    "rates": "--rate",
    "mock_profile": "--mock-profile",
    "time_scale": "--time-scale",
    "duration_s": "--duration",
    "warmup_s": "--warmup",
    "max_warmup_s": "--max-warmup",
    "targets": "--target",
    "repeat": "--repeat",
    "loadgen_processes": "--loadgen-processes",
    "seed": "--seed",
    "max_in_flight": "--max-in-flight",
    "remote_workers": "--remote-workers",
    "master_bind": "--master-bind",
    "master_port": "--master-port",
    "server_host": "--server-host",
    "capacity_scenarios": "--capacity",
}


# ----------------------------------------------------------------------------------------------------------
# Command line


def _csv(kind: type, flag: str) -> Any:
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


def _names(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _names_or_none(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else _names(text)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str) -> float:
    """Seconds from ``30``, ``30s``, ``2m``, ``1.5h`` or ``500ms`` (a bare number is seconds)."""
    cleaned = text.strip().lower()
    number, unit = cleaned, "s"
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if cleaned.endswith(suffix):
            number, unit = cleaned[: -len(suffix)].strip(), suffix
            break
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{flag} takes a duration such as 30, 30s, 2m or 500ms, not {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{flag} must be a positive finite duration, not {text!r}")
    return value


def _duration(flag: str) -> Any:
    return lambda text: parse_duration(text, flag)


def _default_text(key: str, defaults: SweepSettings | None = None) -> str:
    """A setting's default for --help: the command's own (``defaults``), or the default preset's (sweep's
    flags default to the chosen preset's value, so argparse's own default would say None)."""
    value = getattr(defaults or PRESETS["default"], key)
    if isinstance(value, tuple):
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "none"
    elif value is None:
        shown = "detected"
    else:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"(default: {shown})" if defaults else f"(default: the preset's; default preset: {shown})"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m loadtests sweep",
        description="Run load tests against server variants (real processes on loopback) and write "
        "results/<run>/results.json, raw per-request records and logs.",
        epilog="Presets: "
        + "; ".join(
            f"{name}: {', '.join(p.variants)} x {', '.join(p.scenarios)}, users {','.join(map(str, p.users))}"
            + (f", rates {','.join(f'{r:g}' for r in p.rates)}" if p.rates else "")
            + f", time scale {p.time_scale:g}"
            for name, p in PRESETS.items()
        )
        + ". Explicit options win over the preset.",
    )
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), default=None, help="what to measure (default: default)")
    # The old name of --preset; kept so scripts keep working (main prints a note).
    add("--profile", dest="legacy_profile", choices=sorted(PRESETS), default=None, help=argparse.SUPPRESS)
    add(
        "--users",
        type=_csv(int, "--users"),
        help=f"closed-loop levels, e.g. 1,4,16,64, or none {_default_text('users')}",
    )
    add(
        "--rate",
        dest="rates",
        type=_csv(float, "--rate"),
        help=f"open-loop levels in requests/s, e.g. 1,2,4, or none {_default_text('rates')}",
    )
    add(
        "--capacity",
        dest="capacity_scenarios",
        type=_names_or_none,
        metavar="SCENARIOS",
        help="closed-loop scenarios whose capacity under the SLO is searched (loadtests capacity's rules), "
        f"or none {_default_text('capacity_scenarios')}",
    )
    add(
        "--repeat",
        type=number("--repeat", kind=int, above=0, what="positive"),
        help=f"measure each point N times {_default_text('repeat')}",
    )
    add(
        "--max-in-flight",
        type=number("--max-in-flight", kind=int, above=0, what="positive"),
        help=f"open-loop in-flight cap per process {_default_text('max_in_flight')}",
    )
    add_shared_arguments(parser)
    add(
        "--remote-workers",
        type=number("--remote-workers", kind=int, above=0, what="positive"),
        help="Locust workers expected from other hosts, besides --loadgen-processes (default: 0); "
        "see loadtests/README.md, 'Load generation on more than one machine'",
    )
    add("--master-bind", metavar="HOST", help="address the Locust master listens on (default: 127.0.0.1)")
    add(
        "--master-port",
        type=number("--master-port", kind=int, above=0, what="positive"),
        help="its port (default: 5557)",
    )
    add(
        "--server-host",
        metavar="HOST",
        help="address the server under test listens on and is load-tested at (default: 127.0.0.1)",
    )
    add("--resume", type=Path, metavar="DIR", help="finish an interrupted run in DIR (same settings)")
    add("--dry-run", action="store_true", help="print the plan (points, variant runs, time) and exit")
    return parser


def add_shared_arguments(parser: argparse.ArgumentParser, defaults: SweepSettings | None = None) -> None:
    """What to measure and how: the options ``sweep``, ``capacity`` and ``faults`` share (``defaults``: the
    command's own settings when it has no --preset, for --help)."""
    add = parser.add_argument

    def _preset_default(key: str) -> str:
        return _default_text(key, defaults)

    add(
        "--variants",
        type=_names,
        help=f"comma-separated variant names, or 'all' {_preset_default('variants')}",
    )
    add(
        "--scenarios",
        type=_names,
        help=f"comma-separated, from {','.join(ALL_SCENARIOS)}, or 'all' {_preset_default('scenarios')}",
    )
    add(
        "--mock-profile",
        help="mock latency profile (article, haiku, sonnet, opus, instant) "
        + _preset_default("mock_profile"),
    )
    add(
        "--time-scale",
        type=number("--time-scale", kind=float, above=0, what="positive"),
        help=f"mock time scale (article: L = 2 s x this) {_preset_default('time_scale')}",
    )
    add(
        "--duration",
        dest="duration_s",
        type=_duration("--duration"),
        help="measured time per point, at least, e.g. 5s or 2m (the window grows to 30 completions) "
        + _preset_default("duration_s"),
    )
    add(
        "--warmup",
        dest="warmup_s",
        type=_duration("--warmup"),
        help="fixed warm-up, e.g. 10s (default: detected from the data, see --max-warmup)",
    )
    add(
        "--max-warmup",
        dest="max_warmup_s",
        type=_duration("--max-warmup"),
        help="bound on a detected warm-up, e.g. 90s; a point that has not settled by then is invalid "
        "(default: max(60 s, 150 x L))",
    )
    add(
        "--loadgen-processes",
        type=number("--loadgen-processes", kind=int, above=0, what="positive"),
        help=f"Locust worker processes {_preset_default('loadgen_processes')}",
    )
    add(
        "--target",
        dest="targets",
        action="append",
        metavar="FILE",
        help="your own app, from a target file (TOML; repeatable; mixes with --variants)",
    )
    add("--seed", type=int, help=f"seed for the mock, payloads and arrivals {_preset_default('seed')}")
    add("--out", type=Path, help="run directory (default: results/<UTC timestamp>/, results/latest links it)")


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    values = {key: getattr(args, key) for key in SETTING_FLAGS if getattr(args, key, None) is not None}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def target_metadata(settings: SweepSettings) -> dict[str, dict[str, str | None]]:
    """Each target file the run measures: the file as given and a hash of its content."""
    known = _known_variants()
    return {
        name: {"file": known[name].source, "sha256": known[name].sha256}
        for name in settings.variants
        if not known[name].builtin
    }


def check_target_hashes(results: RunResults) -> None:
    """--resume: a target file that changed since the run started would measure another app."""
    stored = results.metadata.get("targets") or {}
    known = _known_variants()
    for name, info in stored.items():
        now = known.get(name)
        if now is None or now.sha256 != info.get("sha256"):
            raise UserError(
                f"--resume: target {name} ({info.get('file')}) changed since the run started; "
                "start a new run instead"
            )


def _known_variants() -> dict[str, TargetSpec]:
    """Every target this process knows: the built-in variants and the files given with --target."""
    try:
        return known_targets()
    except ImportError as exc:  # pragma: no cover - the package ships with the harness
        raise UserError(f"cannot import the server variants ({exc}); is the project installed?") from None


def load_target_files(paths: Sequence[str]) -> list[str]:
    """Read and register each --target file; their names, in order."""
    names = []
    for path in paths:
        try:
            spec = load_target(Path(path))
            register(spec)
        except TargetError as exc:
            raise UserError(f"--target: {exc}") from None
        names.append(spec.name)
    return names


def with_targets(settings: SweepSettings, explicit: dict[str, Any]) -> SweepSettings:
    """--target adds its apps to the selection; alone (no --variants), it is the selection."""
    if not settings.targets:
        return settings
    names = load_target_files(settings.targets)
    given = explicit.get("variants")
    variants = tuple(dict.fromkeys([*(given or ()), *names])) if given is not None else tuple(names)
    return settings.with_overrides({"variants": variants})


def supports(variant: str, scenario: str) -> bool:
    """A built-in variant serves every scenario; your own app, the ones its target file names."""
    return _known_variants()[variant].supports(scenario)


def _known_profiles() -> tuple[str, ...]:
    from mock_llm.profiles import PROFILES

    return tuple(PROFILES)


_NUMBERS = {
    "users": (int, True),
    "rates": (float, True),
    "time_scale": (float, False),
    "duration_s": (float, False),
    "warmup_s": (float, False),
    "repeat": (int, False),
    "loadgen_processes": (int, False),
    "max_in_flight": (int, False),
}


def _positive_number(item: object, kind: type) -> bool:
    """A positive finite number, whole when ``kind`` is int (a bool is not a number here)."""
    if not isinstance(item, int | float) or isinstance(item, bool):
        return False
    return math.isfinite(item) and item > 0 and (kind is float or float(item).is_integer())


def check_numbers(settings: SweepSettings) -> SweepSettings:
    """What the flags' parsers guarantee, for settings that come from a file (``--resume``)."""
    for key, (kind, many) in _NUMBERS.items():
        value = getattr(settings, key)
        if value is None and key == "warmup_s":
            continue
        for item in value if many else (value,):
            if not _positive_number(item, kind):
                raise UserError(f"{SETTING_FLAGS[key]}: {item!r} is not a positive finite {kind.__name__}")
    for key, kind in (("scenario_users", int), ("scenario_rates", float)):
        for scenario, levels in getattr(settings, key).items():
            for item in levels:
                if not _positive_number(item, kind):
                    raise UserError(f"{key} of {scenario}: {item!r} is not a positive finite {kind.__name__}")
    for key, minimum in (("capacity_max_points", 2), ("capacity_max_users", 1)):
        value = getattr(settings, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise UserError(f"{key}: {value!r} is not a whole number of at least {minimum}")
    if not isinstance(settings.seed, int):
        raise UserError(f"--seed: {settings.seed!r} is not an integer")
    return settings


def validate(settings: SweepSettings) -> SweepSettings:
    variants = _known_variants()
    chosen = tuple(variants) if settings.variants == ("all",) else settings.variants
    for name in chosen:
        if name not in variants:
            raise UserError(f"--variants: unknown variant {name!r}; choose from {', '.join(variants)}")
    scenarios = ALL_SCENARIOS if settings.scenarios == ("all",) else settings.scenarios
    for name in scenarios:
        if name not in ALL_SCENARIOS:
            raise UserError(f"--scenarios: unknown scenario {name!r}; choose from {', '.join(ALL_SCENARIOS)}")
    if not chosen:
        raise UserError("--variants: name at least one variant")
    if not scenarios:
        raise UserError("--scenarios: name at least one scenario")
    if settings.mock_profile not in _known_profiles():
        raise UserError(
            f"--mock-profile: unknown profile {settings.mock_profile!r}; "
            f"choose from {', '.join(_known_profiles())}"
        )
    for name in settings.capacity_scenarios:
        if name not in ALL_SCENARIOS:
            raise UserError(f"--capacity: unknown scenario {name!r}; choose from {', '.join(ALL_SCENARIOS)}")
        if name == "overhead":
            raise UserError(
                "--capacity: overhead has no upstream wait (L = 0), so an SLO in units of L is empty"
            )
    unknown = sorted((set(settings.scenario_users) | set(settings.scenario_rates)) - set(ALL_SCENARIOS))
    if unknown:
        raise UserError(f"per-scenario levels name unknown scenario(s) {', '.join(unknown)}")
    # A preset's capacity search of a scenario the command line left out is dropped, not an error.
    capacity = tuple(c for c in settings.capacity_scenarios if c in scenarios)
    if not any(settings.users_for(s) or settings.rates_for(s) or s in capacity for s in scenarios):
        raise UserError("give --users (closed loop) or --rate (open loop), or both")
    for name in chosen:
        spec = variants[name]
        if spec.builtin and not any(spec.supports(s) for s in scenarios):
            raise UserError(
                f"--scenarios: variant {name} cannot serve {', '.join(scenarios)}: "
                + "; ".join(spec.unsupported.get(s, "") for s in scenarios)
            )
        if not any(spec.supports(s) for s in scenarios):
            raise UserError(
                f"--scenarios: target {name} ({spec.source}) has no scenario among {', '.join(scenarios)}; "
                f"its file has {', '.join(spec.scenarios)}"
            )
    check_hosts(settings)
    return settings.with_overrides(
        {"variants": chosen, "scenarios": scenarios, "capacity_scenarios": capacity}
    )


def check_hosts(settings: SweepSettings) -> None:
    """Workers on other hosts need a master and a server they can reach, and a server reachable beyond
    loopback needs tokens of your own (the servers refuse the public default there)."""
    from servers.cli import is_loopback as _is_loopback  # the servers' own rule, so the two agree

    if settings.remote_workers:
        if _is_loopback(settings.master_bind):
            raise UserError(
                "--remote-workers: other hosts cannot reach a master on loopback; give --master-bind"
            )
        if _is_loopback(settings.server_host):
            raise UserError(
                "--remote-workers: other hosts cannot reach a server on loopback; give --server-host"
            )
    if not _is_loopback(settings.server_host) and not os.environ.get("BENCH_API_TOKENS", "").strip():
        raise UserError(
            f"--server-host {settings.server_host}: set BENCH_API_TOKENS to tokens of your own first "
            "(the public default token is refused beyond loopback)"
        )


# ----------------------------------------------------------------------------------------------------------
# Planning


def upstream_latency_s(profile_name: str, time_scale: float) -> float:
    """Nominal duration L of one upstream call: exact for fixed profiles; for rate-based ones the median
    TTFT plus a typical answer's generation time (the TTFT alone would be 3-8 times too short, and every
    warm-up, window and ceiling is sized from L)."""
    from mock_llm.profiles import get_profile

    return get_profile(profile_name).nominal_total_s() * time_scale


def mock_profile_for(scenario: str, settings: SweepSettings) -> str:
    return "instant" if scenario == "overhead" else settings.mock_profile


def plan_points(settings: SweepSettings) -> list[PointSpec]:
    specs: list[PointSpec] = []
    for variant in settings.variants:
        for scenario in settings.scenarios:
            if not supports(variant, scenario):
                continue  # a target file without that scenario: recorded as unsupported, not as failed
            for users in settings.users_for(scenario):
                for repeat in range(settings.repeat):
                    specs.append(
                        PointSpec(
                            variant=variant,
                            scenario=scenario,
                            load_model="closed",
                            users=users,
                            rate=None,
                            repeat=repeat,
                        )
                    )
            for rate in settings.rates_for(scenario):
                for repeat in range(settings.repeat):
                    specs.append(
                        PointSpec(
                            variant=variant,
                            scenario=scenario,
                            load_model="open",
                            users=None,
                            rate=rate,
                            repeat=repeat,
                        )
                    )
    return specs


def point_key(point: Point) -> tuple[str, str, str, float, int]:
    """A finished point's identity in the plan: ``Point.key`` plus the repeat (as ``PointSpec.key``)."""
    return (*point.key, point.repeat)


@dataclass(kw_only=True)
class Group:
    """Points that share one started variant and mock."""

    variant: str
    mock_profile: str
    specs: list[PointSpec] = field(default_factory=list)
    mock_args: tuple[str, ...] = ()  # more mock options (the faults command's --error-rate, --errors)
    server_env: dict[str, str] = field(default_factory=dict)  # more server settings (BENCH_*)
    label: str = ""  # tells this group's logs from another's of the same variant
    capacity: list[str] = field(default_factory=list)  # scenarios whose capacity is searched, after specs


def capacity_todo(settings: SweepSettings, results: RunResults | None = None) -> list[tuple[str, str]]:
    """(variant, scenario) pairs whose capacity search is still to run (a finished one is in results)."""
    done = {(e.get("variant"), e.get("scenario")) for e in (results.capacity if results else [])}
    return [
        (variant, scenario)
        for variant in settings.variants
        for scenario in settings.capacity_scenarios
        if scenario in settings.scenarios and supports(variant, scenario) and (variant, scenario) not in done
    ]


def group_points(
    specs: Sequence[PointSpec], settings: SweepSettings, capacity: Sequence[tuple[str, str]] = ()
) -> list[Group]:
    groups: dict[tuple[str, str], Group] = {}
    for spec in specs:
        profile = mock_profile_for(spec.scenario, settings)
        groups.setdefault((spec.variant, profile), Group(variant=spec.variant, mock_profile=profile))
        groups[(spec.variant, profile)].specs.append(spec)
    for variant, scenario in capacity:
        profile = mock_profile_for(scenario, settings)
        groups.setdefault((variant, profile), Group(variant=variant, mock_profile=profile))
        groups[(variant, profile)].capacity.append(scenario)
    order = {name: index for index, name in enumerate(settings.variants)}
    # sorted() is stable: a variant's groups keep their order (the upstream mock first, then instant)
    return sorted(groups.values(), key=lambda g: order.get(g.variant, len(order)))


def timing_for(spec: PointSpec, settings: SweepSettings) -> Timing:
    latency = upstream_latency_s(mock_profile_for(spec.scenario, settings), settings.time_scale)
    return plan_timing(
        latency_s=latency,
        duration_s=settings.duration_s,
        warmup_s=settings.warmup_s,
        max_warmup_s=settings.max_warmup_s,
    )


def point_guess_s(spec: PointSpec, settings: SweepSettings) -> float:
    """For the ETA only: the predicted ceiling seeds a guess of how long the warm-up will take."""
    ceiling = _known_variants()[spec.variant].predicted_ceiling
    return guess_seconds(spec, timing_for(spec, settings), ceiling=ceiling) + POINT_OVERHEAD_S


def capacity_guess(variant: str, scenario: str, settings: SweepSettings) -> list[PointSpec]:
    """For the ETA only: the levels a capacity search would measure if the predicted ceiling held (a
    fixed closed-loop level of the same scenario is measured once, by the sweep, and reused)."""
    levels = guess_levels(
        _known_variants()[variant].predicted_ceiling,
        max_users=settings.capacity_max_users,
        max_points=settings.capacity_max_points,
    )
    fixed = set(settings.users_for(scenario))
    return [
        PointSpec(variant=variant, scenario=scenario, load_model="closed", users=u, rate=None, repeat=0)
        for u in levels
        if u not in fixed
    ]


def group_guess_s(group: Group, settings: SweepSettings) -> float:
    searched = [spec for c in group.capacity for spec in capacity_guess(group.variant, c, settings)]
    return sum(point_guess_s(s, settings) for s in [*group.specs, *searched])


def estimate_seconds(groups: Sequence[Group], settings: SweepSettings) -> float:
    return sum(VARIANT_OVERHEAD_S + group_guess_s(g, settings) for g in groups)


# ----------------------------------------------------------------------------------------------------------
# Run directory, resume


def default_run_dir() -> Path:
    return Path("results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def link_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name, target_is_directory=True)


def lock_run_dir(run_dir: Path) -> int:
    """An exclusive lock on the run directory itself (no lock file left behind), held until exit: a
    second sweep on the same directory would interleave its points and overwrite results.json."""
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"{run_dir} is in use by another sweep; wait for it to end or choose another --out"
        ) from None
    return fd


def resume_settings(run_dir: Path, explicit: dict[str, Any]) -> tuple[RunResults, SweepSettings]:
    if not (run_dir / RESULTS_FILE).exists():
        raise UserError(f"--resume: {run_dir} has no {RESULTS_FILE} to resume")
    results = load_results(run_dir)
    stored = results.metadata.get("sweep_settings")
    if not isinstance(stored, dict):
        raise UserError(f"--resume: {run_dir / RESULTS_FILE} was not written by a sweep (no sweep_settings)")
    try:
        settings = check_numbers(SweepSettings.from_dict(stored))
        load_target_files(settings.targets)
        settings = validate(settings)
    except (UserError, TypeError, ValueError) as exc:
        raise UserError(
            f"--resume: {run_dir / RESULTS_FILE} holds sweep settings that are not valid: {exc}"
        ) from None
    explicit_settings = settings.with_overrides(explicit)
    differs = [
        f"{SETTING_FLAGS[key]} (run has {_show(getattr(settings, key))}, "
        f"given {_show(getattr(explicit_settings, key))})"
        for key in explicit
        if getattr(explicit_settings, key) != getattr(settings, key)
    ]
    if differs:
        raise UserError("--resume needs the run's own settings; these differ: " + "; ".join(differs))
    return results, settings


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


# ----------------------------------------------------------------------------------------------------------
# Processes


def _server_env(run_dir: Path, variant: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BENCH_API_TOKENS", DEFAULT_TOKEN)
    # A limit no load reaches: every variant still runs the limiter's check (one small SQLite write per
    # request, identical for all), as a deployed API would, but no request is ever refused by it.
    env["BENCH_RATE_LIMIT"] = "1000000/minute"
    jobs_dir = run_dir / "tmp"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    env["BENCH_JOB_DB"] = str((jobs_dir / f"{variant}-jobs.db").resolve())
    return env


def bench_token() -> str:
    return (os.environ.get("BENCH_API_TOKENS") or DEFAULT_TOKEN).split(",")[0].strip()


class VariantSession:
    """The mock and the variant for one group of points, on free loopback ports.

    Between points the server must be idle: a point that saturated it (flask-sync at 128 users holds a
    backlog of 31 upstream periods) would otherwise serve the previous point's abandoned requests during the
    next one. :meth:`settle` waits for the mock to see nothing in flight; when that does not happen soon,
    the variant is restarted (and the next point says so in ``extra``).
    """

    def __init__(self, group: Group, settings: SweepSettings, run_dir: Path) -> None:
        self.group = group
        self.settings = settings
        self.run_dir = run_dir
        logs = run_dir / "logs"
        suffix = "" if group.mock_profile == settings.mock_profile else f"-{group.mock_profile}"
        suffix += f"-{group.label}" if group.label else ""
        self.server_log = logs / f"{group.variant}{suffix}.server.log"
        mock_port = free_port()
        self.mock_url = f"http://{LOOPBACK}:{mock_port}"
        self.mock = ManagedProcess(
            f"mock for {group.variant}",
            python_module_argv(
                "mock_llm",
                "--host",
                LOOPBACK,
                "--port",
                str(mock_port),
                "--profile",
                group.mock_profile,
                "--time-scale",
                f"{settings.time_scale:g}",
                "--seed",
                str(settings.seed),
                *group.mock_args,
            ),
            log_path=logs / f"{group.variant}{suffix}.mock.log",
            ready_url=f"{self.mock_url}/health",
        )
        self.server: ManagedProcess | None = None
        self.url = ""

    def __enter__(self) -> VariantSession:
        try:
            self.mock.start(ready_timeout=30.0)
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _placeholders(self, port: int) -> dict[str, str]:
        return {
            "host": self.settings.server_host,
            "port": str(port),
            "token": bench_token(),
            "upstream": self.mock_url,
        }

    def _start_server(self) -> None:
        port = free_port(self.settings.server_host)
        self.url = f"http://{self.settings.server_host}:{port}"
        self._values = self._placeholders(port)
        spec = self.spec()
        if not spec.builtin:
            self._start_target(spec)
            return
        self.server = ManagedProcess(
            f"variant {self.group.variant}",
            python_module_argv(
                "servers",
                "run",
                self.group.variant,
                "--host",
                self.settings.server_host,
                "--port",
                str(port),
                "--upstream",
                self.mock_url,
            ),
            log_path=self.server_log,
            ready_url=f"{self.url}/health",
            env={**_server_env(self.run_dir, self.group.variant), **self.group.server_env},
        )
        self.server.start(ready_timeout=60.0)

    def _start_target(self, spec: TargetSpec) -> None:
        """Your own app: its command in its directory, its SDK pointed at the mock by the environment."""
        env = {
            **_server_env(self.run_dir, self.group.variant),
            **spec.environment(self._values),
            **self.group.server_env,
            "ANTHROPIC_BASE_URL": self.mock_url,
            "ANTHROPIC_API_KEY": UPSTREAM_API_KEY,
            **self._target_env_extra(),
        }
        self.server = ManagedProcess(
            f"target {spec.name}",
            spec.argv(self._values),
            log_path=self.server_log,
            ready_url=f"{self.url}{spec.health}",
            env=env,
            cwd=spec.cwd,
        )
        self.server.start(ready_timeout=spec.startup_timeout_s)

    def _target_env_extra(self) -> dict[str, str]:
        """More environment for your own app (the gate puts its revision's tree on the import path)."""
        return {}

    def verify(self, scenarios: Sequence[str]) -> None:
        """The contract before measuring (raise ContractError): the server contract for a built-in
        variant, the target file's own for your app."""
        spec = self.spec()
        if spec.builtin:
            verify_variant(self.url, variant=spec.name, token=bench_token(), scenarios=list(scenarios))
            return
        requests = {s: self._template(spec, s).render(self._values) for s in dict.fromkeys(scenarios)}
        verify_target(self.url, name=spec.name, health=spec.health, requests=requests)

    def request_for(self, scenario: str) -> dict[str, Any] | None:
        """Your own app's request for ``scenario``, placeholders filled; None for a built-in variant."""
        spec = self.spec()
        if spec.builtin:
            return None
        return self._template(spec, scenario).render(self._values)

    @staticmethod
    def _template(spec: TargetSpec, scenario: str) -> RequestTemplate:
        template = spec.template_for(scenario)
        if template is None:  # plan_points skips what a target lacks; this would be a planning bug
            raise ContractError(f"target {spec.name} has no request for scenario {scenario!r}")
        return template

    def spec(self) -> TargetSpec:
        """What this session starts and sends: the registry's entry (the gate gives each side its own)."""
        return _known_variants()[self.group.variant]

    def restart_server(self) -> None:
        with deferred_interrupts():
            if self.server is not None:
                self.server.stop()
        self._start_server()

    def in_flight(self) -> int:
        with urllib.request.urlopen(f"{self.mock_url}/mock/stats", timeout=10) as response:
            return int(json.loads(response.read())["in_flight"])

    def settle(self, *, timeout_s: float, quiet_s: float = 0.25) -> bool:
        """True once the mock has seen nothing in flight for ``quiet_s``; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        idle_since: float | None = None
        while time.monotonic() < deadline:
            try:
                busy = self.in_flight()
            except OSError:  # a mock that does not answer is not settled; the point records why
                return False
            if busy == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= quiet_s:
                    return True
            else:
                idle_since = None
            time.sleep(0.05)
        return False

    def target(self, *, ceiling: int, latency_s: float, scenario: str | None = None) -> Target:
        assert self.server is not None
        return Target(
            request=None if scenario is None else self.request_for(scenario),
            url=self.url,
            mock_url=self.mock_url,
            server_pid=self.server.pid,
            mock_pid=self.mock.pid,
            ceiling=ceiling,
            latency_s=latency_s,
            token=bench_token(),
        )

    def stop(self) -> None:
        with deferred_interrupts():
            if self.server is not None:
                self.server.stop()
            self.mock.stop()


# ----------------------------------------------------------------------------------------------------------
# The sweep


def _variant_info(
    name: str,
    *,
    verified: bool,
    reason: str | None,
    log_file: str | None,
    scenarios: Sequence[str] = (),
) -> VariantInfo:
    """``scenarios``: the run's; those a verified variant cannot serve are named as its reason."""
    v = _known_variants()[name]
    if verified and reason is None:
        reason = v.unsupported_note(scenarios)
    return VariantInfo(
        name=name,
        framework=v.framework,
        server=v.server,
        worker_class=v.worker_class,
        workers=v.workers,
        predicted_ceiling=v.predicted_ceiling,
        verified=verified,
        reason=reason,
        log_file=log_file,
    )


def _set_variant(results: RunResults, info: VariantInfo) -> None:
    results.variants = [v for v in results.variants if v.name != info.name] + [info]


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return path.name


def make_dirs(*paths: Path) -> None:
    """Create run directories, or say in one line why not (a typo in --out is not a traceback)."""
    for path in paths:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out: cannot create {path}: {exc.strerror or exc}") from None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.legacy_profile is not None:
        if args.preset not in (None, args.legacy_profile):
            raise UserError("--profile is the old name of --preset; give one of them")
        print("note: --profile is now --preset (the old name still works)", file=sys.stderr)
        args.preset = args.legacy_profile
    explicit = _explicit(args)
    if args.dry_run:
        return dry_run(args, explicit)
    if args.resume is not None:
        if args.preset is not None or args.out is not None:
            raise UserError("--resume takes the run's own settings and directory; drop --preset and --out")
        run_dir = args.resume
        results, settings = resume_settings(run_dir, explicit)
        check_target_hashes(results)
        lock = lock_run_dir(run_dir)
        preset = results.metadata.get("preset")
        results.metadata.setdefault("resumed_at", []).append(utc_now())
    else:
        preset = args.preset or "default"
        settings = PRESETS[preset].with_overrides(explicit)
        settings = validate(with_targets(settings, explicit))
        run_dir = args.out if args.out is not None else default_run_dir()
        make_dirs(run_dir)
        lock = lock_run_dir(run_dir)
        if (run_dir / RESULTS_FILE).exists():
            raise UserError(f"--out: {run_dir} already holds a run; use --resume {run_dir} or another --out")
        if args.out is None:
            link_latest(run_dir)
        load_models = [m for m, levels in (("closed", settings.users), ("open", settings.rates)) if levels]
        metadata = collect_all(
            argv=argv,
            repo=REPO,
            preset=preset,
            mock_profile=settings.mock_profile,
            time_scale=settings.time_scale,
            seed=settings.seed,
            upstream_latency_s=round(upstream_latency_s(settings.mock_profile, settings.time_scale), 6),
            scenarios=settings.scenarios,
            load_models=load_models,
            started_at=utc_now(),
            extra={"sweep_settings": settings.to_dict(), "targets": target_metadata(settings)},
        )
        results = RunResults(metadata=metadata)
    for sub in ("raw", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    results.save(run_dir)
    try:
        return Sweep(
            settings=settings, run_dir=run_dir, results=results, resumed=args.resume is not None
        ).run()
    finally:
        os.close(lock)


def dry_run(args: argparse.Namespace, explicit: dict[str, Any]) -> int:
    """--dry-run: what the sweep would measure and about how long, without starting anything."""
    if args.resume is not None:
        results, settings = resume_settings(args.resume, explicit)
        done = {point_key(p) for p in results.points if not p.extra.get(MEASUREMENT_FAILED)}
    else:
        settings = validate(
            with_targets(PRESETS[args.preset or "default"].with_overrides(explicit), explicit)
        )
        done = set()
    todo = [s for s in plan_points(settings) if s.key not in done]
    searches = capacity_todo(settings, results if args.resume is not None else None)
    groups = group_points(todo, settings, searches)
    for group in groups:
        loads = [
            f"{s.scenario} {s.users} u" if s.load_model == "closed" else f"{s.scenario} {s.rate:g} rps"
            for s in group.specs
        ]
        loads += [f"{c} capacity search (<= {settings.capacity_max_points} levels)" for c in group.capacity]
        print(f"  {group.variant} (mock {group.mock_profile}): {', '.join(loads)}")
    estimate = estimate_seconds(groups, settings)
    searched = f" and {len(searches)} capacity searches" if searches else ""
    print(
        f"plan: {len(todo)} points{searched} over {len(groups)} variant runs, about {estimate / 60:.1f} min "
        "(nothing run)"
    )
    return 0


@dataclass(kw_only=True)
class Sweep:
    settings: SweepSettings
    run_dir: Path
    results: RunResults
    resumed: bool = False

    def save(self) -> None:
        record_measured_latency(self.results)
        self.results.save(self.run_dir)

    def run(self) -> int:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # a log file or CI: room for the whole summary table
            console = Console(width=170)
        # A point whose measurement broke is measured again; its stale copy is replaced.
        self.results.points = [p for p in self.results.points if not p.extra.get(MEASUREMENT_FAILED)]
        done = {point_key(p) for p in self.results.points}
        todo = [s for s in plan_points(self.settings) if s.key not in done]
        searches = capacity_todo(self.settings, self.results)
        groups = group_points(todo, self.settings, searches)
        total_points = len(todo) + sum(
            len(capacity_guess(v, c, self.settings)) for v, c in searches
        )  # searched levels are guessed, so the count is about
        if self.resumed:
            console.print(f"resuming {self.run_dir}: {len(done)} points done, {total_points} to go")
        estimate = estimate_seconds(groups, self.settings)
        searched = f" (with {len(searches)} capacity searches)" if searches else ""
        console.print(
            f"sweep: about {total_points} points{searched} over {len(groups)} variant runs, about "
            f"{estimate / 60:.1f} min; writing {self.run_dir / RESULTS_FILE}"
        )
        if self.settings.remote_workers:
            remote = RemoteWorkers(
                count=self.settings.remote_workers,
                bind=self.settings.master_bind,
                port=self.settings.master_port,
            )
            total = self.settings.loadgen_processes + remote.count
            console.print(
                f"remote workers: {remote.count} expected at every point, with {self.run_dir.resolve()} at "
                f"the same path on their hosts (a shared filesystem); on each, run again after every point:\n"
                f"  {remote.worker_command(total)}",
                soft_wrap=True,
            )
        for name in self.settings.variants:
            note = _known_variants()[name].unsupported_note(self.settings.scenarios)
            if note is not None:  # skipped, not failed: the variant table says so too
                console.print(f"{name}: {note}")
        started = time.monotonic()
        try:
            with stop_signals_interrupt():
                self._run_groups(groups, total_points, estimate, console)
        except KeyboardInterrupt:
            self.save()
            kept = len(self.results.points)
            console.print(
                f"[yellow]interrupted[/]: every process stopped; {kept} finished points kept in "
                f"{self.run_dir / RESULTS_FILE}.\n"
                f"resume with: python -m loadtests sweep --resume {self.run_dir}"
            )
            return 130
        finally:
            # Working files (per-point Locust output, the variants' job databases); every process is stopped.
            shutil.rmtree(self.run_dir / "tmp", ignore_errors=True)
        self.results.metadata["finished_at"] = utc_now()
        self.results.metadata["wall_time_s"] = round(time.monotonic() - started, 1)
        self.save()
        print_summary(self.results, console)
        console.print(
            f"results: {self.run_dir / RESULTS_FILE}  (wall time {time.monotonic() - started:.0f} s)"
        )
        # A variant that could not be measured fails the run (CI must notice), after everything else ran;
        # so does a run with no valid point: there is nothing to believe in it.
        if not any(p.valid for p in self.results.points):
            why = "every point broke a validity rule" if self.results.points else "nothing was measured"
            console.print(f"[red]no valid point[/]: {why}; see the table above")
            return 1
        return 1 if any(not v.verified for v in self.results.variants) else 0

    def _run_groups(self, groups: Sequence[Group], total_points: int, estimate: float, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done]}/{task.fields[points]} points"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        points_done = 0
        with progress:
            task = progress.add_task("starting", total=max(estimate, 1.0), done=0, points=total_points)
            for group in groups:
                progress.update(task, description=f"starting {group.variant} (mock {group.mock_profile})")
                try:
                    with VariantSession(group, self.settings, self.run_dir) as session:
                        log_file = _relative(session.server_log, self.run_dir)
                        session.verify([*(s.scenario for s in group.specs), *group.capacity])
                        _set_variant(
                            self.results,
                            _variant_info(
                                group.variant,
                                verified=True,
                                reason=None,
                                log_file=log_file,
                                scenarios=self.settings.scenarios,
                            ),
                        )
                        self.save()
                        progress.advance(task, VARIANT_OVERHEAD_S)
                        for spec in group.specs:
                            progress.update(task, description=f"{spec.label()}")
                            point = measure_point(session, spec, self.settings, self.run_dir)
                            self.results.points.append(point)
                            self.save()
                            points_done += 1
                            progress.update(task, done=points_done)
                            progress.advance(task, point_guess_s(spec, self.settings))
                            status = (
                                "ok"
                                if point.valid
                                else "[red]invalid[/]: " + "; ".join(point.invalid_reasons)
                            )
                            progress.console.print(f"  {spec.label()}: {_figures(point)} — {status}")
                        for scenario in group.capacity:
                            points_done = self._search(session, scenario, progress, task, points_done)
                except (ProcessStartError, ContractError) as exc:
                    log = self.run_dir / "logs" / f"{group.variant}.server.log"
                    reason = str(exc)
                    shown = (
                        reason if isinstance(exc, ProcessStartError) else f"variant {group.variant}: {reason}"
                    )
                    progress.console.print(f"[red]error[/]: {shown}")
                    if isinstance(exc, ContractError):
                        progress.console.print(f"  (its log: {log})")
                    _set_variant(
                        self.results,
                        _variant_info(
                            group.variant,
                            verified=False,
                            reason=_strip_paths(reason, self.run_dir),
                            log_file=_relative(log, self.run_dir),
                        ),
                    )
                    self.save()
                    progress.advance(task, VARIANT_OVERHEAD_S + group_guess_s(group, self.settings))

    def _search(self, session: VariantSession, scenario: str, progress: Any, task: Any, done: int) -> int:
        """One capacity search in this variant's session (loadtests.driver.capacity's rules and SLO)."""
        variant = session.group.variant
        slo = Slo()
        big_l = upstream_latency_s(self.settings.mock_profile, self.settings.time_scale)
        # Every closed-loop point of this variant and scenario is a level the search need not measure
        # again: its own from an interrupted run, and the sweep's fixed points (measured in full).
        prior = [
            p
            for p in self.results.points
            if p.variant == variant and p.scenario == scenario and p.load_model == "closed"
        ]
        guessed = capacity_guess(variant, scenario, self.settings)

        def on_point(point: Point) -> None:
            nonlocal done
            self.results.points.append(point)
            self.save()
            done += 1
            progress.update(task, done=done)
            if guessed:  # the ETA's guess of this search, one level at a time
                progress.advance(task, point_guess_s(guessed.pop(0), self.settings))
            judged = judge(point, slo, point.upstream_latency_s or big_l)
            verdict = "meets the SLO" if judged.passed else f"fails the SLO ({judged.why})"
            progress.console.print(
                f"  {variant} {scenario} capacity search, {point.users} u: {_figures(point)} — {verdict}"
            )

        progress.update(task, description=f"{variant} {scenario} capacity search")
        entry = search_in_session(
            session,
            scenario,
            self.settings,
            self.run_dir,
            slo=slo,
            nominal_latency_s=big_l,
            max_users=self.settings.capacity_max_users,
            max_points=self.settings.capacity_max_points,
            on_point=on_point,
            prior=prior,
        )
        self.results.capacity.append(entry)
        self.save()
        for spec in guessed:  # levels the guess had and the search did not need
            progress.advance(task, point_guess_s(spec, self.settings))
        progress.console.print(
            f"  {variant} {scenario}: capacity {entry['users']} users ({entry['throughput_rps']} rps), "
            f"bound {entry['bound']}, {entry['points']} levels"
        )
        return done


def search_in_session(
    session: VariantSession,
    scenario: str,
    settings: SweepSettings,
    run_dir: Path,
    *,
    slo: Slo,
    nominal_latency_s: float,
    max_users: int,
    max_points: int,
    start_users: int | None = None,
    on_point: Any = None,
    prior: Sequence[Point] = (),
) -> dict[str, Any]:
    """One capacity search on a started variant, for both the capacity command and ``sweep --capacity``:
    each level is a sweep point cut short once its latency is past the SLO and rising, and the first
    level is seeded from the variant's prediction (no prediction: start at 8)."""
    variant = session.group.variant
    slo_latency_ms = slo.p95_factor * nominal_latency_s * 1000.0
    return search(
        variant,
        scenario,
        measure=lambda spec: measure_point(session, spec, settings, run_dir, slo_latency_ms=slo_latency_ms),
        slo=slo,
        nominal_latency_s=nominal_latency_s,
        start=seed_level(_known_variants()[variant].predicted_ceiling, start_users),
        max_users=max_users,
        max_points=max_points,
        on_point=on_point,
        prior=prior,
    )


def _figures(point: Point) -> str:
    """A finished point in one line of progress: throughput, p95 and the mock's peak in flight."""
    p95 = point.latency_ms.p95 if point.latency_ms else float("nan")
    return f"{point.throughput_rps:.2f} rps, p95 {p95:.0f} ms, peak {point.upstream_peak_in_flight}"


def measure_point(
    session: VariantSession,
    spec: PointSpec,
    settings: SweepSettings,
    run_dir: Path,
    *,
    slo_latency_ms: float | None = None,
) -> Point:
    """One point on a started variant: wait until the previous point's load has drained (restart the
    variant when it does not), then measure. A point whose measurement broke is kept, invalid."""
    timing = timing_for(spec, settings)
    latency = timing.latency_s
    if slo_latency_ms is None and spec.load_model == "open" and latency > 0:
        # An offered rate the variant cannot sustain shows as latency rising without end: once its mean
        # passes OPEN_LOOP_CUT_L x L and still rises, the point ends (invalid, and says so) instead of
        # queueing until --max-warmup.
        slo_latency_ms = OPEN_LOOP_CUT_L * latency * 1000.0
    restarted = not session.settle(timeout_s=max(3.0, 2 * latency))
    drained = True
    if restarted:
        session.restart_server()
        drained = session.settle(timeout_s=max(3.0, 2 * latency))
    ceiling = session.spec().predicted_ceiling
    target = session.target(ceiling=ceiling, latency_s=latency, scenario=spec.scenario)
    if not drained:
        point = failed_point(
            spec,
            target,
            timing,
            "the mock still had calls in flight (or stopped answering) after the variant was restarted; "
            "see the mock's log in logs/",
        )
    else:
        point = _measure(spec, target, timing, session, settings, run_dir, slo_latency_ms)
    if restarted:
        point.extra["server_restarted_before"] = (
            "the previous point's backlog did not drain; the variant was restarted"
        )
    return point


def _measure(
    spec: PointSpec,
    target: Target,
    timing: Timing,
    session: VariantSession,
    settings: SweepSettings,
    run_dir: Path,
    slo_latency_ms: float | None,
) -> Point:
    for proc in (session.server, session.mock):
        if proc is None or not proc.running():
            name = "the variant" if proc is None else proc.name
            return failed_point(spec, target, timing, f"{name} died before this point; see its log")
    try:
        return run_point(
            spec,
            target,
            timing,
            run_dir=run_dir,
            loadgen_processes=settings.loadgen_processes,
            seed=settings.seed,
            max_in_flight=settings.max_in_flight,
            env=dict(os.environ),
            remote=RemoteWorkers(
                count=settings.remote_workers, bind=settings.master_bind, port=settings.master_port
            ),
            slo_latency_ms=slo_latency_ms,
        )
    except (PointError, ProcessStartError, OSError) as exc:
        return failed_point(spec, target, timing, _strip_paths(str(exc), run_dir))


def record_measured_latency(results: RunResults) -> None:
    """The run's L from what the mock injected (the median over the points of the run's own profile),
    the nominal one kept beside it: for rate-based profiles the answer actually produced sets L."""
    md = results.metadata
    md.setdefault("upstream_latency_nominal_s", md.get("upstream_latency_s"))
    measured = [
        p.upstream_latency_s
        for p in results.points
        if p.upstream_latency_s is not None and p.scenario != "overhead"
    ]
    if measured:
        md["upstream_latency_s"] = round(statistics.median(measured), 6)
        md["upstream_latency_source"] = "measured: median of the mock's mean injected delay per point"


def _strip_paths(text: str, run_dir: Path) -> str:
    """No absolute paths in results: make the run directory's paths relative."""
    for prefix in (str(run_dir.resolve()) + os.sep, str(run_dir) + os.sep):
        text = text.replace(prefix, "")
    return text


def print_summary(results: RunResults, console: Any) -> None:
    from rich.table import Table

    table = Table(title="sweep summary", show_lines=False)
    for column in (
        "variant",
        "scenario",
        "load",
        "rps",
        "expected",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "peak",
        "ceiling",
        "loadgen cpu",
        "srv ms/req",
        "valid",
    ):
        table.add_column(column, justify="left" if column in ("variant", "scenario", "valid") else "right")
    for p in results.points:
        lat = p.latency_ms
        expected = p.extra.get("expected_throughput_rps")
        load = f"{p.users} u" if p.load_model == "closed" else f"{p.rate:g} rps"
        table.add_row(
            p.variant,
            p.scenario,
            load,
            f"{p.throughput_rps:.2f}",
            "" if expected is None else f"{expected:.2f}",
            "" if lat is None else f"{lat.p50:.0f}",
            "" if lat is None else f"{lat.p95:.0f}",
            "" if lat is None else f"{lat.p99:.0f}",
            "" if p.upstream_peak_in_flight is None else str(p.upstream_peak_in_flight),
            str(p.predicted_ceiling),
            ""
            if p.cpu is None
            else f"{max(p.extra.get('loadgen_cpu_percent', {}).values(), default=0):.0f}%",
            "" if p.server_cpu_ms_per_request is None else f"{p.server_cpu_ms_per_request:.1f}",
            "yes" if p.valid else "NO: " + "; ".join(p.invalid_reasons)[:60],
        )
    console.print(table)
    unverified = [v for v in results.variants if not v.verified]
    for v in unverified:
        console.print(f"[red]not measured[/]: {v.name}: {v.reason} (log: {v.log_file})")


if __name__ == "__main__":
    from loadtests.__main__ import main as cli

    sys.exit(cli(["sweep", *sys.argv[1:]]))
