"""BENCH_UPSTREAM_POOLS: the SDK's connections split over several pools, against the real mock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from serverkit import running_mock

from servers import upstream
from servers.models import AnalyseRequest
from servers.settings import Settings, SettingsError, load_settings

CALLS = 6
REQ = AnalyseRequest(text="Which pool carries this call?", analysis_type="summary")


def _settings(port: int, tmp_path: Path, **env: str) -> Settings:
    base = {"BENCH_UPSTREAM_URL": f"http://127.0.0.1:{port}", "BENCH_JOB_DB": str(tmp_path / "j.db")}
    return load_settings({**base, **env})


def _pool_sizes(transport: Any) -> list[int]:
    shards = getattr(transport, "_transports", [transport])
    return sorted(len(shard._pool.connections) for shard in shards)


async def _concurrent_calls(settings: Settings) -> list[int]:
    async with upstream.async_client(settings) as client:
        await asyncio.gather(*(upstream.analyse_async(client, REQ, settings) for _ in range(CALLS)))
        return _pool_sizes(client._client._transport)


def test_calls_in_flight_together_spread_over_the_pools(servers_log_dir: Path, tmp_path: Path) -> None:
    # The mock holds each call 0.1 s, so the six are in flight at once and each needs a connection.
    with running_mock(servers_log_dir, "pools", "--profile", "article", "--time-scale", "0.05") as port:
        one = asyncio.run(_concurrent_calls(_settings(port, tmp_path)))
        three = asyncio.run(_concurrent_calls(_settings(port, tmp_path, BENCH_UPSTREAM_POOLS="3")))
        two = _settings(port, tmp_path, BENCH_UPSTREAM_POOLS="2")
        with upstream.sync_client(two) as client:
            for _ in range(4):  # one at a time: each pool opens one connection and keeps it
                assert upstream.analyse_sync(client, REQ, two).summary
            sync_sizes = _pool_sizes(client._client._transport)
    assert one == [CALLS]
    assert three == [2, 2, 2]
    assert sync_sizes == [1, 1]


def test_a_capped_pool_is_not_split(tmp_path: Path) -> None:
    env = {"BENCH_JOB_DB": str(tmp_path / "j.db"), "BENCH_UPSTREAM_MAX_CONNECTIONS": "8"}
    with pytest.raises(SettingsError, match="BENCH_UPSTREAM_POOLS=4 with BENCH_UPSTREAM_MAX_CONNECTIONS"):
        load_settings({**env, "BENCH_UPSTREAM_POOLS": "4"})
    assert load_settings({**env, "BENCH_UPSTREAM_POOLS": "1"}).upstream_max_connections == 8
