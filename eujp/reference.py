"""Reference tables from data/reference/*.csv: published figures and lists the marts need but no source feed
holds (Japan's rank among the EU's partners, published export-restriction trends, the CRM Act list with HS
codes, every vintage of the published trade figures). Each row keeps its source_url and its line in the CSV.

The CSVs are versioned in git (see data/README.md); they are loaded whole, every run, into the staging
warehouse before the marts are built. A malformed file fails the run naming the file, line and column.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import polars as pl

from eujp.config import REFERENCE_DIR
from eujp.errors import EujpError
from eujp.schema import (
    REF_CRITICAL_RAW_MATERIALS,
    REF_EXPORT_RESTRICTIONS_TREND,
    REF_JAPAN_RANK,
    REF_PUBLISHED_TRADE_FIGURES,
    Table,
)
from eujp.warehouse import replace_dimension


class ReferenceError(EujpError):
    """A reference CSV is missing, has other columns than expected, or a value does not parse."""


def _read(path: Path, expected: list[str]) -> list[dict]:
    """Rows of a UTF-8 CSV as dicts ('' -> None) with `reference_line` (its line, header = 1). A byte-order mark
    (a file saved by Excel) is dropped."""
    if not path.is_file():
        raise ReferenceError(f"reference file {path} is missing")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != expected:
            raise ReferenceError(f"{path.name}: columns {reader.fieldnames} differ from the expected {expected}")
        rows = []
        for row in reader:
            rows.append({k: (v if v != "" else None) for k, v in row.items()} | {"reference_line": reader.line_num})
    return rows


def _int(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ReferenceError(f"{where}: {value!r} is not an integer") from None


def _float(value: str | None, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ReferenceError(f"{where}: {value!r} is not a number") from None


def _frame(table: Table, rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=table.columns, orient="row") if rows else table.empty_frame()


def read_japan_rank(reference_dir: Path = REFERENCE_DIR) -> pl.DataFrame:
    name = "japan_rank_among_eu_partners.csv"
    raw = _read(reference_dir / name, ["year", "scope", "reporter", "rank_exports", "rank_imports", "rank_total",
                                       "source_url", "source_title", "as_published", "notes"])
    scopes = {"goods", "services", "goods_and_services", "unspecified", "within_Asia"}
    rows = []
    for r in raw:
        where = f"{name} line {r['reference_line']}"
        if r["scope"] not in scopes:
            raise ReferenceError(f"{where}: unknown scope {r['scope']!r} (known: {sorted(scopes)})")
        rows.append({
            "period_year": _int(r["year"], where), "scope": r["scope"], "reporter": r["reporter"],
            **{c: _int(r[c], where) for c in ("rank_exports", "rank_imports", "rank_total")},
            **{c: r[c] for c in ("source_url", "source_title", "as_published", "notes", "reference_line")},
        })
    return _frame(REF_JAPAN_RANK, rows)


_INDEX = re.compile(r"^(>=|>)?\s*(\d+(?:\.\d+)?)$")


def read_export_restrictions_trend(reference_dir: Path = REFERENCE_DIR) -> pl.DataFrame:
    name = "export_restrictions_trend.csv"
    raw = _read(reference_dir / name, ["year", "country", "measure_count", "index_2009_eq_1", "what_is_counted",
                                       "source_url", "source_title", "as_published", "notes"])
    rows = []
    for r in raw:
        where = f"{name} line {r['reference_line']}"
        period = r["year"] or ""
        m = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", period)
        if not m:
            raise ReferenceError(f"{where}: year {period!r} is neither YYYY nor YYYY-YYYY")
        index, qualifier, value = r["index_2009_eq_1"], None, None
        if index is not None:
            im = _INDEX.match(index.strip())
            if not im:
                raise ReferenceError(f"{where}: index_2009_eq_1 {index!r} is not N, >N or >=N")
            qualifier, value = im.group(1) or "=", float(im.group(2))
        rows.append({
            "period_label": period, "period_start": int(m.group(1)), "period_end": int(m.group(2) or m.group(1)),
            "country": r["country"], "measure_count": _int(r["measure_count"], where),
            "index_as_published": index, "index_value": value, "index_qualifier": qualifier,
            **{c: r[c] for c in ("what_is_counted", "source_url", "source_title", "as_published", "notes",
                                 "reference_line")},
        })
    return _frame(REF_EXPORT_RESTRICTIONS_TREND, rows)


def read_critical_raw_materials(reference_dir: Path = REFERENCE_DIR) -> pl.DataFrame:
    name = "eu_critical_raw_materials.csv"
    raw = _read(reference_dir / name, ["material", "annex_ii_entry", "is_critical", "is_strategic",
                                       "annex_i_strategic_entry", "hs_code", "hs_description", "hs_confidence",
                                       "hs_source_url", "source_url", "source_title", "notes"])
    rows = []
    for r in raw:
        where = f"{name} line {r['reference_line']}"
        if r["is_critical"] not in ("yes", "no") or r["is_strategic"] not in ("yes", "no", "partial"):
            raise ReferenceError(f"{where}: is_critical {r['is_critical']!r} / is_strategic "
                                 f"{r['is_strategic']!r} not yes/no(/partial)")
        if r["hs_confidence"] not in ("source", "inferred"):
            raise ReferenceError(f"{where}: hs_confidence {r['hs_confidence']!r} is not source/inferred")
        prefix = (r["hs_code"] or "").replace(".", "")
        if not re.fullmatch(r"\d{4}|\d{6}", prefix):
            raise ReferenceError(f"{where}: hs_code {r['hs_code']!r} is not a 4- or 6-digit HS code")
        rows.append({
            "material": r["material"], "annex_ii_entry": r["annex_ii_entry"], "is_critical": r["is_critical"] == "yes",
            "strategic_status": r["is_strategic"], "annex_i_strategic_entry": r["annex_i_strategic_entry"],
            "hs_code": r["hs_code"], "hs_prefix": prefix,
            **{c: r[c] for c in ("hs_description", "hs_confidence", "hs_source_url", "source_url", "source_title",
                                 "notes", "reference_line")},
        })
    return _frame(REF_CRITICAL_RAW_MATERIALS, rows)


def read_published_trade_figures(reference_dir: Path = REFERENCE_DIR) -> pl.DataFrame:
    rows = []
    for trade_type, name in (("goods", "eu_japan_goods_trade_annual.csv"),
                             ("services", "eu_japan_services_trade_annual.csv")):
        raw = _read(reference_dir / name, ["year", "partner", "reporter", "flow", "value_eur_bn", "source_url",
                                           "source_title", "as_published", "notes"])
        for r in raw:
            where = f"{name} line {r['reference_line']}"
            if r["flow"] not in ("export", "import", "balance"):
                raise ReferenceError(f"{where}: flow {r['flow']!r} is not export/import/balance")
            bn = _float(r["value_eur_bn"], where)
            rows.append({
                "trade_type": trade_type, "period_year": _int(r["year"], where), "partner": r["partner"],
                "reporter": r["reporter"], "flow": r["flow"], "value_eur_bn": bn,
                "value_mio_eur": None if bn is None else round(bn * 1000, 1),
                **{c: r[c] for c in ("source_url", "source_title", "as_published", "notes", "reference_line")},
            })
    return _frame(REF_PUBLISHED_TRADE_FIGURES, rows)


READERS: tuple[tuple[Table, object], ...] = (
    (REF_JAPAN_RANK, read_japan_rank),
    (REF_EXPORT_RESTRICTIONS_TREND, read_export_restrictions_trend),
    (REF_CRITICAL_RAW_MATERIALS, read_critical_raw_materials),
    (REF_PUBLISHED_TRADE_FIGURES, read_published_trade_figures),
)


def read_reference_tables(reference_dir: Path = REFERENCE_DIR) -> dict[str, pl.DataFrame]:
    """Parse every reference CSV (no warehouse needed): raises ReferenceError naming file, line and value."""
    return {table.name: read(reference_dir) for table, read in READERS}


def load_reference_tables(conn: duckdb.DuckDBPyConnection, reference_dir: Path = REFERENCE_DIR) -> dict[str, int]:
    """Replace every reference table with its CSV's rows; returns rows per table."""
    frames = read_reference_tables(reference_dir)
    return {table.name: replace_dimension(conn, table, frames[table.name]) for table, _ in READERS}
