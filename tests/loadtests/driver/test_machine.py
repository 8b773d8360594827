"""What the machine gave a point: steal from /proc/stat, one core's speed in CPU time."""

from __future__ import annotations

import threading

from loadtests.driver.machine import MachineMark, calibrate_ms, machine_record


def test_the_calibration_counts_cpu_time_so_a_busy_machine_does_not_slow_it() -> None:
    alone = min(calibrate_ms() for _ in range(3))
    stop = threading.Event()

    def spin() -> None:  # two busy threads: the calibrating thread now waits for the GIL and a core
        while not stop.is_set():
            sum(range(1000))

    busy = [threading.Thread(target=spin) for _ in range(2)]
    for thread in busy:
        thread.start()
    try:
        contended = min(calibrate_ms() for _ in range(3))
    finally:
        stop.set()
        for thread in busy:
            thread.join()
    assert contended < 1.5 * alone, (alone, contended)  # wall time would have been 2-3x


def test_the_record_is_steal_in_percent_of_the_machine_and_the_speeds_change() -> None:
    before = MachineMark(steal_s=100.0, calibration_ms=6.0)
    after = MachineMark(steal_s=101.0, calibration_ms=7.5)
    record = machine_record(before, after, seconds=10.0, cpus=2)
    assert record["steal_percent"] == 5.0  # 1 s of 20 CPU seconds
    assert record["calibration_change"] == 0.25
    assert MachineMark.now().calibration_ms > 0
