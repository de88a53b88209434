"""The run lock, held by another process (spawned): a second writer fails clearly or waits; a killed holder
releases it."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from eujp.lock import RunLocked, warehouse_lock


def _hold_lock(path, ready, seconds):
    with warehouse_lock(path):
        ready.set()
        time.sleep(seconds)


def test_second_writer_fails_clearly_while_the_first_holds_the_lock(tmp_path):
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
        started = time.monotonic()
        with warehouse_lock(path, wait_seconds=15):  # waits for the holder to finish, then gets it
            waited = time.monotonic() - started
        assert waited > 1.0
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
