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
    ],
)
def test_a_bad_target_file_names_the_file_and_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TargetError, match=r"target\.toml") as info:
        load_target(path)
    assert needle in str(info.value)
