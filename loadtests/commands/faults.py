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
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadtests.analysis.faults import summarise
from loadtests.driver.measure import measure_point
from loadtests.driver.metadata import collect_all, utc_now
from loadtests.driver.options import add_shared_arguments, explicit_settings, validate
from loadtests.driver.pointspec import PointSpec
from loadtests.driver.rundir import Run
from loadtests.driver.schedule import Group, upstream_latency_s
from loadtests.driver.session import VariantSession
from loadtests.errors import OneLineParser, UserError, run_main
from loadtests.presets import PRESETS, SweepSettings

REPO = Path(__file__).resolve().parents[2]

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
    args = build_parser().parse_args(argv)
    if len(args.users) != 1:
        raise UserError("--users: the faults command measures one load level; give one number")
    users = int(args.users[0])
    explicit = {k: v for k, v in explicit_settings(args).items() if k not in ("users", "rates", "repeat")}
    base = replace(PRESETS["default"], variants=DEFAULT_VARIANTS, scenarios=("analyse",), users=(users,))
    settings = validate(replace(base, rates=()).with_overrides(explicit))
    errors = _fault_kinds(str(args.errors))
    big_l = upstream_latency_s(settings.mock_profile, settings.time_scale)
    run = Run.create(args.out, _metadata(argv, settings, args, errors, users, big_l), link=False)
    combos = [(v, r, f) for v in settings.variants for r in args.retries for f in args.fault_rates]
    print(f"faults: {len(combos)} points ({', '.join(settings.variants)} x retries {args.retries} x fault "
          f"rates {args.fault_rates}, {'/'.join(errors)}) at {users} users, L = {big_l:g} s; writing "
          f"{run.results_file}", flush=True)  # fmt: skip
    try:
        with run.interruptible():
            failed = _measure_all(run, settings, combos, errors=errors, users=users)
    except KeyboardInterrupt:
        return run.interrupted()
    finally:
        run.close()
    wall = run.finish()
    print(f"results: {run.results_file}  (wall time {wall:.0f} s)")
    return 1 if failed else 0


def _fault_kinds(text: str) -> tuple[str, ...]:
    from mock_llm.faults import FAULT_KINDS

    errors = tuple(e.strip() for e in text.split(",") if e.strip())
    unknown = [e for e in errors if e not in FAULT_KINDS]
    if not errors or unknown:
        raise UserError(f"--errors: unknown fault kind {unknown[0] if unknown else '(none)'}; "
                        f"choose from {', '.join(FAULT_KINDS)}")  # fmt: skip
    return errors


def _metadata(
    argv: list[str],
    settings: SweepSettings,
    args: argparse.Namespace,
    errors: tuple[str, ...],
    users: int,
    big_l: float,
) -> dict[str, Any]:
    return collect_all(
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


def _measure_all(
    run: Run,
    settings: SweepSettings,
    combos: list[tuple[str, int, float]],
    *,
    errors: tuple[str, ...],
    users: int,
) -> int:
    """One fresh mock and server per (variant, retries, fault rate), one point each; how many failed."""
    faults = run.results.faults
    settings_of = {}  # group label -> (retries, rate)
    groups = []
    for variant, retries, rate in combos:
        label = f"retries{retries}-faults{rate:g}"
        settings_of[(variant, label)] = (retries, rate)
        groups.append(Group(
            variant=variant, mock_profile=settings.mock_profile, label=label,
            mock_args=("--error-rate", f"{rate:g}", "--errors", ",".join(errors)),
            server_env={"BENCH_UPSTREAM_MAX_RETRIES": str(retries)},
        ))  # fmt: skip

    def measure(group: Group, session: VariantSession) -> None:
        retries, rate = settings_of[(group.variant, group.label)]
        repeat = len([e for e in faults if e["variant"] == group.variant])
        spec = PointSpec(
            variant=group.variant,
            scenario="analyse",
            load_model="closed",
            users=users,
            rate=None,
            repeat=repeat,
        )
        point = measure_point(session, spec, settings, run.run_dir)
        # Not in ``points``: one level measured under different faults is not a set of repeats.
        entry = summarise(point, rate=rate, retries=retries, errors=errors)
        faults.append(entry)
        run.save()
        print(
            f"  {group.variant} retries {retries} faults {rate:.0%}: goodput {entry['goodput_rps']:.3g} rps, "
            f"failed {entry['failed_share']:.1%}, p95 {entry['p95_ms'] or float('nan'):.0f} ms, "
            f"{entry['upstream_calls_per_request'] or float('nan'):.2f} upstream calls per request"
            + ("" if point.valid else f" (invalid: {'; '.join(point.invalid_reasons)})"),
            flush=True,
        )

    def failed(group: Group, exc: Exception) -> None:
        reason = run.strip_paths(str(exc))
        print(f"error: variant {group.variant} ({group.label}): {reason}", flush=True)
        run.variant_not_measured(group.variant, reason=reason, log=None)

    # The contract check needs answers: it runs with faults forced off by rate 0 only.
    return run.each_session(
        groups, settings, measure, on_failed=failed,
        verify=lambda g: ["analyse"] if settings_of[(g.variant, g.label)][1] == 0 else None,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:]))
