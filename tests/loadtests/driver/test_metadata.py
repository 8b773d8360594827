"""Run metadata from a real git checkout: what makes a run's code "dirty" and what does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

from loadtests.driver.metadata import collect_git


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=30)


def test_a_replaced_result_is_not_dirty_code_but_an_edited_file_is(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "results" / "reference").mkdir(parents=True)
    (repo / "loadtests").mkdir()
    (repo / "results" / "reference" / "results.json").write_text("{}\n")
    (repo / "loadtests" / "sweep.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    commit, dirty = collect_git(repo)
    assert commit is not None and len(commit) == 40 and dirty is False
    (repo / "results" / "reference" / "results.json").unlink()  # a new reference run is being made
    assert collect_git(repo) == (commit, False)
    (repo / "loadtests" / "sweep.py").write_text("x = 2\n")
    assert collect_git(repo) == (commit, True)
