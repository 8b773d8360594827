"""``BENCH_WORK_MS``: a fixed amount of CPU per request, standing in for the parsing and prompt building a
real AI API does before it calls the model.

The work runs in the caller's thread of execution, wherever the variant runs its handler code: on the
event loop for the async variants (where it stalls every other request), in the worker thread, greenlet
or process otherwise. It spins until this thread's own CPU clock has advanced by the setting, so a
request costs that much CPU however often the thread is preempted on a busy machine (wall time may be
longer; CPU time is what the setting promises).
"""

from __future__ import annotations

import hashlib
import time

_BLOCK = b"x" * 256  # hashed between clock reads: real work, a few microseconds per round


def burn_cpu(ms: float) -> int:
    """Spend ``ms`` milliseconds of this thread's CPU time; returns the rounds of hashing done."""
    if ms <= 0:
        return 0
    clock = time.thread_time
    deadline = clock() + ms / 1000.0
    rounds = 0
    digest = _BLOCK
    while clock() < deadline:
        for _ in range(8):
            digest = hashlib.sha256(digest).digest()
        rounds += 1
    return rounds
