"""Per-stage wall time and peak memory inside one process.

A process' peak never goes down, so a stage's own peak is sampled: a daemon thread reads the process' RSS
every `interval` seconds and charges each sample to the stage running at that moment. polars, DuckDB and
Arrow allocate outside Python's heap, which tracemalloc cannot see; RSS sees all of it. A stage shorter than
the interval may be missed between samples, so each stage also takes one sample when it starts and one when
it ends, and the process' own peak (`peak_rss_bytes`: the kernel's high-water mark) is reported next to the
per-stage figures.

Not `ru_maxrss`: on Linux a process started by Python's subprocess (vfork, then exec) begins with its
parent's peak as its own ru_maxrss, and keeps it, so a benchmark child reported the peak of the parent that
generated or sorted the data when that was higher (tests/unit/test_benchmarks.py shows it). VmHWM in
/proc/<pid>/status belongs to the program the process runs, from its exec on.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self

# The DuckDB floor's stage (benchmarks.baselines.duckdb_floor): read_csv, pivot of the two indicators, INSERT.
FLOOR_STAGE = "read_csv+pivot+insert"

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss_bytes(pid: int | str = "self") -> int | None:
    """The peak RSS of process `pid` (this one by default) since it started its program: VmHWM, the kernel's
    high-water mark, from /proc/<pid>/status. None when it cannot be read (the process has ended, or there
    is no /proc)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def max_rss_bytes() -> int:
    """Peak RSS of this process so far (`peak_rss_bytes`; ru_maxrss only where /proc cannot tell, which may
    hold the parent's peak: see the module's docstring)."""
    peak = peak_rss_bytes()
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class StageStats:
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time (all threads): wall time minus waiting, times parallelism
    peak_rss: int = 0
    calls: int = 0
    rows: int = 0  # rows the stage handled (set by the caller)


@dataclass
class Meter:
    interval: float = 0.01
    stages: dict[str, StageStats] = field(default_factory=dict)
    _current: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _charge(self, stage: str | None) -> None:
        if stage is not None:
            stats = self.stages[stage]
            stats.peak_rss = max(stats.peak_rss, rss_bytes())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._charge(self._current)

    @contextmanager
    def stage(self, name: str, rows: int = 0):
        """Time a stage (re-entering a name accumulates: streamed stages run once per batch)."""
        stats = self.stages.setdefault(name, StageStats())
        previous, self._current = self._current, name
        self._charge(name)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            yield stats
        finally:
            stats.seconds += time.perf_counter() - started
            stats.cpu_seconds += time.process_time() - cpu_started
            stats.calls += 1
            stats.rows += rows
            self._charge(name)
            self._current = previous


def positive_int(text: str) -> int:
    """argparse type of a count or size that must be at least 1 (rows, years, months, repeats): 0 or less
    measured nothing and exited 0, or ended in a traceback of the generator."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value
