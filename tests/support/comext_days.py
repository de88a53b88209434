"""Days of Comext facts drawn by hypothesis, for the property tests of what a day rebuilds and publishes
(tests/unit/test_incremental_models.py, tests/integration/test_lake.py).

A day upserts Comext fact rows (new months, a new year, revisions of loaded figures, new products and
partners: Japan, partners it is ranked among, the extra-EU aggregate, a member state; EU aggregates as
reporters) and sometimes CN8 labels, then builds the models as a run does (`build_models` with the tables the
day wrote). The figures are whole euros and kilograms (exact in a double), so sums taken in another order are
equal. They are constructed for the tests, not real.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import duckdb
import polars as pl
from hypothesis import strategies as st

from eujp.marts.build import ModelBuild, build_models
from eujp.sources import SOURCES
from eujp.warehouse import upsert_fact, upsert_labels

# Comext: the monthly fact (found through the registry; its name is written in its own room only:
# tests/unit/test_layout.py)
COMEXT = next(s for s in SOURCES if s.period_column == "period_code")
FACTS = COMEXT.table
LABELS = COMEXT.labels.table
REPORTERS = ("DE", "FR", "EU27_2020")
# Japan, partners it is ranked among, the extra-EU aggregate the ranks need, a member state (not ranked)
PARTNERS = ("JP", "CN", "US", "EXT_EU27_2020", "FR")
# a product of the bundled data, a critical raw material (cobalt, HS 8105.20), two the warehouse lacks
PRODUCTS = ("84834030", "81052000", "01012100", "85076000")
FLOWS = ("import", "export")
# December to March across two years, and a year the bundled data do not have
MONTHS = ("2024-12", "2025-01", "2025-02", "2025-03", "2023-06")


class Day(NamedTuple):
    rows: list[tuple]  # (reporter, partner, product_cn8, flow, period_code, value_eur, quantity_kg or None)
    labels: list[tuple[str, str]] | None  # (product_code, a label variant) of a codelist fetched that day


fact_row = st.tuples(
    st.sampled_from(REPORTERS), st.sampled_from(PARTNERS), st.sampled_from(PRODUCTS), st.sampled_from(FLOWS),
    st.sampled_from(MONTHS), st.integers(0, 10**9), st.one_of(st.none(), st.integers(0, 10**7)),
)
labels = st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(PRODUCTS), st.sampled_from(("a", "b"))),
                                        min_size=1, max_size=3))


@st.composite
def days(draw) -> list[Day]:
    """One to three days; a day after the first is at times a revision of some of the day before's figures
    only (the same keys, other values): its months keep their row counts, only the figures and run ids
    change."""
    drawn: list[Day] = []
    for _ in range(draw(st.integers(1, 3))):
        before = drawn[-1].rows if drawn else []
        if before and draw(st.booleans()):
            revised = draw(st.lists(st.sampled_from(before), min_size=1, max_size=len(before)))
            rows = [(*r[:5], r[5] + draw(st.integers(1, 10**6)), r[6]) for r in revised]
        else:
            rows = draw(st.lists(fact_row, max_size=25))
        drawn.append(Day(rows, draw(labels)))
    return drawn


def fact_batch(rows: list[tuple]) -> pl.DataFrame:
    """The rows as a batch of the Comext fact table (the last of a natural key wins, as the transform's
    duplicate rules leave one row a key)."""
    kept = list({row[:5]: row for row in rows}.values())
    return pl.DataFrame(
        {
            "reporter": [r[0] for r in kept], "partner": [r[1] for r in kept], "product_cn8": [r[2] for r in kept],
            "flow": [r[3] for r in kept], "period": [datetime.strptime(r[4], "%Y-%m").date() for r in kept],
            "period_code": [r[4] for r in kept], "value_eur": [float(r[5]) for r in kept],
            "quantity_kg": [None if r[6] is None else float(r[6]) for r in kept],
            "source": [COMEXT.name] * len(kept), "source_version": ["2025-04-15T11:00:00"] * len(kept),
        },
        schema=dict(FACTS.columns),
    )


def day_run_id(n: int) -> str:
    """The run id of day `n` (1, 2, ...)."""
    return f"202601{n:02d}T060000Z-day{n:03d}"


def run_day(conn: duckdb.DuckDBPyConnection, day: Day, n: int) -> tuple[set[str], ModelBuild]:
    """Day `n` (1, 2, ...) loaded and its models built, under `day_run_id(n)`: (the tables it wrote, what
    build_models did)."""
    run_id = day_run_id(n)
    at = datetime(2026, 1, n, 6, tzinfo=UTC)
    written: set[str] = set()
    batch = fact_batch(day.rows)
    if batch.height:
        upsert_fact(conn, FACTS, batch, run_id=run_id, loaded_at=at, source=COMEXT.name)
        written.add(FACTS.name)
    if day.labels:
        labels = pl.DataFrame({
            "product_code": [p for p, _ in day.labels],
            "product_label": [f"label {variant} of {p}" for p, variant in day.labels],
            "codelist": ["ESTAT:CXT_NC(1.0)"] * len(day.labels),
        }).unique("product_code", keep="last", maintain_order=True)
        upsert_labels(conn, LABELS, labels, run_id=run_id, loaded_at=at)
        written.add(LABELS.name)
    return written, build_models(conn, written, run_id=run_id, now=at)
