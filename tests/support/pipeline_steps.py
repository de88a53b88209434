"""Bad input run through the pipeline steps (tests/sources/<source>/test_bad_input.py): prepare_source (parse,
transform, validate) and the run's load-audit-promote (eujp.run) on a copy of a good warehouse; and what the
run recorded about a source (etl_runs, etl_rejected_rows).

The fixtures (`good_warehouse`, `warehouse`) are in tests/sources/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from eujp.config import Settings
from eujp.landing import RawPayload
from eujp.pipeline import SourceBatch, load_countries, prepare_source, utcnow
from eujp.run import load_audit_promote
from eujp.sources import get_source

SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "snapshot"
RUN = "20261125T060000Z-bad001"


def snapshot_payloads(source: str) -> list[RawPayload]:
    glob = get_source(source).snapshot_glob
    return [payload(source, p.name, p.read_bytes()) for p in sorted(SNAPSHOT.glob(glob))]


def payload(source: str, name: str, data: bytes) -> RawPayload:
    return RawPayload(source=source, name=name, data=data, url=f"file:///snapshot/{name}")


def run_steps(warehouse: Path, payloads: dict[str, list[RawPayload]], run_id: str = RUN):
    """What the daily flow does with these payloads: prepare each source, then load-audit-promote."""
    settings = Settings(warehouse_path=warehouse, publish_uri=str(warehouse.parent / "objectstore"), run_id=run_id)
    countries = load_countries(settings.run_date)
    batches = {}
    for name, source_payloads in payloads.items():
        source = get_source(name)
        batch = SourceBatch(source=name, table=source.table.name, started_at=utcnow())
        batches[name] = prepare_source(source, source_payloads, countries, batch)
    load_audit_promote(settings, list(batches.values()), countries)
    return batches


def query(wh: Path, sql: str, params=()):
    with duckdb.connect(str(wh), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def rows_of(wh: Path, table: str):
    return query(wh, f'SELECT * EXCLUDE (run_id, loaded_at) FROM "{table}" ORDER BY ALL')


def etl_run(wh: Path, source: str) -> dict:
    cols = ["status", "rows_in", "rows_loaded", "rows_rejected", "message"]
    (row,) = query(wh, f"SELECT {', '.join(cols)} FROM etl_runs WHERE run_id = ? AND source = ?", [RUN, source])
    return dict(zip(cols, row, strict=True))


def quarantined(wh: Path, source: str) -> list[tuple[str, dict]]:
    return [(reason, json.loads(raw)) for reason, raw in query(
        wh, "SELECT reason, raw_record FROM etl_rejected_rows WHERE run_id = ? AND source = ? ORDER BY ALL",
        [RUN, source])]


def assert_accounted(wh: Path, source: str) -> dict:
    """rows in = loaded + rejected, and every rejected row is in the quarantine."""
    run = etl_run(wh, source)
    assert run["rows_in"] == run["rows_loaded"] + run["rows_rejected"], run
    if run["status"] == "success":
        assert len(quarantined(wh, source)) == run["rows_rejected"], run
    return run


def edit_lines(file: str, edit) -> bytes:
    """A snapshot file's lines after `edit(lines)`."""
    lines = (SNAPSHOT / file).read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(edit(lines)).encode("utf-8")
