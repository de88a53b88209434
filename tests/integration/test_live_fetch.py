"""fetch_live against the recorded responses replayed on 127.0.0.1, for every registered source with a
single-request recording (tests/sources/<source>/recording.json): the recorded payload comes back with its URL
and headers; and fetch_live uses the HTTP policy it is given. Each source's own live tests are in its folder."""

from __future__ import annotations

import pytest
from support.live import fetch, settings_for
from support.recordings import RECORDINGS, payload_bytes, sliced
from support.replay_server import Reply

from eujp.errors import ExtractError
from eujp.http import HttpPolicy
from eujp.live import fetch_live
from eujp.sources import SOURCES, get_source

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("loopback_only")]

SINGLE_REQUEST = [s.name for s in SOURCES if s.name in RECORDINGS and not sliced(RECORDINGS[s.name])]


def test_every_live_source_has_a_recording():
    assert {s.name for s in SOURCES if s.fetch is not None} <= set(RECORDINGS)


@pytest.mark.parametrize("name", SINGLE_REQUEST)
def test_single_request_sources_return_the_recorded_payload_with_url_and_headers(live, tmp_path, name):
    (payload,) = fetch(name, tmp_path)
    assert payload.read() == payload_bytes(name)
    assert payload.url.startswith(live.url + RECORDINGS[name]["path"])
    recorded = {k.lower(): v for k, v in RECORDINGS[name]["headers"].items()}
    assert {k: payload.headers[k] for k in recorded} == recorded
    if RECORDINGS[name].get("gzip"):
        assert payload.headers["content-encoding"] == "gzip"


def test_fetch_live_uses_the_policy_it_is_given(live, tmp_path):
    name = SINGLE_REQUEST[0]
    live.route(RECORDINGS[name]["path"], Reply(503, b"x"))
    policy = HttpPolicy(max_attempts=2, backoff_base=0.001, budget_seconds=5)
    with pytest.raises(ExtractError, match="failed after 2 attempt"):
        fetch_live(get_source(name), settings_for(tmp_path, "p"), policy=policy, sleep=lambda s: None)
