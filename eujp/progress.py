"""Progress of long steps on the terminal (rich), and nothing anywhere else.

Steps report through this module whatever runs them; only `terminal_progress()` (entered by the CLI)
makes the reports visible, and only when the console is a terminal. Under a Prefect worker, a served
deployment or a test, every call here is a cheap no-op and the logs are the record.

    with terminal_progress():                 # the CLI, around a flow call
        ...
    with step("publish", total=len(objects)) as advance:   # a step
        for obj in objects:
            upload(obj)
            advance()

While a display is active, log handlers that print through a rich Console (Prefect's console handler)
are pointed at the display's console, so log lines scroll above the bars instead of tearing them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_progress = None  # the active rich.progress.Progress, if any


def _noop(n: int = 1) -> None:
    return None


@contextmanager
def terminal_progress(console=None, *, force: bool = False) -> Iterator[bool]:
    """Show step progress on `console` (default: stderr) while the block runs. Yields whether a display is
    active: it is only when the console is a terminal (or `force`)."""
    global _progress
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = console or Console(stderr=True)
    if not (console.is_terminal or force) or _progress is not None:
        yield False
        return
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    swapped = _redirect_rich_handlers(console)
    try:
        with progress:
            with _lock:
                _progress = progress
            try:
                yield True
            finally:
                with _lock:
                    _progress = None
    finally:
        for handler, original in swapped:
            handler.console = original


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A step on the display: a bar when `total` is known, a spinner otherwise. Yields `advance(n=1)`.
    The line stays, marked done, when the step ends (or failed, when it raised)."""
    progress = _progress
    if progress is None:
        yield _noop
        return
    task = progress.add_task(description, total=total)

    def advance(n: int = 1) -> None:
        progress.advance(task, n)

    try:
        yield advance
    except BaseException:
        progress.update(task, description=f"{description} [red]failed[/red]")
        progress.stop_task(task)
        raise
    progress.update(task, total=total or 1, completed=total or 1)
    progress.stop_task(task)


def active() -> bool:
    return _progress is not None


def _redirect_rich_handlers(console) -> list[tuple[logging.Handler, object]]:
    """Point every logging handler that prints through a rich Console at `console` (returns what to undo)."""
    from rich.console import Console

    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    swapped, seen = [], set()
    for lg in loggers:
        for handler in lg.handlers:
            original = getattr(handler, "console", None)
            if id(handler) not in seen and isinstance(original, Console):
                seen.add(id(handler))
                handler.console = console
                swapped.append((handler, original))
    return swapped
