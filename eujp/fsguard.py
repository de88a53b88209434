"""Plain-language errors when the disk under the warehouse is full, read-only or not ours.

DuckDB reports a full disk as e.g. `FatalException: FATAL Error: Failed to create checkpoint because of
error: Could not write file ".../staging/RUN.duckdb": No space left on device`, Python as `OSError: [Errno 28]`.
`storage_errors` turns either into a `WarehouseStorageError` that says what happened, where, and that the
live warehouse is unchanged (the run wrote only its staging copy, which the caller discards).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eujp.errors import EujpError

# errno -> what to tell the operator; the same causes as DuckDB spells them (strerror text).
_CAUSES: dict[int, str] = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file size limit is exceeded (file too large)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
_TEXTS: dict[str, int] = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "File too large": errno.EFBIG,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
    "Operation not permitted": errno.EPERM,
}
_MAX_CHAIN = 10  # exceptions followed through __cause__ / __context__


class WarehouseStorageError(EujpError):
    """The warehouse folder cannot be written: disk full, read-only, or permissions."""


def storage_cause(exc: BaseException) -> str | None:
    """What is wrong with the storage, if `exc` (or an exception it was raised from) says so."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < _MAX_CHAIN:
        if isinstance(current, OSError) and current.errno in _CAUSES:
            return _CAUSES[current.errno]
        text = str(current)
        for needle, code in _TEXTS.items():
            if needle in text:
                return _CAUSES[code]
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def raise_if_storage_error(exc: BaseException, what: str, live_warehouse: Path) -> None:
    """Raise WarehouseStorageError (from `exc`) when `exc` is a storage failure; return otherwise.

    KeyboardInterrupt and the like pass through, as does a WarehouseStorageError."""
    if isinstance(exc, WarehouseStorageError) or not isinstance(exc, Exception):
        return
    cause = storage_cause(exc)
    if cause is None:
        return
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    raise WarehouseStorageError(
        f"{what}: {cause} ({type(exc).__name__}: {detail}); the live warehouse {live_warehouse} is unchanged"
    ) from exc


@contextmanager
def storage_errors(what: str, live_warehouse: Path) -> Iterator[None]:
    """Re-raise storage failures inside the block as WarehouseStorageError; anything else unchanged."""
    try:
        yield
    except Exception as exc:
        raise_if_storage_error(exc, what, live_warehouse)
        raise
