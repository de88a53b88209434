"""eujp.deferred_imports: Great Expectations imported with scipy.stats and altair deferred, and the stand-in
modules behaving as the real ones once used; sqlalchemy, boto3 and botocore hidden from GX's import only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eujp import deferred_imports
from eujp.deferred_imports import DeferredModule, deferring, hidden_from

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing imported yet) from the repository; its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_great_expectations_validates_without_scipy_stats_or_altair_until_they_are_used():
    out = run_python("""
        import math, sys
        import polars as pl
        from eujp import validate
        from eujp.deferred_imports import DeferredModule
        from tests.unit.test_validate import good_frame

        report = validate.validate_frame("fact_goods_trade", good_frame("fact_goods_trade"))
        print("valid", report.success, len(report.outcomes))
        print("deferred", sorted(n for n in ("scipy.stats", "altair") if isinstance(sys.modules[n], DeferredModule)))
        bad = good_frame("fact_goods_trade").with_columns(pl.lit("BOGUS").alias("flow"))
        print("caught", validate.validate_frame("fact_goods_trade", bad).success)

        # GX's own module holds the stand-in; the first use imports the real scipy.stats
        kl = sys.modules["great_expectations.expectations.core.expect_column_kl_divergence_to_be_less_than"]
        print("entropy", round(kl.stats.entropy([0.5, 0.5]), 12), round(math.log(2), 12))
        import scipy.stats, scipy
        print("real", type(sys.modules["scipy.stats"]).__name__, scipy.stats is sys.modules["scipy.stats"],
              scipy.stats.norm.cdf(0.0))
        from scipy.stats import _stats_py
        print("submodule", _stats_py.__name__)
        print("altair", kl.alt.Chart.__name__, type(sys.modules["altair"]).__name__)

        # hidden from GX: not imported by it, its placeholders in their place; anyone else imports them
        print("hidden", sorted(n for n in ("sqlalchemy", "boto3", "botocore") if n in sys.modules))
        from great_expectations.compatibility import aws, sqlalchemy as gx_sqlalchemy
        print("placeholders", type(gx_sqlalchemy.sqlalchemy).__name__, type(aws.boto3).__name__)
        import sqlalchemy
        print("importable", sqlalchemy.__name__, "sqlalchemy" in sys.modules)
    """)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["valid"].startswith("True ")
    assert int(lines["valid"].split()[1]) > 0  # expectations were evaluated
    assert lines["deferred"] == "['altair', 'scipy.stats']"
    assert lines["caught"] == "False"  # a flow outside its set still fails its expectation
    got, want = lines["entropy"].split()
    assert got == want
    assert lines["real"] == "module True 0.5"
    assert lines["submodule"] == "scipy.stats._stats_py"
    assert lines["altair"] == "Chart module"
    assert lines["hidden"] == "[]"  # validating a frame needed none of them
    assert lines["placeholders"] == "NotImported NotImported"
    assert lines["importable"] == "sqlalchemy True"


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package `deferpkg` on sys.path whose submodule `heavy` counts its executions in `deferpkg.loads`."""
    root = tmp_path / "deferpkg"
    root.mkdir()
    (root / "__init__.py").write_text("loads = []\n")
    (root / "heavy.py").write_text("import deferpkg\ndeferpkg.loads.append('heavy')\nVALUE = 42\n"
                                   "def double(x):\n    return 2 * x\n")
    (root / "broken.py").write_text("raise RuntimeError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "deferpkg"
    for name in [n for n in sys.modules if n == "deferpkg" or n.startswith("deferpkg.")]:
        del sys.modules[name]


def test_a_deferred_module_is_imported_on_its_first_attribute_read(package):
    with deferring({"deferpkg.heavy"}):
        import deferpkg.heavy as again
        from deferpkg import heavy
    import deferpkg

    assert isinstance(heavy, DeferredModule) and again is heavy
    assert deferpkg.loads == []  # bound, not executed
    assert heavy.double(21) == heavy.VALUE == 42
    assert deferpkg.loads == ["heavy"]  # executed once, on the first read
    assert not isinstance(sys.modules["deferpkg.heavy"], DeferredModule)
    assert deferpkg.heavy is sys.modules["deferpkg.heavy"]  # the parent package names the real module
    assert heavy.double(1) == 2 and deferpkg.loads == ["heavy"]


def test_outside_the_block_imports_are_not_deferred(package):
    with deferring({"deferpkg.heavy"}):
        pass
    import deferpkg
    from deferpkg import heavy

    assert not isinstance(heavy, DeferredModule) and deferpkg.loads == ["heavy"]


def test_a_missing_module_fails_at_its_import_as_without_deferral(package):
    with deferring({"deferpkg.absent"}), pytest.raises(ModuleNotFoundError, match="deferpkg.absent"):
        import deferpkg.absent  # noqa: F401


def test_a_module_that_fails_to_import_fails_at_its_first_use_and_again_after(package):
    with deferring({"deferpkg.broken"}):
        from deferpkg import broken
    with pytest.raises(RuntimeError, match="broken at import"):
        broken.anything  # noqa: B018
    assert isinstance(sys.modules["deferpkg.broken"], DeferredModule)  # the stand-in stays: no half module
    with pytest.raises(RuntimeError, match="broken at import"):
        deferred_imports.load("deferpkg.broken")


@pytest.fixture
def importers(tmp_path, monkeypatch):
    """Packages on sys.path: `hidepkg` (with a submodule `sub`), and `gxlike.user` and `other.user`, each of
    which imports `hidepkg.sub` if it can (None if not)."""
    (tmp_path / "hidepkg").mkdir()
    (tmp_path / "hidepkg" / "__init__.py").write_text("")
    (tmp_path / "hidepkg" / "sub.py").write_text("VALUE = 7\n")
    for package in ("gxlike", "other"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "user.py").write_text(
            "try:\n    from hidepkg import sub\nexcept ImportError as exc:\n    sub, error = None, str(exc)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [n for n in sys.modules if n.partition(".")[0] in ("hidepkg", "gxlike", "other")]:
        del sys.modules[name]


def test_a_hidden_package_is_missing_to_its_importer_only(importers):
    with hidden_from("gxlike", {"hidepkg"}):
        from gxlike import user as hidden_to
        assert "hidepkg" not in sys.modules
        from other import user as not_hidden_to

    assert hidden_to.sub is None
    assert "hidden from gxlike's import" in hidden_to.error and "hidepkg" in hidden_to.error
    assert not_hidden_to.sub.VALUE == 7  # any other importer gets the real module, during the block too


def test_a_package_imported_already_is_not_hidden(importers):
    import hidepkg  # noqa: F401 - imported before the block: its submodules stay importable by anyone

    with hidden_from("gxlike", {"hidepkg"}):
        from gxlike import user
    assert user.sub.VALUE == 7


def test_after_the_block_nothing_is_hidden(importers):
    with hidden_from("gxlike", {"hidepkg"}):
        pass
    from gxlike import user
    assert user.sub.VALUE == 7
