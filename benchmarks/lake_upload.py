"""What a publish uploads: the whole-file publish (runs/{run_id}/: warehouse.duckdb and one Parquet file per table,
then latest/) against the DuckLake publish (eujp.lake: only the partitions that changed, and the catalog), on
generated Comext data (benchmarks/generate.py), for a first publish of N years of months and for the next day,
which adds one month.

    .venv/bin/python -m benchmarks.lake_upload --years 5 --rows-per-year 1000000
    .venv/bin/python -m benchmarks.lake_upload --years 5 --rows-per-year 1000000 --results benchmarks/RESULTS.md

Counts objects and bytes written to the (folder) object store: the publish's uploads through the ObjectStore
(each counted as it is put) and the lake's data files (new files under lake/; DuckLake never rewrites a file). Both
publishes run in the same process on the same warehouse, so the ratio is measured within one run. With
--results, the figures are appended to that file as a new section.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.generate import Plan, comext_month, products
from benchmarks.measure import positive_int
from eujp.lake import CATALOG_FILE, commit_warehouse, lake_config
from eujp.pipeline import load_countries
from eujp.publish import publish_run
from eujp.sources import SOURCES
from eujp.storage import LocalObjectStore
from eujp.tables import ensure_schema
from eujp.warehouse import connect, upsert_fact

MONTHLY = next(s for s in SOURCES if s.period_column == "period_code")  # the Comext source, by its period


class CountingStore(LocalObjectStore):
    """A folder store that counts what is put into it."""

    def __init__(self, root):
        super().__init__(root)
        self.objects, self.bytes = 0, 0

    def reset(self) -> None:
        self.objects, self.bytes = 0, 0

    def put_file(self, key, path, content_type=None):
        stored = super().put_file(key, path, content_type)
        self.objects, self.bytes = self.objects + 1, self.bytes + stored.size
        return stored

    def put_bytes(self, key, data, content_type=None):
        stored = super().put_bytes(key, data, content_type)
        self.objects, self.bytes = self.objects + 1, self.bytes + stored.size
        return stored


def lake_files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in (root / "lake").rglob("*.parquet")}


def load_month(conn, plan: Plan, index: int, codes, countries, run_id: str) -> int:
    """One generated month through the Comext parser and transform into the fact table (as a run loads it)."""
    wire = comext_month(plan, index, codes).write_csv(line_terminator="\r\n").encode()
    parsed = MONTHLY.parse(wire)
    result = MONTHLY.transform(parsed.frame, MONTHLY.name, parsed.source_version, countries)
    return upsert_fact(conn, MONTHLY.table, result.valid, run_id=run_id, loaded_at=datetime.now(UTC),
                       source=MONTHLY.name)


def day(work: Path, store: CountingStore, warehouse: Path, run_id: str) -> dict:
    """Publish `warehouse` both ways as run `run_id`: the whole-file publish, then the lake commit + catalog."""
    store.reset()
    started = time.perf_counter()
    publish_run(store, run_id=run_id, warehouse_path=warehouse, work_dir=work / f"work-{run_id}",
                manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {}})
    whole = {"objects": store.objects, "bytes": store.bytes, "seconds": time.perf_counter() - started}
    shutil.rmtree(work / f"work-{run_id}", ignore_errors=True)

    cfg = lake_config(warehouse, str(store.root), env={})
    before = lake_files(store.root)
    started = time.perf_counter()
    commit = commit_warehouse(cfg, warehouse, run_id)
    seconds = time.perf_counter() - started
    store.reset()
    store.put_file(CATALOG_FILE, cfg.catalog_file)  # the catalog a run publishes (eujp.publish.publish_run)
    new = {k: v for k, v in lake_files(store.root).items() if k not in before}
    lake = {"objects": len(new) + store.objects, "bytes": sum(new.values()) + store.bytes, "seconds": seconds,
            "data_files": len(new), "catalog_bytes": store.bytes, "snapshot": commit.snapshot_id,
            "partitions_rewritten": sum(len(c["rewritten"]) for c in commit.changed.values())}
    return {"whole": whole, "lake": lake}


def run(years: int, rows_per_year: int, seed: int, work: Path) -> dict:
    plan = Plan(rows=(years + 1) * rows_per_year, seed=seed, start_year=2021, years=years + 1, partners=("JP",))
    history = years * 12
    codes, countries = products(seed), load_countries(date(2026, 11, 24))
    warehouse, store = work / "var" / "warehouse.duckdb", CountingStore(work / "objectstore")
    rows = 0
    with connect(warehouse) as conn:
        ensure_schema(conn)
        for i in range(history):
            rows += load_month(conn, plan, i, codes, countries, "day0")
        conn.execute("CHECKPOINT")
    first = day(work, store, warehouse, "20261124T060000Z-bench0")
    with connect(warehouse) as conn:
        added = load_month(conn, plan, history, codes, countries, "day1")
        conn.execute("CHECKPOINT")
    second = day(work, store, warehouse, "20261125T060000Z-bench1")
    return {"years": years, "rows_per_year": rows_per_year, "months": history, "rows": rows, "month_rows": added,
            "warehouse_bytes": warehouse.stat().st_size, "first": first, "next_day": second}


def table(result: dict) -> str:
    mb = 1024 * 1024
    lines = [
        f"### Lake upload: full publish vs a day with one new month ({datetime.now(UTC):%Y-%m-%d})",
        "",
        (f"`python -m benchmarks.lake_upload --years {result['years']} --rows-per-year "
        f"{result['rows_per_year']}`: {result['rows']:,} generated Comext fact rows over "
        f"{result['months']} months (warehouse {result['warehouse_bytes'] / mb:.1f} MiB), then a day that adds one "
        f"month ({result['month_rows']:,} rows). Objects and bytes written to the (folder) object store, measured in "
        "the same run; the lake's bytes are its new data files plus the catalog file it publishes."),
        "",
        "| publish | objects | MiB | seconds |",
        "|---|---:|---:|---:|",
    ]
    for label, key in (("first publish", "first"), ("next day, one new month", "next_day")):
        whole, lake = result[key]["whole"], result[key]["lake"]
        lines.append(f"| {label}: whole files (runs/, latest/) | {whole['objects']} | {whole['bytes'] / mb:.2f} | "
                     f"{whole['seconds']:.1f} |")
        lines.append(f"| {label}: lake (data files + catalog) | {lake['objects']} ({lake['data_files']} data "
                     f"files) | {lake['bytes'] / mb:.2f} | {lake['seconds']:.1f} |")
    whole, lake = result["next_day"]["whole"], result["next_day"]["lake"]
    lines += ["", (f"On the day with one new month the lake uploads {lake['bytes'] / whole['bytes']:.1%} of the bytes "
              f"and {lake['objects']} of the {whole['objects']} objects of the whole-file publish "
              f"({lake['partitions_rewritten']} partition(s) rewritten; catalog "
              f"{lake['catalog_bytes'] / 1024:.0f} KiB). The whole-file publish grows with the history, the lake's "
              "day with the month."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=positive_int, default=5, help="months of history published first (years x 12)")
    parser.add_argument("--rows-per-year", type=positive_int, default=1_000_000, help="generated Comext rows a year")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results", type=Path, help="append the figures to this Markdown file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eujp-lake-bench-") as tmp:
        os.environ.pop("EUJP_LAKE_CATALOG", None)
        result = run(args.years, args.rows_per_year, args.seed, Path(tmp))
    text = table(result)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
