"""The mock's GC policy: no automatic collections while busy; collect when idle or when garbage piles up."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from mock_llm.gcpolicy import IdleCollector


@pytest.fixture
def restore_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("restore_gc")
def test_collects_only_when_idle_and_at_most_once_per_interval() -> None:
    collector = IdleCollector(min_interval_s=0.0)
    collector.start()
    assert not gc.isenabled()
    loop = asyncio.new_event_loop()
    try:
        collector.on_call_end(3, loop)  # busy: nothing scheduled
        loop.run_until_complete(asyncio.sleep(0))
        assert collector.idle_collections == 0
        collector.on_call_end(0, loop)
        collector.on_call_end(0, loop)  # already scheduled: once
        loop.run_until_complete(asyncio.sleep(0.01))
        assert collector.idle_collections == 1
        slow = IdleCollector(min_interval_s=3600.0)
        slow.start()
        slow.on_call_end(0, loop)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert slow.idle_collections == 0  # the last collection (at start) was too recent
    finally:
        loop.close()


@pytest.mark.usefixtures("restore_gc")
def test_safety_valve_collects_when_objects_pile_up() -> None:
    collector = IdleCollector(max_pending=100)
    collector.start()
    loop = asyncio.new_event_loop()
    try:
        garbage = [[] for _ in range(500)]  # tracked containers raise the gen-0 count
        collector.on_call_end(10, loop)
        assert collector.forced_collections == 1
        assert collector.snapshot()["forced_collections"] == 1
        del garbage
    finally:
        loop.close()
