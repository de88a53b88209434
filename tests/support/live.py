"""Live extraction against the replay server: the settings of a live run, a whole run with the plain step
functions (what flows/ orchestrates, no Prefect), and queries of the warehouse it builds.

The fixtures (`loopback_only`, `server`, `live`) are in tests/conftest.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb

from eujp.audit import audit_staging
from eujp.config import Settings
from eujp.incremental import SourceState
from eujp.live import fetch_live
from eujp.pipeline import (
    SourceBatch,
    fetch_payloads,
    land_payloads,
    load_batches,
    load_countries,
    load_dim_country,
    prepare_source,
    skip_unchanged,
    utcnow,
)
from eujp.sources import SOURCES, get_source
from eujp.storage import open_store
from eujp.tables import ensure_schema, table_counts
from eujp.warehouse import connect, open_staging, promote

RUN_DATE = date(2025, 7, 15)  # Comext requests run up to 2025-07
FAST_ENV = {
    "EUJP_HTTP_CONNECT_TIMEOUT": "1",
    "EUJP_HTTP_READ_TIMEOUT": "0.3",
    "EUJP_HTTP_MAX_ATTEMPTS": "3",
    "EUJP_HTTP_BACKOFF_BASE": "0.01",
    "EUJP_HTTP_BACKOFF_MAX": "0.05",
    "EUJP_HTTP_BUDGET_SECONDS": "5",
    "EUJP_COMEXT_START": "2025-01",
    "NO_PROXY": "127.0.0.1,localhost",
}


def settings_for(tmp_path: Path, run_id: str, **changes) -> Settings:
    base = Settings(warehouse_path=tmp_path / "var" / "warehouse.duckdb", publish_uri=str(tmp_path / "store"),
                    source_mode="live", run_date=RUN_DATE, run_id=run_id)
    return replace(base, **changes)


def fetch(name: str, tmp_path: Path, state: SourceState | None = None, **changes):
    """fetch_live of the source called `name`, in a live run of RUN_DATE."""
    return fetch_live(get_source(name), settings_for(tmp_path, "fetch", **changes), state)


# --- a run with the plain step functions (what flows/ orchestrates) ---------------------------------------

def run_pipeline(settings: Settings, only: tuple[str, ...] | None = None) -> dict[str, SourceBatch]:
    """Extract, land, (skip unchanged), parse/transform/validate, load into the staging warehouse, audit, promote
    (every source, or those named in `only`). Raises AuditFailed if the audit fails (then nothing is promoted)."""
    store = open_store(settings.publish_uri)
    countries = load_countries(settings.run_date)
    batches = []
    for source in SOURCES:
        if only is not None and source.name not in only:
            continue
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        try:
            payloads = fetch_payloads(source, settings, store)
            if settings.source_mode != "raw":
                batch.raw_keys = land_payloads(store, source, payloads, settings.run_date)
        except Exception as exc:  # noqa: BLE001 - as flows/domains.py: a failing source is recorded, not raised
            batches.append(batch.fail("extract", exc))
            continue
        if skip_unchanged(batch, payloads, settings):
            batches.append(batch)
            continue
        batches.append(prepare_source(source, payloads, countries, batch))
    staging = open_staging(settings.warehouse_path, settings.staging_dir, settings.run_id)
    with connect(staging) as conn:
        ensure_schema(conn)
        previous = table_counts(conn)
        load_dim_country(conn, countries)
        load_batches(conn, batches, run_id=settings.run_id)
        audit_staging(conn, run_id=settings.run_id, previous_counts=previous,
                      max_row_drop_pct=settings.max_row_drop_pct).raise_if_failed()
        conn.execute("CHECKPOINT")
    promote(staging, settings.warehouse_path)
    return {b.source: b for b in batches}


def query(settings: Settings, sql: str, params=()):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def fact_rows(settings: Settings, table: str) -> list[tuple]:
    """A fact table's business rows, sorted (run_id/loaded_at left out)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        frame = conn.execute(f"SELECT * EXCLUDE (run_id, loaded_at) FROM {table}").pl()
    return sorted(frame.rows(), key=repr)


def runs(settings: Settings, run_id: str) -> dict[str, tuple]:
    rows = query(settings, "SELECT source, status, rows_in, rows_loaded, rows_rejected, message FROM etl_runs "
                 "WHERE run_id = ?", [run_id])
    return {r[0]: r[1:] for r in rows}
