"""Child processes that die with their parent, even when the parent is killed outright (SIGKILL).

Linux's ``PR_SET_PDEATHSIG`` (through ctypes; no package needed) asks the kernel to send the child
SIGTERM when its parent goes. It is armed in the child between fork and exec (``preexec_fn``). The
kernel ties it to the parent *thread* that forked: start long-lived children from a thread that lives as
long as they should (the main thread, in every driver here). Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
# Looked up now, in the parent: between fork and exec the child should only call into C, never load.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_this_process(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for a child of this process: ``sig`` (SIGTERM) to the child when this process dies.
    SIGKILL for a child whose own clean stop needs a sibling that is dying too (a Celery worker's needs
    its broker: it would retry it for ever)."""
    parent = os.getpid()

    def arm() -> None:
        if _PRCTL is None:
            return
        _PRCTL(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: the signal will never come
            os.kill(os.getpid(), sig)

    return arm
