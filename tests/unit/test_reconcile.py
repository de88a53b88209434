"""Cross-source reconciliation (eujp.reconcile) on the bundled warehouse: the bundled data hold no pair of
figures to compare, so each test adds one (test rows, not published figures) beside the real bundled rows and
checks that a breach is reported with its figures: in the result, the run's warnings and the run report."""

from __future__ import annotations

import pytest

from eujp import reconcile
from eujp.report import render_report

pytestmark = pytest.mark.slow


def test_the_bundled_data_hold_nothing_to_compare(scratch):
    assert reconcile.reconcile(scratch) == []
    assert "0 comparison(s)" in reconcile.report_section(scratch)


def test_a_comext_sum_above_the_ext_lt_maineu_total_is_a_breach_with_its_figures(scratch):
    # the real bundled Comext rows: EU27_2020 imports of CN8 84834030 from Japan, June 2025
    (cn8_eur,) = scratch.execute("SELECT sum(value_eur) FROM fact_goods_trade_product WHERE reporter = 'EU27_2020' "
                                 "AND partner = 'JP' AND flow = 'import' AND year(period) = 2025").fetchone()
    assert cn8_eur > 0
    cn8 = cn8_eur / 1e6
    # a (test) annual total below that one product's June value: impossible for a subset -> breach
    scratch.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) "
                    "VALUES ('EU27_2020', 'JP', 'import', 2025, ?)", [cn8 - 60])
    (result,) = reconcile.reconcile(scratch)
    assert (result.check, result.reporter, result.partner, result.period_year, result.flow) == \
        ("comext_vs_ext_lt_maineu", "EU27_2020", "JP", 2025, "import")
    assert result.detail_mio_eur == pytest.approx(cn8)
    assert result.total_mio_eur == pytest.approx(cn8 - 60)
    assert result.tolerance_mio_eur == 50.0 and not result.two_sided and not result.ok
    assert result.basis == "coverage unknown: upper bound only"
    # within the tolerance: no breach
    scratch.execute("UPDATE fact_goods_trade SET value_mio_eur = ? WHERE period_year = 2025", [cn8 - 40])
    assert [r.ok for r in reconcile.reconcile(scratch)] == [True]


def cover(conn, year: int, months: range, reporter: str = "EU27_2020", flow: str = "import") -> None:
    """(Test) coverage rows as a live extraction of every CN8 product would have loaded them."""
    for m in months:
        conn.execute("INSERT INTO etl_comext_coverage VALUES (?, 'JP', ?, make_date(?, ?, 1), 'ESTAT:CXT_NC(7.0)', "
                     "'test', now())", [reporter, flow, year, m])


def test_a_covered_year_whose_comext_sum_falls_short_of_the_total_is_a_two_sided_breach(scratch):
    (cn8_eur,) = scratch.execute("SELECT sum(value_eur) FROM fact_goods_trade_product WHERE reporter = 'EU27_2020' "
                                 "AND partner = 'JP' AND flow = 'import' AND year(period) = 2025").fetchone()
    cn8 = cn8_eur / 1e6
    # a (test) annual total 10,000 €m above the CN8 sum: a shortfall, well beyond max(1 %, 50 €m)
    total = cn8 + 10_000
    scratch.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) "
                    "VALUES ('EU27_2020', 'JP', 'import', 2025, ?)", [total])
    # coverage unknown (nothing in etl_comext_coverage): a sum below the total is no breach (upper bound only)
    (result,) = reconcile.reconcile(scratch)
    assert not result.two_sided and result.ok and result.basis == "coverage unknown: upper bound only"
    # 11 months covered with every product: still one-sided
    cover(scratch, 2025, range(1, 12))
    cover(scratch, 2025, range(1, 13), flow="export")  # another flow's coverage does not count
    (result,) = reconcile.reconcile(scratch)
    assert not result.two_sided and result.ok
    # all 12 months covered: the sum must equal the total -> a breach, with both figures, the difference
    # and the tolerance, in the result, the run's warnings and the run report
    cover(scratch, 2025, range(12, 13))
    (result,) = reconcile.reconcile(scratch)
    assert result.two_sided and not result.ok and result.basis == "all products, 12 months covered"
    assert result.detail_mio_eur == pytest.approx(cn8) and result.total_mio_eur == pytest.approx(total)
    assert result.difference_mio_eur == pytest.approx(-10_000)
    assert result.tolerance_mio_eur == pytest.approx(total / 100)
    (warning,) = reconcile.warnings({"reconciliation": reconcile.to_dict([result])})
    assert warning == (
        f"reconciliation comext_vs_ext_lt_maineu: EU27_2020 JP 2025 import: Comext CN8 sum (1 month(s)) "
        f"{cn8:,.1f} €m must equal ext_lt_maineu total {total:,.1f} €m within {total / 100:,.1f} €m "
        f"(difference -10,000.0 €m) [all products, 12 months covered]")
    html = render_report(scratch, run_id="test")
    assert "1 breach(es)" in html and "etl_comext_coverage: 1 comparison(s)" in html
    assert f"{cn8:,.1f}" in html and f"{total:,.1f}" in html and "-10,000.0" in html and f"{total / 100:,.1f}" in html
    assert "must equal (all products, 12 months covered)" in html
    # within the tolerance: no breach; a covered year of a wildcard reporter ('*') counts too
    scratch.execute("UPDATE fact_goods_trade SET value_mio_eur = ? WHERE period_year = 2025", [cn8 + 40])
    assert [(r.two_sided, r.ok) for r in reconcile.reconcile(scratch)] == [(True, True)]
    scratch.execute("DELETE FROM etl_comext_coverage WHERE flow = 'import'")
    cover(scratch, 2025, range(1, 13), reporter="*")
    assert [(r.two_sided, r.ok) for r in reconcile.reconcile(scratch)] == [(True, True)]


def test_a_covered_year_with_no_comext_row_compares_a_sum_of_zero(scratch):
    scratch.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) "
                    "VALUES ('EU27_2020', 'JP', 'export', 2019, 60000)")
    assert reconcile.reconcile(scratch) == []  # no Comext row, coverage unknown: nothing to compare
    cover(scratch, 2019, range(1, 13), flow="export")
    (result,) = reconcile.reconcile(scratch)
    assert (result.period_year, result.detail_mio_eur, result.two_sided, result.ok) == (2019, 0.0, True, False)


def test_service_components_against_their_total_in_the_warnings_and_the_report(scratch):
    # EU28 services exports to Japan 2016 are 31.6bn (DG Trade); two (test) components adding up to more
    (total,) = scratch.execute("SELECT value_mio_eur FROM fact_services_trade WHERE reporter = 'EU28' AND "
                               "partner = 'JP' AND bop_item = 'S' AND flow = 'export' AND period_year = 2016"
                               ).fetchone()
    assert total == 31600.0
    for item, value in (("SC", 20000.0), ("SD", 12000.0)):
        scratch.execute("INSERT INTO fact_services_trade (reporter, partner, bop_item, flow, period_year, "
                        "value_mio_eur) VALUES ('EU28', 'JP', ?, 'export', 2016, ?)", [item, value])
    found = reconcile.breaches(reconcile.reconcile(scratch))
    assert [(r.check, r.detail_mio_eur, r.total_mio_eur, r.tolerance_mio_eur) for r in found] == \
        [("services_components_vs_total", 32000.0, 31600.0, 316.0)]
    audit = {"reconciliation": reconcile.to_dict(reconcile.reconcile(scratch))}
    assert reconcile.warnings(audit) == [
        ("reconciliation services_components_vs_total: EU28 JP 2016 export: sum of 2 of 12 service components "
         "32,000.0 €m must not exceed total services (S) 31,600.0 €m within 316.0 €m (difference +400.0 €m) "
         "[some components only: upper bound]")]
    html = render_report(scratch, run_id="test")
    assert "Cross-source reconciliation" in html and "1 breach(es)" in html
    assert "32,000.0" in html and "31,600.0" in html and "+400.0" in html


def test_the_report_shows_the_audits_reconciliation_without_summing_the_facts_again(scratch):
    """The run passes its audit's reconciliation (to_dict) to the report: the report renders it as it is (the
    same section as reconciling the warehouse itself) and does not query the facts again; a summary without
    "two_sided" (a manifest older than it) is reconciled afresh."""
    for item, value in (("SC", 20000.0), ("SD", 12000.0)):
        scratch.execute("INSERT INTO fact_services_trade (reporter, partner, bop_item, flow, period_year, "
                        "value_mio_eur) VALUES ('EU28', 'JP', ?, 'export', 2016, ?)", [item, value])
    summary = reconcile.to_dict(reconcile.reconcile(scratch))
    assert summary["breaches"] and "two_sided" in summary
    assert reconcile.report_section(scratch, summary) == reconcile.report_section(scratch)
    # what the section shows comes from the summary: a breach only it holds appears, the warehouse's does not
    other = {**summary, "compared": 7, "breaches": [{**summary["breaches"][0], "reporter": "EU27_2020",
                                                     "detail_mio_eur": 99999.0}]}
    html = render_report(scratch, run_id="test", reconciliation=other)
    section = html.split('<h2 id="reconciliation">', 1)[1].split("<h2", 1)[0]
    assert "7 comparison(s)" in section and "EU27_2020" in section and "99,999.0" in section
    assert "32,000.0" not in section
    older = {k: v for k, v in other.items() if k != "two_sided"}
    assert "32,000.0" in reconcile.report_section(scratch, older)


def test_the_uk_is_compared_under_its_two_codes_and_a_balance_never(scratch):
    """Comext names the United Kingdom GB (ISO2), ext_lt_maineu UK (Eurostat's code, dim_country.eurostat_code):
    their figures are compared (before, never, or with an all-partner coverage a false breach of 0 €m against
    the UK total). A balance has no CN8 sum: coverage of every flow ('*') makes no comparison of it."""
    # (test) Comext rows of GB: 2,400 €m of imports in 2025 over twelve months
    for m in range(1, 13):
        scratch.execute("INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, "
                        "period_code, value_eur) VALUES ('EU27_2020', 'GB', '84834030', 'import', "
                        "make_date(2025, ?, 1), printf('2025-%02d', ?), 200e6)", [m, m])
        scratch.execute("INSERT INTO etl_comext_coverage VALUES ('EU27_2020', '*', '*', make_date(2025, ?, 1), "
                        "'ESTAT:CXT_NC(7.0)', 'test', now())", [m])
    scratch.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) VALUES "
                    "('EU27_2020', 'UK', 'import', 2025, 2400), ('EU27_2020', 'UK', 'balance', 2025, 300)")
    results = [r for r in reconcile.reconcile(scratch) if r.partner == "UK"]
    assert [(r.flow, r.detail_mio_eur, r.total_mio_eur, r.two_sided, r.ok) for r in results] == \
        [("import", pytest.approx(2400.0, abs=1), 2400.0, True, True)]  # + the bundled GB rows of June
    assert all(r.flow != "balance" for r in reconcile.reconcile(scratch))
