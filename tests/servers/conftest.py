"""Fixtures for the servers tests (helpers live in serverkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import AllVariants, ServerSpec, fleet

from servers.variants import VARIANTS


@pytest.fixture(scope="session")
def servers_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers-logs")


# Tight enough that every fault test ends in seconds; the per-read timeout is shorter than the deadline,
# and a slow drip's gap shorter than the per-read timeout, so only the deadline can end a drip.
DEADLINE_S = 2.0
READ_TIMEOUT_S = 1.0


@pytest.fixture(scope="session")
def all_variants(servers_log_dir: Path) -> Iterator[AllVariants]:
    """Every registered variant, each with its registry's worker count, on one instant mock."""
    with fleet(servers_log_dir) as group:
        mock = group.mock("all", "--profile", "instant", "--seed", "9")
        env = {"BENCH_UPSTREAM_DEADLINE_S": str(DEADLINE_S), "BENCH_UPSTREAM_TIMEOUT_S": str(READ_TIMEOUT_S)}
        ports = {
            v.name: group.server(v.name, ServerSpec(variant=v.name, upstream_port=mock, env=env))
            for v in VARIANTS
        }
        group.wait_ready()
        yield AllVariants(mock_port=mock, ports=ports, deadline_s=DEADLINE_S)
