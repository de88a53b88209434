"""The run lock, held by another process (spawned): a second writer fails clearly or waits; a killed holder
releases it."""

from __future__ import annotations

import multiprocessing
import re
import time

import pytest

from eujp.lock import RunLocked, warehouse_lock


def _hold_lock(path, ready, seconds):
    with warehouse_lock(path):
        ready.set()
        time.sleep(seconds)


def test_second_writer_fails_clearly_while_the_first_holds_the_lock(tmp_path, caplog):
    path = tmp_path / "warehouse.duckdb"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, 3))
    holder.start()
    try:
        assert ready.wait(20)
        with pytest.raises(RunLocked, match=r"another run is writing .*held by pid"), \
                warehouse_lock(path, wait_seconds=0.5):
            pass
        caplog.clear()
        started = time.monotonic()
        with caplog.at_level("INFO", logger="eujp.lock"), \
                warehouse_lock(path, wait_seconds=15):  # waits for the holder to finish, then gets it
            waited = time.monotonic() - started
        assert waited > 1.0
        # one line when it starts waiting, naming the holder; one when it got the lock
        said = [r.getMessage() for r in caplog.records if r.name == "eujp.lock"]
        assert len(said) == 2 and re.fullmatch(
            rf"another run is writing {re.escape(str(path))} \(lock .*warehouse.duckdb.lock held by pid "
            rf"{holder.pid} since .*\): waiting up to 15s for it \(EUJP_LOCK_WAIT_SECONDS\)", said[0]), said
        assert said[1].startswith(f"run lock {path}.lock taken after waiting "), said
    finally:
        holder.join(10)


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, ready, 60))
    holder.start()
    assert ready.wait(20)
    holder.kill()
    holder.join(10)
    with warehouse_lock(path, wait_seconds=2):
        pass


def _open_warehouse(path, ready, seconds, read_only, lock):
    import contextlib

    import duckdb

    with warehouse_lock(path) if lock else contextlib.nullcontext(), duckdb.connect(str(path), read_only=read_only):
        ready.set()
        time.sleep(seconds)


def test_a_reader_holding_the_warehouse_open_is_named_before_anything_is_extracted(tmp_path):
    """A process that has the live warehouse open, read-only, stops a run from writing it. The preflight says
    so, naming its pid (the run stops with exit 2 before extracting anything, not at its load after every
    source was extracted and validated), and a reader that opens it after the preflight fails the load with the
    same message, naming the warehouse (not the staging link DuckDB opened) and without DuckDB's advice to open
    it read-only. Another run holding the run lock and the file is the lock's business: the preflight passes."""
    import duckdb

    from eujp.config import Settings
    from eujp.preflight import check_warehouse_folder
    from eujp.run import staged_warehouse
    from eujp.warehouse import WarehouseInUse

    path = tmp_path / "var" / "warehouse.duckdb"
    path.parent.mkdir()
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    settings = Settings(warehouse_path=path, publish_uri=str(tmp_path / "store"), run_id="20261201T060000Z-rdr001")
    assert check_warehouse_folder(settings).ok
    ctx = multiprocessing.get_context("spawn")
    for lock in (False, True):
        ready = ctx.Event()
        holder = ctx.Process(target=_open_warehouse, args=(path, ready, 60, not lock, lock))
        holder.start()
        try:
            assert ready.wait(30)
            check = check_warehouse_folder(settings)
            if lock:  # another run: it holds the run lock, which this run waits for or fails on (RunLocked)
                assert check.ok
                continue
            assert not check.ok and check.detail.startswith(
                f"another process (pid {holder.pid}, ") and f"has the warehouse {path} open: it must close it" \
                in check.detail and "read-only mode" not in check.detail
            with pytest.raises(WarehouseInUse) as raised, staged_warehouse(settings, "loading"):
                pass
            assert str(raised.value) == check.detail and "read-only mode" not in str(raised.value)
            assert not list((path.parent / "staging").iterdir())  # the link discarded, nothing written
        finally:
            holder.kill()
            holder.join(10)
    assert check_warehouse_folder(settings).ok


def test_the_lock_file_names_its_holder_since_a_utc_time_under_another_time_zone(tmp_path, monkeypatch):
    """The lock file (quoted by a waiting or refused run) said 'since 2026-12-06T00:46:17+0900' under
    TZ=Asia/Tokyo, the host's local time: it says the UTC time, with a Z."""
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        path = tmp_path / "warehouse.duckdb"
        with warehouse_lock(path):
            text = (tmp_path / "warehouse.duckdb.lock").read_text()
            now = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    found = re.fullmatch(r"pid \d+ since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z", text)
    assert found, text
    since = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
    assert timedelta(0) <= now - since < timedelta(seconds=60)
