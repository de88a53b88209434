"""The run report: one self-contained static HTML page (charts as inline SVG drawn by matplotlib, no script,
no stylesheet or font from elsewhere) from the marts of a warehouse: trade over time, the export-restriction
trend, the partnership timeline and the claims check.

    write_report(conn, out_path, run_id=...)   reads only the warehouse; published as runs/{run_id}/report.html

What a person reads, never every row of a mart: products and chapters are the top ones of the latest year
(TOP_PRODUCTS, TOP_CHAPTERS) with totals by reporter, every other table at most MAX_TABLE_ROWS rows, each with
a link to the table's published Parquet file for the full detail (`parquet_href`; a large mart published
by partition: a link per file, `ParquetLinks`). The page's size and the
time to write it therefore stay flat as the marts grow (tests/integration/test_report_scale.py).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import duckdb

from eujp import reconcile
from eujp.config import duckdb_config
from eujp.partners import loaded_partners, not_requested_note
from eujp.rows import failed_source_sql
from eujp.sql import quote_ident

log = logging.getLogger("eujp")

TOP_PRODUCTS = 15  # per flow, latest year, headline reporter
TOP_CHAPTERS = 10  # per flow, latest year, headline reporter
TOP_PARTNERS = 10  # per flow, latest year, headline reporter, where partners are loaded to compare (and Japan)
MAX_TABLE_ROWS = 200  # any other table of the page; the rest is in the published Parquet
# Where a table's full detail is, relative to the report published in runs/{run_id}/ (eujp.publish)
PARQUET_HREF = "parquet/{table}.parquet"

REPORTER_COLOURS = {"EU15": "#8c564b", "EU27_2007": "#ff7f0e", "EU28": "#1f77b4", "EU27_2020": "#2ca02c"}
VERDICT_COLOURS = {"supported": "#1a7f37", "contradicted": "#cf222e", "not enough data": "#9a6700"}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1f2328;
background:#fff}main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:1.6em;margin:0 0 4px}
h2{font-size:1.25em;margin-top:40px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
p.meta{color:#57606a;margin:0 0 16px}figure{margin:12px 0}figure svg{width:100%;height:auto}
figcaption{color:#57606a;font-size:.9em}table{border-collapse:collapse;width:100%;font-size:.85em;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 6px;vertical-align:top;text-align:left}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}.verdict{display:inline-block;color:#fff;
border-radius:10px;padding:1px 8px;font-weight:600;white-space:nowrap}pre{white-space:pre-wrap;font-size:.8em;
background:#f6f8fa;padding:8px;max-height:360px;overflow:auto}.note{background:#fff8c5;border:1px solid #d4a72c;
padding:8px;border-radius:6px}.failed{background:#ffebe9;border:1px solid #cf222e;padding:4px 12px;
border-radius:6px;margin:8px 0}
"""


def _esc(value) -> str:
    return "" if value is None else html.escape(str(value))


def _rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = conn.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _svg(fig) -> str:
    """The figure as an inline <svg> element (text as paths: no font needed by the viewer)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE
    return re.sub(r"<svg ", '<svg role="img" ', svg, count=1)


CHART_RC = {"svg.fonttype": "path", "svg.hashsalt": "eujp-report", "font.size": 10}  # reproducible SVGs
CHART_CACHE_FOLDER = "report-charts"  # in the warehouse's files folder (eujp.run.run_report)


class ChartCache:
    """The report's charts as drawn, in `folder`, by a digest of what each is drawn from (its name, its rows,
    this module's code and matplotlib's version): a run whose chart inputs did not change reads the SVG the
    last report drew instead of drawing it again (the four charts and matplotlib's import: ~1.5 s of a
    report drawn beside the lake commit, on a day with one new Comext month). The SVGs are reproducible
    (CHART_RC), so a chart read is the chart that would be drawn. `prune` keeps the files this report used.
    `folder` None: every chart is drawn."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.used: set[Path] = set()
        self.drawn: list[str] = []  # the charts drawn (not read)

    def chart(self, name: str, draw, rows: list[dict]) -> str:
        if self.folder is None:
            return self._draw(name, draw, rows)
        key = hashlib.sha256(json.dumps([name, _code_version(), rows], default=str, sort_keys=True).encode())
        path = self.folder / f"{name}-{key.hexdigest()[:32]}.svg"
        self.used.add(path)
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            pass
        svg = self._draw(name, draw, rows)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_text(svg, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:  # a cache that cannot be written costs a drawing next time, nothing else
            log.warning("report chart %s not kept in %s: %s", name, self.folder, exc)
        return svg

    def _draw(self, name: str, draw, rows: list[dict]) -> str:
        from matplotlib import rc_context

        self.drawn.append(name)
        with rc_context(CHART_RC):
            return draw(rows)

    def prune(self) -> None:
        """Remove the kept charts this report did not use (a chart whose inputs changed)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for old in self.folder.glob("*.svg"):
            if old not in self.used:
                old.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def _code_version() -> str:
    from importlib.metadata import version

    return f"{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()} matplotlib {version('matplotlib')}"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _runs(points: list[tuple[int, float]]) -> list[list[tuple[int, float]]]:
    """Split (year, value) points into runs of consecutive years: a line never bridges a gap."""
    runs: list[list[tuple[int, float]]] = []
    for year, value in sorted(points):
        if runs and year == runs[-1][-1][0] + 1:
            runs[-1].append((year, value))
        else:
            runs.append([(year, value)])
    return runs


def trade_chart(rows: list[dict]) -> str:
    from matplotlib.ticker import MaxNLocator

    fig = _figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=False)
    for ax, trade_type in zip(axes, ("goods", "services"), strict=True):
        data = [r for r in rows if r["trade_type"] == trade_type]
        for reporter, colour in REPORTER_COLOURS.items():
            for flow, style, marker in (("exports_mio_eur", "-", "o"), ("imports_mio_eur", "--", "s")):
                pts = [(r["period_year"], r[flow] / 1000) for r in data
                       if r["reporter"] == reporter and r[flow] is not None]
                for run in _runs(pts):
                    xs, ys = zip(*run, strict=True)
                    ax.plot(xs, ys, linestyle=style, marker=marker, color=colour, markersize=5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"EU trade in {trade_type} with Japan")
        ax.set_ylabel("€ billion")
        ax.grid(alpha=0.3)
        if not data:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", label=r) for r, c in REPORTER_COLOURS.items()
               if any(x["reporter"] == r for x in rows)]
    handles += [Line2D([], [], color="#444", linestyle="-", marker="o", label="exports"),
                Line2D([], [], color="#444", linestyle="--", marker="s", label="imports")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    return _svg(fig)


def balance_chart(rows: list[dict]) -> str:
    fig = _figure(11, 3.2)
    ax = fig.subplots()
    data = [r for r in rows if r["trade_type"] in ("goods", "services") and r["balance_mio_eur"] is not None]
    offsets = {"goods": -0.2, "services": 0.2}
    for r in data:
        colour = REPORTER_COLOURS.get(r["reporter"], "#777")
        ax.bar(r["period_year"] + offsets[r["trade_type"]], r["balance_mio_eur"] / 1000, width=0.4, color=colour,
               hatch="" if r["trade_type"] == "goods" else "//", edgecolor="white")
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_title("EU trade balance with Japan (published): goods plain, services hatched; colour = EU aggregate")
    ax.set_ylabel("€ billion")
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def restrictions_chart(rows: list[dict]) -> str:
    fig = _figure(11, 4.2)
    ax = fig.subplots()
    ax.plot([2009], [1], marker="o", color="#444", markersize=7)
    ax.annotate("2009 = 1", (2009, 1), textcoords="offset points", xytext=(6, -12), fontsize=9)
    styles = {
        "OECD publication": {"marker": "o", "color": "#1f77b4", "fill": True},
        "secondary source": {"marker": "o", "color": "#1f77b4", "fill": False},
        "unverified claim": {"marker": "X", "color": "#cf222e", "fill": True},
        "counted in the warehouse": {"marker": "D", "color": "#2ca02c", "fill": True},
    }
    shown: set[str] = set()
    plotted = [r for r in rows if r["index_2009_eq_1"] is not None]
    computed_without_index = [r for r in rows if r["index_2009_eq_1"] is None and r["basis"] == "computed"]
    same_point: dict[tuple, int] = {}
    for r in plotted:
        key = (r["index_year"], r["index_2009_eq_1"])
        k = same_point.get(key, 0)
        same_point[key] = k + 1
        st = styles[r["verification"]]
        x, y = r["index_year"] + 0.25 * k, r["index_2009_eq_1"]  # statements on one point side by side
        ax.plot([2009, x], [1, y], color=st["color"], alpha=0.35, linestyle=":" if r["country_scope"] == "CHN"
                else "-")
        label = f"{r['verification']}" if r["verification"] not in shown else None
        shown.add(r["verification"])
        ax.plot([x], [y], marker=st["marker"], markersize=10, color=st["color"], linestyle="none", label=label,
                markerfacecolor=st["color"] if st["fill"] else "white")
        text = f"{r['country_scope']} {r['index_year']}: {r['index_as_published'] or round(y, 2)}"
        if r["index_qualifier"] in (">", ">="):
            ax.annotate("", xy=(x, y + 1.2), xytext=(x, y), arrowprops={"arrowstyle": "->", "color": st["color"]})
        if r["verification"] == "unverified claim":
            text += " (op-ed claim, not verified)"
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(8, -16 - 13 * k), fontsize=9,
                    color=st["color"])
    ax.set_xlim(2008, 2026)
    ax.set_ylim(0, max([10] + [r["index_2009_eq_1"] + 1.5 for r in rows if r["index_2009_eq_1"]]))
    ax.set_xlabel("year")
    ax.set_ylabel("export restrictions, index 2009 = 1")
    ax.set_title("Export restrictions on (critical) raw materials indexed to 2009: world and China")
    ax.grid(alpha=0.3)
    if computed_without_index:
        ax.text(0.01, 0.97, "warehouse counts (no 2009 data, so no computed index): " + "; ".join(
            f"{r['country_scope']} {r['index_year']}: {r['measures_in_year']} measures, "
            f"{r['countries_covered']} countries" for r in computed_without_index),
            transform=ax.transAxes, va="top", fontsize=8, color="#2ca02c")
    if shown:
        ax.legend(loc="lower right", fontsize=9)
    return _svg(fig)


def timeline_chart(rows: list[dict]) -> str:
    fig = _figure(11, 4.2)
    ax = fig.subplots()
    types = sorted({r["event_type"] for r in rows})
    years = sorted({r["period_year"] for r in rows})
    cmap = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]
    bottom = {y: 0 for y in years}
    for i, t in enumerate(types):
        counts = {r["period_year"]: r["events"] for r in rows if r["event_type"] == t}
        heights = [counts.get(y, 0) for y in years]
        ax.bar(years, heights, bottom=[bottom[y] for y in years], label=t, color=cmap[i % len(cmap)],
               hatch="//" if t == "export_control" else "", edgecolor="white")
        for y, h in zip(years, heights, strict=True):
            bottom[y] += h
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max([1, *bottom.values()]) * 1.35)  # headroom for the legend
    ax.set_title("EU–Japan security and defence events by year and type (export controls hatched: context)")
    ax.set_ylabel("events")
    ax.grid(axis="y", alpha=0.3)
    if rows:
        ax.legend(ncol=4, fontsize=9, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center")
    return _svg(fig)


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return _esc(value)


def _rounding_unit(value: float) -> int:
    """The unit a published figure in €m was rounded to, as far as its digits tell: the largest of 1, 10, 100
    and 1000 (a figure in € billions without a decimal) that divides it."""
    return next((unit for unit in (1000, 100, 10) if value % unit == 0), 1)


def balances_off(rows: list[dict]) -> list[dict]:
    """The rows of mart_trade_annual whose published balance differs from exports − imports by more than the
    rounding of the three figures (half the unit each was rounded to: a figure of 42,000 may be 41,500 to
    42,500): a source that contradicted itself, or flows and balance of different releases."""
    off = []
    for row in rows:
        exports, imports, balance = row["exports_mio_eur"], row["imports_mio_eur"], row["balance_mio_eur"]
        if None in (exports, imports, balance):
            continue
        slack = sum(_rounding_unit(v) for v in (exports, imports, balance)) / 2
        if abs(balance - (exports - imports)) > slack:
            off.append(row)
    return off


def _balance_note(rows: list[dict]) -> str:
    """A note naming the rows whose published balance is not exports − imports (`balances_off`), "" if none."""
    off = balances_off(rows)
    if not off:
        return ""
    named = "; ".join(f"{r['period_year']} {_esc(r['reporter'])} {_esc(r['trade_type'])}: {_fmt(r['balance_mio_eur'])} "
                      f"published, exports − imports {_fmt(r['exports_mio_eur'] - r['imports_mio_eur'])}" for r in off)
    return (f'<p class="note"><b>Balance is not exports − imports:</b> {named}. The difference is more than the '
            "figures' rounding: a source that contradicted itself, or flows and balance from different releases. "
            "The table shows the published balance; <code>mart_trade_annual.balance_computed_mio_eur</code> holds "
            "exports − imports.</p>")


def _table(rows: list[dict], columns: list[tuple[str, str]], numeric: set[str] = frozenset()) -> str:
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_fmt(r[c])}</td>' if c in numeric else f"<td>{_fmt(r[c])}</td>"
                         for c, _ in columns) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _claims_table(rows: list[dict]) -> str:
    out = [("<table><thead><tr><th>#</th><th>claim</th><th>warehouse</th><th>period / scope</th><th>verdict</th>"
           "</tr></thead><tbody>")]
    for r in rows:
        colour = VERDICT_COLOURS.get(r["verdict"], "#57606a")
        out.append(
            f"<tr><td>{r['claim_number']}</td><td>{_esc(r['claim_text'])}<br><small>({_esc(r['wording'])})"
            f"</small></td><td>{_esc(r['warehouse_figure'])}</td><td>{_esc(r['period_used'])}<br>"
            f"<small>{_esc(r['scope_used'])}</small></td><td><span class=\"verdict\" style=\"background:{colour}\">"
            f"{_esc(r['verdict'])}</span></td></tr>"
            f"<tr><td></td><td colspan=\"4\">{_esc(r['verdict_detail'])}<details><summary>query "
            f"({_esc(r['evidence_tables'])})</summary><pre>{_esc(r['query_sql'])}</pre></details></td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@dataclass(frozen=True)
class ParquetLinks:
    """Where a table's published Parquet is: `href`, a template ("{table}" replaced by the table's name) of its
    file; the tables of `partitioned` ({table: column}, eujp.publish.PartitionedParquet) are a file per value of
    the column, in the folder of that name (`href` without ".parquet"; eujp.publish.part_file)."""

    href: str = PARQUET_HREF
    partitioned: dict[str, str] = field(default_factory=dict)

    def detail(self, conn: duckdb.DuckDBPyConnection, table: str, shown: int, total: int, *,
               summed: bool = False) -> str:
        """The line under a table: how many of its rows the page shows (`summed`: the page shows sums of
        them), and where all of them are."""
        from eujp.publish import part_file

        href = self.href.format(table=table)
        if summed:
            head = f"<p class=\"meta\">summed from the {total:,} rows of <code>{_esc(table)}</code>; the full table: "
        else:
            what = f"all {total:,} rows" if shown >= total else f"{shown:,} of {total:,} rows"
            head = f"<p class=\"meta\">{what} of <code>{_esc(table)}</code> shown; the full table: "
        column = self.partitioned.get(table)
        if column is None:
            return head + f"<a href=\"{_esc(href)}\">{_esc(table)}.parquet</a> (published with this run).</p>"
        values = [r[0] for r in conn.execute(f"SELECT DISTINCT CAST({quote_ident(column)} AS VARCHAR) AS v FROM "
                                             f"{quote_ident(table)} ORDER BY v NULLS LAST").fetchall()]
        folder = href.removesuffix(".parquet")
        files = " · ".join(f"<a href=\"{_esc(folder)}/{_esc(part_file(column, v))}\">{_esc(v or 'null')}</a>"
                           for v in values)
        return head + (f"a Parquet file per {_esc(column)} in <code>{_esc(table)}/</code> (published with this "
                       f"run): {files}.</p>" if values else "no file (no rows).</p>")


def _capped(conn: duckdb.DuckDBPyConnection, sql: str, limit: int = MAX_TABLE_ROWS) -> list[dict]:
    return _rows(conn, f"SELECT * FROM (\n{sql}\n) LIMIT {int(limit)}")


def products_section(conn: duckdb.DuckDBPyConnection, parquet_href: str = PARQUET_HREF,
                     partitioned: dict[str, str] | None = None) -> str:
    """Comext products, bounded whatever the number of products: the latest year's totals by reporter and
    flow, and for the headline reporter (EU27_2020 when loaded, else the reporter with the most trade) the top
    TOP_PRODUCTS CN8 products and top TOP_CHAPTERS HS chapters per flow, labelled from dim_product; the full
    marts are one click away in their published Parquet files (`ParquetLinks`)."""
    links = ParquetLinks(parquet_href, partitioned or {})
    total = _count(conn, "mart_product_trade")
    if not total:
        return "<p>No Comext product figures are loaded.</p>" + links.detail(conn, "mart_product_trade", 0, 0)
    year = conn.execute("SELECT max(period_year) FROM mart_product_trade").fetchone()[0]
    headline = conn.execute(
        "SELECT reporter FROM mart_product_trade WHERE period_year = ? GROUP BY reporter "
        "ORDER BY (reporter = 'EU27_2020') DESC, sum(value_eur) DESC NULLS LAST, reporter LIMIT 1", [year]).fetchone()[0]
    totals = _capped(conn, f"""
        SELECT reporter,
               sum(value_eur) FILTER (WHERE flow = 'export') AS exports_eur,
               sum(value_eur) FILTER (WHERE flow = 'import') AS imports_eur,
               count(DISTINCT product_cn8) AS products,
               CASE WHEN max(months_covered) >= 12 THEN 'all 12'
                    ELSE min(first_month) || ' to ' || max(last_month) || ' only' END AS months_loaded
        FROM mart_product_trade WHERE period_year = {int(year)}
        GROUP BY reporter ORDER BY (reporter = 'EU27_2020') DESC, coalesce(exports_eur, 0) + coalesce(imports_eur, 0)
        DESC, reporter""", limit=60)
    top = _rows_params(conn, """
        SELECT p.flow, p.rank, p.product_cn8, d.product_label, p.value_eur, p.share_pct, p.is_critical_raw_material,
               CASE WHEN p.loaded_partners_ranked IS NOT NULL
                    THEN p.japan_rank_among_loaded_partners || ' of ' || p.loaded_partners_ranked
                         || CASE WHEN p.loaded_partners_fewer_months > 0
                                 THEN ' (' || p.loaded_partners_fewer_months || ' on fewer months)' ELSE '' END
               END AS japan_among
        FROM (SELECT flow, product_cn8, value_eur, is_critical_raw_material, japan_rank_among_loaded_partners,
                     loaded_partners_ranked, loaded_partners_fewer_months,
                     row_number() OVER (PARTITION BY flow ORDER BY value_eur DESC NULLS LAST, product_cn8) AS rank,
                     100 * value_eur / sum(value_eur) OVER (PARTITION BY flow) AS share_pct
              FROM mart_product_trade WHERE period_year = ? AND reporter = ?) AS p
        LEFT JOIN dim_product AS d ON d.product_level = 'CN8' AND d.product_code = p.product_cn8
        WHERE p.rank <= ? ORDER BY p.flow, p.rank""", [year, headline, TOP_PRODUCTS])
    chapters = _rows_params(conn, """
        SELECT c.flow, c.rank, c.hs2, c.products, c.value_eur, c.share_pct,
               CASE WHEN l.partners_ranked > 1
                    THEN l.rank_among_loaded_partners || ' of ' || l.partners_ranked
                         || CASE WHEN s.fewer > 0 THEN ' (' || s.fewer || ' on fewer months)' ELSE '' END
               END AS japan_among
        FROM (SELECT reporter, flow, period_year, hs2, products, value_eur,
                     row_number() OVER (PARTITION BY flow ORDER BY value_eur DESC NULLS LAST, hs2) AS rank,
                     100 * value_eur / sum(value_eur) OVER (PARTITION BY flow) AS share_pct
              FROM mart_chapter_trade WHERE period_year = ? AND reporter = ?) AS c
        LEFT JOIN mart_partner_chapter_trade AS l
          ON l.reporter = c.reporter AND l.flow = c.flow AND l.period_year = c.period_year AND l.hs2 = c.hs2
         AND l.partner = 'JP'
        LEFT JOIN (SELECT reporter, flow, period_year, hs2, count(*) AS fewer FROM mart_partner_chapter_trade
                   WHERE partner_months < months_compared GROUP BY ALL) AS s
          ON s.reporter = c.reporter AND s.flow = c.flow AND s.period_year = c.period_year AND s.hs2 = c.hs2
        WHERE c.rank <= ? ORDER BY c.flow, c.rank""", [year, headline, TOP_CHAPTERS])
    partners = partners_compared(conn, year, headline)
    first, last, months = conn.execute(
        "SELECT min(first_month), max(last_month), max(months_covered) FROM mart_product_trade "
        "WHERE period_year = ? AND reporter = ?", [year, headline]).fetchone()
    # the latest year is usually still being published: its sums are over the months loaded, not a year
    partial = (f"; a partial year: {_esc(headline)}'s products cover {first} to {last} ({months} month(s) at "
               "most), and the values below are sums over those months" if months < 12 else "")
    shown = f"{year}, {first} to {last}" if months < 12 else f"{year}"
    return "\n".join([
        (f"<p>Year {year}, the latest loaded{partial}. Totals by reporter (EU aggregates and member states are "
         "separate rows, never added up), then the largest products and HS chapters of "
         f"<b>{_esc(headline)}</b> by flow. Value in €; share = of the reporter's loaded products in that "
         "flow.</p>"),
        _table(totals, [("reporter", "reporter"), ("exports_eur", "exports €"), ("imports_eur", "imports €"),
                        ("products", "CN8 products"), ("months_loaded", "months loaded")],
               numeric={"exports_eur", "imports_eur"}),
        f"<h4>Top {TOP_PRODUCTS} products per flow ({_esc(headline)}, {shown})</h4>",
        _table(top, [("flow", "flow"), ("rank", "#"), ("product_cn8", "CN8"), ("product_label", "product"),
                     ("value_eur", "value €"), ("share_pct", "share %"), ("is_critical_raw_material", "CRM")]
               # Japan's rank among the partner countries loaded, where others are (EUJP_COMEXT_PARTNERS), and
               # how many of them have figures for fewer of Japan's months (their sums cover only those)
               + ([("japan_among", "Japan among the partners loaded")] if any(r["japan_among"] for r in top)
                  else []),
               numeric={"value_eur", "share_pct"}),
        links.detail(conn, "mart_product_trade", len(top), total),
        f"<h4>Top {TOP_CHAPTERS} HS chapters per flow ({_esc(headline)}, {shown})</h4>",
        _table(chapters, [("flow", "flow"), ("rank", "#"), ("hs2", "HS2 chapter"), ("products", "products"),
                          ("value_eur", "value €"), ("share_pct", "share %")]
               + ([("japan_among", "Japan among the partners loaded")] if any(r["japan_among"] for r in chapters)
                  else []),
               numeric={"value_eur", "share_pct"}),
        links.detail(conn, "mart_chapter_trade", len(chapters), _count(conn, "mart_chapter_trade")),
        *(_partners_table(conn, partners, links, year, headline) if partners else []),
    ])


def partners_compared(conn: duckdb.DuckDBPyConnection, year: int, reporter: str) -> list[dict]:
    """The reporter's trade in `year` with each partner country loaded (mart_partner_chapter_trade summed over
    its chapters: Japan's months), the TOP_PARTNERS largest per flow and Japan, each with the months of Japan's
    it has figures for (`partner_months`, the most over its chapters); [] when Japan is the only partner loaded
    (the default)."""
    return _rows_params(conn, """
        SELECT flow, rank, partner, partner_name, months_compared, partner_months, value_eur, pct_of_japan
        FROM (SELECT flow, partner, any_value(partner_name) AS partner_name,
                     any_value(months_compared) AS months_compared, max(partner_months) AS partner_months,
                     sum(value_eur) AS value_eur,
                     row_number() OVER (PARTITION BY flow ORDER BY sum(value_eur) DESC NULLS LAST, partner) AS rank,
                     100 * sum(value_eur) / nullif(sum(sum(value_eur) FILTER (WHERE partner = 'JP'))
                                                   OVER (PARTITION BY flow), 0) AS pct_of_japan,
                     count(*) OVER (PARTITION BY flow) AS partners
              FROM mart_partner_chapter_trade WHERE period_year = ? AND reporter = ?
              GROUP BY flow, partner)
        WHERE partners > 1 AND (rank <= ? OR partner = 'JP') ORDER BY flow, rank""",
        [year, reporter, TOP_PARTNERS])


def _partners_table(conn: duckdb.DuckDBPyConnection, partners: list[dict], links: ParquetLinks, year: int,
                    reporter: str) -> list[str]:
    """The partners compared, each with its months against Japan's (a partner loaded for fewer is flagged: its
    value covers only those) and, where a live extraction recorded what it asks for, whether it still asks for
    the partner (eujp.partners: one dropped from EUJP_COMEXT_PARTNERS keeps its rows, no longer refreshed)."""
    months = sorted({r["months_compared"] for r in partners})
    loaded = {r["partner"]: r for r in loaded_partners(conn)}
    scoped = any(r["requested"] is not None for r in loaded.values())
    rows = []
    for r in partners:
        partial = r["partner_months"] < r["months_compared"]
        row = dict(r, months=f"{r['partner_months']} of {r['months_compared']}" + (" (partial)" if partial else ""))
        if scoped and r["partner"] in loaded:
            row["requested"] = not_requested_note(loaded[r["partner"]])
        rows.append(row)
    short = sorted({r["partner"] for r in rows if r["partner_months"] < r["months_compared"]})
    dropped = sorted({r["partner"] for r in rows if loaded.get(r["partner"], {}).get("requested") is False})
    staged = {r["partner"]: loaded[r["partner"]]["history_fetched_from"] for r in rows
              if loaded.get(r["partner"], {}).get("history_fetched_from")}
    notes = []
    if staged:
        names = ", ".join(f"{p} (from {m})" for p, m in sorted(staged.items()))
        notes.append(f"<b>History still arriving:</b> {_esc(names)}: the partner{'s were' if len(staged) > 1 else ' was'} "
                     "added with the history fetched in stages (EUJP_COMEXT_HISTORY_MONTHS): the months before "
                     "the one named are fetched a stage a run, so until then the figures before it are missing, "
                     "not zero.")
    if short:
        notes.append(f"<b>Partial:</b> {_esc(', '.join(short))} ha{'s' if len(short) == 1 else 've'} figures for "
                     "fewer of Japan's months (months column): the value covers only those, so it compares low "
                     "against Japan, and Japan's rank above it is not a like-for-like one.")
    if dropped:
        notes.append(f"<b>No longer requested:</b> {_esc(', '.join(dropped))} "
                     f"{'is' if len(dropped) == 1 else 'are'} not in the partners the last live extraction asked "
                     "for (EUJP_COMEXT_PARTNERS): what was loaded for "
                     f"{'it' if len(dropped) == 1 else 'them'} stays in the warehouse and is still ranked here, "
                     "but is no longer refreshed (docs/live-extraction.md says how to remove it).")
    scope = ("; requested = whether the last live extraction still asks for the partner (EUJP_COMEXT_PARTNERS)"
             if scoped else "; no live extraction recorded which partners it asks for (bundled or snapshot data)")
    return [
        (f"<h4>Partners compared ({_esc(reporter)}, {year}, over Japan's "
         f"{'/'.join(map(str, months))} month(s) loaded)</h4>"),
        ("<p>The partner countries the Comext facts hold, loaded by this run or earlier ones (a partner dropped "
         "from EUJP_COMEXT_PARTNERS keeps what it loaded), EU members and Comext pseudo-partners left out: the "
         "largest per flow, and Japan. Value in €; % of Japan = the partner's value / Japan's × 100; months = "
         f"the months of Japan's the partner has figures for{scope}.</p>"),
        *(f'<p class="note">{n}</p>' for n in notes),
        _table(rows, [("flow", "flow"), ("rank", "#"), ("partner", "partner"), ("partner_name", "name"),
                      ("months", "months of Japan's"), ("value_eur", "value €"), ("pct_of_japan", "% of Japan")]
               + ([("requested", "requested")] if scoped else []),
               numeric={"value_eur", "pct_of_japan"}),
        links.detail(conn, "mart_partner_chapter_trade", len(partners), _count(conn, "mart_partner_chapter_trade"),
                     summed=True),
    ]


def _rows_params(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cur = conn.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _failed_banner(conn: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    """A line saying that the run failed and why, from its etl_runs rows (a failed source, or one that loaded
    above its rejected-rows threshold: eujp.rows.failed_source_sql); "" for a run that did not fail. A failed
    run's other sources are published all the same, so its report would otherwise read like any other."""
    if not run_id:
        return ""
    failed = conn.execute(f"SELECT source, message FROM etl_runs WHERE run_id = ? AND {failed_source_sql()} "
                          "ORDER BY source", [run_id]).fetchall()
    if not failed:
        return ""
    items = "".join(f"<li><b>{_esc(source)}</b>: {_esc(message or 'failed')}</li>" for source, message in failed)
    return (f'<div class="failed"><p><b>This run failed</b> ({len(failed)} source(s)); the other sources were '
            f"loaded and are shown below as usual:</p><ul>{items}</ul></div>")


def render_report(conn: duckdb.DuckDBPyConnection, *, run_id: str | None = None,
                  generated_at: datetime | None = None, parquet_href: str = PARQUET_HREF,
                  reconciliation: dict | None = None, partitioned: dict[str, str] | None = None,
                  charts: ChartCache | None = None) -> str:
    """The report's HTML (a string), from the marts of the warehouse `conn` is attached to; `parquet_href`:
    where a table's published Parquet file is ("{table}" replaced by its name), `partitioned` the tables
    published as a file per value of a column (`ParquetLinks`); `reconciliation`: the run's audit already
    reconciled this warehouse (eujp.reconcile.to_dict), else it is done here; `charts`: where the charts
    drawn before are kept (ChartCache; None: every chart drawn)."""
    links = ParquetLinks(parquet_href, partitioned or {})
    cache = charts or ChartCache(None)
    generated_at = generated_at or datetime.now(UTC)
    trade = _rows(conn, "SELECT * FROM mart_trade_annual ORDER BY trade_type, reporter, period_year")
    index = _rows(conn, "SELECT * FROM mart_export_restrictions_index ORDER BY country_scope, index_year")
    index_table = [dict(row) for row in index]  # the chart reads `index` as the mart holds it
    for row in index_table:  # a computed row has no published wording: its index as computed, and its counts
        if row["index_as_published"] is None and row["index_2009_eq_1"] is not None:
            row["index_as_published"] = f"{row['index_2009_eq_1']:.2f}"
        row["measures"] = (f"{row['measures_in_year']:,} vs {row['measures_2009']:,} in 2009"
                           if row["basis"] == "computed" and row["measures_in_year"] is not None
                           and row["measures_2009"] is not None else
                           (f"{row['measures_in_year']:,}" if row["measures_in_year"] is not None else None))
    restrictions = _capped(conn, "SELECT * FROM mart_export_restrictions ORDER BY period_year DESC, country_iso3")
    timeline = _rows(conn, "SELECT * FROM mart_partnership_timeline ORDER BY period_year, event_type")
    events = _capped(conn, "SELECT event_date, event_type, parties, title, source_url FROM fact_security_events "
                           "WHERE event_type <> 'export_control' ORDER BY event_date DESC, title")
    claims = _rows(conn, "SELECT * FROM mart_claims ORDER BY claim_number")
    products = products_section(conn, parquet_href, partitioned)
    verdicts = {v: sum(1 for c in claims if c["verdict"] == v) for v in VERDICT_COLOURS}

    charts = {
        "trade": cache.chart("trade", trade_chart, trade),
        "balance": cache.chart("balance", balance_chart, trade),
        "restrictions": cache.chart("restrictions", restrictions_chart, index),
        "timeline": cache.chart("timeline", timeline_chart, timeline),
    }

    trade_table_rows = [r for r in trade if r["trade_type"] in ("goods", "services")]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>EU–Japan partnership warehouse: run report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>EU–Japan partnership warehouse: run report</h1>",
        _failed_banner(conn, run_id),
        f"<p class=\"meta\">run <code>{_esc(run_id or '-')}</code> · generated "
        f"{generated_at.strftime('%Y-%m-%d %H:%M UTC')} · claims: "
        + ", ".join(f"{n} {_esc(v)}" for v, n in verdicts.items()) + "</p>",
        ("<p>Figures come from the warehouse's marts; each chart says what it shows. Aggregates are never mixed: "
        "EU15, EU27_2007, EU28 (all including the UK) and EU27_2020 are separate series, and a line never "
        "bridges a missing year.</p>"),
        "<h2 id=\"claims\">Claims check</h2>",
        ("<p>Each claim of the op-ed tested against the warehouse (<code>mart_claims</code>). <b>supported</b>: the "
        "warehouse holds data matching the claim at the claim's own precision; <b>contradicted</b>: it holds data "
        "on the claim that differ; <b>not enough data</b>: it cannot decide. The query behind each row is "
        "included.</p>"),
        _claims_table(claims),
        "<h2 id=\"trade\">Trade over time</h2>",
        (f"<figure>{charts['trade']}<figcaption>EU exports to and imports from Japan by year and EU aggregate "
        "(<code>mart_trade_annual</code>). Gaps are years with no published figure"
        + ("" if any(r["reporter"] == "EU27_2020" and r["trade_type"] == "goods"
                     and r["exports_mio_eur"] is not None for r in trade)
           else "; the warehouse holds no EU27_2020 goods exports to Japan")
        + ".</figcaption></figure>"),
        f"<figure>{charts['balance']}<figcaption>Published balances (exports minus imports).</figcaption></figure>",
        _table(trade_table_rows, [("period_year", "year"), ("reporter", "EU aggregate"), ("trade_type", "type"),
                                  ("exports_mio_eur", "exports €m"), ("imports_mio_eur", "imports €m"),
                                  ("balance_mio_eur", "balance €m"), ("exports_yoy_pct", "exports y/y %"),
                                  ("imports_yoy_pct", "imports y/y %"), ("japan_rank_exports", "rank exp."),
                                  ("japan_rank_imports", "rank imp."), ("japan_rank_total", "rank total")],
               numeric={"exports_mio_eur", "imports_mio_eur", "balance_mio_eur", "exports_yoy_pct",
                        "imports_yoy_pct"}),
        _balance_note(trade_table_rows),
        "<h3>Products (Comext CN8, loaded products only)</h3>",
        products,
        reconcile.report_section(conn, reconciliation),
        "<h2 id=\"restrictions\">Export restrictions on critical raw materials</h2>",
        (f"<figure>{charts['restrictions']}<figcaption>Published statements (<code>mart_export_restrictions_index"
        "</code>): filled = OECD publication, hollow = secondary source citing the OECD, red cross = the op-ed's "
        "claim, for which no source was found. Arrows mark lower bounds (\"more than fivefold\").</figcaption>"
        "</figure>"),
        _table(index_table, [("country_scope", "scope"), ("index_year", "year"), ("index_as_published", "index"),
                             ("measures", "measures"), ("verification", "verification"),
                             ("what_is_counted", "what is counted"), ("source_title", "source")]),
        "<h3>Measures in the warehouse (<code>mart_export_restrictions</code>)</h3>",
        _table(restrictions, [("period_year", "year"), ("country_name", "country"), ("material", "CRM material"),
                              ("policy_type_label", "measure"), ("measures", "measures"),
                              ("commodity_labels", "commodities")]),
        links.detail(conn, "mart_export_restrictions", len(restrictions), _count(conn, "mart_export_restrictions")),
        "<h2 id=\"timeline\">Partnership timeline</h2>",
        (f"<figure>{charts['timeline']}<figcaption>Events per year and type (<code>mart_partnership_timeline"
        "</code>, from a curated file with one source per event).</figcaption></figure>"),
        _table(events, [("event_date", "date"), ("event_type", "type"), ("parties", "parties"),
                        ("title", "event")]),
        links.detail(conn, "fact_security_events", len(events), _count(conn, "fact_security_events")),
        ("<p class=\"meta\">Sources and licences: see data/README.md. Information from the SIPRI Arms Transfers "
        "Database; OECD Inventory of Export Restrictions on Industrial Raw Materials (CC BY 4.0); Eurostat "
        "(© European Union).</p>"),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def write_report(conn: duckdb.DuckDBPyConnection, out_path: Path, *, run_id: str | None = None,
                 parquet_href: str = PARQUET_HREF, reconciliation: dict | None = None,
                 partitioned: dict[str, str] | None = None, chart_cache: Path | None = None) -> Path:
    """Write the report of the warehouse `conn` to `out_path` (atomically) and return the path; `chart_cache`:
    the folder of the charts drawn before (ChartCache), None to draw every chart."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.part")
    charts = ChartCache(chart_cache)
    tmp.write_text(render_report(conn, run_id=run_id, parquet_href=parquet_href, reconciliation=reconciliation,
                                 partitioned=partitioned, charts=charts), encoding="utf-8")
    tmp.replace(out_path)
    charts.prune()
    return out_path


def write_warehouse_report(warehouse_path: Path, out_path: Path, *, run_id: str | None = None,
                           parquet_href: str = PARQUET_HREF, reconciliation: dict | None = None,
                           partitioned: dict[str, str] | None = None, chart_cache: Path | None = None) -> Path:
    """write_report on a warehouse file opened read-only."""
    with duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config()) as conn:
        return write_report(conn, out_path, run_id=run_id, parquet_href=parquet_href, reconciliation=reconciliation,
                            partitioned=partitioned, chart_cache=chart_cache)
