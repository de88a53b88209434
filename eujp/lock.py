"""One writer at a time: an exclusive advisory lock next to the warehouse."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from eujp.errors import EujpError

log = logging.getLogger("eujp.lock")


class RunLocked(EujpError):
    """Another run holds the warehouse lock."""


def lock_path_of(warehouse_path: Path) -> Path:
    """The run lock of a warehouse: `<its file name>.lock` beside it."""
    return warehouse_path.with_name(warehouse_path.name + ".lock")


def recorded_holder_pid(warehouse_path: Path) -> int | None:
    """The pid the warehouse's lock file names: the run that holds the lock, or held it last (None: no lock
    file, or none named). A read of the file, which never takes or waits for the lock."""
    try:
        words = lock_path_of(warehouse_path).read_text(errors="replace").split()
    except OSError:
        return None
    return int(words[1]) if len(words) > 1 and words[0] == "pid" and words[1].isdigit() else None


@contextmanager
def warehouse_lock(warehouse_path: Path, wait_seconds: float = 0.0, poll: float = 0.5,
                   logger: logging.Logger | None = None):
    """Hold an exclusive lock for the whole write-audit-publish of a run.

    A second run waits up to `wait_seconds` and then fails with a message naming the holder; a run that
    waits says so on `logger` (default: the eujp.lock logger) when it starts waiting, naming the holder, and
    when it got the lock. The lock is released by the kernel if the holder dies (even by SIGKILL), so it
    never goes stale.
    """
    logger = logger or log
    lock_path = lock_path_of(warehouse_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or foreign folder: say so before anything else is tried
        raise EujpError(
            f"cannot take the run lock {lock_path}: {exc.strerror or exc}; the warehouse folder "
            f"{lock_path.parent} must be writable by this run (nothing was changed)"
        ) from exc
    started = time.monotonic()
    deadline = started + wait_seconds
    waiting = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if waiting:
                    logger.info("run lock %s taken after waiting %.1fs", lock_path, time.monotonic() - started)
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                if not waiting and time.monotonic() < deadline:
                    waiting = True
                    logger.info("another run is writing %s (lock %s held by %s): waiting up to %gs for it "
                                "(EUJP_LOCK_WAIT_SECONDS)", warehouse_path, lock_path, holder, wait_seconds)
                if time.monotonic() >= deadline:
                    raise RunLocked(
                        f"another run is writing {warehouse_path} (lock {lock_path} held by {holder}); "
                        f"waited {wait_seconds:g}s"
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # UTC, as every time the project writes
        os.pwrite(fd, f"pid {os.getpid()} since {since}".encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
