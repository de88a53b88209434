"""Shared test fixtures, and the test kinds.

    tests/unit/                pure: no servers, no child processes
    tests/sources/<source>/    one folder per registered source: its parser, transform, live request plan
                               (its live fetch against the replay server is marked `integration`), bad input
    tests/integration/         starts servers (moto, Prefect, HTTP replay, local HTTP) or child processes
    tests/e2e/                 the whole flow (daily, as-of, `eujp run`)

Tests under integration/ and e2e/ are marked `integration` / `e2e` from their folder, and every test marked
`integration` or `e2e` is also `slow`: `-m "not slow"` is the fast loop. Helpers live in tests/support/
(`from support.recordings import ...`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests (hypothesis) draw new examples on every local run; CI runs the same ones every time
# (`HYPOTHESIS_PROFILE=ci`, set by .ci/run): a shape no run has drawn yet cannot turn CI red at random. Their
# explicit examples (`@example`, the faults they found) run in both. Neither has a deadline: an example's time
# is not what a property test checks, and on a loaded 2-core worker (CI beside other jobs) a pure function's
# first call could pass Hypothesis' 200 ms default and fail the test as flaky.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("local", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "local"))

# Before anything imports Prefect: a throwaway PREFECT_HOME (cache records persist there) and no analytics.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="eujp-prefect-home-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)  # the session's, removed at its end
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
for var in ("PREFECT_API_URL", "EUJP_PUBLISH_URI", "EUJP_WAREHOUSE", "EUJP_SNAPSHOT_DIR"):
    os.environ.pop(var, None)

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
SNAPSHOT_DIR = REPO_ROOT / "data" / "snapshot"
REFERENCE_DIR = REPO_ROOT / "data" / "reference"


def _shared_data_dir() -> Path | None:
    """`../shared/data` beside the checkout (or $EUJP_SHARED_DATA): real files we may not bundle."""
    candidates = [os.environ.get("EUJP_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data",
                  REPO_ROOT.parent.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


# --- test kinds: markers from the folder -----------------------------------------------------------------

FOLDER_MARKERS = {"integration": "integration", "e2e": "e2e"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])
        if (item.get_closest_marker("integration") or item.get_closest_marker("e2e")) \
                and not item.get_closest_marker("slow"):
            item.add_marker("slow")


@pytest.fixture(scope="session")
def snapshot_dir() -> Path:
    return SNAPSHOT_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not beside this checkout")
    return path


# --- S3: a real S3 protocol server (moto) on 127.0.0.1 ------------------------------------------------

@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer
    from support.processes import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """AWS variables pointing boto3 (and the pipeline) at the moto server, with fake credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@pytest.fixture
def s3_bucket(s3_env):
    """A fresh, empty bucket on the moto server."""
    import uuid

    import boto3

    name = f"eujp-test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=name)
    return name


# --- Prefect: one temporary server per test session ---------------------------------------------------

@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect API server (~10-20 s to start) shared by every flow test in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


# --- The bundled snapshot loaded into a warehouse with its marts (plain step functions, no Prefect) ------

@pytest.fixture(scope="session")
def bundled_warehouse(tmp_path_factory) -> Path:
    """A warehouse built from data/snapshot and data/reference (tests/support/bundled_warehouse.py); treat it
    as read-only: copy it before changing anything."""
    from support.bundled_warehouse import build_bundled_warehouse

    return build_bundled_warehouse(tmp_path_factory.mktemp("bundled") / "warehouse.duckdb")


@pytest.fixture
def scratch(bundled_warehouse, tmp_path):
    """A writable copy of the bundled warehouse, as an open DuckDB connection."""
    import shutil

    import duckdb

    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(bundled_warehouse, path)
    with duckdb.connect(str(path)) as c:
        yield c


# --- live extraction: only loopback traffic, the replay server with every recording ----------------------

@pytest.fixture
def loopback_only(monkeypatch):
    """Any attempt to resolve a host other than 127.0.0.1/localhost fails the test."""
    import socket

    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1", b"localhost"):
            raise AssertionError(f"test tried to reach {host!r}: only 127.0.0.1 is allowed")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server(loopback_only):
    """An empty HTTP replay server on 127.0.0.1 (tests/support/replay_server.py)."""
    from support.replay_server import ReplayServer

    with ReplayServer() as s:
        yield s


@pytest.fixture
def live(server, monkeypatch):
    """The replay server with every recording installed (tests/sources/<source>/recording.json), and the
    EUJP_* variables pointing at it; `live.sliced[name]` is a sliced recording's responder (to revise it)."""
    from support.live import FAST_ENV
    from support.recordings import env_for, install

    server.sliced = install(server)
    for k, v in {**env_for(server), **FAST_ENV}.items():
        monkeypatch.setenv(k, v)
    return server


# --- PostgreSQL: a throwaway cluster on 127.0.0.1 (the DuckLake catalog tests) ----------------------------

@pytest.fixture
def postgres():
    """A PostgreSQL server of its own (tests/support/processes.py postgres_server); yields its connection string.
    Its folder is a fresh one under the system's temporary folder (not pytest's, which is private to this user:
    run as root, the server runs as an unprivileged user that must reach it), removed at the end."""
    yield from _postgres()


@pytest.fixture
def postgres_with_password():
    """As `postgres`, with a server that asks TCP connections for support.processes.POSTGRES_PASSWORD
    (scram-sha-256); its connection string says `password=...`."""
    from support.processes import POSTGRES_PASSWORD

    yield from _postgres(password=POSTGRES_PASSWORD)


def _postgres(password: str | None = None):
    import shutil

    from support.processes import postgres_server

    folder = Path(tempfile.mkdtemp(prefix="eujp-pg-"))
    try:
        with postgres_server(folder, password=password) as conninfo:
            yield conninfo
    finally:
        shutil.rmtree(folder, ignore_errors=True)
