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


def test_a_merged_failure_names_every_chunks_values_and_data_docs_show_the_merged_counts():
    # periods before 1988 in the first and the second chunk: one message, of the whole frame's counts and values
    whole = frame([1.0, 2.0, -3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).with_columns(period=pl.Series(
        [date(1987, 2, 1), date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 1), date(1987, 6, 1), date(1987, 6, 1)]))
    expected = validate_frame(TABLE, whole)
    merged = merge_reports([validate_frame(TABLE, whole.head(2)), validate_frame(TABLE, whole.tail(4))])
    for got, want in zip(merged.outcomes, expected.outcomes, strict=True):
        assert got.message == want.message, want.label
    (period,) = [o for o in merged.outcomes if o.label == "expect_column_values_to_be_between(period)"]
    assert period.message == "failed on 3 of 6 rows; unexpected values: '1987-02-01', '1987-06-01'"
    # the GX result Data Docs render: the whole frame's counts, percentages, values and row positions
    for got, want in zip(merged.gx_result.results, expected.gx_result.results, strict=True):
        assert got.success == want.success
        assert got.result.keys() == want.result.keys(), want.expectation_config.type
        for key in ("element_count", "unexpected_count", "missing_count", "partial_unexpected_list",
                    "partial_unexpected_index_list", "partial_unexpected_counts"):
            assert got.result.get(key) == want.result.get(key), (want.expectation_config.type, key)
        for key in ("unexpected_percent", "missing_percent", "unexpected_percent_total"):
            assert got.result.get(key) == pytest.approx(want.result.get(key)), key
    assert merged.gx_result.statistics == expected.gx_result.statistics
