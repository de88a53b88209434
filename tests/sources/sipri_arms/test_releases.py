"""A newer SIPRI register saved beside the older one (another 'Data generated' stamp), run THROUGH THE PIPELINE
STEPS (tests/support/pipeline_steps.py): the newest register is the extract and the older one is superseded
whole (the source's replace scope ()), not merged with it: an order SIPRI updated since (its delivery years in
its transfer_id) is loaded once, as the newer register gives it, and the orders both registers hold are
superseded, not rejected as copies. Registers of one stamp still share their orders
(test_transform.py::test_two_register_files_of_a_snapshot_folder_share_their_orders)."""

from __future__ import annotations

from support.pipeline_steps import SNAPSHOT, assert_accounted, payload, quarantined, query, run_steps

SOURCE = "sipri_arms"
FILE = "sipri_trade_register_japan.csv"
OLD_LINE = (b"Japan,United States,2012,?,42,,F-35A Lightning-2,FGA aircraft,40,,2016; 2017; 2018; 2019; 2020; "
            b"2021; 2022; 2023; 2024,New,")
NEW_LINE = (b"Japan,United States,2012,?,42,,F-35A Lightning-2,FGA aircraft,42,,2016; 2017; 2018; 2019; 2020; "
            b"2021; 2022; 2023; 2024; 2025,New,")
F35_2012 = ("SELECT number_delivered, last_delivery_year, tiv_delivered, source_version FROM fact_arms_transfers "
            "WHERE weapon_designation = 'F-35A Lightning-2' AND order_year = 2012")


def newer_register() -> bytes:
    data = (SNAPSHOT / FILE).read_bytes()
    assert data.count(OLD_LINE) == 1 and data.count(b"Data generated: 13 Mar 2025 10:02:49 AM") == 1
    data = data.replace(OLD_LINE, NEW_LINE).replace(b"Data generated: 13 Mar 2025 10:02:49 AM",
                                                    b"Data generated: 10 Mar 2026 09:00:00 AM")
    return data.replace(b",55,2310,2200\r\n", b",55,2310,2310.0\r\n")


def test_a_newer_register_beside_the_older_one_is_the_extract_and_the_older_one_is_superseded(warehouse):
    before = query(warehouse, "SELECT count(*) FROM fact_arms_transfers")
    assert query(warehouse, F35_2012) == [(40, 2024, 2200.0, "2025-03-13T10:02:49")]
    # the newer register comes first: the stamps order the registers, not the payloads
    batches = run_steps(warehouse, {SOURCE: [payload(SOURCE, "sipri_trade_register_japan_2026-03.csv",
                                                     newer_register()),
                                             payload(SOURCE, FILE, (SNAPSHOT / FILE).read_bytes())]})
    batch = batches[SOURCE]
    assert batch.status == "loaded", batch.error
    assert batch.source_version == "2026-03-10T09:00:00" and batch.conflicts is None
    run = assert_accounted(warehouse, SOURCE)
    assert (run["status"], run["rows_in"], run["rows_loaded"], run["rows_rejected"]) == ("success", 910, 910, 0)
    assert quarantined(warehouse, SOURCE) == []
    assert query(warehouse, F35_2012) == [(42, 2025, 2310.0, "2026-03-10T09:00:00")]
    assert query(warehouse, "SELECT count(*) FROM fact_arms_transfers") == before
