"""Publishing to S3 (a moto server): the publish contract of tests/unit/test_publish.py run on an S3 store."""

from __future__ import annotations

import pytest
from unit import test_publish as contract

from eujp.storage import S3ObjectStore


@pytest.fixture
def store(s3_bucket):
    return S3ObjectStore(s3_bucket, "eujp")


# The contract test of the folder store, collected here again with the S3 `store` above.
test_publish_writes_run_objects_manifest_and_pointer = (
    contract.test_publish_writes_run_objects_manifest_and_pointer)
