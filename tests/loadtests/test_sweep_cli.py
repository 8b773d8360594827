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
