"""One flow per domain: extract, land, parse, transform and validate each of its sources.

A failing source is recorded on its SourceBatch and does not stop the other sources. The domains are those
of the registered sources (eujp.sources.DOMAINS); a domain without a flow of its own here gets a generic
one named `eujp-{domain}`."""

from __future__ import annotations

import polars as pl
from prefect import flow, get_run_logger

from eujp import progress
from eujp.config import Settings
from eujp.pipeline import SourceBatch, skip_unchanged, utcnow
from eujp.sources import sources_for
from flows.tasks import extract_and_land, prepare


def prepare_domain(domain: str, settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    logger = get_run_logger()
    batches = []
    for source in sources_for(domain):
        if settings.only_sources and source.name not in settings.only_sources:
            continue
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        try:
            with progress.step(f"{domain}: extract {source.name}"):
                payloads, batch.raw_keys = extract_and_land(source.name, settings)
        except Exception as exc:  # noqa: BLE001 - the source fails, the others go on
            batches.append(batch.fail("extract", exc))
            logger.error(batch.error)
            continue
        if skip_unchanged(batch, payloads, settings):
            logger.info("%s: %s; nothing parsed or loaded", source.name, batch.note)
            batches.append(batch)
            continue
        with progress.step(f"{domain}: parse, transform, validate {source.name}"):
            batch = prepare(source.name, payloads, countries, batch)
        if batch.error:
            logger.error(batch.error)
        else:
            logger.info("%s: %d rows in, %d valid, %d rejected", source.name, batch.rows_in,
                        batch.valid.height, batch.rows_rejected)
        batches.append(batch)
    return batches


@flow(name="eujp-trade", flow_run_name="trade-{settings.run_id}")
def trade_flow(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Goods (Eurostat annual, Comext CN8 monthly) and services (Eurostat BoP) trade."""
    return prepare_domain("trade", settings, countries)


@flow(name="eujp-defence", flow_run_name="defence-{settings.run_id}")
def defence_flow(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Arms transfers (SIPRI) and security and defence co-operation events."""
    return prepare_domain("defence", settings, countries)


@flow(name="eujp-minerals", flow_run_name="minerals-{settings.run_id}")
def minerals_flow(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
    """Export restrictions on critical raw materials (OECD inventory)."""
    return prepare_domain("minerals", settings, countries)


_FLOWS = {f.name.removeprefix("eujp-"): f for f in (trade_flow, defence_flow, minerals_flow)}


def domain_flow(domain: str):
    """The flow that prepares `domain`'s sources."""
    if domain not in _FLOWS:
        def prepare(settings: Settings, countries: pl.DataFrame) -> list[SourceBatch]:
            return prepare_domain(domain, settings, countries)

        prepare.__doc__ = f"The {domain} sources."
        _FLOWS[domain] = flow(name=f"eujp-{domain}", flow_run_name=f"{domain}-{{settings.run_id}}")(prepare)
    return _FLOWS[domain]
