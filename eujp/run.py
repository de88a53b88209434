"""The logic of one run, as plain functions the Prefect flows (flows/) call: the run's summary, the staged
warehouse transaction (load → audit → promote), the nothing-new decision, publishing with the run's manifest,
the Data Docs site and its retention, the run report, and completing the summary (links, freshness).

Nothing here imports Prefect: a flow passes its run logger where a function logs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from eujp import partners, progress, reconcile
from eujp.audit import audit_staging, published_baseline
from eujp.catalog import CATALOG_FILE
from eujp.config import Settings
from eujp.errors import AuditFailed, PublishDeadlineError, PublishError
from eujp.fingerprint import warehouse_fingerprint
from eujp.freshness import warehouse_freshness
from eujp.fsguard import raise_if_storage_error
from eujp.lake import CATALOG_FILE as LAKE_CATALOG_FILE
from eujp.lake import (
    SINGLE_FILE_ENV,
    LakeCommit,
    LakeError,
    SingleFile,
    adopt_folder_catalog,
    commit_warehouse,
    frozen_catalog,
    lake_config,
    replace_unpublished_catalog,
    sized_table_rows,
    slim_warehouse,
)
from eujp.marts.build import build_models, deleted_partition_values, table_digests
from eujp.partners import manifest_entry as partners_manifest_entry
from eujp.pipeline import SourceBatch, load_batches, load_dim_country, utcnow
from eujp.publish import (
    Deadline,
    PartitionedParquet,
    PublishCutoff,
    expand_directories,
    publish_run,
    read_latest_manifest,
    record_check,
    within,
)
from eujp.reference import load_reference_tables
from eujp.report import CHART_CACHE_FOLDER, PARQUET_HREF, write_warehouse_report
from eujp.schema import DIM_COUNTRY
from eujp.schema.reference import REFERENCE_TABLES
from eujp.storage import open_store
from eujp.tables import ALL_TABLES, ensure_schema, table_counts
from eujp.warehouse import connect, connect_staging, discard_staging, open_staging, promote

default_log = logging.getLogger("eujp")


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
    warnings: list[str] = field(default_factory=list)  # rows rejected, stale sources, Data Docs not built, ...
    # Where a person opens the run's Great Expectations Data Docs (index.html) and its HTML report: an http(s)
    # URL under EUJP_PUBLIC_URL when set, else where the file is ("<store uri>/<key>", or the local folder of
    # Data Docs that were not published): never a file:// link (complete_summary).
    docs_url: str | None = None
    report_url: str | None = None  # runs/{run_id}/report.html (also copied to latest/report.html)
    catalog_url: str | None = None  # runs/{run_id}/catalog.html (also copied to latest/catalog.html)
    freshness: list[dict] = field(default_factory=list)  # eujp.freshness.Freshness.to_dict() per source
    as_of: str | None = None  # as-of rebuilds (flows/backfill.py): the day rebuilt
    # A day with nothing new (nothing_new): the published run that is still current; published_to is
    # its location and nothing was published by this run.
    current_run_id: str | None = None
    # What the run changed (eujp.run.load_audit_promote): rows written per table, tables written, models
    # rebuilt (with the reason) and kept; a day costs what changed.
    changes: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def failure_message(self) -> str:
        return f"run {self.run_id} failed: " + " | ".join(self.errors)


# --- write-audit-promote ----------------------------------------------------------------------------------

AUDIT_FAILED = "loaded, not promoted: audit failed"
"""A source's status in the run summary when its rows were loaded into the staging warehouse, but the audit
failed and nothing was promoted or published (the live warehouse keeps what it had)."""


def audit_failed(summary: RunSummary, batches: list[SourceBatch], exc: AuditFailed) -> None:
    """Record in `summary` a run whose audit failed: failed, the error, the audit's checks (the failed ones
    shown in the run report) and every source the run had loaded marked not promoted, nothing written."""
    summary.status = "failed"
    summary.errors.append(str(exc))
    report = getattr(exc, "report", None)  # a mart build error carries none: its message says what failed
    summary.audit = report.to_dict() if report is not None else {}
    sources = [b.summary() for b in batches]
    summary.sources = [{**s, "status": AUDIT_FAILED, "rows_written": 0} if s["status"] == "loaded" else s
                       for s in sources]


@contextmanager
def staged_warehouse(settings: Settings, doing: str) -> Iterator:
    """A connection to this run's staging warehouse (eujp.warehouse.open_staging: the live file through a
    hard link whose write-ahead log holds the run's commits, else a new file or a copy); when the block ends
    without an error it is promoted (a checkpoint of the link, or an atomic rename), else discarded: the log
    or the staging file is deleted and the live warehouse is as the previous run left it. A full or
    read-only disk surfaces as WarehouseStorageError naming the staging file (`doing`: what the run was
    doing)."""
    staging = open_staging(settings.warehouse_path, settings.staging_dir, settings.run_id)
    try:
        conn = connect_staging(staging, settings.warehouse_path)
        try:
            yield conn
            promote(staging, settings.warehouse_path, conn)
        finally:
            conn.close()  # after promote a no-op; on an error no checkpoint: the run's commits stay in the log
    except BaseException as exc:
        discard_staging(staging)
        raise_if_storage_error(exc, f"{doing} {staging}", settings.warehouse_path)
        raise


def load_audit_promote(settings: Settings, batches: list[SourceBatch], countries: pl.DataFrame,
                       compare_published: bool = True,
                       log: logging.Logger = default_log) -> tuple[dict, dict, dict, dict]:
    """Load every batch into the staging warehouse, rebuild the models whose inputs changed, audit it, and
    promote it over the live warehouse (staged_warehouse).

    The audit compares row counts with the live warehouse and with the published latest run (read first: an
    unreadable store fails the audit before anything is written) and evaluates the suites of the tables this
    run loaded. Returns the table counts, the audit report, the warehouse's fingerprint (eujp.fingerprint)
    and what the run changed (`changes`: rows written per table, the tables written, the models rebuilt with
    the reason, the models kept). A full or read-only disk surfaces as WarehouseStorageError naming the
    staging file; the live warehouse only changes when the audited run is promoted. `compare_published=False`
    for a warehouse that is never published (as-of rebuilds): the published latest run is not its baseline.
    Each step's end is logged on `log` with its time (the flow's run log: where a long run spends its time)."""
    published = published_baseline(open_store(settings.publish_uri)) if compare_published else None
    started = time.perf_counter()  # the load's time: from the staging warehouse on, not the store's read above
    replaced_whole = [DIM_COUNTRY.name, *(t.name for t in REFERENCE_TABLES)]
    with staged_warehouse(settings, "loading the staging copy") as conn, progress.step("load, audit, promote"):
        ensure_schema(conn)
        previous = table_counts(conn)
        before = table_digests(conn, replaced_whole)
        load_dim_country(conn, countries)
        held = partners.partner_rows(conn, settings.remove_partners)  # before the load: what the live one holds
        load_batches(conn, batches, run_id=settings.run_id)
        load_reference_tables(conn)
        # --remove-partner: after the load, so that no row of the partner this run loaded stays either; the years
        # (partition values) its rows leave are read first: the models rebuild those, as those the run wrote
        deleted = ({partners.FACT: deleted_partition_values(conn, partners.FACT, partners.PARTNER_IN,
                                                            [list(settings.remove_partners)])}
                   if settings.remove_partners else None)
        removed = partners.remove_partner_rows(conn, settings.remove_partners)
        after = table_digests(conn, replaced_whole)
        written = {b.table for b in batches if b.status == "loaded"}
        written |= {name for name in replaced_whole if before[name] != after[name]}
        if any(r["fact_rows"] for r in removed.values()):
            written.add(partners.FACT)
        if any(r["coverage_rows"] for r in removed.values()):
            written.add(partners.COVERAGE)
        if removed:
            log.info("%s", partners.removal_note(removed))
        rows_written = {b.table: b.rows_written for b in batches if b.status == "loaded"}  # one source a table
        facts = sorted(rows_written)
        others = sorted(written - set(rows_written))  # reference tables and dimensions replaced whole
        log.info("load: %d fact row(s) written to %s%s in %.1f s", sum(rows_written.values()),
                 ", ".join(facts) or "no fact table", f"; replaced: {', '.join(others)}" if others else "",
                 time.perf_counter() - started)
        step = time.perf_counter()
        # on the staging warehouse: the marts are published with the facts they come from; only those whose
        # inputs the run wrote (all of them with --force: a reload after a code change)
        models = build_models(conn, None if settings.force else written, run_id=settings.run_id, deleted=deleted)
        log.info("models: %d rebuilt, %d kept in %.1f s", len(models.rebuilt), len(models.kept),
                 time.perf_counter() - step)
        step = time.perf_counter()
        report = audit_staging(conn, run_id=settings.run_id, previous_counts=previous,
                               max_row_drop_pct=settings.max_row_drop_pct, published=published,
                               revalidate=[b.table for b in batches if b.status == "loaded"],
                               written=None if settings.force else written,
                               removed_rows={partners.FACT: sum(held.values())})
        log.info("audit: %d check(s), %s in %.1f s", len(report.checks),
                 "passed" if report.ok else "FAILED", time.perf_counter() - step)
        report.raise_if_failed()
        audit = report.to_dict()
        audit["reconciliation"] = reconcile.to_dict(reconcile.reconcile(conn))  # breaches warn, never fail
        counts = table_counts(conn)
        fingerprint = warehouse_fingerprint(conn, countries)
    changes = {
        "rows_written": rows_written,
        "tables_written": sorted(written | set(models.rebuilt)),
        "models_rebuilt": models.rebuilt,
        "models_kept": models.kept,
    }
    if removed:
        changes["partners_removed"] = removed
    return counts, audit, fingerprint, changes


# --- a day with nothing new ---------------------------------------------------------------------------------

def nothing_new(settings: Settings, batches: list[SourceBatch], countries: pl.DataFrame,
                log: logging.Logger = default_log) -> dict | None:
    """A day with nothing new: when every source is unchanged and the published latest run was built from
    the same inputs by the same code (eujp.fingerprint), record the check (etl_runs, etl_source_state, through
    a staging copy as any run) and `latest-check.json`, and return what is still current; rebuilding the
    marts, auditing and publishing would reproduce the published warehouse. None: take the full path (for a
    run that removes a partner the warehouse holds rows of: its removal is a change; one that holds none is
    said so in the result's "partners_removed", eujp.partners.removal_note)."""
    if not batches or any(b.status != "unchanged" for b in batches) or not settings.warehouse_path.exists():
        return None
    held = {}
    if settings.remove_partners:  # before the store is read: a removal of rows the warehouse holds is a change
        with connect(settings.warehouse_path, read_only=True) as conn:
            held = partners.held_rows(conn, settings.remove_partners)
        holding = [p for p, rows in sorted(held.items()) if any(rows.values())]
        if holding:
            log.info("every source is unchanged, but the warehouse holds rows of %s, to remove (--remove-partner): "
                     "removing them and publishing", ", ".join(holding))
            return None
    store = open_store(settings.publish_uri)
    try:
        latest = read_latest_manifest(store)
    except Exception as exc:  # noqa: BLE001 - unreadable: the full path (its audit says why)
        log.warning("nothing new, but the published latest run cannot be read (%s): publishing", exc)
        return None
    if latest is None:
        return None
    pointer, manifest = latest
    if manifest.get("status") != "success":
        # a run that failed was published (the rest of its sources, its etl_runs saying what failed): a day on
        # which every source is unchanged (the failed one back to what it last loaded) publishes again, so that
        # `latest` does not go on saying a source failed
        log.info("every source is unchanged, but the published run %s ended %r: publishing again",
                 pointer["run_id"], manifest.get("status"))
        return None
    with connect(settings.warehouse_path, read_only=True) as conn:
        current = warehouse_fingerprint(conn, countries)
        unpublished = sorted({row[0] for row in unpublished_loads(conn, str(pointer["run_id"]), settings.run_id)})
    if manifest.get("fingerprint") != current:
        log.info("every source is unchanged, but the published run %s was built from other code or "
                 "inputs: rebuilding and publishing", pointer["run_id"])
        return None
    if unpublished:  # its values may equal the published ones (a --force run), its records do not
        log.info("every source is unchanged, but run(s) %s were promoted after the published run %s and never "
                 "published: publishing", ", ".join(unpublished), pointer["run_id"])
        return None
    with staged_warehouse(settings, "recording the run in the staging copy") as conn:
        load_batches(conn, batches, run_id=settings.run_id)  # unchanged batches: run records only
        counts = table_counts(conn)
    check = {"run_id": settings.run_id, "checked_at": utcnow().isoformat(timespec="seconds"),
             "status": "unchanged", "current_run_id": pointer["run_id"],
             "sources": {b.source: b.note for b in batches}}
    record_check(store, check)
    if held:
        log.info("%s", partners.removal_note(held))
    return {"current_run_id": pointer["run_id"], "location": f"{store.uri.rstrip('/')}/{pointer['prefix']}",
            "table_rows": counts, **({"partners_removed": held} if held else {})}


# --- Data Docs ------------------------------------------------------------------------------------------------

def docs_dir(settings: Settings) -> Path:
    """Where the run's Data Docs site is built: docs/{run_id}/ in the warehouse's files folder
    (Settings.files_dir: var/docs/{run_id}/ for var/warehouse.duckdb)."""
    return settings.files_dir / "docs" / settings.run_id


def build_docs(settings: Settings, reports: list[Any]) -> str:
    """The Great Expectations Data Docs site of this run's validation results, in docs_dir(settings) (the
    newest `keep_runs` sites are kept beside it); its index.html."""
    from eujp.validate import build_data_docs  # Great Expectations is slow to import: only here

    out = docs_dir(settings)
    with progress.step("build Data Docs"):
        index = build_data_docs(reports, out, run_id=settings.run_id)
    for old in sorted(p for p in out.parent.iterdir() if p.is_dir())[:-settings.keep_runs]:
        shutil.rmtree(old, ignore_errors=True)
    return str(index)


def data_docs(build: Callable[[], str], reports: list, summary: RunSummary,
              log: logging.Logger = default_log) -> str | None:
    """Build the run's Data Docs with `build`; a failure to build them, or a site that still loads assets from
    the network (eujp.docs_assets: their package is not installed), is a warning of the run, not a failure."""
    if not reports:
        return None
    try:
        index = build()
    except Exception as exc:  # noqa: BLE001 - the data matter more than their documentation
        summary.warnings.append(f"Data Docs not built: {type(exc).__name__}: {exc}")
        log.error(summary.warnings[-1])
        return None
    from eujp.docs_assets import remote_asset_urls

    remote = sorted({r.split(": ", 1)[1] for r in remote_asset_urls(Path(index).parent)})
    if remote:
        summary.warnings.append(f"Data Docs need the network for {len(remote)} asset(s) ({', '.join(remote[:3])}"
                                f"{', ...' if len(remote) > 3 else ''}): their packages are not installed "
                                "(docs/operations.md, Quality pages and links)")
        log.warning(summary.warnings[-1])
    return index


# --- publish --------------------------------------------------------------------------------------------------

def object_link(settings: Settings, key: str) -> str:
    """Where a published object is: its http(s) URL under EUJP_PUBLIC_URL when set, else "<store uri>/<key>"
    (a folder or s3://bucket/prefix: where the file is, not a link to click)."""
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/{key}"
    return f"{open_store(settings.publish_uri).uri.rstrip('/')}/{key}"


def run_manifest(settings: Settings, batches: list[SourceBatch], counts: dict, audit: dict, status: str,
                 fingerprint: dict | None) -> dict:
    """The run's manifest, before publish_run adds the checksums of the published files; its "partners" are read
    from the promoted warehouse (settings.warehouse_path)."""
    return {
        "run_id": settings.run_id,
        "status": status,
        "table_rows": counts,
        "sources": {b.source: {k: v for k, v in b.summary().items() if k != "validation"} for b in batches},
        "validation": {b.table: b.validation.to_dict() for b in batches if b.validation is not None},
        "audit": audit,
        "fingerprint": fingerprint,
        # the partners the Comext facts hold, and whether the live request still asks for each (eujp.partners)
        "partners": partners_manifest_entry(settings.warehouse_path),
    }


def run_report(settings: Settings, log: logging.Logger = default_log,
               reconciliation: dict | None = None, partitioned: dict[str, str] | None = None) -> Path | None:
    """The run's HTML report (eujp.report), written in the warehouse's files folder (Settings.files_dir) from
    the promoted warehouse (with the audit's `reconciliation` of it, when given; `partitioned`: the tables
    published as a Parquet file per value of a column, {table: column}, which it links file by file). A report
    that cannot be written is logged as an error and the run publishes without it."""
    # The full tables behind the report's top-N sections: an http(s) link under EUJP_PUBLIC_URL (valid from
    # latest/report.html too), else relative to runs/{run_id}/report.html
    href = object_link(settings, f"runs/{settings.run_id}/{PARQUET_HREF}") if settings.public_url else PARQUET_HREF
    try:
        return write_warehouse_report(settings.warehouse_path, settings.files_dir / "report.html",
                                      run_id=settings.run_id, parquet_href=href, reconciliation=reconciliation,
                                      partitioned=partitioned,
                                      chart_cache=settings.files_dir / CHART_CACHE_FOLDER)
    except Exception as exc:  # noqa: BLE001 - the data matter more than their report
        log.error("report not written: %s: %s", type(exc).__name__, exc)
        return None


def run_catalog(settings: Settings, manifest: dict, *, report: bool = False,
                suite_cache: dict | None = None, log: logging.Logger = default_log) -> Path | None:
    """The run's catalog (eujp.catalog: tables, columns, expectations with their results, mart SQL, lineage,
    run history), written in the warehouse's files folder from the promoted warehouse and the run's manifest; `report`:
    link the run report published beside it; `suite_cache`: the SQL evaluations of suites the previous run
    published (eujp.catalog.suite_results: reused for tables this run did not write, updated with the new
    ones). A catalog that cannot be written is logged as an error and the run publishes without it."""
    from eujp.catalog import write_catalog

    try:
        return write_catalog(settings.warehouse_path, settings.files_dir / CATALOG_FILE,
                             manifest=manifest, run_id=settings.run_id,
                             report_link="report.html" if report else None, suite_cache=suite_cache)
    except Exception as exc:  # noqa: BLE001 - the data matter more than their catalog
        log.error("catalog not written: %s: %s", type(exc).__name__, exc)
        return None


def published_latest(store, log: logging.Logger = default_log, deadline: Deadline | None = None):
    """The published `latest` run's (pointer, manifest) (eujp.publish.read_latest_manifest), read once for what
    the publish carries over from it (carried_runs, previous_suite_results), within the publish's deadline (a
    frozen endpoint must not hold it here); None when nothing was published yet or it cannot be read (a
    warning: both are savings or records the publish goes on without)."""
    try:
        return within(deadline, lambda: read_latest_manifest(store))
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("the published latest manifest was not read (%s: %s): this run's manifest lists no runs it "
                    "carries, and its catalog evaluates every suite", type(exc).__name__, exc)
        return None


def unpublished_loads(conn, published: str, this_run: str) -> list[tuple]:
    """The etl_runs rows (run_id, source, status, rows_in, rows_loaded, rows_rejected, message) of the runs
    promoted into the warehouse of `conn` after the `published` run and never published (one interrupted
    between its promotion and the end of its publish), but `this_run`: those that loaded something (a day with
    nothing new records its check, all 'unchanged', and is never published). [] when there are none, or the
    published run is not this warehouse's (nothing to tell)."""
    (since,) = conn.execute("SELECT max(started_at) FROM etl_runs WHERE run_id = ?", [published]).fetchone()
    if since is None:
        return []
    return conn.execute(
        "SELECT run_id, source, status, rows_in, rows_loaded, rows_rejected, message FROM etl_runs "
        "WHERE run_id NOT IN (?, ?) AND started_at > ? AND run_id IN (SELECT run_id FROM etl_runs "
        "WHERE status = 'success') ORDER BY started_at, source",
        [this_run, published, since]).fetchall()


def carried_runs(settings: Settings, latest: tuple[dict, dict] | None,
                 log: logging.Logger = default_log) -> dict:
    """The loads of earlier runs that this run publishes for them: runs promoted but never published (one
    interrupted between its promotion and the end of its publish: the warehouse holds its rows, `latest` does
    not), by run id, each with its sources' etl_runs rows (status, rows in / valid / rejected, message). A
    run whose sources were all unchanged would otherwise publish their rows saying nothing of where they came
    from. `latest`: the published latest (published_latest). {} when there are none, nothing was published
    yet, or they cannot be read (a warning)."""
    if latest is None:
        return {}
    try:
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            rows = unpublished_loads(conn, str(latest[0]["run_id"]), settings.run_id)
    except Exception as exc:  # noqa: BLE001 - a record of provenance: the publish goes on without it
        log.warning("runs published by this run not listed in its manifest (%s: %s)", type(exc).__name__, exc)
        return {}
    carried: dict[str, dict] = {}
    for run_id, source, run_status, rows_in, valid, rejected, message in rows:
        carried.setdefault(run_id, {})[source] = {"status": run_status, "rows_in": rows_in, "rows_loaded": valid,
                                                  "rows_rejected": rejected, "message": message}
    if carried:
        log.warning("this run also publishes the loads of run(s) %s, promoted but never published (interrupted "
                    "before its publish ended): the manifest lists them under carried_runs", ", ".join(carried))
    return carried


def previous_suite_results(latest: tuple[dict, dict] | None) -> dict:
    """The suites' SQL evaluations the published latest run (published_latest) kept in its manifest
    ("suite_results"), for the catalog to reuse on the tables this run did not write; {} when there are none."""
    cached = latest[1].get("suite_results") if latest else None
    return dict(cached) if isinstance(cached, dict) else {}


def publish(settings: Settings, batches: list[SourceBatch], counts: dict, audit: dict, status: str,
            docs: str | None = None, fingerprint: dict | None = None, log: logging.Logger = default_log,
            deadline: Deadline | None = None) -> str:
    """Publish the promoted warehouse, its tables, manifest, report, catalog and Data Docs
    (eujp.publish.publish_run: `latest` moves last); returns where the run was published.

    `deadline`: when the whole publish must be over (PublishDeadlineError past it, `latest` not moved); the flow
    makes it once per run so that the task's retries share it; None: settings.publish_timeout from now. Once
    published, the raw zone's retention (eujp.retention, settings.raw_retention_days) is applied within what is
    left of it; a retention that fails or runs out of time is a warning."""
    deadline = deadline or Deadline.after(settings.publish_timeout)
    try:
        single_file = SingleFile.from_env()  # before the lake commit: a bad setting publishes nothing
    except ValueError as exc:
        raise PublishError(f"{exc}: nothing was published, latest was not moved") from None
    store = open_store(settings.publish_uri)
    work_dir = settings.files_dir / "publish" / settings.run_id
    manifest = run_manifest(settings, batches, counts, audit, status, fingerprint)
    layout = published_layout(settings, single_file)
    # The report reads the promoted warehouse only: it is drawn (matplotlib, Python) on a thread while the lake
    # commit and the single file are written (DuckDB, which releases the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eujp-report") as drawing:
        report_drawn = drawing.submit(run_report, settings, log, reconciliation=(audit or {}).get("reconciliation"),
                                      partitioned=layout.partitioned)
        lake_catalog, commit, warehouse_file = _lake_and_single_file(
            settings, single_file, layout, manifest, work_dir, deadline, log)
        report = report_drawn.result()
    # after the lake commit, which is the publish's first store call (a frozen endpoint stops it there)
    latest = published_latest(store, log, deadline)
    carried = carried_runs(settings, latest, log)
    if carried:
        manifest["carried_runs"] = carried
    suite_cache = previous_suite_results(latest)
    catalog = run_catalog(settings, manifest, report=report is not None, suite_cache=suite_cache, log=log)
    manifest["suite_results"] = suite_cache  # for the next run's catalog
    extra = {"docs": Path(docs).parent} if docs else {}
    if report:
        extra["report.html"] = report
    if catalog:
        extra[catalog.name] = catalog
    partitioned = {name: PartitionedParquet(column, commit.digests.get(name) if commit is not None else None)
                   for name, column in layout.partitioned.items()}
    parts = sum(len(p.digests) if p.digests is not None else 1 for p in partitioned.values())
    total = (len(expand_directories(extra)) + len(layout.parquet) - len(partitioned) + parts + 2
             + (lake_catalog is not None))  # + warehouse, manifest and the lake's catalog
    try:
        with progress.step(f"publish to {store.uri}", total=total) as advance:
            result = publish_run(
                store,
                run_id=settings.run_id,
                warehouse_path=warehouse_file,
                manifest_without_checksums=manifest,
                work_dir=work_dir,
                keep_runs=settings.keep_runs,
                extra_files=extra,
                latest_files=tuple(k for k in ("report.html", catalog.name if catalog else "", "docs") if k in extra),
                clear_latest=("docs",),  # a run that validated nothing has no pages: none of an older run's stay
                on_upload=lambda key: advance(),
                deadline=deadline,
                lake_catalog=lake_catalog,
                tables=layout.parquet,
                parquet_from=settings.warehouse_path,
                partitioned=partitioned,
            )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    for warning in result.warnings:
        log.warning("publish: %s", warning)
    if settings.raw_retention_days is not None:
        _prune_raw_zone(store, settings.raw_retention_days, deadline, log)
    return result.location


@dataclass(frozen=True)
class PublishedLayout:
    """Where a run publishes each table (EUJP_SINGLE_FILE, eujp.lake.SingleFile): `single` in the single
    warehouse.duckdb, `parquet` as Parquet files, of which `partitioned` ({table: column}: the large marts rebuilt
    by partition, kept out of the single file) one file per value of the column; every table in the lake when
    the lake is on. `rows`: the sizes that decided it (None: not needed)."""

    rows: dict[str, int] | None
    single: tuple
    parquet: tuple
    partitioned: dict[str, str]


def published_layout(settings: Settings, single_file: SingleFile) -> PublishedLayout:
    """The run's PublishedLayout, from the promoted warehouse's sizes; PublishError (nothing published) for
    EUJP_SINGLE_FILE=small with the lake off."""
    from eujp.marts import MODELS

    lake = lake_config(settings.warehouse_path, settings.publish_uri) is not None
    if single_file.choice == "small" and not lake:
        raise PublishError(f"{SINGLE_FILE_ENV}=small publishes the facts in the lake only, but the lake is off "
                           "(EUJP_LAKE_CATALOG=off): nothing was published, latest was not moved")
    rows = sized_table_rows(settings.warehouse_path) if single_file.choice != "all" and lake else None
    single = single_file.tables(rows, lake=lake)
    parquet = single_file.parquet_tables(rows, lake=lake)
    partitioned = {t.name: MODELS[t.name].partition.column for t in parquet
                   if t not in single and t.name in MODELS and MODELS[t.name].partition is not None}
    return PublishedLayout(rows, single, parquet, partitioned)


def _lake_and_single_file(settings: Settings, single_file: SingleFile, layout: PublishedLayout, manifest: dict,
                          work_dir: Path, deadline: Deadline, log: logging.Logger):
    """publish's lake commit (one snapshot, after the audit passed, before latest moves) and the single warehouse
    file `layout` says; records both in `manifest`. Returns the frozen lake catalog to publish (None: the lake is
    off), the lake commit (None: off) and the warehouse file to publish."""
    lake_catalog = None
    commit = commit_lake(settings, deadline, log)
    if commit is not None:
        manifest["lake"] = commit.manifest_entry()
        lake_catalog = frozen_catalog(lake_config(settings.warehouse_path, settings.publish_uri), work_dir / "lake")
    if single_file.choice == "auto" and commit is None:
        log.info("publish: %s, but the lake is off (EUJP_LAKE_CATALOG=off): every table is published in the "
                 "single warehouse.duckdb", single_file.describe())
    rows, single, parquet = layout.rows, layout.single, layout.parquet
    warehouse_file = settings.warehouse_path
    if len(single) < len(ALL_TABLES):  # the tables not in `single` are published in the lake (and in Parquet)
        def listed(tables) -> str:
            return ", ".join(f"{t.name} ({rows[t.name]:,} rows)" if rows else t.name for t in tables)

        lake_only = [t for t in ALL_TABLES if t not in parquet]
        not_single = [t for t in parquet if t not in single]
        if lake_only:
            log.info("publish: %s: in the lake only (snapshot %s): %s", single_file.describe(), commit.snapshot_id,
                     listed(lake_only))
        if not_single:
            log.info("publish: %s: not in the single warehouse.duckdb, in the lake (snapshot %s) and in Parquet%s: %s",
                     single_file.describe(), commit.snapshot_id,
                     " (a file per partition: " + ", ".join(f"{t} by {c}" for t, c in layout.partitioned.items())
                     + ")" if layout.partitioned else "",
                     listed(not_single))
        warehouse_file = slim_warehouse(settings.warehouse_path, work_dir / "single" / "warehouse.duckdb", single)
    manifest["single_file"] = {"setting": single_file.choice, "max_rows": single_file.max_rows,
                               "tables": [t.name for t in single]}
    return lake_catalog, commit, warehouse_file


def commit_lake(settings: Settings, deadline: Deadline, log: logging.Logger = default_log) -> LakeCommit | None:
    """Commit the promoted (audited) warehouse to the DuckLake as one snapshot (eujp.lake.commit_warehouse): only
    the partitions that changed are written. None when EUJP_LAKE_CATALOG is `off`. A commit that fails raises
    LakeError (a PublishError): nothing else is published and latest.json stays where it was."""
    cfg = lake_config(settings.warehouse_path, settings.publish_uri)
    if cfg is None:
        return None
    if deadline.passed():
        raise PublishDeadlineError(f"publishing run {settings.run_id} stopped before the lake commit: "
                                   f"{deadline.describe()} passed; latest was not moved")
    with progress.step(f"commit the lake ({cfg.kind} catalog)"):
        moved = adopt_folder_catalog(cfg, settings.warehouse_path)
        if moved:
            log.warning("lake: %s", moved)
        # the look-up of the published catalog is a store call like the publish's: bounded by its deadline (a
        # frozen endpoint held it read timeout x attempts), its failure said as a lake commit's
        try:
            note = within(deadline, lambda: replace_unpublished_catalog(cfg, open_store(settings.publish_uri),
                                                                        settings.run_id))
        except PublishCutoff:
            raise PublishDeadlineError(f"publishing run {settings.run_id} to {settings.publish_uri} stopped at the "
                                       f"look-up of its {LAKE_CATALOG_FILE}: {deadline.describe()} passed; latest was "
                                       "not moved") from None
        except Exception as exc:
            raise LakeError(f"publishing run {settings.run_id}: cannot look up {LAKE_CATALOG_FILE} at "
                            f"{settings.publish_uri} ({type(exc).__name__}: {exc}); latest was not moved") from exc
        if note:
            log.warning("lake: %s", note)
        try:
            commit = commit_warehouse(cfg, settings.warehouse_path, settings.run_id, seconds=deadline.remaining(),
                                      verify=settings.force)
        except LakeError as exc:
            if deadline.passed():  # its requests timed out against the deadline: say so
                raise PublishDeadlineError(f"publishing run {settings.run_id} to {settings.publish_uri} stopped at "
                                           f"the lake commit: {deadline.describe()} passed; latest was not moved "
                                           f"({exc})") from None
            raise
    log.info("lake: snapshot %d (%s catalog) %s", commit.snapshot_id, cfg.kind,
             f"rewrote {sum(len(c['rewritten']) for c in commit.changed.values())} partition(s) of "
             f"{len(commit.changed)} table(s)" if commit.new else "already committed by this run")
    return commit


def _prune_raw_zone(store, days: int, deadline: Deadline, log: logging.Logger) -> None:
    """The raw zone's retention after a successful publish (eujp.retention), within the publish deadline;
    whatever goes wrong is a warning: the run is published, and the next one prunes again."""
    from eujp.retention import prune_raw

    try:
        plan = within(deadline, lambda: prune_raw(store, days))
    except Exception as exc:  # noqa: BLE001 - the run is published; what is left is pruned next time
        reason = f"{deadline.describe()} passed" if deadline.passed() else f"{type(exc).__name__}: {exc}"
        log.warning("raw retention (EUJP_RAW_RETENTION_DAYS=%d) not applied: %s", days, reason)
        return
    log.info("raw retention (EUJP_RAW_RETENTION_DAYS=%d): %s", days, plan.summary())


# --- the summary ----------------------------------------------------------------------------------------------

def complete_summary(settings: Settings, summary: RunSummary, docs: str | None, *, now: datetime | None = None,
                     log: logging.Logger = default_log) -> None:
    """Add where to open the run's Data Docs and report (`object_link`: http under EUJP_PUBLIC_URL, else the
    store location; Data Docs that were not published: their local index.html) and every source's freshness
    to the summary; a stale source is a warning of the run. A day with nothing new links the report of the
    published run that is still current."""
    if summary.published_to:
        if docs and not summary.current_run_id:
            summary.docs_url = object_link(settings, f"runs/{settings.run_id}/docs/index.html")
        run = summary.current_run_id or settings.run_id
        for attribute, name in (("report_url", "report.html"), ("catalog_url", CATALOG_FILE)):
            if _is_published(settings, f"runs/{run}/{name}", log):
                setattr(summary, attribute, object_link(settings, f"runs/{run}/{name}"))
    elif docs:
        summary.docs_url = str(Path(docs).resolve())
    try:
        freshness = warehouse_freshness(settings.warehouse_path, now)
    except Exception as exc:  # noqa: BLE001 - the run's outcome does not depend on its report
        freshness = []
        summary.warnings.append(f"freshness not read from {settings.warehouse_path}: {type(exc).__name__}: {exc}")
        log.error(summary.warnings[-1])
    summary.freshness = [f.to_dict() for f in freshness]
    for f in freshness:
        if f.warning:
            summary.warnings.append(f"freshness: {f.warning}")
            log.warning("freshness: %s", f.warning)


def _is_published(settings: Settings, key: str, log: logging.Logger) -> bool:
    try:
        return open_store(settings.publish_uri).exists(key)
    except Exception as exc:  # noqa: BLE001 - a link is not worth failing the run's summary
        log.warning("could not check %s in %s: %s: %s", key, settings.publish_uri, type(exc).__name__, exc)
        return False
