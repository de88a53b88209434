"""One parser per wire format: bytes in, a `ParsedPayload` out. No network, no warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass
class ParsedPayload:
    """A payload decoded into a long 'wire-shaped' frame (columns as the source names them).

    `source_version` is the version stamp the source put on the payload (JSON-stat `updated`,
    Comext `LAST UPDATE`, SIPRI 'Data generated'), or None when the format has none.
    """

    frame: pl.DataFrame
    source_version: str | None = None
    meta: dict = field(default_factory=dict)
