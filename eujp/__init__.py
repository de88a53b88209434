"""EU–Japan partnership warehouse: the pipeline's steps (sources, parse, load, audit, publish) that flows/
orchestrates.

polars' allocator (jemalloc) is told, before polars is first imported, to give memory it has freed back to the
system at once instead of marking it reusable (MADV_FREE) and dropping it a second later: polars' own defaults
are `dirty_decay_ms:500,muzzy_decay_ms:1000`, and a page in that second state still counts in the process' RSS
until the kernel needs it. A run streams one chunk after another, so those pages piled up: the prepare step of
the one 50M payload held ~1.9 GiB of RSS, 1.5 GiB with `muzzy_decay_ms:0`, in the same time
(benchmarks/RESULTS.md, twenty-second session). A `_RJEM_MALLOC_CONF` set by the caller is left as it is."""

import os as _os

ALLOCATOR_CONF = "muzzy_decay_ms:0"
_os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_CONF)
