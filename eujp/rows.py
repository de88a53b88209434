"""The words for row counts, defined once. The `eujp run` summary table, the domain flows' log lines and
docs/operations.md all say these four words, with these meanings:

    rows in    input (wire) rows the source delivered and the run read: CSV lines, JSON-stat observations
    valid      rows in that passed the transform and the table's critical expectations, and were loaded
    rejected   rows in that were quarantined in etl_rejected_rows, with the reason (by the transform; or the
               whole batch, when a critical expectation failed or its load failed)
    written    table rows written: a transform may merge several wire rows into one table row (Comext
               indicators, OECD attributes), so written can be less than valid

rows in = valid + rejected always holds (the audit checks it: etl_runs.accounting). The run summary and
etl_runs keep their column names: rows_in, rows_loaded (valid), rows_rejected, rows_written.
"""

from __future__ import annotations

import math

ROWS_IN = "rows in"
VALID = "valid"
REJECTED = "rejected"
WRITTEN = "written"

# The run summary's (and etl_runs') count keys, in table order, and the word each is shown as.
ROW_WORDS: dict[str, str] = {"rows_in": ROWS_IN, "rows_loaded": VALID, "rows_rejected": REJECTED,
                             "rows_written": WRITTEN}


def describe_rows(rows_in: int, valid: int, rejected: int, written: int | None = None) -> str:
    """'96 rows in, 96 valid, 0 rejected, 48 written' (without the written part when it is not known yet)."""
    text = f"{rows_in} {ROWS_IN}, {valid} {VALID}, {rejected} {REJECTED}"
    return text if written is None else f"{text}, {written} {WRITTEN}"


def format_pct(pct: float) -> str:
    """A share of rows in: '4.69%', '5%', '0.0012%', '99.999%' (two decimals, or two significant digits of what
    separates the share from 0% or 100%: never a share rounded to nothing, or to all, nor in exponent form)."""
    gap = pct if 0 < pct < 0.01 else 100 - pct if 99.99 < pct < 100 else None
    decimals = 2 if gap is None else max(2, 1 - math.floor(math.log10(gap)))
    return f"{pct:.{decimals}f}".rstrip("0").rstrip(".") + "%"


# How the verdict of a source over the threshold says the run failed, in its etl_runs.message: the source loaded
# (status success), so its row's message is what tells that run failed (eujp.status, the catalog, the report).
RUN_FAILS = "the run fails so that someone looks"


def fails_run(status: str | None, message: str | None) -> bool:
    """Whether an etl_runs row (its status and message) failed its run, as `failed_source_sql` says in SQL."""
    return status == "failed" or (status == "success" and RUN_FAILS in (message or ""))


def failed_source_sql(alias: str = "") -> str:
    """SQL of an etl_runs row (table alias `alias`) that failed its run: a failed source, or one that loaded
    with rejected rows above the threshold (its verdict in `message`)."""
    a = f"{alias}." if alias else ""
    return f"({a}status = 'failed' OR ({a}status = 'success' AND coalesce({a}message, '') LIKE '%{RUN_FAILS}%'))"
