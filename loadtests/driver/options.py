"""What to measure, from the command line or a stored run: the options sweep, capacity and faults share,
their checks, and the registry of targets (built-in variants and your own apps) they name.

Every check raises :class:`~loadtests.errors.UserError` naming the flag (or the stored key) and the rule,
so a bad setting is one line, whether it came from the command line or from ``--resume``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadtests.argtypes import duration, names, number
from loadtests.driver.targets import TargetError, TargetSpec, known_targets, load_target, register
from loadtests.errors import UserError
from loadtests.presets import ALL_SCENARIOS, PRESETS, SweepSettings
from loadtests.results import RESULTS_FILE, RunResults, load_results

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
    "rpm": "--rpm",
    "input_tpm": "--input-tpm",
    "output_tpm": "--output-tpm",
    "upstream_max_in_flight": "--upstream-max-in-flight",
    "slowdown_above": "--slowdown-above",
}


def default_text(key: str, defaults: SweepSettings | None = None) -> str:
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


def add_shared_arguments(parser: argparse.ArgumentParser, defaults: SweepSettings | None = None) -> None:
    """What to measure and how: the options ``sweep``, ``capacity`` and ``faults`` share (``defaults``: the
    command's own settings when it has no --preset, for --help)."""
    add = parser.add_argument

    def _preset_default(key: str) -> str:
        return default_text(key, defaults)

    add(
        "--variants",
        type=names,
        help=f"comma-separated variant names, or 'all' {_preset_default('variants')}",
    )
    add(
        "--scenarios",
        type=names,
        help=f"comma-separated, from {','.join(ALL_SCENARIOS)}, or 'all' {_preset_default('scenarios')}",
    )
    add(
        "--mock-profile",
        help="mock latency profile (article, haiku, sonnet, opus, haiku-tail, agentic, instant, or "
        "replay:FILE of per-call timings) " + _preset_default("mock_profile"),
    )
    add(
        "--time-scale",
        type=number("--time-scale", kind=float, above=0, what="positive"),
        help=f"mock time scale (article: L = 2 s x this) {_preset_default('time_scale')}",
    )
    add(
        "--duration",
        dest="duration_s",
        type=duration("--duration"),
        help="measured time per point, at least, e.g. 5s or 2m (the window grows to 30 completions) "
        + _preset_default("duration_s"),
    )
    add(
        "--warmup",
        dest="warmup_s",
        type=duration("--warmup"),
        help="fixed warm-up, e.g. 10s (default: detected from the data, see --max-warmup)",
    )
    add(
        "--max-warmup",
        dest="max_warmup_s",
        type=duration("--max-warmup"),
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
    _add_provider_limits(parser)
    add("--out", type=Path, help="run directory (default: results/<UTC timestamp>/, results/latest links it)")


def _add_provider_limits(parser: argparse.ArgumentParser) -> None:
    """The mock's provider limits (mock_llm/README.md): what a real API does when the provider, not the
    framework, is the limit. The report then shows goodput against the limit and 429/529 on both sides."""
    group = parser.add_argument_group(
        "provider limits",
        "enforced by the mock as the Claude API documents them (token buckets refilled continuously; a "
        "minute is 60 s x the time scale); default: none",
    )
    for flag, what in (
        ("--rpm", "requests per minute (429 rate_limit_error with retry-after beyond it)"),
        ("--input-tpm", "input tokens per minute"),
        ("--output-tpm", "output tokens per minute (charged at max_tokens, corrected at the end)"),
        ("--upstream-max-in-flight", "calls in flight at the mock beyond which it answers 529 overloaded"),
        ("--slowdown-above", "calls in flight beyond which every call's delay grows by in-flight / N"),
    ):
        kind = number(flag, kind=int, above=0, what="positive")
        group.add_argument(flag, type=kind, metavar="N", help=f"{what} (default: none)")


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    values = {key: getattr(args, key) for key in SETTING_FLAGS if getattr(args, key, None) is not None}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def target_metadata(settings: SweepSettings) -> dict[str, dict[str, str | None]]:
    """Each target file the run measures: the file as given and a hash of its content."""
    known = known_variants()
    return {
        name: {"file": known[name].source, "sha256": known[name].sha256}
        for name in settings.variants
        if not known[name].builtin
    }


def check_target_hashes(results: RunResults) -> None:
    """--resume: a target file that changed since the run started would measure another app."""
    stored = results.metadata.get("targets") or {}
    known = known_variants()
    for name, info in stored.items():
        now = known.get(name)
        if now is None or now.sha256 != info.get("sha256"):
            raise UserError(
                f"--resume: target {name} ({info.get('file')}) changed since the run started; "
                "start a new run instead"
            )


def known_variants() -> dict[str, TargetSpec]:
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
    return known_variants()[variant].supports(scenario)


def known_profiles() -> tuple[str, ...]:
    from mock_llm.profiles import PROFILES

    return tuple(PROFILES)


def check_profile(name: str) -> None:
    """A named profile, or ``replay:FILE`` read now, so a bad file is one line before anything starts."""
    from mock_llm.profiles import get_profile

    try:
        get_profile(name)
    except (ValueError, OSError) as exc:
        raise UserError(f"--mock-profile: {exc}") from None


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
    for key in ("rpm", "input_tpm", "output_tpm", "upstream_max_in_flight", "slowdown_above"):
        value = getattr(settings, key)
        if value is not None and not _positive_number(value, int):
            raise UserError(f"{SETTING_FLAGS[key]}: {value!r} is not a positive whole number")
    return settings


def validate(settings: SweepSettings) -> SweepSettings:
    variants = known_variants()
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
    check_profile(settings.mock_profile)
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
    for variant, only in settings.variant_scenarios.items():
        if set(only) - set(ALL_SCENARIOS):
            raise UserError(f"variant_scenarios of {variant}: unknown scenario(s) {', '.join(sorted(only))}")
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
    return replace(settings, variants=chosen, scenarios=scenarios, capacity_scenarios=capacity)


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
