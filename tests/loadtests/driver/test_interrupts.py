"""Stop signals: inside ``stop_signals_interrupt`` each of SIGINT, SIGTERM and SIGHUP raises
KeyboardInterrupt, even when SIGINT came ignored; inside ``deferred_interrupts`` they wait for the block's
end. Real signals to this process, not calls to the handler."""

from __future__ import annotations

import os
import signal
import time

import pytest

from loadtests.driver.interrupts import STOP_SIGNALS, deferred_interrupts, stop_signals_interrupt


def _deliver(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.5)  # the handler runs between bytecodes, at the latest during this sleep


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda s: s.name)
def test_a_stop_signal_raises_keyboard_interrupt_even_if_sigint_came_ignored(sig: signal.Signals) -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt), stop_signals_interrupt():
            _deliver(sig)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the caller's handlers come back
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_stop_signal_during_cleanup_waits_for_the_cleanup_to_finish() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), stop_signals_interrupt(), deferred_interrupts():
        _deliver(signal.SIGTERM)
        finished.append(True)
    assert finished == [True]
