"""The source registry: every module of this package (except `base`) declares one source as `SOURCE`.

    eujp/sources/<source>.py   one source: its fact table, wire format and parser, transform, snapshot
                               pattern, cadence, live endpoint and request plan, period column and
                               watermark, replace scope, streaming key (see eujp.sources.base.Source)

Adding a source is one module here, one transform (transforms/<source>.py), one suite
(expectations/<table>.json) and one test folder (tests/sources/<source>/): see docs/add-a-source.md.
Sources kept outside this package (a plug-in, a test) are registered by naming their modules in
EUJP_SOURCE_MODULES (comma-separated importable module names, each with a `SOURCE`), read once at import.

Sources run by domain (DOMAINS order, then any other domain), and by name within a domain.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from types import ModuleType

from eujp.errors import SourceModulesError
from eujp.sources.base import DOMAINS as KNOWN_DOMAINS
from eujp.sources.base import Source

EXTRA_MODULES_ENV = "EUJP_SOURCE_MODULES"


def _declared(module: ModuleType) -> Source:
    source = getattr(module, "SOURCE", None)
    if not isinstance(source, Source):
        raise TypeError(f"source module {module.__name__} must define SOURCE = eujp.sources.base.Source(...)")
    return source


def _extra_source(module_name: str) -> Source:
    """The source an EUJP_SOURCE_MODULES module declares; SourceModulesError naming the setting otherwise."""
    try:
        return _declared(importlib.import_module(module_name))
    except Exception as exc:  # whatever the import raised, the setting is what to fix
        raise SourceModulesError(f"{EXTRA_MODULES_ENV}={os.environ.get(EXTRA_MODULES_ENV, '')!r}: module "
                                 f"{module_name!r} cannot be registered as a source: {type(exc).__name__}: {exc} "
                                 "(fix EUJP_SOURCE_MODULES)") from exc


def _discover() -> tuple[Source, ...]:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.name != "base"]
    extra = [n.strip() for n in os.environ.get(EXTRA_MODULES_ENV, "").split(",") if n.strip()]
    found: dict[str, Source] = {}
    tables: dict[str, str] = {}
    for module_name in [*names, *extra]:
        source = _extra_source(module_name) if module_name in extra else _declared(importlib.import_module(module_name))
        if source.name in found:
            raise ValueError(f"two modules declare source {source.name!r} ({module_name})")
        if source.table.name in tables:
            raise ValueError(f"sources {tables[source.table.name]!r} and {source.name!r} both load "
                             f"{source.table.name}")
        found[source.name] = source
        tables[source.table.name] = source.name
    rank = {d: i for i, d in enumerate(KNOWN_DOMAINS)}
    return tuple(sorted(found.values(), key=lambda s: (rank.get(s.domain, len(rank)), s.domain, s.name)))


SOURCES: tuple[Source, ...] = _discover()
SOURCES_BY_NAME: dict[str, Source] = {s.name: s for s in SOURCES}
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(s.domain for s in SOURCES))


def get_source(name: str) -> Source:
    """The source called `name`; KeyError naming the known sources otherwise."""
    try:
        return SOURCES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES_BY_NAME)}") from None


def sources_for(domain: str) -> tuple[Source, ...]:
    return tuple(s for s in SOURCES if s.domain == domain)


def selected_sources(only: Iterable[str] | None) -> list[Source]:
    """The sources a run selected (`--only`, Settings.only_sources), in SOURCES' order; every one when empty."""
    chosen = set(only or ())
    return [s for s in SOURCES if not chosen or s.name in chosen]


__all__ = ["DOMAINS", "SOURCES", "SOURCES_BY_NAME", "Source", "get_source", "selected_sources", "sources_for"]
