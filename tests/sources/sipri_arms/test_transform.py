"""The SIPRI trade register transform: types, country mapping, rejections naming column and value, stable ids."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
from support.transform_helpers import COUNTRIES, raws, reasons

from eujp.parse.sipri import LINE_COLUMN, REGISTER_COLUMN, parse_sipri_register
from eujp.parse.sipri import OUTPUT_COLUMNS as SIPRI_COLUMNS
from eujp.sources.sipri_arms import TABLE as FACT_ARMS_TRANSFERS
from transforms.sipri_arms import transform_arms

VERSION = "2025-03-13T10:02:49"


_SIPRI_DEFAULT = {
    "recipient": "Japan", "supplier": "Germany", "year_of_order": "2009", "year_of_order_flag": None,
    "number_ordered": "15", "number_ordered_flag": "?", "weapon_designation": "EC135",
    "weapon_description": "light helicopter", "number_delivered": "15", "number_delivered_flag": None,
    "delivery_years": "2009; 2010; 2011", "status": "New", "comments": "For training", "tiv_per_unit": "2.25",
    "tiv_total_order": "33.75", "tiv_delivered": "33.75",
}


def _sipri(*overrides: dict, register: str = "00aa11bb22cc33dd", first_line: int = 14) -> pl.DataFrame:
    """Wire rows of one register (its lines 14, 15, ...), each the default record with `overrides`."""
    rows = [{**_SIPRI_DEFAULT, **o} for o in overrides]
    return pl.DataFrame(rows, schema=dict.fromkeys(SIPRI_COLUMNS, pl.String)).with_columns(
        pl.int_range(first_line, first_line + len(rows), dtype=pl.Int64).alias(LINE_COLUMN),
        pl.lit(register).alias(REGISTER_COLUMN))


def _arms(wire: pl.DataFrame, version: str | None = VERSION):
    return transform_arms(wire, "sipri_arms", version, COUNTRIES)


def test_arms_valid_row_types_and_columns():
    result = _arms(_sipri({}))
    assert result.valid.schema == pl.Schema(FACT_ARMS_TRANSFERS.business_columns)
    assert result.rejected.is_empty()
    row = result.valid.row(0, named=True)
    key = "Germany|Japan|2009|EC135|light helicopter|15|2009; 2010; 2011"
    assert row == {
        "transfer_id": hashlib.sha1(key.encode()).hexdigest()[:16],
        "supplier": "Germany", "supplier_iso2": "DE", "recipient": "Japan", "recipient_iso2": "JP",
        "order_year": 2009, "order_year_uncertain": False, "number_ordered": 15, "number_ordered_uncertain": True,
        "weapon_designation": "EC135", "weapon_description": "light helicopter", "number_delivered": 15,
        "number_delivered_uncertain": False, "delivery_years": "2009; 2010; 2011", "first_delivery_year": 2009,
        "last_delivery_year": 2011, "status": "New", "comments": "For training", "tiv_per_unit": 2.25,
        "tiv_total_order": 33.75, "tiv_delivered": 33.75, "source": "sipri_arms", "source_version": VERSION,
    }


def test_arms_country_mapping_sipri_name_then_name_and_non_states_kept():
    result = _arms(_sipri(
        {"supplier": "Turkiye"},              # sipri_name
        {"supplier": " united states "},      # name, trimmed, case-insensitive
        {"supplier": "Soviet Union"},         # historical state: no code, still loaded
        {"supplier": "unknown supplier(s)"},  # not a state
        {"recipient": "NATO**", "supplier": "Japan"},
    ))
    assert result.rejected.is_empty()
    assert result.valid.select("supplier_iso2", "recipient_iso2").rows() == [
        ("TR", "JP"), ("US", "JP"), (None, "JP"), (None, "JP"), ("JP", None),
    ]
    assert result.valid["supplier"].to_list()[1] == "united states"


def test_arms_sipri_name_wins_over_name():
    countries = COUNTRIES.with_columns(
        pl.when(pl.col("iso2") == "DE").then(pl.lit("Japan")).otherwise(pl.col("sipri_name")).alias("sipri_name")
    )
    result = transform_arms(_sipri({}), "sipri_arms", VERSION, countries)
    assert result.valid["recipient_iso2"].to_list() == ["DE"]


def test_arms_ambiguous_country_dimension_raises():
    countries = COUNTRIES.with_columns(pl.lit("Germany").alias("sipri_name"))
    with pytest.raises(ValueError, match="sipri_name maps one name to several iso2 codes"):
        transform_arms(_sipri({}), "sipri_arms", VERSION, countries)


def test_arms_empty_numbers_are_null_not_rejected():
    result = _arms(_sipri({"number_ordered": None, "tiv_total_order": None, "tiv_delivered": None,
                           "delivery_years": None, "number_ordered_flag": None}))
    assert result.rejected.is_empty()
    row = result.valid.row(0, named=True)
    assert (row["number_ordered"], row["tiv_total_order"], row["first_delivery_year"]) == (None, None, None)
    assert row["number_ordered_uncertain"] is False


@pytest.mark.parametrize(("override", "reason"), [
    ({"number_ordered": "12a"}, "number_ordered: not a non-negative integer: '12a'"),
    ({"number_delivered": "-3"}, "number_delivered: not a non-negative integer: '-3'"),
    ({"tiv_per_unit": "2,25"}, "tiv_per_unit: not a non-negative number: '2,25'"),
    ({"year_of_order": "c.1990"}, "year_of_order: not a non-negative integer: 'c.1990'"),
    ({"year_of_order": "1899"}, "year_of_order 1899 outside 1900..2025"),
    ({"year_of_order": "2026"}, "year_of_order 2026 outside 1900..2025"),
    ({"year_of_order": None}, "year_of_order is empty"),
    ({"supplier": "  "}, "supplier is empty"),
    ({"year_of_order_flag": "x"}, "year_of_order_flag: expected '?' or empty, got 'x'"),
    ({"delivery_years": "2009; 201O"}, "delivery_years: not a '; '-separated list of years: '2009; 201O'"),
    ({"delivery_years": "2009; 2027"}, "delivery_years: a year outside 1950..2025: '2009; 2027'"),
    ({"delivery_years": "1949; 1950"}, "delivery_years: a year outside 1950..2025: '1949; 1950'"),
])
def test_arms_rejects_bad_values_naming_column_and_value(override, reason):
    wire = _sipri({}, override)
    result = _arms(wire)
    assert result.valid.height == 1
    assert reasons(result) == [reason]
    assert raws(result) == [wire.drop(LINE_COLUMN, REGISTER_COLUMN).row(1, named=True)]  # the record as published
    assert result.rows_in == wire.height


def test_arms_lists_every_problem_of_a_row():
    result = _arms(_sipri({"number_ordered": "many", "tiv_delivered": "n/a"}))
    assert reasons(result) == [
        "number_ordered: not a non-negative integer: 'many'; tiv_delivered: not a non-negative number: 'n/a'"
    ]


def test_arms_year_bound_follows_source_version():
    assert _arms(_sipri({"year_of_order": "2025"}), version="2024-12-01T00:00:00").rejected.height == 1
    assert _arms(_sipri({"year_of_order": "2025"}), version=VERSION).rejected.height == 0


def test_arms_year_bound_is_never_past_the_suites():
    """A register stamped after 2100 (a mistyped 'Data generated' line) does not widen the years the transform
    accepts past the table's suite (critical: 1900..2100): a year 2101 is rejected here, the row alone, instead of
    the suite blocking the whole register."""
    result = _arms(_sipri({"year_of_order": "2101"}), version="2300-01-01T00:00:00")
    assert reasons(result) == ["year_of_order 2101 outside 1900..2100"]


def test_arms_identical_rows_both_survive_with_stable_ids():
    wire = _sipri({}, {"comments": "another order"}, {}, {"supplier": "France"})
    ids = _arms(wire).valid["transfer_id"].to_list()
    base = ids[0]
    assert ids[1] == f"{base}-2" and ids[2] == f"{base}-3"  # comments are not part of the key
    assert len(set(ids)) == 4
    # same ids on a second run, and a row's id does not depend on unrelated rows
    assert _arms(wire).valid["transfer_id"].to_list() == ids
    assert _arms(wire.slice(3, 1)).valid["transfer_id"].to_list() == [ids[3]]


def test_registers_that_overlap_hold_one_order_once_copies_quarantined_and_other_figures_a_conflict():
    """Two files, two registers (a file's line numbers start again): the same record in both is one order (the
    later copy quarantined as an exact duplicate), identical records within one register stay apart (their
    ids numbered), and an order given with other figures in the second register is a conflict (every version
    quarantined, the row loaded before kept by the loader)."""
    first = _sipri({}, {}, {"supplier": "France"}, {"supplier": "Italy"})
    second = _sipri({}, {"supplier": "France"}, {"supplier": "Italy", "tiv_delivered": "30"}, {"supplier": "Sweden"},
                    register="ffee", first_line=40)  # its lines after the first file's: its digest tells it
    alone = _arms(first).valid.get_column("transfer_id").to_list()
    result = _arms(pl.concat([first, second]))
    assert result.rows_in == 8
    assert sorted(result.valid.get_column("transfer_id").to_list()) == sorted(
        [*alone[:3], _arms(second).valid.get_column("transfer_id")[3]])  # both EC135 orders, France, Sweden
    assert sorted(r.split(" natural key")[0] for r in reasons(result)) == [
        "conflicting rows for", "conflicting rows for", "exact duplicate of an earlier row with",
        "exact duplicate of an earlier row with"]
    assert result.conflicts.get_column("transfer_id").to_list() == [alone[3]]  # Italy
    assert all(LINE_COLUMN not in raw and REGISTER_COLUMN not in raw for raw in raws(result))
    # the same file twice (one digest): its lines start again; its records are the first copy's
    twice = _arms(pl.concat([first, first]))
    assert twice.valid.get_column("transfer_id").to_list() == alone and twice.rejected.height == 4
    # one register: identical records are two orders
    assert _arms(_sipri({}, {})).valid.height == 2


def test_the_whole_real_register_loads_orders_older_than_its_deliveries(shared_data):
    """SIPRI covers deliveries from 1950 on, and its register holds orders placed before (1940, 1943): every
    one of its 29,515 records is an order, none rejected."""
    parsed = parse_sipri_register((shared_data / "defence" / "sipri_trade_register_all_2025-03-13.csv").read_bytes())
    result = transform_arms(parsed.frame, "sipri_arms", parsed.source_version, COUNTRIES)
    assert result.rejected.is_empty() and result.valid.height == 29_515
    assert result.valid["transfer_id"].n_unique() == 29_515
    assert sorted(result.valid.filter(pl.col("order_year") < 1945).get_column("order_year").to_list()) == [
        1940, 1940, 1943]


def test_arms_real_japan_subset(shared_data):
    parsed = parse_sipri_register((shared_data / "defence" / "sipri_trade_register_japan_subset.csv").read_bytes())
    result = transform_arms(parsed.frame, "sipri_arms", parsed.source_version, COUNTRIES)
    assert result.valid.height + result.rejected.height == parsed.frame.height == 455
    assert result.rejected.is_empty()
    assert result.valid["transfer_id"].n_unique() == 455
    germany = result.valid.filter(pl.col("supplier") == "Germany")
    assert germany.height == 5
    assert set(germany.select("supplier_iso2", "recipient_iso2").rows()) == {("DE", "JP")}
    brazil = result.valid.filter(pl.col("weapon_designation") == "Barroso Pereira").row(0, named=True)
    assert (brazil["recipient_iso2"], brazil["order_year"], brazil["order_year_uncertain"]) == ("BR", 1953, True)
    assert (brazil["first_delivery_year"], brazil["last_delivery_year"]) == (1955, 1957)
    assert (brazil["tiv_per_unit"], brazil["tiv_total_order"], brazil["tiv_delivered"]) == (38.0, 152.0, 152.0)


def test_two_register_files_of_a_snapshot_folder_share_their_orders(shared_data):
    """A folder holding the Japan register and, beside it, a supplier register of Germany (the same preamble
    and header, Germany's five orders to Japan): 460 records in, 455 orders, the five copies quarantined."""
    from eujp.landing import RawPayload
    from eujp.sources import get_source
    from eujp.stream import parse_and_transform

    japan = (shared_data / "defence" / "sipri_trade_register_japan_subset.csv").read_bytes()
    lines = japan.split(b"\r\n")
    header = next(i for i, line in enumerate(lines) if line.startswith(b"Recipient,"))
    germany = b"\r\n".join([*lines[:header + 1], *(line for line in lines[header + 1:]
                                                    if line.startswith(b"Japan,Germany,")), b""])
    source = get_source("sipri_arms")
    payloads = [RawPayload(source.name, name, data, f"file:///snapshot/{name}") for name, data in (
        ("sipri_trade_register_japan.csv", japan), ("sipri_trade_register_germany_supplier.csv", germany))]
    result, _ = parse_and_transform(source, payloads, COUNTRIES)
    assert result.rows_in == 460 and result.valid.height == 455 and result.conflicts is None
    assert [r.split(" natural key")[0] for r in reasons(result)] == ["exact duplicate of an earlier row with"] * 5
    assert result.valid.filter(pl.col("supplier") == "Germany").height == 5


# --- years bounded by the register's day, never the clock's ------------------------------------------------

TOO_LATE_2025 = "year_of_order 2026 outside 1900..2025; delivery_years: a year outside 1950..2025: '2026'"


def test_arms_without_a_version_bounds_its_years_by_the_day_it_was_fetched_whatever_today_is(monkeypatch):
    """A register without its 'Data generated' line is judged by the day it was fetched (`fetched_on`): the
    transform reads no clock, so the same wire gives the same rows on any day (here 'today' moved to 2031)."""
    import datetime as dt

    import transforms.sipri_arms as module

    wire = _sipri({"year_of_order": "2026", "delivery_years": "2026"}, {})
    fetched = dt.date(2025, 6, 1)
    results = []
    for clock in (dt.date(2025, 6, 1), dt.date(2031, 1, 1)):
        class Today(dt.date):
            @classmethod
            def today(cls, _day=clock):
                return _day

        monkeypatch.setattr(module, "date", Today)
        results.append(transform_arms(wire, "sipri_arms", None, COUNTRIES, fetched_on=fetched))
    for result in results:
        assert result.valid.height == 1
        assert reasons(result) == [TOO_LATE_2025]
    assert results[0].valid.equals(results[1].valid) and results[0].rejected.equals(results[1].rejected)
    # fetched in 2026, the order of 2026 is plausible; the stamp, when there is one, decides
    assert transform_arms(wire, "sipri_arms", None, COUNTRIES, fetched_on=dt.date(2026, 1, 2)).rejected.is_empty()
    assert transform_arms(wire, "sipri_arms", "2025-03-13T10:02:49", COUNTRIES,
                          fetched_on=dt.date(2027, 1, 1)).rejected.height == 1
    with pytest.raises(ValueError, match="needs the day it was fetched"):
        transform_arms(wire, "sipri_arms", None, COUNTRIES)


def test_a_replay_of_an_old_register_judges_its_years_by_that_registers_day(tmp_path):
    """A register without its stamp, landed on 2025-06-01 (fetched that day), holding an order of 2026 (a
    mistyped year then): the replay of that landing from the raw zone rejects it, as the run of that day did,
    whatever day the replay runs; the same bytes landed on 2026-07-01 load it."""
    from datetime import UTC, date, datetime

    from support.pipeline_steps import SNAPSHOT

    from eujp.landing import RawPayload, land, read_landed, record_landing
    from eujp.sources import get_source
    from eujp.storage import LocalObjectStore
    from eujp.stream import parse_and_transform

    source = get_source("sipri_arms")
    data = b"".join(line for line in (SNAPSHOT / "sipri_trade_register_japan.csv").read_bytes()
                    .splitlines(keepends=True) if not line.startswith(b"Data generated"))
    data += b"Japan,Germany,2026,,15,?,EC135,light helicopter,15,,2026,New,For training,2.25,33.75,33.75\r\n"
    store = LocalObjectStore(tmp_path / "store")
    for day in (date(2025, 6, 1), date(2026, 7, 1)):
        payload = RawPayload(source.name, "trade-register.csv", data, "https://mirror.example/trade-register.csv",
                             fetched_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=6)
                             .isoformat(timespec="seconds"))
        land(store, payload, day, source.extension)
        record_landing(store, source.name, day, [payload.sha256], at=datetime(day.year, day.month, day.day, 6,
                                                                              tzinfo=UTC))
    then, now = (parse_and_transform(source, read_landed(store, source.name, day), COUNTRIES)[0]
                 for day in (date(2025, 6, 1), date(2026, 7, 1)))
    assert reasons(then) == [TOO_LATE_2025]
    assert then.valid.height == now.valid.height - 1 and now.rejected.is_empty()
