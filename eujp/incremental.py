"""Incremental loading: what the warehouse remembers about each source (table `etl_source_state`), and
how far back the next live request starts (the watermark).

- `input_checksum`, `etag`, `last_modified` are those of the last *successful load*: a source whose
  content checksum is unchanged, or that answers 304 to a conditional request built from them, is
  "unchanged": one small request and zero load work.
- `newest_period` is the newest period the warehouse holds for the source (never moves backwards).
- `watermark` is where the next live request starts: `newest_period` minus the source's revision window,
  because Eurostat and Comext revise recent periods. Periods from the watermark on are fetched again and
  upserted; revised values replace the old ones and are recorded in `etl_revisions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

# Column holding the period of each fact table (what `newest_period` is computed from).
PERIOD_COLUMNS: dict[str, str] = {
    "fact_goods_trade": "period_year",
    "fact_goods_trade_product": "period_code",
    "fact_services_trade": "period_year",
    "fact_export_restrictions": "period_year",
    "fact_arms_transfers": "order_year",
    "fact_security_events": "event_date",
}

# How many periods before the newest one the next request re-reads (revision windows).
# Annual Eurostat goods figures are revised for about two years, BoP services for longer; the OECD
# inventory is republished yearly with the previous year completed. Comext: see comext_watermark.
ANNUAL_LOOKBACK_YEARS: dict[str, int] = {
    "eurostat_goods": 2,
    "eurostat_services": 3,
    "oecd_restrictions": 1,
}


@dataclass(frozen=True)
class SourceState:
    """One row of etl_source_state."""

    source: str
    last_success_at: datetime | None = None  # last run that loaded the source or confirmed it unchanged
    last_attempt_at: datetime | None = None
    last_status: str | None = None  # success | unchanged | failed
    etag: str | None = None
    last_modified: str | None = None
    input_checksum: str | None = None
    newest_period: str | None = None
    watermark: str | None = None


def newest_period(table_name: str, frame: pl.DataFrame | None) -> str | None:
    """Newest period in a batch as text (YYYY, YYYY-MM or YYYY-MM-DD), None if it has none."""
    column = PERIOD_COLUMNS.get(table_name)
    if frame is None or column is None or column not in frame.columns or frame.is_empty():
        return None
    values = frame.get_column(column).drop_nulls()
    if values.is_empty():
        return None
    if column == "period_code":  # monthly codes outrank annual ones of the same year
        values = values.cast(pl.String)
        monthly = values.filter(values.str.contains("-"))
        return (monthly if not monthly.is_empty() else values).max()
    newest = values.max()
    return newest.isoformat() if isinstance(newest, date) else str(newest)


def later_period(a: str | None, b: str | None) -> str | None:
    """The later of two period texts of the same kind (None counts as nothing)."""
    if a is None or b is None:
        return a or b
    return max(a, b)


def month_add(period: str, months: int) -> str:
    """'2025-06' + (-17) -> '2024-01'."""
    year, month = (int(x) for x in period.split("-")[:2])
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def comext_watermark(newest: str) -> str:
    """Comext revises the months of the current and the previous year: restart at January of the year
    before the newest month ('2025-06' -> '2024-01')."""
    year = int(newest[:4])
    return f"{year - 1:04d}-01"


def next_watermark(source: str, newest: str | None) -> str | None:
    """Where the next live request for `source` starts, given the newest period loaded."""
    if newest is None:
        return None
    if source == "comext_goods":
        return comext_watermark(newest if "-" in newest else f"{newest}-12")
    if source in ANNUAL_LOOKBACK_YEARS:
        return str(int(newest[:4]) - ANNUAL_LOOKBACK_YEARS[source])
    return None  # full extracts (SIPRI register, curated events) have no watermark


def read_state(warehouse_path: Path, source: str) -> SourceState | None:
    """The source's state in the live warehouse (read-only), None when there is none yet.

    Called during extraction, before the run's staging copy exists; the run lock keeps writers out.
    An unreadable warehouse counts as no state (full extraction), never as an error of the source."""
    if not warehouse_path.exists():
        return None
    import duckdb

    from eujp.warehouse import read_source_state

    try:
        with duckdb.connect(str(warehouse_path), read_only=True) as conn:
            return read_source_state(conn, source)
    except duckdb.Error:
        return None
