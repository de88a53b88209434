"""The events file's live plan: by default the curated file in the repository (a file:// URL, no server)."""

from __future__ import annotations

import pytest
from support.live import fetch
from support.recordings import REPO

from eujp.sources.security_events import ENDPOINT

pytestmark = pytest.mark.usefixtures("loopback_only")


def test_default_endpoint_is_the_curated_file():
    assert ENDPOINT.base_url({}).startswith("file://") and ENDPOINT.base_url({}).endswith("security_events.csv")


def test_events_default_to_the_curated_file_in_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("EUJP_EVENTS_URL", raising=False)
    (payload,) = fetch("security_events", tmp_path)
    assert payload.read() == (REPO / "data" / "snapshot" / "security_events.csv").read_bytes()
    assert payload.url.startswith("file://")
