"""Helpers every transform shares (transforms/common.py)."""

from __future__ import annotations

import polars as pl

from transforms.common import split_duplicates


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
