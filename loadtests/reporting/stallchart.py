"""Throughput, latency and server CPU against users for each variant of each run, labelled with the run's
BENCH_WORK_MS: where handler CPU stalls a server (the chart of ``python -m loadtests.reporting.workchart``).

With ``BENCH_WORK_MS`` set, every request spends that much CPU where its variant runs handler code: on
fastapi-async's one event loop it adds up (one core, shared by every request in flight), in flask-gthread's
threads over four processes it spreads over the cores.
"""

from __future__ import annotations

from pathlib import Path

from loadtests.results import load_results


def draw(runs: list[Path], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rps, ax_lat, ax_cpu) = plt.subplots(1, 3, figsize=(14, 4.2))
    for run_path in runs:
        run = load_results(run_path)
        work = run.metadata.get("work_ms")
        style = "-" if work else "--"
        for variant in sorted({p.variant for p in run.points}):
            points = sorted(
                (p for p in run.points if p.variant == variant and p.load_model == "closed" and p.latency_ms),
                key=lambda p: p.load,
            )
            users = [p.load for p in points]
            label = f"{variant}, BENCH_WORK_MS={work:g}" if work is not None else variant
            line = ax_rps.plot(users, [p.throughput_rps for p in points], style, marker="o", label=label)[0]
            color = line.get_color()
            ax_lat.plot(users, [p.latency_ms.p50 for p in points], style, marker="o", color=color)  # type: ignore[union-attr]
            busiest = [p.extra.get("server_max_process_percent") or 0.0 for p in points]
            ax_cpu.plot(users, busiest, style, marker="o", color=color)
    for ax, title in (
        (ax_rps, "throughput (requests/s)"),
        (ax_lat, "latency p50 (ms)"),
        (ax_cpu, "busiest server process (% of a core)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent users")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    ax_rps.legend(fontsize=7)
    fig.suptitle(
        "CPU in the handler: an event loop saturates its one core, a thread pool spreads it", fontsize=11
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
