"""The daily parent flow: three domain flows, then load → audit → promote → publish, under one lock.

A day with nothing new (every source unchanged, and the published latest run built from the same inputs by
the same code) records its check and stops there: see `confirm_nothing_new` and eujp/fingerprint.py.

Every run leaves artifacts (flows/artifacts.py) and a Data Docs site; a failed or crashed run posts an
alert to the configured webhook (flows/hooks.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from eujp import progress
from eujp.audit import audit_staging, published_baseline
from eujp.config import Settings
from eujp.errors import AuditFailed, PublishError
from eujp.fingerprint import warehouse_fingerprint
from eujp.freshness import warehouse_freshness
from eujp.fsguard import raise_if_storage_error
from eujp.lock import warehouse_lock
from eujp.marts import build_marts
from eujp.pipeline import SourceBatch, load_batches, load_countries, load_dim_country, utcnow
from eujp.publish import expand_directories, publish_run, read_latest_manifest, record_check
from eujp.reference import load_reference_tables
from eujp.report import write_warehouse_report
from eujp.schema import ALL_TABLES
from eujp.storage import open_store
from eujp.warehouse import (
    clean_stale_staging,
    connect,
    discard_staging,
    ensure_schema,
    open_staging,
    promote,
    table_counts,
)
from flows.artifacts import create_failure_artifact, create_run_artifacts
from flows.domains import DOMAIN_FLOWS
from flows.hooks import begin_run, notify_failure, remember_task_failure


@dataclass
class RunSummary:
    run_id: str
    status: str  # success | failed
    sources: list[dict] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    audit: dict = field(default_factory=dict)
    published_to: str | None = None
    warehouse: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # stale sources, Data Docs not built, ...
    docs_url: str | None = None  # the run's Great Expectations Data Docs (published, else local)
    freshness: list[dict] = field(default_factory=list)  # eujp.freshness.Freshness.to_dict() per source
    as_of: str | None = None  # as-of rebuilds (flows/backfill.py): the day rebuilt
    # A day with nothing new (confirm_nothing_new): the published run that is still current; published_to is
    # its location and nothing was published by this run.
    current_run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def failure_message(self) -> str:
        return f"run {self.run_id} failed: " + " | ".join(self.errors)


@task(name="load-audit-promote", cache_policy=NO_CACHE, on_failure=[remember_task_failure])
def load_audit_promote(settings: Settings, batches: list[SourceBatch], countries,
                       compare_published: bool = True) -> tuple[dict, dict, dict]:
    """Load every batch into a staging copy, audit it, and promote it over the live warehouse.

    The audit compares row counts with the live warehouse and with the published latest run (read first: an
    unreadable store fails the audit before anything is written) and evaluates the suites of the tables this
    run loaded. Returns the table counts, the audit report and the warehouse's fingerprint (eujp.fingerprint).
    A full or read-only disk surfaces as WarehouseStorageError naming the staging file; the live warehouse is
    only ever replaced by `promote`'s atomic rename. `compare_published=False` for a warehouse
    that is never published (as-of rebuilds, flows/backfill.py): the published latest run is not its baseline."""
    published = published_baseline(open_store(settings.publish_uri)) if compare_published else None
    with staged_warehouse(settings, "loading the staging copy") as conn, progress.step("load, audit, promote"):
        ensure_schema(conn)
        previous = table_counts(conn)
        load_dim_country(conn, countries)
        load_batches(conn, batches, run_id=settings.run_id)
        load_reference_tables(conn)
        build_marts(conn)  # on the staging copy: the marts are published with the facts they come from
        report = audit_staging(conn, run_id=settings.run_id, previous_counts=previous,
                               max_row_drop_pct=settings.max_row_drop_pct, published=published,
                               revalidate=[b.table for b in batches if b.status == "loaded"])
        report.raise_if_failed()
        counts = table_counts(conn)
        fingerprint = warehouse_fingerprint(conn, countries)
    return counts, report.to_dict(), fingerprint


@contextmanager
def staged_warehouse(settings: Settings, doing: str) -> Iterator:
    """A connection to a staging copy of the live warehouse; when the block ends without an error the copy is
    checkpointed, closed and promoted over the live file (atomic rename), else discarded. A full or read-only
    disk surfaces as WarehouseStorageError naming the staging file (`doing`: what the run was doing)."""
    staging = open_staging(settings.warehouse_path, settings.staging_dir, settings.run_id)
    try:
        with connect(staging) as conn:
            yield conn
            conn.execute("CHECKPOINT")
        promote(staging, settings.warehouse_path)
    except BaseException as exc:
        discard_staging(staging)
        raise_if_storage_error(exc, f"{doing} {staging}", settings.warehouse_path)
        raise


@task(name="confirm-nothing-new", cache_policy=NO_CACHE, on_failure=[remember_task_failure])
def confirm_nothing_new(settings: Settings, batches: list[SourceBatch], countries) -> dict | None:
    """A day with nothing new: when every source is unchanged and the published latest run was built from
    the same inputs by the same code (eujp.fingerprint), record the check (etl_runs, etl_source_state, through
    a staging copy as any run) and `latest-check.json`, and return what is still current; rebuilding the
    marts, auditing and publishing would reproduce the published warehouse. None: take the full path."""
    if not batches or any(b.status != "unchanged" for b in batches) or not settings.warehouse_path.exists():
        return None
    store = open_store(settings.publish_uri)
    try:
        latest = read_latest_manifest(store)
    except Exception as exc:  # noqa: BLE001 - unreadable: the full path (its audit says why)
        get_run_logger().warning("nothing new, but the published latest run cannot be read (%s): publishing", exc)
        return None
    if latest is None:
        return None
    pointer, manifest = latest
    with connect(settings.warehouse_path, read_only=True) as conn:
        current = warehouse_fingerprint(conn, countries)
    if manifest.get("fingerprint") != current:
        get_run_logger().info("every source is unchanged, but the published run %s was built from other code or "
                              "inputs: rebuilding and publishing", pointer["run_id"])
        return None
    with staged_warehouse(settings, "recording the run in the staging copy") as conn:
        load_batches(conn, batches, run_id=settings.run_id)  # unchanged batches: run records only
        counts = table_counts(conn)
    check = {"run_id": settings.run_id, "checked_at": utcnow().isoformat(timespec="seconds"),
             "status": "unchanged", "current_run_id": pointer["run_id"],
             "sources": {b.source: b.note for b in batches}}
    record_check(store, check)
    return {"current_run_id": pointer["run_id"], "location": f"{store.uri.rstrip('/')}/{pointer['prefix']}",
            "table_rows": counts}


@task(name="build-data-docs", cache_policy=NO_CACHE, on_failure=[remember_task_failure])
def build_docs(settings: Settings, reports: list[Any]) -> str | None:
    """The Great Expectations Data Docs site of this run's validation results, in
    {warehouse folder}/docs/{run_id}/ (the newest `keep_runs` sites are kept there); its index.html."""
    from eujp.validate import build_data_docs

    out = docs_dir(settings)
    with progress.step("build Data Docs"):
        index = build_data_docs(reports, out)
    for old in sorted(p for p in out.parent.iterdir() if p.is_dir())[:-settings.keep_runs]:
        shutil.rmtree(old, ignore_errors=True)
    return str(index)


def docs_dir(settings: Settings) -> Path:
    return settings.warehouse_path.parent / "docs" / settings.run_id


def object_link(settings: Settings, key: str) -> str:
    """A link to a published object: under EUJP_PUBLIC_URL when set (http), else the store's own URL."""
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/{key}"
    return open_store(settings.publish_uri).url_for(key)


@task(name="publish", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      on_failure=[remember_task_failure])
def publish(settings: Settings, batches: list[SourceBatch], counts: dict, audit: dict, status: str,
            docs: str | None = None, fingerprint: dict | None = None) -> str:
    store = open_store(settings.publish_uri)
    work_dir = settings.warehouse_path.parent / "publish" / settings.run_id
    report = run_report(settings)
    extra = {"docs": Path(docs).parent} if docs else {}
    if report:
        extra["report.html"] = report
    total = len(expand_directories(extra)) + len(ALL_TABLES) + 2  # + warehouse, manifest
    try:
        with progress.step(f"publish to {store.uri}", total=total) as advance:
            result = publish_run(
                store,
                run_id=settings.run_id,
                warehouse_path=settings.warehouse_path,
                manifest_without_checksums={
                    "run_id": settings.run_id,
                    "status": status,
                    "table_rows": counts,
                    "sources": {b.source: {k: v for k, v in b.summary().items() if k != "validation"}
                                for b in batches},
                    "validation": {b.table: b.validation.to_dict() for b in batches if b.validation is not None},
                    "audit": audit,
                    "fingerprint": fingerprint,
                },
                work_dir=work_dir,
                keep_runs=settings.keep_runs,
                extra_files=extra,
                latest_files=("report.html",) if report else (),
                on_upload=lambda key: advance(),
            )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return result.location


def run_report(settings: Settings) -> Path | None:
    """The run's HTML report (eujp.report), written beside the warehouse from the promoted warehouse. A report
    that cannot be written is logged as an error and the run publishes without it."""
    try:
        return write_warehouse_report(settings.warehouse_path, settings.warehouse_path.parent / "report.html",
                                      run_id=settings.run_id)
    except Exception as exc:  # noqa: BLE001 - the data matter more than their report
        get_run_logger().error("report not written: %s: %s", type(exc).__name__, exc)
        return None


def run_daily(settings: Settings) -> RunSummary:
    """The body of the daily flow (also callable inside any other flow)."""
    logger = get_run_logger()
    summary = RunSummary(run_id=settings.run_id, status="success", warehouse=str(settings.warehouse_path))
    with warehouse_lock(settings.warehouse_path, wait_seconds=settings.lock_wait_seconds):
        clean_stale_staging(settings.staging_dir)
        countries = load_countries(settings.run_date)
        batches: list[SourceBatch] = []
        for domain_flow in DOMAIN_FLOWS.values():
            batches.extend(domain_flow(settings, countries))
        summary.errors = [b.error for b in batches if b.error]
        current = confirm_nothing_new(settings, batches, countries)
        if current is not None:
            summary.sources = [b.summary() for b in batches]
            summary.table_rows = current["table_rows"]
            summary.current_run_id, summary.published_to = current["current_run_id"], current["location"]
            report_run(settings, summary, [], None)
            logger.info("run %s: nothing new; published run %s is current (%s)", settings.run_id,
                        summary.current_run_id, summary.published_to)
            return summary
        reports = [b.validation for b in batches if b.validation is not None]
        docs = data_docs(settings, reports, summary)
        try:
            counts, audit, fingerprint = load_audit_promote(settings, batches, countries)
        except AuditFailed as exc:
            summary.status = "failed"
            summary.errors.append(str(exc))
            summary.sources = [b.summary() for b in batches]
            report_run(settings, summary, reports, docs)
            return summary
        summary.errors = [b.error for b in batches if b.error]  # load errors too
        summary.status = "failed" if summary.errors else "success"
        summary.table_rows, summary.audit = counts, audit
        summary.sources = [b.summary() for b in batches]
        try:
            summary.published_to = publish(settings, batches, counts, audit, summary.status, docs, fingerprint)
        except PublishError as exc:  # promoted but not published: latest still points at the previous run
            summary.status = "failed"
            summary.errors.append(str(exc))
        report_run(settings, summary, reports, docs)
    logger.info("run %s %s; published to %s", settings.run_id, summary.status, summary.published_to)
    return summary


def data_docs(settings: Settings, reports: list, summary: RunSummary) -> str | None:
    """Build the run's Data Docs; a failure to build them is a warning of the run, not a failure."""
    if not reports:
        return None
    try:
        return build_docs(settings, reports)
    except Exception as exc:  # noqa: BLE001 - the data matter more than their documentation
        summary.warnings.append(f"Data Docs not built: {type(exc).__name__}: {exc}")
        get_run_logger().error(summary.warnings[-1])
        return None


def report_run(settings: Settings, summary: RunSummary, reports: list, docs: str | None, *,
               now=None, flow_label: str = "eujp-daily") -> None:
    """Complete the summary (Data Docs link, freshness) and post the run's artifacts."""
    logger = get_run_logger()
    if docs:
        key = f"runs/{settings.run_id}/docs/index.html"
        summary.docs_url = object_link(settings, key) if summary.published_to else Path(docs).resolve().as_uri()
    try:
        freshness = warehouse_freshness(settings.warehouse_path, now)
    except Exception as exc:  # noqa: BLE001 - the run's outcome does not depend on its report
        freshness = []
        summary.warnings.append(f"freshness not read from {settings.warehouse_path}: {type(exc).__name__}: {exc}")
        logger.error(summary.warnings[-1])
    summary.freshness = [f.to_dict() for f in freshness]
    for f in freshness:
        if f.warning:
            summary.warnings.append(f"freshness: {f.warning}")
            logger.warning("freshness: %s", f.warning)
    try:
        create_run_artifacts(summary.to_dict(), reports, flow_label=flow_label)
    except Exception as exc:  # noqa: BLE001 - the run's outcome does not depend on its report
        logger.error("could not create the run's artifacts: %s: %s", type(exc).__name__, exc)


@flow(name="eujp-daily", validate_parameters=False, on_running=[begin_run], on_failure=[notify_failure],
      on_crashed=[notify_failure])
def daily_flow(
    snapshot_dir: str | None = None,
    warehouse: str | None = None,
    publish_uri: str | None = None,
    source_mode: str = "snapshot",
    raw_date: str | None = None,
    run_id: str | None = None,
    only_sources: list[str] | None = None,
    force: bool = False,
):
    """Daily EU–Japan ETL: every source, validated, loaded into a staging copy, audited, promoted and
    published. Ends Failed (with the summary as its data) when any source or step failed."""
    settings = Settings.from_env(
        snapshot_dir=Path(snapshot_dir) if snapshot_dir else None,
        warehouse_path=Path(warehouse) if warehouse else None,
        publish_uri=publish_uri,
        source_mode=source_mode,
        raw_date=date.fromisoformat(raw_date) if raw_date else None,
        run_id=run_id,
        only_sources=tuple(only_sources) if only_sources else None,
        force=force,
    )
    return flow_result(settings, lambda: run_daily(settings))


def flow_result(settings: Settings, body: Callable[[], RunSummary], flow_label: str = "eujp-daily"):
    """Run a flow's body and turn its summary into the flow's result: the summary, or a Failed state carrying
    it. An exception leaves a failure artifact first and is re-raised (the run fails with its own error)."""
    try:
        summary = body()
    except Exception as exc:
        try:
            create_failure_artifact(settings.run_id, f"{type(exc).__name__}: {exc}", flow_label)
        except Exception as artifact_exc:  # noqa: BLE001 - the run's own error is the one to raise
            get_run_logger().error("could not create the failure artifact: %s", artifact_exc)
        raise
    if summary.status != "success":
        return Failed(message=summary.failure_message, data=summary.to_dict())
    return summary.to_dict()

