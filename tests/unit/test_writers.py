"""Which Prefect global concurrency limit a run holds while it writes (flows/writers.py); the limit itself is
exercised on a real Prefect server in tests/integration/test_writer_limit.py."""

from __future__ import annotations

import re

from eujp.config import Settings
from flows.writers import writer_limit_name


def test_a_remote_target_gets_a_limit_named_after_it():
    a = writer_limit_name(Settings(publish_uri="s3://bucket-a/eujp"))
    b = writer_limit_name(Settings(publish_uri="s3://bucket-b/eujp"))
    assert re.fullmatch(r"eujp-writer-[0-9a-f]{12}", a) and a != b
    assert writer_limit_name(Settings(publish_uri="s3://bucket-a/eujp")) == a  # every host names it alike


def test_a_local_folder_keeps_the_file_lock_only_unless_a_limit_is_named(tmp_path):
    assert writer_limit_name(Settings(publish_uri=str(tmp_path))) is None
    assert writer_limit_name(Settings(publish_uri=str(tmp_path), writer_limit="shared-nfs")) == "shared-nfs"
    assert writer_limit_name(Settings(publish_uri="s3://bucket-a/eujp", writer_limit="off")) is None


def test_the_limit_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EUJP_WRITER_LIMIT", "eujp-writers")
    assert writer_limit_name(Settings.from_env(publish_uri=str(tmp_path))) == "eujp-writers"
