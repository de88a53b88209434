"""One writer at a time: an exclusive advisory lock next to the warehouse."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from eujp.errors import EujpError


class RunLocked(EujpError):
    """Another run holds the warehouse lock."""


@contextmanager
def warehouse_lock(warehouse_path: Path, wait_seconds: float = 0.0, poll: float = 0.5):
    """Hold an exclusive lock for the whole write-audit-publish of a run.

    A second run waits up to `wait_seconds` and then fails with a message naming the holder. The
    lock is released by the kernel if the holder dies (even by SIGKILL), so it never goes stale.
    """
    lock_path = warehouse_path.with_name(warehouse_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or foreign folder: say so before anything else is tried
        raise EujpError(
            f"cannot take the run lock {lock_path}: {exc.strerror or exc}; the warehouse folder "
            f"{lock_path.parent} must be writable by this run (nothing was changed)"
        ) from exc
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise RunLocked(
                        f"another run is writing {warehouse_path} (lock {lock_path} held by {holder}); "
                        f"waited {wait_seconds:g}s"
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}".encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
