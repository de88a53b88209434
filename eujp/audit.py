"""Audit of a staged warehouse before it is promoted and published (the A of write-audit-publish).

Checks, each a named `AuditCheck` in the report (and in the run manifest under "audit"):

* `{table}.unique_natural_key`: no natural key occurs twice in a fact table. Given the tables the run wrote
  (`written`, as the load step passes it), only the keys of the rows this run wrote (run_id) are checked
  against the whole table, and a table the run did not write is the one the previous audit passed: a day
  costs what changed, not a GROUP BY of every key of the history.
* `{table}.row_count_delta`: a fact table did not shrink by more than `max_row_drop_pct` against the live
  warehouse the staging copy was made from.
* `{table}.row_count_delta_vs_published`: the same against the row counts in the manifest of the run
  `latest.json` points to. The local warehouse and the published one can diverge (a fresh machine, a lost
  disk, a run promoted but not published); it is the published data a bad run would replace, so a collapse
  against it fails the audit even when the local baseline is empty.
* `{table}.suite`: the table's Great Expectations suite, evaluated in DuckDB SQL on the *staged table*
  (business columns) for every table this run loaded (`eujp.suite_sql`: the same suite JSON with the same
  semantics as GX, tested against GX; one scan of the table, nothing fetched into Python). Each batch was
  validated before its load (a failure blocks that source only); the audit validates what would be
  published: the batch merged with the rows already there. Critical failures fail the audit, warnings are
  reported. Once the table's rows passed a suite, later audits under the same suite check only the rows
  each run wrote (etl_suite_state; see `suite_check`): a day costs what changed here too.
* `etl_runs.accounting`: for every source of the run, rows in = rows loaded + rows rejected.
* `etl_rejected_rows.accounting`: every rejected row is in the quarantine (see `quarantine_check`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb

from eujp.errors import AuditFailed
from eujp.schema import ETL_SUITE_STATE
from eujp.sql import quote_ident
from eujp.tables import FACT_TABLES, TABLES
from eujp.warehouse import count_rows, duplicate_keys, duplicate_keys_of_run, table_exists


@dataclass
class AuditCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class AuditReport:
    checks: list[AuditCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[AuditCheck]:
        return [c for c in self.checks if not c.ok]

    def raise_if_failed(self) -> None:
        if not self.ok:
            lines = "; ".join(f"{c.name}: {c.detail}" for c in self.failures())
            err = AuditFailed(f"audit failed, nothing published: {lines}")
            err.report = self  # type: ignore[attr-defined]  # the run summary lists the failed checks
            raise err

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


@dataclass(frozen=True)
class PublishedBaseline:
    """Row counts of the run `latest.json` points to, read from its (checksum-verified) manifest."""

    run_id: str
    table_rows: dict[str, int]


def published_baseline(store) -> PublishedBaseline | None:
    """The published latest run's row counts, or None when nothing was published to `store` yet.

    Raises AuditFailed when the pointer exists but its manifest cannot be read or does not match the
    pointer's sha256: the audit fails closed instead of comparing against nothing."""
    from eujp.publish import ManifestMismatchError, read_latest_manifest

    try:
        latest = read_latest_manifest(store)
    except ManifestMismatchError as exc:
        raise AuditFailed(f"audit: {exc}; refusing to compare row counts against it") from exc
    except Exception as exc:  # any store or JSON error: say what could not be read
        raise AuditFailed(f"audit: cannot read the published latest run from {store.uri} to compare row "
                        f"counts against it: {type(exc).__name__}: {exc}") from exc
    if latest is None:
        return None
    pointer, manifest = latest
    tables = manifest.get("tables") or {}
    return PublishedBaseline(run_id=str(pointer["run_id"]),
                             table_rows={name: int(t["rows"]) for name, t in tables.items() if t.get("rows") is not None})


def _delta_check(name: str, baseline: str, before: int, after: int, max_row_drop_pct: float) -> AuditCheck:
    drop_pct = 100.0 * (before - after) / before if before else 0.0
    return AuditCheck(
        name, drop_pct <= max_row_drop_pct,
        f"{baseline}: {before} -> {after} rows ({-drop_pct:+.1f}%, threshold -{max_row_drop_pct:g}%)",
    )


def suite_sha256(suite: dict) -> str:
    """SHA-256 of an expectation suite (its JSON with sorted keys): what etl_suite_state records."""
    return hashlib.sha256(json.dumps(suite, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _row_by_row(suite: dict) -> bool:
    """Whether each expectation's verdict on a table follows from its verdicts on parts of the table that
    passed it: no expectation with a `mostly` below 1 (a share of the whole)."""
    return all(float((e.get("kwargs") or {}).get("mostly", 1) or 1) >= 1 for e in suite["expectations"])


def suite_check(conn: duckdb.DuckDBPyConnection, table_name: str, *, run_id: str) -> AuditCheck:
    """Evaluate the table's expectation suite on the staged table (its business columns) in DuckDB SQL.

    Only the rows this run wrote are checked when the table's other rows passed the same suite in an
    earlier audit (etl_suite_state holds its SHA-256) and the suite has no `mostly` below 1: those rows are
    unchanged since, and the uniqueness of this run's keys against them is `{table}.unique_natural_key`'s.
    Otherwise (the first audit, a changed suite, a `mostly`) every row is. `expect_table_row_count_to_be_between`
    counts the whole table either way. A passing check records the suite in etl_suite_state (staged with the
    data: an audit that fails records nothing)."""
    from eujp.suite_sql import evaluate_suite_sql
    from eujp.validate import load_suite

    table = TABLES[table_name]
    suite = load_suite(table.name)
    digest = suite_sha256(suite)
    state = quote_ident(ETL_SUITE_STATE.name)
    recorded = table.is_fact and table_exists(conn, ETL_SUITE_STATE.name)
    passed = recorded and conn.execute(f"SELECT suite_sha256 FROM {state} WHERE table_name = ?",
                                       [table.name]).fetchone()
    scoped = bool(passed) and passed[0] == digest and _row_by_row(suite)
    report = evaluate_suite_sql(conn, table.name, run_id=run_id, rows_of_run=run_id if scoped else None)
    rows = (f"{report.row_count} rows this run wrote (the table's other rows passed this suite before)"
            if scoped else f"{report.row_count} staged rows")
    if report.success:
        if recorded:
            conn.execute(f"DELETE FROM {state} WHERE table_name = ?", [table.name])
            conn.execute(f"INSERT INTO {state} VALUES (?, ?, ?, ?, ?, ?)",
                         [table.name, digest, run_id, dt.datetime.now(dt.UTC), "run" if scoped else "table",
                          report.row_count])
        detail = f"{rows} meet every critical expectation"
        if report.warnings:
            detail += f" ({len(report.warnings)} warning(s): " + "; ".join(o.label for o in report.warnings) + ")"
        return AuditCheck(f"{table.name}.suite", True, detail)
    failures = "; ".join(f"{o.label} {o.message}" for o in report.critical_failures)
    return AuditCheck(f"{table.name}.suite", False,
                      f"{len(report.critical_failures)} critical expectation(s) fail on the {rows}: {failures}")


def quarantine_check(conn: duckdb.DuckDBPyConnection, run_id: str) -> AuditCheck:
    """Every rejected row of the run is in etl_rejected_rows.

    A source that loaded (status success) quarantines one row per rejected input row, so the counts must be
    equal. A failed source may have had its whole batch blocked: its valid part is quarantined as the rows
    the transform built, and a transform that merges input rows (Comext indicators, OECD attributes) builds
    fewer rows than it read, so there the quarantine holds at least one row when anything was rejected,
    and never more rows than were rejected."""
    rows = conn.execute(
        """SELECT r.source, r.status, r.rows_rejected, count(q.source) AS quarantined
           FROM etl_runs AS r LEFT JOIN etl_rejected_rows AS q ON q.run_id = r.run_id AND q.source = r.source
           WHERE r.run_id = ? GROUP BY ALL ORDER BY r.source""",
        [run_id],
    ).fetchall()
    bad = []
    for source, status, rejected, quarantined in rows:
        if status == "failed" and rejected:
            ok = 0 < quarantined <= rejected
        else:
            ok = quarantined == rejected
        if not ok:
            bad.append(f"{source} ({status}): {rejected} rows rejected but {quarantined} quarantined")
    return AuditCheck("etl_rejected_rows.accounting", not bad,
                      "; ".join(bad) if bad else "every rejected row of the run is quarantined")


def audit_staging(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    previous_counts: dict[str, int],
    max_row_drop_pct: float,
    published: PublishedBaseline | None = None,
    revalidate: Iterable[str] = (),
    written: Iterable[str] | None = None,
    removed_rows: dict[str, int] | None = None,
) -> AuditReport:
    """Audit the staged warehouse (see the module docstring for the checks).

    `previous_counts`: table row counts of the live warehouse before this run's load; `published`: the
    published latest run's counts (`published_baseline`); `revalidate`: tables whose suites are re-run on
    the staged rows (the tables this run loaded); `written`: the tables the run wrote (None: check every key
    of every fact table); `removed_rows`: rows the run deleted on request, per table (`eujp run
    --remove-partner`: the partner's rows the live warehouse held), taken off both baselines of the row-count
    checks, which then still catch a drop of any other row."""
    report = AuditReport()
    counts = count_rows(conn, FACT_TABLES)
    written = None if written is None else set(written)
    for table in FACT_TABLES:
        if written is not None and table.name not in written:
            report.checks.append(AuditCheck(f"{table.name}.unique_natural_key", True,
                                            "not written by this run: as the last audit passed it"))
        else:
            dups = duplicate_keys(conn, table) if written is None else duplicate_keys_of_run(conn, table, run_id)
            report.checks.append(
                AuditCheck(f"{table.name}.unique_natural_key", dups == 0,
                           f"{dups} natural key(s) occur more than once" if dups
                           else "unique" if written is None else "the keys this run wrote are unique")
            )
        removed = (removed_rows or {}).get(table.name, 0)
        less = f", less the {removed} row(s) removed on request" if removed else ""
        report.checks.append(_delta_check(f"{table.name}.row_count_delta", f"live warehouse{less}",
                                          max(0, previous_counts.get(table.name, 0) - removed), counts[table.name],
                                          max_row_drop_pct))
        if published is not None:
            report.checks.append(_delta_check(
                f"{table.name}.row_count_delta_vs_published", f"published run {published.run_id}{less}",
                max(0, published.table_rows.get(table.name, 0) - removed), counts[table.name], max_row_drop_pct))
    for table_name in sorted(set(revalidate)):
        report.checks.append(suite_check(conn, table_name, run_id=run_id))
    unbalanced = conn.execute(
        "SELECT source, rows_in, rows_loaded, rows_rejected FROM etl_runs "
        "WHERE run_id = ? AND status IN ('success', 'failed') AND rows_in <> rows_loaded + rows_rejected",
        [run_id],
    ).fetchall()
    report.checks.append(
        AuditCheck(
            "etl_runs.accounting",
            not unbalanced,
            "rows in = loaded + rejected for every source" if not unbalanced
            else "; ".join(f"{s}: {i} in != {l} loaded + {r} rejected" for s, i, l, r in unbalanced),
        )
    )
    report.checks.append(quarantine_check(conn, run_id))
    return report
