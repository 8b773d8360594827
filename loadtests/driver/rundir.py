"""The run directory, ``results/<run>/``: created (or reopened to resume), locked, saved after every change,
its variants recorded as measured or not, and closed with its wall time.

Every command that measures writes one (sweep, capacity, faults, reach); :class:`Run` is the skeleton they
share, so each opens, records, survives an interrupt and finishes the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.driver.interrupts import stop_signals_interrupt
from loadtests.driver.metadata import utc_now
from loadtests.driver.options import known_variants
from loadtests.driver.schedule import Group
from loadtests.driver.session import VariantSession
from loadtests.driver.verify import ContractError
from loadtests.errors import ProcessStartError, UserError
from loadtests.presets import SweepSettings
from loadtests.results import RESULTS_FILE, RunResults, VariantInfo


def default_run_dir(prefix: str = "") -> Path:
    """``results/<prefix><UTC timestamp>``."""
    return Path("results") / (prefix + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))


def link_latest(run_dir: Path) -> None:
    """Point ``results/latest`` at ``run_dir`` in one step: a new link under a temporary name, renamed over
    the old one, so a reader never finds it missing (and a failed link leaves the old one in place)."""
    latest = run_dir.parent / "latest"
    temporary = run_dir.parent / f".latest-{os.getpid()}-{time.monotonic_ns()}"
    try:
        temporary.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(temporary, latest)
    except OSError:
        pass  # a convenience link: never worth failing a run for
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def lock_run_dir(run_dir: Path) -> int:
    """An exclusive lock on the run directory itself (no lock file left behind), held until exit: a
    second sweep on the same directory would interleave its points and overwrite results.json."""
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"{run_dir} is in use by another sweep or gate of the harness; wait for it to end or choose "
            "another --out"
        ) from None
    return fd


@contextlib.contextmanager
def run_dir_locked(run_dir: Path) -> Iterator[None]:
    """:func:`lock_run_dir` for the time of a ``with`` block."""
    fd = lock_run_dir(run_dir)
    try:
        yield
    finally:
        os.close(fd)


def make_dirs(*paths: Path) -> None:
    """Create run directories, or say in one line why not (a typo in --out is not a traceback)."""
    for path in paths:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out: cannot create {path}: {exc.strerror or exc}") from None


def relative(path: Path, run_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return path.name


def strip_paths(text: str, run_dir: Path) -> str:
    """No absolute paths in results: make the run directory's paths relative."""
    for prefix in (str(run_dir.resolve()) + os.sep, str(run_dir) + os.sep):
        text = text.replace(prefix, "")
    return text


def machine_prefixes() -> list[tuple[str, str]]:
    """(this machine's path, what a log shows instead), longest first: the checkout, the interpreter's
    environments, the home directory."""
    pairs = {
        str(Path(__file__).resolve().parents[2]): "<repo>",
        sys.prefix: "<venv>",
        sys.base_prefix: "<python>",
        str(Path.home()): "~",
    }
    return sorted(((k, v) for k, v in pairs.items() if len(k) > 1), key=lambda kv: -len(kv[0]))


def scrub_logs(logs: Path) -> int:
    """No machine paths in a run's logs (tracebacks name every file they pass through): each prefix of
    :func:`machine_prefixes` replaced by its placeholder, in place. Returns the files changed."""
    changed, prefixes = 0, machine_prefixes()
    for log in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        text = log.read_text(errors="replace")
        scrubbed = text
        for prefix, placeholder in prefixes:
            scrubbed = scrubbed.replace(prefix, placeholder)
        if scrubbed != text:
            log.write_text(scrubbed)
            changed += 1
    return changed


def variant_info(
    name: str,
    *,
    verified: bool,
    reason: str | None,
    log_file: str | None,
    scenarios: Sequence[str] = (),
) -> VariantInfo:
    """``scenarios``: the run's; those a verified variant cannot serve are named as its reason."""
    v = known_variants()[name]
    if verified and reason is None:
        reason = v.unsupported_note(scenarios)
    return VariantInfo(
        name=name,
        framework=v.framework,
        server=v.server,
        worker_class=v.worker_class,
        workers=v.workers,
        predicted_ceiling=v.predicted_ceiling,
        verified=verified,
        reason=reason,
        log_file=log_file,
    )


def set_variant(results: RunResults, info: VariantInfo) -> None:
    results.variants = [v for v in results.variants if v.name != info.name] + [info]


def record_measured_latency(results: RunResults) -> None:
    """The run's L from what the mock injected (the median over the points of the run's own profile),
    the nominal one kept beside it: for rate-based profiles the answer actually produced sets L."""
    md = results.metadata
    md.setdefault("upstream_latency_nominal_s", md.get("upstream_latency_s"))
    measured = [
        p.upstream_latency_s
        for p in results.points
        if p.upstream_latency_s is not None and p.scenario != "overhead"
    ]
    if measured:
        md["upstream_latency_s"] = round(statistics.median(measured), 6)
        md["upstream_latency_source"] = "measured: median of the mock's mean injected delay per point"


@dataclass(kw_only=True)
class Run:
    """A run directory being written: its results, saved atomically after every change, and its lock."""

    run_dir: Path
    results: RunResults
    lock: int | None = None
    measured_latency: bool = True  # record the run's L as the mock injected it (see record_measured_latency)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def create(
        cls,
        out: Path | None,
        metadata: dict[str, Any],
        *,
        default: Callable[[], Path] = default_run_dir,
        link: bool = True,
        held_hint: str = "choose another --out",
        measured_latency: bool = True,
    ) -> Run:
        """A new run in ``out`` (default: ``default()``, then linked as results/latest when ``link``)."""
        run_dir = out if out is not None else default()
        make_dirs(run_dir, run_dir / "raw", run_dir / "logs")
        lock = lock_run_dir(run_dir)
        if (run_dir / RESULTS_FILE).exists():
            os.close(lock)
            raise UserError(f"--out: {run_dir} already holds a run; {held_hint}")
        if out is None and link:
            link_latest(run_dir)
        run = cls(
            run_dir=run_dir,
            results=RunResults(metadata=metadata),
            lock=lock,
            measured_latency=measured_latency,
        )
        run.save()
        return run

    @classmethod
    def reopen(cls, run_dir: Path, results: RunResults) -> Run:
        """A stored run to finish (--resume): locked, its start recorded, its subfolders there."""
        lock = lock_run_dir(run_dir)
        results.metadata.setdefault("resumed_at", []).append(utc_now())
        make_dirs(run_dir / "raw", run_dir / "logs")
        run = cls(run_dir=run_dir, results=results, lock=lock)
        run.save()
        return run

    @property
    def results_file(self) -> Path:
        return self.run_dir / RESULTS_FILE

    def save(self) -> None:
        if self.measured_latency:
            record_measured_latency(self.results)
        self.results.save(self.run_dir)

    def relative(self, path: Path) -> str:
        return relative(path, self.run_dir)

    def strip_paths(self, text: str) -> str:
        return strip_paths(text, self.run_dir)

    def variant_measured(self, name: str, *, log: Path, scenarios: Sequence[str] = ()) -> None:
        set_variant(
            self.results,
            variant_info(name, verified=True, reason=None, log_file=self.relative(log), scenarios=scenarios),
        )
        self.save()

    def variant_not_measured(self, name: str, *, reason: str, log: Path | None) -> None:
        log_file = None if log is None else self.relative(log)
        set_variant(self.results, variant_info(name, verified=False, reason=reason, log_file=log_file))
        self.save()

    def each_session(
        self,
        groups: Sequence[Group],
        settings: SweepSettings,
        measure: Callable[[Group, VariantSession], None],
        *,
        verify: Callable[[Group], Sequence[str] | None],
        on_failed: Callable[[Group, Exception], None],
        starting: Callable[[Group], None] | None = None,
    ) -> int:
        """``measure`` each group in its own started variant session, after the contract check (``verify``
        names the scenarios to check, None: health only); the variant is recorded as measured first. A
        variant that will not start or breaks the contract goes to ``on_failed``. Returns how many did.
        ``starting``: told of each group before its processes start."""
        failed = 0
        for group in groups:
            if starting is not None:
                starting(group)
            try:
                with VariantSession(group, settings, self.run_dir) as session:
                    scenarios = verify(group)
                    if scenarios is not None:
                        session.verify(scenarios)
                    self.variant_measured(group.variant, log=session.server_log, scenarios=settings.scenarios)
                    measure(group, session)
            except (ProcessStartError, ContractError) as exc:
                failed += 1
                on_failed(group, exc)
        return failed

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stop signal (SIGINT, SIGTERM, SIGHUP) raises KeyboardInterrupt inside, which every process's
        context manager answers by stopping it; the working files go in any case."""
        try:
            with stop_signals_interrupt():
                yield
        finally:
            shutil.rmtree(self.run_dir / "tmp", ignore_errors=True)

    def interrupted(self, hint: str | None = None) -> int:
        """Keep what was measured and say where; 130, the shell's code for an interrupt."""
        self.save()
        print(
            f"interrupted: every process stopped; {len(self.results.points)} finished points kept in "
            f"{self.results_file}" + (f"\n{hint}" if hint else "")
        )
        return 130

    def finish(self) -> float:
        """Record the end and the wall time; returns the wall time in seconds."""
        wall = time.monotonic() - self.started
        self.results.metadata["finished_at"] = utc_now()
        self.results.metadata["wall_time_s"] = round(wall, 1)
        self.save()
        scrub_logs(self.run_dir / "logs")
        return wall

    def close(self) -> None:
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None
