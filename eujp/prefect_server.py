"""A temporary Prefect server for one `eujp run`, started while the pipeline code is still being imported.

With no PREFECT_API_URL, Prefect starts a temporary server itself, but only when the flow is called: after
the process has imported Prefect, polars, DuckDB and the flows (~4 s here), and after importing Prefect's
server application into the CLI process as well (~4 s more), then it waits for the server's own start-up
(~7 s). `eujp run` instead launches the same server (Prefect's uvicorn command for its temporary server,
UI off) as its very first step, points PREFECT_API_URL at it, imports while it starts, and waits for its
health check only before calling the flow: an unchanged day spends start-up once, in parallel.

The server uses PREFECT_HOME's database like Prefect's own temporary server, and is stopped when the run ends.
It announces its start and stop in log lines, unless `announce=False` (on a terminal, the CLI shows a
progress step instead).

A new database costs most of a start: Prefect's server creates it by running every Alembic migration of its
history (115 for SQLite in Prefect 3.9), ~6 s of the ~10 s a first start took here against ~4 s on a database
that exists. So the install (`make run`, `make test`) migrates one empty database per Prefect release into the
environment (`build_database_template`: Prefect's own migrations, in a throwaway PREFECT_HOME), and a server
started on a PREFECT_HOME without a database begins from a copy of it (`seed_database`). The copy is the
database those migrations make, keyed by Prefect's version and its migration files; without a template
(another install, another Prefect), the server migrates as before.

The server skips its start-up registration of block types (`BLOCK_REGISTRATION_OFF`): on every start of a
database it had not started on before (every new PREFECT_HOME, and the memo Prefect keeps is keyed by the
database), it imported every installed Prefect collection (prefect-dask imports Dask's distributed) and
upserted each block type and schema, 2.3-2.6 s of a 10 s start here. Nothing of eujp needs them registered
first: the one block it reads, a Secret (eujp.storage.s3_credentials), is registered by its own `save`, which a
user runs before any load. A user who wants them registered at start sets PREFECT_SERVER_REGISTER_BLOCKS_ON_START
(or Prefect's older alias) in the environment; it is left as they set it (a Prefect profile's value is not read
here: the environment's `false` overrides it).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

PORT_IN_USE_EXIT_CODE = 3  # uvicorn's exit code when it cannot bind
TEMPLATES_ENV = "EUJP_PREFECT_DATABASE_TEMPLATES"  # where the migrated empty databases are (default below)
DATABASE_FILE = "prefect.db"  # Prefect's default SQLite database in PREFECT_HOME
# Settings that point Prefect's server at another database than PREFECT_HOME/prefect.db (or tell it how to
# treat one): with any of them set, nothing is seeded.
_DATABASE_SETTINGS = ("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")
# The temporary server's start without the registration of block types (the module's docstring), unless the
# environment sets either setting (or an alias of it) itself. Without the memo, the registration is not even
# hashed: the collections are not imported.
BLOCK_REGISTRATION_OFF = {"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
                          "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
_BLOCK_REGISTRATION_ALIASES = {"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "PREFECT_API_BLOCKS_REGISTER_ON_START",
                               "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION":
                                   "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION"}


def _say(message: str) -> None:
    """A log line in the format of Prefect's console handler (Prefect is not imported yet)."""
    print(f"{datetime.now():%H:%M:%S.%f}"[:12] + f" | INFO    | eujp.prefect_server - {message}", file=sys.stderr,
          flush=True)


def _die_with_parent() -> None:
    """In the server process, before it execs (Linux): SIGTERM it when the `eujp run` that started it dies, even
    by a signal that skips atexit (SIGTERM, SIGKILL), so that no temporary server outlives its run."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefect_package() -> Path:
    spec = importlib.util.find_spec("prefect")  # where Prefect is, without importing it (seconds)
    if spec is None or spec.origin is None:
        raise RuntimeError("Prefect is not installed")
    return Path(spec.origin).parent


def database_templates_dir() -> Path:
    """Where the migrated empty databases are: EUJP_PREFECT_DATABASE_TEMPLATES, else the environment's
    share/eujp/prefect-database (inside .venv: a template belongs to the Prefect installed there)."""
    return Path(os.environ.get(TEMPLATES_ENV) or Path(sys.prefix) / "share" / "eujp" / "prefect-database")


def database_template_name() -> str:
    """The template's file name for the installed Prefect: its version and a digest of its SQLite migration
    files' names (a release that adds a migration, or a patched install, gets a template of its own)."""
    import importlib.metadata  # 16 ms: only where a database is missing, not on every run's first step

    migrations = _prefect_package() / "server" / "database" / "_migrations" / "versions" / "sqlite"
    names = sorted(p.name for p in migrations.glob("*.py")) if migrations.is_dir() else []
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    return f"prefect-{importlib.metadata.version('prefect')}-{digest}.db"


def default_database(env: Mapping[str, str] | None = None) -> Path | None:
    """PREFECT_HOME/prefect.db of `env` (default: this process's environment), the database Prefect's server
    uses unless configured otherwise; None when a PREFECT_SERVER_DATABASE_* / PREFECT_API_DATABASE_* variable
    is set (a database of the user's choosing)."""
    env = os.environ if env is None else env
    if any(k.startswith(_DATABASE_SETTINGS) for k in env):
        return None
    return prefect_home(env) / DATABASE_FILE


def seed_database(env: Mapping[str, str] | None = None) -> bool:
    """Copy the installed Prefect's template to the database a Prefect server started with `env` (default:
    this process's environment) uses, when that file does not exist and a template does; True when it did.
    The copy is written beside the target and linked into place, so a server started at the same time by
    another run finds either no file or the whole one."""
    database = default_database(env)
    if database is None or database.exists() or database.with_name(database.name + "-wal").exists():
        return False  # a database there, or what is left of one (SQLite would replay its log into the copy)
    template = database_templates_dir() / database_template_name()
    if not template.is_file():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(f".{database.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        os.link(partial, database)
    except FileExistsError:
        return False  # another run seeded it (or its server created it) first
    except OSError:
        return False  # cannot copy (permissions, space): the server makes its database as without a template
    finally:
        partial.unlink(missing_ok=True)
    return True


def build_database_template(directory: Path | None = None) -> Path:
    """Migrate an empty Prefect database (Prefect's own `create_db`, in a separate interpreter with a
    throwaway PREFECT_HOME: Prefect reads its settings when imported) and keep it as the installed Prefect's
    template in `directory` (default: `database_templates_dir()`). Nothing is done when it is there already."""
    import sqlite3
    import tempfile

    directory = directory or database_templates_dir()
    target = directory / database_template_name()
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eujp-prefect-template-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        code = ("import asyncio\nfrom prefect.server.database import provide_database_interface\n"
                "asyncio.run(provide_database_interface().create_db())\n")
        subprocess.run([sys.executable, "-c", code], env=env, check=True, stdin=subprocess.DEVNULL)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        # One self-contained file (the migrations ran in WAL mode): SQLite's backup of the closed database.
        with contextlib.closing(sqlite3.connect(Path(home) / DATABASE_FILE)) as source, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
            (heads,) = copy.execute("SELECT count(*) FROM alembic_version").fetchone()
        if heads != 1:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"the migrated Prefect database has {heads} Alembic version rows, not 1")
        os.replace(partial, target)
    return target


class TemporaryPrefectServer:
    """`start()` launches the server and returns at once; `wait_ready()` blocks until /api/health answers."""

    def __init__(self, startup_timeout: float | None = None, *, announce: bool = True) -> None:
        self.announce = announce
        self.startup_timeout = startup_timeout or float(
            os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.made_home = False  # whether its first start created PREFECT_HOME (`discard` removes it then)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> TemporaryPrefectServer:
        package = _prefect_package()
        if self.port is None:  # its first start (wait_ready starts it again on another port if its was taken)
            self.made_home = not prefect_home().exists()
        seed_database()
        self.port = _free_port()
        if self.announce:
            self._announce()
        env = os.environ | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                            "PREFECT__SERVER_FINAL": "1"} | server_block_settings()
        env.pop("PREFECT_API_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(package.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL,
            # only while this process has a single thread: a preexec_fn after fork is unsafe with threads
            preexec_fn=_die_with_parent if threading.active_count() == 1 else None,  # noqa: PLW1509
            # its own session: a Ctrl-C (SIGINT to the terminal's process group) stops the run, which stops the
            # server (`stop`); in the run's group, the server died first, and the run, its API gone, retried it
            # for minutes and ended with tracebacks and exit 1 instead of 130
            start_new_session=True,
        )
        atexit.register(self.stop)
        return self

    def _announce(self) -> None:
        _say(f"Starting temporary server on http://127.0.0.1:{self.port} (it starts while the run loads; it "
             "stops when the run ends; set PREFECT_API_URL to use a running Prefect server)")

    def use(self, *, announce: bool = True) -> TemporaryPrefectServer:
        """Point this process's Prefect at the server (PREFECT_API_URL), which may still be starting, and say
        so (`announce`) from then on: its start, and its stop when the run ends."""
        os.environ["PREFECT_API_URL"] = os.environ[TEMPORARY_SERVER_ENV] = self.api_url
        self.announce = announce
        if announce:
            self._announce()
        return self

    def discard(self) -> None:
        """Stop a server launched before checks that then refused the run, silently, and remove PREFECT_HOME
        when its start created it: a refused run leaves no server and no trace of Prefect."""
        self.announce = False
        self.stop()
        if self.made_home:
            shutil.rmtree(prefect_home(), ignore_errors=True)

    def answers(self) -> bool:
        """Whether the server answers its health check now (one quick probe, no wait)."""
        return self.process is not None and self.process.poll() is None and self._healthy(timeout=0.5)

    def _healthy(self, timeout: float) -> bool:
        """One probe of /api/health: True when it answers 200 within `timeout` seconds."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=timeout) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_ready(self) -> str:
        """Block until the server answers its health check; returns the API URL. A port taken meanwhile
        (uvicorn exits with 3) is retried on another port; any other exit or the timeout raises."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process is None:
                raise RuntimeError("the temporary Prefect server was not started")
            code = self.process.poll()
            if code == PORT_IN_USE_EXIT_CODE:
                self.start()
                continue
            if code is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {code} before it was ready")
            if self._healthy(timeout=2):
                return self.api_url
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the temporary Prefect server did not answer {self.api_url}/health within "
                                   f"{self.startup_timeout:g} s (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if self.announce:
            _say(f"Stopping temporary server on http://127.0.0.1:{self.port}")
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_block_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """BLOCK_REGISTRATION_OFF but the settings `env` (default: this process's environment) sets itself, under
    its name or its alias."""
    env = os.environ if env is None else env
    return {k: v for k, v in BLOCK_REGISTRATION_OFF.items() if k not in env and _BLOCK_REGISTRATION_ALIASES[k] not in env}


def needed() -> bool:
    """Whether `eujp run` should start a temporary server: no API URL is configured (a Prefect server,
    Prefect Cloud, a profile setting it) and Prefect is not imported in this process yet (its settings are
    read then: Prefect's own temporary server is used)."""
    return not (os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules or profile_sets_api_url())


TEMPORARY_SERVER_ENV = "EUJP_TEMPORARY_PREFECT_SERVER"  # set (to its API URL) while a run uses its own server


def launch_if_needed() -> TemporaryPrefectServer | None:
    """Start a temporary server, silently and without pointing this process at it yet, when `needed()`; else
    None. `eujp run` launches it before its own checks, whose ~0.5 s its ~4 s start then overlaps: `use()` once
    they pass, `discard()` if they refuse the run."""
    if not needed():
        return None
    return TemporaryPrefectServer(announce=False).start()


def start_if_needed(*, announce: bool = True) -> TemporaryPrefectServer | None:
    """Start a temporary server and point PREFECT_API_URL at it, when `needed()`; else None."""
    server = launch_if_needed()
    return server.use(announce=announce) if server is not None else None


def own_server() -> bool:
    """Whether this run reports to a Prefect server of its own: the temporary one `start_if_needed` started,
    or Prefect's ephemeral one (no API URL at all). No other host reports to it, and it dies with the run."""
    api = os.environ.get("PREFECT_API_URL")
    if api:
        return api == os.environ.get(TEMPORARY_SERVER_ENV)
    return not profile_sets_api_url()


def prefect_home(env: Mapping[str, str] | None = None) -> Path:
    """PREFECT_HOME of `env` (default: this process's environment), else Prefect's default ~/.prefect."""
    env = os.environ if env is None else env
    return Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def profile_sets_api_url() -> bool:
    """Whether the active Prefect profile (PREFECT_HOME/profiles.toml) sets PREFECT_API_URL: read as text,
    because importing Prefect to ask it costs seconds."""
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml")
    try:
        text = profiles.read_text(encoding="utf-8")
    except OSError:
        return False
    return "PREFECT_API_URL" in text


def main(argv: list[str] | None = None) -> int:
    """`python -m eujp.prefect_server template`: build the installed Prefect's database template (the install
    does: Makefile)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m eujp.prefect_server", description=main.__doc__)
    parser.add_argument("command", choices=["template"])
    parser.add_argument("--dir", type=Path, help="where to keep it (default: the environment's, or "
                        f"{TEMPLATES_ENV})")
    args = parser.parse_args(argv)
    print(build_database_template(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
