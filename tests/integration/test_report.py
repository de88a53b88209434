"""The run report: a self-contained HTML page with real charts, opened in headless Chromium (Debian's
chromium; .ci/run installs it) and checked on a screenshot and on the rendered DOM."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from support.chromium import run_chromium

from eujp.report import REPORTER_COLOURS, write_report


@pytest.fixture(scope="module")
def report(bundled_warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    with duckdb.connect(str(bundled_warehouse), read_only=True) as conn:
        return write_report(conn, out, run_id="20261124T060000Z-report")


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_report_is_self_contained_with_charts_and_claims(report):
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<svg") == 4  # trade, balance, restrictions, timeline
    # the cross-source reconciliation section (eujp.reconcile): nothing to compare in the bundled data
    assert '<h2 id="reconciliation">Cross-source reconciliation</h2>' in text and "0 breach(es)" in text
    # nothing is fetched from elsewhere: no script, no external stylesheet, image or font
    assert "<script" not in text
    assert not re.search(r"""(src|srcset)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert not re.search(r"@import|@font-face", text)
    # the claims table: one verdict badge per claim, with its query
    verdicts = re.findall(r'<span class="verdict"[^>]*>([^<]+)</span>', text)
    assert sorted(verdicts) == sorted(["supported"] * 6 + ["contradicted", "not enough data"])
    assert text.count("<details>") == 8
    assert "20261124T060000Z-report" in text


def test_report_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    done = run_chromium(["--window-size=1280,6000", f"--screenshot={shot}", report.as_uri()], tmp_path / "profile")
    assert shot.is_file() and shot.stat().st_size > 0, done.stderr.decode(errors="replace")[-2000:]

    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 6000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot is (nearly) blank"
    counts = {rgb: n for n, rgb in colours}
    # the charts are drawn: lines and bars in the EU aggregates' colours (EU28 blue, EU27_2020 green, ...)
    for reporter in ("EU28", "EU27_2020", "EU27_2007"):
        assert counts.get(hex_rgb(REPORTER_COLOURS[reporter]), 0) > 300, reporter
    # and the claims table's badges (contradicted red, supported green)
    assert counts.get(hex_rgb("#cf222e"), 0) > 100 and counts.get(hex_rgb("#1a7f37"), 0) > 100
    if os.environ.get("EUJP_KEEP_SCREENSHOT"):  # to look at it: EUJP_KEEP_SCREENSHOT=/tmp/report.png pytest ...
        shutil.copyfile(shot, os.environ["EUJP_KEEP_SCREENSHOT"])


def test_rendered_dom_holds_the_drawn_charts(report, tmp_path):
    done = run_chromium(["--dump-dom", report.as_uri()], tmp_path / "profile")
    dom = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0 and dom, done.stderr.decode(errors="replace")[-2000:]
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.DOTALL)
    assert len(svgs) == 4
    for svg in svgs:  # each chart has its drawn paths (lines, bars, text as paths)
        assert svg.count("<path") > 20
    assert dom.count('class="verdict"') == 8


def test_charts_whose_inputs_did_not_change_are_read_from_the_last_report_not_drawn(bundled_warehouse, tmp_path):
    """A run whose chart inputs are unchanged (a day with one new Comext month) reads the charts the last report
    drew (eujp.report.ChartCache): the page is byte for byte the page drawn anew; a chart whose mart changed
    is drawn again, alone, and the folder keeps the charts of the last report only."""
    from datetime import UTC, datetime

    from eujp.report import ChartCache, render_report

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, warehouse)
    folder, at = tmp_path / "report-charts", datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    with duckdb.connect(str(warehouse)) as conn:
        drawn = render_report(conn, run_id="r1", generated_at=at, charts=ChartCache(None))
        first = ChartCache(folder)
        assert render_report(conn, run_id="r1", generated_at=at, charts=first) == drawn
        first.prune()
        assert sorted(first.drawn) == ["balance", "restrictions", "timeline", "trade"]
        again = ChartCache(folder)
        assert render_report(conn, run_id="r1", generated_at=at, charts=again) == drawn
        assert again.drawn == []
        conn.execute("DELETE FROM mart_partnership_timeline WHERE period_year = "
                     "(SELECT min(period_year) FROM mart_partnership_timeline)")
        changed = ChartCache(folder)
        page = render_report(conn, run_id="r1", generated_at=at, charts=changed)
        changed.prune()
        assert changed.drawn == ["timeline"] and page != drawn
        assert page == render_report(conn, run_id="r1", generated_at=at, charts=ChartCache(None))
    assert len(list(folder.glob("*.svg"))) == 4 and not list(folder.glob(".*"))


def test_top_products_show_japan_among_the_partners_loaded_only_where_others_are(bundled_warehouse, tmp_path):
    """The top products and chapters of the headline reporter show Japan's rank among the partner countries
    loaded (mart_product_trade.japan_rank_among_loaded_partners, mart_partner_chapter_trade's row of Japan) and
    a table of the partners compared (mart_partner_chapter_trade) when other partners are loaded: the bundled EU27_2020
    all-partner month ranks Japan 2nd of the 16 extra-EU countries; without them, neither."""
    from eujp.marts.build import build_marts
    from eujp.report import products_section

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        section = products_section(conn)
        # the top products and the top chapters (84) each rank Japan 2 of 16
        assert section.count("<th>Japan among the partners loaded</th>") == 2
        assert section.count("<td>2 of 16</td>") == 2
        # the partners compared: the 10 largest of the 16 and Japan, CH first (4,187,411 EUR, 184.9 % of Japan)
        partners = section[section.index("<h4>Partners compared (EU27_2020, 2025, over Japan's 1 month(s)"):]
        assert partners.count("<tr><td>import</td>") == 10
        assert ("<tr><td>import</td><td>1</td><td>CH</td><td>Switzerland</td><td>1 of 1</td>"
                '<td class="num">4,187,411.0</td><td class="num">184.9</td>' in partners)
        # bundled data: no live extraction recorded what it asks for, so no "requested" column, and it says so
        assert "<th>requested</th>" not in partners and "no live extraction recorded" in partners
        assert "<td>2</td><td>JP</td><td>Japan</td>" in partners
        assert "summed from the " in partners and "mart_partner_chapter_trade.parquet" in partners
        # Japan alone loaded
        conn.execute("DELETE FROM fact_goods_trade_product WHERE partner <> 'JP'")
        build_marts(conn)
        assert conn.execute("SELECT DISTINCT partner, partners_ranked FROM mart_partner_chapter_trade").fetchall() \
            == [("JP", 1)]
        section = products_section(conn)
        assert "Japan among the partners loaded" not in section and "Partners compared" not in section


def test_a_partner_loaded_for_fewer_of_japans_months_is_flagged_and_counted(tmp_path):
    """Generated Comext data of JP, CN and KR (benchmarks/generate.py), KR's months 07-12 left out: the report's
    partners table shows each partner's months against Japan's and flags KR's 6 of 12, and mart_product_trade
    counts, for each product, the partners ranked beside Japan that have fewer of Japan's months
    (loaded_partners_fewer_months), as computed here from the generated files."""
    import polars as pl
    from support.pipeline_steps import payload, run_steps

    from benchmarks.generate import generate, make_plan
    from eujp.report import products_section
    from eujp.sources import SOURCES

    comext = next(s for s in SOURCES if s.period_column == "period_code")
    folder = tmp_path / "generated"
    generate(make_plan(rows=24_000, years=None, seed=5, start_year=2024, partners=("JP", "CN", "KR")), folder,
             log=lambda _: None)
    payloads = []
    for path in sorted(folder.glob(comext.snapshot_glob)):
        lines = path.read_bytes().splitlines(keepends=True)
        if path.stem[-2:] >= "07":  # KR loaded for January to June only
            lines = [line for line in lines if b",KR," not in line]
        payloads.append(payload(comext.name, path.name, b"".join(lines)))
    warehouse = tmp_path / "warehouse.duckdb"
    run_steps(warehouse, {comext.name: payloads})

    # independently: the rows loaded (a key with a value), each partner's months, Japan's products ranked
    wire = pl.concat([pl.read_csv(p.data, schema_overrides={"product": pl.Utf8, "OBS_VALUE": pl.Utf8})
                      for p in payloads])
    facts = (wire.filter(pl.col("indicators") == "VALUE_IN_EUROS")
             .with_columns(pl.col("OBS_VALUE").cast(pl.Float64, strict=False).alias("v"),
                           pl.when(pl.col("flow") == 1).then(pl.lit("import")).otherwise(pl.lit("export"))
                           .alias("flow"))
             .filter(pl.col("v").is_not_null())
             .select("reporter", "partner", pl.col("product").alias("product_cn8"), "flow", "TIME_PERIOD"))
    months = facts.group_by("reporter", "flow", "partner").agg(pl.col("TIME_PERIOD").n_unique().alias("m"))
    japan = months.filter(pl.col("partner") == "JP").select("reporter", "flow", pl.col("m").alias("jm"))
    short = months.join(japan, on=["reporter", "flow"]).filter(pl.col("m") < pl.col("jm"))
    assert set(short["partner"]) == {"KR"} and set(short["m"]) == {6} and set(short["jm"]) == {12}
    ranked = facts.select("reporter", "partner", "product_cn8", "flow").unique()
    japan_products = ranked.filter(pl.col("partner") == "JP").drop("partner")
    others = ranked.filter(pl.col("partner") != "JP").join(japan_products, on=["reporter", "product_cn8", "flow"])
    expected = (others.join(short.select("reporter", "flow", "partner", pl.lit(1).alias("fewer")),
                            on=["reporter", "flow", "partner"], how="left")
                .group_by("reporter", "flow", "product_cn8")
                .agg((pl.len() + 1).alias("ranked"), pl.col("fewer").fill_null(0).sum().alias("fewer")))
    with duckdb.connect(str(warehouse)) as conn:
        mart = conn.execute("SELECT reporter, flow, product_cn8, loaded_partners_ranked, loaded_partners_fewer_months "
                            "FROM mart_product_trade WHERE loaded_partners_ranked IS NOT NULL").pl()
        alone = conn.execute("SELECT count(*) FROM mart_product_trade WHERE loaded_partners_ranked IS NULL "
                             "AND loaded_partners_fewer_months IS NOT NULL").fetchone()[0]
        section = products_section(conn)
    assert alone == 0
    got = {tuple(r) for r in mart.rows()}
    assert got == {tuple(r) for r in expected.select("reporter", "flow", "product_cn8", "ranked", "fewer").rows()}
    assert {r[4] for r in got} == {0, 1}  # products KR has figures for in its months, and others

    partners = section[section.index("<h4>Partners compared"):]
    assert "<th>months of Japan&#x27;s</th>" in partners
    assert len(re.findall(r"<td>KR</td><td>[^<]*</td><td>6 of 12 \(partial\)</td>", partners)) == 2
    assert len(re.findall(r"<td>(JP|CN)</td><td>[^<]*</td><td>12 of 12</td>", partners)) == 4
    assert "<b>Partial:</b> KR has figures for fewer of Japan's months" in partners
    # the top products say how many of the partners Japan is ranked among have fewer months, where any do
    assert re.search(r"<td>\d of 3 \(1 on fewer months\)</td>", section[:section.index("<h4>Partners")])


def test_the_products_section_says_when_the_latest_year_is_partial(bundled_warehouse, tmp_path):
    """The bundled Comext facts of 2025 are partial (EU27_2020: June only; DE: January to March): the section
    says the values are sums over those months, in its lead and headings and reporter by reporter; a whole
    year reads as one."""
    from eujp.report import products_section

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        months = dict(conn.execute(
            "SELECT reporter, min(first_month) || ' to ' || max(last_month) || ' only' FROM mart_product_trade "
            "WHERE period_year = 2025 GROUP BY reporter").fetchall())
        assert months["EU27_2020"] == "2025-06 to 2025-06 only"
        section = products_section(conn)
        assert ("Year 2025, the latest loaded; a partial year: EU27_2020's products cover 2025-06 to 2025-06 "
                "(1 month(s) at most)") in section
        assert "Top 15 products per flow (EU27_2020, 2025, 2025-06 to 2025-06)" in section
        for reporter, loaded in months.items():
            assert re.search(rf"<td>{reporter}</td>(<td[^>]*>[^<]*</td>){{3}}<td>{loaded}</td>", section), reporter
        conn.execute("UPDATE mart_product_trade SET months_covered = 12, first_month = '2025-01', "
                     "last_month = '2025-12'")
        section = products_section(conn)
        assert "partial" not in section and "Top 15 products per flow (EU27_2020, 2025)</h4>" in section
        assert section.count("<td>all 12</td>") == len(months)


def test_the_restriction_index_table_shows_the_index_computed_from_the_warehouse(bundled_warehouse, tmp_path):
    """A computed row of mart_export_restrictions_index has no published wording: the report shows its index
    and the measure counts behind it (China 9 measures in 2020 against 1 in 2009; a NO_RESTRICTION record
    counts for none), not an empty cell."""
    from eujp.marts.build import build_marts
    from eujp.report import render_report

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        rows = [("250410", "M1", 2009), ("250411", "NO_RESTRICTION", 2009)]
        rows += [(f"2805{i:02d}", "M4", 2020) for i in range(9)]
        for hs6, policy, year in rows:
            conn.execute("INSERT INTO fact_export_restrictions (ref_area_iso3, commodity_hs6, policy_type, "
                         "policy_variation, period_year) VALUES ('CHN', ?, ?, '_Z', ?)", [hs6, policy, year])
        build_marts(conn)
        page = render_report(conn, run_id="r1")
    assert re.search(r"<td>CHN</td><td>2020</td><td>9\.00</td><td>9 vs 1 in 2009</td><td>counted in the "
                     r"warehouse</td>", page), page[page.find("restrictions"):][:3000]


def test_the_trade_caption_says_eu27_2020_goods_are_missing_only_when_they_are(bundled_warehouse, tmp_path):
    from eujp.marts.build import build_marts
    from eujp.report import render_report

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        assert "the warehouse holds no EU27_2020 goods exports to Japan" in render_report(conn, run_id="r1")
        conn.execute("INSERT INTO fact_goods_trade (reporter, partner, flow, period_year, value_mio_eur) "
                     "VALUES ('EU27_2020', 'JP', 'export', 2024, 60000)")
        build_marts(conn)
        page = render_report(conn, run_id="r1")
    assert "EU27_2020 goods" not in page.split('<h2 id="trade">')[1].split("</figcaption>")[0]


def test_a_failed_run_says_so_at_the_top_of_its_report(bundled_warehouse, tmp_path):
    """A run with a failed source, or one above its rejected-rows threshold (it loaded: etl_runs 'success'),
    is published with its other sources; its report said nothing of the failure."""
    from eujp.report import render_report

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        (run_id,) = conn.execute("SELECT max(run_id) FROM etl_runs").fetchone()
        assert "This run failed" not in render_report(conn, run_id=run_id)
        (source,) = conn.execute("SELECT min(source) FROM etl_runs WHERE run_id = ?", [run_id]).fetchone()
        conn.execute("UPDATE etl_runs SET status = 'success', message = ? || ': 1 of 64 rows in rejected (1.56%), "
                     "above the threshold of 1% (EUJP_MAX_REJECTED_PCT); its 63 valid rows were loaded, but the run "
                     "fails so that someone looks; see etl_rejected_rows' WHERE run_id = ? AND source = ?",
                     [source, run_id, source])
        page = render_report(conn, run_id=run_id)
    assert "<b>This run failed</b> (1 source(s))" in page
    assert f"<li><b>{source}</b>: {source}: 1 of 64 rows in rejected (1.56%), above" in page


def test_a_published_balance_that_is_not_exports_minus_imports_is_named_under_the_trade_table(bundled_warehouse):
    """The bundled services figures of EU27_2020 for 2020: exports 25,500, imports 12,500, the balance published
    as 15,000 (the source contradicts itself); the table shows the published balance, and a note names the row
    with exports − imports. A balance within the figures' rounding (EU27_2007 goods 2008: 42,000 − 75,000 against
    −32,000, each in € billions) is not named."""
    from eujp.report import balances_off, render_report

    with duckdb.connect(str(bundled_warehouse), read_only=True) as conn:
        page = render_report(conn, run_id="r1")
    (note,) = re.findall(r'<p class="note"><b>Balance is not exports − imports:</b>(.*?)</p>', page)
    assert note.startswith(" 2020 EU27_2020 services: 15,000.0 published, exports − imports 13,000.0.")
    assert "2008" not in note

    def row(exports, imports, balance):
        return {"exports_mio_eur": exports, "imports_mio_eur": imports, "balance_mio_eur": balance}

    assert balances_off([row(42000.0, 75000.0, -32000.0)]) == []  # three figures in € billions: ±1,500
    assert balances_off([row(64700.0, 70400.0, -5600.0)]) == []  # ±150: a rounding of 100
    assert balances_off([row(64700.0, 70400.0, -5900.0)]) == [row(64700.0, 70400.0, -5900.0)]
    assert balances_off([row(64700.0, None, -5600.0)]) == []
