"""The gate end to end: bad revisions exit 2 in one line, a tiny real gate writes both sides and cleans up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.__main__ import main as cli

REPO = Path(__file__).resolve().parents[3]
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
    # After --, a revision that starts with '-' is a name (git's --end-of-options), never an option.
    assert cli(["gate", "--", "--output=/tmp/x", "HEAD"]) == 2
    assert "unknown revision '--output=/tmp/x'" in capsys.readouterr().err


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
@pytest.mark.timeout(360)  # two worktrees, three rounds: the subprocess has 300 s, let it finish
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
    from loadtests.driver.gate_git import dependency_key

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


def _app_repo(tmp_path: Path) -> Path:
    """An unrelated team's repository: the FastAPI example at bench/, committed once."""
    repo = tmp_path / "acme"
    (repo / "bench").mkdir(parents=True)
    for name in ("app.py", "target.toml"):
        (repo / "bench" / name).write_text((REPO / "examples" / "fastapi-chat" / name).read_text())
    _git(repo, "init", "--quiet")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "the app")
    return repo


@pytest.mark.slow
def test_a_gate_on_your_own_app_sees_20_ms_of_cpu_per_request(tmp_path: Path) -> None:
    """--target in a repository without the harness: each side starts its own revision of the app, and
    head's busy loop (20 ms of CPU in every request) fails the gate on CPU per request."""
    repo = _app_repo(tmp_path)
    app = repo / "bench" / "app.py"
    slow = app.read_text().replace(
        "    _check(x_api_key)\n    message = await",
        "    _check(x_api_key)\n    spin = time.perf_counter() + 0.020\n"
        "    while time.perf_counter() < spin:  # a regression: 20 ms of CPU per request\n"
        "        pass\n    message = await",
        1,
    )
    slow = slow.replace(
        "from __future__ import annotations\n", "from __future__ import annotations\n\nimport time\n", 1
    )
    assert slow.count("import time") == 1
    app.write_text(slow)
    _git(repo, "commit", "--quiet", "-am", "slower")
    out = tmp_path / "gate"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "gate", "HEAD~1", "HEAD", "--target", "bench/target.toml",
         "--preset", "gate-tiny", "--rounds", "3", "--out", str(out)],
        cwd=repo, capture_output=True, text=True, timeout=400, check=False, env=_env(),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    data = json.loads((out / "comparison.json").read_text())
    rows = {row["variant"]: row for row in data["rows"]}
    assert list(rows) == ["fastapi-chat"]
    regressed = {c["metric"] for c in rows["fastapi-chat"]["figures"] if c["regression"]}
    assert "cpu_rel" in regressed, rows
    for side in ("base", "head"):
        results = json.loads((out / side / "results.json").read_text())
        assert {p["scenario"] for p in results["points"]} == {"overhead"}
        assert "target files" in results["metadata"]["gate"]["measured_code"]
        assert results["metadata"]["targets"]["fastapi-chat"]["file"] == "bench/target.toml"
    assert "bench-gate-" not in _git(repo, "worktree", "list")


def test_a_target_file_head_lacks_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _app_repo(tmp_path)
    (repo / "bench" / "other.toml").write_text((repo / "bench" / "target.toml").read_text())
    monkeypatch.chdir(repo)
    assert cli(["gate", "HEAD", "HEAD", "--target", "bench/other.toml", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no bench/other.toml" in err, err
    assert cli(["gate", "HEAD", "HEAD", "--target", str(REPO / "README.md")]) == 2
    assert "outside the repository" in capsys.readouterr().err


def test_the_action_runs_the_gate_with_flags_it_has() -> None:
    """action.yml calls `llm-wait-bench gate` with --target/--preset/--out and its preset default."""
    from loadtests.commands.gate import build_parser
    from loadtests.driver.gate import GATE_PRESETS

    action = (REPO / "action.yml").read_text()
    line = '"${BENCH}" gate --target "${TARGET}" --preset "${PRESET}" --out "${out}" -- "${base}" "${head}"'
    assert line in action
    default_preset = action.split("  preset:", 1)[1].split("default:", 1)[1].split()[0]
    assert default_preset in GATE_PRESETS
    argv = ["--target", "t.toml", "--preset", default_preset, "--out", "o", "--", "-b", "h"]
    args = build_parser().parse_args(argv)
    assert args.targets == ["t.toml"] and (args.base, args.head) == ("-b", "h")  # after --, a name


def test_the_ci_docs_show_the_ci_workflow_file_as_it_is() -> None:
    workflow = (REPO / "examples" / "ci" / "llm-wait-bench.yml").read_text()
    assert f"```yaml\n{workflow}```" in (REPO / "docs" / "your-app-and-ci.md").read_text()
