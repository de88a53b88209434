"""The Comext DS-045409 transform on small hand-made wire frames: the pivot of value and quantity, rejections
with reasons, duplicates and row accounting (every wire row is loaded or rejected)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.transform_helpers import raw, reasons

from eujp.parse.sdmx_csv import parse_comext_csv
from eujp.schema import DIM_COUNTRY
from eujp.sources.comext_goods import TABLE as FACT_GOODS_TRADE_PRODUCT
from transforms.comext_goods import transform_goods_product
from transforms.common import WireColumnsError

HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE"
PREFIX = "ESTAT:DS-045409(1.0),14/08/26 11:00:00"


def comext(*rows: str, stamp: str = PREFIX.split(",")[1]) -> pl.DataFrame:
    """rows: 'freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE' -> parsed wire frame."""
    prefix = f"{PREFIX.split(',')[0]},{stamp}"
    body = "\n".join([HEADER, *(f"{prefix},{r}" for r in rows)]) + "\n"
    return parse_comext_csv(body.encode()).frame


def product(wire: pl.DataFrame, countries: pl.DataFrame):
    return transform_goods_product(wire, "comext_goods", "2026-08-14T11:00:00", countries)


def test_comext_pivots_value_and_quantity_into_one_row(countries):
    wire = comext(
        "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,502.02",
        "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,1663789",
        "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,99",
        "M,DE,JP,84834030,2,QUANTITY_IN_100KG,2025-02,0.01",
        "A,EU27_2020,EXT_EU27_2020,84834030,2,VALUE_IN_EUROS,2024,5",
    )
    result = product(wire, countries)
    assert result.valid.schema == pl.Schema(FACT_GOODS_TRADE_PRODUCT.business_columns)
    # the pivot keeps no row order (the load does not need one): compare in natural-key order
    assert result.valid.sort("reporter", "partner", "flow").rows() == [
        ("DE", "JP", "84834030", "export", date(2025, 2, 1), "2025-02", 99.0, 1.0, "comext_goods",
         "2026-08-14T11:00:00"),
        ("DE", "JP", "84834030", "import", date(2025, 2, 1), "2025-02", 1663789.0, 50202.0, "comext_goods",
         "2026-08-14T11:00:00"),
        # value without a quantity row: loaded with quantity null; annual period -> 1 January
        ("EU27_2020", "EXT_EU27_2020", "84834030", "export", date(2024, 1, 1), "2024", 5.0, None, "comext_goods",
         "2026-08-14T11:00:00"),
    ]
    assert result.rejected.height == 0
    assert result.valid_wire_rows == 5
    assert result.rows_in == wire.height == 5


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("M,DE,JP,84834030,1,SUPPLEMENTARY_QUANTITY,2025-02,7",
         "out of scope indicator SUPPLEMENTARY_QUANTITY (only VALUE_IN_EUROS, QUANTITY_IN_100KG are loaded)"),
        ("M,DE,JP,84834030,3,VALUE_IN_EUROS,2025-02,7", "flow 3 is neither 1 (import) nor 2 (export)"),
        ("M,DE,JP,848340,1,VALUE_IN_EUROS,2025-02,7", "product 848340 is not a CN8 code (8 digits)"),
        ("M,DE,JP,TOTAL,1,VALUE_IN_EUROS,2025-02,7", "product TOTAL is not a CN8 code (8 digits)"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-13,7",
         "TIME_PERIOD 2025-13 does not match freq M (M: YYYY-MM, A: YYYY)"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025,7", "TIME_PERIOD 2025 does not match freq M (M: YYYY-MM, A: YYYY)"),
        ("A,DE,JP,84834030,1,VALUE_IN_EUROS,2025-01,7",
         "TIME_PERIOD 2025-01 does not match freq A (M: YYYY-MM, A: YYYY)"),
        ("M,XX,JP,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown reporter code XX"),
        ("M,QV,JP,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown reporter code QV"),
        ("M,DE,ZZ,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown partner code ZZ"),
        ("M,DE,EL,84834030,1,VALUE_IN_EUROS,2025-02,7", "unknown partner code EL"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,", "missing OBS_VALUE"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,n/a", "OBS_VALUE n/a is not a number"),
        ("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,-12.5", "negative OBS_VALUE -12.5"),
    ],
)
def test_comext_rejects_wire_rows_with_reason(countries, row, reason):
    wire = comext("M,AT,US,01012100,2,VALUE_IN_EUROS,2025-02,10", row)
    result = product(wire, countries)
    assert reasons(result) == [reason]
    assert result.valid.get_column("partner").to_list() == ["US"]
    assert result.rows_in == 2
    record = raw(result)
    # the quarantine shows the row as published, OBS_VALUE as its raw text
    assert list(record) == HEADER.split(",")
    assert ",".join(record[c] or "" for c in HEADER.split(",")[2:]) == row


def test_comext_accepts_documented_partner_codes_and_eu_reporters(countries):
    partners = ["GR", "GB", "EXT_EU27_2020", "INT_EU27_2020", "QV", "QW", "XS", "QS", "XK", "JP"]
    wire = comext(*(f"M,EU27_2020,{p},84834030,1,VALUE_IN_EUROS,2025-06,1" for p in partners),
                  "M,GR,US,84834030,1,VALUE_IN_EUROS,2025-06,1", "M,EU28,US,84834030,1,VALUE_IN_EUROS,2019-06,1")
    result = product(wire, countries)
    assert result.rejected.height == 0
    assert sorted(result.valid.select("reporter", "partner").rows()) == sorted(
        [*(("EU27_2020", p) for p in partners), ("GR", "US"), ("EU28", "US")])


def test_comext_quantity_without_value_is_rejected(countries):
    wire = comext("M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,3", "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-03,4")
    result = product(wire, countries)
    assert result.valid.get_column("period_code").to_list() == ["2025-03"]
    assert reasons(result) == [
        ("QUANTITY_IN_100KG without a VALUE_IN_EUROS row for natural key (reporter=DE, partner=JP, "
        "product=84834030, flow=1, TIME_PERIOD=2025-02)")
    ]
    assert result.rows_in == 2
    assert result.valid_wire_rows == 1


def test_comext_exact_duplicate_keeps_one_copy(countries):
    wire = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100",
                  "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1.5",
                  "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100.0")  # same figure, other spelling
    result = product(wire, countries)
    assert result.valid.select("value_eur", "quantity_kg").rows() == [(100.0, 150.0)]
    assert len(reasons(result)) == 1
    assert reasons(result)[0].startswith("exact duplicate of an earlier row with natural key reporter='DE'")
    assert raw(result)["OBS_VALUE"] == "100.0"
    assert result.valid_wire_rows == 2
    assert result.rows_in == 3


def test_comext_conflicting_value_rejects_every_wire_row_of_the_fact(countries):
    wire = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100",
                  "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1.5",
                  "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,101",
                  "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,7")
    result = product(wire, countries)
    assert result.valid.select("flow", "value_eur").rows() == [("export", 7.0)]
    assert sorted(r.split(" natural key")[0] for r in reasons(result)) == [
        "conflicting rows for", "conflicting rows for", "conflicting values in another indicator for"]
    sibling = reasons(result).index(next(r for r in reasons(result) if "another indicator" in r))
    assert raw(result, sibling)["indicators"] == "QUANTITY_IN_100KG"
    assert reasons(result)[sibling].endswith(
        "(reporter=DE, partner=JP, product=84834030, flow=1, TIME_PERIOD=2025-02)")
    assert result.rows_in == 4
    # the fact's key, in the table's columns, is reported as a conflict (the loader keeps its previous row)
    assert result.conflicts.rows(named=True) == [
        {"reporter": "DE", "partner": "JP", "product_cn8": "84834030", "flow": "import", "period_code": "2025-02"}]


def test_a_quantity_too_large_in_kg_and_a_blank_value_are_rejected_with_their_reasons(countries):
    wire = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100",
                  "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1e307",  # x 100 is no float
                  'M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,""')
    result = product(wire, countries)
    # the import's value is not loaded without its quantity (a fact row is not loaded half)
    assert result.valid.height == 0 and result.rows_in == 3 and result.valid_wire_rows == 0
    assert sorted(reasons(result)) == [
        "QUANTITY_IN_100KG 1e307 is beyond the range of a number in kg",
        ("another row of natural key (reporter=DE, partner=JP, product=84834030, flow=1, TIME_PERIOD=2025-02) "
         "was rejected for its OBS_VALUE: a fact row is not loaded half"),
        "missing OBS_VALUE"]


def test_an_observation_whose_latest_release_is_no_number_leaves_its_fact_out_an_earlier_one_is_superseded(
        countries):
    """Releases first, then the value: a figure a later release corrects is superseded whatever it held (no
    rejection); a figure the latest release gives as no number takes its fact key with it (neither indicator
    loaded: the key's previous row stays whole), and two figures of one stamp, one of them not a number, are a
    conflict like two numbers."""
    wire = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,n/a",  # corrected by the later release
                  "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1.5",
                  "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,100",  # the later release says -3
                  "M,DE,JP,84834030,2,QUANTITY_IN_100KG,2025-02,2",
                  "M,DE,JP,85011010,1,VALUE_IN_EUROS,2025-02,9",  # and "x" beside 9, one stamp
                  "M,DE,JP,85011010,1,VALUE_IN_EUROS,2025-02,x")
    later = comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,50",
                   "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,-3", stamp="01/09/26 11:00:00")
    result = product(pl.concat([wire, later]), countries)
    assert result.valid.select("product_cn8", "flow", "value_eur", "quantity_kg").rows() == [
        ("84834030", "import", 50.0, 150.0)]
    assert sorted(r.split(" (")[0] for r in reasons(result)) == [
        "OBS_VALUE x is not a number", "another row of natural key", "another row of natural key",
        "negative OBS_VALUE -3"]
    assert result.rows_in == 8 and result.valid_wire_rows == 4  # two rows of the fact, two superseded


def test_comext_empty_payload(countries):
    result = product(comext(), countries)
    assert result.valid.height == 0
    assert result.valid.schema == pl.Schema(FACT_GOODS_TRADE_PRODUCT.business_columns)
    assert result.rows_in == 0


def test_comext_missing_raw_column_is_schema_drift(countries):
    with pytest.raises(WireColumnsError, match=r"missing \['OBS_VALUE_raw'\]"):
        product(comext("M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,1").drop("OBS_VALUE_raw"), countries)


def test_comext_real_eu27_file_end_to_end(shared_data: Path, countries):
    parsed = parse_comext_csv(
        (shared_data / "trade" / "comext_DS-045409_sdmxcsv_EU27_allpartners_84834030_2025-06.csv").read_bytes())
    full_countries = pl.concat([countries, pl.DataFrame(
        [(c, None, c, c, None, None, None, False) for c in
         ["BE", "BG", "BR", "CA", "CH", "CN", "CZ", "DK", "EE", "ES", "FI", "FR", "HR", "HU", "ID", "IE", "IN", "IT",
          "KR", "LT", "LU", "LV", "MX", "NL", "PL", "PT", "RO", "SE", "SG", "SI", "SK", "TH", "TR", "TW"]],
        schema=DIM_COUNTRY.columns, orient="row")])
    result = transform_goods_product(parsed.frame, "comext_goods", parsed.source_version, full_countries)
    assert result.rejected.height == 0
    assert result.valid.height == 45
    assert result.rows_in == parsed.frame.height == 90
    jp = result.valid.filter(pl.col("partner") == "JP").row(0, named=True)
    assert (jp["flow"], jp["period"], jp["value_eur"], jp["quantity_kg"]) == ("import", date(2025, 6, 1),
                                                                               2264878.0, 69167.0)
    assert result.valid.get_column("source_version").unique().to_list() == ["2026-08-14T11:00:00"]


# --------------------------------------------------------------------------- property: rows accounting


codes = st.sampled_from
wire_row = st.tuples(
    codes(["M", "A"]), codes(["DE", "EU27_2020", "XX"]), codes(["JP", "QV", "ZZ"]), codes(["84834030", "8483"]),
    codes(["1", "2", "3"]), codes(["VALUE_IN_EUROS", "QUANTITY_IN_100KG", "OTHER"]),
    codes(["2025-01", "2025", "2025-13"]), codes(["1", "2.5", "", "x", "-1"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(wire_row, max_size=25))
def test_comext_every_wire_row_is_loaded_or_rejected_and_keys_are_unique(countries, rows):
    wire = comext(*(",".join(r) for r in rows))
    result = product(wire, countries)
    assert result.rows_in == wire.height
    assert result.valid.height <= result.valid_wire_rows <= 2 * result.valid.height
    assert not result.valid.select(FACT_GOODS_TRADE_PRODUCT.natural_key).is_duplicated().any()
    assert result.rejected.get_column("reason").null_count() == 0
    assert result.valid.get_column("value_eur").null_count() == 0


# --------------------------------------------------------------------------- property: against a plain model


def expected_facts(rows: list[tuple[str, str, str, str, str, str, str]]) -> tuple[set, int]:
    """The fact rows and the count of rejected wire rows that the rules give, computed row by row in plain
    Python: a wire key (fact key + indicator) given twice with the same figure keeps one (the copy is
    rejected); with different figures every row of it is rejected, and so is the other indicator of its fact
    key; a fact key with a value row is a fact (quantity = 100 × QUANTITY_IN_100KG, or null); a quantity
    without a value is rejected."""
    by_wire_key: dict[tuple, list[float]] = {}
    for reporter, partner, product_, flow, indicator, period, value in rows:
        by_wire_key.setdefault((reporter, partner, product_, flow, period, indicator), []).append(float(value))
    conflicting = {k[:5] for k, values in by_wire_key.items() if len(set(values)) > 1}
    rejected = sum(len(v) - 1 for k, v in by_wire_key.items() if k[:5] not in conflicting)  # the copies
    facts: dict[tuple, dict[str, float]] = {}
    for key, values in by_wire_key.items():
        if key[:5] in conflicting:
            rejected += len(values)
        else:
            facts.setdefault(key[:5], {})[key[5]] = values[0]
    rows_out = set()
    for (reporter, partner, product_, flow, period), figures in facts.items():
        if "VALUE_IN_EUROS" not in figures:
            rejected += 1  # a quantity without its value
            continue
        quantity = figures.get("QUANTITY_IN_100KG")
        rows_out.add((reporter, partner, product_, {"1": "import", "2": "export"}[flow],
                      date(int(period[:4]), int(period[5:]), 1), period, figures["VALUE_IN_EUROS"],
                      None if quantity is None else quantity * 100, "comext_goods", "2026-08-14T11:00:00"))
    return rows_out, rejected


valid_row = st.tuples(
    codes(["DE", "AT", "EU27_2020"]), codes(["JP", "US"]), codes(["84834030", "85011010"]), codes(["1", "2"]),
    codes(["VALUE_IN_EUROS", "QUANTITY_IN_100KG"]), codes(["2025-01", "2025-02"]),
    codes(["0", "1", "1.0", "2.5", "1663789", "0.01"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_row, max_size=30))
def test_comext_facts_are_what_the_rules_give_row_by_row(countries, rows):
    """Figures that are all well-formed, with repeats and conflicts drawn at random: the facts and the count
    of rejected rows are exactly those of the plain model (`expected_facts`); "1" and "1.0" are one figure."""
    wire = comext(*(f"M,{','.join(r)}" for r in rows))
    result = product(wire, countries)
    facts, rejected = expected_facts(rows)
    got = set(result.valid.rows())
    assert len(got) == result.valid.height  # no fact row twice
    assert got == facts
    assert result.rejected.height == rejected
    assert result.rows_in == len(rows)


# --------------------------------------------------------------------------- releases: LAST UPDATE orders them


def stamped(*rows: tuple[str, str]) -> pl.DataFrame:
    """rows: (LAST UPDATE, 'freq,reporter,...,OBS_VALUE') -> one parsed wire frame holding several releases."""
    body = "\n".join([HEADER, *(f"ESTAT:DS-045409(1.0),{stamp},{r}" for stamp, r in rows)]) + "\n"
    return parse_comext_csv(body.encode()).frame


AUG, SEP, OCT = "14/08/26 11:00:00", "15/09/26 11:00:00", "02/10/26 09:30:00"


def test_a_later_release_of_a_month_supersedes_the_earlier_one_instead_of_conflicting(countries):
    """Two releases of February side by side (a revised file beside the first one): each observation is the one
    of its latest LAST UPDATE, and the earlier versions count as consumed, not rejected; an observation only
    the earlier release has stays (a revision may touch the value alone); under one stamp a repeat with
    another figure is still a conflict. October sorts before September as text, and after it as a time."""
    wire = stamped(
        (OCT, "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,130"),  # the latest: wins over both others
        (AUG, "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,100"),
        (AUG, "M,DE,JP,84834030,1,QUANTITY_IN_100KG,2025-02,1.5"),  # no later version: its quantity stays
        (SEP, "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,120"),
        (AUG, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-02,7"),  # only in August: kept
        (SEP, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-01,5"),  # September conflicts on January ...
        (SEP, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-01,6"),
        (AUG, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-01,4"),  # ... superseding August's: a conflict
        (SEP, "M,DE,JP,84834030,2,VALUE_IN_EUROS,,4"),  # no month: rejected, not lost
        (OCT, "M,DE,JP,84834030,2,VALUE_IN_EUROS,,4"),
        (OCT, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2024-12,9"),  # a month of one release only
    )
    result = product(wire, countries)
    assert sorted(result.valid.select("flow", "period_code", "value_eur", "quantity_kg").rows()) == [
        ("export", "2024-12", 9.0, None), ("export", "2025-02", 7.0, None), ("import", "2025-02", 130.0, 150.0)]
    assert sorted(r.split(" natural key")[0] for r in reasons(result)) == [
        "TIME_PERIOD null does not match freq M (M: YYYY-MM, A: YYYY)"] * 2 + ["conflicting rows for"] * 2
    assert result.conflicts.rows() == [("DE", "JP", "84834030", "export", "2025-01")]  # the loader keeps its row
    assert result.rows_in == 11 and result.valid_wire_rows == 7  # 4 rows loaded, 3 superseded


def test_a_revision_of_one_indicator_keeps_the_other_of_the_earlier_stamp(countries):
    """A slice fetched whole after a revision: the revised quantity carries its new stamp, the value its
    first one. One fact of both, not two releases of which the later lacks a value."""
    wire = stamped((AUG, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-06,41318"),
                   (OCT, "M,DE,JP,84834030,2,QUANTITY_IN_100KG,2025-06,4242"),
                   (AUG, "M,DE,JP,84834030,2,VALUE_IN_EUROS,2025-05,100"),
                   (AUG, "M,DE,JP,84834030,2,QUANTITY_IN_100KG,2025-05,1"))
    result = product(wire, countries)
    assert sorted(result.valid.select("period_code", "value_eur", "quantity_kg").rows()) == [
        ("2025-05", 100.0, 100.0), ("2025-06", 41318.0, 424200.0)]
    assert result.rejected.is_empty() and result.rows_in == 4


def test_releases_of_other_months_are_one_batch_and_a_repeat_within_a_release_is_a_duplicate(countries):
    wire = stamped((AUG, "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-01,100"),
                   (SEP, "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,120"),
                   (SEP, "M,DE,JP,84834030,1,VALUE_IN_EUROS,2025-02,120"))
    result = product(wire, countries)
    assert sorted(result.valid.select("period_code", "value_eur").rows()) == [("2025-01", 100.0), ("2025-02", 120.0)]
    assert [r.split(" natural key")[0] for r in reasons(result)] == ["exact duplicate of an earlier row with"]
    assert result.rows_in == 3 and result.valid_wire_rows == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([AUG, SEP, OCT]), valid_row), max_size=30))
def test_an_observation_is_the_one_of_its_latest_stamp_and_the_rules_judge_those(countries, rows):
    """Rows of three releases drawn at random: each observation (wire key) keeps the rows of its latest stamp
    (in time order), the others consumed; the plain model (`expected_facts`) judges what is kept; every wire
    row is consumed or rejected."""
    wire = stamped(*((stamp, f"M,{','.join(r)}") for stamp, r in rows))
    result = product(wire, countries)
    order = {AUG: 0, SEP: 1, OCT: 2}
    latest: dict[tuple, int] = {}
    for stamp, r in rows:
        key = (r[0], r[1], r[2], r[3], r[5], r[4])  # reporter, partner, product, flow, period, indicator
        latest[key] = max(latest.get(key, -1), order[stamp])
    kept = [r for stamp, r in rows if order[stamp] == latest[(r[0], r[1], r[2], r[3], r[5], r[4])]]
    facts, rejected = expected_facts(kept)
    got = set(result.valid.rows())
    assert len(got) == result.valid.height
    assert got == facts
    assert result.rejected.height == rejected
    assert result.rows_in == len(rows)
