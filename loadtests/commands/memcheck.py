"""Benchmark: memory per in-flight call from the harness against an independent sample of the same processes.

``python -m loadtests.driver.memcheck`` starts a mock and one variant (default fastapi-async), measures a
few closed-loop points through the normal point runner (psutil samples the server tree), and meanwhile
a separate thread lists the tree with ``ps -e -o pid,ppid,rss`` every 0.5 s. Per point it prints the
harness's peak RSS and USS and ps's peak RSS over the same window; across the points, the least-squares
slope of memory against the mock's mean calls in flight from each source. The target: the harness's RSS
slope within 10 % of ps's (ps has no USS; the USS slope is printed beside them). Exit 0 when met, 1 not.
A benchmark, not a test: it prints figures and is not timed by the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from loadtests.analysis.memory import least_squares
from loadtests.driver.pointrun import run_point
from loadtests.driver.pointspec import PointSpec, Target, plan_timing
from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv
from loadtests.driver.pssample import PsSampler

TOLERANCE = 0.10
ARTICLE_S = 2.0


Row = tuple[
    int, float | None, float | None, float | None, float | None, bool
]  # users, in flight, 3 MBs, valid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.driver.memcheck", description=__doc__)
    parser.add_argument("--variant", default="fastapi-async")
    parser.add_argument("--users", default="16,128,512", help="closed-loop levels (at least two)")
    parser.add_argument("--time-scale", type=float, default=2.0, help="article profile: L = 2 s x this")
    parser.add_argument("--duration", type=float, default=8.0, help="window, at least, seconds")
    args = parser.parse_args(argv)
    try:
        levels = [int(u) for u in args.users.split(",")]
    except ValueError:
        print(f"error: --users takes whole numbers, not {args.users!r}", file=sys.stderr)
        return 2
    if len(levels) < 2 or min(levels) < 1 or max(levels) > 4096 or not 0 < args.time_scale <= 50:
        print(
            "error: --users needs two or more levels in 1..4096 and --time-scale in (0, 50]", file=sys.stderr
        )
        return 2
    rows = _measure(args, levels)
    return _report(rows)


def _measure(args: argparse.Namespace, levels: list[int]) -> list[Row]:
    """A mock and the variant; each level measured by the point runner while ps lists the tree."""
    big_l = ARTICLE_S * args.time_scale
    work = Path(tempfile.mkdtemp(prefix="memcheck-"))
    mock_port, port = free_port(), free_port()
    env = {**os.environ, "BENCH_RATE_LIMIT": "1000000/minute", "BENCH_JOB_DB": str(work / "jobs.db")}
    mock = ManagedProcess(
        "mock",
        python_module_argv("mock_llm", "--port", str(mock_port), "--time-scale", f"{args.time_scale:g}"),
        log_path=work / "mock.log",
        ready_url=f"http://{LOOPBACK}:{mock_port}/health",
    )
    server = ManagedProcess(
        args.variant,
        python_module_argv(
            "servers", "run", args.variant, "--host", LOOPBACK, "--port", str(port),
            "--upstream", f"http://{LOOPBACK}:{mock_port}",
        ),
        log_path=work / "server.log",
        ready_url=f"http://{LOOPBACK}:{port}/health",
        env=env,
    )  # fmt: skip
    rows: list[Row] = []
    print(f"memcheck: {args.variant}, analyse, users {levels}, L = {big_l:g} s; logs in {work}", flush=True)
    with mock, server, PsSampler(server.pid) as ps:
        target = Target(
            url=f"http://{LOOPBACK}:{port}", mock_url=f"http://{LOOPBACK}:{mock_port}", server_pid=server.pid,
            mock_pid=mock.pid, ceiling=0, latency_s=big_l, token="bench-local-token",
        )  # fmt: skip
        for users in levels:
            spec = PointSpec(
                variant=args.variant,
                scenario="analyse",
                load_model="closed",
                users=users,
                rate=None,
                repeat=0,
            )
            timing = plan_timing(latency_s=big_l, duration_s=args.duration, warmup_s=None)
            point = run_point(
                spec, target, timing, run_dir=work / "run", loadgen_processes=1, seed=1, max_in_flight=100,
                env=dict(os.environ),
            )  # fmt: skip
            start = float(point.extra["window_start"])
            ps_peak = ps.peak(start, start + point.duration_s)
            rows.append(
                (users, point.in_flight_mean, point.server_rss_mb, point.server_uss_mb, ps_peak, point.valid)
            )
            print(
                f"  {users:>5} users: {point.in_flight_mean} in flight, harness RSS "
                f"{point.server_rss_mb} MB, USS {point.server_uss_mb} MB; "
                f"ps RSS {ps_peak and round(ps_peak, 2)} MB"
                + ("" if point.valid else f"  (invalid: {'; '.join(point.invalid_reasons)})"),
                flush=True,
            )
    return rows


def _report(rows: list[Row]) -> int:
    """The slopes of memory against calls in flight from each source; 0 when they agree."""
    usable = [r for r in rows if None not in r[1:5]]
    xs = [float(r[1]) for r in usable]  # type: ignore[arg-type]
    harness_rss = least_squares(xs, [float(r[2]) for r in usable])  # type: ignore[arg-type]
    harness_uss = least_squares(xs, [float(r[3]) for r in usable])  # type: ignore[arg-type]
    ps_rss = least_squares(xs, [float(r[4]) for r in usable])  # type: ignore[arg-type]
    if harness_rss is None or ps_rss is None or harness_uss is None or ps_rss.slope == 0:
        print("error: too few points with memory readings for a slope", file=sys.stderr)
        return 1
    gap = (harness_rss.slope - ps_rss.slope) / ps_rss.slope
    print(
        f"memory per in-flight call: harness RSS {harness_rss.slope * 1024:.1f} KB, ps RSS "
        f"{ps_rss.slope * 1024:.1f} KB ({gap:+.1%}; target within {TOLERANCE:.0%}); harness USS "
        f"{harness_uss.slope * 1024:.1f} KB (r^2 {harness_uss.r2 or 0:.3f}, {len(usable)} levels)"
    )
    return 0 if abs(gap) <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
