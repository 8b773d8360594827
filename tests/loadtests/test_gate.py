"""The gate end to end: bad revisions exit 2 in one line, a tiny real gate writes both sides and cleans up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.__main__ import main as cli

REPO = Path(__file__).resolve().parents[2]
GIT_ID = ["-c", "user.name=gate test", "-c", "user.email=gate-test@example.invalid"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _worktrees() -> str:
    return _git(REPO, "worktree", "list")


def test_an_unknown_revision_exits_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["gate", "no-such-revision-anywhere", "HEAD"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown revision 'no-such-revision-anywhere'" in err


def test_bad_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["gate", "HEAD", "HEAD", "--rounds", "2"]) == 2
    assert "--rounds must be at least 3" in capsys.readouterr().err


def test_a_revision_without_the_servers_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _git(other, "init", "--quiet")
    (other / "README.md").write_text("not this project\n")
    _git(other, "add", "README.md")
    _git(other, "commit", "--quiet", "-m", "a repository without the harness")
    monkeypatch.chdir(other)
    assert cli(["gate", "HEAD", "HEAD", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no servers/__main__.py" in err
    assert "bench-gate-" not in _git(other, "worktree", "list")


def test_a_side_that_will_not_start_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "--quiet", "--shared", str(REPO), str(clone))
    (clone / "servers" / "__main__.py").write_text("raise SystemExit('this revision cannot serve')\n")
    _git(clone, "commit", "--quiet", "-am", "a server that will not start")
    monkeypatch.chdir(clone)
    assert cli(["gate", "HEAD", "HEAD~1", "--preset", "gate-tiny", "--rounds", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "base (" in err and "cannot be measured" in err and "variant fastapi-async" in err
    assert "bench-gate-" not in _git(clone, "worktree", "list")


@pytest.mark.slow
def test_a_tiny_gate_of_head_against_itself(tmp_path: Path) -> None:
    """Real processes, both sides measured from worktrees of HEAD; a wide tolerance so 3 rounds pass."""
    out = tmp_path / "gate"
    summary = tmp_path / "step-summary.md"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "gate", "HEAD", "HEAD", "--preset", "gate-tiny",
         "--rounds", "3", "--tolerance", "0.9", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={**_env(), "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    data = json.loads((out / "comparison.json").read_text())
    assert data["result"] == "ok" and data["gate"]["rounds"] == 3
    for side in ("base", "head"):
        results = json.loads((out / side / "results.json").read_text())
        assert sorted(p["repeat"] for p in results["points"]) == [0, 1, 2]
        assert results["metadata"]["gate"]["side"] == side
        assert all(p["server_cpu_ms_per_request"] and p["overhead_ms"] for p in results["points"])
    # Interleaved: base first in round 1, head first in round 2.
    rounds = [line.split(":")[0].split()[-1] for line in done.stdout.splitlines() if "round " in line]
    assert rounds[:4] == ["base", "head", "head", "base"], done.stdout
    assert summary.read_text().startswith("# Benchmark gate: ✅ no regression")
    assert (out / "gate.png").stat().st_size > 10_000
    assert "bench-gate-" not in _worktrees()


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}


def test_the_environment_is_reused_unless_a_runtime_pin_differs(tmp_path: Path) -> None:
    from loadtests.gate_git import dependency_key

    def tree(name: str, pins: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "pyproject.toml").write_text(
            '[project]\nname = "x"\ndependencies = ["flask"]\n'
            '[project.optional-dependencies]\ndev = ["ruff"]\n'
        )
        (path / "constraints.txt").write_text(pins)
        return path

    base = dependency_key(tree("a", "Flask==3.1.3\nruff==0.17.6\n"))
    assert dependency_key(tree("b", "Flask==3.1.3\nruff==0.18.0\n")) == base  # a lint tool: same env
    assert dependency_key(tree("c", "Flask==3.1.4\nruff==0.17.6\n")) != base
