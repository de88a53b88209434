"""What a warehouse table is: the `Table` record every declaration builds, the run columns the loader adds to
fact tables, the dtype aliases declarations use, and the shared docs of the source/run columns.

Every fact table carries `source` (which source's payload the row came from), `source_version`
(the version the source stamped on the payload: Eurostat `updated`, Comext `LAST UPDATE`, SIPRI
"Data generated", ...; of a load of several payloads, the latest of their stamps) and `run_id` / `loaded_at`
(added by the loader, never by transforms).

Transforms produce frames with exactly `Table.business_columns` (in that order); the loader adds
`run_id` and `loaded_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

LOAD_COLUMNS: dict[str, pl.DataType] = {"run_id": pl.String(), "loaded_at": pl.Datetime("us", "UTC")}


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: dict[str, pl.DataType]
    natural_key: tuple[str, ...]
    column_docs: dict[str, str] = field(default_factory=dict)
    is_fact: bool = True
    # Numeric columns whose changed values are recorded in etl_revisions when a load replaces a row.
    revision_columns: tuple[str, ...] = ()
    # Derived tables (reference seeds, built dimensions, marts) are rebuilt whole every run; when their
    # declared columns change, ensure_schema drops and recreates them instead of keeping the old layout.
    rebuilt: bool = False
    # A run ledger: an ETL table to which each run appends rows stamped with its run_id, never changing another
    # run's rows, and which grows with the data (revised values, quarantined rows: a full revision of 10M Comext
    # rows records ~10M revisions). Published like a fact table (eujp.lake.SingleFile: past
    # EUJP_SINGLE_FILE_MAX_ROWS rows, in the lake only) and compared in the lake by its runs' row counts
    # (eujp.lake.commit_warehouse), not re-digested whole every run.
    ledger: bool = False

    @property
    def business_columns(self) -> dict[str, pl.DataType]:
        return self.columns

    @property
    def all_columns(self) -> dict[str, pl.DataType]:
        return {**self.columns, **LOAD_COLUMNS} if self.is_fact else dict(self.columns)

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.business_columns)

    @property
    def docs(self) -> dict[str, str]:
        """COMMENT text per column: column_docs, else the shared text for source/run columns."""
        return {c: self.column_docs.get(c) or _SOURCE_DOCS[c] for c in self.all_columns
                if c in self.column_docs or c in _SOURCE_DOCS}


S, F, I, D, B = pl.String(), pl.Float64(), pl.Int32(), pl.Date(), pl.Boolean()
TS = pl.Datetime("us", "UTC")

_SOURCE_DOCS = {
    "source": "Source id (see README, 'Sources') whose payload produced the row.",
    "source_version": "Version stamp the source put on the payload (e.g. Eurostat 'updated', Comext LAST UPDATE); "
    "where one load read several payloads (a snapshot folder of several files, a live extraction of several "
    "slices), the latest of their stamps, on every row that load wrote.",
    "run_id": "ETL run that last wrote the row (etl_runs.run_id).",
    "loaded_at": "UTC time the row was written.",
}
