"""Run settings: defaults, environment variables and CLI options resolved in one place."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

# The files the package ships: in a source checkout (an editable install) they are the repository's own
# folders; a built wheel carries copies under eujp/_bundled/ (pyproject.toml, force-include).
_BUNDLED = Path(__file__).resolve().parent / "_bundled"
_CHECKOUT = Path(__file__).resolve().parent.parent
BUNDLED_SNAPSHOT_DIR = (_BUNDLED if _BUNDLED.is_dir() else _CHECKOUT / "data") / "snapshot"
REFERENCE_DIR = (_BUNDLED if _BUNDLED.is_dir() else _CHECKOUT / "data") / "reference"
EXPECTATIONS_DIR = (_BUNDLED if _BUNDLED.is_dir() else _CHECKOUT) / "expectations"
DEFAULT_WAREHOUSE = Path("var/warehouse.duckdb")
DEFAULT_PUBLISH_URI = "var/objectstore"


DUCKDB_MEMORY_LIMIT_PATTERN = re.compile(r"^\d+(?:\.\d+)?\s*(?:[KMGT]i?B)$", re.IGNORECASE)


def duckdb_memory_limit() -> str:
    """EUJP_DUCKDB_MEMORY_LIMIT (default 2GB): how much memory DuckDB may use for its buffers while the run
    loads, audits and exports the warehouse. Joins and sorts beyond it spill to a temporary folder beside the
    warehouse instead of growing the process (DuckDB's own default is 80% of the machine's RAM)."""
    value = os.environ.get("EUJP_DUCKDB_MEMORY_LIMIT") or "2GB"
    if not DUCKDB_MEMORY_LIMIT_PATTERN.match(value):
        raise ValueError(f"EUJP_DUCKDB_MEMORY_LIMIT must be a size such as 2GB or 1500MB, got {value!r}")
    return value


# A run id names files (staging/{run_id}.duckdb) and object keys (runs/{run_id}/): one safe path segment.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: 20261124T060000Z-1a2b3c."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know. Build with `Settings.from_env(**overrides)`."""

    snapshot_dir: Path = BUNDLED_SNAPSHOT_DIR
    warehouse_path: Path = DEFAULT_WAREHOUSE
    publish_uri: str = DEFAULT_PUBLISH_URI
    source_mode: str = "snapshot"  # snapshot | live | raw
    raw_date: date | None = None  # with source_mode == "raw": the landing date to rebuild from
    run_date: date = field(default_factory=lambda: datetime.now(UTC).date())
    run_id: str = field(default_factory=new_run_id)
    max_row_drop_pct: float = 50.0  # audit: a table shrinking more than this vs the last run fails
    keep_runs: int = 7  # publish retention: how many published runs to keep
    only_sources: tuple[str, ...] = ()  # empty: all sources
    force: bool = False  # reprocess sources even when unchanged since their last load (full live extraction)
    lock_wait_seconds: float = 0.0  # a run finding another one writing waits this long, then fails
    public_url: str | None = None  # http(s) base under which the publish URI is served (links in artifacts)

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or not RUN_ID_PATTERN.match(self.run_id):
            raise ValueError(f"run id {self.run_id!r} is not allowed: it names files and object keys, so it must be "
                             "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if self.keep_runs < 2:  # a reader who resolved latest.json just before it moved still reads that run
            raise ValueError(f"EUJP_KEEP_RUNS must be at least 2 (the previous published run stays readable), "
                             f"got {self.keep_runs}")
        if not 0 <= self.max_row_drop_pct <= 100:
            raise ValueError(f"EUJP_MAX_ROW_DROP_PCT must be between 0 and 100, got {self.max_row_drop_pct:g}")

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        env = os.environ
        base: dict = {}
        if env.get("EUJP_SNAPSHOT_DIR"):
            base["snapshot_dir"] = Path(env["EUJP_SNAPSHOT_DIR"])
        if env.get("EUJP_WAREHOUSE"):
            base["warehouse_path"] = Path(env["EUJP_WAREHOUSE"])
        if env.get("EUJP_PUBLISH_URI"):
            base["publish_uri"] = env["EUJP_PUBLISH_URI"]
        if env.get("EUJP_MAX_ROW_DROP_PCT"):
            base["max_row_drop_pct"] = float(env["EUJP_MAX_ROW_DROP_PCT"])
        if env.get("EUJP_KEEP_RUNS"):
            base["keep_runs"] = int(env["EUJP_KEEP_RUNS"])
        if env.get("EUJP_LOCK_WAIT_SECONDS"):
            base["lock_wait_seconds"] = float(env["EUJP_LOCK_WAIT_SECONDS"])
        if env.get("EUJP_PUBLIC_URL"):
            base["public_url"] = env["EUJP_PUBLIC_URL"]
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def staging_dir(self) -> Path:
        return self.warehouse_path.parent / "staging"
