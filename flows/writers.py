"""One writer at a time across hosts: a Prefect global concurrency limit held for the whole run.

The file lock (eujp.lock) serialises runs that share a warehouse folder on one host. Runs on different hosts
(or containers) that publish to the same remote target (s3://...) do not share that file, so each such run
also holds the one slot of a Prefect global concurrency limit named after the target, on the Prefect server
every run already reports to. The second run waits EUJP_LOCK_WAIT_SECONDS (at least MIN_WAIT_SECONDS, the
round trip to the server) and then fails with RunLocked, having written nothing. The slot is a lease the
holder renews; a holder that dies (SIGKILL) frees it when the lease runs out (LEASE_SECONDS): the file lock
is freed at once, which is why a local publish folder (one host) keeps only the file lock unless
EUJP_WRITER_LIMIT names a limit (a folder shared by several hosts). A run with a Prefect server of its own (the
temporary server `eujp run` starts without PREFECT_API_URL, or Prefect's ephemeral one) takes no slot: no other
host reports to that server, and the slot would outlive it: its leases are kept in the server's memory, so a
run killed while holding the slot left it taken in the database for every later run on that PREFECT_HOME.
Prefect's API:
https://docs.prefect.io/v3/concepts/global-concurrency-limits (the `concurrency` context manager,
`timeout_seconds`, `strict`, `lease_duration`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from eujp.config import Settings, writer_limit_problem
from eujp.errors import EujpError
from eujp.lock import RunLocked
from eujp.storage import open_store

MIN_WAIT_SECONDS = 3.0
LEASE_SECONDS = 60.0
OFF = "off"


def writer_limit_name(settings: Settings) -> str | None:
    """The limit's name: EUJP_WRITER_LIMIT, else for a remote publish target `eujp-writer-` and a digest of its
    URI (runs publishing to different targets do not wait for each other); None (the file lock only) for a
    local publish folder or EUJP_WRITER_LIMIT=off. A name Prefect would refuse is an EujpError naming the setting."""
    if settings.writer_limit:
        if settings.writer_limit.lower() == OFF:
            return None
        problem = writer_limit_problem(settings.writer_limit)  # the preflight says it first
        if problem:
            raise EujpError(problem)
        return settings.writer_limit
    if "://" not in settings.publish_uri:
        return None
    uri = open_store(settings.publish_uri).uri
    return f"eujp-writer-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


def ensure_limit(name: str) -> int:
    """Create the limit with one slot unless it exists (two runs creating it at once: one wins, fine); its
    number of slots (an operator may have changed it: more than one admits that many writers)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).limit
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass
            return client.read_global_concurrency_limit_by_name(name).limit


@contextmanager
def writer_slot(settings: Settings, logger=None) -> Iterator[str | None]:
    """Hold the writer limit's slot for the block; RunLocked (nothing done) when another run holds it past
    the wait. Yields the limit's name (None: disabled)."""
    from eujp.prefect_server import own_server

    name = writer_limit_name(settings)
    if name is not None and own_server():
        if logger is not None:
            logger.info("writer limit %s not taken: this run's Prefect server is its own, which no other host "
                        "reports to (the file lock keeps this host's runs apart; to keep hosts apart, point every "
                        "host's PREFECT_API_URL at one server)", name)
        name = None
    if name is None:
        yield None
        return
    from prefect.concurrency.sync import concurrency

    slots = ensure_limit(name)
    if slots != 1 and logger is not None:
        logger.warning("writer limit %s has %d slots: up to %d runs may write at once", name, slots, slots)
    wait = max(settings.lock_wait_seconds, MIN_WAIT_SECONDS)
    with ExitStack() as stack:
        try:
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=wait, strict=True,
                                            lease_duration=LEASE_SECONDS))
        except TimeoutError:
            raise RunLocked(f"another run is writing to {settings.publish_uri} (Prefect global concurrency limit "
                            f"{name!r} is taken); waited {wait:g}s (EUJP_LOCK_WAIT_SECONDS); nothing was "
                            f"changed. The holder may be a run that died (killed, or its host lost): its slot is "
                            f"freed when its lease runs out, {LEASE_SECONDS:g}s after it was last renewed; if no "
                            f"run is writing, run again after that") from None
        if logger is not None:
            logger.info("writer limit %s taken", name)
        yield name
