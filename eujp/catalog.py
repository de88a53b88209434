"""The warehouse catalog: one self-contained static HTML page to browse every table of a warehouse.

    write_catalog(warehouse_path, out_path, manifest=..., run_id=...)   published as runs/{run_id}/catalog.html
                                                                        and latest/catalog.html (eujp.run.publish)
    python -m eujp.catalog WAREHOUSE [--manifest manifest.json] [--out catalog.html]

What it shows, all read from the declarations (eujp.tables, eujp.sources, eujp/marts, expectations/) and the
warehouse itself (opened read-only):

* every table by layer with its description, grain (natural key), row count and columns (type, key, COMMENT);
  for a fact table its source and freshness (last successful extraction, newest period, eujp.freshness);
* each suite's expectations with their last result, and where that result comes from: this run's batch
  validation (Great Expectations, in the run's manifest) when the table was validated this run, else the
  suite evaluated in DuckDB SQL on the warehouse table by the audit's evaluator (eujp.suite_sql) when the
  catalog is built; the audit's own check of the staged table (manifest "audit") is quoted beside it;
* the SQL of every built dimension and mart (eujp/marts/*.sql, header comment included; mart_claims: its
  claims/*.sql);
* the lineage, source -> raw payload (raw/{source}/{date}/{sha256}.{ext}) -> fact -> dimension -> mart, as an
  inline SVG laid out here (layered: long edges routed through their own slots, columns ordered by barycentre
  sweeps to keep crossings down);
* the run history: rows and duration per source over the last runs of etl_runs, as inline SVG charts.

The page has no script, and no stylesheet, font or image from elsewhere: it opens offline from a folder, a
bucket or an e-mail attachment. Links are anchors inside the page (and the run report beside it, if asked).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import itertools
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from eujp.config import duckdb_config
from eujp.docgen import layer
from eujp.freshness import Freshness, assess
from eujp.marts import CLAIMS_DIR, MART_CLAIMS, MODELS, SQL_DIR, claim_files, mart_sql
from eujp.partners import loaded_partners, not_requested_note, requested_partners
from eujp.rows import fails_run
from eujp.schema import Table
from eujp.sources import SOURCES, Source
from eujp.sql import quote_ident
from eujp.tables import ALL_TABLES, FACT_TABLES, TABLES
from eujp.validate import SUITE_TABLES, load_suite
from eujp.warehouse import duck_type, read_source_state

log = logging.getLogger("eujp")

CATALOG_FILE = "catalog.html"
HISTORY_RUNS = 12  # runs of etl_runs shown in the run history
LAYERS = ("fact", "dimension", "reference", "mart", "ETL")  # the order tables are listed in
RAW_PATTERN = "raw/{source}/{date}/{sha256}.{ext}"  # eujp.landing.raw_key
SEED = "data/reference"

# Node colours by kind (lineage) and layer badges.
COLOURS = {
    "source": "#8250df", "raw": "#6e7781", "seed": "#6e7781", "fact": "#0969da", "reference": "#9a6700",
    "dimension": "#1a7f37", "mart": "#bc4c00", "ETL": "#57606a",
}
STATUS_COLOURS = {"ok": "#1a7f37", "stale": "#9a6700", "never": "#cf222e", "success": "#1a7f37",
                  "unchanged": "#6e7781", "failed": "#cf222e", "met": "#1a7f37", "warning": "#9a6700",
                  "critical": "#cf222e", "not evaluated": "#6e7781", "failed the run: rejected rows": "#cf222e"}
LOADED, REJECTED, DURATION = "#0969da", "#cf222e", "#8250df"

_CSS = """
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
margin:0;color:#1f2328;background:#fff;font-size:14px;line-height:1.45}main{max-width:1320px;margin:0 auto;
padding:20px 24px}h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.3em;margin:36px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}h3{font-size:1.12em;margin:0}p.meta,.muted{color:#57606a}a{color:#0969da;
text-decoration:none}a:hover{text-decoration:underline}code{font-family:"DejaVu Sans Mono",ui-monospace,
SFMono-Regular,Menlo,monospace;font-size:.92em}nav.toc{display:grid;grid-template-columns:repeat(auto-fill,
minmax(250px,1fr));gap:4px 16px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px}
nav.toc b{display:block;margin-top:6px}nav.toc a{display:block;font-size:.9em}table{border-collapse:collapse;
width:100%;font-size:.88em;margin:6px 0}th,td{border:1px solid #d0d7de;padding:3px 6px;vertical-align:top;
text-align:left}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:
nowrap}.badge{display:inline-block;color:#fff;border-radius:10px;padding:0 8px;font-size:.8em;font-weight:600;
white-space:nowrap;vertical-align:middle}.key{display:inline-block;border:1px solid #0969da;color:#0969da;
border-radius:4px;padding:0 4px;font-size:.75em;font-weight:600}section.table{border:1px solid #d0d7de;
border-radius:8px;padding:12px 16px;margin:16px 0;scroll-margin-top:8px}section.table>header{display:flex;
gap:10px;align-items:center;flex-wrap:wrap}dl.facts{display:grid;grid-template-columns:170px 1fr;gap:2px 12px;
margin:8px 0}dl.facts dt{color:#57606a}dl.facts dd{margin:0}pre.sql{white-space:pre;overflow:auto;max-height:
460px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;font-size:.8em;
line-height:1.4}pre.sql .c{color:#116329}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
figure{margin:8px 0;overflow-x:auto}figure svg{max-width:100%;height:auto}figcaption{color:#57606a;
font-size:.9em}.legend span{display:inline-block;margin-right:14px;font-size:.88em}.legend i{display:
inline-block;width:12px;height:12px;border-radius:3px;margin-right:4px;vertical-align:-1px}.panels{display:grid;
grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px}.panels svg{width:100%;height:auto;border:
1px solid #d0d7de;border-radius:6px}td.result small{display:block;color:#57606a}th.result{min-width:150px}
.origin{background:#ddf4ff;
border:1px solid #54aeff;border-radius:6px;padding:4px 8px;margin:6px 0;font-size:.9em}.audit{background:
#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:4px 8px;margin:6px 0;font-size:.9em}
svg.lineage .edge{fill:none;stroke-width:1.4;stroke-opacity:.45}svg.lineage .node rect{fill:#fff;
stroke-width:1.5}svg.lineage text{font-family:"DejaVu Sans",system-ui,sans-serif}svg.lineage .node:hover rect{
fill:#f6f8fa}
"""


def _esc(value: object) -> str:
    return "" if value is None else html.escape(str(value))


def _num(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _badge(text: str, colour: str | None = None) -> str:
    colour = colour or STATUS_COLOURS.get(text, "#57606a")
    return f'<span class="badge" style="background:{colour}">{_esc(text)}</span>'


def _ts(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


KEY_BADGE = ' <span class="key">key</span>'


def raw_extensions(source: Source) -> str:
    """The extensions of what the source lands: its data's, and its label feed's and coverage statement's when
    they differ (Comext: csv, its codelist xml, its coverage json), as `csv` or `{csv,xml,json}`."""
    exts = [source.extension] + [f.extension for f in (source.labels, source.coverage) if f is not None]
    exts = list(dict.fromkeys(exts))
    return exts[0] if len(exts) == 1 else "{" + ",".join(exts) + "}"


def raw_pattern(source: Source) -> str:
    """Where the source's payloads are landed: raw/{source}/{YYYY-MM-DD}/{sha256}.{ext} (eujp.landing)."""
    return RAW_PATTERN.format(source=source.name, date="{YYYY-MM-DD}", sha256="{sha256}", ext=raw_extensions(source))


def table_anchor(name: str) -> str:
    return f"t-{name}"


def source_anchor(name: str) -> str:
    return f"s-{name}"


# ============================================================================================== lineage


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # source | raw | seed | fact | reference | dimension | mart
    label: str
    sublabel: str = ""
    href: str | None = None
    column: int = 0


@dataclass(frozen=True)
class Lineage:
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]  # (upstream id, downstream id)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def lineage(counts: Mapping[str, int | None] | None = None, *, sources: Sequence[Source] = SOURCES,
            tables: Sequence[Table] = ALL_TABLES, models: Mapping[str, Any] = MODELS) -> Lineage:
    """The warehouse's lineage: source -> raw payload -> fact (and a source's label table); data/reference ->
    reference tables and dim_country; each built dimension and mart from the tables its declaration depends
    on. Columns: 0 sources, 1 landed payloads (and the reference seed), 2 loaded tables, then the built
    dimensions by depth, then the marts by depth. ETL bookkeeping tables are left out."""
    counts = counts or {}

    def rows(name: str) -> str:
        n = counts.get(name)
        return "" if n is None else f"{n:,} rows"

    nodes: list[Node] = []
    edges: list[tuple[str, str]] = []
    fact_names = {s.table.name for s in sources}
    for s in sources:
        nodes.append(Node(f"source:{s.name}", "source", s.name, f"{s.domain} · every {s.cadence_days} d",
                          f"#{source_anchor(s.name)}", 0))
        nodes.append(Node(f"raw:{s.name}", "raw", f"raw/{s.name}/", f"{{date}}/{{sha256}}.{raw_extensions(s)}",
                          f"#{source_anchor(s.name)}", 1))
        nodes.append(Node(s.table.name, "fact", s.table.name, rows(s.table.name), f"#{table_anchor(s.table.name)}",
                          2))
        edges += [(f"source:{s.name}", f"raw:{s.name}"), (f"raw:{s.name}", s.table.name)]
        if s.labels is not None:  # labels landed with the source's payloads (eujp.sources.base.LabelFeed)
            nodes.append(Node(s.labels.table.name, layer(s.labels.table), s.labels.table.name,
                              rows(s.labels.table.name), f"#{table_anchor(s.labels.table.name)}", 2))
            edges.append((f"raw:{s.name}", s.labels.table.name))
            fact_names.add(s.labels.table.name)
    loaded = [t for t in tables if t.name not in fact_names and t.name not in models and layer(t) != "ETL"]
    if loaded:
        nodes.append(Node("seed", "seed", f"{SEED}/", "*.csv (in git)", None, 1))
    for t in loaded:
        nodes.append(Node(t.name, layer(t), t.name, rows(t.name), f"#{table_anchor(t.name)}", 2))
        edges.append(("seed", t.name))
    # Built models: dimensions by depth after the loaded tables, marts by depth after every dimension.
    depth: dict[str, int] = {n.id: n.column for n in nodes}
    names = list(models)  # build order: every model after the models it depends on
    for name in names:
        deps = models[name].depends_on
        floor = 3 if name.startswith("dim_") else 0
        depth[name] = max([floor, *(depth[d] + 1 for d in deps if d in depth)])
    last_dim = max([2, *(depth[n] for n in names if n.startswith("dim_"))])
    for name in names:  # marts start after the last dimension column
        if not name.startswith("dim_"):
            deps = models[name].depends_on
            depth[name] = max([last_dim + 1, *(depth[d] + 1 for d in deps if d in depth)])
    for name in names:
        t = models[name].table
        nodes.append(Node(name, layer(t), name, rows(name), f"#{table_anchor(name)}", depth[name]))
        edges += [(d, name) for d in models[name].depends_on if d in depth]
    return Lineage(tuple(nodes), tuple(edges))


@dataclass
class _Slot:
    id: str
    column: int
    height: float
    dummy: bool
    y: float = 0.0  # centre


@dataclass
class Layout:
    width: float
    height: float
    column_x: list[float]
    column_width: list[float]
    boxes: dict[str, tuple[float, float, float, float]]  # node id -> x, y (top), width, height
    paths: list[tuple[str, str, str]]  # (upstream id, downstream id, SVG path data)
    headers: list[tuple[float, str]] = field(default_factory=list)  # (x, text) per column


NODE_H, NODE_GAP, DUMMY_H, DUMMY_GAP, COL_GAP, TOP, MARGIN = 36.0, 12.0, 6.0, 6.0, 46.0, 34.0, 10.0
CHAR_W, SUB_CHAR_W, PAD = 8.0, 6.4, 12.0  # generous widths of a 12px bold / 10px DejaVu Sans character


def _crossings(order: list[list[str]], succ: Mapping[str, list[str]]) -> int:
    total = 0
    for c in range(len(order) - 1):
        pos = {n: i for i, n in enumerate(order[c + 1])}
        pairs = [(i, pos[v]) for i, u in enumerate(order[c]) for v in succ[u] if v in pos]
        total += sum(1 for a in range(len(pairs)) for b in range(a + 1, len(pairs))
                     if (pairs[a][0] - pairs[b][0]) * (pairs[a][1] - pairs[b][1]) < 0)
    return total


def layout(graph: Lineage, sweeps: int = 16) -> Layout:
    """A layered drawing of the lineage: nodes in their columns, every edge running left to right; an edge
    spanning several columns passes through a thin slot of its own in each column between, so it never runs
    under a node. Node order per column: barycentre sweeps (the order with the fewest crossings wins); node
    heights: pulled towards their neighbours, never overlapping."""
    columns = max(n.column for n in graph.nodes) + 1
    slots: dict[str, _Slot] = {n.id: _Slot(n.id, n.column, NODE_H, False) for n in graph.nodes}
    order: list[list[str]] = [[] for _ in range(columns)]
    for n in graph.nodes:
        order[n.column].append(n.id)
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    chains: list[tuple[str, str, list[str]]] = []
    for u, v in graph.edges:
        cu, cv = slots[u].column, slots[v].column
        if cv <= cu:
            raise ValueError(f"lineage edge {u} -> {v} does not run left to right")
        chain = [u]
        for c in range(cu + 1, cv):
            d = f"~{u}>{v}@{c}"
            slots[d] = _Slot(d, c, DUMMY_H, True)
            order[c].append(d)
            chain.append(d)
        chain.append(v)
        for a, b in itertools.pairwise(chain):
            succ[a].append(b)
            pred[b].append(a)
        chains.append((u, v, chain[1:-1]))

    best, best_cross = [list(c) for c in order], _crossings(order, succ)
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        rng = range(1, columns) if down else range(columns - 2, -1, -1)
        for c in rng:
            ref = order[c - 1] if down else order[c + 1]
            pos = {n: i for i, n in enumerate(ref)}
            links = pred if down else succ
            scale = len(ref) / max(len(order[c]), 1)  # a node without neighbours there keeps its place
            keys = {}
            for i, n in enumerate(order[c]):
                near = [pos[m] for m in links[n] if m in pos]
                keys[n] = sum(near) / len(near) if near else i * scale
            order[c] = sorted(order[c], key=keys.__getitem__)
        cross = _crossings(order, succ)
        if cross < best_cross:
            best, best_cross = [list(c) for c in order], cross
    order = best

    def gap(a: _Slot, b: _Slot) -> float:
        return (a.height + b.height) / 2 + (DUMMY_GAP if a.dummy or b.dummy else NODE_GAP)

    for col in order:  # initial: stacked from the top
        y = 0.0
        for i, n in enumerate(col):
            y = y + gap(slots[col[i - 1]], slots[n]) if i else slots[n].height / 2
            slots[n].y = y
    for it in range(24):
        down = it % 2 == 0
        for c in (range(columns) if down else range(columns - 1, -1, -1)):
            col = [slots[n] for n in order[c]]
            if not col:
                continue
            desired = []
            for s in col:
                near = [slots[m].y for m in (*pred[s.id], *succ[s.id])]
                desired.append(sum(near) / len(near) if near else s.y)
            pushed_down = list(desired)
            for i in range(1, len(col)):
                pushed_down[i] = max(pushed_down[i], pushed_down[i - 1] + gap(col[i - 1], col[i]))
            pushed_up = list(desired)
            for i in range(len(col) - 2, -1, -1):
                pushed_up[i] = min(pushed_up[i], pushed_up[i + 1] - gap(col[i], col[i + 1]))
            ys = [(a + b) / 2 for a, b in zip(pushed_down, pushed_up, strict=True)]
            for i in range(1, len(col)):
                ys[i] = max(ys[i], ys[i - 1] + gap(col[i - 1], col[i]))
            for s, y in zip(col, ys, strict=True):
                s.y = y
    top = min(s.y - s.height / 2 for s in slots.values())
    for s in slots.values():
        s.y += TOP - top

    by_id = {n.id: n for n in graph.nodes}
    widths = [60.0] * columns
    for n in graph.nodes:
        widths[n.column] = max(widths[n.column], PAD * 2 + max(len(n.label) * CHAR_W, len(n.sublabel) * SUB_CHAR_W))
    xs, x = [], MARGIN
    for w in widths:
        xs.append(x)
        x += w + COL_GAP
    boxes = {n.id: (xs[n.column], slots[n.id].y - NODE_H / 2, widths[n.column], NODE_H) for n in graph.nodes}
    paths = []
    for u, v, dummies in chains:
        su, sv = slots[u], slots[v]
        points = [(xs[su.column] + widths[su.column], su.y)]
        for d in dummies:
            sd = slots[d]
            points += [(xs[sd.column], sd.y), (xs[sd.column] + widths[sd.column], sd.y)]
        points.append((xs[sv.column], sv.y))
        data = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for i in range(1, len(points)):
            (x0, y0), (x1, y1) = points[i - 1], points[i]
            if i % 2 == 0:  # across a dummy slot: straight
                data.append(f"L{x1:.1f},{y1:.1f}")
            else:
                mid = (x1 - x0) / 2
                data.append(f"C{x0 + mid:.1f},{y0:.1f} {x1 - mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        paths.append((u, v, " ".join(data)))
    height = max(s.y + s.height / 2 for s in slots.values()) + MARGIN
    headers = []
    names = {"source": "sources", "raw": "raw payloads", "seed": "raw payloads", "fact": "facts",
             "reference": "references", "dimension": "dimensions", "mart": "marts"}
    previous = ""
    for c in range(columns):
        kinds = " · ".join(dict.fromkeys(names[by_id[n].kind] for n in order[c] if n in by_id))
        headers.append((xs[c], kinds if kinds != previous else ""))  # a layer spanning columns: named once
        previous = kinds
    return Layout(x - COL_GAP + MARGIN, height, xs, widths, boxes, paths, headers)


def lineage_svg(graph: Lineage) -> str:
    """The lineage as an inline <svg>: every node a link to its section; hovering a node highlights its
    edges (CSS :has, no script)."""
    lay = layout(graph)
    ids = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    out = [(f'<svg class="lineage" role="img" '
           f'aria-label="lineage: sources, raw payloads, facts, dimensions and marts" '
           f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" width="{lay.width:.0f}" height="{lay.height:.0f}">')]
    rules = [f"svg.lineage:has(.{ids[n.id]}:hover) .e-{ids[n.id]}{{stroke-opacity:1;stroke-width:2.6}}"
             for n in graph.nodes]
    out.append(f"<style>{''.join(rules)}</style>")
    for x, text in lay.headers:
        out.append(f'<text x="{x:.1f}" y="16" font-size="12" font-weight="700" fill="#57606a">{_esc(text)}</text>')
    for u, v, d in lay.paths:
        colour = COLOURS[graph.node(u).kind]
        out.append(f'<path class="edge e-{ids[u]} e-{ids[v]}" d="{d}" stroke="{colour}">'
                   f"<title>{_esc(graph.node(u).label)} → {_esc(graph.node(v).label)}</title></path>")
    for n in graph.nodes:
        x, y, w, h = lay.boxes[n.id]
        colour = COLOURS[n.kind]
        dash = ' stroke-dasharray="4 3"' if n.kind in ("raw", "seed") else ""
        body = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="5" stroke="{colour}"{dash}/>'
                f'<rect x="{x:.1f}" y="{y:.1f}" width="5" height="{h:.1f}" rx="2" fill="{colour}" stroke="none"/>'
                f'<text x="{x + PAD:.1f}" y="{y + 15:.1f}" font-size="12" font-weight="600" fill="#1f2328">'
                f"{_esc(n.label)}</text>"
                f'<text x="{x + PAD:.1f}" y="{y + 29:.1f}" font-size="10" fill="#57606a">{_esc(n.sublabel)}</text>'
                f"<title>{_esc(n.kind)}: {_esc(n.label)}{_esc(n.sublabel and ' (' + n.sublabel + ')')}</title>")
        if n.href:
            body = f'<a href="{_esc(n.href)}">{body}</a>'
        out.append(f'<g class="node {ids[n.id]}">{body}</g>')
    out.append("</svg>")
    return "".join(out)


def lineage_edges(graph: Lineage | None = None) -> dict[str, list[str]]:
    """Downstream id -> its upstream ids (e.g. for declaring the tables as assets elsewhere)."""
    graph = graph or lineage()
    ups: dict[str, list[str]] = defaultdict(list)
    for u, v in graph.edges:
        ups[v].append(u)
    return dict(ups)


# ============================================================================================ run history


def run_history(conn: duckdb.DuckDBPyConnection, runs: int = HISTORY_RUNS) -> list[dict]:
    """The etl_runs rows of the last `runs` runs (run ids sort by start time), oldest first, each with its
    duration in seconds."""
    cur = conn.execute(
        """SELECT run_id, source, table_name, status, rows_in, rows_loaded, rows_rejected, rows_written,
                  started_at, ended_at, message,
                  epoch(ended_at) - epoch(started_at) AS duration_s
           FROM etl_runs
           WHERE run_id IN (SELECT DISTINCT run_id FROM etl_runs ORDER BY run_id DESC LIMIT ?)
           ORDER BY run_id, source""", [runs])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * 0.999999:
            return step * power
    return 10 * power


def _short(value: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:g}{suffix}"
    return f"{value:g}"


def _run_label(run_id: str) -> str:
    """20261124T060000Z-abc123 -> 11-24 06:00 (other ids as they are, cut)."""
    if len(run_id) >= 15 and run_id[8] == "T":
        return f"{run_id[4:6]}-{run_id[6:8]} {run_id[9:11]}:{run_id[11:13]}"
    return run_id[:14]


def history_panel(source: str, rows: list[dict], run_ids: list[str]) -> str:
    """One source's runs as a small SVG chart: input rows per run (loaded, rejected stacked) above, duration
    below; an unchanged run is a grey tick, a failed one a red cross. Each bar says its numbers on hover."""
    w, h = 420.0, 212.0
    left, right = 52.0, 10.0
    rows_top, rows_h, dur_top, dur_h = 40.0, 78.0, 140.0, 40.0
    by_run = {r["run_id"]: r for r in rows}
    n = max(len(run_ids), 1)
    slot = (w - left - right) / n
    bar = max(min(slot * 0.7, 28.0), 2.0)
    ymax = _nice_max(max([float(r["rows_in"] or 0) for r in rows] + [1.0]))
    dmax = _nice_max(max([float(r["duration_s"] or 0) for r in rows] + [0.001]))
    last = by_run.get(run_ids[-1]) if run_ids else None
    status = last["status"] if last else "not in the last run"
    out = [(f'<svg role="img" class="history" viewBox="0 0 {w:.0f} {h:.0f}" '
           f'width="{w:.0f}" height="{h:.0f}" font-family="DejaVu Sans,system-ui,sans-serif">'),
           f'<title>run history of {_esc(source)}</title>',
           f'<text x="10" y="20" font-size="14" font-weight="700" fill="#1f2328">{_esc(source)}</text>',
           (f'<text x="{w - 10:.0f}" y="20" font-size="11" text-anchor="end" '
            f'fill="{STATUS_COLOURS.get(status, "#57606a")}">'
           f"last run: {_esc(status)}</text>")]
    for top, height, vmax, label, fmt in ((rows_top, rows_h, ymax, "rows in", _short),
                                         (dur_top, dur_h, dmax, "seconds", lambda v: f"{v:g}")):
        base = top + height
        out.append(f'<line x1="{left}" y1="{base}" x2="{w - right}" y2="{base}" stroke="#8c959f"/>'
                   f'<line x1="{left}" y1="{top}" x2="{w - right}" y2="{top}" stroke="#d0d7de" '
                   'stroke-dasharray="3 3"/>'
                   f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end" fill="#57606a">'
                   f"{fmt(vmax)}</text>"
                   f'<text x="{left - 4}" y="{base}" font-size="10" text-anchor="end" fill="#57606a">0</text>'
                   f'<text x="{left - 4}" y="{top + height / 2 + 4}" font-size="9" text-anchor="end" '
                   f'fill="#8c959f">{label}</text>')
    for i, run_id in enumerate(run_ids):
        cx = left + slot * (i + 0.5)
        r = by_run.get(run_id)
        if r is None:
            continue
        tip = (f"{run_id} · {r['status']} · rows in {_num(r['rows_in'])}, loaded {_num(r['rows_loaded'])}, "
               f"rejected {_num(r['rows_rejected'])}, written {_num(r['rows_written'])} · "
               f"{(r['duration_s'] or 0):.2f} s")
        parts = []
        loaded, rejected = float(r["rows_loaded"] or 0), float(r["rows_rejected"] or 0)
        base = rows_top + rows_h
        hl, hr = rows_h * loaded / ymax, rows_h * rejected / ymax
        if r["status"] == "unchanged":
            parts.append(f'<rect x="{cx - bar / 2:.1f}" y="{base - 3:.1f}" width="{bar:.1f}" height="3" '
                         'fill="#8c959f"/>')
        if hl:
            parts.append(f'<rect x="{cx - bar / 2:.1f}" y="{base - hl:.1f}" width="{bar:.1f}" height="{hl:.1f}" '
                         f'fill="{LOADED}"/>')
        if hr:
            parts.append(f'<rect x="{cx - bar / 2:.1f}" y="{base - hl - hr:.1f}" width="{bar:.1f}" '
                         f'height="{max(hr, 1.5):.1f}" fill="{REJECTED}"/>')
        if r["status"] == "failed":
            s = min(bar, 10.0) / 2
            parts.append(f'<path d="M{cx - s:.1f},{base - 2 * s - 2:.1f} l{2 * s:.1f},{2 * s:.1f} m0,{-2 * s:.1f} '
                         f'l{-2 * s:.1f},{2 * s:.1f}" stroke="{REJECTED}" stroke-width="2.2"/>')
        hd = dur_h * float(r["duration_s"] or 0) / dmax
        dbase = dur_top + dur_h
        parts.append(f'<rect x="{cx - bar / 2:.1f}" y="{dbase - hd:.1f}" width="{bar:.1f}" '
                     f'height="{max(hd, .8):.1f}" '
                     f'fill="{DURATION}"/>')
        # a transparent column over both plots carries the tooltip
        parts.append(f'<rect x="{cx - slot / 2:.1f}" y="{rows_top:.1f}" width="{slot:.1f}" '
                     f'height="{dbase - rows_top:.1f}" fill="transparent"/>')
        out.append(f"<g><title>{_esc(tip)}</title>{''.join(parts)}</g>")
    if run_ids:
        y = dur_top + dur_h + 14
        out.append(f'<text x="{left}" y="{y}" font-size="10" fill="#57606a">{_esc(_run_label(run_ids[0]))}</text>')
        if len(run_ids) > 1:
            out.append(f'<text x="{w - right}" y="{y}" font-size="10" text-anchor="end" fill="#57606a">'
                       f"{_esc(_run_label(run_ids[-1]))}</text>")
        out.append(f'<text x="{(left + w - right) / 2:.0f}" y="{y}" font-size="10" text-anchor="middle" '
                   f'fill="#8c959f">{len(run_ids)} run(s), oldest to newest</text>')
    out.append("</svg>")
    return "".join(out)


def history_section(history: list[dict], sources: Sequence[Source] = SOURCES) -> str:
    if not history:
        return "<p class=\"muted\">No run is recorded in etl_runs yet.</p>"
    run_ids = sorted({r["run_id"] for r in history})
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in history:
        by_source[r["source"]].append(r)
    names = [s.name for s in sources if s.name in by_source] + sorted(set(by_source) - {s.name for s in sources})
    legend = ('<p class="legend">'
              f'<span><i style="background:{LOADED}"></i>rows loaded</span>'
              f'<span><i style="background:{REJECTED}"></i>rows rejected (failed run: ×)</span>'
              '<span><i style="background:#8c959f"></i>unchanged (nothing new)</span>'
              f'<span><i style="background:{DURATION}"></i>duration (s)</span></p>')
    panels = "".join(history_panel(name, by_source[name], run_ids) for name in names)
    runs_rows = []
    for run_id in reversed(run_ids):
        rs = [r for r in history if r["run_id"] == run_id]
        starts = [r["started_at"] for r in rs if r["started_at"]]
        ends = [r["ended_at"] for r in rs if r["ended_at"]]
        span = (max(ends) - min(starts)).total_seconds() if starts and ends else None
        statuses = defaultdict(int)
        for r in rs:  # a source that loaded above its rejected-rows threshold failed its run (eujp.rejections)
            over = r["status"] == "success" and fails_run(r["status"], r["message"])
            statuses["failed the run: rejected rows" if over else r["status"]] += 1
        runs_rows.append(
            f"<tr><td><code>{_esc(run_id)}</code></td><td>{_esc(_ts(min(starts)) if starts else '')}</td>"
            f'<td class="num">{"" if span is None else f"{span:.1f} s"}</td><td>'
            + " ".join(f"{_badge(f'{n} {st}', STATUS_COLOURS.get(st))}" for st, n in sorted(statuses.items()))
            + f'</td><td class="num">{_num(sum(r["rows_in"] or 0 for r in rs))}</td>'
            f'<td class="num">{_num(sum(r["rows_rejected"] or 0 for r in rs))}</td>'
            f'<td class="num">{_num(sum(r["rows_written"] or 0 for r in rs))}</td></tr>')
    detail = "".join(
        f"<tr><td><code>{_esc(r['run_id'])}</code></td><td>{_esc(r['source'])}</td>"
        f"<td>{_badge(r['status'], STATUS_COLOURS.get(r['status']))}</td>"
        f'<td class="num">{_num(r["rows_in"])}</td><td class="num">{_num(r["rows_loaded"])}</td>'
        f'<td class="num">{_num(r["rows_rejected"])}</td><td class="num">{_num(r["rows_written"])}</td>'
        f'<td class="num">{(r["duration_s"] or 0):.2f} s</td><td>{_esc(r["message"])}</td></tr>'
        for r in sorted(history, key=lambda r: (r["run_id"], r["source"]), reverse=True))
    return (legend + f'<div class="panels">{panels}</div>'
            "<h3 style=\"margin-top:14px\">Runs</h3><table><thead><tr><th>run</th><th>started</th><th>duration</th>"
            "<th>sources</th><th>rows in</th><th>rows rejected</th><th>rows written</th></tr></thead><tbody>"
            + "".join(runs_rows) + "</tbody></table>"
            "<details><summary>Every source of every run (etl_runs)</summary><table><thead><tr><th>run</th>"
            "<th>source</th><th>status</th><th>rows in</th><th>loaded</th><th>rejected</th><th>written</th>"
            f"<th>duration</th><th>message</th></tr></thead><tbody>{detail}</tbody></table></details>")


# ========================================================================================= expectations


@dataclass
class SuiteResult:
    """A table's suite and the last result of each expectation, with where the result comes from."""

    table: str
    expectations: list[dict]  # the suite's entries (type, kwargs, severity, notes)
    outcomes: list[dict | None]  # per expectation: ExpectationOutcome.to_dict() (None: no result)
    origin: str  # validation | sql | none
    origin_text: str
    row_count: int | None = None
    audit: dict | None = None  # the audit's check of the staged table ({name, ok, detail}), if any

    @property
    def counts(self) -> dict[str, int]:
        done = [o for o in self.outcomes if o is not None]
        return {"met": sum(o["success"] for o in done), "failed": sum(not o["success"] for o in done),
                "not evaluated": len(self.outcomes) - len(done)}


def _matched(suite: list[dict], outcomes: list[dict]) -> list[dict | None]:
    """Outcomes in suite order (both are: eujp.validate sorts GX's results by position); None where an outcome
    does not match its expectation's type (a suite edited since)."""
    out: list[dict | None] = []
    for i, exp in enumerate(suite):
        o = outcomes[i] if i < len(outcomes) else None
        out.append(o if o is not None and o.get("expectation_type") == exp.get("type") else None)
    return out


FACT_NAMES = frozenset(t.name for t in FACT_TABLES)


def suite_sha256(table_name: str) -> str:
    """SHA-256 of a table's suite as loaded (a cached result is only valid for the suite it was evaluated by)."""
    return hashlib.sha256(json.dumps(load_suite(table_name), sort_keys=True).encode()).hexdigest()


def written_tables(conn: duckdb.DuckDBPyConnection, run_id: str | None) -> set[str]:
    """The fact tables run `run_id` loaded (etl_runs: status success); with no run, every table."""
    if run_id is None:
        return set(SUITE_TABLES)
    try:
        return {r[0] for r in conn.execute("SELECT DISTINCT table_name FROM etl_runs WHERE run_id = ? AND "
                                           "status = 'success'", [run_id]).fetchall()}
    except duckdb.Error:
        return set(SUITE_TABLES)


def _reusable(entry: Any, name: str, rows: int | None, written: set[str]) -> bool:
    """A cached SQL evaluation still answers for table `name`: the run did not write it, it has the same rows
    (a safety net: count(*) is free), and the suite is the one it was evaluated by. Only for fact tables,
    the ones a run can leave unwritten (etl_runs says which it wrote); the others are small and evaluated."""
    return (isinstance(entry, dict) and name in FACT_NAMES and name not in written and rows is not None
            and entry.get("row_count") == rows and entry.get("suite_sha256") == suite_sha256(name)
            and isinstance(entry.get("outcomes"), list))


def suite_results(conn: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any] | None = None,
                  tables: Iterable[str] = SUITE_TABLES, evaluate: bool = True,
                  cache: dict[str, Any] | None = None) -> dict[str, SuiteResult]:
    """Every suite's last result: this run's validation of the table's batch (manifest["validation"]) when
    there is one; else, with `evaluate`, the suite evaluated in DuckDB SQL on the warehouse's table
    (eujp.suite_sql, the audit's evaluator). The audit's own check of the staged table is attached when the
    manifest has one.

    `cache` (the previous published run's manifest["suite_results"], eujp.run.publish): a table this run did
    not write keeps the SQL evaluation cached for it (`_reusable`) instead of scanning it again; every SQL
    evaluation made is stored back in `cache` for the next run."""
    manifest = manifest or {}
    run_id = manifest.get("run_id")
    written = written_tables(conn, run_id) if cache is not None else set(SUITE_TABLES)
    cache = {} if cache is None else cache
    validation = manifest.get("validation") or {}
    audit_checks = {c.get("name"): c for c in (manifest.get("audit") or {}).get("checks", [])}
    results = {}
    for name in tables:
        suite = load_suite(name)["expectations"]
        audit = audit_checks.get(f"{name}.suite")
        report = validation.get(name)
        if report is not None:
            statuses = [s.get("status") for s in (manifest.get("sources") or {}).values()
                        if s.get("table") == name]
            kept = ("; the batch FAILED and was not loaded (the table keeps its previous rows)"
                    if statuses and all(st == "failed" for st in statuses) else "")
            results[name] = SuiteResult(
                name, suite, _matched(suite, report.get("expectations", [])), "validation",
                f"this run's validation ({run_id or 'run'}): Great Expectations on the batch of "
                f"{_num(report.get('row_count'))} rows the source delivered, before its load{kept}",
                report.get("row_count"), audit)
            continue
        if not evaluate:
            results[name] = SuiteResult(name, suite, [None] * len(suite), "none",
                                        "not validated this run, and not evaluated for the catalog", None, audit)
            continue
        rows = conn.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0] if name in FACT_NAMES else None
        entry = cache.get(name)
        if _reusable(entry, name, rows, written):
            results[name] = SuiteResult(
                name, suite, _matched(suite, entry["outcomes"]), "sql",
                f"not validated this run, and not written by it: evaluated in DuckDB SQL on the warehouse table "
                f"({_num(rows)} rows) by run {entry.get('evaluated_run') or '-'}, the last run that changed or first "
                "checked it (eujp.suite_sql, the audit's evaluator)", rows, audit)
            continue
        try:
            from eujp.suite_sql import evaluate_suite_sql

            evaluated = evaluate_suite_sql(conn, name, run_id=run_id)
        except Exception as exc:  # noqa: BLE001 - a suite the warehouse cannot answer: say so, show the rest
            results[name] = SuiteResult(name, suite, [None] * len(suite), "none",
                                        f"not validated this run; the SQL evaluation failed: "
                                        f"{type(exc).__name__}: {exc}", None, audit)
            continue
        outcomes = [o.to_dict() for o in evaluated.outcomes]
        cache[name] = {"suite_sha256": suite_sha256(name), "row_count": evaluated.row_count, "outcomes": outcomes,
                       "evaluated_run": run_id}
        results[name] = SuiteResult(
            name, suite, _matched(suite, outcomes), "sql",
            f"not validated this run: evaluated in DuckDB SQL on the warehouse table ({_num(evaluated.row_count)} "
            "rows) when this catalog was built, by the audit's evaluator (eujp.suite_sql)", evaluated.row_count,
            audit)
    return results


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    parts = []
    for k, v in kwargs.items():
        if k in ("column", "column_list", "column_A", "column_B"):
            continue
        if isinstance(v, list) and len(v) > 10:
            v = [*v[:10], f"… +{len(v) - 10} more"]
        # a string as written (a regex keeps its single backslashes), anything else as JSON
        text = f'"{v}"' if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        parts.append(f"{k}={text if len(text) <= 220 else text[:217] + '…'}")
    return "; ".join(parts)


def _expectation_columns(exp: Mapping[str, Any]) -> str:
    kw = exp.get("kwargs", {})
    if "column" in kw:
        return kw["column"]
    if "column_A" in kw:
        return f"{kw['column_A']} {'>=' if kw.get('or_equal') else '>'} {kw['column_B']}"
    if "column_list" in kw:
        return ", ".join(kw["column_list"])
    return "(table)"


def suite_html(result: SuiteResult) -> str:
    counts = result.counts
    severities = defaultdict(int)
    for e in result.expectations:
        severities[e.get("severity")] += 1
    head = (f"<p><b>{len(result.expectations)} expectations</b> ({severities['critical']} critical, "
            f"{severities['warning']} warning) in <code>expectations/{_esc(result.table)}.json</code>: "
            + " ".join(_badge(f"{n} {k}", STATUS_COLOURS[k if k != "failed" else "critical"])
                       for k, n in counts.items() if n) + "</p>"
            f'<p class="origin"><b>Result from</b> {_esc(result.origin_text)}.</p>')
    if result.audit is not None:
        a = result.audit
        head += (f'<p class="audit"><b>Audit</b> (the suite in SQL on the staged table, before promotion): '
                 f"{_badge('passed' if a.get('ok') else 'failed', '#1a7f37' if a.get('ok') else '#cf222e')} "
                 f"{_esc(a.get('detail'))}</p>")
    rows = []
    for i, (e, o) in enumerate(zip(result.expectations, result.outcomes, strict=True)):
        if o is None:
            res = _badge("not evaluated")
        elif o["success"]:
            res = _badge("met")
            if o.get("element_count") is not None:
                res += f"<small>{_num(o['element_count'])} rows checked</small>"
        else:
            res = _badge("failed", STATUS_COLOURS["critical" if e.get("severity") == "critical" else "warning"])
            if o.get("unexpected_count") is not None:
                pct = o.get("unexpected_percent")
                res += (f"<small>{_num(o['unexpected_count'])} unexpected"
                        + (f" ({pct:.2f}%)" if isinstance(pct, (int, float)) else "") + "</small>")
            res += f"<small>{_esc(o.get('message'))}</small>"
        rows.append(f"<tr><td class=\"num\">{i + 1}</td><td>{_esc(e.get('severity'))}</td>"
                    f"<td><code>{_esc(e.get('type'))}</code></td><td>{_esc(_expectation_columns(e))}</td>"
                    f"<td><small>{_esc(_kwargs_text(e.get('kwargs', {})))}</small></td>"
                    f"<td><small>{_esc(e.get('notes'))}</small></td><td class=\"result\">{res}</td></tr>")
    return (head + "<details open><summary>Expectations and results</summary><table>"
            "<thead><tr><th>#</th><th>severity</th><th>expectation</th><th>column(s)</th><th>parameters</th>"
            '<th>why</th><th class="result">last result</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></details>")


# ================================================================================================= SQL


def _sql_html(sql: str) -> str:
    """SQL in a <pre>, comment lines set apart."""
    lines = []
    for line in sql.rstrip().splitlines():
        stripped = line.lstrip()
        if stripped.startswith("--"):
            lines.append(f'<span class="c">{_esc(line)}</span>')
        elif "--" in line and "'" not in line:
            code, comment = line.split("--", 1)
            lines.append(f'{_esc(code)}<span class="c">--{_esc(comment)}</span>')
        else:
            lines.append(_esc(line))
    return '<pre class="sql"><code>' + "\n".join(lines) + "</code></pre>"


def model_sql_html(table: Table) -> str:
    if table.name == MART_CLAIMS.name:
        files = claim_files()
        parts = [(f"<p>Built as the <code>UNION ALL</code> of the {len(files)} claim queries in "
                 f"<code>eujp/marts/{CLAIMS_DIR.name}/</code>, each returning one row, plus the query's own text "
                 "(<code>query_sql</code>):</p>")]
        for p in files:
            parts.append(f"<details><summary><code>{_esc(CLAIMS_DIR.name)}/{_esc(p.name)}</code></summary>"
                         f"{_sql_html(p.read_text(encoding='utf-8'))}</details>")
        return "".join(parts)
    return (f"<details open><summary>SQL: <code>eujp/marts/{_esc(table.name)}.sql</code></summary>"
            f"{_sql_html(mart_sql(table))}</details>")


# ================================================================================================ pages


def _existing_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = current_schema() "
        "AND database_name = current_database()").fetchall()}


def _counts(conn: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> dict[str, int | None]:
    existing = _existing_tables(conn)
    return {t.name: (conn.execute(f"SELECT count(*) FROM {quote_ident(t.name)}").fetchone()[0]
                     if t.name in existing else None) for t in tables}


def _freshness_html(f: Freshness | None, source: Source) -> str:
    if f is None:
        return '<span class="muted">unknown</span>'
    age = "" if f.age_days is None else f" ({f.age_days:.1f} days ago)"
    return (f"{_badge(f.status)} last successful extraction {_esc(_ts(f.last_success_at)) or 'never'}{age}; "
            f"newest period held <b>{_esc(f.newest_period or 'none')}</b>; publishes every "
            f"{source.cadence_days} days (stale after that)"
            + (f"; last attempt {_esc(_ts(f.last_attempt_at))}: {_esc(f.last_status)}"
               if f.last_attempt_at else ""))


def _table_section(t: Table, *, rows: int | None, source: Source | None, fresh: Freshness | None,
                   suite: SuiteResult | None, upstream: list[str], downstream: list[str],
                   run_id: str | None, built: tuple | None = None) -> str:
    kind = layer(t)
    docs = t.docs
    key = set(t.natural_key)

    def links(names: list[str]) -> str:
        out = []
        for n in names:
            if n in TABLES:
                out.append(f'<a href="#{table_anchor(n)}"><code>{_esc(n)}</code></a>')
            elif n.startswith(("source:", "raw:")):
                name = n.split(":", 1)[1]
                out.append(f'<a href="#{source_anchor(name)}"><code>{_esc(name)}</code></a>')
            elif n == "seed":
                out.append(f"<code>{SEED}/*.csv</code>")
        return ", ".join(dict.fromkeys(out)) or '<span class="muted">none</span>'

    facts = [("Layer", _badge(kind, COLOURS[kind])),
             ("Grain (natural key)", ", ".join(f"<code>{_esc(c)}</code>" for c in t.natural_key)
              or '<span class="muted">none: every row kept</span>'),
             ("Rows", _num(rows) if rows is not None else '<span class="muted">table missing</span>')]
    if source is not None:
        facts += [("Source", (f'<a href="#{source_anchor(source.name)}"><code>{_esc(source.name)}</code></a>: '
                   f"{_esc(source.description)} ({_esc(source.wire_format)})")),
                  ("Raw payloads", f"<code>{_esc(raw_pattern(source))}</code>"),
                  ("Freshness", _freshness_html(fresh, source))]
    elif t.name in MODELS:
        # rebuilt when its definition or one of its inputs changed (eujp.marts.build): when and why, from
        # etl_model_state
        when = ("last " + (f"by run <code>{_esc(built[0])}</code> " if built[0] else "")
                + f"at {_esc(_ts(built[1]))}" + (f" ({_esc(built[2])})" if built[2] else "")
                if built else "not built yet")
        facts.append(("Built", (f"from <code>eujp/marts/{_esc(t.name)}{'.yml' if t is MART_CLAIMS else '.sql'}"
                                f"</code> when its definition or one of its inputs changes; {when}")))
    elif labelled := next((s for s in SOURCES if s.labels is not None and s.labels.table.name == t.name), None):
        how = (f'with the payloads of <a href="#{source_anchor(labelled.name)}"><code>{_esc(labelled.name)}</code>'
               f"</a> (upserted by <code>{_esc(', '.join(t.natural_key))}</code>)")
        facts.append(("Loaded", how))
    elif kind in ("reference", "dimension"):
        facts.append(("Loaded", f"whole, every run, from <code>{SEED}/</code> (versioned in git)"))
    else:
        facts.append(("Written", "by the load step of every run (ETL bookkeeping)"))
    if kind != "ETL":
        facts += [("Reads from", links(upstream)), ("Read by", links(downstream))]
    head = (f'<section class="table" id="{table_anchor(t.name)}"><header><h3><code>{_esc(t.name)}</code></h3>'
            f"{_badge(kind, COLOURS[kind])}<span class=\"muted\">{_num(rows)} rows</span></header>"
            f"<p>{_esc(t.description)}</p><dl class=\"facts\">"
            + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    cols = "".join(
        f"<tr><td><code>{_esc(c)}</code>{KEY_BADGE if c in key else ''}</td>"
        f"<td><code>{_esc(duck_type(d))}</code></td><td>{_esc(docs.get(c, ''))}</td></tr>"
        for c, d in t.all_columns.items())
    body = (f"<table class=\"columns\"><thead><tr><th style=\"width:22%\">column</th><th style=\"width:10%\">type"
            f"</th><th>description</th></tr></thead><tbody>{cols}</tbody></table>")
    if suite is not None:
        body += "<h4>Expectations</h4>" + suite_html(suite)
    if t.name in MODELS:
        body += "<h4>SQL</h4>" + model_sql_html(t)
    return head + body + "</section>"


def _sources_table(sources: Sequence[Source], fresh: Mapping[str, Freshness],
                   manifest_sources: Mapping[str, Any]) -> str:
    rows = []
    for s in sources:
        f = fresh.get(s.name)
        endpoint = f"<code>{_esc(s.endpoint_env)}</code>" if s.endpoint_env else '<span class="muted">none</span>'
        this_run = manifest_sources.get(s.name) or {}
        payloads = len(this_run.get("raw_keys") or [])
        run_cell = (_badge(this_run["status"], STATUS_COLOURS.get(this_run["status"])) +
                    (f" {payloads} payload(s) landed" if payloads else "")) if this_run.get("status") else ""
        rows.append(
            f'<tr id="{source_anchor(s.name)}"><td><code>{_esc(s.name)}</code><br><small class="muted">'
            f"{_esc(s.description)}</small></td><td>{_esc(s.domain)}</td>"
            f'<td><a href="#{table_anchor(s.table.name)}"><code>{_esc(s.table.name)}</code></a></td>'
            f"<td>{_esc(s.wire_format)}</td><td class=\"num\">{s.cadence_days} d</td>"
            f"<td>{endpoint}</td>"
            f"<td><code>raw/{_esc(s.name)}/{{date}}/{{sha256}}.{_esc(s.extension)}</code></td>"
            f"<td>{_badge(f.status) if f else ''}</td><td>{_esc(_ts(f.last_success_at) if f else '')}</td>"
            f"<td>{_esc(f.newest_period if f else '')}</td><td>{run_cell}</td></tr>")
    return ("<table><thead><tr><th>source</th><th>domain</th><th>loads</th><th>wire format</th><th>cadence</th>"
            "<th>live endpoint variable</th><th>landing zone</th><th>freshness</th><th>last success</th>"
            "<th>newest period</th><th>this run</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _partners_section(conn: duckdb.DuckDBPyConnection) -> str:
    """The partners the Comext facts hold (eujp.partners.loaded_partners): months, last load and whether the
    last live extraction still asks for each; "" without Comext facts."""
    partners = loaded_partners(conn)
    if not partners:
        return ""
    requested = requested_partners(conn)
    rows = "".join(
        f"<tr><td><code>{_esc(p['partner'])}</code></td><td>{_esc(p['partner_name'] or '')}</td>"
        f"<td>{p['months_loaded']}</td><td>{_esc(p['first_month'] or '')} to {_esc(p['last_month'] or '')}</td>"
        f"<td><code>{_esc(p['last_run_id'])}</code> {_esc(_ts(p['last_loaded_at']))}</td>"
        f"<td>{_esc(not_requested_note(p))}</td></tr>" for p in partners)
    asked = (f"the last live extraction asked for {_esc(', '.join(requested))}" if requested is not None
             else "no live extraction recorded which partners it asks for (bundled or snapshot data)")
    return ('<h2 id="partners">Partners in the Comext facts</h2>'
            "<p>Every partner code <code>fact_goods_trade_product</code> holds, with the months it has figures for "
            "and the run that last loaded it; " + asked + ". A partner dropped from EUJP_COMEXT_PARTNERS keeps "
            "what it loaded, and the marts still rank it, but no run refreshes it any more "
            "(docs/live-extraction.md says how to remove it). The run's manifest lists the same "
            "(<code>partners</code>).</p>"
            "<table><thead><tr><th>partner</th><th>name</th><th>months loaded</th><th>months</th>"
            "<th>last loaded by</th><th>requested</th></tr></thead><tbody>" + rows + "</tbody></table>")


def render_catalog(conn: duckdb.DuckDBPyConnection, *, manifest: Mapping[str, Any] | None = None,
                   run_id: str | None = None, generated_at: datetime | None = None, now: datetime | None = None,
                   history_runs: int = HISTORY_RUNS, evaluate_suites: bool = True,
                   report_link: str | None = None, suite_cache: dict[str, Any] | None = None) -> str:
    """The catalog's HTML (a string) of the warehouse `conn` is attached to. `manifest`: the run's manifest
    (eujp.run.run_manifest: its validation, audit and sources); `now`: the time freshness is judged at;
    `report_link`: a relative link to the run report beside the catalog; `suite_cache`: suite_results'
    cache of SQL evaluations (read and updated)."""
    manifest = manifest or {}
    run_id = run_id or manifest.get("run_id")
    generated_at = generated_at or datetime.now(UTC)
    counts = _counts(conn, ALL_TABLES)
    states = {s.name: read_source_state(conn, s.name) for s in SOURCES}
    fresh = {f.source: f for f in assess({k: v for k, v in states.items() if v}, now or generated_at)}
    suites = suite_results(conn, manifest, [t for t in SUITE_TABLES if counts.get(t) is not None],
                           evaluate=evaluate_suites, cache=suite_cache)
    history = run_history(conn, history_runs) if counts.get("etl_runs") is not None else []
    built = ({m: (r, at, why) for m, r, at, why in conn.execute(
        "SELECT model, built_run_id, built_at, reason FROM etl_model_state").fetchall()}
             if counts.get("etl_model_state") is not None else {})
    runs_shown = len({r["run_id"] for r in history})
    graph = lineage(counts)
    ups, downs = defaultdict(list), defaultdict(list)
    for u, v in graph.edges:
        ups[v].append(u)
        downs[u].append(v)
    source_of = {s.table.name: s for s in SOURCES}
    by_layer: dict[str, list[Table]] = defaultdict(list)
    for t in ALL_TABLES:
        by_layer[layer(t)].append(t)
    layers = [k for k in LAYERS if by_layer.get(k)] + [k for k in by_layer if k not in LAYERS]

    toc = ['<nav class="toc" aria-label="contents"><div><b>Sections</b>'
           '<a href="#lineage">Lineage</a><a href="#sources">Sources and freshness</a>'
           + ('<a href="#partners">Partners</a>' if counts.get("fact_goods_trade_product") else "") +
           '<a href="#history">Run history</a><a href="#tables">Tables</a>'
           + (f'<a href="{_esc(report_link)}">Run report</a>' if report_link else "") + "</div>"]
    for k in layers:
        toc.append(f"<div><b>{_esc(k)} tables</b>" + "".join(
            f'<a href="#{table_anchor(t.name)}"><code>{_esc(t.name)}</code> '
            f'<span class="muted">{_num(counts.get(t.name))}</span></a>' for t in by_layer[k]) + "</div>")
    toc.append("</nav>")
    stale = [f for f in fresh.values() if f.status != "ok"]
    total_rows = sum(v for v in counts.values() if v)
    sections = []
    for k in layers:
        sections.append(f'<h2 id="layer-{_esc(k)}">{_esc(k[0].upper() + k[1:])} tables</h2>')
        for t in by_layer[k]:
            sections.append(_table_section(
                t, rows=counts.get(t.name), source=source_of.get(t.name), fresh=fresh.get(source_of[t.name].name)
                if t.name in source_of else None, suite=suites.get(t.name),
                upstream=ups.get(t.name, []), downstream=downs.get(t.name, []), run_id=run_id,
                built=built.get(t.name)))
    legend = '<p class="legend">' + "".join(
        f'<span><i style="background:{COLOURS[k]}"></i>{label}</span>'
        for k, label in (("source", "source"), ("raw", "raw payload / seed file"), ("fact", "fact"),
                         ("reference", "reference"), ("dimension", "dimension"), ("mart", "mart"))) + "</p>"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>EU–Japan partnership warehouse: catalog</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>EU–Japan partnership warehouse: catalog</h1>",
        f'<p class="meta">run <code>{_esc(run_id or "-")}</code> · generated '
        f"{generated_at.strftime('%Y-%m-%d %H:%M UTC')} · {len(ALL_TABLES)} tables, {_num(total_rows)} rows · "
        f"{len(SOURCES)} sources, {len(stale)} stale or never extracted"
        + (f' · <a href="{_esc(report_link)}">run report</a>' if report_link else "") + "</p>",
        ("<p>Every table of the warehouse with its columns, grain, size and freshness, the expectations each "
        "suite checks with their last result, the SQL of every built table, where each table comes from, and "
        "how the last runs went. Everything here is read from the declarations in the code and from the "
        "warehouse this run published.</p>"),
        "".join(toc),
        '<h2 id="lineage">Lineage</h2>',
        legend,
        (f"<figure>{lineage_svg(graph)}<figcaption>Each source's payloads are landed untouched under "
        f"<code>{RAW_PATTERN}</code>, parsed, validated and loaded into its fact table; reference tables and "
        "<code>dim_country</code> are loaded from the CSV files in <code>data/reference/</code>; dimensions and "
        "marts are rebuilt from their SQL when a table they depend on (<code>depends_on</code> in their "
        "declaration) was written by the run. Click a "
        "node to open its table; hover it to highlight its edges.</figcaption></figure>"),
        '<h2 id="sources">Sources and freshness</h2>',
        ("<p>Freshness is judged against each source's cadence (<code>etl_source_state</code>, "
        "eujp.freshness): <b>stale</b> when the last successful extraction is older than the cadence, "
        "<b>never</b> when there has been none.</p>"),
        _sources_table(SOURCES, fresh, manifest.get("sources") or {}),
        _partners_section(conn),
        (f'<h2 id="history">Run history</h2><p>Rows and duration per source over the last {runs_shown} '
        "run(s) recorded in <code>etl_runs</code> (rows in = rows loaded + rows rejected; hover a bar for its "
        "numbers).</p>"),
        history_section(history),
        '<h2 id="tables">Tables</h2>',
        (f"<p>By layer.{KEY_BADGE} marks the natural key's columns (the grain). Fact tables carry "
        "<code>run_id</code> and <code>loaded_at</code>, added by the loader.</p>"),
        *sections,
        ('<p class="meta">Generated by eujp.catalog from the warehouse file and the declarations '
        f"(eujp/tables.py, eujp/sources/, {SQL_DIR.name}/*.yml, expectations/*.json).</p>"),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def write_catalog(warehouse_path: Path, out_path: Path, *, manifest: Mapping[str, Any] | None = None,
                  run_id: str | None = None, now: datetime | None = None, history_runs: int = HISTORY_RUNS,
                  evaluate_suites: bool = True, report_link: str | None = None,
                  suite_cache: dict[str, Any] | None = None) -> Path:
    """Write the catalog of the warehouse file (opened read-only) to `out_path`, atomically; returns the
    path. `suite_cache`: see suite_results."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config()) as conn:
        text = render_catalog(conn, manifest=manifest, run_id=run_id, now=now, history_runs=history_runs,
                              evaluate_suites=evaluate_suites, report_link=report_link, suite_cache=suite_cache)
    tmp = out_path.with_name(f".{out_path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_path)
    return out_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eujp.catalog",
                                     description="Write the browsable catalog of a warehouse file.")
    parser.add_argument("warehouse", type=Path, help="the warehouse (DuckDB file), opened read-only")
    parser.add_argument("--manifest", type=Path, help="a run's manifest.json (its validation, audit, sources)")
    parser.add_argument("--out", type=Path, default=Path(CATALOG_FILE), help="the HTML file to write")
    parser.add_argument("--runs", type=int, default=HISTORY_RUNS, help="runs shown in the run history")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="do not evaluate the suites of tables the manifest has no validation for")
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text(encoding="utf-8")) if args.manifest else None
    path = write_catalog(args.warehouse, args.out, manifest=manifest, history_runs=args.runs,
                         evaluate_suites=not args.no_evaluate)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
