"""Prefect tasks: thin wrappers around the run's steps in eujp (retries, names and hooks live here, logic
does not)."""

from __future__ import annotations

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from eujp import run
from eujp.config import Settings
from eujp.landing import RawPayload
from eujp.pipeline import SourceBatch, fetch_payloads, land_payloads, prepare_source
from eujp.sources import get_source
from eujp.storage import open_store
from flows.hooks import remember_task_failure


# No Prefect retries here: the HTTP client (eujp.http) already retries with backoff within a time
# budget per source; retrying the task would spend that budget several times over.
@task(name="extract-and-land", cache_policy=NO_CACHE,
      task_run_name="extract {source_name}", on_failure=[remember_task_failure])
def extract_and_land(source_name: str, settings: Settings) -> tuple[list[RawPayload], list[str]]:
    source = get_source(source_name)
    store = open_store(settings.publish_uri)
    payloads = fetch_payloads(source, settings, store)
    keys = [] if settings.source_mode == "raw" else land_payloads(store, source, payloads, settings.run_date)
    return payloads, keys


@task(name="parse-transform-validate", cache_policy=NO_CACHE, task_run_name="prepare {source_name}",
      on_failure=[remember_task_failure])
def prepare(source_name: str, payloads: list[RawPayload], countries: pl.DataFrame,
            batch: SourceBatch) -> SourceBatch:
    return prepare_source(get_source(source_name), payloads, countries, batch)


@task(name="load-audit-promote", task_run_name="load-audit-promote", cache_policy=NO_CACHE,
      on_failure=[remember_task_failure])
def load_audit_promote(settings: Settings, batches: list[SourceBatch], countries: pl.DataFrame,
                       compare_published: bool = True) -> tuple[dict, dict, dict]:
    """eujp.run.load_audit_promote: staging copy → load → marts → audit → promote."""
    return run.load_audit_promote(settings, batches, countries, compare_published)


@task(name="confirm-nothing-new", task_run_name="confirm-nothing-new", cache_policy=NO_CACHE,
      on_failure=[remember_task_failure])
def confirm_nothing_new(settings: Settings, batches: list[SourceBatch], countries: pl.DataFrame) -> dict | None:
    """eujp.run.nothing_new: record a day with nothing new, or None to take the full path."""
    return run.nothing_new(settings, batches, countries, get_run_logger())


@task(name="build-data-docs", task_run_name="build-data-docs", cache_policy=NO_CACHE,
      on_failure=[remember_task_failure])
def build_docs(settings: Settings, reports: list) -> str:
    """eujp.run.build_docs: the run's Great Expectations Data Docs site."""
    return run.build_docs(settings, reports)


@task(name="publish", task_run_name="publish", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      on_failure=[remember_task_failure])
def publish(settings: Settings, batches: list[SourceBatch], counts: dict, audit: dict, status: str,
            docs: str | None = None, fingerprint: dict | None = None) -> str:
    """eujp.run.publish: data, manifest, report and Data Docs; `latest` moves last."""
    return run.publish(settings, batches, counts, audit, status, docs, fingerprint, get_run_logger())
