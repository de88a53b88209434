"""The publish deadline without a server (tests/integration/test_publish_deadline.py stalls a real S3 endpoint):
a store call that hangs is given up at the deadline, a publish that starts after it uploads nothing, cleaning up
after the pointer moved is a warning, the publish task's retry condition, and the setting."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from eujp.config import Settings
from eujp.errors import ChecksumMismatchError, PublishDeadlineError, PublishError
from eujp.publish import LATEST_POINTER, Deadline, publish_run, read_latest_pointer
from eujp.storage import LocalObjectStore
from eujp.tables import ensure_schema
from eujp.warehouse import connect
from flows.tasks import publish_retry_condition


def warehouse(path: Path) -> Path:
    with connect(path) as conn:
        ensure_schema(conn)
    return path


def publish(store, tmp_path: Path, run_id: str, deadline: Deadline | None = None, keep_runs: int = 7):
    return publish_run(store, run_id=run_id, warehouse_path=warehouse(tmp_path / f"{run_id}.duckdb"),
                       work_dir=tmp_path / f"work-{run_id}", deadline=deadline, keep_runs=keep_runs,
                       manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                                   "sources": {}, "validation": {}, "audit": {}})


def test_a_store_call_that_hangs_is_given_up_at_the_deadline(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "store")
    publish(store, tmp_path, "20261124T060000Z-ok0000")
    release = threading.Event()
    real = store.copy

    def hanging(src_key, dst_key):  # the latest/ aliases are copies of the run's objects
        if dst_key.startswith("latest/"):
            release.wait(30)  # a frozen mount: returns only when the test lets it
        return real(src_key, dst_key)

    monkeypatch.setattr(store, "copy", hanging)
    started = time.monotonic()
    with pytest.raises(PublishDeadlineError) as err:
        # long enough that preparing the files (a copy, Parquet exports) never uses it up on a busy machine
        publish(store, tmp_path, "20261125T060000Z-hang01", deadline=Deadline.after(4.0))
    assert 3.8 < time.monotonic() - started < 5.5
    assert str(err.value) == (f"publishing run 20261125T060000Z-hang01 to {store.uri} stopped at "
                              "latest/warehouse.duckdb: the publish deadline of 4 s (EUJP_PUBLISH_TIMEOUT) passed; "
                              "latest was not moved. Raise EUJP_PUBLISH_TIMEOUT if publishing is just slow")
    release.set()
    assert read_latest_pointer(store)["run_id"] == "20261124T060000Z-ok0000"


def test_a_publish_whose_deadline_passed_before_its_first_upload_uploads_nothing(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(PublishDeadlineError, match=r"stopped before the first upload: the publish deadline of 0\.01 s "
                                                   r"\(EUJP_PUBLISH_TIMEOUT\) passed; latest was not moved"):
        publish(store, tmp_path, "20261125T060000Z-late01", deadline=Deadline(time.time() - 1, 0.01))
    assert store.list_keys("") == []


def test_a_failed_retention_after_the_pointer_moved_is_a_warning(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "store")
    for i in range(3):
        publish(store, tmp_path, f"2026112{i}T060000Z-keep0{i}", keep_runs=2)
    real = store.delete

    def failing(keys):
        if any(k.startswith("runs/") for k in keys):
            raise OSError("read-only file system")
        real(keys)

    monkeypatch.setattr(store, "delete", failing)
    result = publish(store, tmp_path, "20261123T060000Z-keep03", deadline=Deadline.after(60), keep_runs=2)
    assert result.warnings == ["older runs not removed (retention, EUJP_KEEP_RUNS): OSError: read-only file system"]
    assert read_latest_pointer(store)["run_id"] == "20261123T060000Z-keep03"
    with pytest.raises(ValueError, match="keep_runs must be at least 1"):  # still refused before anything is done
        publish(store, tmp_path, "20261124T060000Z-keep04", keep_runs=0)
    assert not store.exists("runs/20261124T060000Z-keep04/manifest.json")


def test_an_ordinary_failure_stays_a_publish_error_within_the_deadline(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "store")
    monkeypatch.setattr(store, "put_bytes", lambda *a, **kw: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(PublishError) as err:
        publish(store, tmp_path, "20261125T060000Z-fail01", deadline=Deadline.after(60))
    assert not isinstance(err.value, PublishDeadlineError)
    assert str(err.value).endswith(f"failed at {LATEST_POINTER}: disk gone; the latest/ aliases were replaced but "
                                   f"{LATEST_POINTER} still points at the previous run")


def _state(error: BaseException):
    return SimpleNamespace(data=error)


def _raised(outer: PublishError, cause: BaseException) -> PublishError:
    """`outer`, raised from `cause` (as eujp.publish wraps what failed)."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer from exc
    except PublishError as err:
        return err


def _client_error(code: str, status: int):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


def test_the_publish_task_is_retried_only_before_the_deadline_and_never_after_a_deadline_error():
    task = SimpleNamespace(retry_delay_seconds=[5, 30])
    first, second = SimpleNamespace(run_count=1), SimpleNamespace(run_count=2)
    plain, late = _raised(PublishError("S3 said no"), _client_error("SlowDown", 503)), PublishDeadlineError("too late")

    assert publish_retry_condition()(task, first, _state(plain)) is True  # no deadline: as before
    assert publish_retry_condition()(task, first, _state(late)) is False
    roomy = publish_retry_condition(Deadline.after(120))
    assert roomy(task, first, _state(plain)) and roomy(task, second, _state(plain))
    assert roomy(task, first, _state(late)) is False
    tight = publish_retry_condition(Deadline.after(20))  # the first retry waits 5 s, the second 30 s
    assert tight(task, first, _state(plain)) is True
    assert tight(task, second, _state(plain)) is False
    assert publish_retry_condition(Deadline.after(-1))(task, first, _state(plain)) is False


@pytest.mark.parametrize(("cause", "retried"), [
    (_client_error("SlowDown", 503), True),
    (_client_error("503", 503), True),  # a HEAD's error has no body: botocore names the status
    (_client_error("InternalError", 500), True),
    (_client_error("RequestTimeout", 400), True),
    (_client_error("AccessDenied", 403), False),
    (_client_error("NoSuchBucket", 404), False),
    (ConnectionResetError(errno.ECONNRESET, "connection reset by peer"), True),
    (TimeoutError("timed out"), True),
    (ChecksumMismatchError("checksum mismatch after writing x"), True),  # a corrupt write: written again
    (NotADirectoryError(errno.ENOTDIR, "Not a directory"), False),
    (PermissionError(errno.EACCES, "Permission denied"), False),
    (IsADirectoryError(errno.EISDIR, "Is a directory"), False),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (ValueError("unsafe object key"), False),
], ids=lambda v: v if isinstance(v, bool) else type(v).__name__ + ":" + str(v)[:20])
def test_the_publish_task_retries_only_what_a_retry_may_get_past(cause, retried):
    """A local `[Errno 20] Not a directory` was retried twice (35 s) and each retry of a first publish wrote the
    lake again: only the network, S3's 5xx and throttling and a corrupt write are retried."""
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    retry = publish_retry_condition(Deadline.after(120))
    task, first = SimpleNamespace(retry_delay_seconds=[5, 30]), SimpleNamespace(run_count=1)
    assert retry(task, first, _state(_raised(PublishError("publishing failed at x"), cause))) is retried
    for timeout in (ReadTimeoutError(endpoint_url="http://s3"), EndpointConnectionError(endpoint_url="http://s3")):
        assert retry(task, first, _state(_raised(PublishError("publishing failed at x"), timeout))) is True
    assert retry(task, first, _state(PublishError("cannot copy a to b: it does not exist"))) is False


def test_the_publish_timeout_setting(monkeypatch):
    assert Settings().publish_timeout == 300
    monkeypatch.setenv("EUJP_PUBLISH_TIMEOUT", "12.5")
    assert Settings.from_env().publish_timeout == 12.5
    for bad, message in (("0", "must be a number of seconds above 0"), ("soon", "must be a number")):
        monkeypatch.setenv("EUJP_PUBLISH_TIMEOUT", bad)
        with pytest.raises(ValueError, match=f"EUJP_PUBLISH_TIMEOUT {message}"):
            Settings.from_env()
