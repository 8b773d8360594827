"""Bad options: one clear line, exit 2, no traceback; --resume refuses different settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.errors import UserError
from loadtests.results import RunResults
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
