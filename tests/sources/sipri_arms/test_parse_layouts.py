"""SIPRI CSV layouts other than the 2025 register header (docs/live-extraction.md, SIPRI): the register with
'Number delivered' published as 'Deliveries in the Year Range' (the 2026 name, per public code and excerpts of
the web front end's exports) reads the same; SIPRI's per-delivery export is rejected by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse.sipri import REGISTER_COLUMN, parse_sipri_register

REPO = Path(__file__).resolve().parents[3]
SNAPSHOT = REPO / "data" / "snapshot" / "sipri_trade_register_japan.csv"
# Preamble, header and first row of the CSV inside SIPRI's backend answer of 10 Feb 2025, decoded from the
# recording in datapumpernickel/Rat.db (tests/fixtures/http/README.md).
PER_DELIVERY = REPO / "tests" / "fixtures" / "http" / "sipri_backend_trade_register_2025-02_excerpt.csv"
NAME_2025 = b"Weapon description,Number delivered, ,"
NAME_2026 = b"Weapon description,Deliveries in the Year Range, ,"


@pytest.fixture(scope="module")
def register() -> bytes:
    data = SNAPSHOT.read_bytes()
    assert data.count(NAME_2025) == 1  # the header's
    return data


def test_deliveries_in_the_year_range_is_number_delivered(register):
    renamed = parse_sipri_register(register.replace(NAME_2025, NAME_2026))
    original = parse_sipri_register(register)
    assert renamed.frame.drop(REGISTER_COLUMN).equals(original.frame.drop(REGISTER_COLUMN))
    assert renamed.frame.height == 455 and renamed.source_version == original.source_version
    assert renamed.frame["number_delivered_flag"].drop_nulls().unique().to_list() == ["?"]


def test_both_names_at_once_is_drift(register):
    both = register.replace(NAME_2025, b"Weapon description,Number delivered, ,Deliveries in the Year Range,")
    with pytest.raises(SchemaDriftError, match="unexpected 'Deliveries in the Year Range'"):
        parse_sipri_register(both)


def test_per_delivery_export_is_rejected_by_name():
    with pytest.raises(ParseError) as info:
        parse_sipri_register(PER_DELIVERY.read_bytes())
    message = str(info.value)
    assert "no header line found" in message  # what tests/integration/test_live_runs.py expects too
    assert "line 12 is the header of SIPRI's per-delivery export" in message
    assert "'SIPRI AT Database ID,Supplier,Recipient" in message and "'Transfer register'" in message
