"""ETL bookkeeping tables: run records, quarantined rows, per-source load state and value revisions. Written
by the load step (eujp.warehouse), never by transforms.
"""

from __future__ import annotations

import polars as pl

from eujp.schema.core import TS, D, F, S, Table

ETL_RUNS = Table(
    name="etl_runs",
    description="One row per run and source: what came in, what was loaded or rejected, and how it ended.",
    columns={
        "run_id": S, "source": S, "table_name": S, "input_checksum": S, "source_version": S,
        "rows_in": pl.Int64(), "rows_loaded": pl.Int64(), "rows_rejected": pl.Int64(),
        "rows_written": pl.Int64(), "started_at": TS, "ended_at": TS, "status": S, "message": S,
    },
    natural_key=("run_id", "source"),
    column_docs={
        "run_id": "ETL run (sortable id: start time plus a random suffix).",
        "source": "Source id (see README, 'Sources').",
        "table_name": "Warehouse table the source loads.",
        "input_checksum": "Order-independent sha256 over the sha256 of every payload the source delivered.",
        "source_version": "Version stamp the source put on the payload, null if none.",
        "started_at": "UTC time the source's processing started.",
        "ended_at": "UTC time the source's processing ended.",
        "message": "Error (failed) or note (unchanged); on success, the verdict on rows rejected and a warning "
                   "naming codes the settings added of which no row loaded, else null.",
        "rows_in": "Input rows the source delivered (wire rows: CSV lines, JSON-stat observations).",
        "rows_loaded": "Input rows that were loaded (rows_in = rows_loaded + rows_rejected).",
        "rows_rejected": "Input rows not loaded; each is in etl_rejected_rows with its reason.",
        "rows_written": "Table rows written (several input rows may make one row, e.g. Comext indicators).",
        "status": "success, failed or unchanged.",
    },
    is_fact=False,
)

ETL_REJECTED_ROWS = Table(
    name="etl_rejected_rows",
    description="Quarantine: every input row that was not loaded, with the reason and its raw values.",
    columns={
        "run_id": S, "source": S, "table_name": S, "reason": S, "raw_record": S, "rejected_at": TS,
    },
    natural_key=(),
    column_docs={
        "run_id": "ETL run that rejected the row.",
        "source": "Source id the row came from.",
        "table_name": "Table the row was meant for.",
        "reason": "Why the row was not loaded (transform rule, duplicate key, failed expectation, load error).",
        "raw_record": "The row's values as JSON, as the transform saw them.",
        "rejected_at": "UTC time the row was quarantined.",
    },
    is_fact=False,
    ledger=True,
)

ETL_SOURCE_STATE = Table(
    name="etl_source_state",
    description="Per source: what the last successful load saw (HTTP validators, content checksum, newest "
    "period) and where the next incremental request starts. Maintained by the load step.",
    columns={
        "source": S, "last_success_at": TS, "last_attempt_at": TS, "last_status": S, "etag": S,
        "last_modified": S, "input_checksum": S, "newest_period": S, "watermark": S, "request_url": S,
        "requested_at": TS, "request_scope": S,
    },
    natural_key=("source",),
    column_docs={
        "source": "Source id.",
        "last_success_at": "Last run that loaded the source or confirmed it unchanged.",
        "last_attempt_at": "Last run that tried the source, whatever the outcome.",
        "last_status": "Outcome of the last attempt: success, unchanged or failed.",
        "etag": "ETag of the last loaded response (sent back as If-None-Match).",
        "last_modified": "Last-Modified of the last loaded response (sent back as If-Modified-Since).",
        "input_checksum": "Checksum of everything the source delivered in the last successful load.",
        "newest_period": "Newest period loaded for the source (YYYY, YYYY-MM or a date).",
        "watermark": "First period the next live request asks for (newest period minus the revision window).",
        "request_url": "URL the validators (etag, last_modified) belong to, the final URL of the answer they came "
        "with (after any redirect); the next run sends its conditional request there while that URL covers the "
        "periods it needs.",
        "requested_at": "When the last successful extraction (loaded or confirmed unchanged) started: the next "
        "run asks for what changed after it (Comext: updatedAfter and the dataflow's UPDATE_DATA).",
        "request_scope": "What the last successful live extraction asked for, by the settings that choose it (JSON, "
        "e.g. Comext's reporters, partners, products, flows and first month): a run whose settings ask for more "
        "fetches the history of what was added. A `--from-raw` replay or `--as-of` rebuild adds the scope its landings state "
        "(Comext's coverage statements, Eurostat's and OECD's request URLs); a live run finding none rebuilds it "
        "from the raw zone (Comext), or extracts in full (docs/live-extraction.md).",
    },
    is_fact=False,
)

ETL_REVISIONS = Table(
    name="etl_revisions",
    description="Every value a load changed: a revised figure (Eurostat and Comext revise past periods) with "
    "its natural key, the old and the new value, and the run that revised it.",
    columns={
        "table_name": S, "source": S, "natural_key": S, "column_name": S, "old_value": F, "new_value": F,
        "run_id": S, "revised_at": TS,
    },
    natural_key=(),
    column_docs={
        "table_name": "Fact table of the revised row.",
        "source": "Source id whose load revised the value.",
        "run_id": "ETL run that loaded the new value.",
        "revised_at": "UTC time of the revision.",
        "natural_key": "Natural key of the revised row as a JSON object, e.g. "
        '{"reporter":"EU27_2020","partner":"JP","flow":"export","period_year":2024}.',
        "column_name": "Revised column (value_mio_eur, value_eur, quantity_kg).",
        "old_value": "Value before the run (null: it was missing).",
        "new_value": "Value the run loaded (null: now missing).",
    },
    is_fact=False,
    ledger=True,
)

ETL_MODEL_STATE = Table(
    name="etl_model_state",
    description="Per built dimension and mart: the definition it was last built from and the run that built "
    "it. The load step rebuilds a model only when the run wrote one of its inputs, its definition changed, or "
    "it was never built (eujp.marts.build); count(*) WHERE built_run_id = a run is what that run rebuilt.",
    columns={"model": S, "definition_sha256": S, "built_run_id": S, "built_at": TS, "row_count": pl.Int64(),
             "reason": S},
    natural_key=("model",),
    column_docs={
        "model": "Built dimension or mart (eujp/marts/{model}.yml).",
        "definition_sha256": "SHA-256 of the model's declaration and SQL (for mart_claims: and every claim's "
        "query) it was last built from.",
        "built_run_id": "ETL run that last rebuilt it.",
        "built_at": "UTC time of that rebuild.",
        "row_count": "Rows the rebuild wrote.",
        "reason": "Why it was rebuilt: never built, definition changed, every model rebuilt (--force, or "
        "no run information), or the inputs the run wrote (e.g. 'input written: fact_goods_trade_product').",
    },
    is_fact=False,
)

ETL_SUITE_STATE = Table(
    name="etl_suite_state",
    description="Per fact table: the expectation suite its rows last passed in the audit of a staged warehouse, "
    "and the run. While the suite stays the same, the audit checks only the rows a run wrote: the table's other "
    "rows passed that suite before (eujp.audit.suite_check).",
    columns={"table_name": S, "suite_sha256": S, "audited_run_id": S, "audited_at": TS, "scope": S,
             "rows_checked": pl.Int64()},
    natural_key=("table_name",),
    column_docs={
        "table_name": "Fact table the suite (expectations/<table>.json) checks.",
        "suite_sha256": "SHA-256 of the suite the table's rows last passed (its JSON, keys sorted).",
        "audited_run_id": "ETL run whose audit last passed the suite on the table.",
        "audited_at": "UTC time of that audit.",
        "scope": "What that audit checked: 'table' (every row: the first audit, or the suite changed) or 'run' "
        "(the rows the run wrote).",
        "rows_checked": "Rows that audit checked.",
    },
    is_fact=False,
)

# Not in the daily warehouse: created only by an as-of rebuild (eujp.asof.mark_rebuild), in the file it writes.
ETL_REBUILD = Table(
    name="etl_rebuild",
    description="Only in a warehouse an as-of rebuild wrote (eujp run --as-of): the day it rebuilt and the "
    "rebuild's run id, which every run of etl_runs extends by its landing day ({run_id}-YYYYMMDD). Daily runs "
    "never create it: it is how a rebuild tells a file it may write over (eujp.asof.not_a_rebuild).",
    columns={"run_id": S, "as_of": D, "rebuilt_at": TS},
    natural_key=("run_id",),
    column_docs={
        "run_id": "The as-of rebuild's run id (its replay steps are {run_id}-YYYYMMDD in etl_runs).",
        "as_of": "The day whose end state the file holds.",
        "rebuilt_at": "UTC time the rebuild wrote the file.",
    },
    is_fact=False,
)
