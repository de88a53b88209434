"""Object stores (a folder) and the raw landing zone. The same store tests on S3 (a moto server):
tests/integration/test_storage_s3.py."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from eujp.errors import ExtractError
from eujp.landing import RawPayload, land, landed_days, read_landed, record_landing
from eujp.sources import security_events, sipri_arms
from eujp.storage import LocalObjectStore, check_key, open_store

# The sources these tests land or read, by their modules (a source's name is written in its own folder only).
SIPRI, EVENTS = sipri_arms.SOURCE, security_events.SOURCE


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/abs", "a//b", "a/./b", "a\\b", "", "a/b c"])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(ValueError, match="unsafe object key"):
        check_key(key)


def test_safe_keys_pass():
    assert check_key("runs/20261124T060000Z-abc123/parquet/fact_goods_trade.parquet")


@pytest.fixture
def store(tmp_path):
    """The store the contract tests run on (tests/integration/test_storage_s3.py runs them on S3)."""
    return LocalObjectStore(tmp_path / "objects")


def test_put_get_list_delete_roundtrip(store, tmp_path):
    obj = store.put_bytes("a/b.json", b'{"x": 1}', "application/json")
    assert obj.size == 8 and len(obj.sha256) == 64
    f = tmp_path / "big.bin"
    f.write_bytes(b"\x00\x01" * 300_000)
    big = store.put_file("a/c/big.bin", f)
    assert big.size == 600_000
    assert store.get_bytes("a/b.json") == b'{"x": 1}'
    assert store.exists("a/c/big.bin") and not store.exists("a/missing")
    assert store.stat("a/c/big.bin").sha256 == big.sha256
    assert store.list_keys("a") == ["a/b.json", "a/c/big.bin"]
    store.delete(["a/b.json"])
    assert store.list_keys("a") == ["a/c/big.bin"]


def test_copy_makes_a_verified_copy_of_an_object(store, tmp_path):
    """`copy` (the latest/ aliases): the destination holds the source's bytes, and says so; a missing source is an
    error naming it. On S3 (tests/integration/test_storage_s3.py) the copy is the service's, 17 MB a multipart one."""
    f = tmp_path / "big.bin"
    f.write_bytes(bytes(range(256)) * (17 * 4096))  # 17 MB: beyond the 8 MB part size
    put = store.put_file("runs/r1/big.bin", f)
    small = store.put_bytes("runs/r1/m.json", b'{"run": 1}')
    assert store.copy("runs/r1/big.bin", "latest/big.bin") == put.__class__("latest/big.bin", put.size, put.sha256)
    assert store.copy("runs/r1/m.json", "latest/m.json").sha256 == small.sha256
    assert store.get_bytes("latest/big.bin") == f.read_bytes() and store.get_bytes("latest/m.json") == b'{"run": 1}'
    assert store.stat("latest/big.bin").sha256 == put.sha256
    store.put_bytes("runs/r2/m.json", b'{"run": 2}')  # a copy replaces what the key held
    store.copy("runs/r2/m.json", "latest/m.json")
    assert store.get_bytes("latest/m.json") == b'{"run": 2}'
    with pytest.raises(Exception, match="runs/r3/missing.json"):
        store.copy("runs/r3/missing.json", "latest/x.json")
    assert not store.exists("latest/x.json")


def test_open_store_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="unsupported publish URI"):
        open_store("gs://bucket/x")
    with pytest.raises(ValueError, match="names no bucket"):
        open_store("s3:///x")


def test_landing_is_content_addressed_and_replayable(store):
    day = date(2026, 11, 24)
    p1 = RawPayload(SIPRI.name, "register.csv", b"a,b\r\n1,2\r\n", "https://example.org/r.csv",
                    {"ETag": '"abc"'})
    key = land(store, p1, day, "csv")
    assert key == f"raw/{SIPRI.name}/2026-11-24/{p1.sha256}.csv"
    assert land(store, p1, day, "csv") == key  # same bytes: same object, no duplicate
    assert len([k for k in store.list_keys("raw") if k.endswith(".csv")]) == 1
    back = read_landed(store, SIPRI.name, day)
    assert [(b.read(), b.url, b.headers) for b in back] == [(p1.read(), p1.url, {"ETag": '"abc"'})]
    assert landed_days(store, SIPRI.name) == [day]
    with pytest.raises(ExtractError, match="nothing was landed"):
        read_landed(store, SIPRI.name, date(2026, 11, 23))


def test_many_payloads_are_landed_side_by_side_each_under_its_key(store, tmp_path, monkeypatch):
    """land_many: the small payloads on threads, a large one on the caller's thread, every key the one `land`
    gives, in payload order, and every object the payload's bytes; a payload repeating an earlier one's bytes
    landed after the others (the metadata names the first, as one by one); an error of one payload is raised."""
    import threading

    from eujp import landing

    day = date(2026, 11, 24)
    payloads = [RawPayload(SIPRI.name, f"part{i}.csv", f"a,b\r\n{i},2\r\n".encode(), f"https://example.org/{i}")
                for i in range(12)]
    big = tmp_path / "big.csv"
    big.write_bytes(b"a,b\r\n" + b"7,8\r\n" * 40)
    payloads.insert(5, RawPayload.from_file(SIPRI.name, big))
    # the same bytes as part3.csv under another name, landed after it: the object's metadata names part3.csv
    payloads.append(RawPayload(SIPRI.name, "same-as-part3.csv", payloads[3].read(), "https://example.org/again"))
    monkeypatch.setattr(landing, "LAND_PARALLEL_BYTES", 100)  # the file (246 bytes) is "large"
    threads: dict[str, str] = {}
    real_land = landing.land

    def land(store, payload, day, ext):
        threads[payload.name] = threading.current_thread().name
        return real_land(store, payload, day, ext)

    monkeypatch.setattr(landing, "land", land)
    keys = landing.land_many(store, payloads, day, lambda p: "csv")
    assert keys == [f"raw/{SIPRI.name}/2026-11-24/{p.sha256}.csv" for p in payloads]
    assert [store.get_bytes(k) for k in keys] == [p.read() for p in payloads]
    assert threads["big.csv"] == threads["same-as-part3.csv"] == threading.current_thread().name
    assert keys[-1] == keys[3] and json.loads(store.get_bytes(keys[3].removesuffix(".csv") + ".meta.json"))[
        "name"] == "part3.csv"
    assert {threads[f"part{i}.csv"] for i in range(12)} <= {f"eujp-land_{n}" for n in range(landing.LAND_THREADS)}

    def refuse(store, payload, day, ext):
        if payload.name == "part7.csv":
            raise ExtractError("part7.csv refused")
        return real_land(store, payload, day, ext)

    monkeypatch.setattr(landing, "land", refuse)
    with pytest.raises(ExtractError, match="part7.csv refused"):
        landing.land_many(store, payloads, day, lambda p: "csv")


def test_a_replay_fetches_its_objects_side_by_side_in_landing_order(store, tmp_path, monkeypatch):
    """read_landed: the landed objects fetched on threads, each once (one landed by two landings too), and
    given back landing by landing in the order they landed, with their own names and bytes."""
    import threading

    from eujp.landing import PayloadSpool

    day = date(2026, 11, 24)
    first = [RawPayload(SIPRI.name, f"a{i}.csv", f"a,b\r\n{i},1\r\n".encode(), f"https://example.org/a{i}")
             for i in range(9)]
    second = [first[4], RawPayload(SIPRI.name, "b.csv", b"a,b\r\n9,9\r\n", "https://example.org/b")]
    for landing_payloads in (first, second):
        for p in landing_payloads:
            land(store, p, day, "csv")
        record_landing(store, SIPRI.name, day, [p.sha256 for p in landing_payloads])
    fetched: list[tuple[str, str]] = []
    real_fetch = PayloadSpool.fetch

    def fetch(self, store, key, sha256, source, name, *args, **kwargs):
        fetched.append((name, threading.current_thread().name))
        return real_fetch(self, store, key, sha256, source, name, *args, **kwargs)

    monkeypatch.setattr(PayloadSpool, "fetch", fetch)
    back = read_landed(store, SIPRI.name, day, tmp_path / "spool")
    assert [(b.name, b.landing, b.read()) for b in back] == [
        *((p.name, 0, p.read()) for p in first), *((p.name, 1, p.read()) for p in second)]
    assert sorted(n for n, _ in fetched) == sorted(p.name for p in [*first, second[1]])  # each object once
    assert {t for _, t in fetched} <= {f"eujp-fetch_{n}" for n in range(4)}


def test_a_days_landings_are_read_back_in_the_order_they_landed(store):
    """Three runs on one day land A, then B (a revision), then A again (reverted): read back A, B, A, each with
    its landing number; a repeated landing in a row (an unchanged source landed again) counts once."""
    day = date(2026, 11, 24)

    def run(hour: int, *contents: bytes) -> None:
        payloads = [RawPayload(SIPRI.name, "register.csv", c, "https://example.org/r.csv") for c in contents]
        for p in payloads:
            land(store, p, day, "csv")
        record_landing(store, SIPRI.name, day, [p.sha256 for p in payloads],
                       at=datetime(2026, 11, 24, hour, tzinfo=UTC))

    a, b = b"a,b\r\n1,2\r\n", b"a,b\r\n1,3\r\n"
    run(6, a)
    run(7, a)  # unchanged: the same landing again
    run(9, a)  # recorded out of order on purpose: it is the time that orders the landings
    run(8, b)
    back = read_landed(store, SIPRI.name, day)
    assert [(p.landing, p.read()) for p in back] == [(0, a), (1, b), (2, a)]
    records = [json.loads(store.get_bytes(k)) for k in store.list_keys(f"raw/{SIPRI.name}")
               if k.endswith(".landing.json")]
    # one record per distinct landing, holding every time it landed
    assert sorted((len(r["landed_at"]), r["sha256"]) for r in records) == [
        (1, [hashlib.sha256(b).hexdigest()]), (3, [hashlib.sha256(a).hexdigest()])]


def test_a_replayed_payload_is_a_file_of_the_spool_not_bytes_held(store, tmp_path):
    """A replay fetches each landed object into a spool folder under the run's spill folder (downloaded in parts
    from S3, linked from a local store's object) and checks it there: file-backed payloads, never the day's bytes
    in memory; the folder goes with the last payload that refers to it."""
    day = date(2026, 11, 24)
    body = b"DATAFLOW,OBS_VALUE\r\n" + b"".join(b"ESTAT:DS-045409(1.0),%d\r\n" % i for i in range(400_000))
    assert len(body) > 9 * 2**20  # more than one part of an S3 transfer
    land(store, RawPayload(SIPRI.name, "big.csv", body, "https://example.org/big.csv"), day, "csv")
    (back,) = read_landed(store, SIPRI.name, day, tmp_path / "spill")
    assert back.data is None and back.path.parent.parent == tmp_path / "spill"
    assert back.read() == body and back.sha256 == hashlib.sha256(body).hexdigest() and back.url.endswith("big.csv")
    folder = back.path.parent
    del back
    gc.collect()
    assert not folder.exists()


def test_an_adopted_file_is_stored_under_its_key_once(store, tmp_path):
    """adopt_file: a file this run wrote (a spooled answer) stored under a key, once; the folder store links it
    (no byte copied), S3 uploads it and checks it against the given sha256."""
    body = b"a,b\r\n" * 300_000
    path = tmp_path / "answer.body"
    path.write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    obj = store.adopt_file("raw/x/answer.csv", path, digest)
    assert (obj.key, obj.size, obj.sha256) == ("raw/x/answer.csv", len(body), digest)
    assert store.get_bytes("raw/x/answer.csv") == body
    assert store.adopt_file("raw/x/answer.csv", path, digest).size == len(body)  # kept, not stored twice
    assert store.list_keys("raw/x") == ["raw/x/answer.csv"]
    if isinstance(store, LocalObjectStore):
        assert (store.root / "raw/x/answer.csv").stat().st_ino == path.stat().st_ino


def test_payloads_landed_without_a_landing_record_are_one_landing_first(store):
    """A raw zone written before landings were recorded: its payloads are one landing, in fetch order, before the
    recorded ones; a record naming a payload that is not there is an error, not a silent gap."""
    day = date(2026, 11, 24)
    old = [RawPayload(EVENTS.name, f"{n}.csv", f"x{n}".encode(), "file:///e.csv",
                      fetched_at=f"2026-11-24T0{n}:00:00+00:00") for n in (2, 1)]
    for p in old:
        land(store, p, day, "csv")
    new = RawPayload(EVENTS.name, "3.csv", b"x3", "file:///e.csv")
    land(store, new, day, "csv")
    record_landing(store, EVENTS.name, day, [new.sha256])
    assert [(p.name, p.landing) for p in read_landed(store, EVENTS.name, day)] == [("1.csv", 0), ("2.csv", 0),
                                                                                   ("3.csv", 1)]
    record_landing(store, EVENTS.name, day, ["0" * 64])
    with pytest.raises(ExtractError, match=f"lists payload {'0' * 64}, which is not there"):
        read_landed(store, EVENTS.name, day)


def test_tampered_landed_payload_is_detected(tmp_path):
    store = LocalObjectStore(tmp_path)
    p = RawPayload("events", "e.csv", b"x", "file:///e.csv")
    key = land(store, p, date(2026, 1, 1), "csv")
    (tmp_path / key).write_bytes(b"y")
    with pytest.raises(ExtractError, match="does not match its sha256"):
        read_landed(store, "events", date(2026, 1, 1))


def _land_again(store, tmp_path, how: str, body: bytes) -> str:
    """Land `body` for SIPRI on 2026-01-02 as `how` says: bytes in memory, a file of a spool (a live answer), or a
    snapshot file over LAND_WHOLE_BYTES not hashed yet (stored by `put_file_addressed`)."""
    from unittest.mock import patch

    import eujp.landing
    from eujp.landing import PayloadSpool

    if how == "bytes":
        payload = RawPayload(SIPRI.name, "s.csv", body, "https://example.org/s.csv")
    elif how == "spool":
        payload = PayloadSpool(tmp_path / "spool", "eujp-test-").write(SIPRI.name, "s.csv", body,
                                                                       "https://example.org/s.csv")
    else:
        (tmp_path / "snap").mkdir(exist_ok=True)
        (tmp_path / "snap" / "s.csv").write_bytes(body)
        payload = RawPayload.from_file(SIPRI.name, tmp_path / "snap" / "s.csv")
    with patch.object(eujp.landing, "LAND_WHOLE_BYTES", 0):
        return land(store, payload, date(2026, 1, 2), "csv")


def _damage(store, key: str, data: bytes, *, cut_and_pad: bool = False) -> None:
    """Change the object at `key` behind the store's back, keeping its size: a folder's file written in place (or
    cut short and padded back to its size), an S3 object put over by another client (without our metadata)."""
    if isinstance(store, LocalObjectStore):
        with open(store.root / key, "r+b") as f:
            if cut_and_pad:
                f.truncate(len(data) // 2)
                f.seek(0, os.SEEK_END)
                f.write(b"\0" * (len(data) - len(data) // 2))
            else:
                f.write(data)
    else:
        store.client.put_object(Bucket=store.bucket, Key=store._key(key), Body=data)


@pytest.mark.parametrize("how", ["bytes", "spool", "file"])
def test_landing_the_same_bytes_again_replaces_a_damaged_object(store, tmp_path, caplog, how):
    """An object already under the payload's key whose size is not the payload's (cut short on the disk, say) is
    damaged: landing the same bytes again writes them over it, with a warning, instead of keeping it."""
    body = b"a,b\r\n" + b"1,2\r\n" * 1000
    key = _land_again(store, tmp_path, how, body)
    store.put_bytes(key, body[:100])  # damaged in place
    with caplog.at_level("WARNING", logger="eujp"):
        assert _land_again(store, tmp_path, how, body) == key
    assert store.get_bytes(key) == body
    assert f"raw-zone object {store.uri}/{key} is damaged (100 bytes" in caplog.text
    (back,) = read_landed(store, SIPRI.name, date(2026, 1, 2), tmp_path / "spill")
    assert back.read() == body


@pytest.mark.parametrize("how", ["bytes", "spool", "file"])
@pytest.mark.parametrize("cut_and_pad", [False, True])
def test_landing_the_same_bytes_again_repairs_an_object_of_the_same_size_changed_behind_the_store(
        store, tmp_path, caplog, how, cut_and_pad):
    """An object of the payload's size that no longer holds its bytes (a folder's file edited in place, or cut
    short and padded back to its size; an S3 object put over by another client) is damaged: landing the same
    bytes again writes them over it, with a warning naming its key. A folder tells it by the digest it keeps
    with the file, which the file's new mtime no longer vouches for (so it hashes the file); S3 by the sha256
    metadata the object lacks."""
    body = b"a,b\r\n" + b"1,2\r\n" * 1000
    key = _land_again(store, tmp_path, how, body)
    _damage(store, key, body.replace(b"2", b"3"), cut_and_pad=cut_and_pad)
    assert store.get_bytes(key) != body and len(store.get_bytes(key)) == len(body)
    with caplog.at_level("WARNING", logger="eujp"):
        assert _land_again(store, tmp_path, how, body) == key
    assert store.get_bytes(key) == body
    assert f"raw-zone object {store.uri}/{key} is damaged ({len(body)} bytes, sha256 " in caplog.text
    (back,) = read_landed(store, SIPRI.name, date(2026, 1, 2), tmp_path / "spill")
    assert back.read() == body


def test_landing_the_same_bytes_again_replaces_an_object_whose_stored_sha256_differs(store, tmp_path, caplog):
    """A store keeps each object's sha256 (S3's metadata: tests/integration/test_storage_s3.py; a folder's record
    with the file): it tells a damaged object of the same size by it, without reading it."""
    body = b"a,b\r\n1,2\r\n"
    key = _land_again(store, tmp_path, "bytes", body)
    store.put_bytes(key, body.replace(b"2", b"3"))
    assert store.stat(key, digest=False).sha256 == hashlib.sha256(body.replace(b"2", b"3")).hexdigest()
    with caplog.at_level("WARNING", logger="eujp"):
        _land_again(store, tmp_path, "bytes", body)
    assert store.get_bytes(key) == body and "is damaged" in caplog.text


@pytest.mark.parametrize("damage", ["not JSON", "another payload's", "no name"])
def test_landing_the_same_bytes_again_rewrites_a_damaged_meta_json(store, tmp_path, caplog, damage):
    """A payload's `.meta.json` that is not what this code wrote for its bytes (broken JSON, the metadata of other
    bytes, a field a replay reads missing) is written again by a landing of the same bytes, with a warning; an
    intact one is kept (it names the first landing of those bytes)."""
    body = b"a,b\r\n1,2\r\n"
    key = _land_again(store, tmp_path, "bytes", body)
    meta_key = key.removesuffix(".csv") + ".meta.json"
    meta = json.loads(store.get_bytes(meta_key))
    broken = {"not JSON": b'{"broken', "another payload's": json.dumps(meta | {"sha256": "0" * 64}).encode(),
              "no name": json.dumps({k: v for k, v in meta.items() if k != "name"}).encode()}[damage]
    store.put_bytes(meta_key, broken)
    with caplog.at_level("WARNING", logger="eujp"):
        _land_again(store, tmp_path, "bytes", body)
    rewritten = json.loads(store.get_bytes(meta_key))  # this landing's: its fetch time
    assert rewritten.pop("fetched_at") >= meta.pop("fetched_at") and rewritten == meta
    assert f"raw-zone object {store.uri}/{meta_key} is damaged" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="eujp"):
        _land_again(store, tmp_path, "bytes", body)
    assert "is damaged" not in caplog.text
    (back,) = read_landed(store, SIPRI.name, date(2026, 1, 2), tmp_path / "spill")
    assert back.read() == body


def test_an_intact_folder_object_landed_again_is_not_read(tmp_path, monkeypatch):
    """The digest a folder keeps with an object vouches for it while the file's size and mtime are unchanged: a
    landing of the same bytes again (a day with nothing new: a 1 GB answer) reads none of the object's bytes."""
    import eujp.storage

    store = LocalObjectStore(tmp_path / "objects")
    body = b"a,b\r\n" + b"1,2\r\n" * 1000
    key = _land_again(store, tmp_path, "spool", body)
    monkeypatch.setattr(eujp.storage, "sha256_file", lambda path: pytest.fail(f"{path} hashed"))
    assert _land_again(store, tmp_path, "spool", body) == key
    assert store.stat(key, digest=False).sha256 == hashlib.sha256(body).hexdigest()


def test_a_folder_object_rotten_in_place_fails_its_replay_and_is_repaired_by_its_next_landing(tmp_path, caplog):
    """Bit rot changes a file's bytes but not its size or times: a landing again, which does not read an object
    its kept digest vouches for, cannot tell it. The replay reads every object and fails naming the key; the
    digest the store keeps is then the rotten file's, so the next landing of the same bytes writes them over it."""
    store = LocalObjectStore(tmp_path / "objects")
    body = b"a,b\r\n" + b"1,2\r\n" * 1000
    key = _land_again(store, tmp_path, "spool", body)
    path = store.root / key
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(7)
        f.write(b"9")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # rot: the bytes change, the times do not
    with pytest.raises(ExtractError, match=f"landed payload {store.uri}/{key} does not match its sha256"):
        read_landed(store, SIPRI.name, date(2026, 1, 2), tmp_path / "spill")
    with caplog.at_level("WARNING", logger="eujp"):
        _land_again(store, tmp_path, "spool", body)
    assert f"raw-zone object {store.uri}/{key} is damaged" in caplog.text
    assert path.read_bytes() == body
    (back,) = read_landed(store, SIPRI.name, date(2026, 1, 2), tmp_path / "spill")
    assert back.read() == body


@pytest.mark.parametrize("damage", ["meta", "record", "payload"])
def test_a_damaged_raw_zone_is_an_error_naming_the_object(tmp_path, damage):
    """A broken .meta.json or .landing.json, or a payload object gone: ExtractError naming the raw-zone key
    (not a bare JSONDecodeError or FileNotFoundError)."""
    store = LocalObjectStore(tmp_path)
    day = date(2026, 1, 1)
    p = RawPayload(EVENTS.name, "e.csv", b"x", "file:///e.csv")
    key = land(store, p, day, "csv")
    record = record_landing(store, EVENTS.name, day, [p.sha256])
    broken = {"meta": key.removesuffix(".csv") + ".meta.json", "record": record, "payload": key}[damage]
    if damage == "payload":
        (tmp_path / broken).unlink()
    else:
        (tmp_path / broken).write_text('{"broken')
    with pytest.raises(ExtractError, match=f"{EVENTS.name}: raw-zone object {store.uri}/{broken} is missing or "
                                           "unreadable"):
        read_landed(store, EVENTS.name, day, tmp_path / "spill")


def test_snapshot_payloads_are_read_from_their_files_not_held(tmp_path):
    """A snapshot file is hashed in blocks and read when it is landed or parsed: the payload holds no bytes."""
    from eujp.extract import read_snapshot

    snap = tmp_path / "snap"
    snap.mkdir()
    body = b"date,precision\r\n" * 1000
    (snap / "security_events.csv").write_bytes(body)
    [payload] = read_snapshot(EVENTS, snap)
    assert payload.data is None and payload.size == len(body)
    assert payload.sha256 == hashlib.sha256(body).hexdigest()
    store = LocalObjectStore(tmp_path / "store")
    key = land(store, payload, date(2026, 11, 24), "csv")
    assert (tmp_path / "store" / key).read_bytes() == body == payload.read()
    meta = json.loads((tmp_path / "store" / key.replace(".csv", ".meta.json")).read_text())
    assert meta["size"] == len(body) and meta["url"] == (snap / "security_events.csv").resolve().as_uri()


def test_a_snapshot_file_changed_while_the_run_reads_it_is_an_error(tmp_path):
    from eujp.extract import read_snapshot

    snap = tmp_path / "snap"
    snap.mkdir()
    path = snap / "security_events.csv"
    path.write_bytes(b"a,b\r\n1,2\r\n")
    [payload] = read_snapshot(EVENTS, snap)
    path.write_bytes(b"a,b\r\n1,2\r\n3,4\r\n")  # a writer still filling the folder
    with pytest.raises(ExtractError, match="changed while this run was reading it"):
        payload.read()
    with pytest.raises(ExtractError, match="changed while this run was reading it"):
        land(LocalObjectStore(tmp_path / "store"), payload, date(2026, 11, 24), "csv")


def test_a_snapshot_file_unchanged_since_it_was_hashed_is_not_read_again(tmp_path, monkeypatch):
    """FileDigests: the second day finds the file's sha256 by its stat, lands nothing and reads no byte; a file
    rewritten (even with the same bytes) or touched is hashed again; a corrupt digests file is ignored."""
    import os
    import time

    from eujp.extract import read_snapshot
    from eujp.landing import FileDigests, RawPayload

    snap, store = tmp_path / "snap", LocalObjectStore(tmp_path / "store")
    snap.mkdir()
    path = snap / "security_events.csv"
    body = b"date,precision\r\n" * 1000
    path.write_bytes(body)
    [racy] = read_snapshot(EVENTS, snap, FileDigests(tmp_path / "var" / "snapshot-digests.jsonl"))
    assert racy.sha256 == hashlib.sha256(body).hexdigest()
    assert not (tmp_path / "var" / "snapshot-digests.jsonl").exists()  # written < 2 s ago: not remembered
    monkeypatch.setattr(FileDigests, "RACY_NS", 0)  # (instead of waiting 2 s; writes below are 50 ms apart)
    digests_file = tmp_path / "var" / "snapshot-digests.jsonl"
    day = date(2026, 11, 24)
    [first] = read_snapshot(EVENTS, snap, FileDigests(digests_file))
    key = land(store, first, day, "csv")
    assert first.sha256 == hashlib.sha256(body).hexdigest()
    [line] = digests_file.read_text().splitlines()  # one line appended per file hashed
    assert json.loads(line)["path"] == str(path.resolve()) and json.loads(line)["sha256"] == first.sha256

    reads = []
    real_read = RawPayload.read
    monkeypatch.setattr(RawPayload, "read", lambda self: reads.append(self.name) or real_read(self))
    monkeypatch.setattr(hashlib, "file_digest", lambda *a, **k: reads.append("hashed") or None)
    [second] = read_snapshot(EVENTS, snap, FileDigests(digests_file))
    assert land(store, second, day, "csv") == key
    assert second.sha256 == first.sha256 and reads == []

    # The same bytes written again: a new ctime (and mtime), so the file is read and hashed, and lands as before.
    monkeypatch.undo()
    monkeypatch.setattr(FileDigests, "RACY_NS", 0)
    time.sleep(0.05)  # past the file system's time granularity
    path.write_bytes(body)
    [third] = read_snapshot(EVENTS, snap, FileDigests(digests_file))
    assert third.known_sha256() is None
    assert land(store, third, day, "csv") == key
    # Other bytes of the same size with the old times put back (os.utime): ctime still tells.
    st = path.stat()
    time.sleep(0.05)
    path.write_bytes(body.replace(b"date", b"DATE", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    [fourth] = read_snapshot(EVENTS, snap, FileDigests(digests_file))
    assert fourth.known_sha256() is None
    assert fourth.sha256 == hashlib.sha256(body.replace(b"date", b"DATE", 1)).hexdigest()

    digests_file.write_text("{not json")
    [fifth] = read_snapshot(EVENTS, snap, FileDigests(digests_file))
    assert fifth.known_sha256() is None and fifth.sha256 == fourth.sha256


def test_file_digests_append_one_line_per_file_and_compact_when_read(tmp_path, monkeypatch):
    """FileDigests is a journal: remembering a file appends one line (landing n files writes n lines, not
    n²/2 entries); the last line of a path wins; a broken line (a run killed mid-write) is skipped; a journal
    far longer than its paths is written again, compacted, when it is read, and knows the same digests."""
    import os

    from eujp.landing import FileDigests

    monkeypatch.setattr(FileDigests, "RACY_NS", 0)
    monkeypatch.setattr(FileDigests, "COMPACT_SLACK", 1)
    journal = tmp_path / "var" / "snapshot-digests.jsonl"
    files = []
    for i in range(4):
        files.append(tmp_path / f"f{i}.csv")
        files[-1].write_bytes(b"x" * i)
    digests = FileDigests(journal)
    for i, f in enumerate(files):
        digests.remember(f, f.stat(), f"{i:064x}")
    assert len(journal.read_text().splitlines()) == 4
    for _ in range(5):  # the same file hashed again and again: the last line wins
        digests.remember(files[0], files[0].stat(), "e" * 64)
    with journal.open("ab") as f:
        f.write(b'{"path": "/cut short')
    assert len(journal.read_bytes().splitlines()) == 10
    again = FileDigests(journal)  # 10 lines > 2 x 4 paths + 1: compacted
    assert len(journal.read_bytes().splitlines()) == 4
    assert again.known(files[0], files[0].stat()) == "e" * 64
    assert [again.known(f, f.stat()) for f in files[1:]] == [f"{i:064x}" for i in (1, 2, 3)]
    os.utime(files[1], ns=(0, 0))  # another stat: not known
    assert FileDigests(journal).known(files[1], files[1].stat()) is None


def test_file_digests_forget_deleted_files_when_read(tmp_path, monkeypatch):
    """A journal of more than COMPACT_SLACK paths drops, when it is read, the lines of files that no longer
    exist (a snapshot folder whose old files are deleted does not grow it for ever); the other files' digests
    are still known, and a journal whose files all exist is not written again."""
    from eujp.landing import FileDigests

    monkeypatch.setattr(FileDigests, "RACY_NS", 0)
    monkeypatch.setattr(FileDigests, "COMPACT_SLACK", 2)
    journal = tmp_path / "var" / "snapshot-digests.jsonl"
    files = [tmp_path / f"f{i}.csv" for i in range(4)]
    digests = FileDigests(journal)
    for i, f in enumerate(files):
        f.write_bytes(b"x" * i)
        digests.remember(f, f.stat(), f"{i:064x}")
    written = journal.stat().st_mtime_ns
    again = FileDigests(journal)  # every file there: read, not written
    assert journal.stat().st_mtime_ns == written and len(journal.read_bytes().splitlines()) == 4
    assert again.known(files[0], files[0].stat()) == f"{0:064x}"
    files[1].unlink()
    files[2].unlink()
    after = FileDigests(journal)
    assert [json.loads(line)["path"] for line in journal.read_bytes().splitlines()] == [
        str(files[0].resolve()), str(files[3].resolve())]
    assert [after.known(f, f.stat()) for f in (files[0], files[3])] == [f"{0:064x}", f"{3:064x}"]


def test_duckdb_memory_limit_is_configurable_and_checked(tmp_path, monkeypatch):
    from eujp.warehouse import connect

    monkeypatch.setenv("EUJP_DUCKDB_MEMORY_LIMIT", "512MB")
    with connect(tmp_path / "w.duckdb") as conn:
        assert conn.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("488.2 MiB", "512.0 MB")
    monkeypatch.setenv("EUJP_DUCKDB_MEMORY_LIMIT", "2GB'; DROP TABLE x; --")
    with pytest.raises(ValueError, match="EUJP_DUCKDB_MEMORY_LIMIT must be a size"):
        connect(tmp_path / "w.duckdb")


def test_a_snapshot_file_over_the_landing_bound_is_landed_from_the_file_never_read_whole(tmp_path, monkeypatch):
    """A payload file can be larger than memory: over LAND_WHOLE_BYTES (here 0), its landing hashes it in blocks
    and the store copies it from the file; no step reads it whole. A file rewritten between its hash and its
    copy leaves no object under the hash it no longer has."""
    from pathlib import Path

    import eujp.landing
    from eujp.extract import read_snapshot

    monkeypatch.setattr(eujp.landing, "LAND_WHOLE_BYTES", 0)

    snap = tmp_path / "snap"
    snap.mkdir()
    path = snap / "security_events.csv"
    body = b"date,precision\r\n" * 5000
    path.write_bytes(body)
    real_read_bytes = Path.read_bytes  # a payload is never read whole (its small .meta.json is, when landed again)
    monkeypatch.setattr(Path, "read_bytes", lambda self: real_read_bytes(self) if self.name.endswith(".meta.json")
                        else pytest.fail(f"{self} read whole"))
    [payload] = read_snapshot(EVENTS, snap)
    store = LocalObjectStore(tmp_path / "store")
    key = land(store, payload, date(2026, 11, 24), "csv")
    assert key.endswith(f"/{hashlib.sha256(body).hexdigest()}.csv")
    with open(tmp_path / "store" / key, "rb") as f:
        assert f.read() == body

    landed = store.list_keys("raw/")
    path.write_bytes(body.replace(b"date", b"DATE", 1) + b"x")  # a new file ...
    [changed] = read_snapshot(EVENTS, snap)
    real_put = LocalObjectStore.put_file_addressed

    def rewritten_while_read(self, prefix, suffix, source):
        source.write_bytes(body + b"y")  # ... rewritten by a writer while the run reads it
        return real_put(self, prefix, suffix, source)

    monkeypatch.setattr(LocalObjectStore, "put_file_addressed", rewritten_while_read)
    with pytest.raises(ExtractError, match="changed while this run was reading it"):
        land(store, changed, date(2026, 11, 24), "csv")
    assert store.list_keys("raw/") == landed  # nothing of the rewritten file landed, the first landing kept

    # a payload hashed before its landing (the input checksum asked first) is stored under that hash
    path.write_bytes(body.replace(b"date", b"DATE", 1) + b"x")
    [hashed] = read_snapshot(EVENTS, snap)
    assert hashed.sha256 != hashlib.sha256(body).hexdigest()  # hashed now, before its landing
    real_put_file = LocalObjectStore.put_file

    def rewritten_meanwhile(self, key, source, content_type=None, *, sha256=None):
        source.write_bytes(body)  # ... rewritten by a writer after the run hashed it
        return real_put_file(self, key, source, content_type, sha256=sha256)

    monkeypatch.setattr(LocalObjectStore, "put_file", rewritten_meanwhile)
    with pytest.raises(ExtractError, match="changed while this run was reading it"):
        land(store, hashed, date(2026, 11, 24), "csv")
    assert store.list_keys("raw/") == landed


def test_a_large_payload_is_read_once_to_land_it(tmp_path, monkeypatch):
    """Over LAND_WHOLE_BYTES a payload not hashed yet is copied by the store (in the kernel) and the copy hashed:
    the payload file is never read by a hash pass of its own (one read of it, the copy's), the key is the hash of
    the bytes stored, and the digest is the payload's."""
    import eujp.landing
    from eujp.extract import read_snapshot

    monkeypatch.setattr(eujp.landing, "LAND_WHOLE_BYTES", 0)
    snap = tmp_path / "snap"
    snap.mkdir()
    body = b"date,precision\r\n" * 5000
    (snap / "security_events.csv").write_bytes(body)
    [payload] = read_snapshot(EVENTS, snap)
    file_digest = hashlib.file_digest

    def hash_of_a_stored_copy_only(f, *args):
        if Path(f.name).resolve() == (snap / "security_events.csv").resolve():
            pytest.fail("the payload file was hashed apart from its copy")
        return file_digest(f, *args)

    monkeypatch.setattr(eujp.landing.hashlib, "file_digest", hash_of_a_stored_copy_only)
    store = LocalObjectStore(tmp_path / "store")
    key = land(store, payload, date(2026, 11, 24), "csv")
    assert key == f"raw/{EVENTS.name}/2026-11-24/{hashlib.sha256(body).hexdigest()}.csv"
    assert payload.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "store" / key).read_bytes() == body
    assert not list((tmp_path / "store").rglob("*.part"))


def test_a_file_is_stored_under_its_content_address_once(store, tmp_path):
    """put_file_addressed: the key is the prefix, the content's sha256 and the suffix; the same bytes again
    leave the one object (and say it existed)."""
    source = tmp_path / "payload.csv"
    source.write_bytes(b"a,b\r\n1,2\r\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    stored, created = store.put_file_addressed("raw/src/2026-11-24/", ".csv", source)
    assert (stored.key, stored.size, stored.sha256, created) == (f"raw/src/2026-11-24/{digest}.csv", 10, digest, True)
    assert store.get_bytes(stored.key) == source.read_bytes()
    again, created = store.put_file_addressed("raw/src/2026-11-24/", ".csv", source)
    assert (again.key, again.sha256, created) == (stored.key, digest, False)
    assert store.list_keys("raw/") == [stored.key]


def test_a_store_checks_what_it_stored_against_the_hash_it_is_given(tmp_path):
    """`sha256` given to put_file: the local store hashes what it wrote (not the source again) and refuses a
    copy that is not that content, before it takes the key; put_bytes returns the digest it is given (the landing's own)."""
    from eujp.errors import ChecksumMismatchError

    store = LocalObjectStore(tmp_path / "store")
    source = tmp_path / "payload.csv"
    source.write_bytes(b"a,b\r\n1,2\r\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.put_file("raw/x.csv", source, sha256=digest).sha256 == digest
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch after writing raw/y.csv"):
        store.put_file("raw/y.csv", source, sha256="0" * 64)
    # the copy that failed its check never took the key, and no temporary file is left beside it
    assert not store.exists("raw/y.csv") and sorted(p.name for p in (tmp_path / "store" / "raw").iterdir()) == ["x.csv"]
    assert store.put_bytes("raw/z.csv", b"a,b\r\n", sha256=hashlib.sha256(b"a,b\r\n").hexdigest()).sha256 == \
        hashlib.sha256(b"a,b\r\n").hexdigest()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_a_folder_stores_objects_with_the_mode_the_umask_gives_new_files(tmp_path, umask):
    """Objects are written to temporary files first (0600 whatever the umask) and renamed: each object takes
    the mode a new file gets, so a BI server running as another user can read a published folder."""
    store = LocalObjectStore(tmp_path / "objects")
    f = tmp_path / "big.bin"
    f.write_bytes(b"\x00\x01" * 1000)
    old = os.umask(umask)
    try:
        store.put_bytes("latest.json", b"{}")
        store.put_file("runs/r1/warehouse.duckdb", f)
        addressed, _ = store.put_file_addressed("raw/x/2026-12-05/", ".csv", f)
        store.copy("runs/r1/warehouse.duckdb", "latest/warehouse.duckdb")
        landed = land(store, RawPayload(EVENTS.name, "events.csv", b"a,b\n1,2\n", "file:///events.csv", {}),
                      date(2026, 12, 5), "csv")
    finally:
        os.umask(old)
    keys = ["latest.json", "runs/r1/warehouse.duckdb", addressed.key, "latest/warehouse.duckdb", landed,
            *(k for k in store.list_keys("raw") if k.endswith(".json"))]
    modes = {k: stat.S_IMODE((store.root / k).stat().st_mode) for k in keys}
    assert modes == dict.fromkeys(keys, 0o666 & ~umask)
