"""Import Great Expectations without the two heavy modules it imports for expectations this project never
runs: `scipy.stats` (KL divergence and KS tests) and `altair` (the KL divergence's charts). They are 1.5-1.8 s
of GX's ~4.5 s import, paid by every run that validates. Under `deferring`, an import of one of them binds a
stand-in module; the real module is imported the first time anything reads one of its attributes, so code that
uses them still gets them, only later.

Why not the standard library's `importlib.util.LazyLoader`: on Python 3.11 the import system reads `__spec__`
(and `__path__`) of a module already in `sys.modules`, and a LazyLoader module loads itself on any attribute
read, so the second `from scipy import stats` inside GX loaded it at once. Here the module's own attributes
(`__spec__`, `__name__`, …) are plain, and only a missing attribute triggers the import."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

# what GX imports at module level for expectations and charts this project's suites do not use
GX_DEFERRED = ("scipy.stats", "altair")
GX_ENTRY = "great_expectations.validator.v1_validator"  # what eujp.validate uses; imports all of GX

_LOCK = threading.RLock()
_LOADING: set[str] = set()  # names being imported for real: the finder lets the normal finders have them


class DeferredModule(types.ModuleType):
    """A module's stand-in in `sys.modules` until one of its attributes is read: then the real module is imported
    (it replaces the stand-in in `sys.modules` and on its parent package) and every read is passed to it."""

    def __getattr__(self, attr: str):
        # the import system reads `__path__` & co. while it sets the stand-in up: those are not a use
        if not self.__dict__.get("_deferred_ready"):
            raise AttributeError(attr)
        return getattr(load(self.__name__), attr)

    def __dir__(self):
        return dir(load(self.__name__))


def load(name: str) -> types.ModuleType:
    """The real module `name`, imported now if a stand-in holds its place."""
    with _LOCK:
        current = sys.modules.get(name)
        if current is not None and not isinstance(current, DeferredModule):
            return current  # imported already (or being imported: a circular import sees it half-made, as usual)
        _LOADING.add(name)
        try:
            sys.modules.pop(name, None)
            return importlib.import_module(name)
        except BaseException:
            if current is not None:
                sys.modules[name] = current
            raise
        finally:
            _LOADING.discard(name)


class _DeferringFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names or fullname in _LOADING:
            return None
        # only a module that exists is deferred: a missing one fails its import here, as it would without this
        if importlib.machinery.PathFinder.find_spec(fullname, path) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return DeferredModule(spec.name)

    def exec_module(self, module):
        module.__dict__["_deferred_ready"] = True


@contextmanager
def deferring(names: Iterable[str]) -> Iterator[None]:
    """Within the block, importing one of `names` (not yet imported) binds a DeferredModule."""
    finder = _DeferringFinder(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_great_expectations() -> None:
    """Import Great Expectations (once per process) with `scipy.stats` and `altair` deferred."""
    if GX_ENTRY in sys.modules:
        return
    # no lock of ours around the import: Python's own module locks order concurrent imports (and detect their
    # deadlocks); a second finder from another thread importing at the same time is harmless
    with deferring(GX_DEFERRED):
        importlib.import_module(GX_ENTRY)
