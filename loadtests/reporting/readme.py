"""The README's generated blocks: the five-line answer, the verdict, the key figures and loadtests/README.md's
accuracy section, each written from the committed reference run between its markers (never copied by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests.errors import UserError
from loadtests.reporting.accuracy import accuracy_block
from loadtests.reporting.answer import answer_block
from loadtests.reporting.figures import figures_block
from loadtests.results import RunResults

REPO = Path(__file__).resolve().parents[2]
START, END = "<!-- verdict:start -->", "<!-- verdict:end -->"
ACCURACY_START, ACCURACY_END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"
FIGURES_START, FIGURES_END = "<!-- figures:start -->", "<!-- figures:end -->"
ANSWER_START, ANSWER_END = "<!-- answer:start -->", "<!-- answer:end -->"
REPEAT_START, REPEAT_END = "<!-- repeat:start -->", "<!-- repeat:end -->"
DEFAULT_VERDICT = REPO / "results" / "reference" / "verdict.json"
DEFAULT_REPEAT_VERDICT = REPO / "results" / "reference-repeat" / "verdict.json"
NO_REPEAT = "No repeat of the reference run is committed: `make bench-full` twice on one commit makes one."
DEFAULT_README = REPO / "README.md"
DEFAULT_ACCURACY_README = REPO / "loadtests" / "README.md"


def verdict_block(verdict: dict[str, Any]) -> str:
    """One line per claim: its status, the claim, and the evidence that decided it."""
    lines = []
    for claim in verdict.get("claims", []):
        evidence = str(claim.get("evidence", "")).rstrip(".")
        lines.append(f"- **{claim['status']}**: {claim['statement']} — {evidence}.")
    return "\n".join(lines)


def with_block(readme: str, block: str, *, source: str, start: str = START, end: str = END) -> str:
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise UserError(f"{source}: needs exactly one {start} ... {end} pair, in that order")
    head, rest = readme.split(start, 1)
    _old, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def readme_texts(
    run: RunResults,
    verdict: dict[str, Any],
    *,
    readme: tuple[Path, str],
    accuracy_readme: tuple[Path, str],
    run_name: str,
    repeat: str = NO_REPEAT,
) -> list[tuple[Path, str, str, str]]:
    """(path, old text, new text, what) for the README (answer, verdict, figures, the reference run against
    its repeat: ``repeat``, rendered already) and loadtests/README.md."""
    path, text = readme
    new = with_block(
        text,
        answer_block(run, verdict, run_name=run_name),
        source=str(path),
        start=ANSWER_START,
        end=ANSWER_END,
    )
    new = with_block(new, verdict_block(verdict), source=str(path))
    new = with_block(
        new, figures_block(run, run_name=run_name), source=str(path), start=FIGURES_START, end=FIGURES_END
    )
    new = with_block(new, repeat, source=str(path), start=REPEAT_START, end=REPEAT_END)
    acc_path, acc_text = accuracy_readme
    acc_new = with_block(
        acc_text,
        accuracy_block(run, run_name=run_name),
        source=str(acc_path),
        start=ACCURACY_START,
        end=ACCURACY_END,
    )
    readme_pair = (path, text, new, "answer, verdict, figures and repeat")
    return [readme_pair, (acc_path, acc_text, acc_new, "accuracy")]


def shown_name(run_dir: Path) -> str:
    """The run as the repository names it (results/reference), not as this machine's path."""
    try:
        return str(run_dir.resolve().relative_to(REPO))
    except ValueError:
        return run_dir.name
