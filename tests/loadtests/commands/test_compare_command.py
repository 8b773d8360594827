"""python -m loadtests compare: regressions beyond the noise, exit codes, JSON and the step summary."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.analysis.synthetic import modify, synthetic_run
from loadtests.commands import compare
from loadtests.results import Point, RunResults

BASE = {"variants": ("flask-sync", "fastapi-async"), "scenarios": ("analyse",), "users": (1, 8, 128)}


def _run(tmp_path: Path, name: str, run: RunResults) -> str:
    run.save(tmp_path / name)
    return str(tmp_path / name)


def _compare(tmp_path: Path, base: RunResults, cur: RunResults, *extra: str) -> int:
    return compare.main([_run(tmp_path, "base", base), _run(tmp_path, "cur", cur), *extra])


def test_a_20_percent_drop_with_repeats_is_a_significant_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(**BASE, repeats=3, noise=0.02, seed=1)  # type: ignore[arg-type]
    cur = synthetic_run(**BASE, repeats=3, noise=0.02, seed=2, throughput_factor={"flask-sync": 0.8})  # type: ignore[arg-type]
    assert _compare(tmp_path, base, cur) == 1
    out = capsys.readouterr().out
    assert "bootstrap" in out and "**REGRESSION** throughput -20%" in out
    assert "flask-sync · analyse · 8 users" in out
    assert "**Result: 3 regression(s) in 6 compared point(s).**" in out


def test_a_3_percent_wobble_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthetic_run(**BASE, repeats=3, seed=1)  # type: ignore[arg-type]
    cur = synthetic_run(**BASE, repeats=3, seed=2, throughput_factor={"flask-sync": 0.97})  # type: ignore[arg-type]
    assert _compare(tmp_path, base, cur) == 0
    assert "no regression in 6 compared point(s)" in capsys.readouterr().out


def test_single_repeats_use_the_tolerance_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthetic_run(**BASE, seed=1)  # type: ignore[arg-type]
    cur = synthetic_run(**BASE, seed=2, throughput_factor={"fastapi-async": 0.8})  # type: ignore[arg-type]
    assert _compare(tmp_path, base, cur) == 1
    out = capsys.readouterr().out
    assert "fewer than 2 valid repeats on a side: the tolerance alone decides" in out
    assert "(tolerance only: < 2 repeats)" in out
    assert _compare(tmp_path, base, cur, "--tolerance", "0.25") == 0


def test_a_change_inside_the_noise_is_not_significant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(**BASE, repeats=3)  # type: ignore[arg-type]
    spread = {0: 0.6, 1: 1.0, 2: 1.4}  # very noisy repeats: the mean drops 15%, the interval spans 1.0

    def noisy(factor: float):  # type: ignore[no-untyped-def]
        return lambda p: (
            replace(p, throughput_rps=4.0 * spread[p.repeat] * factor) if p.variant == "flask-sync" else p
        )

    assert _compare(tmp_path, modify(base, noisy(1.0)), modify(base, noisy(0.85))) == 0
    assert "throughput -15%: not significant" in capsys.readouterr().out


def test_latency_rise_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    slower = modify(
        base,
        lambda p: (
            replace(p, latency_ms=replace(p.latency_ms, p95=p.latency_ms.p95 * 1.3))  # type: ignore[arg-type]
            if p.latency_ms
            else p
        ),
    )
    assert _compare(tmp_path, base, slower) == 1
    assert "**REGRESSION** p95 +30%" in capsys.readouterr().out
    assert _compare(tmp_path, base, slower, "--gate", "throughput") == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"time_scale": 0.5}, "time_scale differs (baseline 1.0, current 0.5)"),
        ({"mock_profile": "realistic"}, "mock_profile differs"),
        ({"scenarios": ("stream",)}, "no scenario in common"),
    ],
)
def test_incompatible_runs_exit_two_naming_the_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], named: str
) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    cur = synthetic_run(**{**BASE, **change})  # type: ignore[arg-type]
    assert _compare(tmp_path, base, cur) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1


def test_unreadable_files_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _run(tmp_path, "good", synthetic_run(**BASE))  # type: ignore[arg-type]
    (tmp_path / "bad.json").write_text("{not json")
    assert compare.main([good, str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert compare.main([str(tmp_path / "missing"), good]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert compare.main([good, good, "--tolerance", "10"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_a_point_missing_from_the_current_run_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(variants=BASE["variants"], scenarios=("analyse", "stream"), users=(1, 8, 128, 256))
    cur = synthetic_run(**BASE, seed=3)  # type: ignore[arg-type]
    # A change must not pass by dropping the points it broke.
    assert _compare(tmp_path, base, cur) == 1
    out = capsys.readouterr().out
    assert "2 point(s) missing" in out and "- flask-sync · analyse · 256 users" in out
    # A quick run against a fuller baseline: only what both have, on request.
    assert _compare(tmp_path, base, cur, "--shared-only") == 0
    out = capsys.readouterr().out
    assert "only in the baseline: stream" in out
    assert "Only in the baseline (not compared): 2 point(s)" in out  # 256 users, in the shared scenario


def test_a_gated_figure_missing_from_the_current_run_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    cur = modify(base, lambda p: replace(p, server_cpu_ms_per_request=None))
    assert _compare(tmp_path, base, cur) == 1
    assert "**REGRESSION** cpu_rel missing" in capsys.readouterr().out
    assert _compare(tmp_path, base, cur, "--gate", "throughput") == 0  # not gated: not required


def _cpu_rounds(run: RunResults, per_round: dict[int, float]) -> RunResults:
    return modify(run, lambda p: replace(p, server_cpu_ms_per_request=per_round[p.repeat]))


def test_five_rounds_use_the_exact_rank_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthetic_run(**BASE, repeats=5, noise=0.0, seed=1)  # type: ignore[arg-type]
    base = _cpu_rounds(base, {0: 5.0, 1: 5.4, 2: 4.8, 3: 5.2, 4: 5.1})
    slower = _cpu_rounds(base, {0: 7.1, 1: 6.9, 2: 7.3, 3: 7.0, 4: 6.8})  # +2 ms, every round
    assert _compare(tmp_path, base, slower) == 1
    out = capsys.readouterr().out
    assert "exact one-sided Mann-Whitney" in out and "**REGRESSION** cpu_rel +37%" in out
    assert "p=0.004" in out  # all 25 cross pairs worse: 1 / C(10, 5)
    # One slow round in five is noise, however large, for the rank test.
    outlier = _cpu_rounds(base, {0: 5.1, 1: 5.0, 2: 30.0, 3: 5.3, 4: 4.9})
    assert _compare(tmp_path, base, outlier) == 0


def test_a_slower_machine_moves_no_relative_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Head's rounds in a slower spell: server and mock CPU per request rise together; no regression."""
    base = synthetic_run(**BASE, repeats=5, noise=0.0, seed=1)  # type: ignore[arg-type]
    base = _cpu_rounds(base, {0: 5.0, 1: 5.4, 2: 4.8, 3: 5.2, 4: 5.1})

    def slower(p: Point) -> Point:
        assert p.cpu is not None and p.server_cpu_ms_per_request is not None
        cpu = replace(p.cpu, mock_percent=p.cpu.mock_percent * 1.2)
        return replace(p, cpu=cpu, server_cpu_ms_per_request=p.server_cpu_ms_per_request * 1.2)

    assert _compare(tmp_path, base, modify(base, slower)) == 0
    out = capsys.readouterr().out
    assert "cpu +20%: not gated" in out


def test_json_for_machines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    base = synthetic_run(**BASE, repeats=5, noise=0.0, seed=1)  # type: ignore[arg-type]
    base = _cpu_rounds(base, {0: 5.0, 1: 5.4, 2: 4.8, 3: 5.2, 4: 5.1})
    slower = _cpu_rounds(base, {0: 7.1, 1: 6.9, 2: 7.3, 3: 7.0, 4: 6.8})
    assert _compare(tmp_path, base, slower, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == "regression"
    row = data["rows"][0]
    assert row["test"] == "rank" and row["repeats"] == {"base": 5, "current": 5}
    cpu = next(f for f in row["figures"] if f["metric"] == "cpu")
    assert not cpu["regression"] and cpu["centre"] == "median" and cpu["base"] == 5.1 and cpu["cur"] == 7.0
    assert next(f for f in row["figures"] if f["metric"] == "cpu_rel")["regression"]  # the gated one


def test_other_machines_and_harness_versions_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    cur = synthetic_run(**BASE)  # type: ignore[arg-type]
    base.metadata.update(machine_id="aaaa", harness_version="1111")
    cur.metadata.update(machine_id="bbbb", harness_version="2222")
    assert _compare(tmp_path, base, cur) == 0
    out = capsys.readouterr().out
    assert "machine_id differs (baseline 'aaaa', current 'bbbb')" in out
    assert "harness_version differs (baseline '1111', current '2222')" in out


def test_a_lower_capacity_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    cur = synthetic_run(**BASE)  # type: ignore[arg-type]
    entry = {"variant": "fastapi-def", "scenario": "analyse", "users": 40, "throughput_rps": 38.0}
    base.capacity = [entry]
    cur.capacity = [{**entry, "users": 38}]
    assert _compare(tmp_path, base, cur) == 0  # within the 10% tolerance
    cur.capacity = [{**entry, "users": 24}]
    assert _compare(tmp_path, base, cur) == 1
    assert "| fastapi-def · analyse | 40 | 24 | **REGRESSION** |" in capsys.readouterr().out
    cur.capacity = []
    assert _compare(tmp_path, base, cur) == 1


def test_a_point_that_turns_invalid_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    cur = modify(
        synthetic_run(**BASE, throughput_factor={"flask-sync": 0.5}),  # type: ignore[arg-type]
        lambda p: (
            replace(p, valid=False, invalid_reasons=["loadgen CPU 97%"]) if p.variant == "flask-sync" else p
        ),
    )
    # A change that breaks a point must not pass because the broken point drops out of the comparison.
    assert _compare(tmp_path, base, cur) == 1
    out = capsys.readouterr().out
    assert "flask-sync · analyse · 8 users: valid in the baseline, invalid now (loadgen CPU 97%)" in out
    assert "flask-sync · analyse · 8 users: skipped: current repeat 0 (loadgen CPU 97%)" in out


def test_points_invalid_in_the_baseline_are_skipped_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = modify(
        synthetic_run(**BASE),  # type: ignore[arg-type]
        lambda p: (
            replace(p, valid=False, invalid_reasons=["loadgen CPU 97%"]) if p.variant == "flask-sync" else p
        ),
    )
    cur = synthetic_run(**BASE, throughput_factor={"flask-sync": 0.5})  # type: ignore[arg-type]
    assert _compare(tmp_path, base, cur) == 0  # nothing trustworthy to compare flask-sync against
    out = capsys.readouterr().out
    assert "flask-sync · analyse · 8 users: skipped: baseline repeat 0 (loadgen CPU 97%)" in out


def test_the_summary_is_appended_for_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = synthetic_run(**BASE)  # type: ignore[arg-type]
    assert _compare(tmp_path, run, run) == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n## Benchmark comparison")
    assert capsys.readouterr().out.strip() in text


def test_new_errors_are_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthetic_run(**BASE)  # type: ignore[arg-type]
    failing = modify(
        base, lambda p: replace(p, failed=p.completed // 20, failures_by_status={"503": p.completed // 20})
    )
    assert _compare(tmp_path, base, failing) == 1
    assert "**REGRESSION** errors +4.8 points" in capsys.readouterr().out


def test_the_two_runs_agreement_is_read_from_their_intervals_and_does_not_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    def with_ci(run: RunResults, p95: tuple[float, float], rate: tuple[float, float]) -> RunResults:
        return modify(
            run, lambda p: replace(p, latency_ci_ms={"p95": list(p95)}, throughput_ci_rps=list(rate))
        )

    base = with_ci(synthetic_run(**BASE), (990.0, 1030.0), (3.9, 4.1))  # type: ignore[arg-type]
    base.capacity = [
        {"variant": "fastapi-async", "scenario": "analyse", "users": 128, "interval": [128, 224]}
    ]
    same = with_ci(synthetic_run(**BASE), (1000.0, 1040.0), (3.95, 4.05))  # type: ignore[arg-type]
    same.capacity = [
        {"variant": "fastapi-async", "scenario": "analyse", "users": 170, "interval": [170, 176]}
    ]
    assert _compare(tmp_path, base, same) == 0
    out = capsys.readouterr().out
    assert "### Agreement (95 % intervals)" in out and "These differ" not in out
    apart = with_ci(synthetic_run(**BASE), (1100.0, 1150.0), (3.9, 4.1))  # type: ignore[arg-type]
    apart.capacity = [
        {"variant": "fastapi-async", "scenario": "analyse", "users": 320, "interval": [320, 332]}
    ]
    _compare(tmp_path, base, apart)
    out = capsys.readouterr().out
    assert "These differ beyond their noise" in out and "| p95 |" in out
    assert "| fastapi-async · analyse | 128-224 | 320-332 | **no** |" in out
