"""The bop_its6_det transform on small hand-made wire frames: mapping, rejections with reasons, duplicates."""

from __future__ import annotations

import polars as pl
import pytest
from support.transform_helpers import raw, reasons

from eujp.sources.eurostat_services import TABLE as FACT_SERVICES_TRADE
from transforms.eurostat_services import transform_services

VERSION = "2026-02-06T23:00:00+0100"


SERVICES_DIMS = ["freq", "currency", "bop_item", "stk_flow", "partner", "geo", "time"]


def services_wire(*rows: dict) -> pl.DataFrame:
    base = {"freq": "A", "currency": "MIO_EUR", "bop_item": "S", "stk_flow": "CRE", "partner": "JP",
            "geo": "EU27_2020", "time": "2023", "value": 1.0, "status": None}
    return pl.DataFrame([{**base, **r} for r in rows],
                        schema={**dict.fromkeys(SERVICES_DIMS, pl.String), "value": pl.Float64, "status": pl.String})


def test_services_maps_stk_flow_and_keeps_bop_item(countries):
    wire = services_wire({"stk_flow": "CRE", "value": 41000.0}, {"stk_flow": "DEB", "value": 23000.0, "status": "p"},
                         {"stk_flow": "BAL", "value": 18000.0, "bop_item": "SC", "geo": "EU28", "time": "2019"})
    result = transform_services(wire, "eurostat_services", VERSION, countries)
    assert result.valid.schema == pl.Schema(FACT_SERVICES_TRADE.business_columns)
    assert result.valid.rows() == [
        ("EU27_2020", "JP", "S", "export", 2023, 41000.0, None, "eurostat_services", VERSION),
        ("EU27_2020", "JP", "S", "import", 2023, 23000.0, "p", "eurostat_services", VERSION),
        ("EU28", "JP", "SC", "balance", 2019, 18000.0, None, "eurostat_services", VERSION),
    ]
    assert result.rows_in == 3


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"currency": "MIO_NAC"}, "out of scope currency MIO_NAC (only MIO_EUR is loaded)"),
        ({"stk_flow": "NET"}, "out of scope stk_flow NET (only CRE, DEB, BAL are loaded)"),
        ({"freq": "Q"}, "out of scope freq Q (only A is loaded)"),
        ({"bop_item": " "}, "missing bop_item"),
        ({"geo": "EU15"}, "geo EU15 is not an EU aggregate (EU27_2007, EU28, EU27_2020)"),
        ({"partner": "XX"}, "partner XX is not a known Eurostat country code (dim_country.eurostat_code)"),
        ({"time": "2023S1"}, "time 2023S1 is not a year (YYYY)"),
        # what the table's suite refuses as critical: rejected here, the row alone (the suite blocked the batch)
        ({"bop_item": "s1"}, "bop_item 's1' does not match ^[A-Z][A-Z0-9_]*$"),
        ({"time": "1949"}, "period_year '1949' outside 1950..2100"),
        ({"time": "2101"}, "period_year '2101' outside 1950..2100"),
    ],
)
def test_services_rejects_with_reason(countries, row, reason):
    result = transform_services(services_wire({"time": "2022"}, row), "s", VERSION, countries)
    assert reasons(result) == [reason]
    assert result.valid.get_column("period_year").to_list() == [2022]
    assert list(raw(result)) == [*SERVICES_DIMS, "value", "status"]


def test_services_duplicates(countries):
    same = {"stk_flow": "DEB", "value": 5.0}
    wire = services_wire(same, same, {"bop_item": "SC", "value": 1.0}, {"bop_item": "SC", "value": 2.0})
    result = transform_services(wire, "s", VERSION, countries)
    assert result.valid.select("bop_item", "flow").rows() == [("S", "import")]
    assert [r.split(" natural key")[0] for r in reasons(result)] == [
        "exact duplicate of an earlier row with", "conflicting rows for", "conflicting rows for"]
    assert "bop_item='SC'" in reasons(result)[1]
    assert result.rows_in == 4
    assert result.conflicts.select("bop_item", "flow").rows() == [("SC", "export")]  # not the exact copies
