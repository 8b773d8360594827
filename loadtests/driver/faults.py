"""``python -m loadtests faults``: goodput and latency as the upstream fails more, with and without retries.

For each variant, each SDK retry budget (``--retries``, the servers' ``BENCH_UPSTREAM_MAX_RETRIES``) and each
fault rate (``--fault-rate``, the mock's ``--error-rate`` drawing from ``--errors``), a fresh mock and
server are started and one closed-loop point is measured at ``--users`` (a sweep point: detected warm-up,
every validity rule). Each entry of the run's ``faults`` list says what a client got (goodput: successful
answers per second; the failed share; latency) and what the upstream got: the mock's calls per finished
client request, which is how much retries multiply the load on an upstream that is already struggling.
The full point is kept in each entry (not in the run's ``points``: one level measured under different
faults is not a set of repeats).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.pointrun import PointSpec
from loadtests.driver.processes import ProcessStartError
from loadtests.driver.verify import ContractError
from loadtests.errors import OneLineParser, UserError
from loadtests.presets import PRESETS
from loadtests.results import RESULTS_FILE, Point, RunResults

DEFAULT_VARIANTS = ("flask-sync", "fastapi-async")
DEFAULT_ERRORS = ("429", "529")


def _list(kind: type, flag: str, *, low: float, high: float) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            values = tuple(kind(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes comma-separated numbers, not {text!r}") from None
        if not values or any(not math.isfinite(v) or not low <= v <= high for v in values):
            raise argparse.ArgumentTypeError(f"{flag} values must be in [{low:g}, {high:g}], not {text!r}")
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    from loadtests.sweep import add_shared_arguments

    parser = OneLineParser(
        prog="python -m loadtests faults",
        description="Goodput, latency and upstream calls per request as the upstream fails more, with and "
        "without the servers' SDK retries.",
    )
    add_shared_arguments(
        parser,
        defaults=replace(PRESETS["default"], variants=DEFAULT_VARIANTS, scenarios=("analyse",), rates=()),
    )
    add = parser.add_argument
    add("--fault-rate", dest="fault_rates", type=_list(float, "--fault-rate", low=0, high=1),
        default=(0.0, 0.05, 0.2), help="the mock's fault rates (default: 0,0.05,0.2)")  # fmt: skip
    add(
        "--errors",
        default=",".join(DEFAULT_ERRORS),
        help="fault kinds the mock draws (see python -m mock_llm) (default: %(default)s)",
    )
    add("--retries", type=_list(int, "--retries", low=0, high=10), default=(0, 2),
        help="the servers' BENCH_UPSTREAM_MAX_RETRIES values, comma-separated (default: 0,2)")  # fmt: skip
    add(
        "--users",
        type=_list(int, "--users", low=1, high=100_000),
        default=(32,),
        help="closed-loop users (default: %(default)s)",
    )
    return parser


def main(argv: list[str]) -> int:
    from loadtests.sweep import (
        REPO,
        Group,
        VariantSession,
        _explicit,
        _relative,
        _set_variant,
        _strip_paths,
        _variant_info,
        default_run_dir,
        make_dirs,
        measure_point,
        record_measured_latency,
        upstream_latency_s,
        validate,
    )

    args = build_parser().parse_args(argv)
    if len(args.users) != 1:
        raise UserError("--users: the faults command measures one load level; give one number")
    users = int(args.users[0])
    explicit = {k: v for k, v in _explicit(args).items() if k not in ("users", "rates", "repeat")}
    base = replace(PRESETS["default"], variants=DEFAULT_VARIANTS, scenarios=("analyse",), users=(users,))
    settings = validate(replace(base, rates=()).with_overrides(explicit))
    from mock_llm.faults import FAULT_KINDS

    errors = tuple(e.strip() for e in str(args.errors).split(",") if e.strip())
    unknown = [e for e in errors if e not in FAULT_KINDS]
    if not errors or unknown:
        raise UserError(f"--errors: unknown fault kind {unknown[0] if unknown else '(none)'}; "
                        f"choose from {', '.join(FAULT_KINDS)}")  # fmt: skip
    run_dir: Path = args.out if args.out is not None else default_run_dir()
    if (run_dir / RESULTS_FILE).exists():
        raise UserError(f"--out: {run_dir} already holds a run; choose another --out")
    for sub in ("raw", "logs"):
        make_dirs(run_dir / sub)
    big_l = upstream_latency_s(settings.mock_profile, settings.time_scale)
    results = RunResults(
        metadata=collect_all(
            argv=["faults", *argv],
            repo=REPO,
            preset="faults",
            mock_profile=settings.mock_profile,
            time_scale=settings.time_scale,
            seed=settings.seed,
            upstream_latency_s=round(big_l, 6),
            scenarios=settings.scenarios,
            load_models=["closed"],
            started_at=utc_now(),
            extra={
                "sweep_settings": settings.to_dict(),
                "faults_settings": {
                    "fault_rates": list(args.fault_rates),
                    "errors": list(errors),
                    "retries": list(args.retries),
                    "users": users,
                },
            },
        )
    )
    faults = results.faults

    def save() -> None:
        record_measured_latency(results)
        results.save(run_dir)

    save()
    started = time.monotonic()
    combos = [(v, r, f) for v in settings.variants for r in args.retries for f in args.fault_rates]
    print(f"faults: {len(combos)} points ({', '.join(settings.variants)} x retries {args.retries} x fault "
          f"rates {args.fault_rates}, {'/'.join(errors)}) at {users} users, L = {big_l:g} s; writing "
          f"{run_dir / RESULTS_FILE}", flush=True)  # fmt: skip
    failed_variants = 0
    try:
        for variant, retries, rate in combos:
            label = f"retries{retries}-faults{rate:g}"
            group = Group(
                variant=variant, mock_profile=settings.mock_profile, label=label,
                mock_args=("--error-rate", f"{rate:g}", "--errors", ",".join(errors)),
                server_env={"BENCH_UPSTREAM_MAX_RETRIES": str(retries)},
            )  # fmt: skip
            spec = PointSpec(variant=variant, scenario="analyse", load_model="closed", users=users, rate=None,
                             repeat=len([e for e in faults if e["variant"] == variant]))  # fmt: skip
            try:
                with VariantSession(group, settings, run_dir) as session:
                    # The contract check needs answers: it runs with faults forced off by rate 0 only.
                    if rate == 0:
                        session.verify(["analyse"])
                    log_file = _relative(session.server_log, run_dir)
                    _set_variant(
                        results, _variant_info(variant, verified=True, reason=None, log_file=log_file)
                    )
                    point = measure_point(session, spec, settings, run_dir)
            except (ProcessStartError, ContractError) as exc:
                failed_variants += 1
                reason = _strip_paths(str(exc), run_dir)
                print(f"error: variant {variant} ({label}): {reason}", flush=True)
                _set_variant(results, _variant_info(variant, verified=False, reason=reason, log_file=None))
                save()
                continue
            # Not in ``points``: one level measured under different faults is not a set of repeats.
            entry = summarise(point, rate=rate, retries=retries, errors=errors)
            faults.append(entry)
            save()
            print(
                f"  {variant} retries {retries} faults {rate:.0%}: goodput {entry['goodput_rps']:.3g} rps, "
                f"failed {entry['failed_share']:.1%}, p95 {entry['p95_ms'] or float('nan'):.0f} ms, "
                f"{entry['upstream_calls_per_request'] or float('nan'):.2f} upstream calls per request"
                + ("" if point.valid else f" (invalid: {'; '.join(point.invalid_reasons)})"),
                flush=True,
            )
    except KeyboardInterrupt:
        save()
        print(f"interrupted: every process stopped; what was measured is in {run_dir / RESULTS_FILE}")
        return 130
    results.metadata["finished_at"] = utc_now()
    results.metadata["wall_time_s"] = round(time.monotonic() - started, 1)
    save()
    print(f"results: {run_dir / RESULTS_FILE}  (wall time {time.monotonic() - started:.0f} s)")
    return 1 if failed_variants else 0


def summarise(point: Point, *, rate: float, retries: int, errors: tuple[str, ...]) -> dict[str, Any]:
    finished = point.completed + point.failed
    calls = point.upstream_requests
    return {
        "variant": point.variant,
        "scenario": point.scenario,
        "users": point.users,
        "fault_rate": rate,
        "errors": list(errors),
        "retries": retries,
        "goodput_rps": round(point.throughput_rps, 3),
        "failed_share": round(point.failed / finished, 4) if finished else 0.0,
        "failures_by_status": point.failures_by_status,
        "p50_ms": point.latency_ms.p50 if point.latency_ms else None,
        "p95_ms": point.latency_ms.p95 if point.latency_ms else None,
        "upstream_calls_per_request": round(calls / finished, 3) if calls is not None and finished else None,
        "valid": point.valid,
        "point": asdict(point),
    }
