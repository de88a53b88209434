"""The daily parent flow: three domain flows, then load → audit → promote → publish, under one lock."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from eujp.audit import audit_staging
from eujp.config import Settings
from eujp.errors import AuditFailed
from eujp.lock import warehouse_lock
from eujp.pipeline import SourceBatch, load_batches, load_countries, load_dim_country
from eujp.publish import publish_run
from eujp.marts import build_marts
from eujp.reference import load_reference_tables
from eujp.report import write_warehouse_report
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
from flows.domains import DOMAIN_FLOWS


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

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def failure_message(self) -> str:
        return f"run {self.run_id} failed: " + " | ".join(self.errors)


@task(name="load-audit-promote", cache_policy=NO_CACHE)
def load_audit_promote(settings: Settings, batches: list[SourceBatch], countries) -> tuple[dict, dict]:
    """Load every batch into a staging copy, audit it, and promote it over the live warehouse."""
    staging = open_staging(settings.warehouse_path, settings.staging_dir, settings.run_id)
    try:
        with connect(staging) as conn:
            ensure_schema(conn)
            previous = table_counts(conn)
            load_dim_country(conn, countries)
            load_batches(conn, batches, run_id=settings.run_id)
            load_reference_tables(conn)
            build_marts(conn)  # on the staging copy: the marts are published with the facts they come from
            report = audit_staging(conn, run_id=settings.run_id, previous_counts=previous,
                                   max_row_drop_pct=settings.max_row_drop_pct)
            report.raise_if_failed()
            counts = table_counts(conn)
            conn.execute("CHECKPOINT")
        promote(staging, settings.warehouse_path)
    except BaseException:
        discard_staging(staging)
        raise
    return counts, report.to_dict()


@task(name="publish", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def publish(settings: Settings, batches: list[SourceBatch], counts: dict, audit: dict, status: str) -> str:
    store = open_store(settings.publish_uri)
    work_dir = settings.warehouse_path.parent / "publish" / settings.run_id
    report = run_report(settings)
    try:
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
            },
            work_dir=work_dir,
            keep_runs=settings.keep_runs,
            extra_files={"report.html": report} if report else None,
            latest_files=("report.html",) if report else (),
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
    with warehouse_lock(settings.warehouse_path):
        clean_stale_staging(settings.staging_dir)
        countries = load_countries(settings.run_date)
        batches: list[SourceBatch] = []
        for domain_flow in DOMAIN_FLOWS.values():
            batches.extend(domain_flow(settings, countries))
        summary.errors = [b.error for b in batches if b.error]
        try:
            counts, audit = load_audit_promote(settings, batches, countries)
        except AuditFailed as exc:
            summary.status = "failed"
            summary.errors.append(str(exc))
            summary.sources = [b.summary() for b in batches]
            return summary
        summary.errors = [b.error for b in batches if b.error]  # load errors too
        summary.status = "failed" if summary.errors else "success"
        summary.table_rows, summary.audit = counts, audit
        summary.sources = [b.summary() for b in batches]
        summary.published_to = publish(settings, batches, counts, audit, summary.status)
    logger.info("run %s %s; published to %s", settings.run_id, summary.status, summary.published_to)
    return summary


@flow(name="eujp-daily", validate_parameters=False)
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
    summary = run_daily(settings)
    if summary.status != "success":
        return Failed(message=summary.failure_message, data=summary.to_dict())
    return summary.to_dict()

