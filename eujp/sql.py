"""Quoting for the SQL the pipeline writes itself: identifiers (from the table declarations) and the values of the
DuckDB statements that take no bound parameter (ATTACH, COPY ... TO, COMMENT ON, CREATE VIEW, LOAD, CREATE
SECRET, IN lists of partition values). Everything else is bound as a parameter. No dependency beyond the standard
library, so that the light modules (eujp.bi for `eujp query`) use it too."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """Identifiers come from the table declarations only; quote them anyway and refuse anything odd."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing identifier {name!r}")
    return f'"{name}"'


def sql_string(text: str) -> str:
    """`text` as a SQL string literal: in single quotes, each single quote doubled."""
    return "'" + text.replace("'", "''") + "'"
