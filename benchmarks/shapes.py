"""The same Comext rows in eight shapes, each through the stepwise pipeline, the whole `eujp run` and the DuckDB
floor (issue 12, item 2: "a payload of many months must stream too"; item 4: "benchmark several data shapes").

    .venv/bin/python -m benchmarks.shapes --rows 1000000 3000000 --months 72 --append

For each size it generates (benchmarks/generate.py, once, kept in benchmarks/data/shapes-{rows}/) the rows of
`--months` months (default 72: six years, both indicators per key) and writes them in one snapshot folder per shape:

- `monthly`: one SDMX-CSV file per month (as the live plan splits a request by period);
- `one-payload`: ONE SDMX-CSV file of every month, its rows sorted as Comext sorts an answer (reporter,
  partner, product, flow, indicator, then period), so the two indicators of a fact key are a series apart:
  what one wide live request returns;
- `small-payloads`: one file per month and group of product chapters (first digit of the CN8 code): ten
  small payloads a month, as a live plan split by chapter lands them;
- `chapters`: one file per CN8 chapter (first two digits) of every month, in the one payload's order: payloads
  that all share every month (one wire group over the limit, spilled);
- `series`: the one payload cut into `SERIES_FILES` (2,000) files by a hash of the series' reporter and product,
  in its order: thousands of small payloads that all share every month (a plan split by product, a replay of
  many small answers). Added in the twentieth session: landing and spilling such payloads one by one cost
  ~20 ms each, found on this shape;
- `shuffled`: the one payload with its rows in no order (sorted by a hash of the whole row key): a service
  that does not sort its answers. Added in the twenty-first session, when a lone payload sorted by series
  began to be streamed without a spill: this one must fall back to the spill (its series scan stops at its
  first batch).
- `sliced`: the `chapters` files, every odd-numbered chapter cut in two by months (its first half of the
  months, then its second, landed apart: all the first halves, the whole chapters, then the second halves),
  as a live plan lands a chapter too large for one answer beside chapters fetched whole: a series in two
  payloads that hold none of the same months. Added in the twenty-third session, when such a group began to
  be streamed by series instead of spilled.
- `resent`: the monthly files and the one payload side by side (hard links), so every row arrives twice, in
  two payloads: a release re-sent whole beside the files it was first sent in. Every wire row but one of each
  pair is an exact duplicate to find and reject. Added in the twenty-seventh session (a chunk of rows all
  sent twice took 8x the transform time of a clean one; 2.4x since that session).

Then, per shape, each in a fresh interpreter: `pipeline` and `duckdb` of benchmarks/run.py (the stepwise eujp
steps of the Comext source, and DuckDB's read_csv + pivot + INSERT of the same files: the floor), and the first
`eujp run` on the folder (temporary Prefect server, six sources, marts, report, Data Docs, publish), with
EUJP_BATCH_ROWS as given (`--batch-rows`, default: the setting's default). `--append` adds the tables as a
new section at the end of benchmarks/RESULTS.md; without it they are printed only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from benchmarks.generate import Plan, generate
from benchmarks.measure import FLOOR_STAGE, positive_int
from benchmarks.run import DATA_DIR, RESULTS_MD, STAGES, _timed_run, loadavg, machine, run_child
from eujp.config import DEFAULT_MAX_PAYLOAD_MB, max_payload_mb_env
from eujp.sources import comext_goods

SHAPES = ("monthly", "one-payload", "small-payloads", "chapters", "series", "shuffled", "sliced", "resent")
SERIES_FILES = 2000
PAYLOAD_PREFIX = "comext_ds045409_SYNTHETIC_EU27xJP_"
COMEXT_GLOB = "comext_ds045409_*.csv"


def shape_folders(rows: int, months: int, seed: int, data_dir: Path, shapes: tuple[str, ...] = SHAPES
                  ) -> dict[str, Path]:
    """The snapshot folders of `shapes` for `rows` Comext rows over `months` months (each made unless present:
    the monthly files first, the other shapes from them). Memory stays flat in `rows`: the month files are
    generated one by one, DuckDB sorts the one payload out of core, the others are written in batches."""
    if months % 12:
        raise SystemExit("--months must be a multiple of 12")
    root = data_dir / f"shapes-{rows}-{months}m-s{seed}"
    folders = {shape: root / shape for shape in SHAPES}
    try:
        plan = Plan(rows=rows, seed=seed, start_year=2020, years=months // 12, partners=("JP",)).check_fits()
    except ValueError as exc:
        raise SystemExit(f"--rows {rows:,} over --months {months}: {exc}") from None
    monthly = folders["monthly"]
    if not (monthly / "DONE").exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"  generating {rows:,} rows over {months} months into {monthly} ...", flush=True)
        generate(plan, monthly, log=lambda m: print(m, flush=True))
        (monthly / "DONE").write_text("")
    files = sorted(monthly.glob(COMEXT_GLOB))
    span = f"{plan.months[0]}..{plan.months[-1]}"
    one_payload = folders["one-payload"] / f"{PAYLOAD_PREFIX}{span}.csv"
    # the chapters, the series and the shuffled payload are made from the one payload, made first when asked for
    cut = bool({"chapters", "series", "shuffled", "sliced", "resent"} & set(shapes))
    for shape in dict.fromkeys((*(("one-payload",) if cut else ()), *shapes)):
        folder = folders[shape]
        if shape == "monthly" or (folder / "DONE").exists():
            continue
        print(f"  writing {folder} ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for other in monthly.iterdir():
            if not other.name.startswith("comext_") and other.name != "DONE":
                shutil.copyfile(other, folder / other.name)
        if shape == "one-payload":
            write_one_payload(files, one_payload, root)
        elif shape == "resent":  # hard links: the same rows twice, no second copy on disk
            for f in (*files, one_payload):
                os.link(f, folder / f.name)
        elif shape == "shuffled":
            write_shuffled_payload(one_payload, folder / one_payload.name, root)
        elif shape == "small-payloads":
            for f in files:  # one month file at a time
                month = pl.read_csv(f, infer_schema=False).with_columns(pl.col("product").str.slice(0, 1).alias("_g"))
                _append_parts(month, ["TIME_PERIOD", "_g"], lambda key: f"{PAYLOAD_PREFIX}{key[0]}_chapters{key[1]}x.csv",
                              folder)
        else:  # the one payload (sorted as Comext sorts) cut by CN8 chapter / series group / chapter and months
            chapter = pl.col("product").str.slice(0, 2)
            # a chapter's halves by months: "_1", "_3" (whole chapters, "_2", land between them)
            half = pl.when(pl.col("TIME_PERIOD") < plan.months[len(plan.months) // 2]).then(pl.lit("_1"))
            group = {
                "chapters": chapter,
                "sliced": pl.concat_str(pl.when(chapter.cast(pl.Int32) % 2 == 1).then(half.otherwise(pl.lit("_3")))
                                        .otherwise(pl.lit("_2")), chapter),
                "series": (pl.struct("reporter", "product").hash(seed=7) % SERIES_FILES).cast(pl.String).str.zfill(5),
            }[shape]
            stem = f"{PAYLOAD_PREFIX}{span}_{shape}"
            with duckdb.connect() as conn:
                reader = conn.execute(f"SELECT * FROM read_csv('{one_payload}', header = true, all_varchar = true)"
                                      ).to_arrow_reader(1_000_000)
                for batch in reader:
                    part = pl.from_arrow(batch).with_columns(group.alias("_g"))
                    _append_parts(part, ["_g"], lambda key, stem=stem: f"{stem}{key[0]}.csv", folder)
        (folder / "DONE").write_text("")
    return {shape: folders[shape] for shape in shapes}


def _append_parts(frame: pl.DataFrame, by: list[str], name, folder: Path) -> None:
    """Append each part of `frame` by `by` (in its order) to the SDMX-CSV file `name(key)` in `folder` (its header
    written first), without the helper column `_g`."""
    for key, part in frame.partition_by(by, as_dict=True, maintain_order=True).items():
        with (folder / name(key)).open("ab") as out:
            part.drop("_g").write_csv(out, include_header=out.tell() == 0, line_terminator="\r\n")


ROW_KEY = ", ".join(f'"{c}"' for c in ("reporter", "partner", "product", "flow", "indicators", "TIME_PERIOD"))


def _sorted_copy(files: list[Path], order: str, target: Path, scratch: Path) -> None:
    """The SDMX-CSV `files` as ONE payload ordered by `order` (SQL), CRLF. DuckDB sorts out of core under a
    memory limit (spilling to `scratch`), so any --rows fits."""
    listed = ", ".join(f"'{f}'" for f in files)
    with duckdb.connect() as conn:
        conn.execute(f"SET memory_limit = '3GB'; SET temp_directory = '{scratch / 'duckdb-sort'}'; "
                     "SET enable_progress_bar = false")
        conn.execute(f"COPY (SELECT * FROM read_csv([{listed}], header = true, all_varchar = true) ORDER BY {order}) "
                     f"TO '{target}' (HEADER, NEW_LINE '\\r\\n')")
    shutil.rmtree(scratch / "duckdb-sort", ignore_errors=True)


def write_one_payload(files: list[Path], target: Path, scratch: Path) -> None:
    """The monthly files as ONE SDMX-CSV payload sorted as Comext sorts an answer (key, then period)."""
    _sorted_copy(files, ROW_KEY, target, scratch)


def write_shuffled_payload(source: Path, target: Path, scratch: Path) -> None:
    """The one payload's rows in no order (sorted by a hash of reporter, partner, product, flow, indicator and
    period: the two indicators of a key and the months of a series scattered through the file)."""
    _sorted_copy([source], f"hash({ROW_KEY})", target, scratch)


def payload_cap(files: list[Path]) -> dict[str, str]:
    """The Comext payload cap that lets the largest of `files` through when it is over the default cap
    (eujp.config: a payload over EUJP_MAX_PAYLOAD_MB is refused; one payload of 50M rows is ~4.5 GB)."""
    largest = max((f.stat().st_size for f in files), default=0) / 2**20
    if largest <= DEFAULT_MAX_PAYLOAD_MB:
        return {}
    return {max_payload_mb_env(comext_goods.SOURCE.name): str(math.ceil(largest) + 1)}


def first_eujp_run(snapshot: Path, work_root: Path, batch_rows: int | None) -> dict:
    """The first `eujp run` on `snapshot` (temporary Prefect server), as benchmarks/run.py times it."""
    work = Path(tempfile.mkdtemp(prefix="eujp-run-", dir=work_root))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EUJP_"))}
    env.update(PREFECT_HOME=str(work / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", GX_ANALYTICS_ENABLED="false", COLUMNS="200")
    if batch_rows is not None:
        env["EUJP_BATCH_ROWS"] = str(batch_rows)
    env.update(payload_cap(sorted(snapshot.glob(COMEXT_GLOB))))
    cmd = [sys.executable, "-m", "flows.cli", "run", "--snapshot-dir", str(snapshot),
           "--warehouse", str(work / "var" / "warehouse.duckdb"), "--publish", str(work / "var" / "objectstore")]
    try:
        return _timed_run(cmd, env, work, "first")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_shape(snapshot: Path, work_root: Path, batch_rows: int | None, skip: list[str]) -> dict:
    if batch_rows is None:
        os.environ.pop("EUJP_BATCH_ROWS", None)
    else:
        os.environ["EUJP_BATCH_ROWS"] = str(batch_rows)
    files = sorted(snapshot.glob(COMEXT_GLOB))
    out: dict = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    os.environ.update(payload_cap(files))
    for kind in ("pipeline", "duckdb"):
        if kind not in skip:
            print(f"    {kind} ...", flush=True)
            out[kind] = run_child(kind, snapshot, work_root, keep=False)
    if "eujp-run" not in skip:
        print("    eujp run ...", flush=True)
        out["eujp_run"] = first_eujp_run(snapshot, work_root, batch_rows)
    return out


def _gb(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def table(results: dict) -> list[str]:
    """Peaks are sampled RSS (benchmarks/measure.py, and the parent's sampling of `eujp run`): a child's
    ru_maxrss starts at its parent's high-water mark on Linux, which is this process' (it generated the data)."""
    lines = [("| rows | shape | payloads | EUJP_BATCH_ROWS | chunks (max wire rows) | pipeline s | pipeline peak "
              "| floor s | floor peak | pipeline / floor | `eujp run` s | `eujp run` peak | run / floor | load avg |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (rows, batch_rows, shape), m in results.items():
        p, db, run = m.get("pipeline"), m.get("duckdb"), m.get("eujp_run")
        e2e = sum(p["stages"][s]["seconds"] for s in STAGES if s in p["stages"]) if p else None
        peak = max(p["stages"][s]["peak_rss"] for s in STAGES if s in p["stages"]) if p else None
        floor = db["stages"][FLOOR_STAGE]["seconds"] if db else None
        floor_peak = db["stages"][FLOOR_STAGE]["peak_rss"] if db else None
        chunks = p.get("chunks") if p else None
        load = [v for x in (p, db, run) if x for v in (x["loadavg_before"], x["loadavg_after"])]
        lines.append(" | ".join([
            f"| {rows:,}", shape, str(m["files"]), f"{batch_rows:,}" if batch_rows else "default (2,000,000)",
            f"{chunks['count']} ({chunks['max_wire_rows']:,})" if chunks else "-",
            f"{e2e:.1f}" if e2e is not None else "-", _gb(peak),
            f"{floor:.1f}" if floor is not None else "-", _gb(floor_peak),
            f"{e2e / floor:.2f}x" if e2e and floor else "-",
            (f"{run['seconds']:.1f}" + ("" if not run["exit_code"] else f" (exit {run['exit_code']})")) if run else "-",
            _gb(run.get("max_rss") or run.get("peak_sampled")) + (" (in publish)" if "load-audit-promote' - Finished" in
                                            (run.get("peak_at") or "") else "") if run else "-",
            f"{run['seconds'] / floor:.1f}x" if run and floor else "-",
            f"{min(load):.1f}–{max(load):.1f}" if load else "-",
        ]) + " |")
    return lines


def stage_lines(results: dict) -> list[str]:
    lines = ["| rows | shape | EUJP_BATCH_ROWS | " + " | ".join(STAGES) + " | again: load |",
             "|---|---|---|" + "---|" * (len(STAGES) + 1)]
    for (rows, batch_rows, shape), m in results.items():
        p = m.get("pipeline")
        if not p:
            continue
        cells = [f"{p['stages'][s]['seconds']:.1f} s / {_gb(p['stages'][s]['peak_rss'])}" if s in p["stages"] else "-"
                 for s in STAGES]
        again = p["stages"].get("again: load")
        lines.append(f"| {rows:,} | {shape} | {batch_rows or 'default'} | " + " | ".join(cells)
                     + (f" | {again['seconds']:.1f} s / {_gb(again['peak_rss'])} |" if again else " | - |"))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Comext in several data shapes: pipeline, eujp run, DuckDB floor.")
    parser.add_argument("--rows", type=positive_int, nargs="+", default=[1_000_000])
    parser.add_argument("--months", type=positive_int, default=72)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--batch-rows", type=int, nargs="+", default=[None],
                        help="EUJP_BATCH_ROWS values to measure (default: the setting's default)")
    parser.add_argument("--skip", action="append", default=[], choices=["pipeline", "duckdb", "eujp-run"])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--append", action="store_true", help="append the tables to benchmarks/RESULTS.md")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--render", type=Path, nargs="+", default=None,
                        help="only print the tables of earlier --json files (in order)")
    args = parser.parse_args(argv)
    if args.render:
        results = {}
        for path in args.render:
            for key, value in json.loads(path.read_text()).items():
                rows, batch_rows, shape = key.split("|")
                results[(int(rows), None if batch_rows == "None" else int(batch_rows), shape)] = value
        print("\n".join([*table(results), "", *stage_lines(results)]))
        return 0

    started = datetime.now(UTC).isoformat(timespec="seconds")
    work_root = Path(tempfile.mkdtemp(prefix="eujp-shapes-"))
    results: dict = {}
    try:
        for rows in args.rows:
            folders = shape_folders(rows, args.months, args.seed, args.data_dir, tuple(args.shapes))
            for batch_rows in args.batch_rows:
                for shape in args.shapes:
                    print(f"  [{rows:,} rows, {shape}, EUJP_BATCH_ROWS={batch_rows or 'default'}]", flush=True)
                    t = time.perf_counter()
                    results[(rows, batch_rows, shape)] = measure_shape(folders[shape], work_root, batch_rows,
                                                                       args.skip)
                    print(f"    done in {time.perf_counter() - t:.0f} s", flush=True)
                    for line in table({(rows, batch_rows, shape): results[(rows, batch_rows, shape)]})[2:]:
                        print(line, flush=True)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    m = machine()
    command = "python -m benchmarks.shapes " + " ".join(argv if argv is not None else sys.argv[1:])
    section = [
        "", f"## Data shapes: monthly files, one payload of many months, many small payloads, chapters, series, shuffled, sliced ({started[:10]})", "",
        (f"Written by `benchmarks/shapes.py`, {started} to {finished}, on {m['nproc']} cores "
        f"({m['cpu']}), {m['memory_bytes'] / 2**30:.0f} GiB, load average {loadavg():.1f} at the end "
        "(the machine was shared with other work). Command:"), "", "```sh", command, "```", "",
        ("Pipeline: the stepwise eujp steps of the Comext source (end-to-end stages of benchmarks/run.py, "
        "without the 'again' re-upsert) and the peak RSS over those stages; floor: DuckDB read_csv + pivot + INSERT "
        "of the same files; `eujp run`: the whole first run (Prefect start-up, six sources, marts, report, "
        "Data Docs, publish), peak RSS of its largest process."), "",
        *table(results), "", "Per stage (wall time / peak RSS while it ran):", "", *stage_lines(results), "",
    ]
    text = "\n".join(section)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({f"{k[0]}|{k[1]}|{k[2]}": v for k, v in results.items()}, default=str))
    if args.append:
        with RESULTS_MD.open("a", encoding="utf-8") as f:
            f.write(text)
        print(f"appended to {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
