"""The payload cap (EUJP_MAX_PAYLOAD_MB, per source EUJP_MAX_PAYLOAD_MB_<SOURCE>): a payload over it is refused
before anything of its source is landed; a snapshot file by its size on disk, a live response while it is read
(the client stops reading past the cap). Sources come from the registry, never by a written name."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from eujp.config import Settings, max_payload_bytes, max_payload_mb_env
from eujp.errors import ExtractError, PayloadTooLargeError
from eujp.http import HttpClient, HttpPolicy
from eujp.live import fetch_live
from eujp.sources import SOURCES
from eujp.storage import LocalObjectStore
from flows.tasks import extract_and_land

MB = 2**20
SOURCE = SOURCES[0]


def snapshot_file(folder: Path, source, suffix: str, data: bytes) -> Path:
    path = folder / source.snapshot_glob.replace("*", suffix)
    path.write_bytes(data)
    return path


@pytest.fixture
def big_snapshot(tmp_path) -> Path:
    """A snapshot folder whose first source has a small file, then 50 MB of random bytes."""
    folder = tmp_path / "snapshot"
    folder.mkdir()
    snapshot_file(folder, SOURCE, "-0small", b"small payload\n")
    snapshot_file(folder, SOURCE, "-1big", os.urandom(50 * MB))
    return folder


def run_extract(tmp_path: Path, snapshot: Path):
    settings = Settings(snapshot_dir=snapshot, warehouse_path=tmp_path / "var" / "warehouse.duckdb",
                        publish_uri=str(tmp_path / "store"))
    return extract_and_land.fn(SOURCE.name, settings)  # the task's body: fetch, then land


def test_a_snapshot_file_over_the_cap_is_refused_and_nothing_is_landed(big_snapshot, tmp_path, monkeypatch):
    monkeypatch.setenv("EUJP_MAX_PAYLOAD_MB", "1")
    monkeypatch.delenv(max_payload_mb_env(SOURCE.name), raising=False)
    big = SOURCE.snapshot_glob.replace("*", "-1big")
    with pytest.raises(PayloadTooLargeError) as err:
        run_extract(tmp_path, big_snapshot)
    message = str(err.value)
    assert message.startswith(f"{SOURCE.name}: payload {big} ({big_snapshot / big}) is 52,428,800 bytes (50.0 MB), "
                              "over the 1 MB cap (EUJP_MAX_PAYLOAD_MB): refused, nothing of")
    assert message.endswith(f"raise {max_payload_mb_env(SOURCE.name)} if it is expected")
    assert LocalObjectStore(tmp_path / "store").list_keys("raw") == []  # not even the small file before it


def test_a_spooled_payload_over_the_cap_is_named_by_its_url_not_its_spool_file(tmp_path, monkeypatch):
    """A live answer or a replayed object is a file of a spool (eujp.landing.PayloadSpool): refused, it is named
    by where it came from, not by the run's scratch file."""
    from eujp.landing import PayloadSpool
    from eujp.pipeline import check_payload_sizes

    monkeypatch.setenv("EUJP_MAX_PAYLOAD_MB", "1")
    monkeypatch.delenv(max_payload_mb_env(SOURCE.name), raising=False)
    spooled = PayloadSpool(tmp_path, "eujp-answers-").write(SOURCE.name, "slice 1", b"x" * (2 * MB),
                                                            "https://example.org/data?startPeriod=2025-01")
    with pytest.raises(PayloadTooLargeError, match=r"payload slice 1 \(https://example.org/data\?startPeriod="
                                                   r"2025-01\) is 2,097,152 bytes"):
        check_payload_sizes(SOURCE, [spooled])


def test_the_source_s_own_cap_wins_over_the_general_one(big_snapshot, tmp_path, monkeypatch):
    own = max_payload_mb_env(SOURCE.name)
    assert own == f"EUJP_MAX_PAYLOAD_MB_{SOURCE.name.upper()}"
    monkeypatch.setenv("EUJP_MAX_PAYLOAD_MB", "1")
    monkeypatch.setenv(own, "64")
    payloads, keys = run_extract(tmp_path, big_snapshot)
    assert len(keys) == 2 and [p.size for p in payloads] == [14, 50 * MB]

    monkeypatch.setenv("EUJP_MAX_PAYLOAD_MB", "1024")
    monkeypatch.setenv(own, "0.5")
    with pytest.raises(PayloadTooLargeError, match=rf"over the 0\.5 MB cap \({own}\)"):
        run_extract(tmp_path, big_snapshot)


def test_the_default_cap_and_bad_values():
    assert max_payload_bytes(SOURCE.name, {}) == (1024 * MB, "EUJP_MAX_PAYLOAD_MB")
    for bad in ("0", "-1", "lots", "nan", "inf"):
        with pytest.raises(ValueError, match=rf"EUJP_MAX_PAYLOAD_MB must be a size in MB above 0, got '{bad}'"):
            max_payload_bytes(SOURCE.name, {"EUJP_MAX_PAYLOAD_MB": bad})


def test_a_bad_cap_fails_the_source_with_the_setting_named(big_snapshot, tmp_path, monkeypatch):
    monkeypatch.setenv(max_payload_mb_env(SOURCE.name), "ten")
    with pytest.raises(ExtractError, match=rf"{SOURCE.name}: {max_payload_mb_env(SOURCE.name)} must be a size"):
        run_extract(tmp_path, big_snapshot)


class Endless(httpx.SyncByteStream):
    """50 MB of body, in 64 KiB chunks, counting what was taken."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self):
        chunk = b"x" * (64 * 1024)
        while self.sent < 50 * MB:
            self.sent += len(chunk)
            yield chunk


def test_the_http_client_stops_reading_a_body_past_the_cap():
    body = Endless()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    policy = HttpPolicy(max_body_bytes=1 * MB, max_body_setting="EUJP_MAX_PAYLOAD_MB", max_attempts=3)
    with HttpClient("somesource", policy, transport=transport) as client, \
            pytest.raises(PayloadTooLargeError) as err:
        client.get("http://127.0.0.1:9/data")
    assert body.sent < 2 * MB  # it stopped reading, and did not retry
    assert str(err.value) == ("somesource: GET http://127.0.0.1:9/data: the payload is larger than the 1 MB cap "
                              f"(EUJP_MAX_PAYLOAD_MB): stopped reading after {MB + 64 * 1024:,} bytes; nothing of "
                              "it was landed")

    declared = httpx.MockTransport(lambda request: httpx.Response(200, headers={"content-length": str(50 * MB)},
                                                                  stream=Endless()))
    with HttpClient("somesource", policy, transport=declared) as client, \
            pytest.raises(PayloadTooLargeError, match=r"its Content-Length is 52,428,800 bytes: not read"):
        client.get("http://127.0.0.1:9/data")


@pytest.mark.parametrize("source", [s for s in SOURCES if s.fetch is not None], ids=lambda s: s.name)
def test_every_live_source_refuses_a_response_over_its_cap(source, tmp_path, monkeypatch):
    bodies: list[Endless] = []

    def respond(request: httpx.Request) -> httpx.Response:
        bodies.append(Endless())
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=bodies[-1])

    real = HttpClient
    monkeypatch.setattr("eujp.live.HttpClient", lambda *a, **kw: real(*a, transport=httpx.MockTransport(respond), **kw))
    own = max_payload_mb_env(source.name)
    mirror = {source.endpoint_env: "http://127.0.0.1:9/mirror"}  # no default URL for some: any URL will do
    env = {**mirror, "EUJP_MAX_PAYLOAD_MB": "1024", own: "1"}
    settings = Settings(force=True, warehouse_path=tmp_path / "warehouse.duckdb")
    with pytest.raises(PayloadTooLargeError, match=rf"^{source.name}: GET .*: the payload is larger than the 1 MB cap "
                                                   rf"\({own}\): stopped reading after"):
        fetch_live(source, settings, env=env)
    assert len(bodies) == 1 and bodies[0].sent < 2 * MB

    env = {**mirror, "EUJP_MAX_PAYLOAD_MB": "1"}
    with pytest.raises(PayloadTooLargeError, match=rf"cap \(EUJP_MAX_PAYLOAD_MB; for this source alone: {own}\)"):
        fetch_live(source, settings, env=env)
