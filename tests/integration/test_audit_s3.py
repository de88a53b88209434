"""The audit's published baseline when the object store (S3, moto's variables) cannot be reached: it fails
closed."""

from __future__ import annotations

import socket

import pytest

from eujp.audit import published_baseline
from eujp.errors import EujpError
from eujp.storage import S3ObjectStore


def test_an_unreadable_store_fails_closed(s3_env, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("EUJP_S3_MAX_ATTEMPTS", "1")
    with pytest.raises(EujpError, match=r"audit: cannot read the published latest run from s3://eujp-audit/x to "
                                        r"compare row counts against it: EndpointConnectionError"):
        published_baseline(S3ObjectStore("eujp-audit", "x"))
