"""Helpers for tests that start servers or processes of their own: a free loopback port, a bounded wait,
stopping a process group for good, and a real Prefect server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from eujp.prefect_server import seed_database


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    """The first truthy value of `predicate()`, polled every `interval` s; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group we started (start_new_session=True), then SIGKILL what is left of it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def client_env(home: Path) -> dict[str, str]:
    """This process's environment without PREFECT_*/EUJP_* settings, with its own PREFECT_HOME and no
    analytics: for a Prefect server and the clients a test starts against it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EUJP_"))}
    return env | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                  "GX_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_COLORS": "false"}


@contextmanager
def prefect_server(home: Path, env: dict[str, str], *, port: int | None = None,
                   startup_timeout: float = 120) -> Iterator[str]:
    """`prefect server start` on 127.0.0.1 (a free port unless given) with `env`, its output in
    {home}/server.log; yields the API URL once /health answers, and stops the server's process group."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/api"
    seed_database(env)  # its PREFECT_HOME's database from the install's template (eujp.prefect_server)
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def healthy() -> bool:
                if server.poll() is not None:
                    raise AssertionError(f"prefect server exited: {(home / 'server.log').read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                        return r.status == 200
                except OSError:
                    return False

            wait_for(healthy, startup_timeout, "the Prefect server to be healthy")
            yield url
        finally:
            stop_group(server)


POSTGRES_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program (initdb, pg_ctl): on PATH, else where Debian's postgresql package puts it."""
    import shutil

    found = shutil.which(name)
    if found:
        return found
    for folder in POSTGRES_BIN_DIRS:
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    return None


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# The password of the `postgres_with_password` fixture: a '"', which libpq reads as any other character of an
# unquoted value, with more after it
POSTGRES_PASSWORD = 'pgLake"Hq7Zx9Lm-secret'


@contextmanager
def postgres_server(folder: Path, *, startup_timeout: float = 60, password: str | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL cluster: `initdb` into {folder}/data (trust auth, user `eujp`; with `password`, TCP
    connections must give it: scram-sha-256), `pg_ctl start` on 127.0.0.1 at a free port with its socket in
    {folder} too; yields a libpq connection string to the database `eujp` (with `password=` when given), and
    stops the server (`pg_ctl stop -m immediate`, then the process group) at the end."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise AssertionError("PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql; "
                             ".ci/run installs it)")
    data, log = folder / "data", folder / "postgres.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C", "LANG": "C"}
    as_user: dict = {}
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root: run them as an unprivileged user
        import pwd

        account = next((pwd.getpwnam(n) for n in ("postgres", "nobody") if _has_user(n)), None)
        if account is None:
            raise AssertionError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "cwd": str(folder)}
        env["HOME"] = str(folder)
    auth = ["--auth=trust"]
    if password is not None:
        pwfile = folder / "pwfile"
        pwfile.write_text(password + "\n")
        if as_user:
            os.chown(pwfile, as_user["user"], as_user["group"])
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        env["PGPASSWORD"] = password  # createdb's, below
    done = subprocess.run([initdb, "-D", str(data), "-U", "eujp", *auth, "-E", "UTF8",
                           "--no-instructions"], check=False, capture_output=True, env=env, timeout=120, **as_user)
    if done.returncode != 0:
        raise AssertionError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=40"
    server = subprocess.Popen([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t",
                               str(int(startup_timeout)), "start"], env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **as_user)
    try:
        out, _ = server.communicate(timeout=startup_timeout + 10)
        if server.returncode != 0:
            raise AssertionError(f"pg_ctl start failed: {out.decode(errors='replace')}\n"
                                 f"{log.read_text(errors='replace')[-3000:] if log.exists() else ''}")
        createdb = postgres_bin("createdb")
        subprocess.run([createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "eujp", "eujp"], check=True,
                       capture_output=True, env=env, timeout=60, **as_user)
        yield f"host=127.0.0.1 port={port} user=eujp dbname=eujp" + (f" password={password}" if password else "")
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], check=False,
                       capture_output=True, env=env, timeout=60, **as_user)
        pid_file = data / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end the server we started, by its pid
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


@contextmanager
def dask_cluster(log_dir: Path, env: dict[str, str], *, workers: int = 2,
                 startup_timeout: float = 90) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A real `dask scheduler` and `workers` `dask worker` processes (one process, one thread each) on
    127.0.0.1, free ports, no dashboards, with `env` (give the workers PREFECT_API_URL and PYTHONPATH);
    output in {log_dir}/dask-*.log. Yields (scheduler address, worker processes) once every worker has
    registered; stops them all."""
    from distributed import Client


    bin_dir = Path(sys.executable).parent
    address = f"tcp://127.0.0.1:{free_port()}"
    procs: list[subprocess.Popen] = []
    commands = [["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"]]
    commands += [["worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--name", f"w{i}"] for i in range(workers)]
    with ExitStack() as logs:
        try:
            for i, command in enumerate(commands):
                log = logs.enter_context(open(log_dir / f"dask-{'scheduler' if i == 0 else f'worker-{i - 1}'}.log",
                                              "wb"))
                procs.append(subprocess.Popen([str(bin_dir / "dask"), *command], env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))

            def registered() -> bool:
                for p in procs:
                    if p.poll() is not None:
                        raise AssertionError(f"a dask process exited: {p.args}; see {log_dir}/dask-*.log")
                try:
                    with Client(address, timeout=5) as client:
                        return len(client.scheduler_info()["workers"]) == workers
                except OSError:
                    return False

            wait_for(registered, startup_timeout, f"{workers} dask workers to register", interval=1.0)
            yield address, procs[1:]
        finally:
            for p in reversed(procs):
                stop_group(p)
