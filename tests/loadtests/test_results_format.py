from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.results import FORMAT_VERSION, Percentiles, Point, ResultsFormatError, RunResults, load_results


def make_point(**overrides: object) -> Point:
    values: dict[str, object] = dict(
        variant="flask-sync",
        scenario="analyse",
        load_model="closed",
        users=4,
        rate=None,
        repeat=0,
        warmup_s=1.0,
        duration_s=10.0,
        completed=20,
        failed=0,
        unfinished=0,
        failures_by_status={},
        throughput_rps=2.0,
        latency_ms=Percentiles(
            p50=2000, p90=2001, p95=2002, p99=2003, max=2004, mean=2000, min=1999, count=20
        ),
        ttft_ms=None,
        upstream_peak_in_flight=4,
        upstream_requests=20,
        predicted_ceiling=4,
        littles_law=None,
        server_cpu_ms_per_request=1.5,
        cpu=None,
        valid=True,
    )
    values.update(overrides)
    return Point(**values)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    run = RunResults(metadata={"seed": 1}, points=[make_point()])
    run.save(tmp_path)
    assert load_results(tmp_path).to_dict() == run.to_dict()


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"version": FORMAT_VERSION + 1}))
    with pytest.raises(ResultsFormatError, match="version"):
        load_results(tmp_path)


def test_bad_key_is_named(tmp_path: Path) -> None:
    data = RunResults(metadata={}, points=[make_point()]).to_dict()
    del data["points"][0]["throughput_rps"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsFormatError, match="'throughput_rps'"):
        load_results(tmp_path)


def test_malformed_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ResultsFormatError, match="not valid JSON"):
        load_results(tmp_path)
