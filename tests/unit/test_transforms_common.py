"""Helpers every transform shares (transforms/common.py)."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.common import format_text, matches_by_value, split_by_keys, split_duplicates


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


def split_duplicates_by_hand(rows: list[dict], key: list[str], ignore: tuple[str, ...]):
    """The rule split_duplicates states, row by row in Python: a key whose rows differ (outside `ignore`)
    sends all of them to the duplicates, naming the columns that differ; otherwise the first copy is kept."""
    compare = [c for c in rows[0] if c not in ignore] if rows else []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in key), []).append(r)
    kept, dupes, seen = [], [], set()
    for r in rows:
        group = groups[tuple(r[k] for k in key)]
        text = ", ".join(f"{k}='{'<null>' if r[k] is None else r[k]}'" for k in key)
        if len({tuple(g[c] for c in compare) for g in group}) > 1:
            differ = ", ".join(c for c in compare if c not in key and len({g[c] for g in group}) > 1)
            dupes.append({**r, "reason": f"conflicting rows for natural key {text}: {len(group)} rows differ in "
                                         f"{differ}"})
        elif tuple(r[k] for k in key) in seen:
            dupes.append({**r, "reason": f"exact duplicate of an earlier row with natural key {text}"})
        else:
            seen.add(tuple(r[k] for k in key))
            kept.append(r)
    return kept, dupes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from(["x", "y"]),
                          st.sampled_from([1, 2, None]), st.sampled_from(["p", "q"])), max_size=12))
def test_split_duplicates_follows_its_rule_row_by_row(values):
    """Any frame: exact copies (the `note` column ignored) keep their first row, conflicting keys lose every
    row, the reasons name the key, the row count and the differing columns, and both frames keep row order."""
    frame = pl.DataFrame(
        {"row": list(range(len(values))), "k1": [v[0] for v in values], "k2": [v[1] for v in values],
         "v": [v[2] for v in values], "note": [v[3] for v in values]},
        schema={"row": pl.Int64, "k1": pl.String, "k2": pl.String, "v": pl.Int64, "note": pl.String})
    kept, dupes = split_duplicates(frame, ("k1", "k2"), ignore=("row", "note"))
    want_kept, want_dupes = split_duplicates_by_hand(frame.to_dicts(), ["k1", "k2"], ("row", "note"))
    assert kept.to_dicts() == want_kept
    assert dupes.to_dicts() == want_dupes


_KEY_CODES = st.sampled_from(["a", "b", "c", None])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_KEY_CODES, _KEY_CODES), max_size=30), st.lists(st.tuples(_KEY_CODES, _KEY_CODES), max_size=6))
def test_split_by_keys_gives_what_a_semi_and_an_anti_join_give(rows, keys):
    """The Comext transform's look-up of a few keys in a large chunk: the same rows, in the same order, as the
    two joins it replaced (a null in the key matches nothing, also against a null key)."""
    frame = pl.DataFrame({"k1": [r[0] for r in rows], "k2": [r[1] for r in rows], "row": list(range(len(rows)))},
                         schema={"k1": pl.String, "k2": pl.String, "row": pl.Int64})
    key_frame = pl.DataFrame({"k1": [k[0] for k in keys], "k2": [k[1] for k in keys]},
                             schema={"k1": pl.String, "k2": pl.String})
    matching, others = split_by_keys(frame, key_frame, ("k1", "k2"))
    join = {"on": ["k1", "k2"], "maintain_order": "left"}
    assert matching.equals(frame.join(key_frame, how="semi", **join))
    assert others.equals(frame.join(key_frame, how="anti", **join))


def test_split_by_keys_of_a_null_key_matches_nothing():
    frame = pl.DataFrame({"k": ["a", None, "b", "a"], "row": [0, 1, 2, 3]})
    matching, others = split_by_keys(frame, pl.DataFrame({"k": ["a", None]}), ["k"])
    assert matching["row"].to_list() == [0, 3]
    assert others["row"].to_list() == [1, 2]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["2024-01", "2024-13", "2024", "84834030", "8483403", ""]),
                          st.text(alphabet="0123456789-", max_size=9)), max_size=30),
       st.sampled_from([r"^[0-9]{4}-(0[1-9]|1[0-2])$", r"^[0-9]{4}$", r"^[0-9]{8}$"]))
def test_matches_by_value_is_the_regex_row_by_row(values, regex):
    """The Comext rules judge a column's form on its distinct values: the same verdict per row as the regex run
    on every row (a null never matches), whether all, none or some of the values match."""
    frame = pl.DataFrame({"code": values}, schema={"code": pl.String})
    judged = frame.select(matches_by_value(frame.get_column("code").unique(), regex).alias("m"))
    expected = frame.select(pl.col("code").str.contains(regex).fill_null(False).alias("m"))
    assert judged.get_column("m").to_list() == expected.get_column("m").to_list()
