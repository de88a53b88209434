"""Helpers of the transform tests (tests/sources/<source>/test_transform.py): the rejected rows' reasons and
raw records, and small country dimensions."""

from __future__ import annotations

import json
from datetime import date

import polars as pl

from eujp.schema import DIM_COUNTRY


def reasons(result) -> list[str]:
    return result.rejected.get_column("reason").to_list()


def raw(result, i: int = 0) -> dict:
    """The i-th rejected row's raw record."""
    return json.loads(result.rejected.get_column("raw_record")[i])


def raws(result) -> list[dict]:
    """Every rejected row's raw record."""
    return [json.loads(r) for r in result.rejected["raw_record"]]


def trade_countries() -> pl.DataFrame:
    """dim_country rows for the trade transforms: members, a former member, Eurostat's EL/UK codes."""
    rows = [
        ("JP", "JPN", "Japan", "JP", "Japan", None, None, False),
        ("DE", "DEU", "Germany", "DE", "Germany", date(1958, 1, 1), None, True),
        ("AT", "AUT", "Austria", "AT", "Austria", date(1995, 1, 1), None, True),
        ("GR", "GRC", "Greece", "EL", "Greece", date(1981, 1, 1), None, True),
        ("GB", "GBR", "United Kingdom", "UK", "United Kingdom", date(1973, 1, 1), date(2020, 1, 31), False),
        ("US", "USA", "United States", "US", "United States", None, None, False),
    ]
    return pl.DataFrame(rows, schema=DIM_COUNTRY.columns, orient="row")


# dim_country rows for the defence and minerals transforms (SIPRI names, ISO3 codes).
COUNTRIES = pl.DataFrame(
    {
        "iso2": ["JP", "DE", "US", "TR", "BR", "CN", "FR", "GB"],
        "iso3": ["JPN", "DEU", "USA", "TUR", "BRA", "CHN", "FRA", "GBR"],
        "name": ["Japan", "Germany", "United States", "Türkiye", "Brazil", "China", "France", "United Kingdom"],
        "eurostat_code": ["JP", "DE", "US", "TR", "BR", "CN", "FR", "UK"],
        "sipri_name": [None, None, None, "Turkiye", None, None, None, None],
        "eu_entry_date": [None, date(1958, 1, 1), None, None, None, None, date(1958, 1, 1), date(1973, 1, 1)],
        "eu_exit_date": [None, None, None, None, None, None, None, date(2020, 1, 31)],
        "is_eu_member": [False, True, False, False, False, False, True, False],
    }
)
