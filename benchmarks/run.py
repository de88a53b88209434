"""Benchmark the pipeline at Comext scale against its baselines, in one command.

    .venv/bin/python -m benchmarks.run --years 1 5

For each size it generates (once; reused while benchmarks/data/y{N}/ matches) a synthetic snapshot folder
(benchmarks/generate.py), then runs, each in a FRESH interpreter (peak RSS is per process):

1. `pipeline`: the eujp steps on the Comext source, as the daily flow calls them, without Prefect:
   extract (read the snapshot files, land them in a raw zone, checksum), parse, transform, validate
   (eujp.pipeline.prepare_source, streamed per payload), load (staging copy, dim_country, upsert,
   run records, promote), audit (natural keys, row counts, the table's suite evaluated on the staged rows in SQL,
   as flows/daily.py does), publish (Parquet export + publish to a local folder). Then, outside the
   end-to-end sum, `reload`: the same batch upserted again over the loaded table (the path of a day
   that re-fetches revised months).
2. `pandas`: the same parse and transform written with pandas (benchmarks/baselines.py), per file.
3. `duckdb`: DuckDB `read_csv` of the same files + `INSERT` into a fresh database file (the floor).
4. `eujp run` twice, as a user runs it (temporary Prefect server, all six sources, marts, report,
   Data Docs, publish): the first run, then an unchanged day (same snapshot: every source is skipped by
   its content checksum). Wall time of the whole command, peak RSS of the process tree's largest process.

Per stage it prints wall time, CPU time, rows/s and peak RSS (sampled, see benchmarks/measure.py), the
baselines' figures and the ratios, the 5y/1y ratio per stage, and the targets of issue 7; and writes
benchmarks/RESULTS.md (machine, command, tables). The machine is shared: the load average before and
after each measurement is recorded next to it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.measure import FLOOR_STAGE, peak_rss_bytes, positive_int

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "benchmarks" / "data"
RESULTS_MD = REPO_ROOT / "benchmarks" / "RESULTS.md"
RUN_DATE = date(2026, 11, 24)  # fixed: dim_country (EU membership) does not depend on the day of the benchmark
STAGES = ("extract", "parse", "transform", "validate", "load", "revalidate", "audit", "publish")
AGAIN = ("again: load", "again: revalidate", "again: audit")  # the second upsert of the same batch: not in the end-to-end sum
# Issue 12's targets: the stepwise pipeline within 2x the floor at 10M and 50M rows, the whole `eujp run` within
# 3x at 10M, its peak RSS at most 2.5 GB at every size, a day with nothing new under 10 s, time growing at most
# 1.1x the rows' growth.
TARGET_RATIO, TARGET_RUN_RATIO, TARGET_PEAK_GB, TARGET_UNCHANGED_S, TARGET_GROWTH = 2.0, 3.0, 2.5, 10.0, 1.1
SECTION_START, SECTION_END = "<!-- benchmarks.run -->", "<!-- /benchmarks.run -->"


# ------------------------------------------------------------------------------------------ children


def _stage_dict(meter) -> dict:
    return {name: {"seconds": s.seconds, "cpu_seconds": s.cpu_seconds, "peak_rss": s.peak_rss, "calls": s.calls,
                   "rows": s.rows} for name, s in meter.stages.items()}


def child_pipeline(snapshot: Path, work: Path) -> dict:
    """The eujp steps on the Comext source (see the module docstring)."""
    import polars as pl

    from benchmarks.measure import Meter, max_rss_bytes
    from eujp.audit import audit_staging, suite_check
    from eujp.config import Settings
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
        valid_frames,
    )
    from eujp.publish import publish_run
    from eujp.sources import comext_goods
    from eujp.storage import open_store
    from eujp.tables import ensure_schema, table_counts
    from eujp.warehouse import connect, open_staging, promote

    fixed = time.perf_counter()
    from eujp import validate  # Great Expectations: a fixed import cost, reported apart

    validate._runtime()
    fixed = time.perf_counter() - fixed
    source = comext_goods.SOURCE
    table = source.table
    settings = Settings(snapshot_dir=snapshot, warehouse_path=work / "var" / "warehouse.duckdb",
                        publish_uri=str(work / "var" / "objectstore"), run_date=RUN_DATE,
                        run_id="20261124T060000Z-bench1")
    store = open_store(settings.publish_uri)
    countries = load_countries(RUN_DATE)

    def load_and_audit(batch: SourceBatch, run_id: str, meter: Meter) -> dict:
        again = "" if run_id == settings.run_id else "again: "
        rows = batch.valid_rows  # load_batches releases batch.valid (and its spilled chunks) once loaded
        with meter.stage(f"{again}load", rows=rows):
            staging = open_staging(settings.warehouse_path, settings.staging_dir, run_id)
            conn = connect(staging)
            ensure_schema(conn)
            previous = table_counts(conn)
            load_dim_country(conn, countries)
            load_batches(conn, [batch], run_id=run_id)
            if batch.status != "loaded":  # load_batches records a failed load on the batch: not a measurement
                raise RuntimeError(f"{again}load: {batch.error}")
        # What audit_staging(revalidate=[table]) runs, timed apart: the suite again, on the staged table (SQL).
        with meter.stage(f"{again}revalidate", rows=rows):
            check = suite_check(conn, table.name, run_id=run_id)
            if not check.ok:
                raise RuntimeError(check.detail)
        with meter.stage(f"{again}audit", rows=rows):
            report = audit_staging(conn, run_id=run_id, previous_counts=previous, max_row_drop_pct=50.0)
            report.raise_if_failed()
            counts = table_counts(conn)
            conn.execute("CHECKPOINT")
            conn.close()
            promote(staging, settings.warehouse_path)
        return counts

    with Meter() as meter:
        with meter.stage("extract") as extract:
            payloads = fetch_payloads(source, settings, store)
            batch = SourceBatch(source=source.name, table=table.name, started_at=utcnow())
            batch.raw_keys = land_payloads(store, source, payloads, RUN_DATE)
            if skip_unchanged(batch, payloads, settings):
                raise RuntimeError("a fresh warehouse found the source unchanged")
        batch = prepare_source(source, payloads, countries, batch, step=meter.stage, spill_dir=settings.spill_dir)
        if batch.error:
            raise RuntimeError(batch.error)
        wire_rows, fact_rows = batch.rows_in, batch.valid_rows
        extract.rows = wire_rows
        meter.stages["parse"].rows = meter.stages["transform"].rows = wire_rows
        meter.stages["validate"].rows = fact_rows
        payload_bytes = sum(p.size for p in payloads)
        del payloads  # the flow drops them after preparing the source as well
        sums = [f.select(pl.col("value_eur").sum(), pl.col("quantity_kg").sum()).row(0) for f in valid_frames(batch)]
        checks = (sum(v for v, _ in sums), sum(q for _, q in sums))
        # For the second upsert below (load_batches releases batch.valid and its spilled chunks): a copy.
        spare = work / "spare"
        spare.mkdir()
        if batch.valid is not None:
            batch.valid.write_parquet(spare / "000000.parquet")
        for chunk in batch.chunks:
            shutil.copyfile(chunk, spare / chunk.name)
        spare_rejected = spare / "rejected"  # the rejected rows spilled beside them, recorded by the load
        spare_rejected.mkdir()
        for chunk in batch.rejected_chunks:
            shutil.copyfile(chunk, spare_rejected / chunk.name)
        chunks = {"count": len(batch.chunk_wire_rows), "max_wire_rows": max(batch.chunk_wire_rows, default=0),
                  "spilled": len(batch.chunks)}
        counts = load_and_audit(batch, settings.run_id, meter)
        with meter.stage("publish", rows=fact_rows):
            published = publish_run(
                store, run_id=settings.run_id, warehouse_path=settings.warehouse_path,
                manifest_without_checksums={"run_id": settings.run_id, "status": "success", "table_rows": counts,
                                            "sources": {}, "validation": {}, "audit": {}},
                work_dir=work / "publish", keep_runs=7,
            )
        # Outside the end-to-end sum: the same batch again over the loaded rows (DELETE USING + INSERT and
        # the revision join over 5M existing keys per 10M wire rows).
        again = replace(batch, valid=None, chunks=sorted(spare.glob("*.parquet")), spill_dir=spare,
                        rejected_chunks=sorted(spare_rejected.glob("*.parquet")), status="prepared", rows_loaded=0,
                        rows_written=0)
        load_and_audit(again, "20261124T060000Z-bench2", meter)
    parquet = work / "publish" / "parquet" / f"{table.name}.parquet"
    return {
        "stages": _stage_dict(meter),
        "max_rss": max_rss_bytes(),
        "fixed_import_seconds": fixed,
        "wire_rows": wire_rows,
        "fact_rows": fact_rows,
        "rejected_rows": batch.rows_rejected,
        "payload_bytes": payload_bytes,
        "payloads": len(batch.raw_keys),
        "value_eur_sum": checks[0],
        "quantity_kg_sum": checks[1],
        "warehouse_bytes": settings.warehouse_path.stat().st_size,
        "parquet_bytes": parquet.stat().st_size if parquet.exists() else None,
        "published_to": published.location,
        "validation_success": batch.validation.success,
        "chunks": chunks,
    }


def child_pandas(snapshot: Path, work: Path) -> dict:
    """The pandas parse + transform of every Comext file (outputs kept, as the pipeline keeps them)."""
    import pandas as pd

    from benchmarks.baselines import pandas_parse, pandas_transform
    from benchmarks.measure import Meter, max_rss_bytes
    from eujp.pipeline import load_countries
    from eujp.sources import comext_goods

    iso2 = load_countries(RUN_DATE).get_column("iso2").drop_nulls().to_list()
    files = sorted(snapshot.glob("comext_ds045409*.csv"))
    valid, rejected, wire_rows, valid_wire = [], [], 0, 0
    with Meter() as meter:
        for path in files:
            data = path.read_bytes()
            with meter.stage("parse") as parse:
                wire, version = pandas_parse(data)
                parse.rows += len(wire)
            del data
            with meter.stage("transform", rows=len(wire)):
                v, r, n = pandas_transform(wire, comext_goods.SOURCE.name, version, iso2)
            wire_rows += len(wire)
            valid_wire += n
            valid.append(v)
            rejected.append(r)
            del wire
        with meter.stage("transform"):
            frame = pd.concat(valid, ignore_index=True)
            rejects = pd.concat(rejected, ignore_index=True)
        meter.stages["transform"].calls -= 1
    return {
        "stages": _stage_dict(meter),
        "max_rss": max_rss_bytes(),
        "wire_rows": wire_rows,
        "fact_rows": len(frame),
        "rejected_rows": len(rejects),
        "value_eur_sum": float(frame["value_eur"].sum()),
        "quantity_kg_sum": float(frame["quantity_kg"].sum()),
        "accounted": valid_wire + len(rejects) == wire_rows,
    }


def child_duckdb(snapshot: Path, work: Path) -> dict:
    from benchmarks.baselines import duckdb_floor
    from benchmarks.measure import Meter, max_rss_bytes

    files = sorted(snapshot.glob("comext_ds045409*.csv"))
    work.mkdir(parents=True, exist_ok=True)
    database = work / "floor.duckdb"
    with Meter() as meter, meter.stage(FLOOR_STAGE) as stage:
        stage.rows = duckdb_floor(files, database)
    return {"stages": _stage_dict(meter), "max_rss": max_rss_bytes(), "wire_rows": stage.rows,
            "database_bytes": database.stat().st_size}


CHILDREN = {"pipeline": child_pipeline, "pandas": child_pandas, "duckdb": child_duckdb}


# ------------------------------------------------------------------------------------------ parent


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_child(kind: str, snapshot: Path, work_root: Path, *, keep: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work_root))
    out = work / "result.json"
    before = loadavg()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--child", kind, "--snapshot", str(snapshot),
                           "--work", str(work), "--json", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {kind} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                           f"\n{proc.stderr[-6000:]}")
    result = json.loads(out.read_text())
    result.update(process_seconds=wall, loadavg_before=before, loadavg_after=loadavg())
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def eujp_runs(snapshot: Path, work_root: Path, *, keep: bool) -> dict:
    """`eujp run` on the snapshot (first run), then again on the same snapshot (unchanged day), both with the
    temporary Prefect server `eujp run` starts by itself; then the unchanged day once more against a Prefect
    server that is already running (a deployment's worker talks to a long-lived server). The parent samples
    the process' RSS every 0.1 s to say which step of the run (last log line) holds the peak."""
    work = Path(tempfile.mkdtemp(prefix="eujp-run-", dir=work_root))
    # the user's own settings (warehouse, publish target, Prefect API) are not the measured run's; the tuning
    # settings are passed on, so that the whole run is measured with those the stepwise child used
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "EUJP_")) or k in TUNING_SETTINGS}
    env.update(PREFECT_HOME=str(work / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", GX_ANALYTICS_ENABLED="false", COLUMNS="200")
    cmd = [sys.executable, "-m", "flows.cli", "run", "--snapshot-dir", str(snapshot),
           "--warehouse", str(work / "var" / "warehouse.duckdb"), "--publish", str(work / "var" / "objectstore")]
    runs: dict = {}
    try:
        for name in ("first", "unchanged"):
            runs[name] = _timed_run(cmd, env, work, name)
            if runs[name]["exit_code"]:
                return runs
        with prefect_server(work, env) as api_url:
            runs["unchanged, server already up"] = _timed_run(cmd, env | {"PREFECT_API_URL": api_url}, work,
                                                              "unchanged-server-up")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return runs


def _timed_run(cmd: list[str], env: dict, work: Path, name: str) -> dict:
    log = work / f"{name}.log"
    before = loadavg()
    started, clock = time.perf_counter(), _clock()
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT)
        peak = _sample_peak(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    ended = _clock()
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    # the run's process' own peak (its VmHWM, last read before it ended); wait4's ru_maxrss also holds this
    # process' peak from before the run began (benchmarks/measure.py), kept beside it for reference
    return {"seconds": wall, "exit_code": code, "max_rss": peak.get("hwm") or usage.ru_maxrss * 1024,
            "ru_maxrss": usage.ru_maxrss * 1024,
            "peak_at": _step_at(text, peak.get("at")), "peak_sampled": peak.get("rss"),
            "steps": _step_times(text, clock, ended), "loadavg_before": before, "loadavg_after": loadavg(),
            "statuses": _statuses(work), "log_tail": text[-2500:] if code else None}


@contextmanager
def prefect_server(work: Path, env: dict):
    """`prefect server start` on a free port of 127.0.0.1 (its own PREFECT_HOME); yields the API URL."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = work / "prefect-server-home"
    log = open(work / "prefect-server.log", "wb")  # noqa: SIM115 - closed below, after the server stops
    proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env | {"PREFECT_HOME": str(home)}, stdout=log,
                            stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start; see {work / 'prefect-server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _sample_peak(pid: int) -> dict:
    """Poll the process' RSS until it exits (it stays a zombie until wait4): the peak sampled ("rss") and its
    wall clock ("at"), and the process' own high-water mark as last read ("hwm": the kernel's, between samples
    too; only what it gains in its last 0.1 s is missed)."""
    peak: dict = {}
    page = os.sysconf("SC_PAGE_SIZE")
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return peak
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            return peak
        if rss > peak.get("rss", 0):
            peak.update(rss=rss, at=_clock())
        hwm = peak_rss_bytes(pid)
        if hwm is not None:
            peak["hwm"] = max(hwm, peak.get("hwm", 0))
        time.sleep(0.1)


_LOG_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| \w+ +\| (.*)$")


def _step_at(log: str, at: str | None) -> str | None:
    """The last log line written before `at` (HH:MM:SS.mmm, local time as Prefect logs it)."""
    if at is None:
        return None
    last = None
    for line in log.splitlines():
        m = _LOG_LINE.match(line)
        if m and m.group(1) <= at:
            last = m.group(2)[:140]
    return last


def _clock() -> str:
    """Local wall clock as Prefect's log lines show it (HH:MM:SS.mmm)."""
    return datetime.now().strftime("%H:%M:%S.%f")[:12]


def _step_times(log: str, started: str, ended: str) -> dict[str, float]:
    """Seconds between milestones of the run: process start, Prefect's temporary server starting, the flow
    starting, the domain flows done, the load task done, publish done, server stopping, process end. (The
    temporary server's "Starting" line is logged once the run's checks passed: its process was launched
    before them, at the run's first step, and starts beside them.)"""
    marks: dict[str, str] = {"start": started, "exit": ended}
    for line in log.splitlines():
        m = _LOG_LINE.match(line)
        if not m:
            continue
        t, text = m.groups()
        for key, needle in (("server_starting", "Starting temporary server"),
                            ("flow_started", "Beginning flow run"),
                            ("domains_done", "minerals-"),
                            ("nothing_new_checked", "Task run 'confirm-nothing-new"),
                            ("load_audit_promote_done", "Task run 'load-audit-promote"),
                            ("publish_done", "Task run 'publish"),
                            ("server_stopping", "Stopping temporary server")):
            # a task's end is its "Finished in state" line, not the first line it logs
            done = not needle.startswith("Task run") or "Finished in state" in text
            if needle in text and done and (key not in marks or key == "domains_done"):
                marks[key] = t
    def secs(t: str) -> float:
        h, m, s = t.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    order = [k for k in ("start", "server_starting", "flow_started", "domains_done", "nothing_new_checked",
                         "load_audit_promote_done",
                         "publish_done", "server_stopping", "exit") if k in marks]
    return {f"{a} -> {b}": round(secs(marks[b]) - secs(marks[a]), 1) for a, b in itertools.pairwise(order)}


def _statuses(work: Path) -> dict[str, str]:
    """Per source status of the newest run in the warehouse's etl_runs."""
    import duckdb

    path = work / "var" / "warehouse.duckdb"
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as conn:
        return dict(conn.execute("SELECT source, status FROM etl_runs WHERE run_id = "
                                 "(SELECT max(run_id) FROM etl_runs) ORDER BY source").fetchall())


def ensure_data(size: tuple[str, int], seed: int, data_dir: Path) -> tuple[Path, dict]:
    """The synthetic snapshot for `size` (("years", n) or ("rows", n)), generated unless already there."""
    from benchmarks.generate import generate, make_plan

    kind, n = size
    out = data_dir / f"{kind[0]}{n}"
    plan = make_plan(rows=n if kind == "rows" else None, years=n if kind == "years" else None, seed=seed,
                     start_year=2020, partners=("JP",))
    manifest_path = out / "synthetic_manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("plan", {}).get("rows") == plan.rows and manifest["plan"].get("seed") == seed:
            print(f"  reusing {out} ({manifest['comext_rows']:,} rows)", flush=True)
            return out, manifest | {"generate_seconds": None}
    print(f"  generating {plan.rows:,} rows into {out} ...", flush=True)
    started = time.perf_counter()
    manifest = generate(plan, out, log=lambda m: print(m, flush=True))
    return out, manifest | {"generate_seconds": time.perf_counter() - started}


# EUJP_* settings that change how a run performs, not what it reads or writes: both paths run with them, and
# the report lists those set
TUNING_SETTINGS = ("EUJP_BATCH_ROWS", "EUJP_DUCKDB_MEMORY_LIMIT", "EUJP_SINGLE_FILE", "EUJP_SINGLE_FILE_MAX_ROWS",
                   "EUJP_LAKE_CATALOG", "EUJP_MAX_PAYLOAD_MB")


def tuning_settings() -> dict[str, str]:
    return {k: os.environ[k] for k in TUNING_SETTINGS if os.environ.get(k)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    import duckdb
    import pandas
    import polars
    import prefect

    from eujp.deferred_imports import import_great_expectations

    import_great_expectations()  # as a run imports it
    import great_expectations

    return {"nproc": os.cpu_count(), "memory_bytes": mem, "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "polars": polars.__version__, "duckdb": duckdb.__version__,
            "pandas": pandas.__version__, "great_expectations": great_expectations.__version__,
            "prefect": prefect.__version__, "settings": tuning_settings()}


# ------------------------------------------------------------------------------------------ report

FINDINGS = re.compile(r"<!-- findings -->.*?<!-- /findings -->", re.DOTALL)


def _gb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} GB"


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds / 1e6:.2f} M/s" if seconds > 0 and rows else "-"


def summarise(size: dict) -> dict:
    """Derived figures of one size: end to end, ratios, shares."""
    p, pd_, db = size.get("pipeline"), size.get("pandas"), size.get("duckdb")
    out: dict = {}
    if p:
        st = p["stages"]
        out["e2e"] = sum(st[s]["seconds"] for s in STAGES if s in st)
        out["e2e_cpu"] = sum(st[s]["cpu_seconds"] for s in STAGES if s in st)
        # Issue 12's "end to end (parse → publish)": the stages after extraction (landing in the raw zone).
        out["p2p"] = out["e2e"] - st.get("extract", {}).get("seconds", 0.0)
        out["p2p_cpu"] = out["e2e_cpu"] - st.get("extract", {}).get("cpu_seconds", 0.0)
        out["e2e_peak"] = max(st[s]["peak_rss"] for s in STAGES if s in st)
        out["validate_share"] = st["validate"]["seconds"] / out["e2e"]
        out["validate_audit_share"] = (st["validate"]["seconds"] + st["revalidate"]["seconds"]) / out["e2e"]
        out["peak"] = p["max_rss"]
    if p and db:
        out["floor"] = db["stages"][FLOOR_STAGE]["seconds"]
        out["ratio_floor"] = out["e2e"] / out["floor"]
        out["ratio_p2p"] = out["p2p"] / out["floor"]
    if p and pd_:
        out["ratio_transform"] = p["stages"]["transform"]["seconds"] / pd_["stages"]["transform"]["seconds"]
        out["ratio_parse"] = p["stages"]["parse"]["seconds"] / pd_["stages"]["parse"]["seconds"]

        def close(key: str) -> bool:
            return abs(p[key] - pd_[key]) <= 1e-9 * abs(p[key])

        out["outputs_match"] = (p["fact_rows"] == pd_["fact_rows"] and p["rejected_rows"] == pd_["rejected_rows"]
                                and close("value_eur_sum") and close("quantity_kg_sum") and pd_["accounted"])
    return out


def stage_table(size: dict) -> list[str]:
    p, pd_, db = size.get("pipeline"), size.get("pandas"), size.get("duckdb")
    if not p:
        return []
    s = summarise(size)
    lines = [("| stage | rows | wall s | CPU s | rows/s | peak RSS in stage | baseline | baseline wall s | "
             "baseline CPU s | baseline peak RSS | eujp / baseline (wall) |"),
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for name in (*STAGES, *AGAIN):
        if name not in p["stages"]:
            continue
        st = p["stages"][name]
        base = "| | | | |"
        if pd_ and name in ("parse", "transform"):
            b = pd_["stages"][name]
            base = (f"pandas {name} | {b['seconds']:.1f} | {b['cpu_seconds']:.1f} | {_gb(b['peak_rss'])} | "
                    f"{st['seconds'] / b['seconds']:.2f}x")
        label = f"{name} (not in e2e)" if name in AGAIN else name
        lines.append(f"| {label} | {st['rows']:,} | {st['seconds']:.1f} | {st['cpu_seconds']:.1f} | "
                     f"{_rate(st['rows'], st['seconds'])} | {_gb(st['peak_rss'])} | {base} |")
    floor = "| | | | |"
    if db:
        b = db["stages"][FLOOR_STAGE]
        floor = (f"DuckDB read_csv + pivot + INSERT (floor) | {b['seconds']:.1f} | {b['cpu_seconds']:.1f} | "
                 f"{_gb(db['max_rss'])} | **{s['ratio_floor']:.2f}x**")
    lines.append(f"| **end to end** | {p['wire_rows']:,} | **{s['e2e']:.1f}** | {s['e2e_cpu']:.1f} | "
                 f"{_rate(p['wire_rows'], s['e2e'])} | {_gb(s['e2e_peak'])} | {floor} |")
    if db:
        b = db["stages"][FLOOR_STAGE]
        lines.append(f"| **parse → publish** (issue 12's end to end: without extract) | {p['wire_rows']:,} | "
                     f"**{s['p2p']:.1f}** | {s['p2p_cpu']:.1f} | {_rate(p['wire_rows'], s['p2p'])} | | "
                     f"DuckDB read_csv + pivot + INSERT (floor) | {b['seconds']:.1f} | {b['cpu_seconds']:.1f} | "
                     f"{_gb(db['max_rss'])} | **{s['ratio_p2p']:.2f}x** |")
    return lines


def eujp_run_table(runs: dict) -> list[str]:
    lines = [("| run | wall s | peak RSS | peak during (last log line before it) | time by phase (s) | exit | "
             "sources | load avg |"), "|---|---:|---:|---|---|---:|---|---|"]
    for name, r in runs.items():
        statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        phases = "; ".join(f"{k} {v}" for k, v in r.get("steps", {}).items())
        lines.append(f"| {name} | **{r['seconds']:.1f}** | {_gb(r['max_rss'])} | {r.get('peak_at') or '-'} | {phases} | "
                     f"{r['exit_code']} | {statuses} | {r['loadavg_before']:.1f} -> {r['loadavg_after']:.1f} |")
    return lines


def render(results: dict, command: str, findings: str | None) -> str:
    m = results["machine"]
    out = ["# Benchmark results", "",
           (f"Written by `benchmarks/run.py` (see [README.md](README.md)), {results['started_at']} to "
           f"{results['finished_at']}. Command:"), "", "```sh", command, "```", ""]
    if findings:
        out += [findings, ""]
    out += ["## Machine", "",
            f"- {m['nproc']} cores ({m['cpu']}), {m['memory_bytes'] / 1e9:.1f} GB RAM, no swap; Linux {m['kernel']}",
            (f"- Python {m['python']}, polars {m['polars']}, DuckDB {m['duckdb']}, pandas {m['pandas']}, "
             f"Great Expectations {m['great_expectations']}, Prefect {m['prefect']}"),
            ("- Shared with other work: the 1-minute load average before and after each measurement is listed; "
             "on 2 cores anything above 1 means the measurement competed for CPU (compare CPU seconds)."),
            "- Memory in GB = 10^9 bytes (the targets' unit).",
            "- Settings: " + (", ".join(f"`{k}={v}`" for k, v in (m.get("settings") or {}).items())
                              or "the defaults (no EUJP_* tuning setting set)") + ", in both the stepwise child "
            "and the whole `eujp run`.", ""]
    sizes = results["sizes"]
    for key, size in sizes.items():
        p, gen = size.get("pipeline"), size["data"]
        out += [(f"## {key}: {gen['comext_rows']:,} Comext rows, {gen['comext_bytes'] / 1e9:.2f} GB of CSV in "
                 f"{len(gen['comext_files'])} monthly files (seed {gen['seed']})"), ""]
        if p:
            out += [(f"{p['wire_rows']:,} wire rows -> {p['fact_rows']:,} fact rows + {p['rejected_rows']:,} "
                     f"quarantined; warehouse {p['warehouse_bytes'] / 1e6:.0f} MB, Parquet "
                     f"{(p['parquet_bytes'] or 0) / 1e6:.0f} MB. Importing Great Expectations (once per process, "
                     f"outside the stages) took {p['fixed_import_seconds']:.1f} s. Process peak RSS "
                     f"{_gb(p['max_rss'])}."), ""]
        out += stage_table(size)
        out += ["", *repeat_lines(size)]
        loads = ", ".join(f"{k} {v['loadavg_before']:.1f} -> {v['loadavg_after']:.1f}"
                          for k, v in size.items() if isinstance(v, dict) and "loadavg_before" in v)
        out += ["", f"Load average (before -> after): {loads}.", ""]
        s = summarise(size)
        if "outputs_match" in s:
            out += [(f"The pandas baseline's output equals the polars transform's (fact rows, quarantined rows, "
                     f"sums of value_eur and quantity_kg): **{'yes' if s['outputs_match'] else 'NO'}**."), ""]
        if size.get("eujp_run"):
            out += ["`eujp run` on this snapshot, twice (temporary Prefect server, all six sources):", "",
                    *eujp_run_table(size["eujp_run"]), ""]
    out += linearity(sizes)
    out += targets(sizes)
    out += ["<details><summary>raw results (JSON)</summary>", "", "```json",
            json.dumps(results, indent=1, default=str), "```", "</details>", ""]
    return "\n".join(out)


def linearity(sizes: dict) -> list[str]:
    keys = [k for k in sizes if sizes[k].get("pipeline")]
    if len(keys) < 2:
        return []
    a, b = sizes[keys[0]], sizes[keys[-1]]
    rows = b["pipeline"]["wire_rows"] / a["pipeline"]["wire_rows"]
    lines = ["## Linearity", "", (f"{keys[-1]} / {keys[0]}: {rows:.1f}x the rows; a stage whose cost is linear in "
             f"rows shows {rows:.1f}x."), "", "| stage | wall-time ratio | CPU-time ratio | peak-RSS ratio |",
             "|---|---:|---:|---:|"]
    for name in (*STAGES, *AGAIN):
        sa, sb = a["pipeline"]["stages"].get(name), b["pipeline"]["stages"].get(name)
        if sa and sb:
            lines.append(f"| {name} | {sb['seconds'] / sa['seconds']:.2f} | {sb['cpu_seconds'] / sa['cpu_seconds']:.2f}"
                         f" | {sb['peak_rss'] / sa['peak_rss']:.2f} |")
    ea, eb = summarise(a), summarise(b)
    lines.append(f"| **end to end** | {eb['e2e'] / ea['e2e']:.2f} | {eb['e2e_cpu'] / ea['e2e_cpu']:.2f} | "
                 f"{b['pipeline']['max_rss'] / a['pipeline']['max_rss']:.2f} |")
    for kind, stage in (("pandas", "transform"), ("duckdb", FLOOR_STAGE)):
        if a.get(kind) and b.get(kind):
            sa, sb = a[kind]["stages"][stage], b[kind]["stages"][stage]
            lines.append(f"| baseline: {kind} {stage} | {sb['seconds'] / sa['seconds']:.2f} | "
                         f"{sb['cpu_seconds'] / sa['cpu_seconds']:.2f} | {b[kind]['max_rss'] / a[kind]['max_rss']:.2f} |")
    for name in ("first", "unchanged"):
        ra, rb = (a.get("eujp_run") or {}).get(name), (b.get("eujp_run") or {}).get(name)
        if ra and rb:
            lines.append(f"| `eujp run` ({name}) | {rb['seconds'] / ra['seconds']:.2f} | - | "
                         f"{rb['max_rss'] / ra['max_rss']:.2f} |")
    return [*lines, ""]


def targets(sizes: dict) -> list[str]:
    """Verdicts on issue 12's targets, at every size measured (the run ratio at 10M rows, where it is set)."""
    keys = [k for k, v in sizes.items() if v.get("pipeline")]
    if not keys:
        return []
    lines = ["## Targets (issue 12)", "", "| size | target | measured | verdict |", "|---|---|---|---|"]

    def row(key: str, name: str, measured: str, ok: bool, by: str = "") -> None:
        lines.append(f"| {key} | {name} | {measured} | {'met' if ok else 'MISSED' + by} |")

    limit = TARGET_PEAK_GB * 1e9
    first = sizes[keys[0]]
    for key in keys:
        size, s = sizes[key], summarise(sizes[key])
        runs = size.get("eujp_run") or {}
        if "ratio_floor" in s:
            ratios = sorted(r["ratio"] for r in size.get("repeats") or [] if "ratio" in r)
            spread = (f" (median pair of {len(ratios)} runs; {ratios[0]:.2f}x to {ratios[-1]:.2f}x)"
                      if len(ratios) > 1 else "")
            row(key, f"stepwise end to end (parse → publish) within {TARGET_RATIO:g}x DuckDB's read_csv + pivot "
                "+ INSERT",
                f"{s['p2p']:.1f} s vs {s['floor']:.1f} s = {s['ratio_p2p']:.2f}x (with the extraction into the raw "
                f"zone: {s['e2e']:.1f} s = {s['ratio_floor']:.2f}x{spread})",
                s["ratio_p2p"] <= TARGET_RATIO, f" by {s['p2p'] - TARGET_RATIO * s['floor']:.1f} s")
            if "first" in runs and size["pipeline"]["wire_rows"] <= 12_000_000:
                r = runs["first"]["seconds"] / s["floor"]
                row(key, f"the whole `eujp run` within {TARGET_RUN_RATIO:g}x the floor",
                    f"{runs['first']['seconds']:.1f} s = {r:.2f}x" + _failed(runs["first"]),
                    r <= TARGET_RUN_RATIO and _succeeded(runs["first"]),
                    f" by {runs['first']['seconds'] - TARGET_RUN_RATIO * s['floor']:.1f} s")
        if "first" in runs:  # a run that failed is no measurement of the target: never "met"
            row(key, f"peak RSS of the whole `eujp run` at most {TARGET_PEAK_GB:g} GB",
                _gb(runs["first"]["max_rss"]) + _failed(runs["first"]),
                runs["first"]["max_rss"] <= limit and _succeeded(runs["first"]),
                f" by {(runs['first']['max_rss'] - limit) / 1e9:.2f} GB")
        row(key, f"peak RSS of the stepwise pipeline at most {TARGET_PEAK_GB:g} GB", _gb(s["e2e_peak"]),
            s["e2e_peak"] <= limit, f" by {(s['e2e_peak'] - limit) / 1e9:.2f} GB")
        if "unchanged" in runs:
            u = runs["unchanged"]
            row(key, f"a day with nothing new under {TARGET_UNCHANGED_S:g} s, Prefect start-up included",
                f"{u['seconds']:.1f} s", u["seconds"] < TARGET_UNCHANGED_S and u["exit_code"] == 0,
                f" by {u['seconds'] - TARGET_UNCHANGED_S:.1f} s")
        if key != keys[0]:
            growth = size["pipeline"]["wire_rows"] / first["pipeline"]["wire_rows"]
            e = s["e2e"] / summarise(first)["e2e"]
            row(key, f"stepwise time grows at most {TARGET_GROWTH:g}x the rows' growth ({growth:.1f}x from {keys[0]})",
                f"{e:.2f}x = {e / growth:.2f} of the rows' growth", e <= TARGET_GROWTH * growth)
            fa, fb = (first.get("eujp_run") or {}).get("first"), runs.get("first")
            if fa and fb:
                e = fb["seconds"] / fa["seconds"]
                row(key, f"`eujp run` time grows at most {TARGET_GROWTH:g}x the rows' growth",
                    f"{e:.2f}x = {e / growth:.2f} of the rows' growth", e <= TARGET_GROWTH * growth)
    return [*lines, ""]


def _succeeded(run: dict) -> bool:
    return run.get("exit_code", 0) == 0


def _failed(run: dict) -> str:
    return "" if _succeeded(run) else f" (the run FAILED, exit {run.get('exit_code')}: no measurement)"


def _e2e(run: dict) -> float:
    return sum(run["stages"][s]["seconds"] for s in STAGES if s in run["stages"])


def pick_median(size: dict) -> None:
    """With several runs, report the pair (pipeline run i, floor run i) of median ratio; keep every run's
    end-to-end and floor seconds for the spread."""
    pipes, floors = size.get("pipeline_runs", []), size.get("duckdb_runs", [])
    if pipes and floors and len(pipes) == len(floors):
        ratios = [_e2e(p) / f["stages"][FLOOR_STAGE]["seconds"] for p, f in zip(pipes, floors, strict=True)]
        i = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
        size["pipeline"], size["duckdb"] = pipes[i], floors[i]
    else:
        if pipes:
            size["pipeline"] = sorted(pipes, key=_e2e)[len(pipes) // 2]
        if floors:
            size["duckdb"] = sorted(floors, key=lambda f: f["stages"][FLOOR_STAGE]["seconds"])[len(floors) // 2]
    size["repeats"] = [{"e2e_seconds": _e2e(p), "e2e_cpu_seconds": sum(p["stages"][s]["cpu_seconds"] for s in STAGES
                                                                      if s in p["stages"]),
                        "max_rss": p["max_rss"], "loadavg_before": p["loadavg_before"]} for p in pipes]
    for j, f in enumerate(floors):
        if j < len(size["repeats"]):
            size["repeats"][j]["floor_seconds"] = f["stages"][FLOOR_STAGE]["seconds"]
            size["repeats"][j]["ratio"] = size["repeats"][j]["e2e_seconds"] / f["stages"][FLOOR_STAGE]["seconds"]
    for key in ("pipeline_runs", "duckdb_runs"):
        size.pop(key, None)


def repeat_lines(size: dict) -> list[str]:
    reps = size.get("repeats") or []
    if len(reps) < 2:
        return []
    cells = "; ".join(f"{r['e2e_seconds']:.1f} s / {r.get('floor_seconds', float('nan')):.1f} s = "
                      f"{r.get('ratio', float('nan')):.2f}x (load {r['loadavg_before']:.1f})" for r in reps)
    return [(f"{len(reps)} alternating runs of the pipeline and the floor (end to end / floor): {cells}. The table "
            "shows the pair of median ratio."), ""]


def print_size(key: str, size: dict) -> None:
    print(f"\n== {key} ==")
    for line in stage_table(size):
        print(line)
    if size.get("eujp_run"):
        for line in eujp_run_table(size["eujp_run"]):
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the eujp pipeline at Comext scale (issue 7).")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--years", type=positive_int, nargs="+", default=None, help="sizes in years of 10M rows (default 1 5)")
    sizes.add_argument("--rows", type=positive_int, nargs="+", default=None, help="sizes in Comext rows (e.g. for a smoke run)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where generated snapshots are kept")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch space (default: a temp dir)")
    parser.add_argument("--skip", action="append", default=[], choices=["pipeline", "pandas", "duckdb", "eujp-run"])
    parser.add_argument("--eujp-run", choices=["all", "first", "none"], default="all",
                        help="sizes at which to time `eujp run` twice: all, the first size only, none")
    parser.add_argument("--results", type=Path, default=RESULTS_MD, help="Markdown file to write ('-': none)")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="run the pipeline and the floor N times each, alternating, and report the median pair")
    parser.add_argument("--repeat-years", type=int, nargs="*", default=None,
                        help="sizes (in years) to repeat (default: all)")
    parser.add_argument("--keep-work", action="store_true", help="keep warehouses, raw zones and logs")
    parser.add_argument("--clean", action="store_true", help="delete the generated data when done")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        missing = [f"--{n}" for n in ("snapshot", "work", "json") if getattr(args, n) is None]
        if missing:
            parser.error(f"--child {args.child} needs {', '.join(missing)} (the folder to read, a scratch "
                         "folder and the JSON file to write)")
        result = CHILDREN[args.child](args.snapshot, args.work)
        args.json.write_text(json.dumps(result, default=str))
        return 0

    command = "cd " + str(REPO_ROOT) + " && .venv/bin/python -m benchmarks.run " + " ".join(
        argv if argv is not None else sys.argv[1:])
    work_root = Path(tempfile.mkdtemp(prefix="eujp-bench-", dir=args.work_dir))
    results: dict = {"machine": machine(), "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "sizes": {}}
    plan = [("rows", n) for n in args.rows] if args.rows else [("years", n) for n in (args.years or [1, 5])]
    try:
        for index, spec in enumerate(plan):
            kind, n = spec
            key = f"{n:,} rows" if kind == "rows" else f"{n} year" + ("s" if n > 1 else "")
            print(f"\n[{key}]", flush=True)
            snapshot, manifest = ensure_data(spec, args.seed, args.data_dir)
            size: dict = {"data": {"comext_rows": manifest["comext_rows"], "comext_bytes": manifest["comext_bytes"],
                                   "comext_files": [n for n in manifest["files"] if n.startswith("comext_")],
                                   "generate_seconds": manifest.get("generate_seconds"), "seed": args.seed}}
            repeat = args.repeat if args.repeat_years is None or n in args.repeat_years else 1
            for attempt in range(repeat):  # pipeline and floor alternate, so each pair sees similar load
                for kind in ("pipeline", "duckdb"):
                    if kind not in args.skip:
                        print(f"  {kind} ({attempt + 1}/{repeat}) ...", flush=True)
                        size.setdefault(f"{kind}_runs", []).append(
                            run_child(kind, snapshot, work_root, keep=args.keep_work))
            if "pandas" not in args.skip:
                print("  pandas ...", flush=True)
                size["pandas"] = run_child("pandas", snapshot, work_root, keep=args.keep_work)
            pick_median(size)
            if "eujp-run" not in args.skip and (args.eujp_run == "all" or args.eujp_run == "first" and index == 0):
                print("  eujp run (first, then unchanged day) ...", flush=True)
                size["eujp_run"] = eujp_runs(snapshot, work_root, keep=args.keep_work)
            results["sizes"][key] = size
            print_size(key, size)
    finally:
        if not args.keep_work:
            shutil.rmtree(work_root, ignore_errors=True)
        else:
            print(f"kept the work (warehouses, raw zones, logs) in {work_root}", file=sys.stderr)
        if args.clean:
            for kind, n in plan:
                shutil.rmtree(args.data_dir / f"{kind[0]}{n}", ignore_errors=True)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    previous = args.results.read_text() if str(args.results) != "-" and args.results.exists() else ""
    found = FINDINGS.search(previous)
    text = render(results, command, found.group(0) if found else None)
    if SECTION_START in previous and SECTION_END in previous:  # keep what other benchmarks appended around it
        head, rest = previous.split(SECTION_START, 1)
        tail = rest.split(SECTION_END, 1)[1]
        text = f"{head}{SECTION_START}\n{text}\n{SECTION_END}{tail}"
    for line in targets(results["sizes"]) + linearity(results["sizes"]):
        print(line)
    if str(args.results) != "-":
        args.results.write_text(text)
        print(f"\nwrote {args.results}")
    failed = [f"{key} ({name}: exit {run.get('exit_code')})" for key, size in results["sizes"].items()
              for name, run in (size.get("eujp_run") or {}).items() if not _succeeded(run)]
    if failed:  # the figures are written, but a failed run is no measurement: say so in the exit code
        print(f"\n`eujp run` failed at {', '.join(failed)}: see its log (--keep-work keeps it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
