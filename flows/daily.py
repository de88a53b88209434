"""The daily parent flow: the domain flows, then load → audit → promote → publish, under one lock.

A day with nothing new (every source unchanged, and the published latest run built from the same inputs by
the same code) records its check and stops there (eujp.run.nothing_new). Every run leaves artifacts
(flows/artifacts.py) and a Data Docs site; a failed or crashed run posts an alert (flows/hooks.py). The run's
logic lives in eujp.run; this module only orchestrates it.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Failed

from eujp import reconcile
from eujp.config import Settings
from eujp.errors import AuditFailed, PublishError
from eujp.lock import warehouse_lock
from eujp.pipeline import SourceBatch, landing_errors, load_countries, release_chunks, source_warnings
from eujp.preflight import PreflightFailed, preflight
from eujp.publish import Deadline
from eujp.rejections import judge_rejections, rejection_errors, rejection_warnings
from eujp.run import RunSummary, audit_failed, data_docs
from eujp.sources import DOMAINS
from eujp.warehouse import clean_stale_staging
from flows.domains import run_domain
from flows.hooks import begin_run, notify_failure
from flows.results import flow_result, report_run
from flows.run_names import named_run_id, run_name
from flows.tasks import build_docs, confirm_nothing_new, load_audit_promote, publish, publish_retry_condition
from flows.writers import writer_slot


def check_settings(settings: Settings, logger) -> None:
    """The preflight (eujp.preflight) before anything is extracted or locked: PreflightFailed names the
    settings to fix."""
    from flows.api import api_url

    started = time.monotonic()
    checks = preflight(settings, prefect_api_url=api_url())  # its "settings" check names unknown thresholds
    logger.info("preflight: %d checks passed in %.1f s", len(checks), time.monotonic() - started)
    for check in checks:
        if check.warning:  # e.g. files of the snapshot folder that no source reads
            logger.warning("preflight: %s: %s", check.name, check.warning)


def run_daily(settings: Settings) -> RunSummary:
    """The body of the daily flow (also callable inside any other flow). Checks the settings first
    (PreflightFailed: nothing was extracted, written or published)."""
    logger = get_run_logger()
    check_settings(settings, logger)
    summary = RunSummary(run_id=settings.run_id, status="success", warehouse=str(settings.warehouse_path))
    # the file lock first (same host: the message names the holder's pid), then the writer limit (other hosts
    # publishing to the same target: flows/writers.py)
    with warehouse_lock(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds, logger=logger), \
            writer_slot(settings, logger):
        clean_stale_staging(settings.staging_dir, logger=logger)
        countries = load_countries(settings.run_date)
        batches: list[SourceBatch] = []
        try:
            for domain in DOMAINS:
                batches.extend(run_domain(domain, settings, countries))
            return _load_and_publish(settings, summary, batches, countries, logger)
        finally:  # whatever stopped the run: no source's spilled chunks stay on disk (a load releases its own)
            for batch in batches:
                release_chunks(batch)


def _load_and_publish(settings: Settings, summary: RunSummary, batches: list[SourceBatch], countries,
                      logger) -> RunSummary:
    """The rest of run_daily, once the domain flows have prepared every source, under its locks."""
    summary.errors = [b.error for b in batches if b.error] + landing_errors(batches)
    judge_rejections(settings, batches)  # before the load: etl_runs.message records each verdict
    current = confirm_nothing_new(settings, batches, countries)
    if current is not None:
        summary.warnings[:0] = source_warnings(batches)
        summary.sources = [b.summary() for b in batches]
        summary.table_rows = current["table_rows"]
        summary.current_run_id, summary.published_to = current["current_run_id"], current["location"]
        if current.get("partners_removed"):  # --remove-partner of partners the warehouse holds no row of
            summary.changes = {"partners_removed": current["partners_removed"]}
        report_run(settings, summary, [], None)
        logger.info("run %s: nothing new; published run %s is current (%s)", settings.run_id,
                    summary.current_run_id, summary.published_to)
        return summary
    reports = [b.validation for b in batches if b.validation is not None]
    docs = data_docs(lambda: build_docs(settings, reports), reports, summary, logger)
    try:
        counts, audit, fingerprint, changes = load_audit_promote(settings, batches, countries)
    except AuditFailed as exc:  # nothing promoted: the sources say so, the report lists the failed checks
        audit_failed(summary, batches, exc)
        summary.warnings[:0] = source_warnings(batches)
        report_run(settings, summary, reports, docs)
        return summary
    # load errors too; a source that rejected more of its rows than its threshold fails the run, though
    # its valid rows are loaded and published (eujp.rejections), as a failed source's neighbours are
    summary.errors = [b.error for b in batches if b.error] + landing_errors(batches) + rejection_errors(batches)
    # the sources' warnings: those of their extraction, and those of their load (codes added that loaded no row)
    summary.warnings[:0] = rejection_warnings(batches) + reconcile.warnings(audit) + source_warnings(batches)
    summary.status = "failed" if summary.errors else "success"
    summary.table_rows, summary.audit, summary.changes = counts, audit, changes
    summary.sources = [b.summary() for b in batches]
    try:
        deadline = Deadline.after(settings.publish_timeout)  # one per run: the task's retries share it
        publish_task = publish.with_options(retry_condition_fn=publish_retry_condition(deadline))
        summary.published_to = publish_task(settings, batches, counts, audit, summary.status, docs, fingerprint,
                                            deadline=deadline)
    except PublishError as exc:  # promoted but not published: latest still points at the previous run
        summary.status = "failed"
        summary.errors.append(str(exc))
    report_run(settings, summary, reports, docs)
    logger.info("run %s %s; published to %s", settings.run_id, summary.status, summary.published_to)
    return summary


@flow(name="eujp-daily", flow_run_name=run_name("daily"), validate_parameters=False, on_running=[begin_run],
      on_failure=[notify_failure], on_crashed=[notify_failure])
def daily_flow(
    snapshot_dir: str | None = None,
    warehouse: str | None = None,
    publish_uri: str | None = None,
    source_mode: str = "snapshot",
    raw_date: str | None = None,
    run_id: str | None = None,
    only_sources: list[str] | None = None,
    force: bool = False,
    dask_address: str | None = None,
    fanout: bool = False,
    remove_partners: list[str] | None = None,
):
    """Daily EU–Japan ETL: every source, validated, loaded into the staging warehouse, audited, promoted and
    published. Ends Failed (with the summary as its data) when any source or step failed or a source rejected
    more of its rows than its threshold (EUJP_MAX_REJECTED_PCT, eujp.rejections), and Failed with
    the PreflightFailed as its data, before anything is done, when a setting is wrong (eujp.preflight).
    `dask_address` / `fanout`: run the partitions of streaming sources on Dask (flows/fanout.py).
    `remove_partners`: Comext partner codes whose rows the run deletes (eujp.partners.remove_partner_rows)."""
    settings = Settings.from_env(
        snapshot_dir=Path(snapshot_dir) if snapshot_dir else None,
        warehouse_path=Path(warehouse) if warehouse else None,
        publish_uri=publish_uri,
        source_mode=source_mode,
        raw_date=date.fromisoformat(raw_date) if raw_date else None,
        run_id=named_run_id(run_id, "daily"),
        only_sources=tuple(only_sources) if only_sources else None,
        force=force,
        dask_address=dask_address,
        fanout=fanout or None,
        remove_partners=tuple(remove_partners) if remove_partners else None,
    )
    try:
        return flow_result(settings, lambda: run_daily(settings))
    except PreflightFailed as exc:  # a configuration error: one message, no traceback; the error is the result
        get_run_logger().error(str(exc))
        return Failed(message=str(exc), data=exc)
