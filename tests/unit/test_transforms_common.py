"""Helpers every transform shares (transforms/common.py)."""

from __future__ import annotations

import polars as pl
import pytest

from transforms.common import format_text, split_duplicates


def empty_first_chunk(values: list) -> pl.DataFrame:
    """A one-column frame whose column's first chunk is empty, as a filter leaves a chunk with no row kept
    (a streamed chunk concatenates payload pieces)."""
    column = pl.Series("a", values[:1]).append(pl.Series("a", values[1:]))
    frame = pl.DataFrame([column]).filter(pl.Series([False] + [True] * (len(values) - 1)))
    assert [len(c) for c in frame["a"].get_chunks()] == [0, len(values) - 1]
    return frame


def test_split_duplicates():
    frame = pl.DataFrame({"row": [0, 1, 2, 3, 4], "k": ["a", "a", "b", "b", "c"], "v": [1, 1, 2, 3, None]})
    kept, dupes = split_duplicates(frame, ("k",), ignore=("row",))
    assert kept["row"].to_list() == [0, 4]
    assert dupes["row"].to_list() == [1, 2, 3]
    assert dupes["reason"].to_list() == [
        "exact duplicate of an earlier row with natural key k='a'",
        "conflicting rows for natural key k='b': 2 rows differ in v",
        "conflicting rows for natural key k='b': 2 rows differ in v",
    ]
    kept_all, none = split_duplicates(frame, ())
    assert kept_all.equals(frame) and none.is_empty()


@pytest.mark.parametrize("values", [["x", "y", "z"], [1, 2, 3]])
def test_format_text_reads_a_column_whose_first_chunk_is_empty(values):
    """polars 2.1's `pl.format` panics on it (why format_text exists: if this stops failing, polars is fixed
    and format_text can go)."""
    frame = empty_first_chunk(values)
    assert frame.select(format_text("a={}!", "a")).to_series().to_list() == [f"a={v}!" for v in values[1:]]
    with pytest.raises(BaseException, match="i < self.len"):
        frame.select(pl.format("a={}!", "a"))


def test_format_text_means_what_pl_format_means():
    frame = pl.DataFrame({"a": ["x", None, "z"], "n": [1, 2, None]})
    for template, args in [("{}", ["a"]), ("{} and {}", ["a", pl.col("n")]), ("<{}>", [pl.col("n") * 2]),
                           ("no placeholder", []), ("{}{}", ["a", "a"])]:
        got = frame.select(format_text(template, *args).alias("t")).to_series().to_list()
        want = frame.select(pl.format(template, *args).alias("t")).to_series().to_list()
        assert got == want, template
    with pytest.raises(ValueError, match="2 placeholder"):
        format_text("{} {}", "a")


def test_split_duplicates_of_rows_whose_first_chunk_is_empty():
    frame = empty_first_chunk(["x", "y", "y"]).with_columns(pl.Series("v", [1, 2]))
    kept, dupes = split_duplicates(frame, ("a",))
    assert kept.is_empty()
    assert dupes["reason"].to_list() == ["conflicting rows for natural key a='y': 2 rows differ in v"] * 2
