"""eujp.partitions without Prefect or Dask: a partition's work as plain functions over a local object store,
collected into the same batch as the single-process path (eujp.pipeline.prepare_source) makes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import generate, make_plan
from eujp import partitions
from eujp.config import Settings
from eujp.extract import read_snapshot
from eujp.landing import RawPayload
from eujp.pipeline import (
    SourceBatch,
    load_countries,
    prepare_source,
    rejected_frames,
    release_chunks,
    utcnow,
    valid_frames,
)
from eujp.sources import SOURCES
from eujp.storage import open_store

STREAMED = next(s for s in SOURCES if s.transform_key)  # the source whose payloads are partitions
DAY = date(2026, 11, 30)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def countries():
    return load_countries(DAY)


def snapshot(tmp_path, months: int = 3):
    """Generated month files of the streamed source (`months` of them) in a snapshot folder of their own."""
    plan = make_plan(rows=1_200, years=None, seed=5, start_year=2022, partners=("JP",))
    generated = tmp_path / "generated"
    generate(plan, generated, log=lambda *_: None)
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for path in sorted(generated.glob("comext_*.csv"))[:months]:
        shutil.copyfile(path, folder / path.name)
    return folder


def settings_for(tmp_path, folder) -> Settings:
    return Settings(snapshot_dir=folder, warehouse_path=tmp_path / "w.duckdb", publish_uri=str(tmp_path / "store"),
                    run_id="t-partitions", run_date=DAY)


def fan_out(settings: Settings, countries: pl.DataFrame, limit: int | None = None) -> SourceBatch:
    """What flows/fanout.py does, in one process: land, prepare, regroup overlapping keys, collect."""
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    results = [partitions.prepare_partition([p], settings, countries, limit) for p in landed]
    groups = partitions.overlapping_groups(results)
    if groups:
        grouped = {i for g in groups for i in g}
        results = [r for r in results if not grouped & set(r.indices)]
        results += [partitions.prepare_partition([landed[i] for i in g], settings, countries, limit)
                    for g in groups]
    batch = SourceBatch(source=STREAMED.name, table=STREAMED.table.name, started_at=utcnow())
    return partitions.collect_batch(batch, results, settings)


def single(settings: Settings, countries: pl.DataFrame) -> SourceBatch:
    batch = SourceBatch(source=STREAMED.name, table=STREAMED.table.name, started_at=utcnow())
    return prepare_source(STREAMED, read_snapshot(STREAMED, settings.snapshot_dir), countries, batch)


def rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)


def valid_rows(batch: SourceBatch) -> pl.DataFrame:
    """The batch's valid rows, in memory or in its spilled chunks."""
    return pl.concat(list(valid_frames(batch)))


def assert_same_batches(a: SourceBatch, b: SourceBatch) -> None:
    assert (a.status, a.rows_in, a.valid_wire_rows, a.rows_rejected, a.source_version, a.newest, a.valid_rows) == \
        (b.status, b.rows_in, b.valid_wire_rows, b.rows_rejected, b.source_version, b.newest, b.valid_rows)
    assert rows(valid_rows(a)).equals(rows(valid_rows(b)))
    rejected = [pl.concat(list(rejected_frames(x)), how="diagonal_relaxed") for x in (a, b)]
    assert rows(rejected[0].select(sorted(rejected[0].columns))).equals(
        rows(rejected[1].select(sorted(rejected[1].columns))))
    assert a.validation.success == b.validation.success and a.validation.row_count == b.validation.row_count
    conflicts = [c if c is None else rows(c) for c in (a.conflicts, b.conflicts)]
    assert conflicts[0] is None if conflicts[1] is None else conflicts[0].equals(conflicts[1])


def test_partitions_collect_into_the_single_process_batch(tmp_path, countries):
    settings = settings_for(tmp_path, snapshot(tmp_path))
    fanned = fan_out(settings, countries)
    assert fanned.rows_in == 300  # 3 of 12 months of 1,200 wire rows
    assert_same_batches(fanned, single(settings, countries))
    store = open_store(settings.publish_uri)
    assert len([k for k in store.list_keys("raw") if k.endswith(".csv")]) == 3
    assert partitions.discard_staging(settings) == 6  # valid + rejected Parquet per partition
    assert store.list_keys(f"staging/{settings.run_id}") == []
    # the committer held one partition's rows at a time: three local chunks, none in memory, which outlive
    # the staging prefix (the load reads them) and go with release_chunks
    assert fanned.valid is None and len(fanned.chunks) == 3
    assert all(p.is_file() and p.parent == fanned.spill_dir for p in fanned.chunks)
    assert fanned.valid_rows == valid_rows(fanned).height > 0
    spill = fanned.spill_dir
    release_chunks(fanned)
    assert not spill.exists()


def test_a_partition_is_collected_as_a_chunk_on_disk_and_versions_are_restamped(tmp_path, countries):
    """One partition: its rows stay on disk, one chunk downloaded from the staging prefix (the committer holds
    no partition in memory). Partitions of different source versions: every row carries the newest, as one
    batch of all the payloads does."""
    settings = settings_for(tmp_path, snapshot(tmp_path, months=2))
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    results = [partitions.prepare_partition([p], settings, countries) for p in landed]
    one = partitions.collect_batch(SourceBatch(source=STREAMED.name, table=STREAMED.table.name,
                                               started_at=utcnow()), results[:1], settings)
    assert one.valid is None and len(one.chunks) == 1 and one.chunks[0].parent == one.spill_dir
    assert valid_rows(one).height == one.valid_rows == results[0].rows_valid > 0
    release_chunks(one)
    results[0].source_version, results[1].source_version = "2024-01-01T00:00:00", "2025-02-03T04:05:06"
    two = partitions.collect_batch(SourceBatch(source=STREAMED.name, table=STREAMED.table.name,
                                               started_at=utcnow()), results, settings)
    assert two.source_version == "2025-02-03T04:05:06" and len(two.chunks) == 2
    assert "source_version" in STREAMED.table.columns
    assert valid_rows(two)["source_version"].cast(pl.String).unique().to_list() == ["2025-02-03T04:05:06"]
    release_chunks(two)


def test_a_partition_of_many_months_is_written_in_period_order_as_one_process_stores_it(tmp_path, countries):
    """One payload of three months, series by series as Comext sorts it (every month of a key before the next
    key), is one partition: a worker's chunk is sorted by month before it is written
    (eujp.pipeline.in_period_order), as prepare_source sorts its chunks, so the load appends a month's rows
    together whichever path prepared them."""
    months = snapshot(tmp_path, months=3)
    files = sorted(months.glob("*.csv"))
    header, rows_of_months = files[0].read_text().splitlines(keepends=True)[0], []
    for path in files:
        rows_of_months += path.read_text().splitlines(keepends=True)[1:]
        path.unlink()
    # reporter, partner, product, flow, indicator, then the period (the header's columns 3-8)
    series_major = sorted(rows_of_months, key=lambda line: line.split(",")[3:9])
    (months / "comext_ds045409_three_months.csv").write_text(header + "".join(series_major))
    settings = settings_for(tmp_path, months)
    fanned = fan_out(settings, countries)
    assert len(fanned.chunks) == 1 and fanned.valid_rows == 150
    stored = valid_rows(fanned).get_column("period")
    assert stored.n_unique() == 3 and stored.to_list() == sorted(stored.to_list())
    assert_same_batches(fanned, single(settings, countries))
    release_chunks(fanned)


def test_partitions_that_share_keys_are_prepared_together(tmp_path, countries):
    """A revised copy of a month (same keys, other values) beside the original: prepared alone, each would
    pass; together, the conflicting keys are rejected, as in one process."""
    folder = snapshot(tmp_path, months=2)
    first = min(folder.glob("*.csv"))
    text = first.read_text().splitlines(keepends=True)
    revised = [text[0]] + [line.rsplit(",", 1)[0] + ",12345\r\n" for line in text[1:21]]
    (folder / first.name.replace(".csv", "-revised.csv")).write_text("".join(revised))
    settings = settings_for(tmp_path, folder)
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    alone = [partitions.prepare_partition([p], settings, countries) for p in landed]
    assert partitions.overlapping_groups(alone) == [[0, 1]]
    fanned = fan_out(settings, countries)
    assert fanned.rows_rejected > 0
    assert_same_batches(fanned, single(settings, countries))


def test_a_partition_that_cannot_be_parsed_is_quarantined_by_name_while_the_others_load(tmp_path, countries):
    """As one process of all the source's payloads: the bad payload quarantined whole, line by line, the
    others loaded; the source fails only when its only payload, or every one, cannot be parsed."""
    folder = snapshot(tmp_path, months=2)
    (folder / "comext_ds045409_broken.csv").write_text("not,a,comext\nfile,at,all\n\nmore,of,it\n")
    settings = settings_for(tmp_path, folder)
    fanned = fan_out(settings, countries)
    assert fanned.status == "prepared" and len(fanned.payload_errors) == 1
    assert "comext_ds045409_broken.csv" in fanned.payload_errors[0]
    assert_same_batches(fanned, single(settings, countries))
    # the broken payload gave no row, so it shares no key: the others are not prepared again with it (its
    # unreadable header made every partition 'may share' and redo all of them on one worker)
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    results = [partitions.prepare_partition([p], settings, countries) for p in landed]
    assert sorted(r.ranges == partitions.NO_KEYS for r in results) == [False, False, True]
    assert partitions.overlapping_groups(results) == []
    assert fanned.rows_rejected == 2 and fanned.rows_in == 200 + 2  # two months, and the bad file's two lines

    only = tmp_path / "only"
    only.mkdir()
    (only / "comext_ds045409_broken.csv").write_text("not,a,comext\nfile,at,all\n")
    alone = fan_out(settings_for(tmp_path / "o", only), countries)
    assert alone.status == "failed" and alone.failed_step == "parse" and "comext_ds045409_broken.csv" in alone.error
    assert "every payload" not in alone.error
    (only / "comext_ds045409_broken_too.csv").write_text("<html>maintenance</html>")
    every = fan_out(settings_for(tmp_path / "e", only), countries)
    assert every.status == "failed" and every.error.count("comext_ds045409_broken") == 2
    assert f"every payload of {STREAMED.name} failed to parse" in every.error


def test_merged_report_sums_rows_and_unexpected_values(tmp_path, countries):
    settings = settings_for(tmp_path, snapshot(tmp_path, months=2))
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    reports = [partitions.prepare_partition([p], settings, countries).validation for p in landed]
    merged = partitions.merge_reports(reports)
    assert merged.row_count == sum(r.row_count for r in reports) and merged.success
    # one partition with a failed expectation: the merged report fails it, with the unexpected rows added up
    bad = replace(reports[1], outcomes=[replace(o, success=False, unexpected_count=3) if i == 1 else o
                                        for i, o in enumerate(reports[1].outcomes)])
    merged = partitions.merge_reports([reports[0], bad])
    outcome = merged.outcomes[1]
    assert not outcome.success and outcome.unexpected_count == 3 + (reports[0].outcomes[1].unexpected_count or 0)
    # the table's row count is judged on the sum, not per partition
    empty = replace(reports[0], row_count=0, outcomes=[
        replace(o, success=False) if o.expectation_type == "expect_table_row_count_to_be_between" else o
        for o in reports[0].outcomes])
    row_count = [o for o in partitions.merge_reports([empty, reports[1]]).outcomes
                 if o.expectation_type == "expect_table_row_count_to_be_between"]
    assert row_count and all(o.success for o in row_count)


def test_dask_address_is_checked():
    with pytest.raises(ValueError, match=r"EUJP_DASK_ADDRESS \(--dask-address\) must be a Dask scheduler address"):
        Settings(dask_address="10.0.0.5:8786")
    assert Settings(dask_address="tcp://10.0.0.5:8786").fans_out and not Settings().fans_out
    assert Settings(fanout=True).fans_out


def test_preflight_names_a_dask_scheduler_that_does_not_answer():
    import socket

    from eujp.preflight import check_dask_scheduler

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = check_dask_scheduler(Settings(dask_address=f"tcp://127.0.0.1:{port}"))
    assert not check.ok and f"tcp://127.0.0.1:{port} did not answer" in check.detail
    # `eujp check` has no --dask-address: the option is named with its command
    assert check.setting == "EUJP_DASK_ADDRESS (or `eujp run --dask-address`)"
    assert check_dask_scheduler(Settings()) is None  # no scheduler given: no line in `eujp check`


def test_raw_mode_partitions_are_the_landed_payloads_of_the_day(tmp_path, countries):
    """--from-raw: the partitions are read from the raw zone's metadata only, and prepare to the same rows."""
    settings = settings_for(tmp_path, snapshot(tmp_path, months=2))
    landed = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    found = partitions.landed_on(open_store(settings.publish_uri), STREAMED, DAY)
    assert sorted((p.key, p.sha256, p.size) for p in found) == sorted((p.key, p.sha256, p.size) for p in landed)
    replay = settings.with_(source_mode="raw", raw_date=DAY)
    results = [partitions.prepare_partition([p], replay, countries) for p in found]
    batch = partitions.collect_batch(SourceBatch(source=STREAMED.name, table=STREAMED.table.name,
                                                 started_at=utcnow()), results, replay)
    assert_same_batches(batch, single(settings, countries))
    with pytest.raises(Exception, match="nothing was landed"):
        partitions.landed_on(open_store(settings.publish_uri), STREAMED, date(2001, 1, 1))


def test_a_day_of_several_landings_fans_out_to_the_single_process_replay(tmp_path, countries):
    """--from-raw in fan-out of a day on which two runs landed Comext: the second landing re-sent January with
    other figures. The partitions carry their landing's number; January's two partitions may share keys, so
    they are prepared together, and the later landing supersedes the earlier (eujp.stream.LandingsStream), as
    the single-process replay of the day does (they were taken for one landing before: conflicts, every
    January key rejected)."""
    from datetime import UTC, datetime

    from eujp.landing import land, read_landed, record_landing

    settings = settings_for(tmp_path, snapshot(tmp_path, months=2))
    store = open_store(settings.publish_uri)
    first = read_snapshot(STREAMED, settings.snapshot_dir)
    january = min(first, key=lambda p: p.name)
    text = january.read().decode().splitlines(keepends=True)
    revised = RawPayload(STREAMED.name, "comext_revised.csv",
                         "".join([text[0]] + [line.rsplit(",", 1)[0] + ",777\r\n" for line in text[1:]]).encode(),
                         "https://example.org/revised.csv")
    for hour, payloads in ((6, first), (7, [revised])):
        for p in payloads:
            land(store, p, DAY, "csv")
        record_landing(store, STREAMED.name, DAY, [p.sha256 for p in payloads], at=datetime(2026, 11, 30, hour,
                                                                                           tzinfo=UTC))
    replay = settings.with_(source_mode="raw", raw_date=DAY)
    found = partitions.landed_on(store, STREAMED, DAY)
    assert [p.landing for p in found] == [0, 0, 1]
    results = [partitions.prepare_partition([p], replay, countries) for p in found]
    groups = partitions.overlapping_groups(results)
    assert [found[i].landing for g in groups for i in g] == [0, 1]  # January's two landings, together
    results = [r for r in results if not {i for g in groups for i in g} & set(r.indices)]
    results += [partitions.prepare_partition([found[i] for i in g], replay, countries) for g in groups]
    fanned = partitions.collect_batch(SourceBatch(source=STREAMED.name, table=STREAMED.table.name,
                                                  started_at=utcnow()), results, replay)
    whole = prepare_source(STREAMED, read_landed(store, STREAMED.name, DAY), countries,
                           SourceBatch(source=STREAMED.name, table=STREAMED.table.name, started_at=utcnow()))
    assert fanned.conflicts is None and fanned.rows_rejected == whole.rows_rejected
    # the rows, but for source_version: the fan-out stamps every row with the day's newest version (its
    # partitions' versions differ: collect_batch), the single process each landing's rows with that landing's
    assert_same_batches(replace(fanned, chunks=[], valid=valid_rows(fanned).drop("source_version")),
                        replace(whole, chunks=[], valid=valid_rows(whole).drop("source_version")))
    assert valid_rows(fanned).get_column("source_version").unique().to_list() == [fanned.source_version]
    assert (valid_rows(fanned).filter(pl.col("period_code") == "2022-01").get_column("value_eur") == 777).all()
    release_chunks(fanned)
    release_chunks(whole)


def test_a_replayed_landing_that_fails_is_left_out_and_the_batch_records_when_the_others_were_fetched(
        tmp_path, countries):
    """--from-raw in fan-out of a day on which the 06:05 run landed two month files and the 09:00 run one cut
    mid-row: as the single-process replay, the cut landing is left out with the same error (not quarantined as a
    payload of a loaded landing), and the batch's extraction time and SourceBatch.fetched are those of the 06:05
    payloads (an as-of rebuild stamps the source's last success with them), not the cut one's 09:00."""
    from datetime import UTC, datetime

    from eujp.landing import land, read_landed, record_landing
    from eujp.pipeline import note_applied, skip_unchanged

    settings = settings_for(tmp_path, snapshot(tmp_path, months=2))
    store = open_store(settings.publish_uri)
    months = read_snapshot(STREAMED, settings.snapshot_dir)
    cut = months[0].read()[:-40]
    for hour, landing in ((6, [(p.name, p.read()) for p in months]), (9, [("comext_cut.csv", cut)])):
        at = datetime(2026, 11, 30, hour, 5, tzinfo=UTC)
        payloads = [RawPayload(STREAMED.name, name, data, f"https://example.org/{name}",
                               fetched_at=at.isoformat(timespec="seconds")) for name, data in landing]
        for p in payloads:
            land(store, p, DAY, "csv")
        record_landing(store, STREAMED.name, DAY, [p.sha256 for p in payloads], at=at)
    replay = settings.with_(source_mode="raw", raw_date=DAY)
    found = partitions.landed_on(store, STREAMED, DAY)
    results = [partitions.prepare_partition([p], replay, countries) for p in found]
    left_out, errors = partitions.landings_left_out(STREAMED, found, results)
    fanned = SourceBatch(source=STREAMED.name, table=STREAMED.table.name, started_at=utcnow())
    assert not skip_unchanged(fanned, found, replay)
    note_applied(fanned, found, left_out)
    fanned = partitions.collect_batch(fanned, [r for r in results if found[r.indices[0]].landing not in left_out],
                                      replay)
    whole = SourceBatch(source=STREAMED.name, table=STREAMED.table.name, started_at=utcnow())
    payloads = read_landed(store, STREAMED.name, DAY)
    assert not skip_unchanged(whole, payloads, replay)
    whole = prepare_source(STREAMED, payloads, countries, whole)
    assert left_out == [1] and errors == whole.landing_errors and len(errors) == 1
    assert "landing 2 of 2 of the day not applied" in errors[0] and "comext_cut.csv" in errors[0]
    assert fanned.payload_errors == whole.payload_errors == []
    assert fanned.fetched == whole.fetched == {p.sha256: datetime(2026, 11, 30, 6, 5, tzinfo=UTC) for p in months}
    assert fanned.extracted_at == whole.extracted_at == datetime(2026, 11, 30, 6, 5, tzinfo=UTC)
    assert fanned.input_checksum == whole.input_checksum
    assert_same_batches(fanned, whole)
    release_chunks(fanned)
    release_chunks(whole)
    # the cut file in both landings: every landing fails, and so does the source, as the single-process replay's
    with pytest.raises(Exception, match="no landing of the day could be applied"):
        partitions.landings_left_out(STREAMED, [replace(found[2], index=0, landing=0), found[2]],
                                     [replace(results[2], indices=(0,)), results[2]])


def test_the_task_runner_is_the_given_scheduler_or_a_local_cluster(tmp_path):
    from flows.fanout import task_runner

    remote = task_runner(Settings(dask_address="tcp://10.0.0.5:8786"))
    assert remote.address == "tcp://10.0.0.5:8786"
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        settings = Settings(fanout=True, dask_workers=3, warehouse_path=tmp_path / "var" / "warehouse.duckdb")
        local = task_runner(settings)
    assert local.address is None and local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["threads_per_worker"] == 1
    # the workers report to the run's Prefect server instead of starting one each, and spill beside the
    # warehouse (the run's spill folder, emptied by the next run), not into the system's /tmp
    assert local.cluster_kwargs["env"] == {"PREFECT_API_URL": "http://127.0.0.1:4200/api",
                                           "TMPDIR": str(settings.spill_dir.resolve())}
    assert settings.spill_dir.is_dir()


def test_eujp_run_refuses_a_dask_address_that_is_not_one_and_one_nobody_answers(tmp_path):
    import socket

    from typer.testing import CliRunner

    from flows.cli import app

    common = ["run", "--warehouse", str(tmp_path / "var" / "w.duckdb"), "--publish", str(tmp_path / "store")]
    bad = CliRunner().invoke(app, [*common, "--dask-address", "10.0.0.5:8786"])
    said = " ".join(bad.output.replace("│", " ").split())  # out of typer's box
    assert bad.exit_code == 2 and "(--dask-address) must be a Dask scheduler address" in said, said
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    silent = CliRunner().invoke(app, [*common, "--dask-address", f"tcp://127.0.0.1:{port}"])
    assert silent.exit_code == 2, silent.output
    assert "did not answer" in silent.output and "EUJP_DASK_ADDRESS" in silent.output
    assert not (tmp_path / "var" / "w.duckdb").exists()


def test_the_committer_reads_the_codelist_and_the_coverage_statement_as_a_single_process_run(tmp_path, countries):
    """A live all-products Comext landing replayed with --from-raw in fan-out: the codelist and the coverage
    statement are read by the committer (partitions.read_feeds), into the labels and coverage rows that
    prepare_source makes of the same payloads; only the data partitions go to the workers."""
    import json

    from eujp.landing import RawPayload, read_landed
    from eujp.pipeline import land_payloads
    from eujp.sources.comext_goods import COVERAGE_KIND, LABELS, coverage_statement

    settings = settings_for(tmp_path, snapshot(tmp_path, months=2))
    files = read_snapshot(STREAMED, settings.snapshot_dir)
    codelist = RawPayload.from_file(STREAMED.name, REPO / "data" / "snapshot" / "comext_codelist_cxt_nc_excerpt.xml",
                                    kind=LABELS.kind)
    stated = coverage_statement({"EUJP_COMEXT_REPORTERS": "EU27_2020,DE"}, "2022-01", "2022-02", "ESTAT:CXT_NC(1.0)")
    payloads = [*(p for p in files if p.kind == "data"), codelist,
                RawPayload(STREAMED.name, "coverage", json.dumps(stated).encode(), "http://comext/whole-request",
                           kind=COVERAGE_KIND)]
    land_payloads(open_store(settings.publish_uri), STREAMED, payloads, DAY)

    found = partitions.landed_on(open_store(settings.publish_uri), STREAMED, DAY)
    assert {p.key.rsplit(".", 1)[1] for p in found if p.kind == COVERAGE_KIND} == {"json"}
    data, labels, coverage = partitions.read_feeds(STREAMED, found, open_store(settings.publish_uri))
    assert [p.kind for p in data] == ["data"] * (len(payloads) - 2)
    single_batch = prepare_source(STREAMED, read_landed(open_store(settings.publish_uri), STREAMED.name, DAY), countries,
                                  SourceBatch(source=STREAMED.name, table=STREAMED.table.name, started_at=utcnow()))
    assert single_batch.error is None
    assert labels is not None and rows(labels).equals(rows(single_batch.labels))
    assert coverage.height == 2 * 1 * 2 * 2 and rows(coverage).equals(rows(single_batch.coverage))
    assert sorted(set(coverage.select("reporter", "flow").rows())) == [
        ("DE", "export"), ("DE", "import"), ("EU27_2020", "export"), ("EU27_2020", "import")]


def test_a_partition_over_the_batch_limit_streams_in_chunks_with_the_single_process_result(tmp_path, countries):
    """Bounded memory on a worker (issue 12, item 2): a partition of more wire rows than the batch limit is
    streamed (hash-spilled into chunks of at most the limit) and written chunk by chunk, as row groups of its
    Parquet piece, with the same rows, rejected rows, conflicts and accounting as one batch of the payloads;
    a key given twice with different values in one payload is carried as a conflict, as prepare_source does."""
    folder = snapshot(tmp_path, months=2)
    first = min(folder.glob("*.csv"))
    lines = first.read_text().splitlines(keepends=True)
    conflicting = [line.rsplit(",", 1)[0] + ",987654\r\n" for line in lines[1:4]]  # same keys, other values
    first.write_text("".join([*lines, *conflicting]))
    settings = settings_for(tmp_path, folder)
    whole = single(settings, countries)
    assert whole.conflicts is not None and whole.conflicts.height > 0
    fanned = fan_out(settings, countries, limit=30)  # month files of 100 and 103 wire rows
    assert_same_batches(fanned, whole)
    store = open_store(settings.publish_uri)
    pieces = [k for k in store.list_keys(f"staging/{settings.run_id}") if k.endswith(".valid.parquet")]
    assert len(pieces) == 2
    for key in pieces:
        local = tmp_path / key.rsplit("/", 1)[1]
        store.get_file(key, local)
        assert pq.ParquetFile(local).metadata.num_row_groups > 1  # written chunk by chunk
    release_chunks(fanned)


def test_a_fan_out_whose_cluster_went_away_says_so_naming_it(tmp_path):
    """A scheduler killed mid-run: Dask cancels the tasks ("FutureCancelledError ... reason: unknown"); the
    source's error names the cluster instead. Any other error is reported as it is."""
    from distributed.client import FutureCancelledError

    from flows.fanout import cluster_lost

    settings = settings_for(tmp_path, tmp_path).with_(dask_address="tcp://10.0.0.7:8786")
    lost = cluster_lost(FutureCancelledError("land_partition-68b5", "unknown"), settings)
    assert str(lost).startswith("the Dask scheduler tcp://10.0.0.7:8786 stopped answering or lost its workers "
                                "while the partitions ran (FutureCancelledError")
    assert "its table is as it was" in str(lost)
    assert "the run's local Dask cluster" in str(cluster_lost(FutureCancelledError("k", "unknown"),
                                                              settings.with_(dask_address=None)))
    assert cluster_lost(ValueError("a bad partition"), settings) is None


def test_the_wait_for_a_worker_is_a_setting_in_seconds(monkeypatch):
    from eujp.config import NO_WORKERS_DEFAULT, no_workers_seconds
    from eujp.errors import EujpError

    monkeypatch.delenv("EUJP_DASK_NO_WORKERS_SECONDS", raising=False)
    assert no_workers_seconds() == NO_WORKERS_DEFAULT == 120
    monkeypatch.setenv("EUJP_DASK_NO_WORKERS_SECONDS", "2.5")
    assert no_workers_seconds() == 2.5
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv("EUJP_DASK_NO_WORKERS_SECONDS", bad)
        with pytest.raises(EujpError, match="EUJP_DASK_NO_WORKERS_SECONDS="):
            no_workers_seconds()


def test_a_prepared_partition_is_described_in_wire_rows_as_the_single_process_log(tmp_path, countries):
    """flows/fanout.py logged '... 100 rows in, 50 valid, 0 rejected' (table rows as valid: rows in != valid +
    rejected); the single-process log (flows/domains.py log_prepared) counts valid in wire rows."""
    from eujp.rows import describe_rows

    settings = settings_for(tmp_path, snapshot(tmp_path, months=1))
    (landed,) = [partitions.land_partition(p, settings) for p in partitions.plan_snapshot(STREAMED, settings)]
    r = partitions.prepare_partition([landed], settings, countries)
    assert (r.rows_in, r.valid_wire_rows, r.rows_rejected, r.rows_valid) == (100, 100, 0, 50)
    r.worker, r.seconds = "host-1", 0.25
    assert r.describe() == "partition 0 prepared on host-1 in 0.2 s: 100 rows in, 100 valid, 0 rejected; " \
                           "50 table rows to write"
    batch = partitions.collect_batch(SourceBatch(source=STREAMED.name, table=STREAMED.table.name,
                                                 started_at=utcnow()), [r], settings)
    assert describe_rows(batch.rows_in, batch.valid_wire_rows, batch.rows_rejected) in r.describe()
    r.error = "validate failed: boom"
    assert r.describe().endswith("50 table rows to write; validate failed: boom")
    release_chunks(batch)
