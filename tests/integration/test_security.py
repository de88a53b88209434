"""Security with a server: S3 credentials from a Prefect Secret block (a Prefect test server) are named without
their values when the block is bad or missing; a publish prefix that could escape is refused (moto's
variables). The flow runs: tests/e2e/test_secrets.py; the pure parts: tests/unit/test_security.py."""

from __future__ import annotations

import pytest

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
