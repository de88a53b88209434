"""The catalog's parts that need no warehouse: the lineage graph and its layout, the run-history charts, the
choice of each suite's last result, the SQL listing (eujp.catalog; the whole page: tests/integration/
test_catalog.py)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from eujp import catalog
from eujp.catalog import Lineage, Node, history_panel, layout, lineage, suite_results
from eujp.marts import MODELS
from eujp.sources import SOURCES
from eujp.tables import TABLES
from eujp.validate import load_suite


def test_lineage_runs_from_each_source_through_its_raw_payloads_to_its_fact_and_on_to_the_marts():
    graph = lineage({"fact_goods_trade": 42})
    ids = {n.id: n for n in graph.nodes}
    edges = set(graph.edges)
    for s in SOURCES:
        assert (f"source:{s.name}", f"raw:{s.name}") in edges
        assert (f"raw:{s.name}", s.table.name) in edges
        assert ids[f"raw:{s.name}"].label == f"raw/{s.name}/"
        assert ids[f"raw:{s.name}"].sublabel == f"{{date}}/{{sha256}}.{catalog.raw_extensions(s)}"
    for name, model in MODELS.items():
        assert {(d, name) for d in model.depends_on} <= edges
    assert ("seed", "dim_country") in edges and ("seed", "ref_japan_rank") in edges
    assert not any(n.startswith("etl_") for n in ids)  # bookkeeping is not lineage
    assert ids["fact_goods_trade"].sublabel == "42 rows"
    for u, v in graph.edges:  # every edge runs left to right
        assert ids[u].column < ids[v].column, (u, v)
    # the layers in order: sources, raw payloads, loaded tables, dimensions, then marts
    dims = [n.column for n in graph.nodes if n.kind == "dimension" and n.id in MODELS]
    marts = [n.column for n in graph.nodes if n.kind == "mart"]
    assert {n.column for n in graph.nodes if n.kind == "source"} == {0}
    assert {n.column for n in graph.nodes if n.kind == "fact"} == {2}
    assert min(dims) >= 3 and min(marts) > max(dims)
    assert ids["mart_chapter_trade"].column > ids["mart_product_trade"].column


def test_layout_keeps_nodes_apart_and_edges_between_their_nodes():
    graph = lineage()
    lay = layout(graph)
    by_column: dict[float, list[tuple[float, float]]] = {}
    for x, y, w, h in lay.boxes.values():
        assert 0 <= x and x + w <= lay.width and 0 <= y and y + h <= lay.height
        by_column.setdefault(x, []).append((y, y + h))
    for spans in by_column.values():
        spans.sort()
        for (_, bottom), (top, _) in itertools.pairwise(spans):
            assert top >= bottom + catalog.NODE_GAP - 1e-6  # never overlapping
    assert len(lay.paths) == len(graph.edges)
    for u, v, d in lay.paths:
        start = tuple(map(float, re.match(r"M([\d.]+),([\d.]+)", d).groups()))
        end = tuple(map(float, re.findall(r"([\d.]+),([\d.]+)$", d)[0]))
        xu, yu, wu, hu = lay.boxes[u]
        xv, yv, _wv, hv = lay.boxes[v]
        assert start == pytest.approx((xu + wu, yu + hu / 2), abs=0.06)
        assert end == pytest.approx((xv, yv + hv / 2), abs=0.06)


def test_a_long_edge_passes_through_its_own_slot_not_under_a_node():
    nodes = (Node("a", "source", "a", column=0), Node("b", "fact", "b", column=1), Node("c", "mart", "c", column=2),
             Node("d", "fact", "d", column=1))
    graph = Lineage(nodes, (("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")))
    lay = layout(graph)
    long_edge = next(d for u, v, d in lay.paths if (u, v) == ("a", "c"))
    assert " L" in long_edge  # straight across the middle column, in a slot of its own
    y_slot = float(re.search(r" L[\d.]+,([\d.]+)", long_edge).group(1))
    for name in ("b", "d"):
        _, y, _, h = lay.boxes[name]
        assert not y <= y_slot <= y + h
    with pytest.raises(ValueError, match="left to right"):
        layout(Lineage(nodes, (("c", "a"),)))


def test_lineage_svg_links_every_node_and_draws_every_edge():
    graph = lineage()
    svg = catalog.lineage_svg(graph)
    assert svg.startswith('<svg class="lineage"') and svg.endswith("</svg>")
    assert svg.count('<path class="edge') == len(graph.edges)
    assert svg.count('<a href="#t-') == sum(1 for n in graph.nodes if n.href and n.href.startswith("#t-"))
    assert f'<a href="#s-{SOURCES[0].name}">' in svg
    assert "http" not in svg.replace("http://www.w3.org", "")


def _runs(statuses: list[str]) -> list[dict]:
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    return [{"run_id": f"202611{20 + i}T060000Z-r{i}", "source": "some_source", "status": st,
             "rows_in": 0 if st == "unchanged" else 100, "rows_loaded": 0 if st != "success" else 90,
             "rows_rejected": 100 if st == "failed" else (0 if st == "unchanged" else 10),
             "rows_written": 90 if st == "success" else 0, "started_at": start + timedelta(days=i),
             "ended_at": start + timedelta(days=i, seconds=2), "duration_s": 2.0 + i, "message": None}
            for i, st in enumerate(statuses)]


def test_history_panel_draws_a_bar_per_run_with_its_numbers():
    rows = _runs(["success", "unchanged", "failed", "success"])
    svg = history_panel("some_source", rows, [r["run_id"] for r in rows])
    tips = re.findall(r"<g><title>([^<]+)</title>", svg)
    assert len(tips) == 4
    assert tips[0] == ("20261120T060000Z-r0 · success · rows in 100, loaded 90, rejected 10, written 90 · 2.00 s")
    assert "failed" in tips[2] and "unchanged" in tips[1]
    assert "last run: success" in svg
    assert svg.count(f'fill="{catalog.LOADED}"') == 2 and svg.count(f'fill="{catalog.DURATION}"') == 4
    assert f'stroke="{catalog.REJECTED}"' in svg  # the failed run's cross
    assert "11-20 06:00" in svg and "11-23 06:00" in svg  # first and last run on the axis
    # a run the source was not part of leaves its slot empty
    gap = history_panel("some_source", rows[:1], [rows[0]["run_id"], "20261130T060000Z-other"])
    assert len(re.findall(r"<g><title>", gap)) == 1 and "last run: not in the last run" in gap


@pytest.mark.parametrize(("value", "nice"), [(0, 1.0), (1, 1.0), (3, 5.0), (42, 50.0), (455, 500.0),
                                             (0.3, 0.5), (1001, 2000.0), (2400, 2500.0)])
def test_nice_axis_maximum(value, nice):
    assert catalog._nice_max(value) == pytest.approx(nice)


def test_the_runs_validation_comes_first_and_says_so():
    suite = load_suite("fact_goods_trade")["expectations"]
    outcomes = [{"expectation_type": e["type"], "success": i != 3, "message": "met" if i != 3 else "boom",
                 "unexpected_count": None if i != 3 else 2, "unexpected_percent": None if i != 3 else 4.0,
                 "element_count": 42} for i, e in enumerate(suite)]
    manifest = {"run_id": "R1", "validation": {"fact_goods_trade": {"row_count": 42, "expectations": outcomes}},
                "audit": {"ok": True, "checks": [{"name": "fact_goods_trade.suite", "ok": True, "detail": "fine"}]}}
    results = suite_results(None, manifest, ["fact_goods_trade", "fact_services_trade"], evaluate=False)
    goods = results["fact_goods_trade"]
    assert goods.origin == "validation" and "this run's validation (R1)" in goods.origin_text
    assert goods.counts == {"met": len(suite) - 1, "failed": 1, "not evaluated": 0}
    assert goods.audit == {"name": "fact_goods_trade.suite", "ok": True, "detail": "fine"}
    services = results["fact_services_trade"]
    assert services.origin == "none" and services.counts["not evaluated"] == len(services.expectations)
    page = catalog.suite_html(goods)
    assert "Result from</b> this run&#x27;s validation (R1)" in page and "boom" in page
    assert "2 unexpected (4.00%)" in page and "Audit</b>" in page


def test_an_outcome_that_does_not_match_its_expectation_is_not_shown_as_its_result():
    suite = load_suite("fact_goods_trade")["expectations"]
    outcomes = [{"expectation_type": "expect_something_else", "success": True}] * len(suite)
    assert catalog._matched(suite, outcomes) == [None] * len(suite)
    assert catalog._matched(suite, []) == [None] * len(suite)


def test_sql_is_escaped_and_its_comments_set_apart():
    out = catalog._sql_html("-- a <header> & note\nSELECT 1 AS x -- trailing\nWHERE s = '--not a comment'\n")
    assert '<span class="c">-- a &lt;header&gt; &amp; note</span>' in out
    assert 'SELECT 1 AS x <span class="c">-- trailing</span>' in out
    assert "WHERE s = &#x27;--not a comment&#x27;" in out


def test_every_model_has_its_sql_in_the_catalog():
    for name in MODELS:
        out = catalog.model_sql_html(TABLES[name])
        assert "<pre class=\"sql\">" in out, name
    claims = catalog.model_sql_html(TABLES["mart_claims"])
    assert claims.count("<details>") == len(catalog.claim_files())


def test_a_failed_batchs_validation_says_the_table_kept_its_previous_rows():
    suite = load_suite("fact_goods_trade")["expectations"]
    outcomes = [{"expectation_type": e["type"], "success": i != 0, "message": "x"} for i, e in enumerate(suite)]
    source = next(s for s in SOURCES if s.table.name == "fact_goods_trade")
    manifest = {"run_id": "R1", "validation": {"fact_goods_trade": {"row_count": 3, "expectations": outcomes}},
                "sources": {source.name: {"table": "fact_goods_trade", "status": "failed"}}}
    result = suite_results(None, manifest, ["fact_goods_trade"], evaluate=False)["fact_goods_trade"]
    assert "the batch FAILED and was not loaded (the table keeps its previous rows)" in result.origin_text
    manifest["sources"][source.name]["status"] = "loaded"
    result = suite_results(None, manifest, ["fact_goods_trade"], evaluate=False)["fact_goods_trade"]
    assert "FAILED" not in result.origin_text


def test_the_runs_table_marks_a_source_that_failed_its_run_by_its_rejected_rows():
    """A source above its rejected-rows threshold loads (etl_runs 'success') but fails its run: the runs table
    counted it as a success ("1 success"), so a failed run looked like any other."""
    rows = _runs(["success", "success"])
    rows[1]["message"] = ("some_source: 10 of 100 rows in rejected (10%), above the threshold of 5% "
                          "(EUJP_MAX_REJECTED_PCT); its 90 valid rows were loaded, but the run fails so that someone "
                          "looks; see etl_rejected_rows")
    html = catalog.history_section(rows, sources=[])
    assert "1 failed the run: rejected rows" in html and html.count("1 success") == 1


def test_the_raw_zone_names_every_extension_a_source_lands():
    """Comext lands its data (csv), its product codelist (xml, which names ref_cn8_labels) and its coverage
    statement (json): the lineage said .csv only."""
    comext = next(s for s in SOURCES if s.labels is not None)
    assert catalog.raw_extensions(comext) == "{csv,xml,json}"
    assert catalog.raw_pattern(comext).endswith("/{sha256}.{csv,xml,json}")
    plain = next(s for s in SOURCES if s.labels is None and s.coverage is None)
    assert catalog.raw_extensions(plain) == plain.extension
