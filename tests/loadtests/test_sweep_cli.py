"""Bad options: one clear line, exit 2, no traceback; --resume refuses different settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.errors import UserError
from loadtests.results import RunResults, load_results
from loadtests.sweep import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--users", "4,x"], "--users"),
        (["--variants", "flask-turbo"], "flask-turbo"),
        (["--scenarios", "analyse,upload"], "upload"),
        (["--time-scale", "-1"], "--time-scale"),
        (["--profile", "huge"], "--profile"),
        (["--mock-profile", "gpt"], "gpt"),
    ],
)
def test_bad_options_fail_with_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=needle):
        main([*args, "--out", str(tmp_path / "run")])


def test_bad_option_through_the_command_line_is_one_line_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "sweep", "--users", "0", "--out", str(tmp_path / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--users" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_resume_names_the_setting_that_differs(tmp_path: Path) -> None:
    settings = {"variants": ["flask-sync"], "scenarios": ["analyse"], "users": [2, 8], "rates": [],
                "time_scale": 0.05, "duration_s": 1.0}  # fmt: skip
    RunResults(metadata={"preset": "default", "sweep_settings": settings}).save(tmp_path)
    with pytest.raises(UserError, match=r"--users \(run has 2,8, given 4\)"):
        main(["--resume", str(tmp_path), "--users", "4"])
    with pytest.raises(UserError, match=r"no results\.json"):
        main(["--resume", str(tmp_path / "nothing")])


def test_a_variant_that_will_not_start_is_recorded_and_fails_the_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BENCH_API_TOKENS", " ")  # the server refuses to start without a token
    run_dir = tmp_path / "run"
    code = main(["--variants", "flask-sync", "--scenarios", "analyse", "--users", "2", "--time-scale", "0.05",
                 "--duration", "1", "--out", str(run_dir)])  # fmt: skip
    assert code == 1
    variant = load_results(run_dir).variants[0]
    assert variant.name == "flask-sync" and not variant.verified
    assert variant.log_file == "logs/flask-sync.server.log" and (run_dir / variant.log_file).exists()
    assert (
        variant.reason is not None
        and "BENCH_API_TOKENS" in variant.reason
        and str(tmp_path) not in variant.reason
    )


def test_none_drops_a_preset_load_model(tmp_path: Path) -> None:
    # --users none: the preset's closed-loop levels go; with no --rate nothing is left to measure.
    with pytest.raises(UserError, match="give --users"):
        main(["--users", "none", "--out", str(tmp_path / "run")])


# Every entry point a user types: a bad invocation is one `error:` line and exit 2, never a usage block or
# a traceback.
ENTRY_POINTS = [
    ["-m", "loadtests", "sweep", "--bogus"],
    ["-m", "loadtests.sweep", "--bogus"],
    ["-m", "loadtests", "capacity", "--max-users", "x"],
    ["-m", "loadtests", "report"],
    ["-m", "loadtests", "compare", "only-one"],
    ["-m", "loadtests", "gate", "--rounds", "1"],
    ["-m", "loadtests", "nosuch"],
    ["-m", "loadtests"],
    ["-m", "loadtests.driver.mockbench", "--bogus"],
    ["-m", "loadtests.reporting.workchart"],
    ["-m", "servers"],
    ["-m", "servers", "run"],
    ["-m", "mock_llm", "--bogus"],
    ["-m", "loadtests", "sweep", "--preset", "quick", "--out", "/proc/no-such-dir/run"],
    ["-m", "loadtests", "readme", "--verdict", "README.md"],
]


@pytest.mark.parametrize("argv", ENTRY_POINTS, ids=" ".join)
def test_every_entry_point_fails_a_bad_invocation_in_one_line(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert not done.stdout.strip()


def test_dry_run_prints_the_plan_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["--dry-run", "--variants", "flask-sync,fastapi-async", "--scenarios", "analyse,stream"]
    assert main([*args, "--users", "1,8", "--rate", "none", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "plan: 8 points over 2 variant runs" in printed and "(nothing run)" in printed
    assert "flask-sync (mock article): analyse 1 u, analyse 8 u, stream 1 u, stream 8 u" in printed
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30.0), ("30s", 30.0), ("2m", 120.0), ("1.5h", 5400.0), ("500ms", 0.5)]
)
def test_durations_take_units(text: str, seconds: float) -> None:
    from loadtests.sweep import parse_duration

    assert parse_duration(text, "--duration") == seconds


def test_the_old_profile_flag_still_selects_a_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "quick", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "--profile is now --preset" in captured.err and "plan: 6 points" in captured.out
    with pytest.raises(UserError, match="give one of them"):
        main(["--profile", "quick", "--preset", "full", "--dry-run"])


@pytest.mark.parametrize("command", ["sweep", "capacity", "faults", "reach", "gate"])
def test_every_option_says_its_default_in_help(command: str) -> None:
    import argparse
    import importlib

    module = {
        "sweep": "loadtests.sweep",
        "capacity": "loadtests.driver.capacity",
        "faults": "loadtests.driver.faults",
        "reach": "loadtests.driver.reach",
        "gate": "loadtests.driver.gate",
    }
    parser = importlib.import_module(module[command]).build_parser()
    silent = [
        a.option_strings[0]
        for a in parser._actions
        if a.option_strings
        and a.help not in (None, argparse.SUPPRESS)
        and not isinstance(a, argparse._HelpAction | argparse._StoreTrueAction)
        and "default" not in a.help
        and a.dest not in ("resume", "targets", "out", "reclassify", "target")  # nothing to default
    ]
    assert silent == []
    assert "(default: None)" not in parser.format_help()


def test_capacity_help_shows_its_own_defaults_not_the_sweeps() -> None:
    from loadtests.driver.capacity import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "or 'all' (default: analyse)" in text and "the preset's" not in text
