"""The partners the Comext facts hold (fact_goods_trade_product), and whether the live request still asks for each.

A partner dropped from EUJP_COMEXT_PARTNERS keeps what it loaded (docs/live-extraction.md: history is kept), but
no run refreshes it any more, and the marts still rank it beside the partners asked for. What a reader sees
must say so: the run report's partners table, the manifest's "partners" entry and the catalog's partners section
read `loaded_partners` (one row per partner code of the facts: its months, the run that last loaded it, whether
it is requested) and `requested_partners` (the partners of the last successful live extraction's request scope,
etl_source_state.request_scope).

    loaded_partners(conn)              [{partner, partner_name, months_loaded, first_month, last_month,
                                         last_run_id, last_loaded_at, requested, history_fetched_from}, ...]
    manifest_entry(warehouse_path)     the manifest's "partners": {"requested": [...] | None, "loaded": [...]}

A partner no longer compared is removed by a run (`eujp run --remove-partner KR`): `remove_partner_rows` deletes
its rows of the facts and of etl_comext_coverage in the run's staged warehouse, and the run rebuilds the models
(the partitioned ones for the years its rows leave), audits and publishes as any run (eujp.run.load_audit_promote).
A removal of partners the warehouse holds no row of (`held_rows`) changes nothing: on a day whose sources are
unchanged, the run stops as a day with nothing new (eujp.run.nothing_new), publishing nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from eujp.config import duckdb_config
from eujp.incremental import ALL_CODES, STAGE, recorded_scope
from eujp.sources import SOURCES
from eujp.warehouse import read_source_state, table_exists

FACT = "fact_goods_trade_product"
# the facts' partners by year (eujp/marts/mart_partner_years.sql): a model rebuilt for the years a run wrote, so that
# reading the partners costs a small table, not a scan of every fact row (0.4-1 s at 5M fact rows, in the report,
# the manifest and the catalog of every run)
BY_YEAR = "mart_partner_years"
COVERAGE = "etl_comext_coverage"
PARTNER_IN = "partner IN (SELECT unnest(?::VARCHAR[]))"  # the rows of the partners given as one list parameter


def requested_partners(conn: duckdb.DuckDBPyConnection) -> list[str] | None:
    """The partners the last successful live extraction of the Comext facts asked for (its request scope;
    ['*'] for every partner), or None when none is recorded (bundled or snapshot data, a replay into a new
    warehouse: nothing says what the next run asks for)."""
    partners = (comext_scope(conn) or {}).get("partners")
    return sorted(partners) if isinstance(partners, list) else None


def comext_scope(conn: duckdb.DuckDBPyConnection) -> dict | None:
    """The request scope the last successful live extraction of the Comext facts recorded
    (etl_source_state.request_scope), None when none is."""
    source = next((s for s in SOURCES if s.table.name == FACT), None)
    if source is None or not table_exists(conn, "etl_source_state"):
        return None
    return recorded_scope(read_source_state(conn, source.name))


def staged_partners(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The partners whose history the live Comext extraction still fetches in stages, each with the first month
    fetched so far (the request scope's `STAGE` record, eujp.incremental: a partner added with
    EUJP_COMEXT_HISTORY_MONTHS gets its newest months first and the months before them a stage a run); {} when
    no stage of partners is recorded."""
    stage = (comext_scope(conn) or {}).get(STAGE)
    if not isinstance(stage, dict) or stage.get("list") != "partners" or not stage.get("start"):
        return {}
    return dict.fromkeys(stage.get("codes") or (), stage["start"])


def loaded_partners(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    """One row per partner code of the Comext facts, sorted: its name (dim_country; Serbia under XS), the
    months it holds (monthly period codes, every year), its first and last month, the run that last loaded it
    and when (the latest of its fact rows and of its etl_comext_coverage rows: a live extraction that asked for
    it and found nothing changed writes neither), `requested`: whether the last live extraction asked for it
    (None: no request scope recorded), and `history_fetched_from`: for a partner whose history is still fetched
    in stages, the first month fetched so far (`staged_partners`), else None. Read from mart_partner_years (the models are built before the report,
    the manifest and the catalog); [] without it."""
    if not table_exists(conn, BY_YEAR):
        return []
    requested = requested_partners(conn)
    coverage = (f"""SELECT p.partner, c.run_id, c.loaded_at FROM {COVERAGE} AS c
                    JOIN (SELECT DISTINCT partner FROM facts) AS p ON c.partner IN (p.partner, '{ALL_CODES}')"""
                if table_exists(conn, COVERAGE) else
                "SELECT NULL::VARCHAR AS partner, NULL::VARCHAR AS run_id, NULL::TIMESTAMPTZ AS loaded_at WHERE false")
    has_names = table_exists(conn, "dim_country")
    rows = conn.execute(f"""
        WITH facts AS (
            SELECT partner, sum(months_loaded) AS months_loaded, min(first_month) AS first_month,
                   max(last_month) AS last_month, arg_max(last_run_id, last_loaded_at) AS run_id,
                   max(last_loaded_at) AS loaded_at
            FROM {BY_YEAR} GROUP BY partner),
        covered AS (SELECT partner, arg_max(run_id, loaded_at) AS run_id, max(loaded_at) AS loaded_at
                    FROM ({coverage}) GROUP BY partner)
        SELECT f.partner, {'d.name' if has_names else 'NULL'} AS partner_name, f.months_loaded::INTEGER,
               f.first_month, f.last_month,
               CASE WHEN c.loaded_at > f.loaded_at THEN c.run_id ELSE f.run_id END AS last_run_id,
               greatest(f.loaded_at, c.loaded_at) AS last_loaded_at
        FROM facts AS f LEFT JOIN covered AS c USING (partner)
        {"LEFT JOIN dim_country AS d ON d.iso2 = if(f.partner = 'XS', 'RS', f.partner)" if has_names else ""}
        ORDER BY f.partner""").fetchall()
    cols = ("partner", "partner_name", "months_loaded", "first_month", "last_month", "last_run_id", "last_loaded_at")
    out = [dict(zip(cols, r, strict=True)) for r in rows]
    staged = staged_partners(conn)
    for row in out:
        row["requested"] = None if requested is None else (ALL_CODES in requested or row["partner"] in requested)
        row["history_fetched_from"] = staged.get(row["partner"])
    return out


def manifest_entry(warehouse_path: Path) -> dict | None:
    """The manifest's "partners": the partners the last live extraction asked for ("requested": None when none is
    recorded) and every partner the published Comext facts hold ("loaded": `loaded_partners`, times as ISO
    text); None when the warehouse file is not there."""
    if not Path(warehouse_path).exists():
        return None
    with duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config()) as conn:
        loaded = loaded_partners(conn)
        requested = requested_partners(conn)
    for row in loaded:
        at = row["last_loaded_at"]
        row["last_loaded_at"] = at.isoformat() if isinstance(at, datetime) else at
    return {"requested": requested, "loaded": loaded}


def not_requested_note(row: dict) -> str:
    """What a partner's `requested` says, in words: requested, not requested (no longer refreshed since its last
    load), or unknown."""
    if row["requested"] is None:
        return "unknown: no live extraction recorded"
    if row["requested"]:
        staged = row.get("history_fetched_from")
        return "yes" + (f"; its months before {staged} are still to fetch (history in stages, "
                        "EUJP_COMEXT_HISTORY_MONTHS)" if staged else "")
    at = row["last_loaded_at"]
    day = at.strftime("%Y-%m-%d") if isinstance(at, datetime) else str(at or "")[:10]
    return (f"no: no longer refreshed; last loaded by run {row['last_run_id']}"
            + (f" ({day})" if day else ""))


# --- removing a partner (`eujp run --remove-partner`) -------------------------------------------------------------

def partner_rows(conn: duckdb.DuckDBPyConnection, partners: Sequence[str]) -> dict[str, int]:
    """How many Comext fact rows each of `partners` holds (0 for one it holds none of)."""
    counts = dict.fromkeys(partners, 0)
    if partners and table_exists(conn, FACT):
        counts |= dict(conn.execute(f"SELECT partner, count(*) FROM {FACT} WHERE {PARTNER_IN} "
                                    "GROUP BY partner", [list(partners)]).fetchall())
    return counts


def held_rows(conn: duckdb.DuckDBPyConnection, partners: Sequence[str]) -> dict[str, dict[str, int]]:
    """The rows of `partners` the Comext facts and etl_comext_coverage hold: {partner: {"fact_rows": n,
    "coverage_rows": m}} (zeros for a partner they hold none of)."""
    held = {p: {"fact_rows": n, "coverage_rows": 0} for p, n in partner_rows(conn, partners).items()}
    if partners and table_exists(conn, COVERAGE):
        for partner, n in conn.execute(f"SELECT partner, count(*) FROM {COVERAGE} WHERE {PARTNER_IN} "
                                       "GROUP BY partner", [list(partners)]).fetchall():
            held[partner]["coverage_rows"] = n
    return held


def remove_partner_rows(conn: duckdb.DuckDBPyConnection, partners: Sequence[str]) -> dict[str, dict[str, int]]:
    """Delete the rows of `partners` from the Comext facts and from etl_comext_coverage (what the live plan says
    it covered for them: a partner asked for again later is fetched whole, as one added), on `conn` (the run's
    staged warehouse: the deletion is promoted with the run, or discarded with it). Returns, per partner, the
    rows deleted from each table (held_rows before the deletion)."""
    removed = held_rows(conn, partners)
    if any(r["fact_rows"] for r in removed.values()):
        conn.execute(f"DELETE FROM {FACT} WHERE {PARTNER_IN}", [list(partners)])
    if any(r["coverage_rows"] for r in removed.values()):
        conn.execute(f"DELETE FROM {COVERAGE} WHERE {PARTNER_IN}", [list(partners)])
    return removed


def removal_note(removed: dict[str, dict[str, int]]) -> str:
    """The removal in words, for the run's summary and log: 'partner(s) removed on request (--remove-partner): KR
    (1,234 fact row(s), 7 coverage row(s))', a partner the warehouse held no fact row of ending ': none in the
    warehouse'."""
    parts = [f"{p} ({r['fact_rows']:,} fact row(s), {r['coverage_rows']:,} coverage row(s))"
             + ("" if r["fact_rows"] else ": none in the warehouse") for p, r in sorted(removed.items())]
    return "partner(s) removed on request (--remove-partner): " + ", ".join(parts)
