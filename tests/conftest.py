"""Shared test fixtures: where the repo, its bundled snapshot and the shared real files are."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports Prefect: a throwaway PREFECT_HOME (cache records persist there) and no analytics.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="eujp-prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
for var in ("PREFECT_API_URL", "EUJP_PUBLISH_URI", "EUJP_WAREHOUSE", "EUJP_SNAPSHOT_DIR"):
    os.environ.pop(var, None)

REPO_ROOT = Path(__file__).resolve().parents[1]
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

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
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
    """A warehouse built from data/snapshot and data/reference (tests/bundled_warehouse.py); treat it as
    read-only: copy it before changing anything."""
    from bundled_warehouse import build_bundled_warehouse

    return build_bundled_warehouse(tmp_path_factory.mktemp("bundled") / "warehouse.duckdb")
