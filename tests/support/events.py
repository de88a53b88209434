"""A log of events that threads append to and wait on: for tests that show two steps overlap (one side
waits, up to a timeout, for the other to begin; run one after the other, it would see nothing)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class EventLog(list):
    """A list of events; `note` appends one and wakes the waiters, `wait_for` blocks until `seen(events)`."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def note(self, event) -> None:
        with self._changed:
            self.append(event)
            self._changed.notify_all()

    def wait_for(self, seen: Callable[[list], bool], timeout: float = 10) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: seen(self), timeout=timeout)
