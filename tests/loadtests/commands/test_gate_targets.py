"""Your own app in the gate: each side's target must be that revision's (its file and its cwd inside the
revision's tree), must start, must call the mock, and starts without the job's secrets; every refusal is
one line and exit 2 (1 means a regression), as is a full disk or a second gate on the same directory."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from loadtests.__main__ import main as cli

REPO = Path(__file__).resolve().parents[3]
GIT_ID = ["-c", "user.name=gate test", "-c", "user.email=gate-test@example.invalid"]
EXAMPLE = REPO / "examples" / "fastapi-chat"

# An app that answers without calling any model, and writes down the environment it was started with.
SILENT_APP = """import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

with open(os.environ["ENV_DUMP"], "w") as out:
    json.dump(dict(os.environ), out)


class Handler(BaseHTTPRequestHandler):
    def _ok(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self):
        self._ok()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._ok()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _repo(tmp_path: Path, target: str | None = None) -> Path:
    """An app's repository: the FastAPI example at bench/ (its target file replaced by ``target``)."""
    repo = tmp_path / "acme"
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "app.py").write_text((EXAMPLE / "app.py").read_text())
    (repo / "bench" / "target.toml").write_text(target or (EXAMPLE / "target.toml").read_text())
    _git(repo, "init", "--quiet")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "the app")
    return repo


def _gate(repo: Path, monkeypatch: pytest.MonkeyPatch, out: Path, *extra: str) -> int:
    monkeypatch.chdir(repo)
    argv = ["gate", "HEAD", "HEAD", "--target", "bench/target.toml", "--preset", "gate-tiny", "--rounds", "3"]
    return cli([*argv, "--out", str(out), *extra])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_a_cwd_outside_the_revisions_tree_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for cwd in ("/", "../.."):
        target = (EXAMPLE / "target.toml").read_text().replace('cwd = "."', f'cwd = "{cwd}"')
        repo = _repo(tmp_path / cwd.replace("/", "_"), target)
        assert _gate(repo, monkeypatch, tmp_path / f"out{len(cwd)}") == 2
        err = _one_line(capsys)
        assert "is outside the revision's tree" in err and "bench/target.toml" in err, err


def test_a_target_file_that_is_a_symlink_out_of_its_tree_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Base holds the target file as a link to a file outside the repository, head as a file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "target.toml").write_text((EXAMPLE / "target.toml").read_text())
    repo = _repo(tmp_path)
    link = repo / "bench" / "target.toml"
    link.unlink()
    link.symlink_to(elsewhere / "target.toml")
    _git(repo, "commit", "--quiet", "-am", "the target file as a link")
    link.unlink()
    link.write_text((EXAMPLE / "target.toml").read_text())
    _git(repo, "commit", "--quiet", "-am", "the target file itself")
    monkeypatch.chdir(repo)
    assert cli(["gate", "HEAD~1", "HEAD", "--target", "bench/target.toml", "--out", str(tmp_path / "o")]) == 2
    err = _one_line(capsys)
    assert "base HEAD~1" in err and "is a symlink out of the revision's tree" in err, err


def test_a_target_command_that_is_not_installed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = (EXAMPLE / "target.toml").read_text().replace('["uvicorn",', '["no-such-server-anywhere",')
    assert _gate(_repo(tmp_path, target), monkeypatch, tmp_path / "out") == 2
    assert "'no-such-server-anywhere' is not installed" in _one_line(capsys)


def test_a_second_gate_on_the_same_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtests.commands import gate
    from loadtests.driver.gate_git import GateError
    from loadtests.driver.rundir import lock_run_dir

    def measuring(*_args: object, **_kwargs: object) -> None:
        raise GateError("the second gate went on to measure")

    monkeypatch.setattr(gate, "prepare_sides", measuring)
    out = tmp_path / "out"
    out.mkdir()
    held = lock_run_dir(out)  # as a running gate holds it
    try:
        assert _gate(_repo(tmp_path), monkeypatch, out) == 2
        assert "is in use by another sweep or gate" in _one_line(capsys)
    finally:
        os.close(held)


def test_a_full_disk_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtests.driver import gate

    def on_dev_full(*_args: object, **_kwargs: object) -> tuple[int, str]:
        # results.json written to /dev/full: the kernel's own ENOSPC (the path is what a failed write removes)
        return os.open("/dev/full", os.O_WRONLY), str(tmp_path / "partial.tmp")

    monkeypatch.setattr(gate, "measure_round", lambda *_a, **_k: [])  # no processes: the write is the point
    monkeypatch.setattr(tempfile, "mkstemp", on_dev_full)
    assert _gate(_repo(tmp_path), monkeypatch, tmp_path / "out") == 2
    assert "No space left on device" in _one_line(capsys)


def test_an_app_that_never_calls_the_mock_is_refused_and_saw_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its SDK would have gone elsewhere (a paid API, with the job's key): refused at verification, in one
    line. It started with PATH and the harness's variables, not with the job's secrets."""
    dump = tmp_path / "app-env.json"
    target = f"""name = "silent"
command = ["python", "app.py", "{{port}}"]
health = "/health"
[env]
ENV_DUMP = "{dump}"
[scenarios.analyse]
path = "/x"
json = {{ text = "hello" }}
"""
    repo = _repo(tmp_path, target)
    (repo / "bench" / "app.py").write_text(SILENT_APP)
    _git(repo, "commit", "--quiet", "-am", "an app that calls no model")
    monkeypatch.setenv("JOB_SECRET_TOKEN", "ghp-not-for-the-app")
    assert _gate(repo, monkeypatch, tmp_path / "out") == 2
    err = _one_line(capsys)
    assert "the app made no call to the mock: is its SDK pointed at ANTHROPIC_BASE_URL?" in err, err
    seen = json.loads(dump.read_text())
    assert "JOB_SECRET_TOKEN" not in seen and "ghp-not-for-the-app" not in json.dumps(seen)
    assert seen["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:") and seen["PATH"] == os.environ["PATH"]
