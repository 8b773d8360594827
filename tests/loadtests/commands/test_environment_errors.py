"""What the machine or the user's setup gets wrong is one line and exit 2 in sweep and capacity, never a
traceback and never exit 1 (a measured failure): a full disk, a target whose command is not installed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from loadtests.__main__ import main as cli

COMMANDS = {
    "sweep": ["sweep", "--variants", "flask-sync", "--scenarios", "analyse", "--users", "1"],
    "capacity": ["capacity", "--variants", "flask-sync", "--scenarios", "analyse"],
}
TARGET = """name = "t"
command = ["{program}", "{{port}}"]
health = "/"
[scenarios.analyse]
path = "/x"
"""


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every results file is written to /dev/full, as on a full disk: the kernel's own ENOSPC."""

    def on_dev_full(*_args: object, **_kwargs: object) -> tuple[int, str]:
        # The path is what a failed write removes: a file of the test's, never the device.
        return os.open("/dev/full", os.O_WRONLY), str(tmp_path / "partial.tmp")

    monkeypatch.setattr(tempfile, "mkstemp", on_dev_full)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_full_disk_is_one_line_and_exit_2(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first write of results.json fails (before any process starts)."""
    full_disk(monkeypatch, tmp_path)
    assert cli([*COMMANDS[command], "--out", str(tmp_path / "run")]) == 2
    err = _one_line(capsys)
    assert "No space left on device" in err and "results" in err, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_target_command_that_is_not_installed_is_one_line_and_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "target.toml"
    path.write_text(TARGET.format(program="no-such-server-anywhere"))
    argv = [command, "--target", str(path), "--scenarios", "analyse", "--out", str(tmp_path / "run")]
    assert cli(argv) == 2
    assert "'no-such-server-anywhere' is not installed" in _one_line(capsys)
