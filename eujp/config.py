"""Run settings: defaults, environment variables and CLI options resolved in one place."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from eujp.errors import EujpError

# The files the package ships: in a source checkout (an editable install) they are the repository's own
# folders; a built wheel carries copies under eujp/_bundled/ (pyproject.toml, force-include).
_BUNDLED = Path(__file__).resolve().parent / "_bundled"
_CHECKOUT = Path(__file__).resolve().parent.parent
BUNDLED_SNAPSHOT_DIR = (_BUNDLED if _BUNDLED.is_dir() else _CHECKOUT / "data") / "snapshot"
REFERENCE_DIR = (_BUNDLED if _BUNDLED.is_dir() else _CHECKOUT / "data") / "reference"
EXPECTATIONS_DIR = (_BUNDLED if _BUNDLED.is_dir() else _CHECKOUT) / "expectations"
DEFAULT_WAREHOUSE = Path("var/warehouse.duckdb")
DEFAULT_PUBLISH_URI = "var/objectstore"
# The folder of a warehouse's run files, for a warehouse not named warehouse.duckdb: `<its file name>` + this
WAREHOUSE_FILES_SUFFIX = ".d"


def warehouse_files_dir(warehouse_path: Path) -> Path:
    """Where a warehouse's runs keep their own files: the staging folder (staging links, their logs, spill/),
    the lake's catalog, the report, the catalog page and its charts, the Data Docs and the publish work folder.
    For the default file name `warehouse.duckdb` it is the warehouse's own folder (var/staging/,
    var/lake.ducklake, ... as they always were); any other warehouse file has a folder of its own beside it,
    `<file name>.d/` (var/trial.duckdb.d/staging/, var/trial.duckdb.d/lake.ducklake, ...), so two warehouses in
    one folder share none of them: a run's cleanup of what killed runs left, or a catalog it sets aside, is
    its own warehouse's. (The run lock is `<file name>.lock` beside the file; the snapshot digests,
    eujp.landing.DIGESTS_FILE, a cache of file hashes any run may read and add to, stay in the folder.)"""
    path = Path(warehouse_path)
    if path.name == DEFAULT_WAREHOUSE.name:
        return path.parent
    return path.parent / f"{path.name}{WAREHOUSE_FILES_SUFFIX}"


DUCKDB_MEMORY_LIMIT_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B)$", re.IGNORECASE)
MIN_DUCKDB_MEMORY_LIMIT_MB = 128


DEFAULT_DUCKDB_MEMORY_LIMIT = "1500MB"


def duckdb_memory_limit() -> str:
    """EUJP_DUCKDB_MEMORY_LIMIT (default 1500MB): how much memory DuckDB may use for its buffers while the run
    loads, audits and exports the warehouse. Joins and sorts beyond it spill to a temporary folder beside the
    warehouse instead of growing the process (DuckDB's own default is 80% of the machine's RAM). The default
    keeps the whole `eujp run` under 2.5 GB: the rest of the process (Prefect, Great Expectations, polars and
    the run's batches) holds ~0.7-0.9 GB while DuckDB loads (benchmarks/RESULTS.md, 2026-12-01: 2.9 GB with
    2GB, 2.2 GB with 1500MB at 10M wire rows)."""
    value = (os.environ.get("EUJP_DUCKDB_MEMORY_LIMIT") or "").strip() or DEFAULT_DUCKDB_MEMORY_LIMIT
    match = DUCKDB_MEMORY_LIMIT_PATTERN.match(value)
    if not match:
        raise ValueError(f"EUJP_DUCKDB_MEMORY_LIMIT must be a size such as 2GB or 1500MB, got {value!r}")
    number, unit = float(match.group(1)), match.group(2).upper()
    size = number * (1024 if "I" in unit else 1000) ** ("KMGT".index(unit[0]) + 1)
    if size < MIN_DUCKDB_MEMORY_LIMIT_MB * 10**6:  # DuckDB's load, audit and exports fail below it
        raise ValueError(f"EUJP_DUCKDB_MEMORY_LIMIT must be at least {MIN_DUCKDB_MEMORY_LIMIT_MB}MB, got {value!r}")
    if size > 10**18:  # DuckDB refuses a size beyond 2**64 bytes when the run opens the warehouse, not here
        raise ValueError(f"EUJP_DUCKDB_MEMORY_LIMIT must be at most 1000000TB (a size of this machine's order: "
                         f"2GB, 1500MB), got {value!r}")
    return value


def is_http_url(value: str) -> bool:
    """Whether `value` is an http(s) URL with a host."""
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def duckdb_config() -> dict[str, str]:
    """DuckDB settings for a connection the run opens (`duckdb.connect(..., config=duckdb_config())`): the
    memory limit above, for every connection that reads or writes the warehouse, the lake, the report or the
    Parquet exports, not only the load's (an export of a 50M-row table without it peaked at 5.2 GB)."""
    return {"memory_limit": duckdb_memory_limit()}


# the lake's catalog (eujp.lake: writer; eujp.bi: a reader of a published warehouse)
LAKE_CATALOG_ENV = "EUJP_LAKE_CATALOG"

# Rejected rows (eujp.rejections): a source that rejected more than this share of its rows in fails the run
# (its valid rows are still loaded); at or below it, the run completes with a warning naming the source.
BATCH_ROWS_ENV = "EUJP_BATCH_ROWS"
DEFAULT_BATCH_ROWS = 2_000_000


def batch_rows(env=None) -> int:
    """Wire rows per streamed chunk (EUJP_BATCH_ROWS, default 2,000,000): a streamed source (eujp.pipeline) is
    parsed, transformed, validated and loaded in chunks of at most this many wire rows, so its peak memory
    follows this setting, not the size of the source."""
    env = os.environ if env is None else env
    text = (env.get(BATCH_ROWS_ENV) or "").strip().replace("_", "")
    if not text:
        return DEFAULT_BATCH_ROWS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{BATCH_ROWS_ENV}={text!r} is not a whole number of rows >= 1")
    return int(text)


# Fan-out (flows/fanout.py): how long a run waits for a Dask worker while its cluster has none.
NO_WORKERS_SETTING = "EUJP_DASK_NO_WORKERS_SECONDS"
NO_WORKERS_DEFAULT = 120.0


def no_workers_seconds(env=None) -> float:
    """How long the run waits for a worker while its cluster has none (EUJP_DASK_NO_WORKERS_SECONDS, a number
    of seconds above 0; default 120); an EujpError naming the setting otherwise (the preflight reads it)."""
    env = os.environ if env is None else env
    raw = (env.get(NO_WORKERS_SETTING) or str(NO_WORKERS_DEFAULT)).strip()
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):  # NaN too
        raise EujpError(f"{NO_WORKERS_SETTING}={raw!r} is not a number of seconds above 0 (e.g. "
                        f"{NO_WORKERS_DEFAULT:g}, the default)")
    return value


# Writers (flows/writers.py): the Prefect global concurrency limit's name. Prefect refuses a name holding one
# of these characters (GlobalConcurrencyLimitCreate: pattern '^[^/%&><]+$').
WRITER_LIMIT_ENV = "EUJP_WRITER_LIMIT"
WRITER_LIMIT_FORBIDDEN = "/%&><"


def writer_limit_problem(name: str | None) -> str | None:
    """Why `name` (EUJP_WRITER_LIMIT) cannot name a Prefect global concurrency limit, or None ('off' and unset
    are fine). Said before the run: Prefect's own refusal is a validation error that names no setting."""
    if not name:
        return None
    bad = sorted({ch for ch in name if ch in WRITER_LIMIT_FORBIDDEN})
    if not bad:
        return None
    return (f"{WRITER_LIMIT_ENV}={name!r} cannot name a Prefect global concurrency limit: it holds "
            f"{', '.join(map(repr, bad))}; use a name without any of {' '.join(WRITER_LIMIT_FORBIDDEN)} "
            "(e.g. eujp-writer-team-a), or 'off'")


MAX_REJECTED_PCT_ENV = "EUJP_MAX_REJECTED_PCT"
DEFAULT_MAX_REJECTED_PCT = 5.0


def max_rejected_pct_env(source: str) -> str:
    """The variable of one source's own threshold: EUJP_MAX_REJECTED_PCT_<SOURCE NAME, UPPER CASE>."""
    return f"{MAX_REJECTED_PCT_ENV}_{source.upper()}"


def _pct(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a percentage between 0 and 100, got {value!r}") from None


DASK_ADDRESS_PATTERN = re.compile(r"^(tcp|tls|inproc|ucx)://[^\s/]+$")

# A run id names files (staging/{run_id}.duckdb) and object keys (runs/{run_id}/): one safe path segment.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# A Comext partner code as the facts hold it (ISO 3166 alpha-2, XS, or an aggregate such as EXT_EU27_2020), for
# `eujp run --remove-partner`; Japan, whose trade the warehouse is about, is never removed
PARTNER_CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{1,39}$")
JAPAN = "JP"


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique run id: 20261124T060000Z-1a2b3c."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


# Payload cap (eujp.pipeline.check_payload_sizes, eujp.live): a payload larger than this is refused before it
# is landed. EUJP_MAX_PAYLOAD_MB for every source, EUJP_MAX_PAYLOAD_MB_<SOURCE NAME, UPPER CASE> for one.
MAX_PAYLOAD_MB_ENV = "EUJP_MAX_PAYLOAD_MB"
DEFAULT_MAX_PAYLOAD_MB = 1024.0  # MB = 2**20 bytes


def max_payload_mb_env(source: str) -> str:
    """The variable of one source's own payload cap: EUJP_MAX_PAYLOAD_MB_<SOURCE NAME, UPPER CASE>."""
    return f"{MAX_PAYLOAD_MB_ENV}_{source.upper()}"


def max_payload_bytes(source: str, env=None) -> tuple[int, str]:
    """The largest payload `source` may land, in bytes, and the variable that says so (the source's own
    EUJP_MAX_PAYLOAD_MB_<SOURCE> when set, else EUJP_MAX_PAYLOAD_MB, default 1024 MB). ValueError names a bad
    value's variable."""
    env = os.environ if env is None else env
    for name in (max_payload_mb_env(source), MAX_PAYLOAD_MB_ENV):
        raw = (env.get(name) or "").strip()
        if raw:
            try:
                mb = float(raw)
            except ValueError:
                mb = float("nan")
            if not 0 < mb < float("inf") or int(mb * 2**20) < 1:  # also NaN, and less than a byte
                raise ValueError(f"{name} must be a size in MB above 0, got {raw!r}")
            return int(mb * 2**20), name
    return int(DEFAULT_MAX_PAYLOAD_MB * 2**20), MAX_PAYLOAD_MB_ENV


# the folder of a run's staging folder where it spills (Settings.spill_dir; emptied by the next run:
# eujp.warehouse.clean_stale_staging)
SPILL_FOLDER = "spill"


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
    # A source rejecting more than this % of its rows in fails the run (eujp.rejections); per source:
    # (source name, %) pairs from EUJP_MAX_REJECTED_PCT_<SOURCE> (names checked against the registry there).
    max_rejected_pct: float = DEFAULT_MAX_REJECTED_PCT
    max_rejected_pct_by_source: tuple[tuple[str, float], ...] = ()
    keep_runs: int = 7  # publish retention: how many published runs to keep
    only_sources: tuple[str, ...] = ()  # empty: all sources
    force: bool = False  # reprocess sources even when unchanged since their last load (full live extraction)
    # Comext partner codes whose rows the run deletes from the warehouse (`eujp run --remove-partner`,
    # eujp.partners.remove_partner_rows): a partner no longer compared, taken out of EUJP_COMEXT_PARTNERS
    remove_partners: tuple[str, ...] = ()
    lock_wait_seconds: float = 0.0  # a run finding another one writing waits this long, then fails
    public_url: str | None = None  # http(s) base under which the publish URI is served (links in artifacts)
    publish_timeout: float = 300.0  # EUJP_PUBLISH_TIMEOUT: seconds the whole publish may take, retries included
    raw_retention_days: int | None = None  # EUJP_RAW_RETENTION_DAYS (eujp.retention); None: never prune raw/
    # Fan-out (flows/fanout.py): the partitions of a streaming source (Comext) run as Prefect tasks on Dask.
    # dask_address (EUJP_DASK_ADDRESS, `--dask-address`): an existing scheduler, tcp://HOST:PORT; else with
    # fanout (EUJP_FANOUT=1, `--fanout`) a local cluster of dask_workers processes (EUJP_DASK_WORKERS).
    dask_address: str | None = None
    fanout: bool = False
    dask_workers: int = 2
    # Writers (flows/writers.py): the Prefect global concurrency limit every run holds while it writes
    # (EUJP_WRITER_LIMIT); None: one per remote publish target, none for a local folder (writer_limit_name);
    # "off": only the file lock.
    writer_limit: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or not RUN_ID_PATTERN.match(self.run_id):
            raise ValueError(f"run id {self.run_id!r} is not allowed: it names files and object keys, so it must be "
                             "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if self.keep_runs < 2:  # a reader who resolved latest.json just before it moved still reads that run
            raise ValueError(f"EUJP_KEEP_RUNS must be at least 2 (the previous published run stays readable), "
                             f"got {self.keep_runs}")
        if not 0 < self.publish_timeout <= MAX_PUBLISH_TIMEOUT:  # also NaN and inf: a deadline must be a time
            raise ValueError(f"EUJP_PUBLISH_TIMEOUT must be a number of seconds above 0 and at most "
                             f"{MAX_PUBLISH_TIMEOUT:g} (a week), got {self.publish_timeout:g}")
        if not 0 <= self.lock_wait_seconds <= MAX_PUBLISH_TIMEOUT:  # NaN never ends a wait: refused too
            raise ValueError(f"EUJP_LOCK_WAIT_SECONDS must be a number of seconds from 0 to {MAX_PUBLISH_TIMEOUT:g}, "
                             f"got {self.lock_wait_seconds:g}")
        if self.dask_workers < 1:
            raise ValueError(f"EUJP_DASK_WORKERS must be at least 1, got {self.dask_workers}")
        if self.dask_address is not None and not DASK_ADDRESS_PATTERN.match(self.dask_address):
            raise ValueError(f"EUJP_DASK_ADDRESS (--dask-address) must be a Dask scheduler address such as "
                             "tcp://10.0.0.5:8786, "
                             f"got {self.dask_address!r}")
        if self.raw_retention_days is not None and not 1 <= self.raw_retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"EUJP_RAW_RETENTION_DAYS (prune-raw --days) must be from 1 to {MAX_RETENTION_DAYS} "
                             "(unset: keep every "
                             f"landing), got {self.raw_retention_days}")
        if self.public_url is not None and not is_http_url(self.public_url):  # printed as the runs' links
            raise ValueError(f"EUJP_PUBLIC_URL must be the http(s) address the published files are served at "
                             f"(https://data.example.org/eujp), got {self.public_url!r}")
        for code in self.remove_partners:
            if not isinstance(code, str) or not PARTNER_CODE_PATTERN.match(code):
                raise ValueError(f"--remove-partner {code!r} is not a Comext partner code: write it as Comext does, "
                                 "in capitals (KR, US, EXT_EU27_2020)")
            if code == JAPAN:
                raise ValueError("--remove-partner JP: Japan is the partner this warehouse is about; its rows are "
                                 "never removed")
        if not 0 <= self.max_row_drop_pct <= 100:
            raise ValueError(f"EUJP_MAX_ROW_DROP_PCT must be between 0 and 100, got {self.max_row_drop_pct:g}")
        for name, pct in ((MAX_REJECTED_PCT_ENV, self.max_rejected_pct),
                          *((max_rejected_pct_env(s), p) for s, p in self.max_rejected_pct_by_source)):
            if not 0 <= pct <= 100:  # also NaN
                raise ValueError(f"{name} must be a percentage between 0 and 100, got {pct:g}")

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
            base["max_row_drop_pct"] = _number("EUJP_MAX_ROW_DROP_PCT", env["EUJP_MAX_ROW_DROP_PCT"], float)
        if env.get(MAX_REJECTED_PCT_ENV):
            base["max_rejected_pct"] = _pct(MAX_REJECTED_PCT_ENV, env[MAX_REJECTED_PCT_ENV])
        per_source = sorted((name.removeprefix(f"{MAX_REJECTED_PCT_ENV}_").lower(), _pct(name, value))
                            for name, value in env.items()
                            if name.startswith(f"{MAX_REJECTED_PCT_ENV}_") and value.strip())
        if per_source:
            base["max_rejected_pct_by_source"] = tuple(per_source)
        if env.get("EUJP_KEEP_RUNS"):
            base["keep_runs"] = _number("EUJP_KEEP_RUNS", env["EUJP_KEEP_RUNS"], int)
        if env.get("EUJP_LOCK_WAIT_SECONDS"):
            base["lock_wait_seconds"] = _number("EUJP_LOCK_WAIT_SECONDS", env["EUJP_LOCK_WAIT_SECONDS"], float)
        if env.get("EUJP_PUBLIC_URL"):
            base["public_url"] = env["EUJP_PUBLIC_URL"]
        if env.get("EUJP_PUBLISH_TIMEOUT"):
            base["publish_timeout"] = _number("EUJP_PUBLISH_TIMEOUT", env["EUJP_PUBLISH_TIMEOUT"], float)
        if env.get("EUJP_RAW_RETENTION_DAYS"):
            base["raw_retention_days"] = _number("EUJP_RAW_RETENTION_DAYS", env["EUJP_RAW_RETENTION_DAYS"], int)
        if env.get("EUJP_DASK_ADDRESS"):
            base["dask_address"] = env["EUJP_DASK_ADDRESS"].strip()
        if env.get("EUJP_FANOUT"):
            base["fanout"] = _switch("EUJP_FANOUT", env["EUJP_FANOUT"])
        if env.get("EUJP_DASK_WORKERS"):
            base["dask_workers"] = _number("EUJP_DASK_WORKERS", env["EUJP_DASK_WORKERS"], int)
        if env.get("EUJP_WRITER_LIMIT"):
            base["writer_limit"] = env["EUJP_WRITER_LIMIT"].strip()
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def max_rejected_pct_for(self, source: str) -> tuple[float, str]:
        """The rejected-rows threshold of `source` (% of its rows in) and the variable it comes from: the
        source's own EUJP_MAX_REJECTED_PCT_<SOURCE> when set, else EUJP_MAX_REJECTED_PCT (default 5)."""
        own = dict(self.max_rejected_pct_by_source)
        if source in own:
            return own[source], max_rejected_pct_env(source)
        return self.max_rejected_pct, MAX_REJECTED_PCT_ENV

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def fans_out(self) -> bool:
        """Whether streaming sources run partition by partition on Dask (a scheduler address implies it)."""
        return self.fanout or self.dask_address is not None

    @property
    def files_dir(self) -> Path:
        """The folder of this warehouse's own run files (warehouse_files_dir)."""
        return warehouse_files_dir(self.warehouse_path)

    @property
    def staging_dir(self) -> Path:
        """The warehouse's staging folder: `staging/` in its files folder (var/staging/ for var/warehouse.duckdb,
        var/trial.duckdb.d/staging/ for var/trial.duckdb): only this warehouse's runs write or clean it."""
        return self.files_dir / "staging"

    @property
    def spill_dir(self) -> Path:
        """Where a run spills what it holds on disk until its load (a streamed source's wire buckets and valid
        chunks): in the warehouse's staging folder, like DuckDB's own spill, not in the system's temporary
        folder (often a RAM disk, and never cleaned after a killed run). The next run of the same warehouse
        removes what a killed one left here."""
        return self.staging_dir / SPILL_FOLDER


MAX_PUBLISH_TIMEOUT = 7 * 24 * 3600.0  # seconds: a deadline or a wait longer than a week is a typo
MAX_RETENTION_DAYS = 36_500  # a hundred years: more overflows the dates a prune computes


def _switch(name: str, value: str) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off (any case); ValueError naming it otherwise."""
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be on or off (1/true/yes/on, 0/false/no/off), got {value!r}")


def _number(name: str, value: str, kind: type) -> float | int:
    """A numeric setting's value; ValueError naming the variable when it is not a number."""
    try:
        return kind(value.strip())
    except ValueError:
        raise ValueError(f"{name} must be {'a whole number' if kind is int else 'a number'}, got {value!r}") from None
