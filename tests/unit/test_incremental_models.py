"""A day's models equal a full rebuild, whatever the days bring (issue 12, item 3; a property test).

`eujp.marts.build.build_models` rebuilds a model only when the run wrote one of its inputs, and a model that
declares `partition_by` (the Comext marts, by period_year) only for the years the run wrote. The fixed-shape
tests (tests/integration/test_incremental_day.py) check one new month and one new year. Here hypothesis draws
a sequence of days on the bundled warehouse, each upserting Comext facts (new months, new years, revisions of
loaded figures, new products and partners, JP and the other partners Japan is ranked among, EU aggregates)
and sometimes CN8 labels, and after each day's incremental build every model must hold exactly what its SQL
gives over the warehouse as it then stands: what a rebuild of everything would give.

The figures are whole euros and kilograms (exact in a double), so sums taken in another order are equal. They
are constructed for the test, not real.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eujp import marts
from eujp.marts import MART_CLAIMS, MODEL_TABLES
from eujp.marts.build import build_models, claims_sql
from eujp.sources import SOURCES
from eujp.tables import TABLES
from eujp.warehouse import upsert_fact, upsert_labels

pytestmark = pytest.mark.slow

COMEXT = next(s for s in SOURCES if s.name == "comext_goods")
FACTS = COMEXT.table
LABELS = COMEXT.labels.table
REPORTERS = ("DE", "FR", "EU27_2020")
# Japan, partners it is ranked among, the extra-EU aggregate the ranks need, a member state (not ranked)
PARTNERS = ("JP", "CN", "US", "EXT_EU27_2020", "FR")
# a product of the bundled data, a critical raw material (cobalt, HS 8105.20), two the warehouse lacks
PRODUCTS = ("84834030", "81052000", "01012100", "85076000")
FLOWS = ("import", "export")
# December to February across two years, and a year the bundled data do not have
MONTHS = ("2024-12", "2025-01", "2025-02", "2025-03", "2023-06")


def fact_rows(draw_rows: list[tuple]) -> pl.DataFrame:
    """The drawn rows as a batch of fact_goods_trade_product (the last of a natural key wins, as a
    transform's duplicate rules leave one row a key)."""
    by_key = {row[:5]: row for row in draw_rows}
    rows = list(by_key.values())
    return pl.DataFrame(
        {
            "reporter": [r[0] for r in rows], "partner": [r[1] for r in rows], "product_cn8": [r[2] for r in rows],
            "flow": [r[3] for r in rows], "period": [datetime.strptime(r[4], "%Y-%m").date() for r in rows],
            "period_code": [r[4] for r in rows], "value_eur": [float(r[5]) for r in rows],
            "quantity_kg": [None if r[6] is None else float(r[6]) for r in rows],
            "source": ["comext_goods"] * len(rows), "source_version": ["2025-04-15T11:00:00"] * len(rows),
        },
        schema=dict(FACTS.columns),
    )


fact_row = st.tuples(
    st.sampled_from(REPORTERS), st.sampled_from(PARTNERS), st.sampled_from(PRODUCTS), st.sampled_from(FLOWS),
    st.sampled_from(MONTHS), st.integers(0, 10**9), st.one_of(st.none(), st.integers(0, 10**7)),
)
day = st.tuples(
    st.lists(fact_row, min_size=0, max_size=25),
    st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(PRODUCTS), st.sampled_from(("a", "b"))),
                                  min_size=1, max_size=3)),
)


@pytest.fixture(scope="module")
def model_conn(bundled_warehouse, tmp_path_factory):
    """A copy of the bundled warehouse (its models built); each example runs in a transaction rolled back."""
    path = tmp_path_factory.mktemp("incremental_models") / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, path)
    with duckdb.connect(str(path)) as conn:
        yield conn


def differing_rows(conn: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rows in which model `name` differs from its query over the warehouse as it stands (both ways)."""
    table = TABLES[name]
    sql = claims_sql(conn) if table is MART_CLAIMS else marts.mart_sql(table).strip().rstrip(";")
    return conn.execute(f'SELECT count(*) FROM ((FROM "{name}" EXCEPT ALL ({sql})) UNION ALL '
                        f'(({sql}) EXCEPT ALL FROM "{name}"))').fetchone()[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=st.lists(day, min_size=1, max_size=3))
def test_each_days_models_equal_a_rebuild_of_everything(model_conn, days):
    conn = model_conn
    conn.execute("BEGIN TRANSACTION")
    try:
        for n, (rows, labels) in enumerate(days, start=1):
            run_id = f"20260{n}01T060000Z-prop{n:02d}"
            at = datetime(2026, 1, n, 6, tzinfo=UTC)
            written = set()
            batch = fact_rows(rows)
            if batch.height:
                upsert_fact(conn, FACTS, batch, run_id=run_id, loaded_at=at, source="comext_goods")
                written.add(FACTS.name)
            if labels:
                frame = pl.DataFrame(
                    {"product_code": [p for p, _ in labels], "product_label": [f"label {v} of {p}" for p, v in labels],
                     "codelist": ["ESTAT:CXT_NC(1.0)"] * len(labels)},
                ).unique("product_code", keep="last")
                upsert_labels(conn, LABELS, frame, run_id=run_id, loaded_at=at)
                written.add(LABELS.name)
            build = build_models(conn, written, run_id=run_id, now=at)
            wrong = {t.name: d for t in MODEL_TABLES if (d := differing_rows(conn, t.name))}
            assert not wrong, f"day {n}: models differ from a rebuild {wrong}; rebuilt: {build.rebuilt}"
    finally:
        conn.execute("ROLLBACK")
