"""polars' allocator setting (eujp/__init__.py): set before polars is imported by every entry point."""

import os
import subprocess
import sys

import pytest

from eujp import ALLOCATOR_CONF

CODE = "import {first}, polars, os; print(os.environ['_RJEM_MALLOC_CONF'])"


@pytest.mark.parametrize("first", ["flows.cli", "flows.daily", "eujp.pipeline", "benchmarks.run"])
def test_polars_allocator_returns_freed_memory_at_once(first):
    """Whatever module an entry point imports first, polars hands jemalloc its own defaults followed by
    muzzy_decay_ms:0 (a later key wins), so that freed pages leave the RSS at once."""
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    out = subprocess.run([sys.executable, "-c", CODE.format(first=first)], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out.split(",")[-1] == ALLOCATOR_CONF == "muzzy_decay_ms:0"
    assert "muzzy_decay_ms:1000" in out  # polars' default, overridden by what follows it


def test_polars_allocator_setting_of_the_caller_is_kept():
    env = {**os.environ, "_RJEM_MALLOC_CONF": "dirty_decay_ms:100"}
    out = subprocess.run([sys.executable, "-c", CODE.format(first="flows.cli")], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out.endswith(",dirty_decay_ms:100") and ALLOCATOR_CONF not in out
