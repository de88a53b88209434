"""The run's quality pages under latest/ and the links to them: publish_run copies a folder of extra files (the
Data Docs) to latest/ with the newest run's pages only, complete_summary fills docs_url / report_url (http
under EUJP_PUBLIC_URL, else where the files are: never file://), and the artifacts link them only over http."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from eujp.config import Settings
from eujp.errors import PublishError
from eujp.publish import LATEST_POINTER, publish_run, read_latest_pointer
from eujp.run import RunSummary, complete_summary, object_link
from eujp.sources import eurostat_goods
from eujp.storage import LocalObjectStore
from eujp.tables import ensure_schema
from eujp.warehouse import connect, upsert_fact

RUN1, RUN2 = "20261124T060000Z-aaaaaa", "20261125T060000Z-bbbbbb"


def _warehouse(path):
    with connect(path) as c:
        ensure_schema(c)
        table = eurostat_goods.TABLE
        frame = pl.DataFrame([{"reporter": "EU28", "partner": "JP", "flow": "export", "period_year": 2016,
                               "value_mio_eur": 1.0, "obs_status": None, "source": eurostat_goods.SOURCE.name,
                               "source_version": "v"}], schema=table.business_columns)
        upsert_fact(c, table, frame, run_id="r", loaded_at=datetime.now(UTC), source=eurostat_goods.SOURCE.name)
    return path


def _docs(folder, run_id, table):
    """A Data Docs site: index.html, one validation page, a static file."""
    (folder / "validations" / table / run_id).mkdir(parents=True)
    (folder / "static" / "vendor").mkdir(parents=True)
    (folder / "index.html").write_text(f"<html>index of {run_id}</html>")
    (folder / "validations" / table / run_id / "page.html").write_text(f"<html>{table} {run_id}</html>")
    (folder / "static" / "vendor" / "lib.js").write_text("/* lib */")
    return folder


def _publish(store, tmp_path, run_id, table, latest_files=("report.html", "docs")):
    report = tmp_path / f"report-{run_id}.html"
    report.write_text(f"<html>report {run_id}</html>")
    return publish_run(
        store, run_id=run_id, warehouse_path=_warehouse(tmp_path / f"{run_id}.duckdb"),
        work_dir=tmp_path / f"work-{run_id}",
        manifest_without_checksums={"run_id": run_id, "status": "success", "table_rows": {}, "sources": {},
                                    "validation": {}, "audit": {"ok": True}},
        extra_files={"docs": _docs(tmp_path / f"docs-{run_id}", run_id, table), "report.html": report},
        latest_files=latest_files)


class RecordingStore(LocalObjectStore):
    def __init__(self, root, fail_on=None):
        super().__init__(root)
        self.put, self.fail_on = [], fail_on

    def put_file(self, key, path, content_type=None):
        if self.fail_on and self.fail_on in key:
            raise OSError(f"simulated failure writing {key}")
        self.put.append(key)
        return super().put_file(key, path, content_type)

    def copy(self, src_key, dst_key):  # the latest/ aliases are copies of the run's objects
        if self.fail_on and self.fail_on in dst_key:
            raise OSError(f"simulated failure copying to {dst_key}")
        self.put.append(dst_key)
        return super().copy(src_key, dst_key)


def test_the_data_docs_are_published_under_latest_with_the_newest_runs_pages_only(tmp_path):
    store = RecordingStore(tmp_path / "objects")
    _publish(store, tmp_path, RUN1, "fact_a")
    assert store.get_bytes("latest/docs/index.html") == f"<html>index of {RUN1}</html>".encode()
    assert store.exists(f"latest/docs/validations/fact_a/{RUN1}/page.html")
    latest = [k for k in store.put if k.startswith("latest/docs/")]
    assert latest[-1] == "latest/docs/index.html"  # the index after the pages it links to

    _publish(store, tmp_path, RUN2, "fact_b")
    assert store.get_bytes("latest/docs/index.html") == f"<html>index of {RUN2}</html>".encode()
    assert store.get_bytes("latest/report.html") == f"<html>report {RUN2}</html>".encode()
    assert store.list_keys("latest/docs") == ["latest/docs/index.html", "latest/docs/static/vendor/lib.js",
                                              f"latest/docs/validations/fact_b/{RUN2}/page.html"]
    # each run keeps its own copy
    assert store.exists(f"runs/{RUN1}/docs/validations/fact_a/{RUN1}/page.html")
    assert store.exists(f"runs/{RUN2}/docs/index.html") and store.exists(f"runs/{RUN2}/report.html")
    assert read_latest_pointer(store)["run_id"] == RUN2


def test_a_failure_while_replacing_latest_docs_says_what_was_replaced(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    _publish(store, tmp_path, RUN1, "fact_a")
    broken = RecordingStore(tmp_path / "objects", fail_on="latest/docs/index.html")
    with pytest.raises(PublishError, match=rf"failed at latest/docs/index.html: .*latest/docs/.* replaced but "
                                           rf"{LATEST_POINTER} still points at the previous run"):
        _publish(broken, tmp_path, RUN2, "fact_b")
    assert read_latest_pointer(store)["run_id"] == RUN1


def test_latest_files_must_name_extra_files_or_folders_of_them(tmp_path):
    with pytest.raises(ValueError, match=r"latest_files \['catalog'\]"):
        _publish(LocalObjectStore(tmp_path / "objects"), tmp_path, RUN1, "fact_a", ("docs", "catalog"))


# --- the summary's links --------------------------------------------------------------------------------------

@pytest.fixture
def published(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    _publish(store, tmp_path, RUN1, "fact_a")
    return store


def _settings(tmp_path, **kw):
    return Settings(warehouse_path=tmp_path / "wh" / "warehouse.duckdb", publish_uri=str(tmp_path / "objects"),
                    run_id=RUN1, **kw)


def _complete(settings, docs, **summary):
    s = RunSummary(run_id=settings.run_id, status="success", **summary)
    complete_summary(settings, s, docs)
    return s


def test_published_links_are_http_under_the_public_url(published, tmp_path):
    settings = _settings(tmp_path, public_url="https://data.example.org/eujp/")
    s = _complete(settings, str(tmp_path / "docs" / "index.html"), published_to=f"{published.uri}/runs/{RUN1}")
    assert s.docs_url == f"https://data.example.org/eujp/runs/{RUN1}/docs/index.html"
    assert s.report_url == f"https://data.example.org/eujp/runs/{RUN1}/report.html"


def test_without_a_public_url_the_links_say_where_the_files_are(published, tmp_path):
    settings = _settings(tmp_path)
    s = _complete(settings, str(tmp_path / "docs" / "index.html"), published_to=f"{published.uri}/runs/{RUN1}")
    assert s.docs_url == f"{published.uri}/runs/{RUN1}/docs/index.html"
    assert s.report_url == f"{published.uri}/runs/{RUN1}/report.html"
    assert object_link(settings, "latest/report.html") == f"{published.uri}/latest/report.html"
    assert "file://" not in s.docs_url + s.report_url
    # not published (an as-of rebuild, a failed publish): where the Data Docs were built; no report
    docs = tmp_path / "built" / "index.html"
    s = _complete(settings, str(docs))
    assert s.docs_url == str(docs.resolve()) and s.report_url is None


def test_a_day_with_nothing_new_links_the_report_of_the_current_run(published, tmp_path):
    settings = _settings(tmp_path).with_(run_id="20261126T060000Z-cccccc")
    s = _complete(settings, None, published_to=f"{published.uri}/runs/{RUN1}", current_run_id=RUN1)
    assert s.report_url == f"{published.uri}/runs/{RUN1}/report.html" and s.docs_url is None


def test_a_report_that_was_not_published_is_not_linked(tmp_path):
    settings = _settings(tmp_path, public_url="https://data.example.org/eujp")
    s = _complete(settings, str(tmp_path / "docs" / "index.html"), published_to=f"{tmp_path}/objects/runs/{RUN1}")
    assert s.report_url is None and s.docs_url.startswith("https://")


# --- artifacts ------------------------------------------------------------------------------------------------

def _summary(**kw):
    return {"run_id": RUN1, "status": "success", "published_to": f"s3://bucket/eujp/runs/{RUN1}",
            "warehouse": "var/warehouse.duckdb", "sources": [], "table_rows": {}, "audit": {}, "errors": [],
            "warnings": [], "freshness": []} | kw


def test_the_run_report_links_over_http_and_names_locations_otherwise():
    from flows.artifacts import run_markdown

    md = run_markdown(_summary(docs_url="https://x.org/runs/r/docs/index.html",
                               report_url="https://x.org/runs/r/report.html"))
    assert "| Data Docs | [open the Data Docs](https://x.org/runs/r/docs/index.html) |" in md
    assert "| report | [open the run report](https://x.org/runs/r/report.html) |" in md
    md = run_markdown(_summary(docs_url=f"s3://bucket/eujp/runs/{RUN1}/docs/index.html",
                               report_url=f"s3://bucket/eujp/runs/{RUN1}/report.html"))
    assert f"| Data Docs | published to `s3://bucket/eujp/runs/{RUN1}/docs/index.html` |" in md
    assert f"| report | published to `s3://bucket/eujp/runs/{RUN1}/report.html` |" in md
    md = run_markdown(_summary(published_to=None, docs_url="/var/eujp/docs/r/index.html"))
    assert "| Data Docs | `/var/eujp/docs/r/index.html` (not published) |" in md
    assert "| report | not published |" in md


def test_the_run_report_names_the_partners_a_run_removed():
    from flows.artifacts import run_markdown

    changes = {"tables_written": [], "models_rebuilt": {"mart_product_trade": "every model rebuilt"},
               "models_kept": [], "partners_removed": {"KR": {"fact_rows": 12, "coverage_rows": 3}}}
    md = run_markdown(_summary(changes=changes))
    assert ("| partners removed | partner(s) removed on request (--remove-partner): KR (12 fact row(s), "
            "3 coverage row(s)) |") in md
    assert "partners removed" not in run_markdown(_summary(changes=changes | {"partners_removed": None}))


def test_link_artifacts_are_posted_for_http_links_only(monkeypatch):
    import prefect.artifacts

    from flows.artifacts import DOCS_KEY, HTML_REPORT_KEY, create_run_artifacts

    links = {}
    monkeypatch.setattr(prefect.artifacts, "create_link_artifact", lambda key, link, **kw: links.update({key: link}))
    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact", lambda **kw: None)
    monkeypatch.setattr(prefect.artifacts, "create_table_artifact", lambda **kw: None)
    create_run_artifacts(_summary(docs_url="https://x.org/d/index.html", report_url="https://x.org/report.html"))
    assert links == {DOCS_KEY: "https://x.org/d/index.html", HTML_REPORT_KEY: "https://x.org/report.html"}
    links.clear()
    create_run_artifacts(_summary(docs_url="s3://b/d/index.html", report_url="/srv/eujp/runs/r/report.html"))
    assert links == {}


def test_data_docs_that_still_need_the_network_are_a_warning_of_the_run(tmp_path):
    from eujp.run import data_docs

    site = tmp_path / "site"
    site.mkdir()
    index = site / "index.html"
    index.write_text('<link rel="stylesheet" href="static/vendor/bootstrap/css/bootstrap.min.css">')
    summary = RunSummary(run_id=RUN1, status="success")
    assert data_docs(lambda: str(index), ["a report"], summary) == str(index) and summary.warnings == []
    index.write_text('<script src="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js"></script>')
    assert data_docs(lambda: str(index), ["a report"], summary) == str(index)
    assert summary.warnings == [("Data Docs need the network for 1 asset(s) (https://unpkg.com/bootstrap-table@1.19.1/"
                                "dist/bootstrap-table.min.js): their packages are not installed (docs/operations.md, "
                                "Quality pages and links)")]
