"""python -m loadtests report and readme: bad arguments, a second chart set, the README's generated blocks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from loadtests import __main__ as dispatcher
from loadtests.analysis.synthetic import synthetic_run
from loadtests.commands import report
from loadtests.results import load_results


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_cli_bad_arguments_exit_two_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(tmp_path), "--theme", "purple"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "purple" in err
    assert report.main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2  # a directory without results.json
    assert capsys.readouterr().err.count("\n") == 1
    assert report.main([]) == 2
    assert "run_dir" in capsys.readouterr().err
    assert dispatcher.main(["report", "--size", "poster", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_second_chart_set_sits_beside_the_first(tmp_path: Path) -> None:
    """report --charts-dir: a dark, talk-size set in its own folder; the default set stays untouched."""
    from loadtests.commands.report import main

    run_dir = tmp_path / "run"
    synthetic_run(variants=("flask-sync",), scenarios=("analyse",), users=(1, 8), rates=()).save(run_dir)
    assert main([str(run_dir)]) == 0
    light = (run_dir / "charts" / "analyse-throughput.png").read_bytes()
    assert main([str(run_dir), "--theme", "dark", "--size", "talk", "--charts-dir", "charts-dark-talk"]) == 0
    assert _png_size(run_dir / "charts-dark-talk" / "analyse-throughput.png") == (3840, 2160)
    assert (run_dir / "charts" / "analyse-throughput.png").read_bytes() == light
    assert "charts-dark-talk/analyse-throughput.png" in (run_dir / "report.md").read_text()
    assert main([str(run_dir), "--charts-dir", "../elsewhere"]) == 2


def test_the_readme_verdict_block_is_the_reference_runs(tmp_path: Path) -> None:
    """The README's verdict lines are generated from results/reference/verdict.json: a README edited by
    hand, or a verdict changed without its README, fails here."""
    from loadtests.commands.readme import main as readme_main
    from loadtests.reporting import readme

    assert readme_main(["--check"]) == 0
    edited = tmp_path / "README.md"
    edited.write_text(readme.DEFAULT_README.read_text().replace("**reproduced**", "**contradicted**", 1))
    assert readme_main(["--check", "--readme", str(edited)]) == 1
    assert readme_main(["--readme", str(edited)]) == 0
    assert edited.read_text() == readme.DEFAULT_README.read_text()
    # The key figures too: a number typed over inside their block is caught.
    text = readme.DEFAULT_README.read_text()
    head, block = text.split(readme.FIGURES_START, 1)
    block, tail = block.split(readme.FIGURES_END, 1)
    assert "| flask-sync |" in block and " rps" in block
    edited.write_text(
        head + readme.FIGURES_START + block.replace(" rps", "0 rps", 1) + readme.FIGURES_END + tail
    )
    assert readme_main(["--check", "--readme", str(edited)]) == 1


def test_the_accuracy_section_is_the_reference_runs(tmp_path: Path) -> None:
    """loadtests/README.md's accuracy figures come from results/reference/results.json: a figure typed over,
    or a run whose points changed, fails here."""
    from loadtests.commands.readme import main as readme_main
    from loadtests.reporting import readme

    section = readme.DEFAULT_ACCURACY_README.read_text()
    edited = tmp_path / "README.md"
    edited.write_text(section.replace("points valid.**", "points valid (all of them).**", 1))
    assert readme_main(["--check", "--accuracy-readme", str(edited)]) == 1
    run = load_results(readme.DEFAULT_VERDICT.parent)
    valid = sum(p.valid for p in run.points)
    assert f"**{valid} of {len(run.points)} points valid.**" in section  # counted, not restated
    # A run with one point fewer is another run: its section differs.
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "verdict.json").write_text(readme.DEFAULT_VERDICT.read_text())
    run.points = run.points[1:]
    run.save(copy)
    assert readme_main(["--check", "--verdict", str(copy / "verdict.json")]) == 1


def test_the_readme_answer_block_is_the_reference_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's five-line answer is generated too: a number typed over inside it is caught, and
    `readme` writes it back from the reference run."""
    from loadtests.commands.readme import main as readme_main
    from loadtests.reporting import readme

    text = readme.DEFAULT_README.read_text()
    head, block = text.split(readme.ANSWER_START, 1)
    block, tail = block.split(readme.ANSWER_END, 1)
    assert block.strip().startswith("1. ") and " rps" in block
    # On the first screen: before the table of contents and the verdict's evidence.
    assert (
        text.index(readme.ANSWER_END) < text.index("](docs/sweep-and-capacity.md)") < text.index(readme.START)
    )
    edited = tmp_path / "README.md"
    edited.write_text(
        head + readme.ANSWER_START + block.replace(" rps", "1 rps", 1) + readme.ANSWER_END + tail
    )
    assert readme_main(["--check", "--readme", str(edited)]) == 1
    assert readme_main(["--readme", str(edited)]) == 0
    assert edited.read_text() == text
    capsys.readouterr()
    edited.write_text(text.replace(readme.ANSWER_END, "", 1))  # a marker lost: one clear line, exit 2
    assert dispatcher.main(["readme", "--readme", str(edited)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and readme.ANSWER_END in err


def test_the_readme_says_how_the_reference_and_its_repeat_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both capacity intervals a variant and whether they overlap, and the claims whose status moved: a
    repeat whose fastapi-async search landed above the reference's interval, and one claim that flipped."""
    import json
    import shutil

    from loadtests.commands.readme import main as readme_main
    from loadtests.reporting import readme

    first, second = tmp_path / "reference", tmp_path / "reference-repeat"
    for run_dir in (first, second):
        run_dir.mkdir()
        for name in ("results.json", "verdict.json"):
            shutil.copy(readme.REPO / "results" / "reference" / name, run_dir / name)
    results = json.loads((second / "results.json").read_text())
    entry = next(e for e in results["capacity"] if e["variant"] == "fastapi-async")
    lo, hi = entry.get("interval") or [entry["users"], entry.get("first_failing_users")]
    top = hi or lo
    entry["interval"] = [top + 10, top + 20]
    (second / "results.json").write_text(json.dumps(results))
    verdict = json.loads((second / "verdict.json").read_text())
    verdict["claims"][0]["status"] = "inconclusive"
    (second / "verdict.json").write_text(json.dumps(verdict))
    target, accuracy = tmp_path / "README.md", tmp_path / "ACCURACY.md"
    target.write_text(readme.DEFAULT_README.read_text())
    accuracy.write_text(readme.DEFAULT_ACCURACY_README.read_text())
    args = ["--verdict", str(first / "verdict.json"), "--readme", str(target)]
    args += ["--accuracy-readme", str(accuracy)]
    assert readme_main([*args, "--repeat-verdict", str(second / "verdict.json")]) == 0
    block = target.read_text().split(readme.REPEAT_START, 1)[1].split(readme.REPEAT_END, 1)[0]
    searched = len(results["capacity"])
    assert f"{searched - 1} of {searched} capacity intervals overlap" in block, block
    (row,) = [line for line in block.splitlines() if line.startswith("| fastapi-async |")]
    assert row.endswith("| **no** |") and f"{top + 10}-{top + 20}" in row, row
    claim = verdict["claims"][0]
    assert f"- `{claim['id']}`: **" in block and "**inconclusive** in the second" in block
    # No repeat committed: the block says so, and a repeat that is no verdict is one line, exit 2.
    assert readme_main([*args, "--repeat-verdict", str(tmp_path / "none.json")]) == 0
    assert readme.NO_REPEAT in target.read_text()
    capsys.readouterr()
    (second / "verdict.json").write_text("{}")
    assert dispatcher.main(["readme", *args, "--repeat-verdict", str(second / "verdict.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--repeat-verdict" in err, err
