"""The OECD inventory's live extraction against its recorded response replayed on 127.0.0.1: the watermark,
and the state read from the warehouse."""

from __future__ import annotations

import pytest
from support.live import fetch, settings_for
from support.recordings import RECORDINGS

from eujp.incremental import SourceState
from eujp.live import fetch_live
from eujp.sources import get_source
from eujp.tables import ensure_schema
from eujp.warehouse import connect, write_source_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SCOPE = '{"start": "2009"}'  # what the default settings ask for (a state without it is extracted in full)


def test_incremental_requests_start_at_the_watermark(live, tmp_path):
    fetch("oecd_restrictions", tmp_path, SourceState("oecd_restrictions", watermark="2023",
                                                                 request_scope=SCOPE))
    assert live.seen()[0].param("startPeriod") == "2023" and live.seen()[0].param("endPeriod") == "2025"


def test_fetch_live_reads_the_state_from_the_warehouse(live, tmp_path):
    settings = settings_for(tmp_path, "r1")
    with connect(settings.warehouse_path) as conn:
        ensure_schema(conn)
        write_source_state(conn, SourceState("oecd_restrictions", watermark="2024", request_scope=SCOPE,
                                             etag=RECORDINGS["oecd_restrictions"]["headers"]["ETag"]))
    assert fetch_live(get_source("oecd_restrictions"), settings) == []
    assert live.seen()[0].param("startPeriod") == "2024"
