"""Publishing: run objects verified, `latest` moved last, retention, failures leave `latest` intact. Publishing
to S3 (a moto server): tests/integration/test_publish_s3.py."""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from eujp.errors import PublishError
from eujp.publish import LATEST_POINTER, apply_retention, publish_run, read_latest_pointer
from eujp.sources import eurostat_goods
from eujp.storage import LocalObjectStore, sha256_file
from eujp.tables import ensure_schema
from eujp.warehouse import connect, upsert_fact

# The source these tests load, by its module (a source's name is written in its own folder only).
GOODS, FACT_GOODS_TRADE = eurostat_goods.SOURCE.name, eurostat_goods.TABLE


def make_warehouse(path, value):
    with connect(path) as c:
        ensure_schema(c)
        frame = pl.DataFrame(
            [{"reporter": "EU28", "partner": "JP", "flow": "export", "period_year": 2016,
              "value_mio_eur": value, "obs_status": None, "source": GOODS, "source_version": "v"}],
            schema=FACT_GOODS_TRADE.business_columns,
        )
        upsert_fact(c, FACT_GOODS_TRADE, frame, run_id="r", loaded_at=datetime.now(UTC), source=GOODS)
    return path


def publish(store, tmp_path, run_id, value=58000.0, keep_runs=7):
    wh = make_warehouse(tmp_path / f"{run_id}.duckdb", value)
    return publish_run(
        store, run_id=run_id, warehouse_path=wh, work_dir=tmp_path / f"work-{run_id}", keep_runs=keep_runs,
        manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {"fact_goods_trade": 1},
                                    "sources": {}, "validation": {}, "audit": {"ok": True}},
    )


@pytest.fixture
def store(tmp_path):
    """The store the contract tests run on (tests/integration/test_publish_s3.py runs them on S3)."""
    return LocalObjectStore(tmp_path / "objects")


def test_publish_writes_run_objects_manifest_and_pointer(store, tmp_path):
    result = publish(store, tmp_path, "20261124T060000Z-aaaaaa")
    keys = store.list_keys("runs/20261124T060000Z-aaaaaa")
    assert "runs/20261124T060000Z-aaaaaa/warehouse.duckdb" in keys
    assert "runs/20261124T060000Z-aaaaaa/parquet/fact_goods_trade.parquet" in keys
    manifest = json.loads(store.get_bytes("runs/20261124T060000Z-aaaaaa/manifest.json"))
    assert manifest["run_id"] == "20261124T060000Z-aaaaaa"
    assert manifest["tables"]["fact_goods_trade"]["rows"] == 1
    # checksums in the manifest are those of the uploaded objects
    parquet = tmp_path / "check.parquet"
    parquet.write_bytes(store.get_bytes("runs/20261124T060000Z-aaaaaa/parquet/fact_goods_trade.parquet"))
    assert sha256_file(parquet) == manifest["tables"]["fact_goods_trade"]["sha256"]
    assert pl.read_parquet(parquet)["value_mio_eur"].to_list() == [58000.0]
    assert read_latest_pointer(store)["run_id"] == "20261124T060000Z-aaaaaa"
    assert store.get_bytes("latest/warehouse.duckdb") == store.get_bytes(
        "runs/20261124T060000Z-aaaaaa/warehouse.duckdb")
    assert result.location.endswith("runs/20261124T060000Z-aaaaaa")


def test_published_warehouse_opens_and_holds_the_data(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    publish(store, tmp_path, "20261124T060000Z-bbbbbb", value=12.5)
    with duckdb.connect(str(tmp_path / "objects" / "latest" / "warehouse.duckdb"), read_only=True) as c:
        assert c.execute("SELECT value_mio_eur FROM fact_goods_trade").fetchone() == (12.5,)


def test_retention_keeps_the_newest_runs(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    for i in range(4):
        publish(store, tmp_path, f"2026112{i}T060000Z-cccccc", keep_runs=2)
    runs = sorted({k.split("/")[1] for k in store.list_keys("runs")})
    assert runs == ["20261122T060000Z-cccccc", "20261123T060000Z-cccccc"]
    assert read_latest_pointer(store)["run_id"] == "20261123T060000Z-cccccc"
    with pytest.raises(ValueError):
        apply_retention(store, 0)


def test_retention_counts_complete_runs_only_and_drops_abandoned_uploads(tmp_path):
    """A publish cut off half-way leaves objects but no manifest: it never counts among the runs kept, so the
    run `latest` pointed to before the next publish stays (a reader who resolved the pointer just before it
    moved can still read it), and the abandoned upload goes."""
    store = LocalObjectStore(tmp_path / "objects")
    publish(store, tmp_path, "20261121T060000Z-eeeeee", keep_runs=2)
    publish(store, tmp_path, "20261122T060000Z-eeeeee", keep_runs=2)
    store.put_bytes("runs/20261123T060000Z-killed/warehouse.duckdb", b"half")  # cut off before its manifest
    store.put_bytes("runs/20261123T060000Z-killed/parquet/dim_country.parquet", b"half")
    publish(store, tmp_path, "20261124T060000Z-eeeeee", keep_runs=2)
    runs = sorted({k.split("/")[1] for k in store.list_keys("runs")})
    assert runs == ["20261122T060000Z-eeeeee", "20261124T060000Z-eeeeee"]
    assert read_latest_pointer(store)["run_id"] == "20261124T060000Z-eeeeee"
    # an upload newer than the newest complete run (a publish under way elsewhere) is left alone
    store.put_bytes("runs/20261125T060000Z-busy/warehouse.duckdb", b"in flight")
    assert apply_retention(store, 2) == []


class FailingStore(LocalObjectStore):
    """Fails every upload whose key contains `fail_on` (a disk error, a dropped connection...)."""

    def __init__(self, root, fail_on):
        super().__init__(root)
        self.fail_on = fail_on

    def put_file(self, key, path, content_type=None):
        if self.fail_on in key:
            raise OSError(f"simulated failure writing {key}")
        return super().put_file(key, path, content_type)

    def copy(self, src_key, dst_key):  # the latest/ aliases are copies
        if self.fail_on in dst_key:
            raise OSError(f"simulated failure copying to {dst_key}")
        return super().copy(src_key, dst_key)


@pytest.mark.parametrize("fail_on", ["parquet/fact_goods_trade", "manifest.json", "latest/warehouse"])
def test_failed_upload_leaves_previous_latest_intact(tmp_path, fail_on):
    good = LocalObjectStore(tmp_path / "objects")
    publish(good, tmp_path, "20261123T060000Z-dddddd", value=1.0)
    before = good.get_bytes(LATEST_POINTER)
    before_wh = good.get_bytes("latest/warehouse.duckdb")
    broken = FailingStore(tmp_path / "objects", fail_on)
    with pytest.raises(PublishError, match=f"failed at .*{fail_on.split('/')[0]}.*latest was not moved"):
        publish(broken, tmp_path, "20261124T060000Z-eeeeee", value=2.0)
    assert good.get_bytes(LATEST_POINTER) == before
    if fail_on != "latest/warehouse":
        assert good.get_bytes("latest/warehouse.duckdb") == before_wh


def test_the_previous_published_run_stays_readable_and_whole(tmp_path):
    """A reader who resolved latest.json just before it moved still finds every object of that run, with the
    checksums of its manifest; retention (at least 2, see Settings) never takes it away."""
    from eujp.config import Settings

    store = LocalObjectStore(tmp_path / "objects")
    for i in range(3):
        publish(store, tmp_path, f"2026112{i}T060000Z-ffffff", value=float(i), keep_runs=2)
    previous = "20261121T060000Z-ffffff"
    manifest = json.loads(store.get_bytes(f"runs/{previous}/manifest.json"))
    copy = tmp_path / "previous.duckdb"
    copy.write_bytes(store.get_bytes(f"runs/{previous}/warehouse.duckdb"))
    assert sha256_file(copy) == manifest["warehouse"]["sha256"]
    with duckdb.connect(str(copy), read_only=True) as c:
        assert c.execute("SELECT value_mio_eur FROM fact_goods_trade").fetchone() == (1.0,)
    for name, table in manifest["tables"].items():
        part = tmp_path / f"{name}.parquet"
        part.write_bytes(store.get_bytes(f"runs/{previous}/{table['parquet']}"))
        assert sha256_file(part) == table["sha256"], name
    assert not store.list_keys("runs/20261120T060000Z-ffffff")  # the one before that is gone
    with pytest.raises(ValueError, match="EUJP_KEEP_RUNS must be at least 2"):
        Settings(keep_runs=1)


def _mart_warehouse(path, values: dict[int, float]):
    """A warehouse whose mart_product_trade holds one product per year of `values` (and two in 2022)."""
    with connect(path) as c:
        ensure_schema(c)
        rows = [("EU27_2020", "JP", "export", year, "84834030", value) for year, value in values.items()]
        if 2022 in values:
            rows.append(("EU27_2020", "JP", "import", 2022, "85423190", 7.0))
        c.executemany("INSERT INTO mart_product_trade (reporter, partner, flow, period_year, product_cn8, value_eur) "
                      "VALUES (?, ?, ?, ?, ?, ?)", rows)
    return path


def _publish_mart(store, tmp_path, run_id, values):
    from eujp.publish import PartitionedParquet

    wh = _mart_warehouse(tmp_path / f"{run_id}.duckdb", values)
    return publish_run(
        store, run_id=run_id, warehouse_path=wh, work_dir=tmp_path / f"work-{run_id}",
        manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {}, "sources": {},
                                    "validation": {}, "audit": {"ok": True}},
        partitioned={"mart_product_trade": PartitionedParquet("period_year")},
    )


def _part_rows(store, tmp_path, key):
    local = tmp_path / "part.parquet"
    local.write_bytes(store.get_bytes(key))
    with duckdb.connect() as c:
        return sorted(c.execute("SELECT period_year, product_cn8, value_eur FROM read_parquet(?)",
                                [str(local)]).fetchall())


def test_a_mart_published_by_partition_exports_only_the_years_that_changed(store, tmp_path, monkeypatch):
    """A file per year; the next run copies (the store's copy: server-side on S3) the years whose rows are the
    same and exports the others; every file holds its year's rows and the manifest's sha256 is the object's."""
    copies, puts = [], []
    copy, put_file = store.copy, store.put_file
    monkeypatch.setattr(store, "copy", lambda src, dst: copies.append((src, dst)) or copy(src, dst))
    monkeypatch.setattr(store, "put_file", lambda key, path, ct=None: puts.append(key) or put_file(key, path, ct))

    first, second = "20261124T060000Z-aaaaaa", "20261125T060000Z-bbbbbb"
    _publish_mart(store, tmp_path, first, {2021: 1.0, 2022: 2.0})
    folder = "parquet/mart_product_trade"
    assert {k for k in puts if "mart_product_trade" in k} == {
        f"runs/{first}/{folder}/period_year=2021.parquet", f"runs/{first}/{folder}/period_year=2022.parquet"}
    assert not store.exists(f"runs/{first}/parquet/mart_product_trade.parquet")
    entry = json.loads(store.get_bytes(f"runs/{first}/manifest.json"))["tables"]["mart_product_trade"]
    assert entry["parquet"] == f"{folder}/" and entry["partitioned_by"] == "period_year"
    assert {p: (e["key"], e["rows"]) for p, e in entry["parts"].items()} == {
        "2021": (f"{folder}/period_year=2021.parquet", 1), "2022": (f"{folder}/period_year=2022.parquet", 2)}
    assert _part_rows(store, tmp_path, f"runs/{first}/{folder}/period_year=2022.parquet") == [
        (2022, "84834030", 2.0), (2022, "85423190", 7.0)]

    puts.clear()
    copies.clear()
    result = _publish_mart(store, tmp_path, second, {2021: 1.0, 2022: 2.5, 2023: 3.0})  # 2022 revised, 2023 new
    assert [c for c in copies if "mart_product_trade" in c[1]] == [
        (f"runs/{first}/{folder}/period_year=2021.parquet", f"runs/{second}/{folder}/period_year=2021.parquet")]
    assert {k for k in puts if "mart_product_trade" in k} == {
        f"runs/{second}/{folder}/period_year=2022.parquet", f"runs/{second}/{folder}/period_year=2023.parquet"}
    parts = result.manifest["tables"]["mart_product_trade"]["parts"]
    assert parts["2021"]["sha256"] == entry["parts"]["2021"]["sha256"]
    for part in parts.values():
        local = tmp_path / "check.parquet"
        local.write_bytes(store.get_bytes(f"runs/{second}/{part['key']}"))
        assert sha256_file(local) == part["sha256"]
    assert [r for p in ("2021", "2022", "2023") for r in
            _part_rows(store, tmp_path, f"runs/{second}/{folder}/period_year={p}.parquet")] == [
        (2021, "84834030", 1.0), (2022, "84834030", 2.5), (2022, "85423190", 7.0), (2023, "84834030", 3.0)]


def test_a_partition_file_that_no_longer_matches_its_manifest_is_exported_again(tmp_path):
    """A previous file that is gone or changed since (its sha256 is not the manifest's) is never copied."""
    store = LocalObjectStore(tmp_path / "objects")
    first, second = "20261124T060000Z-aaaaaa", "20261125T060000Z-bbbbbb"
    _publish_mart(store, tmp_path, first, {2021: 1.0, 2022: 2.0})
    (store.root / f"runs/{first}/parquet/mart_product_trade/period_year=2021.parquet").write_bytes(b"tampered")
    (store.root / f"runs/{first}/parquet/mart_product_trade/period_year=2022.parquet").unlink()
    _publish_mart(store, tmp_path, second, {2021: 1.0, 2022: 2.0})
    assert [r for p in ("2021", "2022") for r in _part_rows(
        store, tmp_path, f"runs/{second}/parquet/mart_product_trade/period_year={p}.parquet")] == [
        (2021, "84834030", 1.0), (2022, "84834030", 2.0), (2022, "85423190", 7.0)]


def test_a_run_without_data_docs_leaves_none_of_an_older_run_under_latest(store, tmp_path):
    """latest/docs/ holds only the newest run's pages: a run that validated nothing (no docs) published with
    clear_latest=("docs",) removes an older run's, which stayed under the new pointer."""
    def run(run_id: str, docs: bool):
        wh = make_warehouse(tmp_path / f"{run_id}.duckdb", 1.0)
        extra = {}
        if docs:
            site = tmp_path / f"site-{run_id}"
            (site / "validations").mkdir(parents=True)
            (site / "index.html").write_text("<html>index</html>")
            (site / "validations" / "t.html").write_text("<html>t</html>")
            extra = {"docs": site}
        return publish_run(store, run_id=run_id, warehouse_path=wh, work_dir=tmp_path / f"work-{run_id}",
                           manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                                       "sources": {}, "validation": {}, "audit": {}},
                           extra_files=extra, latest_files=("docs",) if docs else (), clear_latest=("docs",))

    run("20261124T060000Z-docs01", docs=True)
    assert store.list_keys("latest/docs") == ["latest/docs/index.html", "latest/docs/validations/t.html"]
    run("20261125T060000Z-docs02", docs=False)
    assert read_latest_pointer(store)["run_id"] == "20261125T060000Z-docs02"
    assert store.list_keys("latest/docs") == []


def test_latest_report_links_reach_the_runs_parquet_files(store, tmp_path):
    """The report links the run's Parquet files relatively (`parquet/x.parquet`, right in runs/{run_id}/);
    latest/report.html gets those links pointing at ../runs/{run_id}/parquet/ (it was a plain copy, whose
    links led to latest/parquet/, which does not exist)."""
    run_id = "20261124T060000Z-links1"
    report = tmp_path / "report.html"
    report.write_text('<a href="parquet/fact_goods_trade.parquet">x</a> <a href="catalog.html">c</a>')
    publish_run(store, run_id=run_id, warehouse_path=make_warehouse(tmp_path / "w.duckdb", 1.0),
                work_dir=tmp_path / "work", extra_files={"report.html": report}, latest_files=("report.html",),
                manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {}})
    assert store.get_bytes(f"runs/{run_id}/report.html") == report.read_bytes()
    latest = store.get_bytes("latest/report.html").decode()
    assert latest == (f'<a href="../runs/{run_id}/parquet/fact_goods_trade.parquet">x</a> '
                      '<a href="catalog.html">c</a>')
    target = (store.root / "latest" / f"../runs/{run_id}/parquet/fact_goods_trade.parquet").resolve()
    assert target.is_file()


def _listed_objects(manifest: dict) -> dict[str, str]:
    """{path relative to the manifest's folder: sha256} of every file the manifest lists with a checksum."""
    listed = {manifest["warehouse"]["key"]: manifest["warehouse"]["sha256"], **manifest["files"]}
    for entry in manifest["tables"].values():
        if entry.get("sha256"):
            listed[entry["parquet"]] = entry["sha256"]
        for part in (entry.get("parts") or {}).values():
            listed[part["key"]] = part["sha256"]
    return listed


def test_latest_and_the_run_folder_each_check_against_the_manifest_beside_them(store, tmp_path):
    """Every path a manifest lists, resolved from its own folder, is an object with the sha256 listed: in the
    run's folder and in latest/, whose report (its links made to reach the run's Parquet files) differs from the
    run's, and which holds no Parquet (latest/manifest.json used to be a copy of the run's: its `parquet/...`
    paths led nowhere from latest/ and its report's checksum was the run's)."""
    from eujp.publish import PartitionedParquet

    run_id = "20261124T060000Z-check1"
    report = tmp_path / "report.html"
    report.write_text('<a href="parquet/mart_product_trade/">detail</a>')
    notes = tmp_path / "notes.txt"
    notes.write_text("only in the run's folder")
    publish_run(store, run_id=run_id, warehouse_path=_mart_warehouse(tmp_path / "w.duckdb", {2021: 1.0, 2022: 2.0}),
                work_dir=tmp_path / "work", extra_files={"report.html": report, "notes.txt": notes},
                latest_files=("report.html",), partitioned={"mart_product_trade": PartitionedParquet("period_year")},
                manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {}})
    for folder in (f"runs/{run_id}/", "latest/"):
        manifest = json.loads(store.get_bytes(f"{folder}manifest.json"))
        assert manifest["location"] == folder
        listed = _listed_objects(manifest)
        assert {"warehouse.duckdb", "report.html"} <= set(listed) and len(listed) > 6  # tables, 2 parts, notes
        for path, digest in listed.items():
            local = tmp_path / "object"
            local.write_bytes(store.get_bytes(posixpath.normpath(folder + path)))  # ".." resolved
            assert sha256_file(local) == digest, f"{folder}{path}"
    latest = json.loads(store.get_bytes("latest/manifest.json"))
    run = json.loads(store.get_bytes(f"runs/{run_id}/manifest.json"))
    assert latest["files"]["report.html"] != run["files"]["report.html"]  # the relinked page's own checksum
    assert latest["files"][f"../runs/{run_id}/notes.txt"] == run["files"]["notes.txt"]
    assert latest["run_manifest"] == f"../runs/{run_id}/manifest.json"
    assert {k: v for k, v in latest.items() if k not in ("location", "run_manifest", "tables", "files")} == {
        k: v for k, v in run.items() if k not in ("location", "tables", "files")}


def test_a_run_that_publishes_an_earlier_runs_loads_lists_them_in_its_manifest(tmp_path):
    """A run interrupted after its promotion and before its publish ended left its rows in the warehouse but not
    in `latest`: the next run publishes them, and its manifest says whose loads they are (it said every source
    was unchanged, 0 rows in)."""
    from support.small_publish import publish as publish_small

    from eujp.config import Settings
    from eujp.run import carried_runs, published_latest
    from eujp.tables import ensure_schema
    from eujp.warehouse import connect

    store = LocalObjectStore(tmp_path / "store")
    published, interrupted, current = "20261124T060000Z-aaaaaa", "20261125T060000Z-bbbbbb", "20261126T060000Z-cccccc"
    publish_small(tmp_path, store, published, rows=2)
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    with connect(warehouse) as conn:
        ensure_schema(conn)
        conn.executemany(
            "INSERT INTO etl_runs (run_id, source, status, rows_in, rows_loaded, rows_rejected, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ)",
            [(published, "s1", "success", 10, 10, 0, "2026-11-24 06:00:00+00"),
             (interrupted, "s1", "success", 12, 11, 1, "2026-11-25 06:00:00+00"),
             (interrupted, "s2", "unchanged", 0, 0, 0, "2026-11-25 06:00:01+00"),
             ("20261125T120000Z-nonew", "s1", "unchanged", 0, 0, 0, "2026-11-25 12:00:00+00"),  # a check only
             (current, "s1", "unchanged", 0, 0, 0, "2026-11-26 06:00:00+00")])
    settings = Settings(warehouse_path=warehouse, publish_uri=str(tmp_path / "store"), run_id=current)
    assert carried_runs(settings, published_latest(store)) == {interrupted: {
        "s1": {"status": "success", "rows_in": 12, "rows_loaded": 11, "rows_rejected": 1, "message": None},
        "s2": {"status": "unchanged", "rows_in": 0, "rows_loaded": 0, "rows_rejected": 0, "message": None}}}
    # the publish writes them into the run's manifest
    from support.small_publish import small_warehouse

    carried = carried_runs(settings, published_latest(store))
    publish_run(store, run_id=current, warehouse_path=small_warehouse(tmp_path / "c.duckdb", 1),
                work_dir=tmp_path / "work-c", manifest_without_checksums={
                    "run_id": current, "status": "success", "table_rows": {}, "sources": {}, "validation": {},
                    "audit": {"ok": True}, "carried_runs": carried})
    manifest = json.loads((tmp_path / "store" / "runs" / current / "manifest.json").read_text())
    assert manifest["carried_runs"] == carried and list(carried) == [interrupted]
    store = LocalObjectStore(tmp_path / "store2")
    publish_small(tmp_path, store, published, rows=2)
    # nothing published yet, or a published run this warehouse never ran: nothing to tell
    assert carried_runs(settings, published_latest(LocalObjectStore(tmp_path / "empty"))) == {}
    publish_small(tmp_path, store, "20261125T070000Z-zzzzzz", rows=1)
    assert carried_runs(settings, published_latest(store)) == {}


def test_a_day_with_nothing_new_after_a_promoted_run_that_was_never_published_publishes(tmp_path):
    """A --force run promoted its loads, with values equal to the published ones (the same fingerprint), and was
    killed in its publish: the next unchanged day takes the full path, which publishes its records, instead of
    saying the published run is current while the warehouse's etl_runs are the killed run's. A day after a
    check only (status 'unchanged') is still nothing new."""
    import polars as pl

    from eujp.config import Settings
    from eujp.fingerprint import warehouse_fingerprint
    from eujp.pipeline import SourceBatch
    from eujp.run import nothing_new
    from eujp.sources import SOURCES
    from eujp.tables import ensure_schema
    from eujp.warehouse import connect

    source = SOURCES[0]
    published, killed, today = "20261124T060000Z-aaaaaa", "20261125T060000Z-forced", "20261126T060000Z-cccccc"
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    countries = pl.DataFrame({"iso2": ["JP"]})
    with connect(warehouse) as conn:
        ensure_schema(conn)
        conn.executemany(
            "INSERT INTO etl_runs (run_id, source, status, rows_in, rows_loaded, rows_rejected, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ)",
            [(published, source.name, "success", 10, 10, 0, "2026-11-24 06:00:00+00"),
             ("20261124T120000Z-nonew", source.name, "unchanged", 0, 0, 0, "2026-11-24 12:00:00+00")])  # a check only
        conn.execute("INSERT INTO etl_source_state (source, input_checksum, last_success_at, last_attempt_at) "
                     "VALUES (?, 'sha256-of-its-input', '2026-11-24 06:00:00+00', '2026-11-24 06:00:00+00')",
                     [source.name])  # as the published run left it
        fingerprint = warehouse_fingerprint(conn, countries)
    store = LocalObjectStore(tmp_path / "store")
    publish_run(store, run_id=published, warehouse_path=warehouse, work_dir=tmp_path / "work",
                manifest_without_checksums={"run_id": published, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {"ok": True},
                                            "fingerprint": fingerprint})
    settings = Settings(warehouse_path=warehouse, publish_uri=str(store.root), run_id=today)
    from datetime import UTC, datetime

    batches = [SourceBatch(source=source.name, table=source.table.name, status="unchanged", note="same content",
                           started_at=datetime(2026, 11, 26, 6, 0, tzinfo=UTC))]
    current = nothing_new(settings, batches, countries)
    assert current is not None and current["current_run_id"] == published  # nothing new after a check only
    with connect(warehouse) as conn:  # the --force run, promoted: its records, the same values
        conn.execute("INSERT INTO etl_runs (run_id, source, status, rows_in, rows_loaded, rows_rejected, started_at) "
                     "VALUES (?, ?, 'success', 10, 10, 0, '2026-11-25 06:00:00+00'::TIMESTAMPTZ)", [killed, source.name])
        assert warehouse_fingerprint(conn, countries) == fingerprint
    settings = settings.with_(run_id="20261126T070000Z-dddddd")
    assert nothing_new(settings, batches, countries) is None
