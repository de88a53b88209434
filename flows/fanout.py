"""Fan-out on Dask: the partitions of a streaming source (Comext: one month file or one live slice each) are
landed, parsed, transformed, validated and written to Parquet by Prefect tasks on a `DaskTaskRunner`; the
flow that called them is the one committer (eujp.partitions.collect_batch, then the usual load of the
daily flow, one transaction per source), so the audit and the all-or-nothing publish hold as before.

    settings.dask_address (EUJP_DASK_ADDRESS, `eujp run --dask-address tcp://HOST:PORT`): an existing cluster;
    else settings.fanout (EUJP_FANOUT=1, `eujp run --fanout`): a local cluster of EUJP_DASK_WORKERS processes.

The tasks get everything as arguments (settings, the partition, dim_country) and read and write only the
object store (raw zone, staging/{run_id}/): a worker keeps no state. Workers report their task runs to the
Prefect API in *their* environment: start them with the run's PREFECT_API_URL (docs/scale-out.md).
"""

from __future__ import annotations

import polars as pl
from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from eujp import partitions
from eujp.config import NO_WORKERS_SETTING, Settings, batch_rows, no_workers_seconds
from eujp.errors import EujpError, NothingLandedError
from eujp.landing import discard_spooled
from eujp.partitions import LandedPartition, Partition, PartitionResult
from eujp.pipeline import SourceBatch, note_applied, skip_unchanged
from eujp.sources import get_source
from eujp.storage import open_store
from flows.hooks import remember_task_failure
from flows.tasks import extract_and_land, replayed_keys


def task_runner(settings: Settings):
    """The DaskTaskRunner of the run: the given scheduler, or a local cluster of settings.dask_workers worker
    processes with one thread each (the work is CPU-bound polars and GX; one thread keeps a worker's memory
    to one partition at a time), given the run's PREFECT_API_URL and, as TMPDIR, the run's spill folder."""
    from prefect.settings import PREFECT_API_URL
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    cluster = {"n_workers": settings.dask_workers, "threads_per_worker": 1, "processes": True,
               "dashboard_address": None}
    # the workers spill (a partition's payload, its hash buckets: eujp.partitions.prepare_partition) into the
    # run's spill folder, the warehouse's like the committer's, not into a system /tmp that may be a RAM disk
    settings.spill_dir.mkdir(parents=True, exist_ok=True)
    cluster["env"] = {"TMPDIR": str(settings.spill_dir.resolve())}
    api = PREFECT_API_URL.value()
    if api:  # the workers report to the run's Prefect server (not a temporary one each), whatever their env
        cluster["env"]["PREFECT_API_URL"] = api
    return DaskTaskRunner(cluster_kwargs=cluster)


@task(name="land-partition", cache_policy=NO_CACHE, task_run_name="land {partition.source} #{partition.index}",
      on_failure=[remember_task_failure])
def land_partition(partition: Partition, settings: Settings) -> LandedPartition:
    return partitions.land_partition(partition, settings)


@task(name="prepare-partition", cache_policy=NO_CACHE, task_run_name="prepare {parts[0].source} {parts[0].name}",
      on_failure=[remember_task_failure])
def prepare_partition(parts: list[LandedPartition], settings: Settings, countries: pl.DataFrame,
                      limit: int) -> PartitionResult:
    return partitions.prepare_partition(parts, settings, countries, limit)


class NoWorkersError(RuntimeError):
    """The cluster has had no worker for longer than EUJP_DASK_NO_WORKERS_SECONDS while tasks were pending."""


_POLL_SECONDS = 2.0


def results(futures: list, limit: float | None = None) -> list:
    """Each task's result, in order. Dask does not give up on a task whose workers all died: it waits for a
    worker to join, for ever, while the run holds the lock. So the wait is cut in polls, and once the cluster
    has had no worker for `limit` seconds (EUJP_DASK_NO_WORKERS_SECONDS) the tasks are cancelled and
    NoWorkersError raised (cluster_lost names the cluster)."""
    import time

    from distributed import TimeoutError as DaskTimeout

    limit = no_workers_seconds() if limit is None else limit
    wrapped = [f.wrapped_future for f in futures]
    alone_since: float | None = None
    while pending := [w for w in wrapped if not w.done()]:
        try:
            pending[0].result(timeout=_POLL_SECONDS)
            continue
        except (DaskTimeout, TimeoutError):
            pass
        except Exception:  # noqa: BLE001 - a failed or cancelled task: its result() below raises it
            break
        client = wrapped[0].client
        try:
            workers = len(client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - the scheduler itself is gone: the futures' results say so
            break
        if workers:
            alone_since = None
            continue
        alone_since = alone_since or time.monotonic()
        if time.monotonic() - alone_since >= limit:
            waiting = sum(not w.done() for w in wrapped)
            client.cancel(wrapped)
            raise NoWorkersError(f"no worker for {limit:g} s ({NO_WORKERS_SETTING}) while {waiting} task(s) "
                                 "waited")
    return [f.result() for f in futures]


def _prepare(groups: list[list[LandedPartition]], settings: Settings, countries: pl.DataFrame
             ) -> list[PartitionResult]:
    # the committer's EUJP_BATCH_ROWS, so that a worker started without the run's environment streams alike
    futures = prepare_partition.map(groups, unmapped(settings), unmapped(countries), unmapped(batch_rows()))
    return results(futures)


def landed_partitions(source_name: str, settings: Settings, batch: SourceBatch) -> list[LandedPartition]:
    """The source's partitions in the raw zone: snapshot files landed by the workers; live slices fetched and
    landed by the flow (the request plan decides the slices, eujp.live); raw mode: what that day landed."""
    source = get_source(source_name)
    if settings.source_mode == "snapshot":
        futures = land_partition.map(partitions.plan_snapshot(source, settings), unmapped(settings))
        landed = results(futures)
        batch.raw_keys = [p.key for p in landed]
        return landed
    if settings.source_mode == "raw":
        store = open_store(settings.publish_uri)
        try:
            batch.raw_keys = replayed_keys(store, source_name, settings.raw_date)
        except NothingLandedError:  # unchanged on that day (skip_unchanged)
            return []
        return partitions.landed_on(store, source, settings.raw_date)
    payloads, batch.raw_keys = extract_and_land(source_name, settings)
    try:
        return partitions.landed_partitions(source, batch.raw_keys, payloads)
    finally:  # the workers read the landed copies
        discard_spooled(payloads)


@flow(name="eujp-fanout", flow_run_name="fanout-{source_name}-{settings.run_id}", validate_parameters=False)
def fanout_flow(source_name: str, settings: Settings, countries: pl.DataFrame, batch: SourceBatch) -> SourceBatch:
    """One source, partition by partition on the flow's task runner; returns its batch (prepared, unchanged
    or failed), its rows collected from the partitions' Parquet pieces, which are then deleted."""
    logger = get_run_logger()
    settings = partitions.worker_settings(settings)
    try:
        try:
            landed = landed_partitions(source_name, settings, batch)
        except Exception as exc:  # noqa: BLE001 - the source fails, the others go on
            return batch.fail("extract", cluster_lost(exc, settings) or exc)
        if skip_unchanged(batch, landed, settings):
            return batch
        every = landed
        source = get_source(source_name)
        # a label feed's payloads (Comext's codelist) and coverage statements are small: the committer parses
        # them (into batch.labels and batch.coverage, loaded with the rows as in a single-process run); the
        # workers prepare the data partitions
        landed, batch.labels, batch.coverage = partitions.read_feeds(source, landed, open_store(settings.publish_uri))
        try:
            results = _prepare([[p] for p in landed], settings, countries)
        except Exception as exc:
            lost = cluster_lost(exc, settings)
            if lost is None:
                raise
            return batch.fail("prepare", lost)
        # a replayed day's landing that fails is left out, as its run loaded nothing of it (eujp.stream's
        # LandingsStream); the batch records when the payloads it loaded were fetched (SourceBatch.fetched)
        try:
            left_out, landing_errors = partitions.landings_left_out(source, landed, results)
        except EujpError as exc:
            return batch.fail("parse", exc)
        if left_out:
            landed = [p for p in landed if p.landing not in left_out]
            kept = {p.index for p in landed}
            results = [r for r in results if set(r.indices) <= kept]
        batch.landing_errors = landing_errors
        note_applied(batch, every, left_out)
        if not any(r.error for r in results):
            groups = partitions.overlapping_groups(results)
            if groups:
                grouped = {i for group in groups for i in group}
                by_index = {p.index: p for p in landed}
                logger.info("%s: partitions %s may share keys: prepared again together", source_name, groups)
                results = [r for r in results if not grouped & set(r.indices)]
                results += _prepare([[by_index[i] for i in group] for group in groups], settings, countries)
        for r in results:
            logger.info("%s: %s", source_name, r.describe())
        return partitions.collect_batch(batch, results, settings)
    finally:
        partitions.discard_staging(settings, source_name)


def cluster_lost(exc: BaseException, settings: Settings) -> EujpError | None:
    """The error to report for a fan-out task that Dask cancelled or could not reach (its scheduler or
    workers gone mid-run), naming the cluster; None for any other error (reported as it is)."""
    import asyncio
    import concurrent.futures

    from distributed.comm.core import CommClosedError

    kinds = (asyncio.CancelledError, concurrent.futures.CancelledError, CommClosedError, NoWorkersError)
    if not isinstance(exc, kinds) and "Cancelled" not in type(exc).__name__:
        return None
    where = f"the Dask scheduler {settings.dask_address}" if settings.dask_address else "the run's local Dask cluster"
    return EujpError(f"{where} stopped answering or lost its workers while the partitions ran "
                     f"({type(exc).__name__}: {exc}); nothing of this source was loaded, its table is as it was")


def run_fanout(source_name: str, settings: Settings, countries: pl.DataFrame, batch: SourceBatch) -> SourceBatch:
    """Run fanout_flow (as a subflow of the calling flow) on the run's DaskTaskRunner."""
    return fanout_flow.with_options(task_runner=task_runner(settings))(source_name, settings, countries, batch)
