"""Reading the published warehouse straight from object storage, with DuckDB and no download step.

    conn = open_warehouse("s3://bucket/eujp")              # the run latest.json points to, at that publish URI
    conn = open_warehouse("s3://bucket/eujp/runs/X/warehouse.duckdb")
    conn = open_warehouse("var/objectstore")               # a folder publish target: the same
    conn = open_warehouse("var/warehouse.duckdb")          # a local warehouse file

A publish URI whose single file leaves its large fact tables to the lake (EUJP_SINGLE_FILE, eujp.lake) also gets
the published lake ATTACHed READ_ONLY at the run's snapshot, its data files read under that publish URI (not
where the writer's catalog says it wrote them: `published_data_path`), so those tables are read by name all the
same (`attach_lake_only_tables`).

Remote files are ATTACHed READ_ONLY through DuckDB's httpfs extension, which is loaded from the PyPI package
`duckdb-extension-httpfs` (no extension download at run time; autoinstall is switched off). S3 credentials
and endpoint come from the standard AWS_* variables and become a temporary, in-memory DuckDB secret; they are
never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from eujp.config import LAKE_CATALOG_ENV
from eujp.errors import EujpError
from eujp.redaction import conninfo_passwords, redact_in_logs, redact_secrets
from eujp.sql import in_utc, sql_string

ALIAS = "warehouse"
REMOTE_SCHEMES = ("s3://", "http://", "https://")


def extension_path(name: str) -> Path:
    """The `name` extension (httpfs, ducklake, postgres_scanner) as shipped by its duckdb-extension-<name> wheel
    for the DuckDB version in use."""
    import importlib

    package = f"duckdb_extension_{name}"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise EujpError(f"the {name} extension is not installed: install {package.replace('_', '-')}=="
                        f"{duckdb.__version__}") from None
    path = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise EujpError(f"{name} for DuckDB {duckdb.__version__} is not at {path}: install "
                        f"{package.replace('_', '-')}=={duckdb.__version__}")
    return path


def load_extension(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD `name` from its installed wheel (signed: no allow_unsigned_extensions needed), never download
    (autoinstall off)."""
    conn.execute("SET autoinstall_known_extensions = false")
    conn.execute(f"LOAD {sql_string(str(extension_path(name)))}")


def httpfs_extension_path() -> Path:
    """httpfs as shipped by the duckdb-extension-httpfs wheel, for the DuckDB version in use."""
    return extension_path("httpfs")


def load_httpfs(conn: duckdb.DuckDBPyConnection) -> None:
    """LOAD httpfs from the installed wheel, never download."""
    load_extension(conn, "httpfs")


def s3_secret_sql(env: dict[str, str] | None = None) -> str | None:
    """CREATE SECRET (temporary, in memory) for S3 from AWS_* variables; None without credentials.

    AWS_ENDPOINT_URL (MinIO, R2, moto) sets ENDPOINT, USE_SSL from its scheme and path-style URLs."""
    env = dict(os.environ if env is None else env)
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    opts = {"KEY_ID": key, "SECRET": secret}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        opts["REGION"] = region
    if env.get("AWS_SESSION_TOKEN"):
        opts["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    extra = ""
    if endpoint:
        parts = urlsplit(endpoint)
        opts["ENDPOINT"] = parts.netloc or parts.path
        opts["URL_STYLE"] = "path"
        extra = f", USE_SSL {'false' if parts.scheme == 'http' else 'true'}"
    body = ", ".join(f"{k} {sql_string(v)}" for k, v in opts.items())
    return f"CREATE OR REPLACE SECRET eujp_s3 (TYPE s3, {body}{extra})"


def s3_env() -> dict[str, str]:
    """The process environment with the credentials of the Prefect Secret block EUJP_S3_CREDENTIALS_BLOCK, when
    one is named (eujp.storage.s3_credentials), as the AWS_* variables DuckDB's S3 secret is made from: what
    the run publishes with, readers read with. Never logged."""
    from eujp.storage import s3_credentials

    env = dict(os.environ)
    names = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
             "aws_session_token": "AWS_SESSION_TOKEN"}
    block = s3_credentials()
    if block:
        env.pop("AWS_SESSION_TOKEN", None)
        env.update({names[k]: v for k, v in block.items() if k in names})
    return env


def configure_remote(conn: duckdb.DuckDBPyConnection, env: dict[str, str] | None = None) -> None:
    """httpfs plus, when AWS credentials are set (`env`, default: `s3_env`, the environment with the
    credentials block's), the S3 secret."""
    load_httpfs(conn)
    sql = s3_secret_sql(s3_env() if env is None else env)
    if sql:
        try:
            conn.execute(sql)
        except duckdb.Error as exc:  # the message could quote the statement: never show it
            raise EujpError(f"cannot configure S3 access ({type(exc).__name__}); check the AWS_* variables") from None


def warehouse_location(location: str) -> str:
    """The warehouse file a location means: a .duckdb file as is, else the publish URI's latest/ alias."""
    if location.endswith(".duckdb"):
        return location
    if location.startswith(REMOTE_SCHEMES):
        return location.rstrip("/") + "/latest/warehouse.duckdb"
    return str(Path(location) / "latest" / "warehouse.duckdb")


def _read_json(conn: duckdb.DuckDBPyConnection, location: str) -> dict | None:
    """A JSON object at `location` (a file, or an object read through httpfs); None when unreadable."""
    import json

    try:
        data = json.loads(conn.execute("SELECT content FROM read_text(?)", [location]).fetchone()[0])
    except (duckdb.Error, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}" if root.startswith(REMOTE_SCHEMES) else str(Path(root) / key)


def _run_files(conn: duckdb.DuckDBPyConnection, location: str) -> tuple[str, str | None, str | None]:
    """(warehouse file, its run's manifest, the publish URI) of `location`.

    A publish URI means the run its `latest.json` points to (`runs/{run_id}/`): its files never change, so a
    connection reads one run whatever is published meanwhile. The `latest/` aliases are replaced by every
    publish, and DuckDB reads a remote file by ranges: an attached `latest/warehouse.duckdb` would read the
    next run's bytes at the first run's offsets. Without a readable pointer, the `latest/` aliases. A run's
    own file (`.../runs/{run_id}/warehouse.duckdb`) comes with its run's manifest; any other .duckdb file
    with none."""
    if location.endswith(".duckdb"):
        parts = location.replace("\\", "/").rstrip("/").split("/")
        if len(parts) >= 4 and parts[-3] == "runs" and parts[-1] == "warehouse.duckdb":
            root = "/".join(parts[:-3])
            return location, _join(root, f"runs/{parts[-2]}/manifest.json"), root
        return location, None, None
    root = location.rstrip("/")
    pointer = _read_json(conn, _join(root, "latest.json"))
    prefix = pointer.get("prefix") if pointer else None
    if isinstance(prefix, str) and prefix.startswith("runs/"):
        return (_join(root, f"{prefix}/warehouse.duckdb"),
                _join(root, pointer.get("manifest") or f"{prefix}/manifest.json"), root)
    return warehouse_location(location), _join(root, "latest/manifest.json"), root


def open_warehouse(location: str, env: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the warehouse ATTACHed READ_ONLY as `warehouse` and in use, so
    queries name its tables directly (SELECT * FROM mart_claims). A publish URI attaches the run `latest.json`
    points to (`_run_files`): reopen the connection to see a later run. Its timestamps are read in UTC."""
    conn = in_utc(duckdb.connect())
    try:
        if location.startswith(REMOTE_SCHEMES):
            configure_remote(conn, env)
        target, manifest, root = _run_files(conn, location)
        if not target.startswith(REMOTE_SCHEMES) and not Path(target).is_file():
            raise EujpError(f"no warehouse at {target}")
        conn.execute(f"ATTACH {sql_string(target)} AS {ALIAS} (READ_ONLY)")
        conn.execute(f"USE {ALIAS}")
    except duckdb.Error as exc:
        conn.close()
        raise EujpError(f"cannot attach {location}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    if manifest is not None:  # a published run: its large fact tables may be in the lake only
        try:
            attach_lake_only_tables(conn, root, env, manifest=manifest)
        except BaseException:
            conn.close()
            raise
    return conn


def published_data_path(root: str, lake: dict) -> str:
    """Where the data files of the lake published at `root` (a folder, or a publish URI s3://bucket/prefix) are:
    `root` joined with the manifest's "data_path" (`lake/`, relative to the publish URI), as an absolute folder or
    URL ending in /. A reader ATTACHes the lake with it (DATA_PATH ..., OVERRIDE_DATA_PATH true): the catalog
    records the absolute data path of the target the WRITER published to (DuckLake keeps one, the files' paths
    are relative to it), so a published folder copied or mounted elsewhere, or a bucket mirrored under another
    name, would otherwise read the writer's files (or fail: "Cannot open file") instead of its own."""
    relative = lake.get("data_path")
    parts = relative.strip("/").split("/") if isinstance(relative, str) else []
    if not parts or not all(parts) or relative.startswith("/") or "://" in relative or ".." in parts:
        raise EujpError(f"the manifest of the published warehouse at {root} names no data path of its lake "
                        f"relative to it (lake: {lake or 'none'})")
    base = root.rstrip("/") if root.startswith(REMOTE_SCHEMES) else Path(root).resolve().as_posix()
    return f"{base}/{'/'.join(parts)}/"


def attach_lake_only_tables(conn: duckdb.DuckDBPyConnection, root: str,
                            env: dict[str, str] | None = None, *, manifest: str | None = None) -> list[str]:
    """The tables the published single file leaves to the lake (EUJP_SINGLE_FILE: `"parquet": null` in the
    manifest, or not among `"single_file"`'s tables: a large mart, also in Parquet) made readable by name: the
    lake is ATTACHed READ_ONLY as `lake` at the snapshot of the manifest, behind the warehouse in the search
    path (a table of the single file wins). The lake's catalog is the published `{root}/lake.ducklake`, or, for
    a PostgreSQL catalog (which is never published: its connection string is the reader's own), the one
    EUJP_LAKE_CATALOG=postgres:<connection string> names in `env` (default: the process environment). Its data
    files are read under `root` (`published_data_path`), not where the writer's catalog says it wrote them.
    `manifest`: the run's manifest to read (default: `{root}/latest/manifest.json`). Returns those tables ([] and
    nothing attached when there are none). EujpError, with the ATTACH to run by hand, when the lake cannot be
    attached or does not hold them."""
    manifest_location = manifest or _join(root, "latest/manifest.json")
    manifest = _read_json(conn, manifest_location)
    if not manifest:
        return []
    single = (manifest.get("single_file") or {}).get("tables")  # None: every table (manifests before the setting)
    lake_only = sorted(n for n, t in (manifest.get("tables") or {}).items()
                       if isinstance(t, dict) and (("parquet" in t and t["parquet"] is None)
                                                   or (single is not None and n not in single)))
    if not lake_only:
        return []
    lake = manifest.get("lake") or {}
    names = ", ".join(lake_only)
    snapshot = lake.get("snapshot_id")
    pin = f", SNAPSHOT_VERSION {int(snapshot)}" if snapshot is not None else ""
    postgres = lake.get("catalog") == "postgres"
    if not postgres and not (lake.get("catalog") == "file" and lake.get("catalog_key")):
        raise EujpError(f"{names} of the published warehouse at {root} are in the lake only, and the manifest "
                        f"names no catalog to read them from (lake: {lake or 'none'})")
    # the data files under `root`, wherever the writer's catalog says it wrote them
    options = f"READ_ONLY, DATA_PATH {sql_string(published_data_path(root, lake))}, OVERRIDE_DATA_PATH true{pin}"
    shown_postgres = f"ATTACH 'ducklake:postgres:<connection string>' AS lake ({options})"
    if postgres:
        catalog = ((os.environ if env is None else env).get(LAKE_CATALOG_ENV) or "").strip()
        if not catalog.startswith("postgres:"):
            raise EujpError(f"{names} of the published warehouse at {root} are in the lake only, whose catalog is "
                            f"a PostgreSQL database (never published): set {LAKE_CATALOG_ENV}=postgres:<connection "
                            f"string> to read them, or attach it by hand: {shown_postgres}")
        redact_in_logs(*conninfo_passwords(catalog[len("postgres:"):]))  # from now on in no log record
    else:
        catalog = f"{root}/{lake['catalog_key']}"
    attach = f"ATTACH {sql_string('ducklake:' + catalog)} AS lake ({options})"
    shown = shown_postgres if postgres else attach  # what the messages show: never a connection string
    try:
        load_extension(conn, "ducklake")
        if postgres:
            load_extension(conn, "postgres_scanner")
        conn.execute(attach)
    except duckdb.Error as exc:
        message = str(exc)
        if postgres:  # DuckDB may quote the connection string, and it may hold a password
            message = redact_secrets(message.replace(catalog[len("postgres:"):], "<connection string>"))
        raise EujpError(f"{names} of the published warehouse are in its lake only, which cannot be attached "
                        f"({type(exc).__name__}: {message}); to read them: {shown}") from None
    present = {r[0] for r in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'main'").fetchall()}
    missing = [n for n in lake_only if n not in present]
    if missing:
        conn.execute("DETACH lake")
        raise EujpError(f"the lake attached for the published warehouse at {root} has no table "
                        f"{', '.join(missing)} at snapshot {snapshot}: is {LAKE_CATALOG_ENV} the catalog this "
                        "warehouse was published with?")
    conn.execute(f"SET search_path = '{ALIAS}.main,lake.main'")
    return lake_only
