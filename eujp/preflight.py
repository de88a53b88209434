"""Preflight: what a run will need, checked in seconds before it extracts anything.

    checks = run_checks(settings, prefect_api_url=...)   # every check, one Check each (`eujp check`)
    preflight(settings, prefect_api_url=...)              # the same; PreflightFailed when any failed

A check only looks: it changes nothing in the warehouse folder and leaves nothing in the publish target
(the S3 write probe is deleted at once). Each failed check names the setting to fix, and PreflightFailed
says them all in one message, so a misconfigured run stops before extraction with nothing landed,
loaded, promoted or published, and the CLI exits with 2 (a usage or configuration error).

The checks: the publish target is reachable and writable (a folder: exists or can be created, and is
writable; S3: the bucket exists, the credentials are accepted, a probe object can be written and deleted
under the prefix, with short timeouts and one retry so a wrong bucket or endpoint fails in seconds); the
warehouse folder is writable; the Prefect API answers when one is configured; the snapshot folder exists
in snapshot mode; the settings the run reads later are readable, and in live mode each selected source
whose endpoint has no default has its URL (`check_run_settings`); the lake's settings
are readable and a PostgreSQL catalog answers (`check_lake_catalog`); every expectation suite translates to
the audit's SQL (`check_suites`).
"""

from __future__ import annotations

import errno
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eujp.config import Settings, is_http_url
from eujp.errors import EujpError
from eujp.sql import sql_string

PUBLISH_SETTING = "EUJP_PUBLISH_URI (--publish)"
WAREHOUSE_SETTING = "EUJP_WAREHOUSE (--warehouse)"
SNAPSHOT_SETTING = "EUJP_SNAPSHOT_DIR (--snapshot-dir)"
PREFECT_SETTING = "PREFECT_API_URL"
CREDENTIALS_SETTING = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or EUJP_S3_CREDENTIALS_BLOCK)"
ENDPOINT_SETTING = "AWS_ENDPOINT_URL"
REGION_SETTING = "AWS_REGION"

# S3 probe: seconds to connect, seconds to wait for an answer, attempts in all (one retry).
S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT, S3_ATTEMPTS = 3.0, 5.0, 2
PREFECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    """One check's outcome: `name` (what was checked), `ok`, `detail` (what was found) and, when it failed,
    `setting` (what to fix)."""

    name: str
    ok: bool
    detail: str
    setting: str | None = None
    warning: str | None = None  # passed, with something the run goes on without but a person should see

    def line(self) -> str:
        """'ok      publish target: ...', 'WARNING snapshot folder: ...; <the warning>' or 'FAILED  publish
        target: ... (fix EUJP_PUBLISH_URI (--publish))'."""
        fix = f" (fix {self.setting})" if not self.ok and self.setting else ""
        label = "FAILED" if not self.ok else "WARNING" if self.warning else "ok"
        return f"{label:<7} {self.name}: {self.detail}{fix}" + (f"; {self.warning}" if self.ok and self.warning else "")

    def problem(self) -> str:
        return f"{self.name}: {self.detail}" + (f"; fix {self.setting}" if self.setting else "")


class PreflightFailed(EujpError):
    """A check before the run failed: nothing was extracted, written or published. Holds the failed checks."""

    def __init__(self, failed: list[Check]):
        self.failed = failed
        super().__init__("the run cannot start: " + " | ".join(c.problem() for c in failed)
                         + ". Nothing was extracted, written or published.")

    def __reduce__(self):  # picklable (a flow's result may carry it)
        return (PreflightFailed, (self.failed,))


def _ok(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _failed(name: str, detail: str, setting: str | None) -> Check:
    return Check(name, False, detail, setting)


# --- folders ---------------------------------------------------------------------------------------------

def _nearest_existing(path: Path) -> Path:
    """`path` or the closest of its ancestors that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_problem(folder: Path) -> str | None:
    """Why this run could not write files in `folder` (creating it first if need be), or None. Looks with
    os.access, then makes and removes an empty folder in the nearest folder that exists: root passes every
    os.access check, on a read-only mount and under /proc too. Nothing is left behind."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return f"{existing} is a file, not a folder: {folder} cannot be created"
    why = None if os.access(existing, os.W_OK | os.X_OK) else _not_writable_because(existing)
    if why is None:
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".eujp-preflight-", dir=existing))
        except OSError as exc:
            why = _not_writable_because(existing) if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
                else f"a folder made in it failed: {exc.strerror or type(exc).__name__}"
    if why is None:
        return None
    if existing == folder.absolute():
        return f"{folder} is not writable ({why})"
    return f"{folder} cannot be created ({existing} is not writable: {why})"


def _not_writable_because(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


# --- the publish target ----------------------------------------------------------------------------------

NAME_PUBLISH = "publish target"


def publish_uri_problem(uri: str) -> tuple[str, str] | None:
    """Why the publish URI, or for s3:// its client's settings (EUJP_S3_*), cannot be used, and the setting to
    fix; None when both read. The publish target's check and the lake catalog's (which lives under it) say it."""
    from eujp.storage import check_publish_uri, s3_endpoint, s3_settings

    try:
        check_publish_uri(uri)
    except ValueError as exc:
        return str(exc), PUBLISH_SETTING
    if uri.startswith("s3://"):
        try:
            s3_settings()
            s3_endpoint()
        except ValueError as exc:  # it names the setting first: "EUJP_S3_MAX_ATTEMPTS='x' ..."
            return str(exc), str(exc).split("=", 1)[0]
    return None


def check_publish_target(settings: Settings, *, write: bool = True) -> Check:
    """The publish target (a folder or s3://bucket/prefix) is reachable and, with `write`, writable."""
    uri = settings.publish_uri
    problem = publish_uri_problem(uri)
    if problem:
        return _failed(NAME_PUBLISH, *problem)
    if uri.startswith("s3://"):
        return check_s3_target(uri, write=write, probe_name=f".eujp-preflight-{settings.run_id}")
    folder = Path(uri.removeprefix("file://"))
    if not write:
        if folder.is_dir() and os.access(folder, os.R_OK | os.X_OK):
            return _ok(NAME_PUBLISH, f"folder {folder.absolute()} is readable")
        return _failed(NAME_PUBLISH, f"folder {folder.absolute()} does not exist or is not readable",
                       PUBLISH_SETTING)
    problem = folder_problem(folder)
    if problem:
        return _failed(NAME_PUBLISH, problem, PUBLISH_SETTING)
    return _ok(NAME_PUBLISH, f"folder {folder.absolute()} is writable" if folder.exists()
               else f"folder {folder.absolute()} can be created")


def preflight_s3_client():
    """A boto3 S3 client configured like the pipeline's (eujp.storage.make_s3_client: endpoint, credentials,
    addressing style), but with short timeouts and a single retry."""
    from botocore.config import Config

    from eujp.storage import s3_addressing_style, s3_client

    return s3_client(Config(retries={"total_max_attempts": S3_ATTEMPTS, "mode": "standard"},
                            connect_timeout=S3_CONNECT_TIMEOUT, read_timeout=S3_READ_TIMEOUT,
                            s3={"addressing_style": s3_addressing_style()}))


def check_s3_target(uri: str, *, write: bool = True, probe_name: str = ".eujp-preflight",
                    client=None) -> Check:
    """s3://bucket/prefix (a URI `publish_uri_problem` passed: it names a bucket): the bucket exists and the
    credentials are accepted (head_bucket); with `write`, a probe object is written under the prefix and
    deleted."""
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    try:
        client = client or preflight_s3_client()
        client.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 - every failure is one of the settings to fix
        return _s3_failure(uri, bucket, "looking up the bucket", exc)
    if not write:
        return _ok(NAME_PUBLISH, f"bucket {bucket!r} exists and the credentials are accepted")
    key = f"{prefix.strip('/')}/{probe_name}" if prefix.strip("/") else probe_name
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"eujp preflight probe\n")
    except Exception as exc:  # noqa: BLE001
        return _s3_failure(uri, bucket, f"writing a probe object {key}", exc)
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        return _s3_failure(uri, bucket, f"deleting the probe object {key}", exc)
    return _ok(NAME_PUBLISH, f"{uri}: bucket exists, credentials accepted, a probe object was written and deleted")


_S3_CODES: dict[str, tuple[str, str]] = {  # S3 error code: (what it means, the setting to fix)
    "404": ("does not exist", PUBLISH_SETTING),
    "NoSuchBucket": ("does not exist", PUBLISH_SETTING),
    "403": ("refused the credentials, or they may not use this bucket", CREDENTIALS_SETTING),
    "AccessDenied": ("refused access: the credentials may not do this", CREDENTIALS_SETTING),
    "InvalidAccessKeyId": ("does not know the access key id", CREDENTIALS_SETTING),
    "SignatureDoesNotMatch": ("refused the secret access key", CREDENTIALS_SETTING),
    "InvalidToken": ("refused the session token", CREDENTIALS_SETTING),
    "ExpiredToken": ("refused the expired session token", CREDENTIALS_SETTING),
    "301": ("is in another region", REGION_SETTING),
    "PermanentRedirect": ("is in another region", REGION_SETTING),
    "AuthorizationHeaderMalformed": ("is in another region", REGION_SETTING),
}


def _s3_failure(uri: str, bucket: str, doing: str, exc: Exception) -> Check:
    """The failed check for an S3 error: what went wrong, in words, and the setting to fix. Never quotes a
    credential (botocore's messages do not hold them)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return _failed(NAME_PUBLISH, f"{uri}: no usable S3 credentials were found", CREDENTIALS_SETTING)
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
        return _failed(NAME_PUBLISH, f"{uri}: the S3 endpoint {endpoint} did not answer ({type(exc).__name__})",
                       ENDPOINT_SETTING)
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        meaning, setting = _S3_CODES.get(code, (f"answered {code or 'an error'}", PUBLISH_SETTING))
        return _failed(NAME_PUBLISH, f"{uri}: bucket {bucket!r} {meaning} ({doing}, S3 error {code})", setting)
    if isinstance(exc, EujpError):  # the credentials block could not be read (eujp.storage.s3_credentials)
        return _failed(NAME_PUBLISH, str(exc), "EUJP_S3_CREDENTIALS_BLOCK")
    return _failed(NAME_PUBLISH, f"{uri}: {doing} failed: {type(exc).__name__}: {exc}", PUBLISH_SETTING)


# --- the warehouse, the snapshot folder ------------------------------------------------------------------

def check_warehouse_folder(settings: Settings) -> Check:
    """The warehouse's folder (which also holds its lock, staging copies and Data Docs) is writable, or can
    be created; and no other process (a reader, `duckdb.connect(path, read_only=True)`) has the warehouse
    open, which would fail the run only at its load, after every source was extracted and validated. A
    process holding the run lock is another run: the lock decides (this run waits or fails, RunLocked)."""
    from eujp.lock import recorded_holder_pid
    from eujp.warehouse import in_use_message, open_elsewhere

    path = settings.warehouse_path
    if path.is_dir():
        return _failed("warehouse", f"{path} is a folder: the warehouse is a file", WAREHOUSE_SETTING)
    problem = folder_problem(path.parent)
    if problem:
        return _failed("warehouse", problem, WAREHOUSE_SETTING)
    if not_duckdb := _not_a_duckdb_file(path):  # the run failed at its first copy, naming a staging link
        return _failed("warehouse", not_duckdb, WAREHOUSE_SETTING)
    holder = open_elsewhere(path)
    if holder is not None and holder[0] is not None and holder[0] != recorded_holder_pid(path):
        return _failed("warehouse", in_use_message(path, *holder), None)
    return _ok("warehouse", f"folder {path.parent.absolute()} is writable" if path.parent.exists()
               else f"folder {path.parent.absolute()} can be created")


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB database file


def _not_a_duckdb_file(path: Path) -> str | None:
    """Why the existing file `path` is no DuckDB database (its header; DuckDB refuses an empty file too), None
    when it is one or does not exist (a new warehouse is made)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    if head[8:12] == DUCKDB_MAGIC:
        return None
    if not head:
        return f"{path} is an empty file, no DuckDB database: remove it (a new warehouse is made where none is)"
    return f"{path} is no DuckDB database (its first bytes are {head[:12]!r}): give the warehouse file's path"


def check_snapshot_folder(settings: Settings) -> Check:
    """In snapshot mode, the snapshot folder exists."""
    if settings.source_mode != "snapshot":
        return _ok("snapshot folder", f"not read (sources: {settings.source_mode})")
    from eujp.sources import SOURCES

    folder = settings.snapshot_dir
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        return _failed("snapshot folder", f"{folder} {what}", SNAPSHOT_SETTING)
    if not any(next(folder.glob(s.snapshot_glob), None) for s in SOURCES):
        # every source would fail "no file matching", and the run publish a run of failed sources
        return _failed("snapshot folder", f"{folder} holds no file of any source ("
                       + ", ".join(s.snapshot_glob for s in SOURCES) + ")", SNAPSHOT_SETTING)
    from eujp.extract import snapshot_patterns, unread_snapshot_files

    unread = unread_snapshot_files(folder, SOURCES)
    return Check("snapshot folder", True, f"{folder} exists", warning=unread and (
        f"{len(unread)} file(s) no source reads, not loaded: {', '.join(unread)} (each source reads the files "
        f"named as its patterns: {', '.join(snapshot_patterns(SOURCES))}; rename a file to load it)") or None)


def check_run_settings(settings: Settings, env=None) -> Check:
    """The settings the run reads only once it is under way, read now: EUJP_BATCH_ROWS, EUJP_DUCKDB_MEMORY_LIMIT,
    EUJP_DASK_NO_WORKERS_SECONDS, EUJP_WRITER_LIMIT (a name Prefect accepts for a concurrency limit), the payload
    caps (EUJP_MAX_PAYLOAD_MB and EUJP_MAX_PAYLOAD_MB_<SOURCE>, which must name a source) and, in
    live mode, what each source asks its service for (Source.request_scope reads its codes and first period:
    EUJP_COMEXT_PARTNERS=jp;cn or EUJP_COMEXT_START=01/2002 fail here, not after the other sources' downloads,
    and not as a run that ends 'unchanged' with no rows; so does a first period after the run's UTC date,
    settings.run_date: EUJP_COMEXT_START=2027-01 in December 2026), and each selected source whose live
    endpoint has no default has its URL (`missing_endpoints`)."""
    from eujp.config import (
        MAX_PAYLOAD_MB_ENV,
        NO_WORKERS_SETTING,
        WRITER_LIMIT_ENV,
        batch_rows,
        duckdb_memory_limit,
        max_payload_bytes,
        max_payload_mb_env,
        no_workers_seconds,
        writer_limit_problem,
    )
    from eujp.sources import SOURCES, SOURCES_BY_NAME

    env = os.environ if env is None else env
    problems: list[str] = []
    settings_named: list[str] = []

    def read(name: str, reader: Callable[[], object]) -> None:
        try:
            reader()
        except (ValueError, EujpError) as exc:
            problems.append(str(exc))
            settings_named.append(name)

    read("EUJP_BATCH_ROWS", lambda: batch_rows(env))
    read("EUJP_DUCKDB_MEMORY_LIMIT", duckdb_memory_limit)
    read(NO_WORKERS_SETTING, lambda: no_workers_seconds(env))  # read by a fanned-out run, after extraction
    limit_problem = writer_limit_problem(settings.writer_limit)  # read when the run takes its writer slot
    if limit_problem:
        problems.append(limit_problem)
        settings_named.append(WRITER_LIMIT_ENV)
    for name in SOURCES_BY_NAME:
        read(f"{MAX_PAYLOAD_MB_ENV}*", lambda name=name: max_payload_bytes(name, env))
    caps = {max_payload_mb_env(name) for name in SOURCES_BY_NAME}
    for name in sorted(k for k in env if k.startswith(f"{MAX_PAYLOAD_MB_ENV}_") and k not in caps):
        problems.append(f"{name} names no source (the per-source payload caps are {', '.join(sorted(caps))})")
        settings_named.append(name)
    from eujp.rejections import unknown_threshold_sources

    for problem in unknown_threshold_sources(settings):  # a typo leaves its source under the general one
        problems.append(problem)
        settings_named.append(problem.split(" ", 1)[0])
    if settings.source_mode == "live":
        for source in SOURCES:
            if source.request_scope is not None:
                read(f"the settings of {source.name}",
                     lambda source=source: source.request_scope(env, settings.run_date))
        for problem, setting in missing_endpoints(settings, env):
            problems.append(problem)
            settings_named.append(setting)
        for problem in still_requested(settings, env):
            problems.append(problem)
            settings_named.append("EUJP_COMEXT_PARTNERS")
    if problems:
        return _failed("settings", "; ".join(dict.fromkeys(problems)), ", ".join(dict.fromkeys(settings_named)))
    read_in = "live requests, batches, memory and payload caps" if settings.source_mode == "live" else \
        "batches, memory and payload caps"
    return _ok("settings", f"{read_in}: every value readable")


def still_requested(settings: Settings, env) -> list[str]:
    """A live run's --remove-partner codes that EUJP_COMEXT_PARTNERS still asks for (all of them when it is empty:
    every partner): removed today, the next live run would fetch their rows again, as a partner added."""
    if not settings.remove_partners:
        return []
    from eujp.sources.comext_goods import comext_codes

    try:
        asked = comext_codes(env, "EUJP_COMEXT_PARTNERS")
    except EujpError:  # said by the request scope's own check above
        return []
    kept = [p for p in settings.remove_partners if not asked or p in asked]
    if not kept:
        return []
    asks = f"EUJP_COMEXT_PARTNERS={','.join(asked)} still asks for" if asked else \
        "EUJP_COMEXT_PARTNERS is empty (every partner): it still asks for"
    named, them = ", ".join(kept), "it" if len(kept) == 1 else "them"
    problem = (f"--remove-partner {named}: {asks} {named}; take {them} out first, else the next live run fetches "
               "the rows again")
    return [problem]


def missing_endpoints(settings: Settings, env) -> list[tuple[str, str]]:
    """(problem, variable) for each source the run selected (Settings.only_sources) whose live endpoint has no
    default (eujp.live.Endpoint.required) while its variable is unset: its extraction would fail at once, after
    Prefect started, and the run end Failed every day. The way out is the variable, or a run without the source."""
    from eujp.sources import selected_sources

    chosen = selected_sources(settings.only_sources)
    found = []
    for source in chosen:
        if source.endpoint is not None and source.endpoint.missing(env):
            others = [s.name for s in chosen if s is not source]
            leave_out = (f"Or leave {source.name} out of the run: "
                         + " ".join(f"--only {name}" for name in others)) if others else \
                "Or run other sources (--only NAME)"
            problem = (f"{source.endpoint.env} is not set, and {source.name} has no default live endpoint: "
                       f"{source.endpoint.note} {leave_out}")
            found.append((problem, source.endpoint.env))
    return found


# --- Prefect, the lake catalog ---------------------------------------------------------------------------

def check_suites(settings: Settings) -> Check:
    """Every table's expectation suite translates to the SQL of the audit (eujp.suite_sql.translate_suite): an
    expectation type (or kwarg) the audit does not know would pass Great Expectations' validation and then
    stop the run at the audit, after every load. A failure names the suite file and the expectation."""
    import duckdb

    from eujp.suite_sql import translate_suite
    from eujp.tables import TABLES
    from eujp.validate import SUITE_TABLES, suite_path
    from eujp.warehouse import create_tables

    problems: list[str] = []
    with duckdb.connect() as conn:  # empty tables of the declared columns: nothing of the warehouse is read
        create_tables(conn, [TABLES[t] for t in SUITE_TABLES])
        for table in SUITE_TABLES:
            try:
                translate_suite(table, conn=conn)
            except (ValueError, OSError) as exc:  # SuiteSqlError is a ValueError; a missing or unreadable file
                problems.append(f"{suite_path(table)}: {exc}")
    if problems:
        return _failed("expectation suites", "; ".join(problems),
                       "the suite file (use the expectation types eujp.suite_sql lists: docs/add-a-source.md)")
    return _ok("expectation suites", f"{len(SUITE_TABLES)} suites translate to the audit's SQL")


def check_prefect_api(api_url: str | None) -> Check:
    """When a Prefect API is configured, it answers its health check (with PREFECT_API_KEY when set). Any
    answer but a refused key or a server error will do: the API's own client says more later."""
    if not api_url:
        return _ok("Prefect API", "PREFECT_API_URL is not set: the run uses a temporary Prefect server")
    if not is_http_url(api_url):
        return _failed("Prefect API", f"PREFECT_API_URL={api_url!r} is no URL of a Prefect API: write "
                       "http(s)://HOST:PORT/api (e.g. http://127.0.0.1:4200/api)", PREFECT_SETTING)
    request = urllib.request.Request(f"{api_url.strip().rstrip('/')}/health")
    if os.environ.get("PREFECT_API_KEY"):
        request.add_header("Authorization", f"Bearer {os.environ['PREFECT_API_KEY']}")
    try:
        with urllib.request.urlopen(request, timeout=PREFECT_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return _failed("Prefect API", f"{api_url} did not answer ({reason})", PREFECT_SETTING)
    if status in (401, 403):
        return _failed("Prefect API", f"{api_url} refused the API key (HTTP {status})", "PREFECT_API_KEY")
    if status >= 500:
        return _failed("Prefect API", f"{api_url} answered HTTP {status} to its health check", PREFECT_SETTING)
    return _ok("Prefect API", f"{api_url} answers")


def check_lake_catalog(settings: Settings) -> Check:
    """The lake's catalog (eujp.lake, EUJP_LAKE_CATALOG): a valid setting; a PostgreSQL catalog answers (attached
    read-only through the postgres_scanner extension, the password never shown)."""
    from eujp.bi import load_extension
    from eujp.lake import (
        LAKE_CATALOG_ENV,
        SINGLE_FILE_ENV,
        SINGLE_FILE_MAX_ROWS_ENV,
        SingleFile,
        lake_config,
    )

    try:
        single_file = SingleFile.from_env()
    except ValueError as exc:
        setting = SINGLE_FILE_MAX_ROWS_ENV if str(exc).startswith(SINGLE_FILE_MAX_ROWS_ENV) else SINGLE_FILE_ENV
        return _failed("lake catalog", str(exc), setting)
    problem = publish_uri_problem(settings.publish_uri)
    if problem:  # the lake lives under the publish URI: the setting to fix is the publish check's
        message, setting = problem
        return _failed("lake catalog", f"not checked: {message}", setting)
    try:
        cfg = lake_config(settings.warehouse_path, settings.publish_uri)
    except ValueError as exc:
        return _failed("lake catalog", str(exc), LAKE_CATALOG_ENV)
    except EujpError as exc:  # the S3 client of an s3:// target: its credentials block is missing or wrong
        return _failed("lake catalog", f"not checked: {exc}", "EUJP_S3_CREDENTIALS_BLOCK")
    if cfg is None and single_file.choice == "small":
        return _failed("lake catalog", f"{SINGLE_FILE_ENV}=small leaves the facts to the lake, but "
                       f"{LAKE_CATALOG_ENV} is off", f"{LAKE_CATALOG_ENV} or {SINGLE_FILE_ENV}")
    if cfg is None:
        every = (f"; {SINGLE_FILE_ENV}=auto keeps every table in the single warehouse.duckdb"
                 if single_file.choice == "auto" else "")
        return _ok("lake catalog", f"off ({LAKE_CATALOG_ENV}): no lake is published{every}")
    if cfg.embedded:
        return _ok("lake catalog", f"file {cfg.catalog_file}, published as lake.ducklake; data under {cfg.data_path}")
    import duckdb

    conn = duckdb.connect()
    try:
        load_extension(conn, "postgres_scanner")
        conn.execute(f"ATTACH {sql_string(cfg.catalog[len('postgres:'):])} AS eujp_preflight_pg "
                     "(TYPE postgres, READ_ONLY)")
    except Exception as exc:  # noqa: BLE001 - the message names the catalog without its password
        message = cfg.redact(str(exc)).splitlines()[0]
        return _failed("lake catalog", f"{cfg.describe()} does not answer: {type(exc).__name__}: {message}",
                       LAKE_CATALOG_ENV)
    finally:
        conn.close()
    return _ok("lake catalog", f"{cfg.describe()} answers; data under {cfg.data_path}")


def check_raw_day(settings: Settings) -> Check | None:
    """A run from the raw zone (`--from-raw DAY`, `--as-of DAY`): DAY is one the last raw-zone prune kept
    everything for (eujp.retention.unretained_day). None (no line) for the other runs; a publish target that
    cannot be read is the publish check's to report."""
    if settings.source_mode != "raw" or settings.raw_date is None:
        return None
    from eujp.retention import unretained_day
    from eujp.storage import open_store

    try:
        problem = unretained_day(open_store(settings.publish_uri), settings.raw_date)
    except Exception:  # noqa: BLE001 - the publish target's check names what is wrong with it
        return None
    if problem:
        return _failed(NAME_RAW_DAY, problem, "--from-raw / --as-of")
    return _ok(NAME_RAW_DAY, f"{settings.raw_date.isoformat()} is a day the raw zone keeps")


NAME_RAW_DAY = "raw day"


def check_dask_scheduler(settings: Settings) -> Check | None:
    """With fan-out on an existing cluster (EUJP_DASK_ADDRESS, `--dask-address`), its scheduler accepts a TCP
    connection (the run would otherwise wait for it inside the flow). None (no line) without one."""
    if not settings.dask_address:
        return None
    import socket

    host, _, port = settings.dask_address.split("://", 1)[1].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PREFECT_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        return _failed("Dask scheduler", f"{settings.dask_address} did not answer ({exc})",
                       "EUJP_DASK_ADDRESS (or `eujp run --dask-address`)")
    return _ok("Dask scheduler", f"{settings.dask_address} answers")


# --- all of them -----------------------------------------------------------------------------------------

CHECKS: dict[str, Callable[..., Check]] = {
    "publish": lambda s, api, write: check_publish_target(s, write=write),
    "warehouse": lambda s, api, write: check_warehouse_folder(s),
    "prefect": lambda s, api, write: check_prefect_api(api),
    "snapshot": lambda s, api, write: check_snapshot_folder(s),
    "settings": lambda s, api, write: check_run_settings(s),
    "suites": lambda s, api, write: check_suites(s),
    "catalog": lambda s, api, write: check_lake_catalog(s),
    "dask": lambda s, api, write: check_dask_scheduler(s),
    "raw": lambda s, api, write: check_raw_day(s),
}


def run_checks(settings: Settings, *, prefect_api_url: str | None = None, skip: tuple[str, ...] = (),
               write: bool = True) -> list[Check]:
    """Every check (CHECKS, but those named in `skip`), in order. `write=False`: the publish target is only
    read (as-of rebuilds read its raw zone and publish nothing)."""
    checks = [check(settings, prefect_api_url, write) for name, check in CHECKS.items() if name not in skip]
    return [c for c in checks if c is not None]  # a check of something not configured says nothing


def preflight(settings: Settings, *, prefect_api_url: str | None = None, skip: tuple[str, ...] = (),
              write: bool = True) -> list[Check]:
    """run_checks, raising PreflightFailed (one message naming every setting to fix) when any failed; the checks
    (those that passed with a `warning` for the caller to log)."""
    checks = run_checks(settings, prefect_api_url=prefect_api_url, skip=skip, write=write)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise PreflightFailed(failed)
    return checks


def needs_prefect_for_credentials() -> bool:
    """Whether the S3 credentials come from a Prefect Secret block (EUJP_S3_CREDENTIALS_BLOCK): the publish
    check then needs the Prefect API."""
    return bool(os.environ.get("EUJP_S3_CREDENTIALS_BLOCK", "").strip())

