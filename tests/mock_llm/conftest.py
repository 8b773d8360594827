"""Fixtures for the mock_llm tests: real mock processes on loopback (helpers live in mockkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mockkit import FAST_SCALE, SLOW_SCALE, Mock, close_sdk_clients, running_mock


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    close_sdk_clients()


@pytest.fixture(scope="session")
def mock_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mock_llm_logs")


@pytest.fixture(scope="session")
def mock(mock_log_dir: Path) -> Iterator[Mock]:
    """The shared mock: article profile at 100 ms per call, no random faults."""
    with running_mock(mock_log_dir, "mock-fast", "--time-scale", str(FAST_SCALE), "--seed", "3") as server:
        yield server


@pytest.fixture(scope="session")
def slow_mock(mock_log_dir: Path) -> Iterator[Mock]:
    """Article profile at 1 s per call: slow enough to watch calls in flight."""
    with running_mock(mock_log_dir, "mock-slow", "--time-scale", str(SLOW_SCALE)) as server:
        yield server


@pytest.fixture(scope="session")
def keyed_mock(mock_log_dir: Path) -> Iterator[Mock]:
    """Instant profile that accepts only the key 'secret'."""
    with running_mock(mock_log_dir, "mock-keyed", "--profile", "instant", "--api-key", "secret") as server:
        yield server
