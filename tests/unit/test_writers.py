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


def test_a_run_with_its_own_prefect_server_takes_no_slot(monkeypatch, tmp_path):
    """The temporary server `eujp run` starts (or Prefect's ephemeral one) serves no other host, and keeps its
    leases in memory: a run killed holding the slot left it taken in that PREFECT_HOME's database, and every
    later run failed with RunLocked. Such a run takes no slot (the file lock keeps this host's runs apart);
    nothing is asked of the server (none answers at the URL here)."""
    from eujp.prefect_server import TEMPORARY_SERVER_ENV, own_server
    from flows.writers import writer_slot

    class Log:
        def __init__(self):
            self.lines: list[str] = []

        def info(self, message, *args):
            self.lines.append(message % args)

        warning = info

    settings = Settings(publish_uri="s3://bucket-a/eujp")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # no profile setting an API URL
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv(TEMPORARY_SERVER_ENV, "http://127.0.0.1:9/api")
    assert own_server()
    log = Log()
    with writer_slot(settings, log) as name:
        assert name is None
    assert "not taken: this run's Prefect server is its own" in log.lines[0]
    monkeypatch.delenv("PREFECT_API_URL")  # Prefect's ephemeral server
    assert own_server()
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")  # a shared server: the slot is taken
    assert not own_server()
