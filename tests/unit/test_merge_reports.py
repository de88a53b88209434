"""A table validated in chunks (a streamed source) gets one report equal, expectation by expectation, to the
report of the whole frame: success, counts and percentages (eujp.validate.merge_reports)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from eujp.tables import TABLES
from eujp.validate import merge_reports, validate_frame

TABLE = "fact_goods_trade_product"


def frame(values: list[float], quantities: list[float | None]) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame({
        "reporter": ["DE"] * n, "partner": ["JP"] * n, "product_cn8": [f"{84834000 + i:08d}" for i in range(n)],
        "flow": ["import"] * n, "period": [date(2025, 1, 1)] * n, "period_code": ["2025-01"] * n,
        "value_eur": values, "quantity_kg": quantities, "source": ["x"] * n, "source_version": [None] * n,
    }, schema=TABLES[TABLE].business_columns)


@pytest.mark.parametrize("cut", [1, 3, 5])
def test_chunk_reports_merge_into_the_whole_frames_report(cut):
    whole = frame([1.0, -2.0, 3.0, 4.0, -5.0, 6.0], [1.0, None, 2.0, -1.0, 3.0, 4.0])
    expected = validate_frame(TABLE, whole)
    merged = merge_reports([validate_frame(TABLE, whole.head(cut)), validate_frame(TABLE, whole.tail(6 - cut))])
    assert not expected.success and merged.success == expected.success
    assert merged.row_count == expected.row_count == 6
    for got, want in zip(merged.outcomes, expected.outcomes, strict=True):
        assert (got.label, got.success, got.unexpected_count, got.element_count) == (
            want.label, want.success, want.unexpected_count, want.element_count), want.label
        assert got.unexpected_percent == pytest.approx(want.unexpected_percent)
    assert [o.label for o in merged.critical_failures] == [o.label for o in expected.critical_failures]
    with pytest.raises(Exception, match="critical expectation"):
        merged.raise_for_critical()


def test_the_row_count_expectation_is_judged_on_the_total():
    empty, some = frame([], []), frame([1.0], [1.0])
    alone = validate_frame(TABLE, empty)
    assert [o.success for o in alone.outcomes if o.expectation_type == "expect_table_row_count_to_be_between"] == [False]
    merged = merge_reports([alone, validate_frame(TABLE, some)])
    assert [o.success for o in merged.outcomes if o.expectation_type == "expect_table_row_count_to_be_between"] == [True]
