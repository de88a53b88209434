"""The run report stays flat as the marts grow (issue 12, item 2): on a mart_product_trade of 500,000 rows (the
mart's real columns, 9,000 CN8 codes x 28 reporters x 2 flows, of which 500k rows over two years) and its
chapters, the page holds the top products and chapters and totals, links the published Parquet for the full
detail, and is about as large as the report of the bundled data, far under a fixed bound."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from eujp.report import MAX_TABLE_ROWS, TOP_CHAPTERS, TOP_PRODUCTS, write_report

ROWS = 500_000
SIZE_BOUND = 1_500_000  # bytes: the bundled data's report is ~0.4 MB; every row of 500k would be > 100 MB


def _grow_marts(path: Path) -> None:
    """Add ROWS rows of the marts' shape: reporters EU27_2020 and 27 member states, 9,000 CN8 codes in 90
    chapters, both flows, years 2024-2025 (the mart's natural key stays unique); chapters summed from them."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM mart_product_trade")
        conn.execute("DELETE FROM mart_chapter_trade")
        conn.execute(f"""
            INSERT INTO mart_product_trade BY NAME
            SELECT CASE WHEN r = 0 THEN 'EU27_2020' ELSE 'M' || lpad(r::VARCHAR, 2, '0') END AS reporter,
                   'JP' AS partner, CASE WHEN f = 0 THEN 'export' ELSE 'import' END AS flow,
                   2024 + y AS period_year, lpad((10000000 + p * 997)::VARCHAR, 8, '0') AS product_cn8,
                   left(lpad((10000000 + p * 997)::VARCHAR, 8, '0'), 6) AS hs6,
                   left(lpad((10000000 + p * 997)::VARCHAR, 8, '0'), 2) AS hs2,
                   12 AS months_covered, ((p * 7919 + r * 104729 + f * 13 + y) % 1000000)::DOUBLE AS value_eur,
                   false AS is_critical_raw_material
            FROM (SELECT i % 28 AS r, (i // 28) % 2 AS f, (i // 56) % 2 AS y, i // 112 AS p
                  FROM range({ROWS}) AS t(i))""")
        conn.execute("""
            INSERT INTO mart_chapter_trade BY NAME
            SELECT reporter, partner, flow, period_year, hs2, count(*) AS products, sum(value_eur) AS value_eur,
                   12 AS months_covered
            FROM mart_product_trade GROUP BY ALL""")
        assert conn.execute("SELECT count(*) FROM mart_product_trade").fetchone()[0] == ROWS


@pytest.fixture(scope="module")
def large(bundled_warehouse, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("large") / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, path)
    _grow_marts(path)
    return path


def _report(warehouse: Path, out: Path) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return write_report(conn, out, run_id="20261124T060000Z-large1").read_text(encoding="utf-8")


def test_the_report_of_a_large_mart_is_bounded_and_links_the_parquet(large, bundled_warehouse, tmp_path):
    page = _report(large, tmp_path / "large.html")
    small = _report(bundled_warehouse, tmp_path / "small.html")
    size = len(page.encode())
    assert size < SIZE_BOUND, f"{size:,} bytes"
    assert size < len(small.encode()) + 100_000  # flat: the rows of the mart do not reach the page

    assert '<a href="parquet/mart_product_trade.parquet">' in page
    assert '<a href="parquet/mart_chapter_trade.parquet">' in page
    assert f"{2 * TOP_PRODUCTS:,} of {ROWS:,} rows of <code>mart_product_trade</code> shown" in page
    # the top products are the largest ones of the latest year for EU27_2020
    with duckdb.connect(str(large), read_only=True) as conn:
        best = conn.execute("SELECT product_cn8 FROM mart_product_trade WHERE reporter = 'EU27_2020' AND "
                            "period_year = 2025 AND flow = 'export' ORDER BY value_eur DESC, product_cn8 "
                            "LIMIT 1").fetchone()[0]
    assert f"<td>export</td><td>1</td><td>{best}</td>" in page
    assert "Top 10 HS chapters per flow (EU27_2020, 2025)" in page and TOP_CHAPTERS == 10
    # no table of the page holds more rows than the cap
    for table in re.findall(r"<tbody>(.*?)</tbody>", page, flags=re.DOTALL):
        assert table.count("<tr>") <= MAX_TABLE_ROWS


def test_the_bundled_report_still_shows_its_product(bundled_warehouse, tmp_path):
    page = _report(bundled_warehouse, tmp_path / "small.html")
    assert "84834030" in page
    assert "all " in page and '<a href="parquet/mart_product_trade.parquet">' in page


def test_a_mart_published_by_partition_is_linked_file_by_file(large, tmp_path):
    """When the publish writes mart_product_trade as a file per year (eujp.publish.PartitionedParquet), the report
    links each year's file, at the key the publish gives it, and the one-file link of the other tables stays."""
    from eujp.publish import part_key

    with duckdb.connect(str(large), read_only=True) as conn:
        page = write_report(conn, tmp_path / "report.html", run_id="20261124T060000Z-large2",
                            partitioned={"mart_product_trade": "period_year"}).read_text(encoding="utf-8")
    links = re.findall(r'<a href="(parquet/mart_product_trade[^"]*)">([^<]*)</a>', page)
    assert links == [(part_key("mart_product_trade", "period_year", str(y)), str(y)) for y in (2024, 2025)]
    assert "a Parquet file per period_year in <code>mart_product_trade/</code>" in page
    assert '<a href="parquet/mart_chapter_trade.parquet">' in page
