"""A sweep started in a user's repository that holds folders named like the harness's packages (mock_llm/,
servers/, loadtests/, locust/) still measures with the harness's own mock, servers and load generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtests.results import load_results

FAKES = ("mock_llm", "servers", "loadtests", "locust")


def test_a_sweep_from_a_directory_with_its_own_packages_runs_the_harness(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    mark = repo / "FAKE-RAN"
    for name in FAKES:
        (repo / name).mkdir(parents=True)
        # Imported: leaves a mark and stops the process (a fake mock would never answer /health).
        (repo / name / "__init__.py").write_text(
            f"open({str(mark)!r}, 'a').write('{name} ')\nraise SystemExit('the fake {name} ran')\n"
        )
        (repo / name / "__main__.py").write_text("")
    run_dir = tmp_path / "run"
    bench = Path(sys.executable).parent / "llm-wait-bench"  # the console script: no directory on its path
    done = subprocess.run(
        [str(bench), "sweep", "--variants", "fastapi-async", "--scenarios", "analyse", "--users", "1",
         "--time-scale", "0.05", "--duration", "1", "--out", str(run_dir)],
        cwd=repo, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout[-2000:] + done.stderr[-2000:]
    assert not mark.exists(), mark.read_text() + output
    assert done.returncode in (0, 1), output  # 1: a point may break a validity rule on a busy machine
    (point,) = load_results(run_dir).points
    assert point.completed > 0 and point.failed == 0, output
    assert point.upstream_peak_in_flight >= 1  # the real mock counted the calls
