"""ext_lt_maineu's live extraction against its recorded response replayed on 127.0.0.1: conditional requests
from the watermark, and --force."""

from __future__ import annotations

import pytest
from support.live import fetch
from support.recordings import RECORDINGS, payload_bytes

from eujp.incremental import SourceState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_incremental_requests_start_at_the_watermark_and_are_conditional(live, tmp_path):
    goods_etag = RECORDINGS["eurostat_goods"]["headers"]["ETag"]
    state = SourceState("eurostat_goods", etag=goods_etag, newest_period="2024", watermark="2022",
                        request_scope='{"geo": ["EU27_2020"]}')  # the default settings' (else: in full)
    assert fetch("eurostat_goods", tmp_path, state) == []  # 304: nothing new
    (seen,) = live.seen()
    assert seen.param("sinceTimePeriod") == "2022" and seen.headers["if-none-match"] == goods_etag

    live.clear_log()  # --force: the full range, unconditionally
    (payload,) = fetch("eurostat_goods", tmp_path, state, force=True)
    (seen,) = live.seen()
    assert seen.param("sinceTimePeriod") is None and "if-none-match" not in seen.headers
    assert payload.read() == payload_bytes("eurostat_goods")
