"""Quoting for the SQL the pipeline writes itself: identifiers (from the table declarations) and the values of the
DuckDB statements that take no bound parameter (ATTACH, COPY ... TO, COMMENT ON, CREATE VIEW, LOAD, CREATE
SECRET, IN lists of partition values). Everything else is bound as a parameter. No dependency beyond the standard
library, so that the light modules (eujp.bi for `eujp query`) use it too. And the one session setting of a
connection whose timestamps reach a person or a file (`in_utc`)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """Identifiers come from the table declarations only; quote them anyway and refuse anything odd."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing identifier {name!r}")
    return f'"{name}"'


def sql_string(text: str) -> str:
    """`text` as a SQL string literal: in single quotes, each single quote doubled."""
    return "'" + text.replace("'", "''") + "'"


def in_utc(conn):
    """`conn` (a DuckDB connection) with its session's TimeZone set to UTC, and returned: DuckDB gives a
    TIMESTAMPTZ (loaded_at, last_success_at, ...) in the process' time zone otherwise, as Python datetimes,
    polars frames and text ('2026-12-06 00:46:17+09' under TZ=Asia/Tokyo), and casts it to a DATE in that
    zone; every time the project writes is UTC."""
    conn.execute("SET TimeZone = 'UTC'")
    return conn
