"""A real database template (Prefect's own migrations) and a temporary Prefect server started on a copy of it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

import eujp.prefect_server as ps

pytestmark = pytest.mark.integration


def _migration_head() -> str:
    from alembic.script import ScriptDirectory

    migrations = ps._prefect_package() / "server" / "database" / "_migrations"
    return ScriptDirectory(str(migrations), version_locations=[str(migrations / "versions" / "sqlite")]).get_current_head()


def _alembic_versions(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as conn:
        return [v for (v,) in conn.execute("SELECT version_num FROM alembic_version")]


def _block_type_slugs(url: str) -> list[str]:
    request = urllib.request.Request(f"{url}/block_types/filter", data=b"{}",
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return sorted(t["slug"] for t in json.load(response))


def test_the_server_leaves_block_registration_as_the_environment_sets_it():
    assert ps.server_block_settings({}) == ps.BLOCK_REGISTRATION_OFF
    assert ps.server_block_settings({"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "true"}) == {
        "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
    assert ps.server_block_settings({"PREFECT_API_BLOCKS_REGISTER_ON_START": "true",
                                     "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "true"}) == {}


def test_a_server_starts_on_a_copy_of_the_template_and_serves_the_api(tmp_path, monkeypatch):
    template = ps.build_database_template(tmp_path / "templates")
    assert template.name == ps.database_template_name()
    assert _alembic_versions(template) == [_migration_head()]  # migrated to the installed Prefect's head
    assert ps.build_database_template(tmp_path / "templates") == template  # built once

    home = tmp_path / "home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv(ps.TEMPLATES_ENV, str(tmp_path / "templates"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for key in [k for k in os.environ if k.startswith(("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_"))]:
        monkeypatch.delenv(key)
    server = ps.TemporaryPrefectServer(announce=False, startup_timeout=120).start()  # seeds home/prefect.db
    try:
        assert (home / "prefect.db").is_file()
        # in a session of its own: a Ctrl-C to the run's process group reaches the run, which stops the server,
        # instead of killing the server under the run (which then retried its API for minutes)
        assert os.getsid(server.process.pid) == server.process.pid != os.getsid(0)
        url = server.wait_ready()
        request = urllib.request.Request(f"{url}/flows/", data=json.dumps({"name": "template-check"}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 201)
            assert json.load(response)["name"] == "template-check"
        # no block type registered at its start (ps.BLOCK_REGISTRATION_OFF: 2-3 s of a start), yet a Secret
        # block, the one eujp reads (eujp.storage.s3_credentials), is saved and read back through it
        assert _block_type_slugs(url) == []
        saved = subprocess.run(
            [sys.executable, "-c", ("from prefect.blocks.system import Secret\n"
                                    "Secret(value='s3cr3t-value').save('eujp-template-check')\n"
                                    "print(Secret.load('eujp-template-check').get())")],
            env=os.environ | {"PREFECT_API_URL": url}, capture_output=True, text=True, timeout=120, check=False)
        assert saved.returncode == 0, saved.stderr[-2000:]
        assert saved.stdout.strip().splitlines()[-1] == "s3cr3t-value"
        assert _block_type_slugs(url) == ["secret"]
    finally:
        server.stop()
    with closing(sqlite3.connect(home / "prefect.db")) as conn:
        assert conn.execute("SELECT name FROM flow").fetchall() == [("template-check",)]
    assert _alembic_versions(home / "prefect.db") == [_migration_head()]
