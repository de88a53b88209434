"""A newer release of ext_lt_maineu saved beside the older one (two cubes, two `updated` stamps), run THROUGH THE
PIPELINE STEPS (tests/support/pipeline_steps.py): the releases are applied in stamp order, as two runs would
have loaded them (eujp.stream.WholeStream): the later figure wins and its change from the figure loaded before is
recorded in etl_revisions; a figure both releases give unchanged is superseded, not rejected. Two cubes of one
stamp that disagree are still conflicting duplicates."""

from __future__ import annotations

import json

from support.pipeline_steps import SNAPSHOT, assert_accounted, payload, quarantined, query, run_steps

from eujp.sources import get_source
from eujp.stream import parse_and_transform

SOURCE = "eurostat_goods"
JP_FILE = "eurostat_ext_lt_maineu_jp.json"
PARTNERS_FILE = "eurostat_ext_lt_maineu_main_partners.json"
OLD_STAMP = "2026-11-24T00:00:00+0100"  # the bundled files'
NEW_STAMP = "2027-01-15T00:00:00+0100"
# (geo, time) of two balances with Japan the later release revises, with their figures in the bundled file
REVISED = {("EU28", "2018"): (-5600.0, -4365.5), ("EU27_2020", "2024"): (3100.0, 4334.5)}


def cell(doc: dict, **codes: str) -> str:
    """The value key of the cell with these codes (the other dimensions have one category each)."""
    index = 0
    for dim, size in zip(doc["id"], doc["size"], strict=True):
        index = index * size + doc["dimension"][dim]["category"]["index"].get(codes.get(dim), 0)
    return str(index)


def release(stamp: str, revised: dict) -> bytes:
    """The bundled Japan cube as released at `stamp`, with the balances `revised` ((geo, time) -> value)."""
    doc = json.loads((SNAPSHOT / JP_FILE).read_bytes())
    doc["updated"] = stamp
    for (geo, time), value in revised.items():
        key = cell(doc, indic_et="MIO_BAL_VAL", geo=geo, time=time)
        assert key in doc["value"]
        doc["value"][key] = value
    return json.dumps(doc).encode()


def payloads(*files: tuple[str, bytes]):
    return [payload(SOURCE, name, data) for name, data in files]


def balances(rows) -> dict:
    return {(r["reporter"], str(r["period_year"])): r["value_mio_eur"] for r in rows
            if r["partner"] == "JP" and r["flow"] == "balance" and (r["reporter"], str(r["period_year"])) in REVISED}


def test_a_later_release_beside_the_earlier_one_wins_and_is_recorded_as_a_revision(warehouse):
    newer = {k: new for k, (_, new) in REVISED.items()}
    batches = run_steps(warehouse, {SOURCE: payloads(
        (JP_FILE, (SNAPSHOT / JP_FILE).read_bytes()), ("eurostat_ext_lt_maineu_jp_2027-01.json",
                                                       release(NEW_STAMP, newer)),
        (PARTNERS_FILE, (SNAPSHOT / PARTNERS_FILE).read_bytes()))})
    batch = batches[SOURCE]
    assert batch.status == "loaded", batch.error
    run = assert_accounted(warehouse, SOURCE)
    # 42 + 42 + 30 wire rows: the 40 figures the later release repeats and the 2 it revises are superseded
    assert (run["status"], run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == ("success", 114, 114, 0)
    assert quarantined(warehouse, SOURCE) == [] and batch.conflicts is None
    assert batch.source_version == NEW_STAMP
    got = query(warehouse, "SELECT reporter, CAST(period_year AS VARCHAR), value_mio_eur FROM fact_goods_trade "
                           "WHERE partner = 'JP' AND flow = 'balance' AND reporter || period_year IN "
                           "('EU282018', 'EU27_20202024') ORDER BY 1")
    assert {(r, y): v for r, y, v in got} == newer
    revisions = query(warehouse, "SELECT natural_key, old_value, new_value FROM etl_revisions WHERE run_id = ? "
                                 "AND source = ? ORDER BY new_value", ["20261125T060000Z-bad001", SOURCE])
    assert [(json.loads(k)["reporter"], json.loads(k)["period_year"], old, new) for k, old, new in revisions] == [
        ("EU28", 2018, -5600.0, -4365.5), ("EU27_2020", 2024, 3100.0, 4334.5)]
    assert query(warehouse, "SELECT count(*) FROM fact_goods_trade") == [(72,)]


def test_the_later_release_wins_whatever_the_order_of_the_files_and_on_a_fresh_warehouse(countries):
    """Transform level (what a fresh warehouse would load): every key once, with the later release's figure."""
    source = get_source(SOURCE)
    older = release(OLD_STAMP, {k: old for k, (old, _) in REVISED.items()})
    newer = release(NEW_STAMP, {k: new for k, (_, new) in REVISED.items()})
    for files in ([("a_new.json", newer), ("b_old.json", older)], [("a_old.json", older), ("b_new.json", newer)]):
        result, version = parse_and_transform(source, payloads(*files), countries)
        assert version == NEW_STAMP
        assert (result.rows_in, result.valid.height, result.rejected.height, result.conflicts) == (84, 42, 0, None)
        assert balances(result.valid.to_dicts()) == {k: new for k, (_, new) in REVISED.items()}


def test_two_cubes_of_one_stamp_that_disagree_are_still_conflicting_duplicates(countries):
    source = get_source(SOURCE)
    older = release(OLD_STAMP, {})
    other = release(OLD_STAMP, {k: new for k, (_, new) in REVISED.items()})
    result, _ = parse_and_transform(source, payloads(("a.json", older), ("b.json", other)), countries)
    assert result.conflicts is not None and result.conflicts.height == 2
    assert balances(result.valid.to_dicts()) == {}  # both versions quarantined: the row loaded before stays
    conflicting = [r for r in result.rejected["reason"] if r.startswith("conflicting rows for natural key")]
    assert len(conflicting) == 4 and result.rejected.height == 4 + 40  # and the 40 exact copies
