"""python -m loadtests sweep as a user meets it: its options, --help, --dry-run, --resume, and one line for
every mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.commands.sweep import main
from loadtests.errors import UserError
from loadtests.results import RunResults, load_results

REPO = Path(__file__).resolve().parents[3]


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
        "sweep": "loadtests.commands.sweep",
        "capacity": "loadtests.commands.capacity",
        "faults": "loadtests.commands.faults",
        "reach": "loadtests.commands.reach",
        "gate": "loadtests.commands.gate",
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
    from loadtests.commands.capacity import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "or 'all' (default: analyse)" in text and "the preset's" not in text


@pytest.mark.parametrize(
    "args",
    [
        ["--time-scale", "nan"],
        ["--duration", "inf"],
        ["--rate", "1,nan"],
        ["--warmup=-inf"],
        ["--rate", "inf"],
    ],
    ids=["nan-scale", "inf-duration", "nan-rate", "minus-inf-warmup", "inf-rate"],
)
def test_non_finite_numbers_are_refused(args: list[str], tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"{args[0].split('=')[0]}.*finite"):
        main([*args, "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("stored", "needle"),
    [({"time_scale": float("nan")}, "--time-scale"), ({"users": [2, -8]}, "--users"),
     ({"duration_s": "soon"}, "--duration"), ({"variants": ["flask-turbo"]}, "flask-turbo"),
     ({"bogus_only": 1, "variants": 3}, "not valid")],
    ids=["nan", "negative-users", "string-duration", "unknown-variant", "garbage"],
)  # fmt: skip
def test_resume_validates_the_stored_settings(stored: dict[str, object], needle: str, tmp_path: Path) -> None:
    settings = {"variants": ["flask-sync"], "scenarios": ["analyse"], "users": [2], "rates": [],
                "time_scale": 0.05, "duration_s": 1.0, **stored}  # fmt: skip
    RunResults(metadata={"preset": "default", "sweep_settings": settings}).save(tmp_path)
    with pytest.raises(UserError, match=needle) as info:
        main(["--resume", str(tmp_path)])
    assert str(info.value).startswith("--resume:") and "\n" not in str(info.value)


def test_a_run_directory_takes_one_sweep_at_a_time(tmp_path: Path) -> None:
    from loadtests.driver.rundir import lock_run_dir

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    held = lock_run_dir(run_dir)  # as a running sweep holds it
    try:
        with pytest.raises(UserError, match="in use by another sweep"):
            main(["--users", "2", "--out", str(run_dir)])
        assert not (run_dir / "results.json").exists()
    finally:
        os.close(held)
    os.close(lock_run_dir(run_dir))  # free again once the holder is gone
