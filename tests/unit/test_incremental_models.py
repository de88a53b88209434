"""A day's models equal a full rebuild, whatever the days bring (issue 12, item 3; a property test).

`eujp.marts.build.build_models` rebuilds a model only when the run wrote one of its inputs, and a model that
declares `partition_by` (the Comext marts, by period_year) only for the years the run wrote. The fixed-shape
tests (tests/integration/test_incremental_day.py) check one new month and one new year. Here hypothesis draws
a sequence of days on the bundled warehouse (tests/support/comext_days.py: Comext facts of new months, a new
year, revised figures, new products and partners, and sometimes CN8 labels), and after each day's incremental
build every model must hold exactly what its SQL gives over the warehouse as it then stands: what a rebuild
of everything would give. A day of facts alone rebuilds the partitioned marts for the years it wrote only,
and dim_product only when it brings a CN8 code dim_product does not hold (its `depends_on_values`).
"""

from __future__ import annotations

import shutil

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from support.comext_days import FACTS, run_day
from support.comext_days import days as comext_days
from support.relations import model_rows_differing

from eujp.marts import MODEL_TABLES, MODELS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_conn(bundled_warehouse, tmp_path_factory):
    """A copy of the bundled warehouse (its models built); each example runs in a transaction rolled back."""
    path = tmp_path_factory.mktemp("incremental_models") / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, path)
    with duckdb.connect(str(path)) as conn:
        yield conn


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=comext_days())
def test_each_days_models_equal_a_rebuild_of_everything(model_conn, days):
    conn = model_conn
    conn.execute("BEGIN TRANSACTION")
    try:
        for n, day in enumerate(days, start=1):
            held = {r[0] for r in conn.execute("SELECT product_code FROM dim_product WHERE product_level = 'CN8'"
                                               ).fetchall()}
            written, build = run_day(conn, day, n)
            wrong = {t.name: d for t in MODEL_TABLES if (d := model_rows_differing(conn, t.name))}
            assert not wrong, f"day {n}: models differ from a rebuild {wrong}; rebuilt: {build.rebuilt}"
            if written == {FACTS.name}:  # facts only: the partitioned marts rebuild the years the day wrote
                # and dim_product (depends_on_values) only for a CN8 code it did not hold: else it is kept
                new_codes = {row[2] for row in day.rows} - held
                assert ("dim_product" in build.rebuilt) == bool(new_codes), (n, new_codes, build.rebuilt)
                years = sorted({int(row[4][:4]) for row in day.rows})
                for name, model in MODELS.items():
                    if model.partition is not None:
                        assert build.rebuilt[name].endswith(f"period_year {', '.join(map(str, years))} only"), \
                            (n, name, build.rebuilt[name], years)
    finally:
        conn.execute("ROLLBACK")
