"""The benchmark tooling (benchmarks/): the synthetic generator is deterministic and writes files the real
parsers and transforms read, and the pandas baseline does the same work as the polars transform.
Nothing here is timed: the timings live in benchmarks/RESULTS.md."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from benchmarks.generate import DATAFLOW, generate, make_plan
from eujp.parse.jsonstat import parse_jsonstat
from eujp.parse.sdmx_csv import parse_comext_csv
from eujp.pipeline import load_countries
from eujp.sources import comext_goods, eurostat_goods, eurostat_services
from transforms.comext_goods import transform_goods_product

# The sources whose files the generator writes, by their modules (a source's name is written in its own folder).
COMEXT = comext_goods.SOURCE.name


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def countries() -> pl.DataFrame:
    return load_countries(date(2026, 11, 24))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synthetic")
    plan = make_plan(rows=24_001, years=None, seed=11, start_year=2020, partners=("JP",))
    return out, generate(plan, out, log=lambda _: None)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, small):
    folder, _ = small
    again = tmp_path / "again"
    generate(make_plan(rows=24_001, years=None, seed=11, start_year=2020, partners=("JP",)), again,
             log=lambda _: None)
    assert digest(again) == digest(folder)
    other = tmp_path / "other"
    generate(make_plan(rows=24_001, years=None, seed=12, start_year=2020, partners=("JP",)), other,
             log=lambda _: None)
    changed = {n for n, h in digest(other).items() if digest(folder)[n] != h}
    assert any(n.startswith("comext_") for n in changed)


def test_sizes_and_layout():
    assert make_plan(rows=None, years=1, seed=1, start_year=2020, partners=("JP",)).rows == 10_000_000
    plan = make_plan(rows=50_000_000, years=None, seed=1, start_year=2020, partners=("JP",))
    assert plan.years == 5 and len(plan.months) == 60
    assert sum(plan.rows_in_month(i) for i in range(60)) == 50_000_000
    with pytest.raises(ValueError, match="exactly one"):
        make_plan(rows=10, years=1, seed=1, start_year=2020, partners=("JP",))


def test_generated_comext_files_parse_and_transform_with_every_row_accounted(small, countries):
    folder, manifest = small
    files = sorted(folder.glob("comext_ds045409*.csv"))
    assert len(files) == 12 and manifest["comext_rows"] == 24_001
    total = 0
    for path in files:
        parsed = parse_comext_csv(path.read_bytes())
        assert parsed.frame.height == manifest["files"][path.name]["rows"]
        assert parsed.frame.get_column("DATAFLOW").unique().to_list() == [DATAFLOW]  # marked synthetic
        result = transform_goods_product(parsed.frame, COMEXT, parsed.source_version, countries)
        assert result.rows_in == parsed.frame.height
        total += parsed.frame.height
    assert total == 24_001
    assert "SYNTHETIC" in (folder / "SYNTHETIC").read_text()
    assert json.loads((folder / "synthetic_manifest.json").read_text())["synthetic"] is True


def test_generated_jsonstat_files_load_without_rejections(small, countries):
    folder, _ = small
    for name, source in (("eurostat_ext_lt_maineu_SYNTHETIC.json", eurostat_goods.SOURCE),
                         ("eurostat_bop_its6_det_SYNTHETIC.json", eurostat_services.SOURCE)):
        parsed = parse_jsonstat((folder / name).read_bytes())
        assert "SYNTHETIC" in parsed.meta["label"]
        result = source.transform(parsed.frame, source.name, parsed.source_version, countries)
        assert result.rejected.is_empty() and result.valid.height == parsed.frame.height > 1000


def test_pandas_baseline_matches_the_polars_transform(small, countries):
    from benchmarks.baselines import pandas_parse, pandas_transform

    folder, _ = small
    iso2 = countries.get_column("iso2").drop_nulls().to_list()
    for path in sorted(folder.glob("comext_ds045409*.csv"))[:3]:
        data = path.read_bytes()
        wire, version = pandas_parse(data)
        valid, rejected, wire_rows = pandas_transform(wire, COMEXT, version, iso2)
        parsed = parse_comext_csv(data)
        assert version == parsed.source_version
        expected = transform_goods_product(parsed.frame, COMEXT, version, countries)
        assert (len(valid), len(rejected), wire_rows) == (expected.valid.height, expected.rejected.height,
                                                         expected.valid_wire_rows)
        assert sorted(rejected["reason"]) == sorted(expected.rejected["reason"].to_list())
        assert valid["value_eur"].sum() == pytest.approx(expected.valid["value_eur"].sum(), rel=1e-12)
        assert valid["quantity_kg"].sum() == pytest.approx(expected.valid["quantity_kg"].sum(), rel=1e-12)


def test_duckdb_floor_stores_one_row_per_key_with_both_indicators(tmp_path, small, countries):
    """The floor is issue 12's read_csv + pivot + INSERT: the two indicators of a key become one row, whose
    value and quantity are the wire's (the sums equal those of the polars transform's valid rows)."""
    import duckdb

    from benchmarks.baselines import duckdb_floor

    folder, _ = small
    files = sorted(folder.glob("comext_ds045409*.csv"))
    rows = duckdb_floor(files, tmp_path / "floor.duckdb")
    parsed = [parse_comext_csv(p.read_bytes()) for p in files]
    result = transform_goods_product(pl.concat([p.frame for p in parsed]), COMEXT, parsed[0].source_version,
                                     countries)
    valid, rejected = result.valid, result.rejected
    assert valid.height <= rows <= valid.height + rejected.height  # a key with a bad value is still a row here
    with duckdb.connect(str(tmp_path / "floor.duckdb"), read_only=True) as conn:
        value = conn.execute("SELECT sum(value_eur) FROM comext_fact").fetchone()[0]
    assert value == pytest.approx(valid["value_eur"].sum(), rel=1e-3)


def test_the_day_benchmark_counts_copies_of_unchanged_partition_files_apart_from_uploads(tmp_path):
    """benchmarks.incremental_day.uploaded: a latest/ alias and a partition file identical to the previous run's
    are copies; a changed partition file and a re-exported one-file table are uploads."""
    from benchmarks.incremental_day import COPIED, uploaded

    def write(key: str, data: bytes) -> None:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)

    def stats() -> dict:
        return {p.relative_to(tmp_path).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in tmp_path.rglob("*") if p.is_file()}

    old, new = "runs/20261124T060000Z-aaaaaa", "runs/20261125T060000Z-bbbbbb"
    for key, data in {f"{old}/parquet/mart_product_trade/period_year=2024.parquet": b"2024",
                      f"{old}/parquet/mart_product_trade/period_year=2025.parquet": b"2025",
                      f"{old}/parquet/dim_date.parquet": b"dates"}.items():
        write(key, data)
    before = stats()
    for key, data in {f"{new}/parquet/mart_product_trade/period_year=2024.parquet": b"2024",
                      f"{new}/parquet/mart_product_trade/period_year=2025.parquet": b"2025+",
                      f"{new}/parquet/dim_date.parquet": b"dates", f"{new}/manifest.json": b"{}",
                      "latest/manifest.json": b"{}"}.items():
        write(key, data)
    counted = uploaded(before, stats(), tmp_path)
    assert counted[COPIED] == {"objects": 2, "bytes": 6}  # the 2024 file and latest/manifest.json
    assert counted["Parquet"] == {"objects": 2, "bytes": 10}  # the revised 2025 file and dim_date, re-exported


def test_a_task_step_ends_at_its_finished_line_not_at_its_first_log_line():
    from benchmarks.run import _step_times

    lines = [
        "10:00:01.000 | INFO    | Flow run 'x' - Beginning flow run 'x' for flow 'eujp-daily'",
        "10:00:05.000 | INFO    | Flow run 'minerals-1' - Finished in state Completed()",
        "10:00:06.000 | INFO    | Task run 'load-audit-promote-0' - load: 10 row(s) written to t in 0.5 s",
        "10:00:09.000 | INFO    | Task run 'load-audit-promote-0' - Finished in state Completed()",
        "10:00:10.000 | INFO    | Task run 'publish-0' - uploading 3 objects",
        "10:00:14.500 | INFO    | Task run 'publish-0' - Finished in state Completed()",
    ]
    assert _step_times("\n".join(lines), "10:00:00.000", "10:00:15.000") == {
        "start -> flow_started": 1.0, "flow_started -> domains_done": 4.0,
        "domains_done -> load_audit_promote_done": 4.0, "load_audit_promote_done -> publish_done": 5.5,
        "publish_done -> exit": 0.5}


def test_the_day_benchmark_puts_the_work_folder_back_between_its_days(tmp_path):
    """benchmarks.incremental_day.freeze / thaw: the store's files hard-linked (written once), the files that
    change in place (the warehouse) copied, so a day run after thaw starts from the frozen state; median_run
    reports the median day with every day's time."""
    from benchmarks.incremental_day import freeze, median_run, thaw

    var, frozen = tmp_path / "var", tmp_path / "frozen"
    (var / "objectstore" / "lake").mkdir(parents=True)
    (var / "objectstore" / "lake" / "a.parquet").write_bytes(b"part")
    (var / "warehouse.duckdb").write_bytes(b"before")
    freeze(var, frozen)
    assert (frozen / "objectstore" / "lake" / "a.parquet").stat().st_ino == \
        (var / "objectstore" / "lake" / "a.parquet").stat().st_ino
    assert (frozen / "warehouse.duckdb").stat().st_ino != (var / "warehouse.duckdb").stat().st_ino
    # a day: the warehouse changed in place, a new object, an object replaced by rename
    with open(var / "warehouse.duckdb", "r+b") as f:
        f.write(b"AFTER!")
    (var / "objectstore" / "new.json").write_text("{}")
    (var / "objectstore" / "lake" / "tmp").write_bytes(b"other")
    os.replace(var / "objectstore" / "lake" / "tmp", var / "objectstore" / "lake" / "a.parquet")
    thaw(frozen, var)
    assert (var / "warehouse.duckdb").read_bytes() == b"before"
    assert (var / "objectstore" / "lake" / "a.parquet").read_bytes() == b"part"
    assert not (var / "objectstore" / "new.json").exists()
    runs = [{"seconds": s, "id": i} for i, s in enumerate([21.0, 18.5, 19.2])]
    assert median_run(runs) == {"seconds": 19.2, "id": 2, "repeats": [21.0, 18.5, 19.2]}
    assert median_run(runs[:2])["seconds"] == 18.5


def test_the_data_shapes_hold_the_monthly_rows_each_in_its_own_cut(tmp_path):
    """benchmarks/shapes.py: every shape carries exactly the monthly files' wire rows; the one payload is sorted
    as Comext sorts an answer (key, then period), the chapters are that payload cut by CN8 chapter in its order,
    the series files by groups of series (each series in one file, in its order), the shuffled payload is the one
    in no order (its series scattered), the small payloads one month and chapter group each, the resent folder
    the monthly files and the one payload together; every file is SDMX-CSV the parser reads."""
    from benchmarks.shapes import COMEXT_GLOB, SHAPES, shape_folders

    folders = shape_folders(30_000, 12, 5, tmp_path, SHAPES)
    key = ["reporter", "partner", "product", "flow", "indicators", "TIME_PERIOD"]

    def rows(shape: str) -> dict[str, pl.DataFrame]:
        files = sorted(folders[shape].glob(COMEXT_GLOB))
        assert all(f.read_bytes().count(b"\r\n") == f.read_bytes().count(b"\n") for f in files)  # CRLF only
        return {f.name: pl.read_csv(f, infer_schema=False) for f in files}

    monthly = pl.concat(rows("monthly").values())
    assert monthly.height == 30_000
    (one,) = rows("one-payload").values()
    assert one.equals(monthly.sort(key, maintain_order=True))
    chapters = rows("chapters")
    assert len(chapters) > 1
    for name, part in chapters.items():
        assert part.get_column("product").str.slice(0, 2).unique().to_list() == [name[-6:-4]]
    assert pl.concat(chapters.values()).sort(key).equals(one)
    assert pl.concat([p for _, p in sorted(chapters.items())]).equals(
        one.sort(pl.col("product").str.slice(0, 2), maintain_order=True))
    small = rows("small-payloads")
    for name, part in small.items():
        assert part.get_column("TIME_PERIOD").unique().to_list() == [name.split("_")[-2]]
        assert part.get_column("product").str.slice(0, 1).unique().to_list() == [name.split("chapters")[1][0]]
    assert pl.concat(small.values()).sort(key).equals(one)
    series = rows("series")
    assert len(series) > len(chapters)
    owners = pl.concat([p.select("reporter", "product").unique().with_columns(pl.lit(n).alias("file"))
                        for n, p in series.items()])
    assert owners.select("reporter", "product").is_unique().all()  # a series lies in one file
    assert all(part.equals(part.sort(key, maintain_order=True)) for part in series.values())  # in the one's order
    assert pl.concat(series.values()).sort(key).equals(one)
    (shuffled,) = rows("shuffled").values()
    assert shuffled.sort(key).equals(one) and not shuffled.equals(one)
    runs = shuffled.select(pl.struct("reporter", "partner", "product", "flow").rle_id()).to_series()
    assert runs.n_unique() > 2 * shuffled.select("reporter", "partner", "product", "flow").n_unique()  # scattered
    sliced = rows("sliced")
    assert pl.concat(sliced.values()).sort(key).equals(one)
    months: dict[str, set] = {}  # the file's suffix ("1" + chapter: the first half of an odd chapter) -> its months
    for name, part in sliced.items():
        (chapter,) = part.get_column("product").str.slice(0, 2).unique().to_list()
        suffix = name.removesuffix(".csv").rsplit("_", 1)[1]
        assert suffix[1:] == chapter and suffix[0] in ("13" if int(chapter) % 2 else "2")
        assert part.equals(part.sort(key, maintain_order=True))  # in the one's order
        months[suffix] = set(part.get_column("TIME_PERIOD").unique().to_list())
    odd = [suffix[1:] for suffix in months if int(suffix[1:]) % 2]
    assert odd and all(max(months["1" + c]) < min(months["3" + c]) for c in odd)  # halves: months apart, in order
    assert sorted(sliced) == sorted(sliced, key=lambda n: n.rsplit("_", 1)[1])  # first halves, whole, second halves
    resent = rows("resent")  # the monthly files and the one payload: every row twice
    assert set(resent) == set(rows("monthly")) | set(rows("one-payload"))
    assert pl.concat(resent.values()).sort(key).equals(pl.concat([one, one]).sort(key))
    assert parse_comext_csv(next(iter(folders["chapters"].glob(COMEXT_GLOB))).read_bytes()).frame.height > 0
    # made once: a second call reuses every folder as it is
    stamps = {f: f.stat().st_mtime_ns for folder in folders.values() for f in folder.iterdir()}
    assert shape_folders(30_000, 12, 5, tmp_path, SHAPES) == folders
    assert {f: f.stat().st_mtime_ns for folder in folders.values() for f in folder.iterdir()} == stamps


def test_shapes_refuse_more_rows_a_month_than_the_grid_holds_before_writing_anything(tmp_path):
    """100M rows over 72 months are 1.39M a month, over the 972k a month the grid holds (27 reporters x JP x
    9,000 products x 2 flows x 2 indicators): a clear message, not a polars shape error halfway."""
    from benchmarks.shapes import shape_folders

    with pytest.raises(SystemExit, match=r"over --months 72: 1,388,889 rows a month do not fit the grid of 486,000 keys"):
        shape_folders(100_000_000, 72, 7, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_payload_over_the_default_cap_gets_a_cap_of_its_own_for_the_measurement(tmp_path):
    """benchmarks/shapes.py: the one payload of 50M rows (~4.5 GB) is over the default 1024 MB cap, which would
    refuse it; the benchmark lifts the Comext cap just above the largest file (sparse files: only sizes count)."""
    from benchmarks.shapes import payload_cap
    from eujp.config import DEFAULT_MAX_PAYLOAD_MB, max_payload_mb_env

    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    with small.open("wb") as f:
        f.truncate(int(DEFAULT_MAX_PAYLOAD_MB * 2**20))
    assert payload_cap([small]) == {}
    with large.open("wb") as f:
        f.truncate(int(DEFAULT_MAX_PAYLOAD_MB * 2**20) + 1)
    cap = payload_cap([small, large])
    assert cap == {max_payload_mb_env(COMEXT): str(int(DEFAULT_MAX_PAYLOAD_MB) + 2)}
    assert float(cap[max_payload_mb_env(COMEXT)]) * 2**20 >= large.stat().st_size


def test_the_revised_history_revises_every_comext_figure_and_nothing_else(small, tmp_path, countries):
    """benchmarks.incremental_day.revised_copy (the day benchmark's --revise): every Comext file is the same rows
    in the same byte format with each number x 1.01 (a value that is not a number kept, so it is quarantined
    again), a LAST UPDATE a day later (a newer source version); the other sources' files unchanged."""
    from benchmarks.incremental_day import revised_copy

    folder, _ = small
    revised = revised_copy(folder, tmp_path / "revised")
    comext = sorted(p.name for p in folder.glob("comext_*.csv"))
    assert comext and sorted(p.name for p in revised.glob("comext_*.csv")) == comext
    others = {p.name for p in folder.iterdir() if p.is_file() and p.name not in comext and p.name != "DONE"}
    assert others and all((revised / n).read_bytes() == (folder / n).read_bytes() for n in others)
    key = ["reporter", "partner", "product", "flow", "indicators", "TIME_PERIOD"]
    for name in comext:
        raw = (revised / name).read_bytes()
        assert raw.count(b"\r\n") == raw.count(b"\n") == (folder / name).read_bytes().count(b"\n")
        old, new = parse_comext_csv((folder / name).read_bytes()), parse_comext_csv(raw)
        assert new.source_version > old.source_version
        both = old.frame.join(new.frame, on=key, how="full", suffix="_new", coalesce=True)
        assert both.height == old.frame.height == new.frame.height
        numbers = both.filter(pl.col("OBS_VALUE").is_not_null())
        assert ((numbers["OBS_VALUE_new"] - (numbers["OBS_VALUE"] * 1.01).round(2)).abs() < 1e-6).all()
        kept = both.filter(pl.col("OBS_VALUE").is_null())
        assert (kept["OBS_VALUE_raw"] == kept["OBS_VALUE_raw_new"]).all()
    assert revised_copy(folder, revised) == revised  # made once: reused while its DONE marker is there


def test_a_measured_child_reports_its_own_peak_not_the_parents(tmp_path):
    """A child started by subprocess begins with its parent's peak as its ru_maxrss (Linux: vfork, then exec);
    the benchmark reports the child's own high-water mark (VmHWM) instead, both for the whole `eujp run` it
    times and for a child that meters itself."""
    import subprocess
    import sys

    import numpy as np

    from benchmarks.measure import peak_rss_bytes
    from benchmarks.run import _timed_run

    held = np.ones(600 << 20, dtype=np.uint8)  # this process' peak: at least 600 MiB, its pages touched
    del held
    assert peak_rss_bytes() >= 600 << 20
    code = ("import time; from benchmarks.measure import max_rss_bytes; "
            "print(max_rss_bytes()); time.sleep(0.5)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = _timed_run([sys.executable, "-c", code], env, tmp_path, "child")
    assert run["exit_code"] == 0
    assert run["ru_maxrss"] >= 600 << 20  # what wait4 says: the parent's peak
    assert run["max_rss"] < 200 << 20, run  # the child's own: a Python process that imported little
    metered = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(metered.stdout.split()[0]) < 200 << 20


def test_pandas_baseline_rejects_as_the_polars_transform_does_on_bad_rows(countries):
    """The peer does the same work: a figure rejected for its value takes its fact key's other row along, a
    conflict its sibling, a lone quantity is an orphan, with the transform's reasons."""
    from benchmarks.baselines import pandas_parse, pandas_transform

    lines = ["DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE"] + [
        f"ESTAT:DS-045409(1.0),14/08/26 11:00:00,M,DE,JP,{r}" for r in (
            "84834030,1,VALUE_IN_EUROS,2025-02,100", "84834030,1,QUANTITY_IN_100KG,2025-02,-1",
            "84834030,2,VALUE_IN_EUROS,2025-02,5", "84834030,2,QUANTITY_IN_100KG,2025-02,1",
            "84834030,2,VALUE_IN_EUROS,2025-02,6", "85011010,1,QUANTITY_IN_100KG,2025-02,3",
            "85011010,2,VALUE_IN_EUROS,2025-02,n/a", "85011010,1,VALUE_IN_EUROS,2025-03,7")]
    data = ("\n".join(lines) + "\n").encode()
    wire, version = pandas_parse(data)
    iso2 = countries.get_column("iso2").drop_nulls().to_list()
    valid, rejected, wire_rows = pandas_transform(wire, COMEXT, version, iso2)
    expected = transform_goods_product(parse_comext_csv(data).frame, COMEXT, version, countries)
    assert sorted(rejected["reason"]) == sorted(expected.rejected["reason"].to_list())
    assert (len(valid), wire_rows) == (expected.valid.height, expected.valid_wire_rows) == (1, 1)


@pytest.mark.parametrize(("module", "args"), [
    ("run", ["--repeat", "0"]), ("run", ["--rows", "0"]), ("run", ["--years", "-1"]),
    ("shapes", ["--months", "0"]), ("shapes", ["--rows", "0"]),
    ("incremental_day", ["--years-of-rows", "0"]), ("incremental_day", ["--rows", "-5"]),
    ("lake_upload", ["--years", "0"]), ("lake_upload", ["--rows-per-year", "-5"]), ("live_load", ["--rows", "0"])])
def test_a_benchmark_refuses_a_size_or_count_below_1_before_measuring(module, args, capsys):
    """`run --repeat 0` measured nothing, exited 0 and emptied its RESULTS.md section; `--years-of-rows 0` ran
    the default size; sizes of 0 or less ended in tracebacks of the generator."""
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(f"benchmarks.{module}").main(args)
    assert stopped.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_a_failed_eujp_run_gets_no_met_verdict():
    """A whole `eujp run` that failed (e.g. over the rejected-rows threshold) said 'met' for its peak and ratio."""
    from benchmarks.measure import FLOOR_STAGE
    from benchmarks.run import STAGES, targets

    stages = {s: {"seconds": 1.0, "cpu_seconds": 1.0, "peak_rss": 1e9} for s in STAGES}
    size = {"pipeline": {"stages": stages, "max_rss": 1e9, "wire_rows": 1_000_000},
            "duckdb": {"stages": {FLOOR_STAGE: {"seconds": len(STAGES)}}},
            "eujp_run": {"first": {"seconds": 2.0, "max_rss": 1e9, "exit_code": 0}}}
    assert any("whole `eujp run` at most" in line and line.endswith("| met |") for line in targets({"1M": size}))
    size["eujp_run"]["first"]["exit_code"] = 1
    rows = [line for line in targets({"1M": size}) if "`eujp run`" in line]
    assert len(rows) == 2 and all("the run FAILED, exit 1" in r and "MISSED" in r for r in rows)


def test_the_whole_run_gets_the_tuning_settings_the_stepwise_child_has(monkeypatch, tmp_path):
    """`EUJP_BATCH_ROWS=50000 benchmarks.run ...` ran the stepwise child in 50k chunks and `eujp run` at the
    default (every EUJP_* variable was stripped), and the report named neither."""
    import benchmarks.run as bench

    monkeypatch.setenv("EUJP_BATCH_ROWS", "50000")
    monkeypatch.setenv("EUJP_WAREHOUSE", "/somewhere/else.duckdb")
    seen = {}

    def timed(cmd, env, work, name):
        seen[name] = env
        return {"exit_code": 1, "seconds": 0.0}

    monkeypatch.setattr(bench, "_timed_run", timed)
    bench.eujp_runs(tmp_path / "snapshot", tmp_path, keep=False)
    assert seen["first"]["EUJP_BATCH_ROWS"] == "50000" and "EUJP_WAREHOUSE" not in seen["first"]
    assert bench.tuning_settings() == {"EUJP_BATCH_ROWS": "50000"}


def test_a_bad_revision_or_a_child_without_its_folders_is_refused_before_measuring(capsys):
    from benchmarks import live_load, run

    with pytest.raises(SystemExit) as stopped:
        live_load.main(["--compare-with", "no-such-revision-anywhere"])
    assert stopped.value.code == 2 and "no such commit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        run.main(["--child", "pipeline", "--snapshot", "/nowhere"])
    assert stopped.value.code == 2 and "needs --work, --json" in capsys.readouterr().err


def test_the_day_benchmark_adds_a_later_month_after_the_years_months_before_it(tmp_path):
    """benchmarks.incremental_day.prepare with --day-month 4: the history is the 5 years' 60 Comext files and
    the sixth year's January to March (as many rows each, the same generator), the day's folder holds April
    alone (and the other sources' files); the default day is the sixth year's January over the 60 months."""
    from benchmarks.incremental_day import prepare

    rows = 60 * 400
    base, day1, first = prepare(rows, 5, tmp_path, 1)
    months = sorted(p.name for p in base.glob("comext_*.csv"))
    assert len(months) == 60 and first["history_months"] == 60 and first["day_period"] == "2025-01"
    assert [p.name for p in day1.glob("comext_*.csv")] == [months[-1].replace("2024-12", "2025-01")]
    january = (day1 / months[-1].replace("2024-12", "2025-01")).read_bytes()

    history, day, manifest = prepare(rows, 5, tmp_path, 4)
    names = sorted(p.name for p in history.glob("comext_*.csv"))
    assert history != base and names[:60] == months and len(names) == 63
    assert [n.split("_")[-1] for n in names[60:]] == ["2025-01.csv", "2025-02.csv", "2025-03.csv"]
    assert (history / names[60]).read_bytes() == january  # the month the default day adds, in the history now
    assert all((history / n).stat().st_ino == (base / n).stat().st_ino for n in months)  # linked, not copied
    assert [p.name for p in day.glob("comext_*.csv")] == [names[-1].replace("2025-03", "2025-04")]
    assert manifest["history_months"] == 63 and manifest["day_period"] == "2025-04"
    assert manifest["comext_rows"] == first["comext_rows"] + sum(
        parse_comext_csv((history / n).read_bytes()).frame.height for n in names[60:])
    others = sorted(p.name for p in day.iterdir() if not p.name.startswith("comext_"))
    assert others and all((day / n).read_bytes() == (history / n).read_bytes() for n in others)


def test_the_record_check_benchmark_parses_its_shapes_and_prints_a_ratio_for_each(capsys):
    from benchmarks.record_check import main, payload
    from eujp.parse.sdmx_csv import parse_comext_csv

    frame = parse_comext_csv(payload(400, quoted=True, empty_share=0.5, seed=3)).frame
    assert frame.height == 400 and 100 < frame.get_column("OBS_VALUE").null_count() < 300
    assert main(["--rows", "200", "--repeat", "1", "--empty-share", "0", "0.3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| plain", "| quoted"))]
    assert len(rows) == 4 and all(line.endswith("x |") for line in rows)
