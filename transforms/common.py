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
