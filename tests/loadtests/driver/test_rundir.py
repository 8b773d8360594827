"""The run directory's `latest` link: replaced in one step, never missing, never lost to a failed link; its
logs without a path of this machine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadtests.driver.rundir import link_latest, scrub_logs


def test_latest_moves_to_the_new_run(tmp_path: Path) -> None:
    for name in ("run-1", "run-2"):
        (tmp_path / name).mkdir()
        link_latest(tmp_path / name)
        assert (tmp_path / "latest").resolve() == (tmp_path / name).resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run-1", "run-2"]  # no temporary left


def test_a_link_that_cannot_be_made_leaves_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removing the old link before making the new one left results/ without `latest` when the second
    step failed (and a reader between the two steps found none)."""
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-2").mkdir()
    link_latest(tmp_path / "run-1")

    def refuse(self: Path, *_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    link_latest(tmp_path / "run-2")
    assert (tmp_path / "latest").resolve() == (tmp_path / "run-1").resolve()


def test_a_reader_never_finds_latest_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step of the replacement is watched: at no point between two of them is `latest` gone."""
    import os

    latest = tmp_path / "latest"
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-2").mkdir()
    link_latest(tmp_path / "run-1")
    seen: list[bool] = []
    real_unlink, real_symlink, real_replace = Path.unlink, Path.symlink_to, os.replace

    def watch(real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            seen.append(latest.is_symlink())
            return result

        return step

    monkeypatch.setattr(Path, "unlink", watch(real_unlink))
    monkeypatch.setattr(Path, "symlink_to", watch(real_symlink))
    monkeypatch.setattr(os, "replace", watch(real_replace))
    link_latest(tmp_path / "run-2")
    assert seen and all(seen), seen
    assert latest.resolve() == (tmp_path / "run-2").resolve()


def test_scrub_logs_leaves_no_path_of_this_machine(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[3]
    traceback = (
        f'  File "{repo}/servers/asgi_gate.py", line 90, in __call__\n'
        f'  File "{sys.prefix}/lib/python3.11/site-packages/uvicorn/main.py", line 1\n'
        f'  File "{sys.base_prefix}/lib/python3.11/threading.py", line 982, in run\n'
    )
    (tmp_path / "a.server.log").write_text(traceback)
    (tmp_path / "b.locust.log").write_text("nothing to scrub\n")
    assert scrub_logs(tmp_path) == 1
    text = (tmp_path / "a.server.log").read_text()
    assert str(repo) not in text and sys.base_prefix not in text and str(Path.home()) not in text
    assert '"<repo>/servers/asgi_gate.py"' in text and "site-packages/uvicorn/main.py" in text
