"""Reach's logs: large ones gzipped losslessly and still searched for open-file errors."""

from __future__ import annotations

import gzip
from pathlib import Path

from loadtests.driver.reach import compress_large_logs
from loadtests.driver.reach import open_file_errors as _open_file_errors


def test_large_logs_are_gzipped_losslessly_and_still_searched_for_open_file_errors(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    noisy = b"WARNING:  Exceeded concurrency limit.\n" * 5_000 + b"OSError: [Errno 24] Too many open files\n"
    (logs / "v-10000.server.log").write_bytes(noisy)
    (logs / "v-10000.mock.log").write_bytes(b"ready\n")
    assert compress_large_logs(logs, over_bytes=10_000) == ["v-10000.server.log.gz"]
    assert sorted(p.name for p in logs.iterdir()) == ["v-10000.mock.log", "v-10000.server.log.gz"]
    assert gzip.decompress((logs / "v-10000.server.log.gz").read_bytes()) == noisy
    assert _open_file_errors(logs, "v", 10000, "v--stream--closed-u10000--0") == 1
    # Only this level's own logs count: not another variant's at the same level, nor a larger level's.
    emfile = b"OSError: [Errno 24] Too many open files\n"
    (logs / "w-10000.server.log").write_bytes(emfile)
    (logs / "v-100000.server.log").write_bytes(emfile)
    (logs / "v--stream--closed-u10000--0.locust-worker0.log").write_bytes(emfile)
    assert _open_file_errors(logs, "v", 10000, "v--stream--closed-u10000--0") == 2
