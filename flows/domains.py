"""One flow per domain: extract, land, parse, transform and validate each of its sources.

A failing source is recorded on its SourceBatch and does not stop the other sources. A domain flow ends
Failed when any of its sources failed (all of them, or some: the parent run fails then too, and the
domain that failed is the one marked in the UI), carrying its batches all the same; `run_domain` returns
them whatever the state. The domains are those of the registered sources (eujp.sources.DOMAINS); a domain
without a flow of its own here gets a generic one named `eujp-{domain}`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl
import prefect.context
from prefect import flow, get_run_logger
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.states import Failed

from eujp import progress
from eujp.config import Settings
from eujp.deferred_imports import GX_ENTRY, import_great_expectations
from eujp.landing import discard_spooled
from eujp.pipeline import SourceBatch, skip_unchanged, utcnow
from eujp.rows import describe_rows
from eujp.sources import sources_for
from flows.fanout import run_fanout
from flows.tasks import extract_and_land, prepare


def import_validator() -> None:
    """Import Great Expectations (seconds; eujp.deferred_imports) under a progress step of its own, so that the
    terminal says what the run is waiting for; nothing when it is already imported."""
    if GX_ENTRY in sys.modules:
        return
    with progress.step("importing the validator (Great Expectations)"):
        import_great_expectations()


def prepare_domain(domain: str, settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Every source of `domain` (but those outside settings.only_sources): extracted and landed, then, unless
    unchanged, parsed, transformed and validated. One SourceBatch per source, failed ones included."""
    logger = get_run_logger()
    batches = []
    for source in sources_for(domain):
        if settings.only_sources and source.name not in settings.only_sources:
            continue
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        if settings.fans_out and source.transform_key:  # partition by partition on Dask (flows/fanout.py)
            import_validator()
            with progress.step(f"{domain}: fan out {source.name} on Dask"):
                batch = run_fanout(source.name, settings, countries, batch)
            log_prepared(logger, batch)
            batches.append(batch)
            continue
        try:
            with progress.step(f"{domain}: extract {source.name}"):
                payloads, batch.raw_keys = extract_and_land(source.name, settings)
        except Exception as exc:  # noqa: BLE001 - the source fails, the others go on
            batches.append(batch.fail("extract", exc))
            logger.error(batch.error)
            continue
        try:
            if skip_unchanged(batch, payloads, settings):
                logger.info("%s: %s; nothing parsed or loaded", source.name, batch.note)
                batches.append(batch)
                continue
            import_validator()
            with progress.step(f"{domain}: parse, transform, validate {source.name}"):
                batch = prepare(source.name, payloads, countries, batch, spill_dir=settings.spill_dir)
        finally:  # live answers and replayed objects were spooled to files: none is read again
            discard_spooled(payloads)
        log_prepared(logger, batch)
        batches.append(batch)
    return batches


def log_prepared(logger, batch: SourceBatch) -> None:
    """Log how a source's preparation ended: its error, why it is unchanged, or its rows."""
    if batch.error:
        logger.error(batch.error)
    elif batch.status == "unchanged":
        logger.info("%s: %s; nothing parsed or loaded", batch.source, batch.note)
    else:
        logger.info("%s: %s; %d table rows to write", batch.source,
                    describe_rows(batch.rows_in, batch.valid_wire_rows, batch.rows_rejected), batch.valid_rows)


def domain_result(domain: str, batches: list[SourceBatch]):
    """What a domain flow returns: its batches, or a Failed state carrying them when any source failed."""
    failed = [b for b in batches if b.status == "failed"]
    if not failed:
        return batches
    message = f"{domain}: {len(failed)} of {len(batches)} source(s) failed: " + " | ".join(b.error or b.source
                                                                                          for b in failed)
    return Failed(message=message, data=batches)


def run_domain(domain: str, settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Run `domain`'s flow (as a subflow of the calling flow) and return its batches, Failed or not; an
    error of the flow itself (not of a source) is raised.

    The subflow sends no heartbeats of its own: it runs in its parent's process, whose flow run keeps its
    heartbeats (a dead process shows as the parent's), and Prefect joins a flow run's heartbeat thread when
    the run ends, which sleeps in 1-s steps: ~1 s per subflow, 3 of the 10 s a day with nothing new may take
    (benchmarks/RESULTS.md, 2026-12-01)."""
    with without_heartbeats():
        state = domain_flow(domain)(settings, countries, return_state=True)
    batches = state.result(raise_on_failure=False)
    if isinstance(batches, BaseException):
        raise batches
    return batches


_QUIET: list = []  # [(Prefect settings, the same without flow-run heartbeats)]: the last pair made


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """Prefect's current settings without flow-run heartbeats, for the block. As Prefect's `temporary_settings`,
    but the copy (Prefect validates every setting again: ~0.05 s here) is made once for the settings a run has,
    not once per domain, and not at all when heartbeats are off already (`eujp run`'s own temporary server turns
    them off for the whole run)."""
    context = prefect.context.get_settings_context()
    if context.settings.flows.heartbeat_frequency is None:
        yield
        return
    if not (_QUIET and _QUIET[0][0] is context.settings):
        _QUIET[:] = [(context.settings,
                      context.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))]
    with prefect.context.SettingsContext(profile=context.profile, settings=_QUIET[0][1]):
        yield


@flow(name="eujp-trade", flow_run_name="trade-{settings.run_id}")
def trade_flow(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Goods (Eurostat annual, Comext CN8 monthly) and services (Eurostat BoP) trade."""
    return domain_result("trade", prepare_domain("trade", settings, countries))


@flow(name="eujp-defence", flow_run_name="defence-{settings.run_id}")
def defence_flow(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Arms transfers (SIPRI) and security and defence co-operation events."""
    return domain_result("defence", prepare_domain("defence", settings, countries))


@flow(name="eujp-minerals", flow_run_name="minerals-{settings.run_id}")
def minerals_flow(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Export restrictions on critical raw materials (OECD inventory)."""
    return domain_result("minerals", prepare_domain("minerals", settings, countries))


_FLOWS = {f.name.removeprefix("eujp-"): f for f in (trade_flow, defence_flow, minerals_flow)}


def domain_flow(domain: str):
    """The flow that prepares `domain`'s sources."""
    if domain not in _FLOWS:
        def prepare(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
            return domain_result(domain, prepare_domain(domain, settings, countries))

        prepare.__doc__ = f"The {domain} sources."
        _FLOWS[domain] = flow(name=f"eujp-{domain}", flow_run_name=f"{domain}-{{settings.run_id}}")(prepare)
    return _FLOWS[domain]
