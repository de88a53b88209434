"""Performance benchmarks of the eujp pipeline at Comext scale (see benchmarks/README.md).

Nothing here is imported by the pipeline; the package exists so `python -m benchmarks.run` works from the
repo root."""
