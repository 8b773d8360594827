"""Target files: a bad one names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.driver.targets import TargetError, load_target

REPO = Path(__file__).resolve().parents[3]


GOOD = """name = "t"
command = ["python", "-m", "http.server", "{port}"]
health = "/"
[scenarios.analyse]
path = "/x"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD.replace('name = "t"', 'name = "t"\ncolour = "red"'), "unknown key 'colour'"),
        (GOOD.replace('health = "/"\n', ""), "missing key 'health'"),
        (GOOD.replace('"{port}"', '"{prt}"'), "unknown placeholder {prt}"),
        (GOOD.replace("[scenarios.analyse]", "[scenarios.upload]"), "unknown scenario 'upload'"),
        (GOOD.replace('path = "/x"', 'path = "/x"\nexpect_status = 99'), "expect_status"),
        ('cwd = "nowhere"\n' + GOOD, "is not a directory"),
        ("name = ", "not valid TOML"),
        # TOML's inf and nan: a start-up wait that never ends, or never compares
        ("startup_timeout_s = inf\n" + GOOD, "startup_timeout_s must be a positive, finite number"),
        ("startup_timeout_s = nan\n" + GOOD, "startup_timeout_s must be a positive, finite number"),
        ("startup_timeout_s = -inf\n" + GOOD, "startup_timeout_s"),
        ("startup_timeout_s = true\n" + GOOD, "startup_timeout_s"),
        (
            GOOD.replace('"python"', '"no-such-server-installed"'),
            "'no-such-server-installed' is not installed",
        ),
        (GOOD.replace('"python"', '"./missing.sh"'), "'./missing.sh' is not installed"),
    ],
)
def test_a_bad_target_file_names_the_file_and_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TargetError, match=r"target\.toml") as info:
        load_target(path)
    assert needle in str(info.value)


def test_a_targets_python_is_the_apps_interpreter_when_the_action_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from loadtests.driver.targets import APP_PYTHON_ENV

    spec = load_target(_write(tmp_path, GOOD))
    monkeypatch.delenv(APP_PYTHON_ENV, raising=False)
    assert spec.argv({"port": "1"})[0] == sys.executable  # installed together, as in the examples
    app_bin = tmp_path / "app-venv" / "bin"
    app_bin.mkdir(parents=True)
    (app_bin / "gunicorn").write_text("#!/bin/sh\n")
    (app_bin / "gunicorn").chmod(0o755)
    monkeypatch.setenv(APP_PYTHON_ENV, str(app_bin / "python3"))
    assert spec.argv({"port": "1"})[0] == str(app_bin / "python3")
    gunicorn = load_target(_write(tmp_path, GOOD.replace('["python", "-m", "http.server"', '["gunicorn"')))
    assert gunicorn.argv({"port": "1"})[0] == str(app_bin / "gunicorn")  # beside the app's python first
