"""The warehouse's catalog: every table, by layer, assembled in one place, and the operations on all of them.

    FACT_TABLES       one per source, declared in the source's module (eujp/sources/<source>.py)
    LABEL_TABLES      labels a source publishes beside its data (Comext's CN8 descriptions), loaded with it
    COVERAGE_TABLES   what a source's extractions covered in full (Comext: etl_comext_coverage), loaded with it
    REFERENCE_TABLES  the reference tables from data/reference/*.csv (eujp/schema/reference.py)
    MODEL_TABLES      built dimensions and marts, in build order (declared beside their SQL, eujp/marts/*.yml)
    MART_TABLES       the marts among them
    ALL_TABLES        every table, in creation order: dim_country, the facts, the ETL tables, the
                      references, the models (each model after the tables it reads)
    TABLES            name -> Table

Kept apart from eujp.schema (the declarations) because it reads the registry of sources and the model
layer; eujp.warehouse works on the tables it is given and knows neither.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from eujp.marts import MART_TABLES, MODEL_TABLES, MODELS, check_dependencies
from eujp.schema import (
    DIM_COUNTRY,
    ETL_MODEL_STATE,
    ETL_REJECTED_ROWS,
    ETL_REVISIONS,
    ETL_RUNS,
    ETL_SOURCE_STATE,
    ETL_SUITE_STATE,
    Table,
)
from eujp.schema.reference import REFERENCE_TABLES
from eujp.sources import SOURCES
from eujp.warehouse import count_rows, create_tables

FACT_TABLES: tuple[Table, ...] = tuple(s.table for s in SOURCES)
# Labels a source's service publishes beside its data (eujp.sources.base.LabelFeed), loaded with its data.
LABEL_TABLES: tuple[Table, ...] = tuple(s.labels.table for s in SOURCES if s.labels is not None)
# What a source's live extractions state they covered in full (eujp.sources.base.CoverageFeed), loaded with its data.
COVERAGE_TABLES: tuple[Table, ...] = tuple(s.coverage.table for s in SOURCES if s.coverage is not None)
ALL_TABLES: tuple[Table, ...] = (
    DIM_COUNTRY, *FACT_TABLES, ETL_RUNS, ETL_REJECTED_ROWS, ETL_SOURCE_STATE, ETL_REVISIONS, ETL_MODEL_STATE,
    ETL_SUITE_STATE, *COVERAGE_TABLES, *LABEL_TABLES, *REFERENCE_TABLES, *MODEL_TABLES,
)
TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}

check_dependencies(MODELS, TABLES)  # every model reads only warehouse tables


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every missing table of the warehouse and (re)write the comments (eujp.warehouse.create_tables)."""
    create_tables(conn, ALL_TABLES)


def table_counts(conn: duckdb.DuckDBPyConnection, tables: Iterable[Table] = ALL_TABLES) -> dict[str, int]:
    """Rows per table (default: every table of the warehouse)."""
    return count_rows(conn, tables)


__all__ = ["ALL_TABLES", "COVERAGE_TABLES", "FACT_TABLES", "LABEL_TABLES", "MART_TABLES", "MODEL_TABLES", "REFERENCE_TABLES", "TABLES",
           "ensure_schema", "table_counts"]
