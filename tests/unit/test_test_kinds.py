"""The test kinds hold (tests/conftest.py): whatever starts a server is marked `integration` or `e2e`, hence
`slow`, so the fast loop (`-m "not slow"`) never starts one; and each registered source has its test folder."""

from __future__ import annotations

from pathlib import Path

from eujp.sources import SOURCES

TESTS = Path(__file__).resolve().parents[1]
# Fixtures that start a server: moto, a Prefect test server, the HTTP replay server, PostgreSQL.
SERVER_FIXTURES = {"s3_server", "s3_env", "s3_bucket", "prefect_server", "server", "live", "postgres"}


def test_every_test_that_starts_a_server_is_slow(request):
    wrong = sorted(
        f"{item.nodeid} uses {sorted(SERVER_FIXTURES & set(item.fixturenames))}"
        for item in request.session.items
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not (item.get_closest_marker("integration") or item.get_closest_marker("e2e"))
    )
    assert not wrong, "start servers without the integration/e2e marker:\n" + "\n".join(wrong)
    assert all(item.get_closest_marker("slow") for item in request.session.items
               if item.get_closest_marker("integration") or item.get_closest_marker("e2e"))


def test_every_registered_source_has_its_test_folder():
    for source in SOURCES:
        folder = TESTS / "sources" / source.name
        assert (folder / "__init__.py").is_file(), f"tests/sources/{source.name}/ is missing"
        assert list(folder.glob("test_*.py")), f"tests/sources/{source.name}/ has no tests"
