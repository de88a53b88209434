"""A real database template (Prefect's own migrations) and a temporary Prefect server started on a copy of it."""

from __future__ import annotations

import json
import os
import sqlite3
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
    finally:
        server.stop()
    with closing(sqlite3.connect(home / "prefect.db")) as conn:
        assert conn.execute("SELECT name FROM flow").fetchall() == [("template-check",)]
    assert _alembic_versions(home / "prefect.db") == [_migration_head()]
