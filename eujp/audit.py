"""Audit of a staged warehouse before it is promoted and published."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from eujp.errors import AuditFailed
from eujp.schema import FACT_TABLES
from eujp.warehouse import duplicate_keys, table_counts


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
            raise AuditFailed(f"audit failed, nothing published: {lines}")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


def audit_staging(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    previous_counts: dict[str, int],
    max_row_drop_pct: float,
) -> AuditReport:
    """Natural keys unique, row counts not collapsed vs the previous good warehouse, and every
    source of this run accounted for (rows in = loaded + rejected)."""
    report = AuditReport()
    counts = table_counts(conn, FACT_TABLES)
    for table in FACT_TABLES:
        dups = duplicate_keys(conn, table)
        report.checks.append(
            AuditCheck(f"{table.name}.unique_natural_key", dups == 0,
                       f"{dups} natural key(s) occur more than once" if dups else "unique")
        )
        before, after = previous_counts.get(table.name, 0), counts[table.name]
        drop_pct = 100.0 * (before - after) / before if before else 0.0
        report.checks.append(
            AuditCheck(
                f"{table.name}.row_count_delta",
                drop_pct <= max_row_drop_pct,
                f"{before} -> {after} rows ({-drop_pct:+.1f}%, threshold -{max_row_drop_pct:g}%)",
            )
        )
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
    return report
