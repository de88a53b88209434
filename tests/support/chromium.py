"""Headless Chromium (Debian's package; .ci/run installs it) for the tests that look at a page as a person
would: dump the rendered DOM or take a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HEADLESS_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
# No network at all: every request goes to a proxy that is not there, and no host name resolves.
OFFLINE_FLAGS = [*HEADLESS_FLAGS, "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                 "--virtual-time-budget=10000"]


def need(problem: str | None, hint: str) -> None:
    """Skip the test for `problem` (fail it under CI, where everything it needs is installed)."""
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}: {hint}")
        pytest.skip(f"{problem} ({hint})")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need(None if path else "chromium is not installed", ".ci/run installs it: apt-get install chromium")
    return path


def run_chromium(args: list[str], profile: Path, flags: list[str] = HEADLESS_FLAGS) -> subprocess.CompletedProcess:
    """Chromium with `flags` and its own profile folder, then `args` (e.g. --dump-dom URL)."""
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run([chromium(), *flags, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=180, check=False)
