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
are pointed at the display's console, so log lines scroll above the bars instead of tearing them; a
handler created after the display started (Prefect imported inside it) is adopted with
`adopt_log_handlers()`.

The CLI shows every wait from its first second: "checking the configuration", "starting Prefect",
"importing the pipeline", "importing the validator" (Great Expectations), then the run's own steps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_progress = None  # the active rich.progress.Progress, if any
_swapped: list[tuple[logging.Handler, object]] = []  # handlers pointed at its console, and their own consoles


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
    from rich.text import Text

    console = console or Console(stderr=True)
    if not (console.is_terminal or force) or _progress is not None:
        yield False
        return
    class Count(MofNCompleteColumn):  # "3/7" for steps with a total, nothing for spinners
        def render(self, task):
            return super().render(task) if task.total is not None else Text("")

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), Count(),
                        TimeElapsedColumn(), console=console, transient=True)
    _swapped[:] = _redirect_rich_handlers(console)
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
        for handler, original in _swapped:
            handler.console = original
        _swapped.clear()


def adopt_log_handlers() -> None:
    """Point the rich log handlers created since the display started (e.g. by importing Prefect) at its
    console too; nothing without a display."""
    progress = _progress
    if progress is None:
        return
    known = {id(handler) for handler, _ in _swapped}
    _swapped.extend(_redirect_rich_handlers(progress.console, skip=known))


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A step on the display: a bar when `total` is known, a spinner otherwise. Yields `advance(n=1)`.
    When the step ends its line leaves the display and one line says it is done (or failed) and how long
    it took, so the display only ever holds the steps in progress."""
    progress = _progress
    if progress is None:
        yield _noop
        return
    from rich.markup import escape
    task = progress.add_task(description, total=total)
    started = time.monotonic()

    def advance(n: int = 1) -> None:
        progress.advance(task, n)

    def finish(mark: str) -> None:
        progress.remove_task(task)
        count = f", {total}" if total is not None else ""
        progress.console.print(f"{mark} {escape(description)} ({time.monotonic() - started:.1f} s{count})",
                               highlight=False)

    try:
        yield advance
    except BaseException:
        finish("[red]✗[/red] failed:")
        raise
    finish("[green]✓[/green]")


def active() -> bool:
    return _progress is not None


def _redirect_rich_handlers(console, skip: set[int] | None = None) -> list[tuple[logging.Handler, object]]:
    """Point every logging handler that prints through a rich Console at `console`, but those whose id() is in
    `skip` (returns what to undo)."""
    from rich.console import Console

    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    swapped, seen = [], set(skip or ())
    for lg in loggers:
        for handler in lg.handlers:
            original = getattr(handler, "console", None)
            if id(handler) not in seen and isinstance(original, Console):
                seen.add(id(handler))
                handler.console = console
                swapped.append((handler, original))
    return swapped
