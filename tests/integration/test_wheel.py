"""The built wheel works on its own: installed into a fresh virtual environment (no editable install, run from
a folder outside the repository), `eujp run --help` answers, and the installed package finds its suites,
reference data, bundled snapshot and marts, and parses a bundled payload."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path

    import eujp
    from eujp import config
    from eujp.marts import MODEL_TABLES
    from eujp.pipeline import load_countries
    from eujp.sources import SOURCES
    from eujp.validate import load_suite

    installed = Path(eujp.__file__).resolve().parent
    assert str(installed).startswith(sys.prefix), (installed, sys.prefix)
    for folder in (config.BUNDLED_SNAPSHOT_DIR, config.REFERENCE_DIR, config.EXPECTATIONS_DIR):
        assert folder.is_dir() and folder.resolve().is_relative_to(installed), folder
    for source in SOURCES:
        assert load_suite(source.table.name)["name"] == source.table.name
        payload = min(config.BUNDLED_SNAPSHOT_DIR.glob(source.snapshot_glob)).read_bytes()
        parsed = source.parse(payload)
        print(source.name, parsed.frame.height)
    assert load_countries(__import__("datetime").date(2026, 1, 1)).height > 200
    print("models", len(MODEL_TABLES))
""")


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (make test installs it into .venv)")
    return found


@pytest.mark.slow
def test_the_wheel_installs_and_runs_without_the_repository(tmp_path):
    uv = _uv()
    dist = tmp_path / "dist"
    built = subprocess.run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO_ROOT)],
                           capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = dist.glob("eujp-*.whl")

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The dependencies come from the test's own environment (a path entry, so its editable install of eujp,
    # a .pth file there, is NOT picked up); eujp itself only from the wheel.
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    installed = subprocess.run([uv, "pip", "install", "--no-deps", "--python", str(python), str(wheel)],
                               capture_output=True, text=True, timeout=600, check=False)
    assert installed.returncode == 0, installed.stderr[-3000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("EUJP_")}
    helped = subprocess.run([str(venv / "bin" / "eujp"), "run", "--help"], cwd=outside, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "Run the daily flow once" in helped.stdout

    checked = subprocess.run([str(python), "-c", CHECK], cwd=outside, env=env, capture_output=True, text=True,
                             timeout=300, check=False)
    assert checked.returncode == 0, checked.stderr[-3000:]
    # The same payloads parsed from the checkout give the same rows.
    from eujp.config import BUNDLED_SNAPSHOT_DIR
    from eujp.marts import MODEL_TABLES
    from eujp.sources import SOURCES

    expected = [f"{s.name} {s.parse(min(BUNDLED_SNAPSHOT_DIR.glob(s.snapshot_glob)).read_bytes()).frame.height}"
                for s in SOURCES]
    assert checked.stdout.splitlines() == [*expected, f"models {len(MODEL_TABLES)}"]
