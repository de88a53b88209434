"""The OECD export restrictions transform: one measure pivoted from its attribute rows, rejections of whole
measures, unknown attributes."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from support.transform_helpers import COUNTRIES, raws, reasons

from eujp.sources.oecd_restrictions import TABLE as FACT_EXPORT_RESTRICTIONS
from transforms.oecd_restrictions import transform_restrictions


def _measure(attrs: list[tuple[str, str | None]], area="CHN", commodity="HS07_280530", ptype="M1", variation="1",
             year="2024") -> list[dict]:
    return [
        {"REF_AREA": area, "COMMODITY": commodity, "POLICY_TYPE": ptype, "POLICY_VARIATION": variation,
         "POLICY_DESCRIPTION": code, "TIME_PERIOD": year, "OBS_VALUE": value,
         "commodity_label": "Rare-earth metals", "policy_type_label": "Export tax"}
        for code, value in attrs
    ]


def _restrictions(*measures: list[dict]):
    rows = [r for m in measures for r in m]
    wire = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))
    return wire, transform_restrictions(wire, "oecd_restrictions", None, COUNTRIES)


FULL_MEASURE = [
    ("VAL", "25"), ("VAL_UNIT", "%"), ("VAL_CONDITION", "ad valorem"), ("DATI", "01/05/2015"), ("END", "nd"),
    ("TEMP", "Yes"), ("POM", "Conservation"), ("NOD", "Tariff schedule"), ("LEG", "Customs law"),
    ("LINK", "https://example.org/tariff"), ("AGEN", "Customs Tariff Commission"), ("ADD", "note"),
    ("ORIG_LEG_PROD", "rare earth metals"),
]


def test_restrictions_pivot_one_measure():
    wire, result = _restrictions(_measure(FULL_MEASURE))
    assert result.valid.schema == pl.Schema(FACT_EXPORT_RESTRICTIONS.business_columns)
    assert result.valid.rows(named=True) == [{
        "ref_area_iso3": "CHN", "commodity_hs6": "280530", "commodity_label": "Rare-earth metals",
        "policy_type": "M1", "policy_type_label": "Export tax", "policy_variation": "1", "period_year": 2024,
        "value": "25", "value_unit": "%", "value_condition": "ad valorem", "date_introduced": date(2015, 5, 1),
        "date_end": None, "is_temporary": True, "purpose": "Conservation", "document": "Tariff schedule",
        "legal_basis": "Customs law", "link": "https://example.org/tariff", "agency": "Customs Tariff Commission",
        "note": "note", "source": "oecd_restrictions", "source_version": None,
    }]
    assert result.rejected.is_empty()
    assert result.valid_wire_rows == wire.height == 13
    assert result.rows_in == wire.height


def test_restrictions_missing_attributes_are_null():
    _, result = _restrictions(_measure([("VAL", "0")], ptype="M3"), _measure([("DATI", "nd")], year="2023"))
    assert result.valid.select("policy_type", "period_year", "value", "date_introduced", "is_temporary").rows() == [
        ("M3", 2024, "0", None, None), ("M1", 2023, None, None, None),
    ]


@pytest.mark.parametrize(("measure", "reason"), [
    (_measure([("VAL", "1"), ("TEMP", "no")], commodity="HS07_28053"),
     "COMMODITY: 'HS07_28053' is not HS07_ followed by six digits"),
    (_measure([("VAL", "1"), ("TEMP", "no")], commodity="HS12_280530"),
     "COMMODITY: 'HS12_280530' is not HS07_ followed by six digits"),
    (_measure([("VAL", "1"), ("TEMP", "no")], area="XXK"), "REF_AREA: 'XXK' is not an ISO3 code in dim_country"),
    (_measure([("VAL", "1"), ("TEMP", "no")], year="2024-Q1"), "TIME_PERIOD: '2024-Q1' is not a year"),
    (_measure([("VAL", "1"), ("TEMP", "no")], variation=None), "POLICY_VARIATION is empty"),
    (_measure([("VAL", "1"), ("DATI", "2015-05-01")]), "DATI: expected dd/mm/yyyy or 'nd', got '2015-05-01'"),
    (_measure([("VAL", "1"), ("DATI", "31/02/2015")]), "DATI: expected dd/mm/yyyy or 'nd', got '31/02/2015'"),
    (_measure([("VAL", "1"), ("END", "ongoing")]), "END: expected dd/mm/yyyy or 'nd', got 'ongoing'"),
    (_measure([("VAL", "1"), ("TEMP", "temporary")]), "TEMP: expected yes or no, got 'temporary'"),
    (_measure([("VAL", "1"), ("VAL", "2")]), "conflicting values for attribute(s) VAL"),
])
def test_restrictions_rejected_measure_sends_all_its_rows(measure, reason):
    kept = _measure([("VAL", "5")], area="USA")
    wire, result = _restrictions(kept, measure)
    assert result.valid["ref_area_iso3"].to_list() == ["USA"]
    assert reasons(result) == [reason] * len(measure)
    assert raws(result) == wire.slice(1).rows(named=True)
    assert result.rows_in == wire.height
    # only a conflict reports the measure's natural key (so that the loader keeps its previous row)
    conflict = reason.startswith("conflicting")
    assert (result.conflicts is not None) == conflict
    if conflict:
        assert result.conflicts.select("ref_area_iso3", "period_year").rows() == [(measure[0]["REF_AREA"], 2024)]


def test_restrictions_same_attribute_twice_with_same_value_is_fine():
    wire, result = _restrictions(_measure([("VAL", "1"), ("VAL", "1"), ("TEMP", "no")]))
    assert result.valid["value"].to_list() == ["1"]
    assert result.rejected.is_empty()
    assert result.rows_in == wire.height == 3


def test_restrictions_unknown_attribute_row_quarantined_alone():
    wire, result = _restrictions(_measure([("VAL", "1"), ("NEWATTR", "x"), (None, "y")]))
    assert result.valid["value"].to_list() == ["1"]
    assert reasons(result) == ["POLICY_DESCRIPTION: unknown attribute code 'NEWATTR'",
                                "POLICY_DESCRIPTION (attribute code) is empty"]
    assert result.valid_wire_rows == 1
    assert result.rows_in == wire.height == 3
