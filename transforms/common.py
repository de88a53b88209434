"""Shared pieces of the pure transforms."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

REJECTED_SCHEMA = {"reason": pl.String(), "raw_record": pl.String()}


@dataclass
class TransformResult:
    """`valid` has exactly the target table's business columns; `rejected` has `reason` and
    `raw_record` (the input row as a JSON object). len(valid) + len(rejected) == rows in."""

    valid: pl.DataFrame
    rejected: pl.DataFrame

    @property
    def rows_in(self) -> int:
        return self.valid.height + self.rejected.height


def empty_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_SCHEMA)


def reject(frame: pl.DataFrame, reason: str | pl.Expr) -> pl.DataFrame:
    """Turn wire rows into quarantine rows: a reason and the row's raw values as JSON."""
    if frame.is_empty():
        return empty_rejected()
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.select(
        reason_expr.cast(pl.String).alias("reason"),
        pl.struct(pl.all()).struct.json_encode().alias("raw_record"),
    )


def split_duplicates(
    frame: pl.DataFrame, natural_key: tuple[str, ...] | list[str], *, ignore: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Resolve rows sharing a natural key: returns (kept, duplicates).

    * Rows identical in every column (except the bookkeeping columns in `ignore`, e.g. a row index) are exact
      duplicates: the first occurrence is kept, the other copies go to `duplicates`.
    * Rows sharing a key but differing in any other column conflict: all of them go to `duplicates`, because
      nothing says which one is right.

    `duplicates` has `frame`'s columns plus `reason` (naming the key values and, for conflicts, the columns that
    differ). Row order is preserved in both frames. An empty `natural_key` keeps everything.
    """
    key = list(natural_key)
    if not key or frame.is_empty():
        return frame, frame.clear().with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
    compare = [c for c in frame.columns if c not in ignore]
    others = [c for c in compare if c not in key]
    key_text = pl.concat_str(
        [pl.format(f"{k}='{{}}'", pl.col(k).cast(pl.String).fill_null("<null>")) for k in key], separator=", "
    )
    differing = pl.concat_str(
        [pl.when(pl.struct(c).n_unique().over(key) > 1).then(pl.lit(c)) for c in others] or [pl.lit("")],
        separator=", ", ignore_nulls=True,
    )
    marked = frame.with_columns(
        __conflict=pl.struct(compare).n_unique().over(key) > 1,
        __copy=pl.int_range(pl.len()).over(compare),
        __n=pl.len().over(key),
    )
    reason = (
        pl.when(pl.col("__conflict"))
        .then(pl.format("conflicting rows for natural key {}: {} rows differ in {}", key_text, pl.col("__n"),
                        differing))
        .otherwise(pl.format("exact duplicate of an earlier row with natural key {}", key_text))
    )
    is_dup = pl.col("__conflict") | (pl.col("__copy") > 0)
    helpers = ["__conflict", "__copy", "__n"]
    kept = marked.filter(~is_dup).drop(helpers)
    duplicates = marked.filter(is_dup).with_columns(reason.alias("reason")).drop(helpers)
    return kept, duplicates
