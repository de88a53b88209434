"""The catalog (eujp.catalog): built from the bundled warehouse with a few older runs added to etl_runs, one
table validated "this run" (a real GX validation of the fact_goods_trade batch) and one expectation broken in
the warehouse; opened offline in headless Chromium (Debian's chromium) and checked on the rendered DOM and a
screenshot; published with a run to a folder store, into runs/{run_id}/ and latest/."""

from __future__ import annotations

import html
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from support.chromium import run_chromium

from eujp.catalog import CATALOG_FILE, COLOURS, write_catalog
from eujp.marts import MODELS, mart_sql
from eujp.sources import SOURCES
from eujp.tables import ALL_TABLES, TABLES

pytestmark = pytest.mark.slow
RUN_ID = "20261124T060000Z-marts1"  # the bundled warehouse's run: the newest in etl_runs
GOODS = next(s for s in SOURCES if s.table.name == "fact_goods_trade")  # validated "this run"
ARMS = next(s for s in SOURCES if s.table.name == "fact_arms_transfers")  # failed in one older run
OLDER_RUNS = [f"202611{d}T060000Z-hist0{i}" for i, d in enumerate((20, 21, 22, 23), start=1)]


def add_history(conn: duckdb.DuckDBPyConnection) -> None:
    """Four older runs per source: growing loads, an unchanged day, a failed run of ARMS with rejects."""
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    for day, run_id in enumerate(OLDER_RUNS):
        for k, s in enumerate(SOURCES):
            status, rows_in, rejected = "success", 10 * (day + 1) + k, day % 2
            if day == 2:
                status, rows_in, rejected = "unchanged", 0, 0
            if day == 3 and s is ARMS:
                status, rejected = "failed", rows_in
            began = start + timedelta(days=day, seconds=k)
            conn.execute(
                "INSERT INTO etl_runs VALUES (?, ?, ?, 'sha', NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, s.name, s.table.name, rows_in, rows_in - rejected, rejected,
                 0 if status == "unchanged" else rows_in - rejected, began,
                 began + timedelta(seconds=0.5 + day + k / 2), status,
                 "transform failed" if status == "failed" else None])


@pytest.fixture(scope="module")
def warehouse(bundled_warehouse, tmp_path_factory) -> Path:
    """A copy of the bundled warehouse with older runs and one event of an unknown type (a failed warning
    expectation of fact_security_events)."""
    path = tmp_path_factory.mktemp("catalog-wh") / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, path)
    with duckdb.connect(str(path)) as conn:
        add_history(conn)
        conn.execute("UPDATE fact_security_events SET event_type = 'cyber_dialogue' "
                     "WHERE event_id = (SELECT min(event_id) FROM fact_security_events)")
        conn.execute("CHECKPOINT")
    return path


@pytest.fixture(scope="module")
def batches(snapshot_dir):
    """This run's batch of the fact_goods_trade source, parsed, transformed and validated by Great
    Expectations."""
    from support.bundled_warehouse import RUN_DATE

    from eujp.extract import read_snapshot
    from eujp.pipeline import SourceBatch, load_countries, prepare_source, utcnow

    batch = SourceBatch(source=GOODS.name, table=GOODS.table.name, started_at=utcnow())
    batch = prepare_source(GOODS, read_snapshot(GOODS, snapshot_dir), load_countries(RUN_DATE), batch)
    assert batch.validation is not None and batch.error is None
    return [batch]


@pytest.fixture(scope="module")
def audit(warehouse, tmp_path_factory) -> dict:
    """The audit of a copy of the warehouse, fact_goods_trade re-validated as a run that loaded it would."""
    from eujp.audit import audit_staging

    staged = tmp_path_factory.mktemp("catalog-staged") / "staged.duckdb"
    shutil.copyfile(warehouse, staged)
    with duckdb.connect(str(staged)) as conn:
        counts = {t.name: conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0] for t in ALL_TABLES}
        return audit_staging(conn, run_id=RUN_ID, previous_counts=counts, max_row_drop_pct=50,
                             revalidate=["fact_goods_trade"]).to_dict()


@pytest.fixture(scope="module")
def manifest(batches, audit) -> dict:
    from eujp.config import Settings
    from eujp.run import run_manifest

    return run_manifest(Settings(run_id=RUN_ID), batches, {}, audit, "success", None)


@pytest.fixture(scope="module")
def catalog(warehouse, manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catalog") / CATALOG_FILE
    return write_catalog(warehouse, out, manifest=manifest, report_link="report.html")


@pytest.fixture(scope="module")
def dom(catalog, tmp_path_factory) -> str:
    done = run_chromium(["--dump-dom", catalog.as_uri()], tmp_path_factory.mktemp("chromium-profile"))
    text = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0 and "</html>" in text, done.stderr.decode(errors="replace")[-2000:]
    return text


def section(dom: str, table: str) -> str:
    match = re.search(rf'<section class="table" id="t-{table}">.*?</section>', dom, flags=re.DOTALL)
    assert match, f"no section for {table}"
    return match.group(0)


def text_of(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_catalog_is_one_self_contained_page(catalog):
    text = catalog.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing is fetched from elsewhere: no script, no external stylesheet, image, font or link
    assert "<script" not in text
    assert not re.search(r"""(src|srcset)\s*=""", text)
    assert not re.search(r"<link\b", text)
    assert not re.search(r"url\(", text)
    assert not re.search(r"@import|@font-face", text)
    assert not re.search(r"""=\s*["']?\s*(https?:)?//""", text)  # no attribute points off the page
    links = set(re.findall(r"""href\s*=\s*["']([^"']*)["']""", text))
    assert links and all(h.startswith("#") or h == "report.html" for h in links), links - {
        h for h in links if h.startswith("#")}
    anchors = set(re.findall(r'\bid="([^"]+)"', text))
    assert {h[1:] for h in links if h.startswith("#")} <= anchors  # every in-page link lands somewhere
    for table in ALL_TABLES:  # every table with every column
        assert f'id="t-{table.name}"' in text
        block = section(text, table.name)
        for column in table.all_columns:
            assert f"<code>{column}</code>" in block, (table.name, column)


def test_rendered_dom_shows_tables_columns_and_descriptions(dom):
    goods = text_of(section(dom, "fact_goods_trade"))
    assert "value_mio_eur DOUBLE Value in millions of euro; null where Eurostat withholds the figure" in goods
    assert "Grain (natural key) reporter , partner , flow , period_year" in goods  # code spans, comma-separated
    assert "Rows 72" in goods  # Japan 42 + the other main partners 30
    # freshness of a fact: its source's last success and newest period
    assert re.search(r"Freshness ok last successful extraction \d{4}-\d\d-\d\d \d\d:\d\d UTC .*newest period held "
                     r"2024", goods)
    assert f"raw/{GOODS.name}/{{YYYY-MM-DD}}/{{sha256}}.{GOODS.extension}" in goods
    for table in ("dim_country", "mart_trade_annual", "ref_japan_rank", "etl_runs"):
        block = text_of(section(dom, table))
        for column, doc in TABLES[table].docs.items():
            assert f"{column} " in block and " ".join(doc.split()) in block, (table, column)


def test_a_models_built_line_says_which_run_built_it_and_why(dom, warehouse):
    """Models are rebuilt when their definition or an input changed (eujp.marts.build), not every run: the
    catalog said "Built every run"; it says which run last built each and why (etl_model_state)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        run, reason = conn.execute("SELECT built_run_id, reason FROM etl_model_state WHERE model = "
                                   "'mart_trade_annual'").fetchone()
    block = text_of(section(dom, "mart_trade_annual"))
    assert re.search(rf"Built from eujp/marts/mart_trade_annual.sql when its definition or one of its inputs "
                     rf"changes; last {f'by run {re.escape(run)} ' if run else ''}at "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
                     + (rf" \({re.escape(reason)}\)" if reason else ""), block), block[:800]
    assert "every run" not in block.split("Built")[1][:60]


def test_rendered_dom_shows_each_marts_sql_with_its_header(dom):
    for name in ("mart_chapter_trade", "mart_trade_annual", "dim_product"):
        block = text_of(section(dom, name))
        sql = mart_sql(MODELS[name].table)
        header = [line for line in sql.splitlines() if line.startswith("--")]
        assert header and " ".join(header[0].split()) in block
        assert " ".join(sql.split()) in block  # the whole query, as written
    claims = text_of(section(dom, "mart_claims"))
    assert "UNION ALL" in claims and "claims/japan_second_largest_partner.sql" in claims


def test_rendered_dom_shows_expectations_with_their_result_and_its_origin(dom, manifest):
    goods = text_of(section(dom, "fact_goods_trade"))
    report = manifest["validation"]["fact_goods_trade"]
    n = len(report["expectations"])
    assert f"{n} expectations" in goods and f"{n} met" in goods
    assert f"Result from this run's validation ({RUN_ID}): Great Expectations on the batch" in goods
    assert "expect_compound_columns_to_be_unique reporter, partner, flow, period_year" in goods  # one cell
    assert re.search(r"Audit \(the suite in SQL on the staged table, before promotion\): passed \d+ staged rows",
                     goods)
    # not validated this run: evaluated in SQL, with the broken expectation's result
    events = text_of(section(dom, "fact_security_events"))
    assert "Result from not validated this run: evaluated in DuckDB SQL on the warehouse table" in events
    assert "1 failed" in events
    failed = re.search(r"warning expect_column_values_to_be_in_set event_type .*? failed 1 unexpected", events)
    assert failed, events[:3000]
    assert "cyber_dialogue" in events
    # dim_country has a suite too
    assert "expectations/dim_country.json" in text_of(section(dom, "dim_country"))


def test_rendered_dom_holds_the_lineage_graph(dom):
    svgs = re.findall(r'<svg class="lineage".*?</svg>', dom, flags=re.DOTALL)
    assert len(svgs) == 1
    svg = svgs[0]
    labels = set(re.findall(r"<text[^>]*>([^<]+)</text>", svg))
    for s in SOURCES:
        assert {s.name, f"raw/{s.name}/", s.table.name} <= labels
    assert set(MODELS) <= labels
    assert {"mart_claims", "dim_date", "data/reference/"} <= labels
    edges = re.findall(r'<path class="edge[^"]*" d="[^"]+"[^>]*><title>([^<]+)</title>', svg)
    edges = {tuple(html.unescape(e).split(" → ")) for e in edges}
    assert (GOODS.name, f"raw/{GOODS.name}/") in edges
    assert (f"raw/{GOODS.name}/", "fact_goods_trade") in edges
    assert ("mart_product_trade", "mart_chapter_trade") in edges
    assert ("dim_country", "dim_eu_aggregate_member") in edges
    labels = sum(s.labels is not None for s in SOURCES)  # raw payloads -> a label table
    assert len(edges) == 2 * len(SOURCES) + labels + sum(len(m.depends_on) for m in MODELS.values()) + 5  # + seeds


def test_rendered_dom_holds_the_run_history(dom):
    panels = re.findall(r'<svg[^>]*class="history".*?</svg>', dom, flags=re.DOTALL)
    assert len(panels) == len(SOURCES)
    arms = next(p for p in panels if f"run history of {ARMS.name}" in p)
    tips = re.findall(r"<g><title>([^<]+)</title>", arms)
    assert len(tips) == 5  # four older runs and the bundled one
    assert any(t.startswith(f"{OLDER_RUNS[3]} · failed") for t in tips)
    assert any(t.startswith(f"{OLDER_RUNS[2]} · unchanged") for t in tips)
    history = text_of(dom.split('id="history"', 1)[1].split('id="tables"', 1)[0])
    for run_id in (*OLDER_RUNS, RUN_ID):
        assert run_id in history
    assert "last run: success" in history and "1 failed" in history


def test_catalog_renders_readably_in_headless_chromium(catalog, tmp_path):
    shot = tmp_path / "catalog.png"
    done = run_chromium(["--window-size=1320,3200", f"--screenshot={shot}", catalog.as_uri()], tmp_path / "profile")
    assert shot.is_file() and shot.stat().st_size > 0, done.stderr.decode(errors="replace")[-2000:]

    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1320, 3200)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot is (nearly) blank"
    counts = {rgb: n for n, rgb in colours}
    for kind in ("source", "fact", "mart", "dimension"):  # the lineage's nodes are drawn in their colours
        rgb = tuple(int(COLOURS[kind][i:i + 2], 16) for i in (1, 3, 5))
        assert counts.get(rgb, 0) > 300, kind
    if os.environ.get("EUJP_KEEP_SCREENSHOT"):  # to look at it: EUJP_KEEP_SCREENSHOT=/tmp/catalog.png pytest ...
        shutil.copyfile(shot, os.environ["EUJP_KEEP_SCREENSHOT"])


def test_publish_puts_the_catalog_beside_the_report_in_the_run_and_latest(warehouse, batches, audit, tmp_path):
    from eujp.config import Settings
    from eujp.run import publish

    live = tmp_path / "var" / "warehouse.duckdb"
    live.parent.mkdir()
    shutil.copyfile(warehouse, live)
    run_id = "20261125T060000Z-catalog"
    settings = Settings(warehouse_path=live, publish_uri=str(tmp_path / "store"), run_id=run_id)
    with duckdb.connect(str(live), read_only=True) as conn:
        counts = {t.name: conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0] for t in ALL_TABLES}
    location = publish(settings, batches, counts, audit, "success")

    store = tmp_path / "store"
    assert location.endswith(f"runs/{run_id}")
    published, latest = store / "runs" / run_id / CATALOG_FILE, store / "latest" / CATALOG_FILE
    assert published.is_file() and latest.is_file()
    assert published.read_bytes() == latest.read_bytes()
    assert (store / "latest" / "report.html").is_file()
    import json

    manifest = json.loads((store / "runs" / run_id / "manifest.json").read_text())
    assert set(manifest["files"]) >= {CATALOG_FILE, "report.html"}
    text = published.read_text(encoding="utf-8")
    assert f"run <code>{run_id}</code>" in text and 'href="report.html"' in text
    assert f"this run&#x27;s validation ({run_id})" in text


def test_suites_of_tables_the_run_did_not_write_reuse_the_previous_evaluation(bundled_warehouse):
    """The catalog of a run evaluates a suite once and keeps it (manifest "suite_results"); the next run
    reuses it for a table it did not write, and evaluates again a table it wrote or whose rows changed."""
    from eujp.catalog import FACT_NAMES, suite_results

    with duckdb.connect(str(bundled_warehouse), read_only=True) as conn:
        cache: dict = {}
        first = suite_results(conn, {"run_id": "20261125T060000Z-nochg1"}, cache=cache)
        assert set(FACT_NAMES) <= set(cache) and all(first[t].origin == "sql" for t in FACT_NAMES)
        assert all(o is not None and o["success"] for o in first[ARMS.table.name].outcomes[:1])
        # Mark the kept evaluation, as if the table had then failed its first expectation: what the next run
        # shows is the kept result, so the table was not scanned again.
        cache[ARMS.table.name]["outcomes"][0] = cache[ARMS.table.name]["outcomes"][0] | {"success": False}
        kept = suite_results(conn, {"run_id": "20261126T060000Z-nochg2"}, cache=cache)
        assert kept[ARMS.table.name].outcomes[0]["success"] is False
        assert "by run 20261125T060000Z-nochg1" in kept[ARMS.table.name].origin_text
        # The run that loaded the table (etl_runs) evaluates it again; so does a changed row count.
        written = suite_results(conn, {"run_id": RUN_ID}, cache=dict(cache))
        assert written[ARMS.table.name].outcomes[0]["success"] is True
        cache[ARMS.table.name]["row_count"] += 1
        recounted = suite_results(conn, {"run_id": "20261126T060000Z-nochg2"}, cache=cache)
        assert recounted[ARMS.table.name].outcomes[0]["success"] is True
