"""Warehouse table declarations, by layer: the one place their columns, types, natural keys and docs are
defined. Two layers are declared beside their owners: a fact table in its source's module
(eujp/sources/<source>.py, built on the column docs every fact shares here), a built dimension or mart beside its
SQL (eujp/marts/<table>.yml).

    eujp/schema/core.py        the `Table` record, the run columns the loader adds, dtype aliases
    eujp/schema/etl.py         ETL bookkeeping: runs, rejected rows, source state, revisions; an as-of
                               rebuild's mark (etl_rebuild, only in the file a rebuild writes)
    eujp/schema/reference.py   dim_country and the reference tables (data/reference/*.csv)

This package re-exports every declaration. The tuples of tables by layer (FACT_TABLES, ALL_TABLES, TABLES,
...) are assembled in eujp.tables, which also knows the model layer: importing eujp.marts or eujp.sources
from here would be an import cycle.
"""

from eujp.schema.core import LOAD_COLUMNS, TS, B, D, F, I, S, Table
from eujp.schema.etl import (
    ETL_MODEL_STATE,
    ETL_REBUILD,
    ETL_REJECTED_ROWS,
    ETL_REVISIONS,
    ETL_RUNS,
    ETL_SOURCE_STATE,
    ETL_SUITE_STATE,
)
from eujp.schema.reference import (
    DIM_COUNTRY,
    REF_CRITICAL_RAW_MATERIALS,
    REF_EXPORT_RESTRICTIONS_TREND,
    REF_JAPAN_RANK,
    REF_PUBLISHED_TRADE_FIGURES,
)

__all__ = [
    "DIM_COUNTRY", "ETL_MODEL_STATE", "ETL_REBUILD", "ETL_REJECTED_ROWS", "ETL_REVISIONS", "ETL_RUNS", "ETL_SOURCE_STATE", "ETL_SUITE_STATE",
    "LOAD_COLUMNS", "REF_CRITICAL_RAW_MATERIALS",
    "REF_EXPORT_RESTRICTIONS_TREND", "REF_JAPAN_RANK", "REF_PUBLISHED_TRADE_FIGURES",
    "TS", "B", "D", "F", "I", "S", "Table",
]
