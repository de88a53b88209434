"""EU–Japan partnership warehouse: the pipeline's steps (sources, parse, load, audit, publish) that flows/
orchestrates.

polars' allocator (jemalloc) is told, before polars is first imported, to give the pages it has freed back to the
system when they have been unused for polars' half second (`dirty_decay_ms:500`), instead of marking them
reusable (MADV_FREE, jemalloc's "muzzy" state) for one more second (polars' `muzzy_decay_ms:1000`): a page in
that state still counts in the process' RSS until the kernel needs it. A run streams one chunk after another,
so those pages piled up: the prepare step of the one 50M payload held ~1.9 GiB of RSS, 1.5 GiB with
`muzzy_decay_ms:0`, in the same time (benchmarks/RESULTS.md, twenty-second session). A `_RJEM_MALLOC_CONF`
set by the caller is left as it is."""

import os as _os

ALLOCATOR_CONF = "muzzy_decay_ms:0"
_os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_CONF)
