"""Fan-out on Dask (issue 13): 1 vs 2 local workers on generated Comext data, and the commit as partitions grow.

    .venv/bin/python -m benchmarks.dask_workers --rows 1200000 --commit-partitions 6 12 24 48 --append

Two measurements, each against a baseline measured in the same invocation:

1. **Workers.** The streamed source's month files (benchmarks/generate.py, 12 months) prepared three ways:
   in this process as the daily flow does without fan-out (land, then eujp.pipeline.prepare_source: the
   baseline), and by flows/fanout.py's flow (land, parse, transform, validate, Parquet, collect) on a local
   Dask cluster of 1 and of 2 worker processes (one thread each), with a temporary Prefect server. Each
   cluster runs the flow twice: *cold* (the workers import polars and Great Expectations on their first
   partition) and *warm*. Cluster start-up is timed apart.
2. **Commit.** What the one committer does per source: read the partitions' Parquet pieces back
   (eujp.partitions.collect_batch) and load them into a fresh warehouse in one transaction
   (eujp.pipeline.load_batches), for 1, 2, 4, ... partitions of the same size (`--rows-per-partition`); the
   partitions are prepared beforehand, untimed. Seconds per partition and per million rows.

Prints the Markdown section; `--append` appends it to benchmarks/RESULTS.md (benchmarks/run.py rewrites that
file: run this again after it). Wall times on a shared machine: compare within one invocation only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO_ROOT / "benchmarks" / "RESULTS.md"
DAY = date(2026, 11, 30)


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def month_files(rows: int, months: int, out: Path, seed: int = 7) -> list[Path]:
    """`months` generated month files of `rows` rows in all (benchmarks/generate.py), in `out`."""
    from benchmarks.generate import Plan, generate

    years = (months + 11) // 12
    plan = Plan(rows=rows * 12 * years // months, seed=seed, start_year=2002, years=years, partners=("JP",))
    generate(plan, out / "generated", log=lambda *_: None)
    snapshot = out / "snapshot"
    snapshot.mkdir(parents=True, exist_ok=True)
    files = sorted((out / "generated").glob("comext_*.csv"))[:months]
    for path in files:
        shutil.copyfile(path, snapshot / path.name)
    shutil.rmtree(out / "generated")
    return sorted(snapshot.glob("*.csv"))


def settings_for(work: Path, snapshot: Path, tag: str):
    from eujp.config import Settings

    return Settings(snapshot_dir=snapshot, warehouse_path=work / tag / "warehouse.duckdb",
                    publish_uri=str(work / tag / "store"), run_id=f"bench-{tag}", run_date=DAY)


def streamed_source():
    from eujp.sources import SOURCES

    return next(s for s in SOURCES if s.transform_key)


def single_process(work: Path, snapshot: Path, countries) -> dict:
    """The baseline: land and prepare_source in this process (the daily flow's path without fan-out)."""
    from eujp.extract import read_snapshot
    from eujp.pipeline import SourceBatch, land_payloads, prepare_source, utcnow
    from eujp.storage import open_store

    source = streamed_source()
    settings = settings_for(work, snapshot, "single")
    started = time.perf_counter()
    payloads = read_snapshot(source, snapshot)
    land_payloads(open_store(settings.publish_uri), source, payloads, DAY)
    batch = prepare_source(source, payloads, countries,
                           SourceBatch(source=source.name, table=source.table.name, started_at=utcnow()))
    seconds = time.perf_counter() - started
    assert batch.status == "prepared", batch.error
    return {"seconds": seconds, "rows_in": batch.rows_in, "rows": batch.valid_rows}


def fanned_out(work: Path, snapshot: Path, countries, workers: int) -> dict:
    """flows/fanout.py's flow on a local cluster of `workers` processes, cold then warm."""
    from distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    from eujp.pipeline import SourceBatch, release_chunks, utcnow
    from flows.fanout import fanout_flow

    source = streamed_source()
    started = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    out = {"cluster_start": time.perf_counter() - started}
    try:
        for attempt in ("cold", "warm"):
            settings = settings_for(work, snapshot, f"fanout-{workers}-{attempt}")
            batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
            flow = fanout_flow.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
            started = time.perf_counter()
            batch = flow(source.name, settings, countries, batch)
            out[attempt] = time.perf_counter() - started
            assert batch.status == "prepared", batch.error
            out["rows_in"], out["rows"] = batch.rows_in, batch.valid_rows
            release_chunks(batch)  # the collected partitions' local Parquet chunks
    finally:
        cluster.close()
    return out


def commit_times(work: Path, partition_counts: list[int], rows_per_partition: int, countries) -> list[dict]:
    """Collect + load of P prepared partitions of `rows_per_partition` wire rows each, for each P."""
    import duckdb

    from eujp import partitions
    from eujp.config import duckdb_config
    from eujp.pipeline import SourceBatch, load_batches, load_dim_country, utcnow
    from eujp.tables import ensure_schema

    source = streamed_source()
    top = max(partition_counts)
    snapshot = work / "commit"
    files = month_files(rows_per_partition * top, top, snapshot)
    settings = settings_for(work, snapshot / "snapshot", "commit")
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(source, settings)]
    results = [partitions.prepare_partition([p], settings, countries) for p in landed]
    assert not any(r.error for r in results) and len(files) == top
    from benchmarks.measure import Meter, rss_bytes

    rows = []
    for count in partition_counts:
        batch = SourceBatch(source=source.name, table=source.table.name, started_at=utcnow())
        path = work / f"commit-{count}.duckdb"
        before = rss_bytes()
        with Meter() as meter, duckdb.connect(str(path), config=duckdb_config()) as conn:
            ensure_schema(conn)
            load_dim_country(conn, countries)
            started = time.perf_counter()
            with meter.stage("commit"):
                batch = partitions.collect_batch(batch, results[:count], settings)
                collected = time.perf_counter() - started
                started = time.perf_counter()
                load_batches(conn, [batch], run_id=f"commit-{count}")
                conn.execute("CHECKPOINT")
                loaded = time.perf_counter() - started
            table_rows = conn.execute(f"SELECT count(*) FROM {source.table.name}").fetchone()[0]
        path.unlink()
        del batch
        rows.append({"partitions": count, "rows_in": sum(r.rows_in for r in results[:count]),
                     "table_rows": table_rows, "collect": collected, "load": loaded,
                     "peak_above": max(meter.stages["commit"].peak_rss - before, 0)})
    return rows


def render(args, single: dict, fan: dict[int, dict], commits: list[dict], load: tuple[float, float]) -> str:
    lines = [
        (f"## Fan-out on Dask: 1 vs 2 local workers, and the commit as partitions grow "
        f"({datetime.now(UTC):%Y-%m-%d})"), "",
        (f"`.venv/bin/python -m benchmarks.dask_workers {' '.join(sys.argv[1:])}` "
        f"([benchmarks/dask_workers.py](dask_workers.py)); load average {load[0]} before, {load[1]} after, "
        f"on this 2-core machine shared with other work (wall times: compare within this section only)."), "",
        f"### Workers: {single['rows_in']:,} Comext wire rows in 12 month files (one partition each)", "",
        "| how | seconds | vs single process |", "|---|---|---|",
        f"| single process (land + prepare_source, the default path): baseline | {single['seconds']:.1f} | 1.00 |",
    ]
    for workers, out in fan.items():
        for attempt in ("cold", "warm"):
            lines.append(f"| fan-out, {workers} worker{'s' if workers > 1 else ''}, {attempt} | {out[attempt]:.1f} | "
                         f"{out[attempt] / single['seconds']:.2f} |")
    lines += ["", "Cluster start-up (not in the figures above): " + ", ".join(
        f"{w} worker(s) {o['cluster_start']:.1f} s" for w, o in fan.items()) + ". Every run prepared the same "
        f"{single['rows']:,} table rows.", "",
        (f"### Commit: collect the Parquet pieces and load them in one transaction "
        f"({args.rows_per_partition:,} wire rows per partition)"), "",
        ("| partitions | wire rows | table rows | collect s | load s | total s | s per partition | s per 1M table rows "
        "| peak RSS above the start | per table row |"),
        "|---|---|---|---|---|---|---|---|---|---|"]
    for c in commits:
        total = c["collect"] + c["load"]
        lines.append(f"| {c['partitions']} | {c['rows_in']:,} | {c['table_rows']:,} | {c['collect']:.2f} | "
                     f"{c['load']:.2f} | {total:.2f} | {total / c['partitions']:.3f} | "
                     f"{total / c['table_rows'] * 1e6:.2f} | {c['peak_above'] / 1e6:.0f} MB | "
                     f"{c['peak_above'] / c['table_rows']:.0f} B |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_200_000, help="Comext wire rows in the 12 month files")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--commit-partitions", type=int, nargs="+", default=[6, 12, 24, 48])
    parser.add_argument("--rows-per-partition", type=int, default=50_000)
    parser.add_argument("--append", action="store_true", help="append the section to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="eujp-dask-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from eujp.prefect_server import start_if_needed

    server = start_if_needed(announce=False)
    try:
        from eujp.deferred_imports import import_great_expectations

        import_great_expectations()  # imported before any timing, as a run imports it

        from eujp.pipeline import load_countries

        if server is not None:
            server.wait_ready()
        countries = load_countries(DAY)
        before = loadavg()
        snapshot = month_files(args.rows, 12, work / "workers")[0].parent
        single = single_process(work, snapshot, countries)
        fan = {w: fanned_out(work, snapshot, countries, w) for w in args.workers}
        for out in fan.values():
            assert out["rows"] == single["rows"], (out, single)
        commits = commit_times(work, sorted(args.commit_partitions), args.rows_per_partition, countries)
        text = render(args, single, fan, commits, (before, loadavg()))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(text)
    if args.append:
        with RESULTS_MD.open("a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
