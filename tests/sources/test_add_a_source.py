"""Adding a source is one source module, one transform, one suite and one test folder: an extra source declared
in a temporary module (outside the repository) is registered through EUJP_SOURCE_MODULES and runs through the
whole pipeline (`eujp run`: extract from a snapshot folder, land, parse, transform, validate, load, audit,
publish) without any file of the repository being touched.

The source's data are a test fixture written here, not real figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# The source module a newcomer writes (docs/add-a-source.md walks through the same pieces). Its transform
# lives in the module here so that the whole source sits in one temporary folder; in the repository it would
# be transforms/<source>.py.
SOURCE_MODULE = '''
"""A test source: yearly values by HS chapter from a small CSV (a fixture, not real data)."""

from pathlib import Path

import polars as pl

from eujp.parse import ParsedPayload, check_columns, read_text_csv
from eujp.schema import Table
from eujp.sources.base import Source
from transforms.common import TransformResult, reject

COLUMNS = {"period_year": pl.Int32(), "hs2": pl.String(), "flow": pl.String(), "value_jpy": pl.Float64(),
           "source": pl.String(), "source_version": pl.String()}
NATURAL_KEY = ("period_year", "hs2", "flow")
WIRE = ["year", "hs2", "flow", "value_jpy"]


def parse(data: bytes) -> ParsedPayload:
    frame = read_text_csv(data.decode("utf-8"), "fixture_customs")
    check_columns("fixture_customs", frame.columns, WIRE, WIRE, extra_word="unexpected")
    return ParsedPayload(frame=frame, source_version="fixture-1")


def transform(wire: pl.DataFrame, source_name: str, source_version, countries: pl.DataFrame) -> TransformResult:
    value = pl.col("value_jpy").cast(pl.Float64, strict=False)
    bad = value.is_null() | (value < 0)
    valid = wire.filter(~bad).select(
        pl.col("year").cast(pl.Int32).alias("period_year"), "hs2", "flow", value.alias("value_jpy"),
        pl.lit(source_name).alias("source"), pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ).cast(COLUMNS)
    return TransformResult(valid=valid, rejected=reject(wire.filter(bad), "value_jpy is not a non-negative number"))


TABLE = Table(
    name="fact_fixture_customs",
    description="Yearly values by HS chapter (test fixture).",
    columns=COLUMNS,
    natural_key=NATURAL_KEY,
    column_docs={"value_jpy": "Value in yen."},
)

SOURCE = Source(
    name="fixture_customs",
    domain="trade",
    table=TABLE,
    wire_format="CSV (test fixture)",
    parse=parse,
    transform=transform,
    snapshot_glob="fixture_customs*.csv",
    extension="csv",
    cadence_days=31,
    description="A test source added from a module outside the repository",
    period_column="period_year",
    suite=Path(__file__).with_name("fact_fixture_customs.json"),
)
'''

SUITE = {
    "name": "fact_fixture_customs",
    "expectations": [
        {"type": "expect_table_columns_to_match_ordered_list", "severity": "critical", "meta": {}, "notes": None,
         "kwargs": {"column_list": ["period_year", "hs2", "flow", "value_jpy", "source", "source_version"]}},
        {"type": "expect_column_values_to_not_be_null", "severity": "critical", "meta": {}, "notes": None,
         "kwargs": {"column": "value_jpy"}},
        {"type": "expect_compound_columns_to_be_unique", "severity": "critical", "meta": {}, "notes": None,
         "kwargs": {"column_list": ["period_year", "hs2", "flow"]}},
        {"type": "expect_column_values_to_be_in_set", "severity": "critical", "meta": {}, "notes": None,
         "kwargs": {"column": "flow", "value_set": ["export", "import"]}},
    ],
    "meta": {},
    "notes": None,
}

SNAPSHOT = "year,hs2,flow,value_jpy\n2024,84,export,1500.5\n2024,84,import,900\n2024,87,export,-3\n"


def _written_since(start: float) -> list[str]:
    """Files of the repository's code, suites and data written after `start` (bytecode caches aside)."""
    return sorted(str(p.relative_to(REPO_ROOT)) for folder in ("eujp", "transforms", "flows", "expectations", "data")
                  for p in (REPO_ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.stat().st_mtime >= start)


@pytest.mark.slow
def test_a_source_from_one_module_runs_through_the_pipeline(tmp_path):
    module_dir, snapshot = tmp_path / "plugin", tmp_path / "snapshot"
    module_dir.mkdir()
    snapshot.mkdir()
    (module_dir / "fixture_customs_source.py").write_text(textwrap.dedent(SOURCE_MODULE), encoding="utf-8")
    (module_dir / "fact_fixture_customs.json").write_text(json.dumps(SUITE), encoding="utf-8")
    (snapshot / "fixture_customs_2024.csv").write_text(SNAPSHOT, encoding="utf-8")
    warehouse, store = tmp_path / "var" / "warehouse.duckdb", tmp_path / "store"
    start = time.time()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "EUJP_"))}
    env |= {"EUJP_SOURCE_MODULES": "fixture_customs_source",
            # One of its three rows is rejected on purpose; the per-source threshold variable follows its name.
            "EUJP_MAX_REJECTED_PCT_FIXTURE_CUSTOMS": "50",
            "PYTHONPATH": os.pathsep.join([str(module_dir), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    listed = subprocess.run([sys.executable, "-c", ("from eujp.sources import SOURCES; "
                             "print(' '.join(s.name for s in SOURCES))")],
                            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "fixture_customs" in listed.stdout.split()

    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--only", "fixture_customs", "--snapshot-dir", str(snapshot),
         "--warehouse", str(warehouse), "--publish", str(store), "--run-id", "20261130T060000Z-plugin"],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute("SELECT period_year, hs2, flow, value_jpy, source FROM fact_fixture_customs "
                            "ORDER BY hs2, flow").fetchall()
        assert rows == [(2024, "84", "export", 1500.5, "fixture_customs"),
                        (2024, "84", "import", 900.0, "fixture_customs")]
        run = conn.execute("SELECT status, rows_in, rows_loaded, rows_rejected FROM etl_runs "
                           "WHERE source = 'fixture_customs'").fetchall()
        assert run == [("success", 3, 2, 1)]
        rejected = conn.execute("SELECT reason FROM etl_rejected_rows WHERE source = 'fixture_customs'").fetchall()
        assert rejected == [("value_jpy is not a non-negative number",)]
        state = conn.execute("SELECT newest_period FROM etl_source_state WHERE source = 'fixture_customs'").fetchone()
        assert state == ("2024",)
    latest = json.loads((store / "latest.json").read_text())
    manifest = json.loads((store / latest["prefix"] / "manifest.json").read_text())
    assert manifest["sources"]["fixture_customs"]["rows_written"] == 2
    assert manifest["tables"]["fact_fixture_customs"]["rows"] == 2
    assert (store / latest["prefix"] / "parquet" / "fact_fixture_customs.parquet").is_file()
    assert _written_since(start) == [], "registering and running the source wrote files of the repository"
