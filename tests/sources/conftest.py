"""Fixtures of the per-source tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from support.transform_helpers import trade_countries


@pytest.fixture(scope="module")
def countries() -> pl.DataFrame:
    """A small dim_country for the trade transforms (tests/support/transform_helpers.py)."""
    return trade_countries()


# --- bad input through the pipeline steps (tests/support/pipeline_steps.py) -------------------------------

@pytest.fixture(scope="session")
def good_warehouse(tmp_path_factory) -> Path:
    """A warehouse loaded from the bundled snapshot of every source, with the pipeline steps."""
    from support.pipeline_steps import run_steps, snapshot_payloads

    from eujp.sources import SOURCES

    wh = tmp_path_factory.mktemp("good") / "warehouse.duckdb"
    batches = run_steps(wh, {s.name: snapshot_payloads(s.name) for s in SOURCES},
                        run_id="20261124T060000Z-good01")
    assert all(b.status == "loaded" for b in batches.values()), [b.error for b in batches.values()]
    return wh


@pytest.fixture
def warehouse(good_warehouse, tmp_path) -> Path:
    """A copy of the good warehouse to run bad input into."""
    wh = tmp_path / "var" / "warehouse.duckdb"
    wh.parent.mkdir()
    shutil.copyfile(good_warehouse, wh)
    return wh
