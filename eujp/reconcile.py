"""Cross-source reconciliation: figures of two sources (or of one source at two levels) that describe the same
trade, compared with a stated tolerance. A breach is a warning of the run (summary, run manifest under
audit.reconciliation, run report), never a failure: the sources are published as they are.

Checks (every comparison is for the same EU aggregate, partner, year and flow):

* `comext_vs_ext_lt_maineu`: the sum of Comext's monthly CN8 values (fact_goods_trade_product) against
  ext_lt_maineu's annual total (fact_goods_trade). The transform keeps CN8 codes only (there is no
  all-products row), so whether the sum may be compared with the total depends on what was extracted: where
  etl_comext_coverage says that live extractions asked for every CN8 product of the codelist in all 12
  months of the year (for that reporter, partner and flow), the check is two-sided: the CN8 sum must equal the
  total within the tolerance ("all products, 12 months covered"; a covered year with no Comext row at all
  compares a sum of 0). Elsewhere (listed products, snapshot files, fewer months covered) the extract may hold
  any subset of products and months, so the check is the bound that holds for any subset: the CN8 sum must
  not exceed the total by more than the tolerance ("coverage unknown: upper bound only").
* `services_components_vs_total`: the first-level components of total services (bop_item S: SA to SL,
  BPM6) against S in fact_services_trade. Where all twelve are loaded, their sum must equal S within the
  tolerance; where only some are, their sum must not exceed S by more than it.

Tolerance: max(TOLERANCE_PCT % of the reference total, TOLERANCE_MIO_EUR million euro). Published totals
are rounded (ext_lt_maineu to 0.1 million; the bundled figures to the published billions) and Comext and
ext_lt_maineu are revised on different days, so a small gap is expected; a gap beyond 1 % or 50 million euro
is worth a look.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from html import escape

import duckdb

from eujp.warehouse import table_exists

TOLERANCE_PCT = 1.0
TOLERANCE_MIO_EUR = 50.0
# BPM6 first-level service components of bop_item S (EBOPS 2010 via bop_its6_det).
SERVICE_COMPONENTS: tuple[str, ...] = ("SA", "SB", "SC", "SD", "SE", "SF", "SG", "SH", "SI", "SJ", "SK", "SL")


@dataclass(frozen=True)
class Reconciliation:
    check: str
    reporter: str
    partner: str
    period_year: int
    flow: str
    detail_label: str  # what was summed
    detail_mio_eur: float
    total_label: str  # what it is compared with
    total_mio_eur: float
    tolerance_mio_eur: float
    two_sided: bool
    ok: bool
    basis: str = ""  # why this rule: e.g. "all products, 12 months covered", "coverage unknown: upper bound only"

    @property
    def difference_mio_eur(self) -> float:
        return self.detail_mio_eur - self.total_mio_eur

    def message(self) -> str:
        rule = "must equal" if self.two_sided else "must not exceed"
        return (f"reconciliation {self.check}: {self.reporter} {self.partner} {self.period_year} {self.flow}: "
                f"{self.detail_label} {self.detail_mio_eur:,.1f} €m {rule} {self.total_label} "
                f"{self.total_mio_eur:,.1f} €m within {self.tolerance_mio_eur:,.1f} €m "
                f"(difference {self.difference_mio_eur:+,.1f} €m)" + (f" [{self.basis}]" if self.basis else ""))


def tolerance(total: float) -> float:
    return max(abs(total) * TOLERANCE_PCT / 100, TOLERANCE_MIO_EUR)


def _judge(check: str, row: tuple, detail_label: str, total_label: str, two_sided: bool,
           basis: str = "") -> Reconciliation:
    reporter, partner, year, flow, detail, total = row
    tol = tolerance(total)
    ok = abs(detail - total) <= tol if two_sided else detail - total <= tol
    return Reconciliation(check, reporter, partner, int(year), flow, detail_label, float(detail), total_label,
                          float(total), tol, two_sided, bool(ok), basis)


COVERED = "all products, 12 months covered"
UNKNOWN = "coverage unknown: upper bound only"


def _comext_rows(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(reporter, partner, year, flow, CN8 sum €m, ext_lt_maineu total €m, months with CN8 rows, months covered
    with all products): every ext_lt_maineu total that has Comext rows or is covered in all 12 months."""
    covered = """
        SELECT g.reporter, g.partner, g.period_year AS y, g.flow, count(DISTINCT month(v.period)) AS covered
        FROM (SELECT DISTINCT reporter, partner, period_year, flow FROM fact_goods_trade
              WHERE flow IN ('export', 'import')) AS g
        JOIN partners AS m ON m.eurostat = g.partner
        JOIN etl_comext_coverage AS v
          ON v.reporter IN (g.reporter, '*') AND v.partner IN (m.comext, '*') AND v.flow IN (g.flow, '*')
         AND year(v.period) = g.period_year
        GROUP BY ALL""" if table_exists(conn, "etl_comext_coverage") else """
        SELECT NULL::VARCHAR AS reporter, NULL::VARCHAR AS partner, NULL::INTEGER AS y, NULL::VARCHAR AS flow,
               0 AS covered WHERE false"""
    return conn.execute(f"""
        WITH partners AS (  -- ext_lt_maineu's partner codes (Eurostat's: UK, EL) and Comext's (ISO2: GB, GR)
            SELECT DISTINCT g.partner AS eurostat, coalesce(d.iso2, g.partner) AS comext
            FROM fact_goods_trade AS g LEFT JOIN dim_country AS d ON d.eurostat_code = g.partner),
        cn8 AS (  -- only the reporters and partners ext_lt_maineu has (its EU aggregates, not the member
                  -- states that make most Comext rows): 25M fact rows were summed for a few hundred totals
            SELECT p.reporter, m.eurostat AS partner, year(p.period) AS y, p.flow, sum(p.value_eur) / 1e6 AS cn8,
                   count(DISTINCT month(p.period)) AS months
            FROM fact_goods_trade_product AS p JOIN partners AS m ON m.comext = p.partner
            WHERE p.value_eur IS NOT NULL AND p.reporter IN (SELECT reporter FROM fact_goods_trade)
            GROUP BY ALL),
        total AS (  -- exports and imports: the balance has no CN8 sum to compare with
            SELECT reporter, partner, period_year AS y, flow, any_value(value_mio_eur) AS total
            FROM fact_goods_trade WHERE value_mio_eur IS NOT NULL AND flow IN ('export', 'import') GROUP BY ALL),
        covered AS ({covered})
        SELECT t.reporter, t.partner, t.y, t.flow, coalesce(c.cn8, 0), t.total, coalesce(c.months, 0),
               coalesce(v.covered, 0)
        FROM total AS t
        LEFT JOIN cn8 AS c USING (reporter, partner, y, flow)
        LEFT JOIN covered AS v USING (reporter, partner, y, flow)
        WHERE c.cn8 IS NOT NULL OR v.covered = 12
        ORDER BY ALL""").fetchall()


def reconcile(conn: duckdb.DuckDBPyConnection) -> list[Reconciliation]:
    """Every comparison the warehouse allows (module docstring)."""
    results = []
    for reporter, partner, year, flow, cn8, total, months, covered in _comext_rows(conn):
        two_sided = covered == 12
        results.append(_judge("comext_vs_ext_lt_maineu", (reporter, partner, year, flow, cn8, total),
                              f"Comext CN8 sum ({months} month(s))", "ext_lt_maineu total", two_sided,
                              COVERED if two_sided else UNKNOWN))
    components = ", ".join(f"'{c}'" for c in SERVICE_COMPONENTS)
    services = conn.execute(f"""
        SELECT reporter, partner, period_year, flow,
               sum(value_mio_eur) FILTER (WHERE bop_item IN ({components})) AS parts,
               any_value(value_mio_eur) FILTER (WHERE bop_item = 'S') AS total,
               count(value_mio_eur) FILTER (WHERE bop_item IN ({components})) AS n
        FROM fact_services_trade
        WHERE flow IN ('export', 'import')
        GROUP BY ALL
        HAVING total IS NOT NULL AND n > 0
        ORDER BY ALL""").fetchall()
    for reporter, partner, year, flow, parts, total, n in services:
        results.append(_judge("services_components_vs_total", (reporter, partner, year, flow, parts, total),
                              f"sum of {n} of {len(SERVICE_COMPONENTS)} service components", "total services (S)",
                              n == len(SERVICE_COMPONENTS),
                              "all components loaded" if n == len(SERVICE_COMPONENTS)
                              else "some components only: upper bound"))
    return results


def breaches(results: list[Reconciliation]) -> list[Reconciliation]:
    return [r for r in results if not r.ok]


def to_dict(results: list[Reconciliation]) -> dict:
    """For the run manifest (audit.reconciliation): the tolerance, how many comparisons, and every breach."""
    return {"tolerance": f"max({TOLERANCE_PCT:g} % of the total, {TOLERANCE_MIO_EUR:g} million euro)",
            "compared": len(results),
            "two_sided": sum(r.two_sided for r in results if r.check == "comext_vs_ext_lt_maineu"),
            "breaches": [{**asdict(r), "message": r.message()} for r in breaches(results)]}


def warnings(audit: dict) -> list[str]:
    """The run's warnings from the audit dict's reconciliation part (one per breach)."""
    return [b["message"] for b in (audit.get("reconciliation") or {}).get("breaches", [])]


def report_section(conn: duckdb.DuckDBPyConnection, summary: dict | None = None) -> str:
    """The run report's reconciliation section (HTML): the tolerance, and every breach with its figures.
    `summary`: the audit's (`to_dict`, in the run's audit dict) of the same warehouse, so that the report does
    not sum the Comext facts a second time (3 s of a day at 50M rows); None, or one without "two_sided" (an
    older manifest), reconciles `conn` here."""
    if summary is None or "two_sided" not in summary:
        summary = to_dict(reconcile(conn))
    fields = set(Reconciliation.__dataclass_fields__)
    found = [Reconciliation(**{k: v for k, v in b.items() if k in fields}) for b in summary["breaches"]]
    two = summary["two_sided"]
    head = ("<h2 id=\"reconciliation\">Cross-source reconciliation</h2>"
            f"<p>{summary['compared']} comparison(s) of Comext CN8 sums with ext_lt_maineu totals and of service components "
            f"with total services; tolerance max({TOLERANCE_PCT:g} % of the total, {TOLERANCE_MIO_EUR:g} €m). "
            f"A Comext CN8 sum must equal the total where every product of all 12 months was extracted "
            f"(etl_comext_coverage: {two} comparison(s)), and must not exceed it elsewhere (coverage unknown). "
            f"{len(found)} breach(es).</p>")
    if not found:
        return head
    rows = "".join(
        f"<tr><td>{escape(r.check)}</td><td>{escape(r.reporter)}</td><td>{escape(r.partner)}</td>"
        f"<td>{r.period_year}</td><td>{escape(r.flow)}</td><td>{escape(r.detail_label)}</td>"
        f"<td class=\"num\">{r.detail_mio_eur:,.1f}</td><td>{escape(r.total_label)}</td>"
        f"<td class=\"num\">{r.total_mio_eur:,.1f}</td><td class=\"num\">{r.difference_mio_eur:+,.1f}</td>"
        f"<td class=\"num\">{r.tolerance_mio_eur:,.1f}</td>"
        f"<td>{'must equal' if r.two_sided else 'must not exceed'} ({escape(r.basis)})</td></tr>" for r in found)
    return (head + "<table><thead><tr><th>check</th><th>EU aggregate</th><th>partner</th><th>year</th>"
            "<th>flow</th><th>detail</th><th>€m</th><th>total</th><th>€m</th><th>difference €m</th>"
            f"<th>tolerance €m</th><th>rule</th></tr></thead><tbody>{rows}</tbody></table>")
