"""Eurostat ext_lt_maineu JSON-stat rows -> fact_goods_trade (vectorised polars, no per-row Python).

Every wire row ends up either in a valid fact row or in `rejected` with a reason naming the column and the
code; nothing is dropped silently, out-of-scope rows included.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.common import (
    SuiteRule,
    TransformResult,
    check_wire_columns,
    format_text,
    not_in,
    one_of,
    text,
)
from transforms.jsonstat import PERIOD_YEAR, finish_jsonstat, jsonstat_common_rules

GOODS_ANNUAL_DIMENSIONS: tuple[str, ...] = ("freq", "indic_et", "sitc06", "partner", "geo", "time")
GOODS_INDICATOR_FLOWS: dict[str, str] = {"MIO_EXP_VAL": "export", "MIO_IMP_VAL": "import", "MIO_BAL_VAL": "balance"}
# EU aggregates ext_lt_maineu publishes figures for (fact_goods_trade.reporter).
GOODS_REPORTERS: tuple[str, ...] = ("EU15", "EU27_2007", "EU28", "EU27_2020")
# An export or an import is a non-negative figure (a balance may be negative).
NON_NEGATIVE_FLOWS: tuple[str, ...] = ("export", "import")
NON_NEGATIVE = SuiteRule("expect_column_values_to_be_between", "value_mio_eur",
                         {"min_value": 0, "row_condition": {"parameter": NON_NEGATIVE_FLOWS}})
# The rules of fact_goods_trade's critical expectations on a row's own values, written here once (eujp.suites
# writes them into the table's suite): the transform rejects a row that breaks one.
SUITE_RULES = (PERIOD_YEAR, one_of("reporter", GOODS_REPORTERS), one_of("flow", GOODS_INDICATOR_FLOWS.values()),
               NON_NEGATIVE)

# The output: fact_goods_trade's business columns (declared with their docs in eujp/sources/eurostat_goods.py).
COLUMNS: dict[str, pl.DataType] = {
    "reporter": pl.String(), "partner": pl.String(), "flow": pl.String(), "period_year": pl.Int32(),
    "value_mio_eur": pl.Float64(), "obs_status": pl.String(), "source": pl.String(), "source_version": pl.String(),
}
NATURAL_KEY: tuple[str, ...] = ("reporter", "partner", "flow", "period_year")


def transform_goods_annual(
    wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame, *,
    fetched_on: date | None = None,
) -> TransformResult:
    """ext_lt_maineu JSON-stat rows (freq, indic_et, sitc06, partner, geo, time, value, status) ->
    fact_goods_trade.

    Loaded: freq A, sitc06 TOTAL, indic_et MIO_EXP_VAL/MIO_IMP_VAL/MIO_BAL_VAL (-> export/import/balance).
    Rejected, with the reason: other freq / sitc06 / indicators ("out of scope ..."), geo not one of
    GOODS_REPORTERS, partner not a dim_country eurostat_code, time not a year of PERIOD_YEAR, a negative
    export or import value (NON_NEGATIVE), a null value
    ("missing value (status c)"), and duplicated natural keys (transforms.common.split_duplicates:
    one copy of identical rows is kept, all copies of conflicting rows are quarantined).
    """
    check_wire_columns(wire, (*GOODS_ANNUAL_DIMENSIONS, "value", "status"), source_name)
    rules = [
        (pl.col("freq").ne_missing("A"), format_text("out of scope freq {} (only A is loaded)", text("freq"))),
        (pl.col("sitc06").ne_missing("TOTAL"),
         format_text("out of scope sitc06 {} (only TOTAL is loaded)", text("sitc06"))),
        (not_in("indic_et", GOODS_INDICATOR_FLOWS),
         format_text("out of scope indicator {} (only {} are loaded)", text("indic_et"),
                     pl.lit(", ".join(GOODS_INDICATOR_FLOWS)))),
        *jsonstat_common_rules(countries, GOODS_REPORTERS),
        (pl.col("indic_et").replace_strict(GOODS_INDICATOR_FLOWS, default=None).is_in(NON_NEGATIVE_FLOWS)
         & NON_NEGATIVE.broken(pl.col("value")),
         format_text("value_mio_eur {} of an {} is negative", text("value"),
                     pl.col("indic_et").replace_strict(GOODS_INDICATOR_FLOWS, default=None))),
    ]
    business = [
        pl.col("geo").alias("reporter"),
        pl.col("indic_et").replace_strict(GOODS_INDICATOR_FLOWS, return_dtype=pl.String).alias("flow"),
        pl.col("time").cast(pl.Int32).alias("period_year"),
        pl.col("value").alias("value_mio_eur"),
        pl.col("status").alias("obs_status"),
        pl.lit(source_name, dtype=pl.String).alias("source"),
        pl.lit(source_version, dtype=pl.String).alias("source_version"),
    ]
    return finish_jsonstat(wire, rules, business, COLUMNS, NATURAL_KEY, GOODS_ANNUAL_DIMENSIONS)
