"""eujp.prefect_server's database template: a server started on a PREFECT_HOME without a database begins from a
copy of the migrated empty database the install made, instead of running every migration (~6 s of a ~10 s start).
The rules of the copy; a real template and a server started on it: tests/integration/test_prefect_database_template.py."""

from __future__ import annotations

import importlib.metadata
import os

import pytest

import eujp.prefect_server as ps


@pytest.fixture
def templates(tmp_path, monkeypatch):
    """A templates folder holding a stand-in template (its bytes are all these tests look at) for the installed
    Prefect, and no database setting in the environment."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / ps.database_template_name()).write_bytes(b"migrated empty database")
    monkeypatch.setenv(ps.TEMPLATES_ENV, str(folder))
    for key in list(os.environ):
        if key.startswith(("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")):
            monkeypatch.delenv(key)
    return folder


def test_a_home_without_a_database_gets_a_copy_of_the_template(templates, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    assert ps.default_database() == home / "prefect.db"
    assert ps.seed_database() is True
    assert (home / "prefect.db").read_bytes() == b"migrated empty database"
    assert sorted(p.name for p in home.iterdir()) == ["prefect.db"]  # no partial copy left beside it


def test_an_existing_database_is_never_replaced(templates, tmp_path):
    database = tmp_path / "prefect.db"
    database.write_bytes(b"a server's history")
    assert ps.seed_database({"PREFECT_HOME": str(tmp_path)}) is False
    assert database.read_bytes() == b"a server's history"


def test_a_home_holding_a_database_s_log_alone_gets_no_copy(templates, tmp_path):
    """A prefect.db-wal without its database (the database deleted, its log not): SQLite would replay that
    log into whatever file is put there, so nothing is copied."""
    (tmp_path / "prefect.db-wal").write_bytes(b"an old write-ahead log")
    assert ps.seed_database({"PREFECT_HOME": str(tmp_path)}) is False
    assert not (tmp_path / "prefect.db").exists()


@pytest.mark.parametrize("setting", ["PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL",
                                     "PREFECT_SERVER_DATABASE_DRIVER"])
def test_a_database_of_the_user_s_choosing_is_left_alone(templates, tmp_path, monkeypatch, setting):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(setting, "postgresql+asyncpg://prefect@db/prefect")
    assert ps.default_database() is None
    assert ps.seed_database() is False
    assert ps.seed_database({"PREFECT_HOME": str(tmp_path / "home"), setting: "x"}) is False
    assert not (tmp_path / "home").exists()


def test_without_a_template_for_this_prefect_nothing_is_copied(templates, tmp_path):
    (templates / ps.database_template_name()).rename(templates / "prefect-0.0.1-000000000000.db")
    assert ps.seed_database({"PREFECT_HOME": str(tmp_path)}) is False
    assert not (tmp_path / "prefect.db").exists()


def test_the_template_is_named_by_prefect_s_version_and_its_migrations(tmp_path, monkeypatch):
    name = ps.database_template_name()
    assert name.startswith(f"prefect-{importlib.metadata.version('prefect')}-") and name.endswith(".db")
    # a Prefect whose SQLite migrations differ (a new one, a patched install) needs a template of its own
    package = tmp_path / "prefect"
    migrations = package / "server" / "database" / "_migrations" / "versions" / "sqlite"
    migrations.mkdir(parents=True)
    (migrations / "2024_01_01_000000_aaaa_first.py").write_text("")
    monkeypatch.setattr(ps, "_prefect_package", lambda: package)
    one = ps.database_template_name()
    (migrations / "2025_01_01_000000_bbbb_second.py").write_text("")
    assert ps.database_template_name() not in (one, name)


def test_both_installs_build_the_template():
    """`make run` and `make test` install through the .runtime / .dev stamps: each builds the template, after
    the packages it depends on (Prefect, this project) are installed."""
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    for stamp in ("$(VENV)/.runtime:", "$(VENV)/.dev:"):
        recipe = makefile[makefile.index(stamp):].split("\n\n")[0].splitlines()
        builds = [i for i, line in enumerate(recipe) if "-m eujp.prefect_server template" in line]
        installs = [i for i, line in enumerate(recipe) if "pip install" in line]
        assert builds and installs and builds[0] > max(installs), recipe
