"""Performance benchmarks of the eujp pipeline at Comext scale (see benchmarks/README.md).

Nothing here is imported by the pipeline; the package exists so `python -m benchmarks.run` works from the
repo root."""

import eujp  # noqa: F401 - before polars: the allocator setting eujp's runs have (eujp/__init__.py)
