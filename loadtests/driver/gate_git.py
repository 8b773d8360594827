"""The gate's git and environment work: resolve revisions, check out each in a temporary worktree, decide
whether it can reuse this environment or needs its own, and prove its code is what a server imports.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.driver.targets import TargetError, TargetSpec, load_target


class GateError(Exception):
    """The two revisions cannot be compared (exit 2); the message says what and what to do."""


def git(repo: Path, *args: str, timeout: float = 120.0) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GateError(f"git {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise GateError(f"git {' '.join(args[:2])}: {last}")
    return done.stdout.strip()


def toplevel(start: Path) -> Path:
    try:
        return Path(git(start, "rev-parse", "--show-toplevel"))
    except GateError:
        raise GateError(f"{start} is not inside a git repository; run the gate from a clone") from None


def resolve(repo: Path, revision: str) -> str:
    """The full commit id of ``revision``."""
    try:
        # --end-of-options: a revision starting with '-' is a name, never an option of rev-parse.
        return git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    except GateError:
        raise GateError(
            f"unknown revision {revision!r}: name a commit, branch or tag this clone has "
            "(in CI, fetch with history: actions/checkout fetch-depth: 0)"
        ) from None


def default_base(repo: Path, head: str) -> str:
    """The merge base of ``head`` with origin/main, or with main."""
    for upstream in ("origin/main", "main"):
        with contextlib.suppress(GateError):
            resolve(repo, upstream)
            return git(repo, "merge-base", "--end-of-options", upstream, head)
    raise GateError("no BASE given and neither origin/main nor main exists here; name BASE explicitly")


@dataclass(frozen=True, kw_only=True)
class Side:
    """One revision, checked out: its code and the interpreter its servers run with."""

    name: str  # "base" | "head"
    revision: str  # as given
    commit: str
    tree: Path  # the worktree
    python: str  # the interpreter for its servers
    env_reused: bool  # True: this environment (same pinned dependencies)
    targets: dict[str, TargetSpec] = field(default_factory=dict)  # --target: this revision's files

    @property
    def short(self) -> str:
        return self.commit[:10]


@contextlib.contextmanager
def worktree(repo: Path, commit: str, path: Path) -> Iterator[Path]:
    """A detached worktree of ``commit`` at ``path``, removed afterwards whatever happens."""
    git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        with contextlib.suppress(GateError):
            git(repo, "worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(GateError):
            git(repo, "worktree", "prune")


def repo_relative(repo: Path, path: Path) -> Path:
    """A --target file as a path inside the repository: each revision has its own copy of it."""
    resolved = path.resolve()
    if not resolved.is_file():
        raise GateError(f"--target: {path} is not a file")
    try:
        return resolved.relative_to(repo.resolve())
    except ValueError:
        raise GateError(
            f"--target: {path} is outside the repository {repo}; the gate reads it from each revision"
        ) from None


def side_targets(tree: Path, paths: list[Path], label: str) -> dict[str, TargetSpec]:
    """Each --target file as this revision has it (its app's code is this revision's too)."""
    specs: dict[str, TargetSpec] = {}
    for relative in paths:
        path = tree / relative
        if not path.is_file():
            raise GateError(f"{label} has no {relative}: add the target file there, or pick a later BASE")
        if not _inside(path, tree):
            raise GateError(
                f"{label}: {relative} is a symlink out of the revision's tree; the gate measures what each "
                "revision holds, so commit the target file itself"
            )
        try:
            spec = load_target(path)
        except TargetError as exc:
            raise GateError(f"{label}: {exc}") from None
        if not _inside(spec.cwd, tree):
            # Else both sides could start the same code from one directory and report no regression.
            raise GateError(
                f"{label}: {relative}: cwd {spec.cwd} is outside the revision's tree; the app must run "
                "from the revision it is measured for (a cwd inside the repository)"
            )
        specs[spec.name] = spec
    return specs


def _inside(path: Path, tree: Path) -> bool:
    """Whether ``path``, all symlinks followed, is ``tree`` or lies under it."""
    resolved, root = path.resolve(), tree.resolve()
    return resolved == root or root in resolved.parents


def check_harness(tree: Path, label: str) -> None:
    """A revision the gate can measure has the servers package and its registry."""
    for needed in ("servers/__main__.py", "servers/variants.py", "pyproject.toml"):
        if not (tree / needed).is_file():
            raise GateError(
                f"{label} has no {needed}: it predates the harness or is not this project; pick a later BASE"
            )


def dependency_key(tree: Path) -> str:
    """What decides the servers' environment: the direct dependencies and the pins in constraints.txt,
    less the pins of packages an extra names (test and lint tools: a new linter needs no new venv)."""
    try:
        constraints = (tree / "constraints.txt").read_text()
        project = tomllib.loads((tree / "pyproject.toml").read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise GateError(f"cannot read the dependencies of {tree.name}: {exc}") from None
    tools = {_name(d) for extra in project.get("optional-dependencies", {}).values() for d in extra}
    pins = sorted(
        line.strip()
        for line in constraints.splitlines()
        if line.strip() and not line.startswith("#") and _name(line) not in tools
    )
    deps = sorted(project.get("dependencies", []))
    return hashlib.sha256(repr((pins, deps)).encode()).hexdigest()


def _name(requirement: str) -> str:
    """The normalised project name at the start of a requirement or pin line."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else requirement.strip().lower()


def environment_for(tree: Path, label: str, *, own_key: str, scratch: Path) -> tuple[str, bool]:
    """(interpreter, reused): this one when the pins match the measurer's, else a fresh venv."""
    if dependency_key(tree) == own_key:
        return sys.executable, True
    venv = scratch / f"venv-{label}"
    print(f"gate: {label} pins other dependencies; installing them into a fresh environment", flush=True)
    deps = tomllib.loads((tree / "pyproject.toml").read_text()).get("project", {}).get("dependencies", [])
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", "constraints.txt", *deps],
    ]
    for argv in steps:
        done = subprocess.run(argv, cwd=tree, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise GateError(f"{label}: installing its dependencies failed ({last})")
    return str(venv / "bin" / "python"), False


def server_env(tree: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment a side's servers run in: its tree first on the import path."""
    return {**env, "PYTHONPATH": str(tree)}


def check_imports_from(side: Side) -> None:
    """The servers package a side's processes import is that side's, not the measurer's installed copy."""
    probe = "import servers, mock_llm; print(servers.__file__)"
    done = subprocess.run(
        [side.python, "-c", probe],
        cwd=side.tree,
        env=server_env(side.tree, dict(os.environ)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    where = Path(done.stdout.strip() or "/nonexistent").resolve()
    if done.returncode != 0 or side.tree.resolve() not in where.parents:
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"imported {where}"
        raise GateError(f"{side.name} ({side.short}): its servers package does not import ({detail})")
