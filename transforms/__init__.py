"""Pure polars transforms: wire-shaped frames in, warehouse-shaped frames out. No I/O here."""
