"""The model layer on the bundled data: dimensions, marts and the claims check, against values computed by
hand from the bundled files (data/snapshot, data/reference); then the claims' verdicts are shown to follow
the data by changing it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest
from support.relations import model_rows_differing

from eujp.marts import claim_files
from eujp.marts.build import MartBuildError, build_marts
from eujp.tables import ALL_TABLES, MART_TABLES, MODEL_TABLES, REFERENCE_TABLES

pytestmark = pytest.mark.slow
REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference"


@pytest.fixture(scope="module")
def conn(bundled_warehouse):
    with duckdb.connect(str(bundled_warehouse), read_only=True) as c:
        yield c


def insert_months(conn, reporter: str, product: str, flow: str, rows, quantity_kg: float | None = None) -> None:
    """Constructed monthly Comext facts: (partner, 'YYYY-MM', value_eur) for the reporter, product and flow."""
    conn.executemany(
        "INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, period_code, "
        "value_eur, quantity_kg) VALUES (?, ?, ?, ?, (? || '-01')::DATE, ?, ?, ?)",
        [(reporter, partner, product, flow, month, month, value, quantity_kg) for partner, month, value in rows])


def one(conn, sql, params=()):
    rows = conn.execute(sql, params).fetchall()
    assert len(rows) == 1, rows
    return rows[0]


# --- comments and layout -----------------------------------------------------------------------------

def test_every_table_and_column_has_a_comment(conn):
    tables = {r[0]: r[1] for r in conn.execute("SELECT table_name, comment FROM duckdb_tables() WHERE NOT internal"
                                               ).fetchall()}
    assert set(tables) == {t.name for t in ALL_TABLES}
    for table in ALL_TABLES:
        assert tables.get(table.name), f"{table.name} has no comment"
    missing = conn.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND coalesce(comment, '') = ''"
    ).fetchall()
    assert missing == []


def test_every_mart_has_an_sql_file_with_a_documenting_header():
    from eujp.marts import SQL_DIR

    for table in MODEL_TABLES:
        if table.name == "mart_claims":
            continue
        text = (SQL_DIR / f"{table.name}.sql").read_text()
        assert text.startswith(f"-- {table.name}:"), table.name
        assert "Grain" in text or "grain" in text, table.name
    for path in claim_files():
        assert path.read_text().startswith("-- Claim "), path.name


def test_reference_tables_keep_every_csv_row_and_its_source(conn):
    files = {"ref_japan_rank": ["japan_rank_among_eu_partners.csv"],
             "ref_export_restrictions_trend": ["export_restrictions_trend.csv"],
             "ref_critical_raw_materials": ["eu_critical_raw_materials.csv"],
             "ref_published_trade_figures": ["eu_japan_goods_trade_annual.csv", "eu_japan_services_trade_annual.csv"]}
    assert set(files) == {t.name for t in REFERENCE_TABLES}
    for table, names in files.items():
        expected = sum(len(list(csv.DictReader((REFERENCE / n).read_text(encoding="utf-8").splitlines())))
                       for n in names)
        assert one(conn, f"SELECT count(*) FROM {table}") == (expected,), table
    assert one(conn, "SELECT count(*) FROM ref_critical_raw_materials WHERE source_url IS NULL") == (0,)
    # 8110 (antimony and articles thereof) is a 4-digit HS code without a dot in the file
    assert one(conn, "SELECT hs_prefix FROM ref_critical_raw_materials WHERE hs_code = '8110'") == ("8110",)
    assert one(conn, "SELECT index_value, index_qualifier FROM ref_export_restrictions_trend "
                     "WHERE reference_line = 7") == (5.0, ">=")


# --- dimensions ----------------------------------------------------------------------------------------

def test_eu_aggregates_have_their_members(conn):
    counts = dict(conn.execute("SELECT aggregate_code, count(*) FROM dim_eu_aggregate_member GROUP BY 1").fetchall())
    assert counts == {"EU15": 15, "EU27_2007": 27, "EU28": 28, "EU27_2020": 27}
    members = {a: {r[0] for r in conn.execute("SELECT iso2 FROM dim_eu_aggregate_member WHERE aggregate_code = ?",
                                              [a]).fetchall()} for a in counts}
    assert members["EU28"] - members["EU27_2020"] == {"GB"}
    assert members["EU28"] - members["EU27_2007"] == {"HR"}
    assert members["EU27_2007"] - members["EU15"] == {"CY", "CZ", "EE", "HU", "LV", "LT", "MT", "PL", "SK", "SI",
                                                      "BG", "RO"}


def test_eu27_2020_aggregate_equals_its_member_states(conn):
    """Comext EU27_2020 imports of CN 84834030 in June 2025 by partner: the 25 member-state partners in the
    file (dim_eu_aggregate_member) plus QV (intra-EU, partner not specified) add up to INT_EU27_2020, to the
    euro; the remaining partners to EXT_EU27_2020 (values from the bundled CSV)."""
    intra, extra = one(conn, """
        SELECT sum(value_eur) FILTER (WHERE partner IN (SELECT iso2 FROM dim_eu_aggregate_member
                                                        WHERE aggregate_code = 'EU27_2020') OR partner = 'QV'),
               sum(value_eur) FILTER (WHERE partner NOT IN (SELECT iso2 FROM dim_eu_aggregate_member
                                                            WHERE aggregate_code = 'EU27_2020')
                                      AND partner NOT IN ('QV', 'INT_EU27_2020', 'EXT_EU27_2020'))
        FROM fact_goods_trade_product WHERE reporter = 'EU27_2020' AND period_code = '2025-06'""")
    assert intra == 16103557.0 == one(conn, "SELECT value_eur FROM fact_goods_trade_product WHERE partner = "
                                            "'INT_EU27_2020'")[0]
    assert extra == 9914131.0


def test_dim_date_membership_over_time(conn):
    rows = {str(d): (n, a) for d, n, a in conn.execute(
        "SELECT date_day, eu_member_count, eu_aggregate FROM dim_date WHERE date_day IN ('1995-01-01', "
        "'2005-06-01', '2013-06-30', '2013-07-01', '2020-01-31', '2020-02-01', '2024-11-01')").fetchall()}
    assert rows == {"1995-01-01": (15, "EU15"), "2005-06-01": (25, None), "2013-06-30": (27, "EU27_2007"),
                    "2013-07-01": (28, "EU28"), "2020-01-31": (28, "EU28"), "2020-02-01": (27, "EU27_2020"),
                    "2024-11-01": (27, "EU27_2020")}
    # one row per day, and every date and year the facts use has its row
    assert one(conn, "SELECT count(*) = count(DISTINCT date_day) FROM dim_date") == (True,)
    assert one(conn, """SELECT count(*) FROM (
        SELECT event_date AS d FROM fact_security_events UNION ALL SELECT period FROM fact_goods_trade_product
        UNION ALL SELECT make_date(order_year, 1, 1) FROM fact_arms_transfers
        UNION ALL SELECT make_date(period_year, 1, 1) FROM fact_goods_trade) AS f
        WHERE f.d NOT IN (SELECT date_day FROM dim_date)""") == (0,)


def test_dim_product_hierarchy_and_critical_raw_materials(conn):
    rows = {r[0:2]: r[2:] for r in conn.execute(
        "SELECT product_level, product_code, hs6, hs4, hs2, sitc_code, is_critical_raw_material, crm_materials, "
        "strategic_status FROM dim_product").fetchall()}
    assert rows == {
        ("CN8", "84834030"): ("848340", "8483", "84", None, False, None, None),
        ("HS6", "848340"): ("848340", "8483", "84", None, False, None, None),
        # OECD measures: antimony waste and scrap is antimony (CRM code 8110), aluminium scrap 7602 is not on
        # the list (only 2606, 2818.20, 7601), nor are diamonds
        ("HS6", "811020"): ("811020", "8110", "81", None, True, "antimony", "no"),
        ("HS6", "760200"): ("760200", "7602", "76", None, False, None, None),
        ("HS6", "710210"): ("710210", "7102", "71", None, False, None, None),
    }
    assert one(conn, "SELECT product_label FROM dim_product WHERE product_code = '710210'") == ("Diamonds, Unsorted",)
    # the CN8 row is named from the Comext product codelist bundled with the Comext files
    assert one(conn, "SELECT product_label, label_source FROM dim_product WHERE product_code = '84834030'") == (
        "Ball or roller screws", "Comext codelist ESTAT:CXT_NC(1.0)")


# --- marts ---------------------------------------------------------------------------------------------

def test_trade_annual_values_balance_and_year_on_year(conn):
    row = one(conn, "SELECT exports_mio_eur, imports_mio_eur, balance_mio_eur, balance_computed_mio_eur, "
                    "total_trade_mio_eur FROM mart_trade_annual WHERE reporter = 'EU28' AND trade_type = 'goods' "
                    "AND period_year = 2016")
    # DG Trade: EU28 exports 58.0, imports 66.0, balance -8.0 (EUR bn); the published balance = exports - imports
    assert row == (58000.0, 66000.0, -8000.0, 58000.0 - 66000.0, 124000.0)
    exp, imp, bal, total = one(conn, "SELECT exports_yoy_pct, imports_yoy_pct, balance_yoy_mio_eur, "
                                     "total_trade_yoy_pct FROM mart_trade_annual WHERE reporter = 'EU28' "
                                     "AND trade_type = 'goods' AND period_year = 2017")
    assert exp == pytest.approx(100 * (60500 - 58000) / 58000)  # 4.31 %
    assert imp == pytest.approx(100 * (68900 - 66000) / 66000)  # 4.39 %
    assert bal == pytest.approx(-8400 - -8000)
    assert total == pytest.approx(100 * (129400 - 124000) / 124000)
    # 2015 has no goods figure: 2016's change is not computed against 2014
    assert one(conn, "SELECT exports_yoy_pct FROM mart_trade_annual WHERE reporter = 'EU28' AND trade_type = "
                     "'goods' AND period_year = 2016") == (None,)
    # aggregates are never mixed: EU27_2007 2012 has no 2011 of its own (2011 is EU28)
    assert one(conn, "SELECT exports_yoy_pct FROM mart_trade_annual WHERE reporter = 'EU27_2007' AND trade_type = "
                     "'goods' AND period_year = 2012") == (None,)
    assert one(conn, "SELECT exports_yoy_pct FROM mart_trade_annual WHERE reporter = 'EU28' AND trade_type = "
                     "'goods' AND period_year = 2012")[0] == pytest.approx(100 * (55700 - 49100) / 49100)


def test_trade_annual_services_and_combined(conn):
    # EEAS 2020: exports 25.5, imports 12.5, "surplus of almost EUR 15bn": kept as published, not recomputed
    assert one(conn, "SELECT exports_mio_eur, imports_mio_eur, balance_mio_eur, balance_computed_mio_eur "
                     "FROM mart_trade_annual WHERE reporter = 'EU27_2020' AND trade_type = 'services' "
                     "AND period_year = 2020") == (25500.0, 12500.0, 15000.0, 13000.0)
    assert one(conn, "SELECT exports_yoy_pct FROM mart_trade_annual WHERE reporter = 'EU27_2020' AND trade_type = "
                     "'services' AND period_year = 2022")[0] == pytest.approx(100 * (37200 - 30500) / 30500)
    # goods and services: 58.0 + 31.6 exports, 66.0 + 18.5 imports (EU28 2016)
    assert one(conn, "SELECT exports_mio_eur, imports_mio_eur, balance_mio_eur FROM mart_trade_annual WHERE "
                     "reporter = 'EU28' AND trade_type = 'goods_and_services' AND period_year = 2016") \
        == (pytest.approx(89600.0), pytest.approx(84500.0), pytest.approx(-8000.0 + 13100.0))
    # no goods_and_services sum where only one of them is published (2018: goods only)
    assert conn.execute("SELECT * FROM mart_trade_annual WHERE trade_type = 'goods_and_services' "
                        "AND period_year = 2018").fetchall() == []


def test_trade_annual_carries_each_figures_observation_flag(scratch):
    """A provisional (p) or estimated (e) figure is flagged in the mart as in the fact table; a combined
    goods-and-services figure carries the flags of both its parts."""
    assert one(scratch, "SELECT exports_obs_status, imports_obs_status, balance_obs_status FROM mart_trade_annual "
                        "WHERE reporter = 'EU28' AND trade_type = 'goods_and_services' AND period_year = 2016") \
        == (None, None, None)  # the bundled figures are unflagged
    scratch.execute("UPDATE fact_goods_trade SET obs_status = 'p' WHERE reporter = 'EU28' AND partner = 'JP' "
                    "AND period_year = 2016 AND flow IN ('export', 'balance')")
    scratch.execute("UPDATE fact_services_trade SET obs_status = 'e' WHERE reporter = 'EU28' AND partner = 'JP' "
                    "AND period_year = 2016 AND bop_item = 'S' AND flow = 'export'")
    build_marts(scratch)
    flags = "SELECT exports_obs_status, imports_obs_status, balance_obs_status FROM mart_trade_annual " \
            "WHERE reporter = 'EU28' AND period_year = 2016 AND trade_type = ?"
    assert one(scratch, flags, ["goods"]) == ("p", None, "p")
    assert one(scratch, flags, ["services"]) == ("e", None, None)
    assert one(scratch, flags, ["goods_and_services"]) == ("e, p", None, "p")
    assert one(scratch, flags.replace("2016", "2017"), ["goods"]) == (None, None, None)


def test_trade_annual_ranks(conn):
    ranks = {r[0:3]: r[3:] for r in conn.execute(
        "SELECT period_year, reporter, trade_type, japan_rank_exports, japan_rank_imports, japan_rank_total, "
        "rank_statements FROM mart_trade_annual WHERE rank_statements > 0").fetchall()}
    assert ranks[(2017, "EU28", "goods")] == (6, 7, None, 1)
    assert ranks[(2015, "EU28", "services")] == (4, None, None, 1)
    assert ranks[(2010, "EU27_2007", "goods")] == (6, None, 6, 2)  # two statements, merged
    assert ranks[(2024, "EU27_2020", "goods")] == (6, 9, None, 1)
    assert ranks[(2023, "EU27_2020", "goods_and_services")] == (None, None, 7, 1)
    # within-Asia ranks (2nd) are not overall ranks and never appear here
    assert min(min(x for x in v[:3] if x is not None) for v in ranks.values()) == 4


def test_product_trade_and_japan_among_extra_eu_partners(conn):
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT reporter, months_covered, first_month, last_month, value_eur, quantity_kg, rank_in_flow, "
        "share_of_loaded_products, months_with_all_partners, extra_eu_value_eur, japan_share_of_extra_eu, "
        "japan_rank_among_extra_eu, extra_eu_partners_ranked FROM mart_product_trade "
        "WHERE product_cn8 = '84834030' AND flow = 'import' AND period_year = 2025").fetchall()}
    # DE imports from JP, Jan-Mar 2025: 668,914 + 1,663,789 + 1,054,978 EUR; 202.34 + 502.02 + 307.10 x 100 kg
    assert rows["DE"][:5] == (3, "2025-01", "2025-03", 668914.0 + 1663789.0 + 1054978.0, pytest.approx(101146.0))
    assert rows["DE"][5:] == (1, 1.0, 0, None, None, None, None)  # no all-partner extract for DE
    # EU27_2020, June 2025: JP 2,264,878 of EXT_EU27_2020 9,914,131; CH (4,187,411) is first among the 16
    # extra-EU countries in the file (40 country partners less 25 member states, and Serbia under Comext's code
    # XS; the pseudo-partners QV, QW not ranked)
    assert rows["EU27_2020"][:5] == (1, "2025-06", "2025-06", 2264878.0, pytest.approx(69167.0))
    assert rows["EU27_2020"][7:] == (1, 9914131.0, pytest.approx(2264878 / 9914131), 2, 16)
    chapters = conn.execute("SELECT reporter, hs2, products, value_eur FROM mart_chapter_trade ORDER BY 1").fetchall()
    assert chapters == [("DE", "84", 1, 3387681.0), ("EU27_2020", "84", 1, 2264878.0)]


def test_japan_ranked_among_the_partners_loaded_to_compare(conn, scratch):
    """Partners loaded to compare (EUJP_COMEXT_PARTNERS=JP,CN,KR,US, no all-partner extract): Japan's rank among
    the partner countries loaded, over the months Japan has, EU members and Comext pseudo-partners left out.
    Constructed rows (not real figures: only the ranking is under test)."""
    # on the bundled data: DE has Japan alone (null); EU27_2020's all-partner month ranks as the extra-EU rank
    ranks = {r[0]: r[1:] for r in conn.execute(
        "SELECT reporter, japan_rank_among_loaded_partners, loaded_partners_ranked FROM mart_product_trade "
        "WHERE product_cn8 = '84834030' AND flow = 'import' AND period_year = 2025").fetchall()}
    assert ranks == {"DE": (None, None), "EU27_2020": (2, 16)}
    rows = [("JP", "2024-01", 500.0), ("JP", "2024-02", 500.0),  # Japan: 1,000 over January and February
            ("CN", "2024-01", 900.0), ("CN", "2024-02", 900.0), ("US", "2024-02", 1200.0),
            ("KR", "2024-01", 300.0), ("KR", "2024-03", 5000.0),  # March: not one of Japan's months
            ("FR", "2024-01", 9000.0),  # an EU member: no partner to compare for an EU reporter's trade
            ("QV", "2024-01", 9000.0)]  # a Comext pseudo-partner, not a country
    insert_months(scratch, "DE", "81052000", "export", rows, quantity_kg=1.0)
    build_marts(scratch)
    assert one(scratch, "SELECT value_eur, japan_rank_among_loaded_partners, loaded_partners_ranked, "
               "japan_rank_among_extra_eu FROM mart_product_trade WHERE reporter = 'DE' AND "
               "product_cn8 = '81052000' AND period_year = 2024") == (1000.0, 3, 4, None)  # CN 1,800, US 1,200, KR 300
    # the chapter (81): a second product of China in one of Japan's months counts, Japan's rank follows
    scratch.execute(
        "INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, period_code, "
        "value_eur, quantity_kg) VALUES ('DE', 'CN', '81029400', 'export', DATE '2024-02-01', '2024-02', 100.0, 1.0)")
    build_marts(scratch)
    chapter = {r[0]: r[1:] for r in scratch.execute(
        "SELECT partner, products, months_compared, first_month, last_month, value_eur, rank_among_loaded_partners, "
        "partners_ranked, share_of_loaded_partners, japan_value_eur, value_to_japan FROM mart_partner_chapter_trade "
        "WHERE reporter = 'DE' AND flow = 'export' AND period_year = 2024 AND hs2 = '81'").fetchall()}
    assert chapter == {  # over Japan's January and February: KR's March, FR (a member) and QV left out
        "CN": (2, 2, "2024-01", "2024-02", 1900.0, 1, 4, pytest.approx(1900 / 4400), 1000.0, pytest.approx(1.9)),
        "US": (1, 2, "2024-01", "2024-02", 1200.0, 2, 4, pytest.approx(1200 / 4400), 1000.0, pytest.approx(1.2)),
        "JP": (1, 2, "2024-01", "2024-02", 1000.0, 3, 4, pytest.approx(1000 / 4400), 1000.0, 1.0),
        "KR": (1, 2, "2024-01", "2024-02", 300.0, 4, 4, pytest.approx(300 / 4400), 1000.0, pytest.approx(0.3)),
    }
    # of Japan's two months, the US and KR have figures loaded for one each: said, since they compare low
    assert dict(scratch.execute(
        "SELECT partner, partner_months FROM mart_partner_chapter_trade "
        "WHERE reporter = 'DE' AND flow = 'export' AND period_year = 2024 AND hs2 = '81'").fetchall()) == {
        "CN": 2, "US": 1, "JP": 2, "KR": 1}
    # an annual figure replaces its product's months of that year, as in mart_product_trade
    scratch.executemany(
        "INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, period_code, "
        "value_eur, quantity_kg) VALUES ('DE', 'JP', '81052000', 'export', ?::DATE, ?, ?, 1.0)",
        [("2023-01-01", "2023", 5000.0), ("2023-05-01", "2023-05", 100.0)])
    build_marts(scratch)
    assert one(scratch, "SELECT months_compared, value_eur, partners_ranked FROM mart_partner_chapter_trade "
               "WHERE reporter = 'DE' AND flow = 'export' AND period_year = 2023") == (12, 5000.0, 1)
    assert one(scratch, "SELECT value_eur FROM mart_chapter_trade "
               "WHERE reporter = 'DE' AND flow = 'export' AND period_year = 2023") == (5000.0,)


@pytest.mark.parametrize("case", ["Japan annual, China monthly", "Japan monthly, China annual and monthly"])
def test_partners_are_compared_over_japans_months_whatever_the_frequency(scratch, case):
    """Japan's annual figure covers the whole year, so a partner's months all count; over part of a year a
    partner's annual figure cannot be cut to Japan's months, so its months among Japan's count. Both marts
    (mart_product_trade per product, mart_partner_chapter_trade per chapter) compare the same figures."""
    if case == "Japan annual, China monthly":
        rows = [("JP", "2021", 120000.0)] + [("CN", f"2021-{m:02d}", 20000.0) for m in range(1, 13)]
        japan, china = 120000.0, 240000.0
    else:
        rows = ([("JP", f"2021-{m:02d}", 1000.0) for m in (1, 2, 3)] + [("CN", "2021", 50000.0)]
                + [("CN", f"2021-{m:02d}", 2000.0) for m in (1, 2, 3, 4)])  # April: not one of Japan's months
        japan, china = 3000.0, 6000.0
    scratch.executemany(
        "INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, period_code, "
        "value_eur, quantity_kg) VALUES ('DE', ?, '85423190', 'import', (? || CASE WHEN length(?) = 4 THEN '-01-01' "
        "ELSE '-01' END)::DATE, ?, ?, NULL)", [(p, code, code, code, v) for p, code, v in rows])
    build_marts(scratch)
    assert one(scratch, "SELECT value_eur, japan_rank_among_loaded_partners, loaded_partners_ranked "
               "FROM mart_product_trade WHERE reporter = 'DE' AND product_cn8 = '85423190' AND period_year = 2021"
               ) == (japan, 2, 2)
    chapter = {r[0]: r[1:] for r in scratch.execute(
        "SELECT partner, value_eur, rank_among_loaded_partners, partners_ranked, value_to_japan "
        "FROM mart_partner_chapter_trade WHERE reporter = 'DE' AND flow = 'import' AND period_year = 2021 "
        "AND hs2 = '85'").fetchall()}
    assert chapter == {"CN": (china, 1, 2, 2.0), "JP": (japan, 2, 2, 1.0)}


def test_japan_among_extra_eu_partners_counts_a_partners_annual_figure_and_japans_own(scratch):
    """An all-partner extract (EXT_EU27_2020 monthly for the whole year): a partner, or Japan, that also has an
    annual figure is ranked by it, not left out (its months, replaced by the annual figure for the product's
    own row, are none of the aggregate's codes); over part of a year a partner's months among the aggregate's
    count. Constructed rows (only the ranking is under test)."""
    rows = ([("EXT_EU27_2020", f"2022-{m:02d}", 10000.0) for m in range(1, 13)]
            + [("JP", f"2022-{m:02d}", 1000.0) for m in range(1, 13)] + [("JP", "2022", 12000.0)]
            + [("CN", "2022", 60000.0)]  # annual only: the largest
            + [("US", f"2022-{m:02d}", 2000.0) for m in range(1, 13)]
            + [("KR", f"2022-{m:02d}", 100.0) for m in range(1, 13)]
            + [("EXT_EU27_2020", f"2023-{m:02d}", 10000.0) for m in (1, 2)]  # 2023: two months of the aggregate
            + [("JP", "2023-01", 1000.0), ("JP", "2023-02", 1000.0), ("CN", "2023", 90000.0),  # cannot be cut
               ("US", "2023-01", 500.0), ("US", "2023-03", 9000.0)])  # March: not one of the aggregate's months
    scratch.executemany(
        "INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, period_code, "
        "value_eur, quantity_kg) VALUES ('EU27_2020', ?, '81052000', 'import', (? || CASE WHEN length(?) = 4 "
        "THEN '-01-01' ELSE '-01' END)::DATE, ?, ?, NULL)", [(p, code, code, code, v) for p, code, v in rows])
    build_marts(scratch)
    got = {r[0]: r[1:] for r in scratch.execute(
        "SELECT period_year, months_with_all_partners, extra_eu_value_eur, japan_share_of_extra_eu, "
        "japan_rank_among_extra_eu, extra_eu_partners_ranked FROM mart_product_trade WHERE reporter = 'EU27_2020' "
        "AND product_cn8 = '81052000'").fetchall()}
    # 2022: CN 60,000 (annual), US 24,000, JP 12,000 (its annual figure), KR 1,200
    assert got[2022] == (12, 120000.0, pytest.approx(12000 / 120000), 3, 4)
    # 2023, January and February: US 500, JP 2,000; China's annual figure cannot be cut to them
    assert got[2023] == (2, 20000.0, pytest.approx(2000 / 20000), 1, 2)


def test_extra_eu_is_eu27_2020s_fixed_composition_in_every_period_and_serbia_is_ranked_under_xs(scratch):
    """Comext's EU27_2020 is a fixed composition, in every period: EXT_EU27_2020 counts the United Kingdom as
    extra-EU before 2020 too and Croatia as intra-EU before 2013. Japan's rank among the extra-EU partners (and
    among the partners loaded, and by chapter) leaves out the same countries the aggregate does, so that rank and
    share agree; Serbia, coded XS in Comext's geonomenclature, is a country ranked like the others. Constructed
    rows (only the ranking is under test)."""
    rows = [("EXT_EU27_2020", "2012-11", 30000.0), ("JP", "2012-11", 3000.0), ("GB", "2012-11", 15000.0),
            ("XS", "2012-11", 9000.0), ("HR", "2012-11", 50000.0),  # Croatia: in EU27_2020, so never extra-EU
            ("QV", "2012-11", 99000.0)]  # a pseudo-partner: not ranked
    insert_months(scratch, "EU27_2020", "26110000", "import", rows)
    build_marts(scratch)
    assert one(scratch, "SELECT japan_share_of_extra_eu, japan_rank_among_extra_eu, extra_eu_partners_ranked, "
               "japan_rank_among_loaded_partners, loaded_partners_ranked FROM mart_product_trade "
               "WHERE reporter = 'EU27_2020' AND product_cn8 = '26110000' AND period_year = 2012"
               ) == (pytest.approx(0.1), 3, 3, 3, 3)  # GB 15,000, Serbia 9,000, Japan 3,000
    chapter = {r[0]: r[1:] for r in scratch.execute(
        "SELECT partner, partner_name, partner_months, rank_among_loaded_partners FROM mart_partner_chapter_trade "
        "WHERE reporter = 'EU27_2020' AND period_year = 2012 AND hs2 = '26'").fetchall()}
    assert chapter == {"GB": ("United Kingdom", 1, 1), "XS": ("Serbia", 1, 2), "JP": ("Japan", 1, 3)}
    # the United Kingdom in January 2020 (an EU member that month) is extra-EU27_2020 as well: its months count
    insert_months(scratch, "EU27_2020", "26110000", "import", [("JP", "2020-01", 1000.0), ("JP", "2020-02", 1000.0),
                                                             ("GB", "2020-01", 15000.0), ("GB", "2020-02", 5000.0)])
    build_marts(scratch)
    assert one(scratch, "SELECT value_eur, partner_months, rank_among_loaded_partners FROM mart_partner_chapter_trade "
               "WHERE reporter = 'EU27_2020' AND period_year = 2020 AND partner = 'GB'") == (20000.0, 2, 1)


def test_partners_compared_by_chapter_on_the_bundled_data(conn):
    """mart_partner_chapter_trade on the bundled files: DE's extract holds Japan alone (1 of 1); EU27_2020's
    all-partner month ranks the 16 extra-EU countries (Serbia under Comext's code XS), CH first."""
    rows = {(r[0], r[1]): r[2:] for r in conn.execute(
        "SELECT reporter, partner, partner_name, months_compared, value_eur, rank_among_loaded_partners, "
        "partners_ranked, value_to_japan FROM mart_partner_chapter_trade "
        "WHERE flow = 'import' AND period_year = 2025 AND hs2 = '84'").fetchall()}
    assert rows[("DE", "JP")] == ("Japan", 3, 668914.0 + 1663789.0 + 1054978.0, 1, 1, 1.0)
    assert {k for k in rows if k[0] == "DE"} == {("DE", "JP")}
    assert rows[("EU27_2020", "JP")] == ("Japan", 1, 2264878.0, 2, 16, 1.0)
    assert rows[("EU27_2020", "CH")][2:4] == (4187411.0, 1)
    assert rows[("EU27_2020", "CH")][5] == pytest.approx(4187411 / 2264878)
    assert not {p for r, p in rows if r == "EU27_2020"} & {"FR", "DE", "QV", "QW", "EXT_EU27_2020"}
    assert rows[("EU27_2020", "XS")][0] == "Serbia"
    # Japan's chapters here are mart_chapter_trade's, value for value
    assert conn.execute(
        "SELECT count(*) FROM mart_chapter_trade AS c FULL JOIN (SELECT * FROM mart_partner_chapter_trade "
        "WHERE partner = 'JP') AS p USING (reporter, flow, period_year, hs2) "
        "WHERE c.value_eur IS DISTINCT FROM p.value_eur").fetchone() == (0,)


def test_partner_years_count_each_partners_months_and_last_load_and_the_partners_read_them(scratch):
    """mart_partner_years: a partner's distinct months in a year over every reporter, flow and product, its annual
    figures apart, and the run that loaded its latest row; eujp.partners sums the years of it (the report, the
    manifest and the catalog read the partners there, not from every fact row). Constructed rows."""
    from eujp.partners import loaded_partners
    rows = [("DE", "KR", "2022-03", "r1", "2026-01-01 00:00:00+00"), ("FR", "KR", "2022-03", "r2", "2026-01-02 00:00:00+00"),
            ("DE", "KR", "2022-07", "r1", "2026-01-01 00:00:00+00"), ("DE", "KR", "2023-01", "r3", "2026-01-03 00:00:00+00"),
            ("DE", "KR", "2024", "r4", "2026-01-04 00:00:00+00"),  # an annual figure: no month
            ("DE", "MX", "2021", "r4", "2026-01-04 00:00:00+00")]  # annual figures only
    scratch.execute("DELETE FROM fact_goods_trade_product WHERE partner IN ('KR', 'MX')")  # the bundled extract's
    scratch.executemany(
        "INSERT INTO fact_goods_trade_product (reporter, partner, product_cn8, flow, period, period_code, value_eur, "
        "quantity_kg, run_id, loaded_at) VALUES (?, ?, '85423190', 'import', (? || CASE WHEN length(?) = 4 THEN "
        "'-01-01' ELSE '-01' END)::DATE, ?, 1.0, NULL, ?, ?::TIMESTAMPTZ)",
        [(r, p, code, code, code, run, at) for r, p, code, run, at in rows])
    build_marts(scratch)
    years = {r[0]: r[1:] for r in scratch.execute(
        "SELECT period_year, months_loaded, annual_figures, first_month, last_month, last_run_id FROM mart_partner_years "
        "WHERE partner = 'KR'").fetchall()}
    assert years == {2022: (2, False, "2022-03", "2022-07", "r2"), 2023: (1, False, "2023-01", "2023-01", "r3"),
                     2024: (0, True, None, None, "r4")}
    partners = {r["partner"]: r for r in loaded_partners(scratch)}
    assert (partners["KR"]["months_loaded"], partners["KR"]["first_month"], partners["KR"]["last_month"],
            partners["KR"]["last_run_id"]) == (3, "2022-03", "2023-01", "r4")
    assert (partners["MX"]["months_loaded"], partners["MX"]["first_month"]) == (0, None)
    # every partner of the facts, and no other
    assert set(partners) == {p for (p,) in scratch.execute("SELECT DISTINCT partner FROM fact_goods_trade_product").fetchall()}


def test_crm_trade_is_empty_on_the_bundled_data(conn):
    # the only CN8 code bundled (84834030, gearing) is no critical raw material
    assert one(conn, "SELECT count(*) FROM mart_crm_trade") == (0,)


def test_crm_trade_maps_products_to_materials(scratch):
    """Two constructed Comext rows (not real figures: only the mapping is under test)."""
    scratch.execute("""INSERT INTO fact_goods_trade_product BY NAME
        SELECT * FROM (VALUES ('DE', 'JP', '81052000', 'export', DATE '2025-01-01', '2025-01', 1000.0, 10.0),
                              ('DE', 'JP', '81129289', 'export', DATE '2025-01-01', '2025-01', 500.0, 5.0))
        AS t(reporter, partner, product_cn8, flow, period, period_code, value_eur, quantity_kg)""")
    build_marts(scratch)
    rows = dict(scratch.execute("SELECT material, value_eur FROM mart_crm_trade").fetchall())
    # 8105.20 is cobalt; 8112.92 is listed for gallium, germanium, hafnium, niobium and vanadium: counted under each
    assert rows == {"cobalt": 1000.0, "gallium": 500.0, "germanium": 500.0, "hafnium": 500.0, "niobium": 500.0,
                    "vanadium": 500.0}
    assert one(scratch, "SELECT strategic_status, crm_materials FROM dim_product WHERE product_code = '81052000'") \
        == ("yes", "cobalt")


def test_crm_trade_matches_four_and_six_digit_hs_codes_and_counts_a_product_once(scratch):
    """Constructed rows (not real figures): 81101000 falls under antimony's 4-digit HS code 8110; 81082000 under
    both of titanium metal's codes (8108 and 8108.20) and counts once; 81089000 only under 8108; 81050000 under
    no code (cobalt is 8105.20), nor 8110 under a code longer than the product."""
    scratch.execute("""INSERT INTO fact_goods_trade_product BY NAME
        SELECT * FROM (VALUES ('DE', 'JP', '81101000', 'import', DATE '2025-01-01', '2025-01', 70.0, 1.0),
                              ('DE', 'JP', '81082000', 'import', DATE '2025-01-01', '2025-01', 300.0, 3.0),
                              ('DE', 'JP', '81089000', 'import', DATE '2025-01-01', '2025-01', 40.0, 4.0),
                              ('DE', 'JP', '81050000', 'import', DATE '2025-01-01', '2025-01', 9.0, 9.0))
        AS t(reporter, partner, product_cn8, flow, period, period_code, value_eur, quantity_kg)""")
    build_marts(scratch)
    rows = scratch.execute("SELECT material, products, product_codes, value_eur, quantity_kg FROM mart_crm_trade "
                           "ORDER BY material").fetchall()
    assert rows == [("antimony", 1, "81101000", 70.0, 1.0),
                    ("titanium metal", 2, "81082000; 81089000", 340.0, 7.0)]


def test_export_restrictions_by_country_material_type_year(conn):
    rows = conn.execute("SELECT country_iso3, material, is_critical_raw_material, policy_type, period_year, "
                        "measures FROM mart_export_restrictions ORDER BY country_iso3, policy_type").fetchall()
    assert rows == [("AGO", None, False, "M3", 2024, 1), ("AGO", None, False, "M4", 2024, 1),
                    ("ARE", None, False, "M1", 2024, 1), ("ARG", "antimony", True, "M1", 2024, 1)]


def test_export_restrictions_index(conn):
    rows = conn.execute("SELECT country_scope, basis, index_year, index_2009_eq_1, index_qualifier, verification, "
                        "reference_line, measures_in_year, countries_covered FROM mart_export_restrictions_index "
                        "ORDER BY reference_line").fetchall()
    assert rows == [
        ("WORLD", "computed", 2024, None, None, "counted in the warehouse", 0, 4, 3),  # no 2009 measures loaded
        ("WORLD", "published", 2023, 5.0, ">", "OECD publication", 2, None, None),
        ("WORLD", "published", 2020, 5.0, ">=", "OECD publication", 7, None, None),
        ("WORLD", "published", 2020, 5.0, ">", "secondary source", 8, 13102, None),
        ("CHN", "published", 2020, 9.0, "=", "unverified claim", 12, None, None),
    ]


def test_export_restrictions_index_is_computed_when_2009_is_loaded(scratch):
    for year, n in ((2009, 2), (2020, 10)):
        for i in range(n):
            scratch.execute("INSERT INTO fact_export_restrictions (ref_area_iso3, commodity_hs6, policy_type, "
                            "policy_variation, period_year) VALUES ('CHN', ?, 'M1', '_Z', ?)", [f"2617{i:02d}", year])
    build_marts(scratch)
    assert one(scratch, "SELECT index_2009_eq_1, measures_2009, measures_in_year FROM mart_export_restrictions_index "
                        "WHERE country_scope = 'CHN' AND basis = 'computed' AND index_year = 2020") == (5.0, 2, 10)


def test_no_restriction_records_are_no_measures_and_a_missing_temp_is_not_temporary(scratch):
    """OECD's NO_RESTRICTION records (a country restricting nothing on a commodity) are loaded but counted
    nowhere as a measure: not in mart_export_restrictions, the index or the ninefold claim; a measure without
    a TEMP attribute (is_temporary null) counts as not temporary (0, not null)."""
    rows = [("CHN", "250410", "M1", 2009, None), ("CHN", "250410", "NO_RESTRICTION", 2009, None)]
    rows += [("CHN", f"2805{i:02d}", "M4", 2020, i == 0) for i in range(9)]
    for country, hs6, policy, year, temporary in rows:
        scratch.execute("INSERT INTO fact_export_restrictions (ref_area_iso3, commodity_hs6, policy_type, "
                        "policy_variation, period_year, is_temporary) VALUES (?, ?, ?, '_Z', ?, ?)",
                        [country, hs6, policy, year, temporary])
    build_marts(scratch)
    assert one(scratch, "SELECT index_2009_eq_1, measures_2009, measures_in_year FROM mart_export_restrictions_index "
                        "WHERE country_scope = 'CHN' AND basis = 'computed' AND index_year = 2020") == (9.0, 1, 9)
    assert one(scratch, "SELECT count(*) FROM mart_export_restrictions WHERE policy_type = 'NO_RESTRICTION'") == (0,)
    assert one(scratch, "SELECT measures, temporary_measures FROM mart_export_restrictions WHERE country_iso3 = "
                        "'CHN' AND period_year = 2009") == (1, 0)
    assert one(scratch, "SELECT sum(measures), sum(temporary_measures) FROM mart_export_restrictions "
                        "WHERE country_iso3 = 'CHN' AND period_year = 2020") == (9, 1)
    c3 = claims(scratch)["china_restrictions_ninefold"]
    assert (c3["verdict"], c3["warehouse_value"]) == ("supported", 9.0)


def test_arms_transfers_between_japan_and_member_states(conn):
    # SIPRI register, Japan subset: Germany supplied Japan 5 orders (1963, 1968, 1982, 2009, 2017)
    assert one(conn, "SELECT sum(orders), sum(tiv_delivered), min(order_year), max(order_year) FROM "
                     "mart_arms_transfers WHERE supplier = 'Germany'") == (5, pytest.approx(549.75), 1963, 2017)
    # counterparts that are or were members: FR 10, DE 5, IT 4, SE 4 + 2, NL 1, FI 1, GB 18 + 1
    assert one(conn, "SELECT sum(orders) FROM mart_arms_transfers") == (46,)
    members = {(r[0], r[1]): r[2:] for r in conn.execute(
        "SELECT supplier, order_year, counterpart_eu_member_in_order_year, counterpart_in_eu27_2020 "
        "FROM mart_arms_transfers WHERE recipient = 'Japan'").fetchall()}
    assert members[("United Kingdom", 1952)] == (False, False)  # before the UK joined (1973)
    assert members[("United Kingdom", 1989)] == (True, False)
    assert members[("Sweden", 1962)] == (False, True)  # joined 1995
    assert members[("Sweden", 2005)] == (True, True)
    assert one(conn, "SELECT direction, counterpart_iso2 FROM mart_arms_transfers WHERE supplier = 'Japan' "
                     "AND recipient = 'United Kingdom'") == ("from_japan", "GB")


def test_partnership_timeline(conn):
    assert one(conn, "SELECT sum(events) FROM mart_partnership_timeline") == (64,)  # every curated event
    assert one(conn, "SELECT events, events_with_eu, events_with_member_states, member_states FROM "
                     "mart_partnership_timeline WHERE period_year = 2021 AND event_type = 'exercise'") \
        == (6, 2, 5, "DE; ES; FR; IT; NL")
    # the UK (GBR) is an EU member in 2008, not after 2020
    assert one(conn, "SELECT member_states FROM mart_partnership_timeline WHERE period_year = 2008 "
                     "AND event_type = 'agreement'") == ("DE; FR; GB",)
    assert one(conn, "SELECT member_states FROM mart_partnership_timeline WHERE period_year = 2023 "
                     "AND event_type = 'agreement'") == (None,)
    assert one(conn, "SELECT DISTINCT event_category FROM mart_partnership_timeline "
                     "WHERE event_type = 'export_control'") == ("export control (context)",)


def test_marts_have_unique_keys_and_rebuild_identically(scratch):
    before = {t.name: scratch.execute(f"SELECT * FROM {t.name} ORDER BY ALL").fetchall() for t in MART_TABLES}
    build_marts(scratch)
    after = {t.name: scratch.execute(f"SELECT * FROM {t.name} ORDER BY ALL").fetchall() for t in MART_TABLES}
    assert before == after


def test_a_mart_query_with_other_columns_fails_the_build(scratch, monkeypatch):
    import eujp.marts

    monkeypatch.setattr(eujp.marts, "mart_sql", lambda table: "SELECT 1 AS wrong_column")
    with pytest.raises(MartBuildError, match="wrong_column"):
        build_marts(scratch)


# --- the claims check ------------------------------------------------------------------------------------

EXPECTED_VERDICTS = {
    "eu_exports_58bn_goods_28bn_services": "supported",
    "japan_second_largest_partner": "contradicted",
    "china_restrictions_ninefold": "not enough data",
    "eu_japan_trade_agreement_2019": "supported",
    "security_defence_partnership_2024": "supported",
    "china_rare_earth_ban_2010": "supported",
    "member_states_exercise_with_jmsdf": "supported",
    "japan_supports_eu_antipiracy_mission": "supported",
}


def claims(conn) -> dict[str, dict]:
    cur = conn.execute("SELECT * FROM mart_claims")
    cols = [d[0] for d in cur.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_claims_verdicts(conn):
    rows = claims(conn)
    assert {k: v["verdict"] for k, v in rows.items()} == EXPECTED_VERDICTS
    assert sorted(v["claim_number"] for v in rows.values()) == list(range(1, 9))
    c1 = rows["eu_exports_58bn_goods_28bn_services"]
    # EUR 58.0bn = EU28 goods exports 2016 (warehouse); EUR 27.9bn = EU28 services exports 2015 as first
    # published (Helgi/Eurostat), the warehouse holding DG Trade's revised 29.2
    assert (c1["warehouse_value"], c1["period_used"], c1["scope_used"]) == (58.0, "2016 (goods), 2015 (services)",
                                                                            "EU28 (incl. UK)")
    assert "€27.9bn" in c1["warehouse_figure"] and "€29.2bn" in c1["verdict_detail"]
    c2 = rows["japan_second_largest_partner"]
    assert c2["warehouse_value"] == 6.0 and c2["period_used"].startswith("2024")
    assert "IN ASIA" in c2["verdict_detail"]
    c3 = rows["china_restrictions_ninefold"]
    assert c3["warehouse_value"] is None and ">=5" in c3["warehouse_figure"]
    assert rows["eu_japan_trade_agreement_2019"]["period_used"] == "2019-02-01 (entry into force)"
    assert rows["security_defence_partnership_2024"]["period_used"] == "2024-11-01"
    assert rows["member_states_exercise_with_jmsdf"]["warehouse_figure"] == \
        "France 1 (from 2024), Germany 3 (from 2021), Italy 3 (from 2014), Netherlands 1 (from 2021)"
    assert rows["japan_supports_eu_antipiracy_mission"]["warehouse_value"] == 6.0


def test_each_claim_row_is_reproduced_by_its_query(conn):
    for claim_id, row in claims(conn).items():
        again = conn.execute(row["query_sql"]).fetchall()
        assert again == [tuple(v for k, v in row.items() if k != "query_sql")], claim_id
        assert row["query_sql"] == (claim_files()[0].parent / f"{claim_id}.sql").read_text().strip().rstrip(";")


def test_claims_verdicts_follow_the_data(scratch):
    """Change the data behind each verdict and rebuild: the verdicts change with it."""
    # no 58bn goods figure left in any vintage -> goods export figures exist but none matches: contradicted
    scratch.execute("DELETE FROM fact_goods_trade WHERE flow = 'export' AND round(value_mio_eur / 1000) = 58")
    scratch.execute("DELETE FROM ref_published_trade_figures WHERE trade_type = 'goods' AND flow = 'export' "
                    "AND round(value_mio_eur / 1000) = 58")
    # a (hypothetical) published overall rank of 2 for a later year -> supported
    scratch.execute("INSERT INTO ref_japan_rank (period_year, scope, reporter, rank_total, source_url) "
                    "VALUES (2030, 'goods', 'EU27_2020', 2, 'https://example.org/test')")
    # Chinese measures counted for 2009 (2) and 2020 (18): index 9 -> supported
    for year, n in ((2009, 2), (2020, 18)):
        for i in range(n):
            scratch.execute("INSERT INTO fact_export_restrictions (ref_area_iso3, commodity_hs6, policy_type, "
                            "policy_variation, period_year) VALUES ('CHN', ?, 'M4', '_Z', ?)", [f"2805{i:02d}", year])
    # the EPA's entry into force dated in another year -> contradicted
    scratch.execute("UPDATE fact_security_events SET event_date = DATE '2020-02-01' WHERE title ILIKE '%EPA%force%'")
    # no Dutch exercise -> not enough data; no partnership event -> not enough data
    scratch.execute("DELETE FROM fact_security_events WHERE event_type = 'exercise' AND parties LIKE '%NLD%'")
    scratch.execute("DELETE FROM fact_security_events WHERE title ILIKE '%Security and Defence Partnership%'")
    build_marts(scratch)
    verdicts = {k: v["verdict"] for k, v in claims(scratch).items()}
    assert verdicts == EXPECTED_VERDICTS | {
        "eu_exports_58bn_goods_28bn_services": "contradicted",
        "japan_second_largest_partner": "supported",
        "china_restrictions_ninefold": "supported",
        "eu_japan_trade_agreement_2019": "contradicted",
        "member_states_exercise_with_jmsdf": "not enough data",
        "security_defence_partnership_2024": "not enough data",
    }
    # and a count that is not ninefold contradicts it
    scratch.execute("DELETE FROM fact_export_restrictions WHERE ref_area_iso3 = 'CHN' AND period_year = 2020 "
                    "AND commodity_hs6 >= '280510'")
    build_marts(scratch)
    c3 = claims(scratch)["china_restrictions_ninefold"]
    assert (c3["verdict"], c3["warehouse_value"]) == ("contradicted", 5.0)


# --- Japan's rank computed from ext_lt_maineu (all main partners) ------------------------------------------

MAIN_PARTNERS_FILE = "eurostat_ext_lt_maineu_main_partners.json"


def jsonstat_cells(doc: dict) -> dict[tuple[str, ...], float]:
    """Every value of a sparse JSON-stat dataset by its category codes (row-major, last dimension fastest)."""
    ids, size = doc["id"], doc["size"]
    codes = [{p: c for c, p in doc["dimension"][d]["category"]["index"].items()} for d in ids]
    cells = {}
    for key, value in doc["value"].items():
        rest, coords = int(key), []
        for k in range(len(ids) - 1, -1, -1):
            coords.append(codes[k][rest % size[k]])
            rest //= size[k]
        cells[tuple(reversed(coords))] = value
    return cells


def jsonstat_with(doc: dict, cells: dict[tuple[str, ...], float]) -> dict:
    """`doc` holding exactly `cells` (the categories extended as needed, the flat indices recomputed)."""
    ids = doc["id"]
    cats = [list(doc["dimension"][d]["category"]["index"]) for d in ids]
    for coords in cells:
        for k, code in enumerate(coords):
            if code not in cats[k]:
                cats[k].append(code)
    size = [len(c) for c in cats]
    values = {}
    for coords, value in cells.items():
        i = 0
        for k, code in enumerate(coords):
            i = i * size[k] + cats[k].index(code)
        values[str(i)] = value
    dims = {d: {"label": doc["dimension"][d]["label"],
                "category": {"index": {c: n for n, c in enumerate(cats[k])},
                             "label": {c: doc["dimension"][d]["category"]["label"].get(c, c) for c in cats[k]}}}
            for k, d in enumerate(ids)}
    return {**doc, "size": size, "value": dict(sorted(values.items(), key=lambda kv: int(kv[0]))), "dimension": dims}


def warehouse_from(snapshot: Path, path: Path):
    from support.bundled_warehouse import build_bundled_warehouse

    build_bundled_warehouse(path, snapshot=snapshot)
    return duckdb.connect(str(path), read_only=True)


def test_computed_rank_needs_every_main_partner(conn):
    # the SQL's set is the live plan's set
    from eujp.marts import SQL_DIR
    from eujp.sources.eurostat_goods import MAIN_PARTNERS
    sql = (SQL_DIR / "mart_trade_annual.sql").read_text()
    assert "VALUES " + ", ".join(f"('{p}')" for p in MAIN_PARTNERS) in sql
    # bundled: EU28 2017 has Japan, US, TR and NO (cited pages) but no CH, CN, IN, KR, RU figure
    row = one(conn, "SELECT japan_rank_exports_computed, japan_rank_imports_computed, japan_rank_total_computed, "
                    "rank_computed_note, japan_rank_exports FROM mart_trade_annual WHERE reporter = 'EU28' "
                    "AND trade_type = 'goods' AND period_year = 2017")
    assert row[:3] == (None, None, None)
    assert "export: not computable, no figure for CH, CN, IN, KR, RU" in row[3]
    assert row[4] == 6  # the published statement is still there
    assert one(conn, "SELECT count(*) FROM mart_trade_annual WHERE trade_type <> 'goods' "
                     "AND rank_computed_note IS NOT NULL") == (0,)
    # so the claim falls back to the statements and says why
    c2 = claims(conn)["japan_second_largest_partner"]
    assert c2["verdict_detail"].startswith("No rank could be computed from the warehouse")


def test_computed_rank_and_its_claim_flip_when_the_partner_figures_change(tmp_path):
    """The bundled main-partner figures plus, for EU28 2017, HYPOTHETICAL figures of the partners no page was
    found for (test values, not published figures): the rank is computed and the claim rests on it; then the
    bundled partner figures change and the rank and the claim's verdict change with them."""
    import json

    snapshot = tmp_path / "snapshot"
    shutil.copytree(Path(__file__).resolve().parents[2] / "data" / "snapshot", snapshot)
    doc = json.loads((snapshot / MAIN_PARTNERS_FILE).read_text(encoding="utf-8"))
    cells = jsonstat_cells(doc)
    hypothetical = {"CN": (200000.0, 300000.0), "CH": (150000.0, 100000.0), "RU": (90000.0, 150000.0),
                    "KR": (40000.0, 40000.0), "IN": (30000.0, 30000.0)}
    for partner, (exports, imports) in hypothetical.items():
        cells[("A", "MIO_EXP_VAL", "TOTAL", partner, "EU28", "2017")] = exports
        cells[("A", "MIO_IMP_VAL", "TOTAL", partner, "EU28", "2017")] = imports
    (snapshot / MAIN_PARTNERS_FILE).write_text(json.dumps(jsonstat_with(doc, cells)), encoding="utf-8")

    with warehouse_from(snapshot, tmp_path / "a.duckdb") as c:
        # exports: Japan 60.5 after US 375.8, CN, CH, RU, TR 84.8 -> 6th; imports: Japan 68.9 after US 256.2,
        # CN, RU, CH, NO 73.8, TR 69.8 -> 7th; total 129.4 after US, CN, CH, RU, TR 154.6 -> 6th
        assert one(c, "SELECT japan_rank_exports_computed, japan_rank_imports_computed, japan_rank_total_computed "
                      "FROM mart_trade_annual WHERE reporter = 'EU28' AND trade_type = 'goods' "
                      "AND period_year = 2017") == (6, 7, 6)
        c2 = claims(c)["japan_second_largest_partner"]
        assert (c2["verdict"], c2["warehouse_value"], c2["period_used"]) == ("contradicted", 6.0,
                                                                              "2017 (latest computed rank)")
        # the Statistics Explained statement (6th for exports, 7th for imports) agrees with the computed rank
        assert "that agree: Eurostat Statistics Explained, Archive: Japan-EU" in c2["verdict_detail"]
        assert "that differ: none" in c2["verdict_detail"]

    # the bundled partner figures change: every main partner now trades a tenth of what it did
    (snapshot / MAIN_PARTNERS_FILE).write_text(
        json.dumps(jsonstat_with(doc, {k: v / 10 for k, v in cells.items()})), encoding="utf-8")
    with warehouse_from(snapshot, tmp_path / "b.duckdb") as c:
        assert one(c, "SELECT japan_rank_exports_computed, japan_rank_imports_computed, japan_rank_total_computed "
                      "FROM mart_trade_annual WHERE reporter = 'EU28' AND trade_type = 'goods' "
                      "AND period_year = 2017") == (1, 1, 1)
        c2 = claims(c)["japan_second_largest_partner"]
        assert (c2["verdict"], c2["warehouse_value"]) == ("supported", 1.0)
        assert "that agree: none; that differ: Eurostat Statistics Explained" in c2["verdict_detail"]


def test_claims_say_where_the_fact_and_a_published_vintage_disagree(scratch):
    # the bundled data: the goods figure (EUR 58.0bn, EU28 2016) has no other vintage -> nothing said for goods
    c1 = claims(scratch)["eu_exports_58bn_goods_28bn_services"]
    assert "goods EU28 2016" not in c1["verdict_detail"]
    # another published vintage of the same figure that differs: the claim says so, with both values
    scratch.execute("INSERT INTO ref_published_trade_figures (trade_type, period_year, partner, reporter, flow, "
                    "value_mio_eur, source_title, source_url) VALUES ('goods', 2016, 'JP', 'EU28', 'export', "
                    "57600, 'A later vintage (test row)', 'https://example.org/test')")
    build_marts(scratch)
    c1 = claims(scratch)["eu_exports_58bn_goods_28bn_services"]
    assert c1["verdict"] == "supported"
    assert "goods EU28 2016: warehouse €58.0bn, A later vintage (test row) €57.6bn" in c1["verdict_detail"]


def test_a_year_partition_bounds_its_date_column_for_zone_maps_and_keeps_the_same_rows():
    """_rows_of: for `year(column)` and whole years, the shadow view of an input also bounds the column
    itself (DuckDB prunes row groups by min/max on it, not on year()); the rows kept are exactly those whose
    year is among the values, at the year boundaries too; any other expression keeps the IN test alone."""
    import duckdb

    from eujp.marts.build import _rows_of

    predicate = _rows_of("year(period)", [2025, 2023])
    assert '"period" >= MAKE_DATE(2023, 1, 1) AND "period" < MAKE_DATE(2024, 1, 1)' in predicate
    assert '"period" >= MAKE_DATE(2025, 1, 1) AND "period" < MAKE_DATE(2026, 1, 1)' in predicate
    assert _rows_of("substr(period_code, 1, 4)", ["2025"]) == "(substr(period_code, 1, 4)) IN ('2025')"
    assert _rows_of("year(period)", ["2025"]) == "(year(period)) IN ('2025')"  # not whole years: no bounds
    conn = duckdb.connect()
    conn.execute("CREATE TABLE f AS SELECT DATE '2021-12-31' + CAST(i AS INTEGER) AS period FROM range(0, 1900) AS t(i)")
    kept = conn.execute(f"SELECT min(period), max(period), count(*) FROM f WHERE {predicate}").fetchone()
    expected = conn.execute("SELECT min(period), max(period), count(*) FROM f WHERE year(period) IN (2023, 2025)")
    assert kept == expected.fetchone()
    assert conn.execute(f"SELECT count(*) FROM f WHERE {predicate} AND year(period) = 2024").fetchone() == (0,)


def test_a_partitioned_model_built_whole_is_built_one_year_at_a_time(scratch):
    """Rebuilt whole (every model, or never built), mart_product_trade and the marts on it are built one
    period_year at a time, each query reading that year's rows only: the same rows as their query over every
    year at once. Constructed Comext rows of 2023 beside the bundled 2025 (not real figures)."""
    from eujp.marts.build import _every_value

    scratch.execute("""INSERT INTO fact_goods_trade_product BY NAME
        SELECT * FROM (VALUES ('DE', 'JP', '84834030', 'import', DATE '2023-02-01', '2023-02', 1000.0, 10.0),
                              ('DE', 'JP', '81052000', 'import', DATE '2023-02-01', '2023-02', 3000.0, 30.0),
                              ('FR', 'JP', '84834030', 'export', DATE '2023-11-01', '2023-11', 500.0, 5.0))
        AS t(reporter, partner, product_cn8, flow, period, period_code, value_eur, quantity_kg)""")
    build_marts(scratch)
    reasons = dict(scratch.execute("SELECT model, reason FROM etl_model_state").fetchall())
    for name in ("mart_product_trade", "mart_chapter_trade", "mart_crm_trade"):
        assert reasons[name].endswith("built by period_year, 2 value(s) one at a time"), reasons[name]
        assert model_rows_differing(scratch, name) == 0, name
    assert one(scratch, "SELECT value_eur, rank_in_flow, share_of_loaded_products FROM mart_product_trade "
                        "WHERE period_year = 2023 AND product_cn8 = '81052000'") == (3000.0, 1, 0.75)
    # a null partition value is in no year's partition: such a model is built whole
    scratch.execute("CREATE TEMP TABLE with_null AS SELECT * FROM (VALUES (2023), (NULL)) AS t(y)")
    assert _every_value(scratch, {"with_null": "y"}) is None
    assert _every_value(scratch, {"fact_goods_trade_product": "year(period)"}) == [2023, 2025]


def test_claim_details_are_never_null_and_list_every_statement(scratch):
    """Claim 1: a services figure matched in a published vintage that the warehouse holds no fact for (a live
    run loads EU27_2020 only) still gets its detail (printf of a NULL nulled it whole). Claim 2: a published
    statement whose rank the warehouse could not compute for one flow is listed (a NULL comparison dropped it
    from both the agreeing and the differing ones)."""
    scratch.execute("DELETE FROM fact_services_trade WHERE reporter = 'EU28'")
    build_marts(scratch)
    c1 = claims(scratch)["eu_exports_58bn_goods_28bn_services"]
    assert c1["verdict"] == "supported" and "services €27.9bn (EU28 exports to Japan, 2015, published vintage" \
        in c1["warehouse_figure"]
    assert "Helgi Library summary of Eurostat release on EU international trade in services 2015 (the warehouse " \
           "holds no figure of that year and aggregate). Out of date" in c1["verdict_detail"]
    assert all(c["verdict_detail"] for c in claims(scratch).values())
    # claim 2: a computed 2024 EU27_2020 export rank (every main partner's export figure) but no import rank
    # (India's import figure missing): the published "exports 6, imports 9" is listed, as agreeing on exports
    scratch.execute("DELETE FROM fact_goods_trade WHERE period_year = 2024")
    partners = ["JP", "US", "CN", "UK", "CH", "RU", "TR", "NO", "KR", "IN"]
    for rank, partner in enumerate(["US", "CN", "UK", "CH", "TR", "JP", "KR", "NO", "IN", "RU"], start=1):
        scratch.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) "
                        "VALUES ('EU27_2020', ?, 'export', 2024, ?)", [partner, 1000.0 - rank])
        if partner != "IN":
            scratch.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) "
                            "VALUES ('EU27_2020', ?, 'import', 2024, ?)", [partner, 500.0 + partners.index(partner)])
    build_marts(scratch)
    c2 = claims(scratch)["japan_second_largest_partner"]
    assert c2["verdict"] == "contradicted" and "ranks 6 at best" in c2["verdict_detail"]
    assert "that agree: European Commission" in c2["verdict_detail"] and "(exports 6, imports 9)" \
        in c2["verdict_detail"].split("that differ")[0]
