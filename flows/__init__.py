"""Prefect flows: they orchestrate the plain steps in eujp.pipeline and add nothing else.

Quiet defaults are set before Prefect or Great Expectations are imported (no analytics, no progress bars), and
polars' allocator setting before polars is (eujp/__init__.py).
"""

import os

import eujp  # noqa: F401 - first: polars' allocator setting (eujp/__init__.py) must precede polars' import

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
