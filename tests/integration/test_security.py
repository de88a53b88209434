"""Security with a server: S3 credentials from a Prefect Secret block (a Prefect test server) are named without
their values when the block is bad or missing; a publish prefix that could escape is refused (moto's
variables); DEBUG logs of S3 requests (moto behind a recording proxy) show no credentials. The flow runs:
tests/e2e/test_secrets.py; the pure parts: tests/unit/test_security.py."""

from __future__ import annotations

import logging
import sys

import pytest
from support.s3_fault_proxy import FaultProxy

from eujp.errors import PublishError
from eujp.storage import open_store, s3_credentials

BLOCK_KEY_ID = "AKIAEUJPBLOCKKEY9W2E"
BLOCK_SECRET = "eujpBLOCKsecret+Xc5v6b7n8m9QQ"


@pytest.mark.parametrize(("value", "message"), [
    ({"aws_access_key_id": BLOCK_KEY_ID}, r"lacks \['aws_secret_access_key'\]"),
    (f"not json {BLOCK_SECRET}", r"must hold a JSON object with aws_access_key_id, aws_secret_access_key"),
])
def test_a_bad_secret_block_is_named_without_its_value(prefect_server, monkeypatch, value, message):
    from prefect.blocks.system import Secret

    Secret(value=value).save("eujp-test-bad", overwrite=True)
    monkeypatch.setenv("EUJP_S3_CREDENTIALS_BLOCK", "eujp-test-bad")
    with pytest.raises(PublishError, match=r"Prefect Secret block 'eujp-test-bad' \(EUJP_S3_CREDENTIALS_BLOCK\) "
                                           + message) as err:
        s3_credentials()
    assert BLOCK_SECRET not in str(err.value) and BLOCK_KEY_ID not in str(err.value)


def test_a_missing_secret_block_is_named(prefect_server, monkeypatch):
    monkeypatch.setenv("EUJP_S3_CREDENTIALS_BLOCK", "eujp-no-such-block")
    with pytest.raises(PublishError, match=r"cannot load the S3 credentials from the Prefect Secret block "
                                           r"'eujp-no-such-block' \(EUJP_S3_CREDENTIALS_BLOCK\): ValueError"):
        s3_credentials()


@pytest.mark.parametrize("uri", ["s3://bucket/../other", "s3://bucket/a//b", "s3://bucket/./x"])
def test_a_publish_prefix_that_could_escape_is_refused(uri, s3_env):
    with pytest.raises(ValueError, match="unsafe object key"):
        open_store(uri)


DEBUG_KEY_ID = "AKIAEUJPDEBUGKEY5T6Y"
DEBUG_SECRET = "eujpDEBUGsecret/Lm3n4b5v6c7x8z9QQ"
DEBUG_TOKEN = "IQoJeujpDEBUGtoken//b3JpZ2luX2VjEJr+session=="


def test_debug_logs_of_s3_requests_show_no_credentials(s3_server, s3_bucket, monkeypatch, tmp_path, caplog, capfd):
    """An operator's DEBUG logging (the root logger at DEBUG, as PREFECT_LOGGING_ROOT_LEVEL=DEBUG sets it):
    botocore logs each request with its Authorization header (the key id) and session token, its canonical
    request (the token again), s3transfer a multipart upload's parts and urllib3 each request line (a presigned
    URL's query). The requests are signed with the credentials and succeed; neither the key id, the secret nor
    the token appears on a plain stderr handler, Prefect's console handler or pytest's capture of the records."""
    from prefect.logging.handlers import PrefectConsoleHandler

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DEBUG_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DEBUG_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", DEBUG_TOKEN)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (9 * 4096))  # 9 MB: a multipart upload (s3transfer's threads)
    root = logging.getLogger()
    handlers = [logging.StreamHandler(sys.stderr), PrefectConsoleHandler(stream=sys.stderr)]
    for handler in handlers:
        root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    capfd.readouterr()
    try:
        with FaultProxy(s3_server) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            store = open_store(f"s3://{s3_bucket}/eujp")
            store.put_bytes("a.json", b'{"a": 1}')
            store.put_file("big.bin", big)
            assert store.get_bytes("a.json") == b'{"a": 1}' and store.stat("big.bin").size == big.stat().st_size
            import boto3
            import urllib3
            from botocore.config import Config

            # presigned URLs, which urllib3's DEBUG line quotes whole: SigV2 (the store's client) and SigV4
            sigv4 = boto3.session.Session().client("s3", config=Config(signature_version="s3v4",
                                                                       s3={"addressing_style": "path"}))
            for client in (store.client, sigv4):
                url = client.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": "eujp/a.json"})
                assert urllib3.PoolManager().request("GET", url).data == b'{"a": 1}'
    finally:
        for handler in handlers:
            root.removeHandler(handler)
    # the requests were signed with the credentials (the proxy saw them) and DEBUG lines were written
    signed = [seen for seen in proxy.seen if "Authorization" in seen.headers]
    assert len(signed) >= 6 and len(proxy.seen) == len(signed) + 2  # the presigned GETs: signed in their query
    assert all(f"Credential={DEBUG_KEY_ID}/" in seen.headers["Authorization"]
               and seen.headers.get("X-Amz-Security-Token") == DEBUG_TOKEN for seen in signed)
    records = "\n".join(r.getMessage() for r in caplog.records)
    out = capfd.readouterr()
    assert {r.name.split(".")[0] for r in caplog.records} >= {"botocore", "s3transfer", "urllib3"}
    for text in (records, out.err):
        assert "Sending http request: <AWSPreparedRequest" in text and "x-amz-security-token:" in text
    for place, text in {"log records": records, "stderr": out.err, "stdout": out.out}.items():
        for needle in (DEBUG_KEY_ID, DEBUG_SECRET, DEBUG_TOKEN):
            assert needle not in text, f"{needle!r} in {place}"
    for text in (records, out.err):  # what stands in their place
        assert "Credential=***/" in text and "x-amz-security-token:***" in text  # the header, the canonical request
        assert "'X-Amz-Security-Token': b'***'" in text  # the request's headers
        assert "X-Amz-Credential=***%2F" in text and "X-Amz-Security-Token=***" in text  # urllib3's lines
        assert "AWSAccessKeyId=***" in text and "x-amz-security-token=***" in text
