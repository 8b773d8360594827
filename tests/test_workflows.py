"""Every action a workflow or the composite action uses is pinned by full commit, its tag in a comment, and
the same action at the same commit everywhere: a tag can be moved to other code after review, a commit not."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = sorted([*REPO.glob(".github/workflows/*.yml"), REPO / "action.yml", *REPO.glob("examples/ci/*.yml")])
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
TAG_COMMENT = re.compile(r"\s+#\s*v\d+(\.\d+)*\b")
# The example tells its reader to pin the harness at the commit they reviewed: a placeholder, not a pin.
PLACEHOLDERS = {"OWNER/llm-wait-bench@COMMIT"}


def uses_lines() -> list[tuple[str, str, str]]:
    """(file, action reference, what follows it on the line) for every remote action."""
    found = []
    for path in FILES:
        for line in path.read_text().splitlines():
            match = USES.match(line)
            if match and not match.group(1).startswith("./") and match.group(1) not in PLACEHOLDERS:
                found.append((str(path.relative_to(REPO)), match.group(1), match.group(2)))
    return found


def test_the_files_use_actions() -> None:
    assert {f for f, _, _ in uses_lines()} >= {".github/workflows/ci.yml", "action.yml"}


def test_every_action_is_pinned_by_commit_with_its_tag() -> None:
    offenders = [
        f"{f}: {ref}{rest}"
        for f, ref, rest in uses_lines()
        if not PINNED.fullmatch(ref) or not TAG_COMMENT.match(rest)
    ]
    assert offenders == []


def test_one_action_one_commit_everywhere() -> None:
    commits: dict[str, set[str]] = {}
    for _, ref, rest in uses_lines():
        name, _, commit = ref.partition("@")
        commits.setdefault(name, set()).add(f"{commit}{rest.strip()}")
    assert {name: pins for name, pins in commits.items() if len(pins) > 1} == {}
