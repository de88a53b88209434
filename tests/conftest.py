"""Shared test fixtures: where the repo, its bundled snapshot and the shared real files are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_DIR = REPO_ROOT / "data" / "snapshot"
REFERENCE_DIR = REPO_ROOT / "data" / "reference"


def _shared_data_dir() -> Path | None:
    """`../shared/data` beside the checkout (or $EUJP_SHARED_DATA): real files we may not bundle."""
    candidates = [os.environ.get("EUJP_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data",
                  REPO_ROOT.parent.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def snapshot_dir() -> Path:
    return SNAPSHOT_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not beside this checkout")
    return path
