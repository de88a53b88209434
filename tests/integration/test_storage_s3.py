"""The object store on S3 (a moto server): the store contract of tests/unit/test_storage.py run on an S3
store, and objects kept private under the prefix."""

from __future__ import annotations

import boto3
import pytest
from unit import test_storage as contract

from eujp.storage import S3ObjectStore, open_store


@pytest.fixture
def store(s3_bucket):
    return S3ObjectStore(s3_bucket, "pub/prefix")


# The contract tests of the folder store, collected here again with the S3 `store` above.
test_put_get_list_delete_roundtrip = contract.test_put_get_list_delete_roundtrip
test_landing_is_content_addressed_and_replayable = contract.test_landing_is_content_addressed_and_replayable
test_many_payloads_are_landed_side_by_side_each_under_its_key = (
    contract.test_many_payloads_are_landed_side_by_side_each_under_its_key)
test_a_replay_fetches_its_objects_side_by_side_in_landing_order = (
    contract.test_a_replay_fetches_its_objects_side_by_side_in_landing_order)
test_copy_makes_a_verified_copy_of_an_object = contract.test_copy_makes_a_verified_copy_of_an_object
test_a_file_is_stored_under_its_content_address_once = contract.test_a_file_is_stored_under_its_content_address_once
test_an_adopted_file_is_stored_under_its_key_once = contract.test_an_adopted_file_is_stored_under_its_key_once
test_a_replayed_payload_is_a_file_of_the_spool_not_bytes_held = (
    contract.test_a_replayed_payload_is_a_file_of_the_spool_not_bytes_held)
test_landing_the_same_bytes_again_replaces_a_damaged_object = (
    contract.test_landing_the_same_bytes_again_replaces_a_damaged_object)
test_landing_the_same_bytes_again_replaces_an_object_whose_stored_sha256_differs = (
    contract.test_landing_the_same_bytes_again_replaces_an_object_whose_stored_sha256_differs)
test_landing_the_same_bytes_again_repairs_an_object_of_the_same_size_changed_behind_the_store = (
    contract.test_landing_the_same_bytes_again_repairs_an_object_of_the_same_size_changed_behind_the_store)
test_landing_the_same_bytes_again_rewrites_a_damaged_meta_json = (
    contract.test_landing_the_same_bytes_again_rewrites_a_damaged_meta_json)


def test_s3_objects_live_under_the_prefix_and_are_private(s3_bucket, s3_env):
    store = open_store(f"s3://{s3_bucket}/warehouse/eujp")
    store.put_bytes("x/y.txt", b"hello")
    client = boto3.client("s3", endpoint_url=s3_env)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["warehouse/eujp/x/y.txt"]
    grants = client.get_object_acl(Bucket=s3_bucket, Key="warehouse/eujp/x/y.txt")["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee")) for g in grants)


def test_s3_store_takes_a_known_hash_and_refuses_a_file_that_is_not_that_content(store, tmp_path):
    """put_bytes with the caller's sha256 (a single part: S3's checksum is derived from it, and the service's
    own checksum still verifies the upload); put_file refuses a file whose content is not the given hash."""
    import hashlib

    from eujp.errors import ChecksumMismatchError

    data = b"a,b\r\n1,2\r\n"
    digest = hashlib.sha256(data).hexdigest()
    assert store.put_bytes("raw/x.csv", data, sha256=digest).sha256 == digest
    assert store.get_bytes("raw/x.csv") == data
    path = tmp_path / "payload.csv"
    path.write_bytes(data + b"3,4\r\n")  # changed since it was hashed
    with pytest.raises(ChecksumMismatchError, match="changed since"):
        store.put_file("raw/y.csv", path, sha256=digest)
    assert not store.exists("raw/y.csv")
    with pytest.raises(ChecksumMismatchError, match="changed since"):
        store.adopt_file("raw/z.csv", path, digest)
    assert not store.exists("raw/z.csv")
