"""Prefect tasks: thin wrappers around eujp.pipeline steps (retries live here, logic does not)."""

from __future__ import annotations

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from eujp.config import Settings
from eujp.landing import RawPayload
from eujp.pipeline import SourceBatch, fetch_payloads, land_payloads, prepare_source
from eujp.sources import SOURCES_BY_NAME
from eujp.storage import open_store
from flows.hooks import remember_task_failure


# No Prefect retries here: the HTTP client (eujp.http) already retries with backoff within a time
# budget per source; retrying the task would spend that budget several times over.
@task(name="extract-and-land", cache_policy=NO_CACHE,
      task_run_name="extract {source_name}", on_failure=[remember_task_failure])
def extract_and_land(source_name: str, settings: Settings) -> tuple[list[RawPayload], list[str]]:
    source = SOURCES_BY_NAME[source_name]
    store = open_store(settings.publish_uri)
    payloads = fetch_payloads(source, settings, store)
    keys = [] if settings.source_mode == "raw" else land_payloads(store, source, payloads, settings.run_date)
    return payloads, keys


@task(name="parse-transform-validate", cache_policy=NO_CACHE, task_run_name="prepare {source_name}",
      on_failure=[remember_task_failure])
def prepare(source_name: str, payloads: list[RawPayload], countries: pl.DataFrame,
            batch: SourceBatch) -> SourceBatch:
    return prepare_source(SOURCES_BY_NAME[source_name], payloads, countries, batch)
