"""A small warehouse (only etl_runs has rows) and its publish: for the tests of publishing through faults,
stalls and deadlines, where the data do not matter but the objects and latest.json do."""

from __future__ import annotations

from pathlib import Path

from eujp.publish import publish_run
from eujp.tables import ensure_schema
from eujp.warehouse import connect


def small_warehouse(path: Path, rows: int) -> Path:
    with connect(path) as conn:
        ensure_schema(conn)
        conn.execute("INSERT INTO etl_runs (run_id, source, rows_in) SELECT 'r' || i, 's', i FROM range(?) t(i)",
                     [rows])
    return path


def publish(tmp_path: Path, store, run_id: str, rows: int, deadline=None):
    """publish_run of a small warehouse of `rows` etl_runs rows as run `run_id` (eujp.publish.Deadline or None)."""
    return publish_run(store, run_id=run_id, warehouse_path=small_warehouse(tmp_path / f"{run_id}.duckdb", rows),
                       work_dir=tmp_path / f"work-{run_id}", deadline=deadline,
                       manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                                   "sources": {}, "validation": {}, "audit": {"ok": True}})
