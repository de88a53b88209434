"""Shared pieces of the pure transforms."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import polars as pl

YEAR_PATTERN = r"^[0-9]{4}$"  # a four-digit year
REJECTED_SCHEMA = {"reason": pl.String(), "raw_record": pl.String()}


@dataclass
class TransformResult:
    """`valid` has exactly the target table's business columns; `rejected` has `reason` and
    `raw_record` (the input row as a JSON object). len(valid) + len(rejected) == rows in.

    `rows_in` counts WIRE rows. When a transform merges several wire rows into one fact row (Comext:
    the VALUE_IN_EUROS and QUANTITY_IN_100KG rows of one product/month become one row), it sets
    `valid_wire_rows` to the number of wire rows the valid rows were built from; then
    rows_in == valid_wire_rows + len(rejected) == wire rows read. None means one wire row per valid row.

    `conflicts` holds the natural keys (the table's key columns) that the payload carried more than once with
    different content: every version of them is in `rejected`, and none in `valid`. The loader never deletes
    the row such a key had before (eujp.warehouse.upsert_fact, `keep`), whatever the source's replace scope:
    nothing says which new version is right, so the previous one stays. None: no conflict.
    """

    valid: pl.DataFrame
    rejected: pl.DataFrame
    valid_wire_rows: int | None = None
    conflicts: pl.DataFrame | None = None

    @property
    def rows_in(self) -> int:
        consumed = self.valid.height if self.valid_wire_rows is None else self.valid_wire_rows
        return consumed + self.rejected.height


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


CONFLICT_REASON = "conflicting rows for natural key"  # how split_duplicates' reason for a conflict starts


def conflicting_keys(duplicates: pl.DataFrame, natural_key: Sequence[str],
                     dtypes: dict[str, pl.DataType] | None = None) -> pl.DataFrame | None:
    """The distinct natural keys of the conflicts among `split_duplicates`' `duplicates` (exact copies are not
    conflicts: one of them is kept), cast to `dtypes` (the table's) where given; None when there is none."""
    if duplicates.is_empty():
        return None
    keys = (duplicates.filter(pl.col("reason").str.starts_with(CONFLICT_REASON))
            .select(list(natural_key)).unique(maintain_order=True))
    if dtypes:
        keys = keys.cast({k: dtypes[k] for k in natural_key})
    return keys if keys.height else None


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
        .then(pl.format(CONFLICT_REASON + " {}: {} rows differ in {}", key_text, pl.col("__n"),
                        differing))
        .otherwise(pl.format("exact duplicate of an earlier row with natural key {}", key_text))
    )
    is_dup = pl.col("__conflict") | (pl.col("__copy") > 0)
    helpers = ["__conflict", "__copy", "__n"]
    kept = marked.filter(~is_dup).drop(helpers)
    duplicates = marked.filter(is_dup).with_columns(reason.alias("reason")).drop(helpers)
    return kept, duplicates


# --------------------------------------------------------------------------- shared by the trade transforms


def text(column: str) -> pl.Expr:
    """A column as text for reason messages: nulls shown as 'null'."""
    return pl.col(column).cast(pl.String).fill_null("null")


def key_label(columns: Sequence[str]) -> pl.Expr:
    """'reporter=EU27_2020, partner=JP, ...': a natural key's values, for reason messages."""
    return pl.concat_str([pl.concat_str(pl.lit(f"{c}="), text(c)) for c in columns], separator=", ")


def first_reason(rules: Sequence[tuple[pl.Expr, str | pl.Expr]]) -> pl.Expr:
    """The message of the first rule whose condition holds, else null.

    A condition that evaluates to null counts as not holding, so write conditions that are true for
    null inputs where null is an error (`ne_missing`, `is_in(...).not_()` on `fill_null`).
    """
    if not rules:
        return pl.lit(None, dtype=pl.String)
    (condition, message), *rest = rules
    chain = pl.when(condition.fill_null(False)).then(_as_expr(message))
    for condition, message in rest:
        chain = chain.when(condition.fill_null(False)).then(_as_expr(message))
    return chain.otherwise(pl.lit(None, dtype=pl.String))


def _as_expr(message: str | pl.Expr) -> pl.Expr:
    return pl.lit(message, dtype=pl.String) if isinstance(message, str) else message.cast(pl.String)


def not_in(column: str, allowed: Collection[str] | pl.Series) -> pl.Expr:
    """True when the column's value is null or not among `allowed`."""
    values = allowed if isinstance(allowed, pl.Series) else pl.Series(sorted(allowed), dtype=pl.String)
    return ~pl.col(column).is_in(values.implode()).fill_null(False)


def quarantine(frame: pl.DataFrame, reason: str | pl.Expr, raw: Sequence[str | pl.Expr]) -> pl.DataFrame:
    """Like `reject`, but `raw_record` holds only the `raw` columns/expressions (the wire row), so
    working columns added by a transform do not leak into the quarantine."""
    if frame.is_empty():
        return empty_rejected()
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.select(
        reason_expr.cast(pl.String).alias("reason"),
        pl.struct(list(raw)).struct.json_encode().alias("raw_record"),
    )


def split_by_rules(
    frame: pl.DataFrame, rules: Sequence[tuple[pl.Expr, str | pl.Expr]], raw: Sequence[str | pl.Expr]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `frame` into (rows breaking no rule, quarantine rows of the others).

    A rejected row's reason is the message of the first rule it breaks (see `first_reason`); its
    `raw_record` holds the `raw` columns. Only the boolean conditions run on every row: messages are
    formatted for the rejected rows alone, which matters on 10M-row payloads.
    """
    if not rules:
        return frame, empty_rejected()
    broken = pl.any_horizontal([condition.fill_null(False) for condition, _ in rules])
    flagged = frame.with_columns(broken.alias("__broken"))
    if not flagged.get_column("__broken").any():
        return frame, empty_rejected()
    ok = flagged.filter(~pl.col("__broken")).drop("__broken")
    bad = flagged.filter(pl.col("__broken")).drop("__broken")
    return ok, quarantine(bad, first_reason(rules), raw)


class WireColumnsError(ValueError):
    """A wire frame's columns are not the ones its transform reads (a new dimension would split the natural
    key). The pipeline reports it as eujp.errors.SchemaDriftError."""


def check_wire_columns(wire: pl.DataFrame, expected: tuple[str, ...], source_name: str) -> None:
    """The wire frame must have exactly `expected` columns: a new dimension would split the natural key."""
    missing = [c for c in expected if c not in wire.columns]
    new = [c for c in wire.columns if c not in expected]
    if missing or new:
        raise WireColumnsError(
            f"{source_name}: wire columns changed: missing {missing}, unexpected {new}; expected {list(expected)}"
        )


def sha1_16(series: pl.Series) -> pl.Series:
    """Stable id: first 16 hex digits of sha1 of each string's UTF-8 bytes (null stays null)."""
    return pl.Series(
        series.name,
        [None if v is None else hashlib.sha1(v.encode("utf-8")).hexdigest()[:16] for v in series.to_list()],
        dtype=pl.String,
    )
