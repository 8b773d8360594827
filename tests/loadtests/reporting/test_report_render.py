"""The report's charts and documents from synthetic runs: files, series, hollow invalid points, styles."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.analysis.run_analysis import analyse_run
from loadtests.analysis.synthetic import modify, synthetic_run
from loadtests.analysis.verdict import compute_verdict
from loadtests.commands import report
from loadtests.reporting.chart_style import make_style
from loadtests.reporting.chartkit import save_chart
from loadtests.reporting.charts import build_charts
from loadtests.reporting.dockit import STATUS_LABEL
from loadtests.results import Point, load_results

CLOSED_KINDS = ("throughput", "inflight", "latency", "errors", "cpu")


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_every_chart_is_written_as_png_and_svg(rendered_run: tuple[Path, list[Path]]) -> None:
    run_dir, _ = rendered_run
    charts = run_dir / "charts"
    expected = [f"{s}-{k}" for s in ("analyse", "stream") for k in CLOSED_KINDS]
    expected += ["stream-ttft", "analyse-open-latency", "stream-open-latency"]
    for name in expected:
        assert (charts / f"{name}.png").stat().st_size > 10_000, name
        assert (charts / f"{name}.svg").read_text().startswith("<?xml"), name
    assert not (charts / "analyse-ttft.png").exists()  # no time to first chunk without a stream
    # 2x the blog size's 100 dpi: 9 x 5.6 in -> 1800 x 1120 px
    assert _png_size(charts / "analyse-throughput.png") == (1800, 1120)


def test_svgs_hold_the_expected_series(rendered_run: tuple[Path, list[Path]]) -> None:
    charts = rendered_run[0] / "charts"
    throughput = (charts / "analyse-throughput.svg").read_text()
    for variant in ("flask-sync", "fastapi-async"):
        assert f'id="series-throughput-{variant}"' in throughput
    assert "ceiling min(users, C) / L" in throughput
    assert "flask-sync: 4 in flight, then requests queue" in throughput  # the knee, annotated
    inflight = (charts / "stream-inflight.svg").read_text()
    assert "flask-sync stops at 4 requests in flight;" in inflight  # the title may wrap after this
    assert "fastapi-async follows the load to" in inflight
    latency = (charts / "analyse-latency.svg").read_text()
    for pct in ("p50", "p95", "p99"):
        assert f'id="series-latency-{pct}-flask-sync"' in latency
    assert 'id="series-ttft-fastapi-async"' in (charts / "stream-ttft.svg").read_text()
    assert 'id="series-open-p50-flask-sync"' in (charts / "analyse-open-latency.svg").read_text()
    footer = "mock profile fixed · time scale 1.0 · L = 1 s"
    assert footer in throughput


def test_invalid_points_are_hollow_and_named(rendered_run: tuple[Path, list[Path]]) -> None:
    charts = rendered_run[0] / "charts"
    svg = (charts / "analyse-throughput.svg").read_text()
    assert 'id="series-throughput-flask-sync-invalid"' in svg
    assert "Hollow marker: an invalid level" in svg
    assert "flask-sync analyse 256 users (window too short for steady state)" in svg
    assert "series-throughput-flask-sync-invalid" not in (charts / "stream-throughput.svg").read_text()


def test_report_files_carry_the_verdict_and_table(rendered_run: tuple[Path, list[Path]]) -> None:
    run_dir, written = rendered_run
    verdict = json.loads((run_dir / "verdict.json").read_text())
    # The report writes the verdict it computes from the run (the outcomes on real data are tested in
    # tests/loadtests/test_sweep_verdict_real.py), and shows every claim's status.
    assert verdict == json.loads(json.dumps(compute_verdict(load_results(run_dir)).to_dict()))
    assert all(set(c) >= {"id", "status", "evidence"} for c in verdict["claims"])
    md = (run_dir / "report.md").read_text()
    assert md.index("## Verdict") < md.index("## Charts") < md.index("## Points")
    assert "![" in md and "charts/analyse-throughput.png" in md
    assert "Not tested in this run" in md
    html = (run_dir / "report.html").read_text()
    embedded = [*(run_dir / "charts").glob("*.svg"), *(run_dir / "story").glob("*.svg")]
    assert html.count("data:image/svg+xml;base64,") == len(embedded)  # the story set, then the catalogue
    assert 'src="charts/' not in html  # self-contained
    for claim in verdict["claims"]:
        label = STATUS_LABEL[claim["status"]]
        assert label in md and label in html, claim["id"]
    assert "<table>" in html and "window too short" in html
    assert run_dir / "report.html" in written


def test_talk_dark_is_sixteen_by_nine_with_large_type() -> None:
    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(1, 8, 128))
    style = make_style("dark", "talk")
    charts = build_charts(run, style, analyse_run(run))
    assert [c.kind for c in charts] == list(CLOSED_KINDS)
    for chart in charts:
        width, height = chart.figure.get_size_inches()
        assert width / height == pytest.approx(16 / 9, rel=0.01)
    title = charts[0].figure.texts[0]  # the finding, drawn as the figure's first text
    assert title.get_fontsize() >= 16
    assert all(t.get_fontsize() >= 12 for t in charts[0].figure.axes[0].get_xticklabels())
    labels = [line.get_label() for line in charts[0].figure.axes[0].get_lines()]
    assert "flask-sync (C = 4)" in labels and "fastapi-async (C = 1000)" in labels
    labels = [line.get_label() for line in charts[1].figure.axes[0].get_lines()]
    assert "flask-sync" in labels and "fastapi-async" in labels
    assert charts[0].figure.get_facecolor()[0] < 0.2  # dark background
    assert (
        charts[1].title == "flask-sync stops at 4 requests in flight; fastapi-async follows the load to 128"
    )


def test_save_chart_writes_talk_png_at_twice_its_dpi(tmp_path: Path) -> None:
    run = synthetic_run(variants=("flask-sync",), scenarios=("analyse",), users=(1, 8))
    style = make_style("dark", "talk")
    chart = build_charts(run, style, analyse_run(run))[0]
    png, svg = save_chart(chart, tmp_path, style)
    assert _png_size(png) == (3840, 2160)
    assert svg.exists()


def test_titles_never_rest_on_invalid_points() -> None:
    from dataclasses import replace

    from loadtests.analysis.synthetic import modify

    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(2, 8, 32))
    run = modify(
        run, lambda p: replace(p, valid=False, invalid_reasons=["busy"]) if p.variant == "flask-sync" else p
    )
    titles = {c.kind: c.title for c in build_charts(run, make_style(), analyse_run(run))}
    assert "flask-sync" not in titles["throughput"] + titles["inflight"] + titles["latency"]
    assert (
        titles["inflight"] == "fastapi-async follows the load to 32 (the only variant with valid points here)"
    )
    everything_invalid = modify(run, lambda p: replace(p, valid=False, invalid_reasons=["busy"]))
    charts = build_charts(everything_invalid, make_style(), analyse_run(everything_invalid))
    assert charts[0].title.startswith("No valid point to draw a finding from")
    drawn = [t.get_text() for t in charts[0].figure.texts]
    assert any(t.startswith("No valid point") for t in drawn)  # the figure says it, not only the metadata


def test_capacity_and_breakdown_get_a_chart_and_a_section(tmp_path: Path) -> None:
    from dataclasses import replace

    from loadtests.analysis.synthetic import modify

    def split(before: float) -> dict[str, object]:
        part = lambda ms: {"p50": ms, "p95": ms * 1.02, "p99": ms * 1.05}  # noqa: E731
        return {"before_upstream": part(before), "upstream": part(1000.0), "after_upstream": part(3.0),
                "matched": 100, "unmatched": 0}  # fmt: skip

    run = synthetic_run(variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(8, 128))
    run = modify(
        run,
        lambda p: replace(p, breakdown_ms=split(31_000.0 if p.variant == "flask-sync" else 4.0)),
    )
    run.capacity = [
        {"variant": "flask-sync", "scenario": "analyse", "users": 4, "interval": [4, 5],
         "throughput_rps": 3.98, "bound": "concurrency", "points": 5, "slo": "p95 <= 1.25 x L", "levels": []},
        {"variant": "fastapi-async", "scenario": "analyse", "users": 181, "interval": [181, 190],
         "throughput_rps": 170.0, "bound": "server_cpu", "points": 8, "slo": "p95 <= 1.25 x L", "levels": []},
    ]  # fmt: skip
    run.save(tmp_path)
    report.write_report(tmp_path)
    breakdown = (tmp_path / "charts" / "analyse-breakdown.svg").read_text()
    assert "flask-sync spends 31 L before its upstream call at 128 users" in breakdown
    capacity = (tmp_path / "charts" / "analyse-capacity.svg").read_text()
    # Capacities as intervals: the most users that passed to the fewest above that failed.
    assert "fastapi-async 181-190 users, flask-sync 4-5" in capacity and "181-190 (server cpu)" in capacity
    text = (tmp_path / "report.md").read_text()
    assert "## Capacity under the SLO" in text and "## Where the time goes" in text
    assert "| fastapi-async | analyse | 181-190 | 170 |" in text


def _memory(p: Point, *, base: float, per_call: float, worker: float, workers: int) -> Point:
    in_flight = float(p.upstream_peak_in_flight or 0)
    leaves = [worker] * workers
    return replace(
        p,
        in_flight_mean=in_flight,
        server_uss_mb=base + per_call * in_flight + worker * workers,
        server_rss_mb=2 * (base + worker * workers),
        extra={**p.extra, "memory": {"leaf_uss_mb": leaves, "processes_max": workers + 2}},
    )


def _run():  # type: ignore[no-untyped-def]
    run = synthetic_run(
        variants=("flask-sync", "fastapi-async"), scenarios=("analyse",), users=(2, 8, 32, 128)
    )

    def add(p: Point) -> Point:
        if p.variant == "flask-sync":
            return _memory(p, base=25.0, per_call=0.0, worker=16.0, workers=4)
        return _memory(p, base=10.0, per_call=0.075, worker=86.0, workers=1)

    return modify(run, add)


def test_the_report_draws_memory_and_reach_and_tabulates_the_plan(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from loadtests.reporting.report import write_report

    run = _run()
    run.reach = [
        {"variant": "fastapi-async", "streams": 1000, "latency_s": 60.0, "held": 1000, "ok": True,
         "first_failure": "nothing", "detail": "held 1,000"},
        {"variant": "fastapi-async", "streams": 10000, "latency_s": 250.0, "held": 6100, "ok": False,
         "first_failure": "open files", "detail": "12 'too many open files' log lines"},
    ]  # fmt: skip
    run.save(tmp_path)
    write_report(tmp_path)
    svg = (tmp_path / "charts" / "analyse-memory.svg").read_text()
    assert 'id="series-memory-fastapi-async"' in svg and 'id="series-memory-fit-fastapi-async"' in svg
    assert 'id="series-reach-fastapi-async"' in (tmp_path / "charts" / "stream-reach.svg").read_text()
    report = (tmp_path / "report.md").read_text()
    for heading in ("## Memory per call in flight", "## Capacity plan", "## Reach: concurrent streams"):
        assert heading in report
    assert "| flask-sync | analyse | 100 | 100 | 100 | 1,625 |" in report
    document = json.loads((tmp_path / "memory.json").read_text())
    assert {f["variant"]: f["usable"] for f in document["fits"]} == {
        "flask-sync": False,
        "fastapi-async": True,
    }
    assert len(document["plan"]) == 6
