"""Prefect tasks: thin wrappers around the run's steps in eujp (retries, names and hooks live here, logic
does not)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from eujp import run
from eujp.config import Settings
from eujp.errors import PublishDeadlineError, is_interrupt, is_transient
from eujp.landing import RawPayload, landed_objects
from eujp.pipeline import SourceBatch, fetch_payloads, land_payloads, prepare_source
from eujp.publish import Deadline
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
    if settings.source_mode == "raw":  # the run's data came from these: its manifest lists them (retention)
        # (none: nothing of the source was landed that day, fetch_payloads; it is unchanged, skip_unchanged)
        return payloads, replayed_keys(store, source.name, settings.raw_date) if payloads else []
    return payloads, land_payloads(store, source, payloads, settings.run_date)


def replayed_keys(store, source_name: str, day) -> list[str]:
    """The raw-zone keys a replay of `day` read for a source, each once: listed in its manifest as a landing
    run's are, so that the raw zone's retention keeps the day a published replay came from."""
    return list(dict.fromkeys(o.key for o in landed_objects(store, source_name, day)))


@task(name="parse-transform-validate", cache_policy=NO_CACHE, task_run_name="prepare {source_name}",
      on_failure=[remember_task_failure])
def prepare(source_name: str, payloads: list[RawPayload], countries: pl.DataFrame,
            batch: SourceBatch, spill_dir: Path | None = None) -> SourceBatch:
    return prepare_source(get_source(source_name), payloads, countries, batch, spill_dir=spill_dir)


@task(name="load-audit-promote", task_run_name="load-audit-promote", cache_policy=NO_CACHE,
      on_failure=[remember_task_failure])
def load_audit_promote(settings: Settings, batches: list[SourceBatch], countries: pl.DataFrame,
                       compare_published: bool = True) -> tuple[dict, dict, dict, dict]:
    """eujp.run.load_audit_promote: staging → load → marts whose inputs changed → audit → promote."""
    return run.load_audit_promote(settings, batches, countries, compare_published, get_run_logger())


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


def publish_retry_condition(deadline: Deadline | None = None) -> Callable:
    """The publish task's `retry_condition_fn`: retry only an error a retry may get past (eujp.errors.is_transient:
    the network, S3's 5xx and throttling, a corrupt write; not a local OS error such as ENOTDIR or EACCES, a
    ValueError, ..., which would fail again after 5 s and 30 s); never a PublishDeadlineError or a Ctrl-C, nor
    (given the run's `deadline`) when the retry would start after the deadline: the retries share the run's one
    deadline (eujp.publish.Deadline) instead of multiplying it."""

    def should_retry(task, task_run, state) -> bool:
        error = state.data if isinstance(state.data, BaseException) else None
        if isinstance(error, PublishDeadlineError) or is_interrupt(error):  # a Ctrl-C is not retried
            return False
        if not is_transient(error):
            return False
        if deadline is None:
            return True
        delays = task.retry_delay_seconds or 0
        if isinstance(delays, Sequence):  # Prefect takes the n-th delay for the n-th retry, the last one after
            delays = delays[min(max(task_run.run_count - 1, 0), len(delays) - 1)] if delays else 0
        return deadline.remaining() > float(delays)

    return should_retry


@task(name="publish", task_run_name="publish", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      retry_condition_fn=publish_retry_condition(), on_failure=[remember_task_failure])
def publish(settings: Settings, batches: list[SourceBatch], counts: dict, audit: dict, status: str,
            docs: str | None = None, fingerprint: dict | None = None, deadline: Deadline | None = None) -> str:
    """eujp.run.publish: data, manifest, report and Data Docs; `latest` moves last. `deadline`: the run's
    publish deadline (EUJP_PUBLISH_TIMEOUT), made once by the flow: call the task through
    `publish.with_options(retry_condition_fn=publish_retry_condition(deadline))` so that no retry starts
    after it."""
    return run.publish(settings, batches, counts, audit, status, docs, fingerprint, get_run_logger(),
                       deadline=deadline)
