"""Import Great Expectations without the heavy modules it imports for what this project never runs.

- Deferred: `scipy.stats` (KL divergence and KS tests) and `altair` (the KL divergence's charts). They are
  1.5-1.8 s of GX's ~4.5 s import, paid by every run that validates. Under `deferring`, an import of one of them
  binds a stand-in module; the real module is imported the first time anything reads one of its attributes, so
  code that uses them still gets them, only later.
- Hidden from GX: `sqlalchemy`, `boto3` and `botocore`. GX does not require them: it imports each if installed,
  for its SQL datasources and its S3 stores and datasources, and sets a `NotImported` placeholder if not (its
  `great_expectations.compatibility` modules), as in a pandas-only install. They are installed here for Prefect
  and for the object store, and this project validates frames with GX's pandas route and writes its Data Docs to
  a local folder. Under `hidden_from`, an import of one of them by a module of GX fails as if it were not
  installed, unless it is imported already; any other importer gets the real module. It saves ~0.2 s of the
  import (median of 15 alternating runs after polars, DuckDB and Prefect; benchmarks/RESULTS.md, forty-first
  session), on the critical path of a run against a running server. Code of GX that needs one of them (its
  SQL or S3 features) raises GX's own "not installed" error instead.

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
# what GX imports, if installed, for SQL and S3 datasources and stores this project does not use
GX_HIDDEN = ("sqlalchemy", "boto3", "botocore")
GX_PACKAGE = "great_expectations"
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
def _first_on_meta_path(finder: importlib.abc.MetaPathFinder) -> Iterator[None]:
    """Within the block, `finder` is asked before every other finder."""
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def deferring(names: Iterable[str]):
    """Within the block, importing one of `names` (not yet imported) binds a DeferredModule."""
    return _first_on_meta_path(_DeferringFinder(names))


class _HidingFinder(importlib.abc.MetaPathFinder):
    def __init__(self, names: Iterable[str], importer: str) -> None:
        self.names = frozenset(names)
        self.importer = importer

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top not in self.names or top in sys.modules:  # a package imported already stays whole
            return
        if not _imported_by(self.importer):
            return
        raise ModuleNotFoundError(f"No module named {fullname!r} (hidden from {self.importer}'s import: "
                                  "eujp.deferred_imports)", name=fullname)


def _imported_by(package: str) -> bool:
    """Whether the import under way was asked for by a module of `package`: the first frame outside the
    import system (importlib's own modules) runs that module's code."""
    frame = sys._getframe(2)  # the caller of the import machinery (no API names the importer)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "importlib" and not name.startswith(("importlib.", "_frozen_importlib")):
            return name == package or name.startswith(package + ".")
        frame = frame.f_back
    return False


def hidden_from(importer: str, names: Iterable[str]):
    """Within the block, a module of the package `importer` that imports one of the top-level packages `names`
    (or a submodule of one) gets ModuleNotFoundError, as if it were not installed, unless the package is in
    `sys.modules` already; every other importer gets the real module."""
    return _first_on_meta_path(_HidingFinder(names, importer))


def import_great_expectations() -> None:
    """Import Great Expectations (once per process) with `scipy.stats` and `altair` deferred, and `sqlalchemy`,
    `boto3` and `botocore` hidden from it."""
    if GX_ENTRY in sys.modules:
        return
    # no lock of ours around the import: Python's own module locks order concurrent imports (and detect their
    # deadlocks); a second finder from another thread importing at the same time is harmless
    with deferring(GX_DEFERRED), hidden_from(GX_PACKAGE, GX_HIDDEN):
        importlib.import_module(GX_ENTRY)
