"""The BI recipes of docs/bi.md, run as they stand: each fenced block after a `<!-- recipe: NAME -->` comment is
read from the doc and executed (Python in this process, shell through bash with the `duckdb` CLI of duckdb-cli,
SQLAlchemy URIs and engine parameters through duckdb-engine, Metabase's init SQL through DuckDB) against the
bundled warehouse published to a folder (`var/objectstore` under the working directory) and to moto's S3 (as
`s3://my-bucket/eujp`, the placeholder the BI tools' recipes use). The Evidence project in bi/evidence/ is
installed from its lock file and its sources run through Evidence's DuckDB connector; the full Evidence build
needs extensions.duckdb.org and is skipped where that host cannot be reached."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import duckdb
import pytest
import yaml

from eujp.publish import publish_run
from eujp.storage import open_store

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "bi.md"
EVIDENCE = REPO_ROOT / "bi" / "evidence"
VENV_BIN = Path(sys.executable).parent
RUN_ID = "20261124T060000Z-birec1"
S3_BUCKET, S3_PREFIX = "my-bucket", "eujp"  # the placeholder of the Superset and Metabase recipes

RECIPE = re.compile(r"<!-- recipe: ([\w-]+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)


def recipes() -> dict[str, tuple[str, str]]:
    """{name: (language, text)} of every marked block in docs/bi.md."""
    found: dict[str, tuple[str, str]] = {}
    for name, lang, text in RECIPE.findall(DOC.read_text()):
        assert name not in found, f"recipe {name} twice in {DOC}"
        found[name] = (lang, text)
    return found


def recipe(name: str) -> str:
    return recipes()[name][1]


# --- the expected figures, straight from the bundled warehouse -------------------------------------------------

CLAIMS_SQL = "SELECT claim_number, claim_id, verdict FROM mart_claims ORDER BY claim_number"
TRADE_SQL = ("SELECT period_year, exports_mio_eur, imports_mio_eur FROM mart_trade_annual "
             "WHERE reporter = 'EU28' AND trade_type = 'goods' ORDER BY period_year")


@pytest.fixture(scope="module")
def expected(bundled_warehouse) -> dict[str, list[tuple]]:
    with duckdb.connect(str(bundled_warehouse), read_only=True) as con:
        out = {"claims": con.execute(CLAIMS_SQL).fetchall(), "trade": con.execute(TRADE_SQL).fetchall()}
    assert len(out["claims"]) == 8 and (2, "japan_second_largest_partner", "contradicted") in out["claims"]
    assert (2016, 58000.0, 66000.0) in out["trade"]
    return out


def publish(bundled_warehouse: Path, uri: str, work: Path) -> None:
    publish_run(open_store(uri), run_id=RUN_ID, warehouse_path=bundled_warehouse,
                manifest_without_checksums={"run_id": RUN_ID, "status": "success", "table_rows": {},
                                            "sources": {}, "validation": {}, "audit": {}},
                work_dir=work)


@pytest.fixture(scope="module")
def workdir(bundled_warehouse, tmp_path_factory) -> Path:
    """A directory whose var/objectstore holds the bundled warehouse published to a folder."""
    root = tmp_path_factory.mktemp("bi-recipes")
    publish(bundled_warehouse, str(root / "var" / "objectstore"), root / "work")
    assert (root / "var" / "objectstore" / "latest" / "warehouse.duckdb").is_file()
    return root


@pytest.fixture
def in_workdir(workdir, monkeypatch, tmp_path) -> Path:
    """cwd = the work directory, HOME a fresh one (DuckDB keeps extensions and secrets under ~/.duckdb)."""
    monkeypatch.chdir(workdir)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("EUJP_PUBLISH_URI", raising=False)
    return workdir


@pytest.fixture
def on_s3(bundled_warehouse, s3_env, in_workdir, monkeypatch, tmp_path) -> str:
    """The bundled warehouse published to s3://my-bucket/eujp on moto; EUJP_PUBLISH_URI names it."""
    client = boto3.client("s3", endpoint_url=s3_env)
    if S3_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=S3_BUCKET)
    uri = f"s3://{S3_BUCKET}/{S3_PREFIX}"
    publish(bundled_warehouse, uri, tmp_path / "s3-work")
    monkeypatch.setenv("EUJP_PUBLISH_URI", uri)
    return uri


def run_python(name: str) -> dict:
    namespace: dict = {"__name__": f"recipe_{name.replace('-', '_')}"}
    code = compile(recipe(name), f"docs/bi.md <recipe: {name}>", "exec")
    exec(code, namespace)  # noqa: S102 (the doc's own text)
    return namespace


def run_shell(name: str) -> str:
    """The recipe through bash -e in the current directory; its standard output."""
    done = subprocess.run(["bash", "-e", "-c", recipe(name)], check=False, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"recipe {name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def box_tables(output: str) -> list[list[list[str]]]:
    """The CLI's box tables, each as its data rows (header and type rows dropped), NULL as None."""
    tables: list[list[list[str]]] = []
    for line in output.splitlines():
        if line.startswith("┌"):
            tables.append([])
        elif line.startswith("│") and tables:
            tables[-1].append([None if c.strip() == "NULL" else c.strip() for c in line.strip("│").split("│")])
    return [rows[2:] for rows in tables]  # column names, column types


def test_every_recipe_is_tested():
    tested = {"python-folder", "python-compare-partners", "python-s3", "python-open-warehouse", "python-parquet-folder", "python-parquet-s3",
              "cli-folder", "cli-s3", "bi-host-setup", "superset-uri-folder", "superset-engine-parameters-folder",
              "superset-uri-s3", "superset-engine-parameters-s3", "superset-config-s3", "metabase-init-sql",
              "evidence-connection", "evidence-build"}
    assert set(recipes()) == tested
    # a marker not followed by a block would silently drop a recipe
    assert len(re.findall(r"^<!-- recipe: ", DOC.read_text(), re.MULTILINE)) == len(tested)


# --- Jupyter / Python ----------------------------------------------------------------------------------------

def test_python_folder(in_workdir, expected):
    ns = run_python("python-folder")
    claims, trade = ns["claims"], ns["trade"]
    assert list(claims.itertuples(index=False, name=None)) == expected["claims"]
    assert type(trade).__module__.startswith("polars")
    assert [(r[0], r[1], r[2]) for r in trade.iter_rows()] == expected["trade"]
    assert trade.filter(trade["period_year"] == 2016)["balance_mio_eur"].to_list() == [-8000.0]
    # attached read-only, under the alias the recipe gives
    con = ns["con"]
    assert con.execute("SELECT current_database()").fetchone() == ("eujp",)
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        con.execute("DELETE FROM mart_claims")


def test_python_compare_partners(in_workdir):
    """The bundled EU27_2020 all-partner month (June 2025, CN8 84834030): 16 extra-EU partner countries (Serbia as XS), Japan
    second behind Switzerland (data/snapshot's file: CH 4,187,411 EUR, JP 2,264,878 EUR)."""
    ns = run_python("python-compare-partners")
    partners, ahead = ns["partners"], ns["ahead_of_japan"]
    assert ns["year"] == 2025 and partners.height == 16
    assert partners.row(0) == ("CH", "Switzerland", 1, 4187411.0)
    assert partners.row(1) == ("JP", "Japan", 1, 2264878.0)
    assert not set(partners["partner"]) & {"DE", "FR", "QV", "QW", "EXT_EU27_2020"}
    assert ahead.rows() == [("84", "CH", "Switzerland", 4187411.0, pytest.approx(4187411 / 2264878))]


def test_python_s3(on_s3, expected):
    ns = run_python("python-s3")
    assert list(ns["claims"].itertuples(index=False, name=None)) == expected["claims"]
    con = ns["con"]
    assert con.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'eujp'").fetchone() \
        == (f"{on_s3}/latest/warehouse.duckdb",)
    assert con.execute(TRADE_SQL).fetchall() == expected["trade"]


def test_python_open_warehouse_folder_and_s3(in_workdir, expected, on_s3, monkeypatch):
    ns = run_python("python-open-warehouse")  # EUJP_PUBLISH_URI = the S3 publish
    assert list(ns["claims"].itertuples(index=False, name=None)) == expected["claims"]
    # the run latest.json points to, whose files never change (not the latest/ alias the next publish replaces)
    assert ns["con"].execute("SELECT path FROM duckdb_databases() WHERE database_name = 'warehouse'"
                             ).fetchone()[0] == f"{on_s3}/runs/{RUN_ID}/warehouse.duckdb"
    monkeypatch.delenv("EUJP_PUBLISH_URI")  # the default: the folder var/objectstore
    ns = run_python("python-open-warehouse")
    assert list(ns["claims"].itertuples(index=False, name=None)) == expected["claims"]
    assert ns["con"].execute("SELECT path FROM duckdb_databases() WHERE database_name = 'warehouse'"
                             ).fetchone()[0] == str(in_workdir / f"var/objectstore/runs/{RUN_ID}/warehouse.duckdb")


def _check_parquet_frames(ns: dict, expected: dict, bundled_warehouse: Path) -> None:
    import pandas as pd
    import polars as pl

    assert ns["prefix"] == f"runs/{RUN_ID}"
    trade, claims = ns["trade"], ns["claims"]
    assert isinstance(trade, pl.DataFrame) and isinstance(claims, pd.DataFrame)
    with duckdb.connect(str(bundled_warehouse), read_only=True) as con:
        assert trade.height == con.execute("SELECT count(*) FROM mart_trade_annual").fetchone()[0] == 38
        want_claims = con.execute("SELECT * FROM mart_claims ORDER BY claim_number").df()
    got = sorted((r["period_year"], r["exports_mio_eur"], r["imports_mio_eur"])
                 for r in trade.filter((pl.col("reporter") == "EU28") & (pl.col("trade_type") == "goods"))
                 .iter_rows(named=True))
    assert got == expected["trade"]
    pd.testing.assert_frame_equal(claims.sort_values("claim_number").reset_index(drop=True), want_claims,
                                  check_dtype=False)


def test_python_parquet_folder(in_workdir, expected, bundled_warehouse):
    _check_parquet_frames(run_python("python-parquet-folder"), expected, bundled_warehouse)


def test_python_parquet_s3(on_s3, expected, bundled_warehouse):
    _check_parquet_frames(run_python("python-parquet-s3"), expected, bundled_warehouse)


# --- the DuckDB CLI --------------------------------------------------------------------------------------------

def test_duckdb_cli_is_the_pinned_version(in_workdir):
    assert shutil.which("duckdb") == str(VENV_BIN / "duckdb"), "install duckdb-cli==1.5.5 (the dev extra)"
    out = subprocess.run(["duckdb", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"v{duckdb.__version__} "), out


def _check_cli_output(output: str, expected: dict) -> None:
    *other, claims, trade = box_tables(output)
    assert all(rows == [["true"]] for rows in other)  # CREATE SECRET reports Success
    assert [(int(n), claim_id, verdict) for n, claim_id, verdict in claims] == expected["claims"]
    assert [(int(y), x and float(x), m and float(m)) for y, x, m in trade] == expected["trade"]


def test_cli_folder(in_workdir, expected):
    _check_cli_output(run_shell("cli-folder"), expected)


def test_cli_s3(on_s3, expected):
    out = run_shell("cli-s3")
    _check_cli_output(out, expected)
    assert "testing-secret" not in out


# --- Superset (SQLAlchemy + duckdb-engine) and Metabase ---------------------------------------------------------

def _engine_kwargs(name: str) -> dict:
    lang, text = recipes()[name]
    assert lang == "json"
    return json.loads(text)  # Superset passes its "Engine parameters" to sqlalchemy.create_engine


def _query_both_ways(engine) -> tuple[str, list, list]:
    """(current database, claims unqualified, claims as Metabase/Superset name them: schema main)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        plain = [tuple(r) for r in conn.execute(text(CLAIMS_SQL))]
        qualified = [tuple(r) for r in conn.execute(text(
            'SELECT claim_number, claim_id, verdict FROM main."mart_claims" ORDER BY claim_number'))]
    return database, plain, qualified


def test_superset_folder_default_alias(in_workdir, expected):
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(recipe("superset-uri-folder"), **_engine_kwargs("superset-engine-parameters-folder"))
    try:
        database, plain, qualified = _query_both_ways(engine)
        assert database == "warehouse"  # the file's own name: the default alias
        assert plain == qualified == expected["claims"]
        assert "mart_claims" in inspect(engine).get_table_names(schema="main")
        with engine.connect() as conn, pytest.raises(Exception, match="read-only|read only"):
            conn.execute(text("DELETE FROM mart_claims"))
    finally:
        engine.dispose()


def test_bi_host_setup_then_superset_s3_custom_alias(on_s3, expected):
    from sqlalchemy import create_engine, event, inspect
    from sqlalchemy.engine import Engine

    run_shell("bi-host-setup")
    home = Path(os.environ["HOME"])
    assert list((home / ".duckdb" / "stored_secrets").glob("eujp_s3*"))
    assert list((home / ".duckdb" / "extensions").rglob("httpfs.duckdb_extension"))

    ns = run_python("superset-config-s3")  # registers the listener on every Engine, as superset_config.py does
    try:
        engine = create_engine(recipe("superset-uri-s3"), **_engine_kwargs("superset-engine-parameters-s3"))
        database, plain, qualified = _query_both_ways(engine)
        assert database == "eujp"  # a custom alias
        assert plain == qualified == expected["claims"]
        assert "mart_trade_annual" in inspect(engine).get_table_names(schema="main")
        with engine.connect() as conn:  # the run latest.json names, not the alias the next publish replaces
            assert conn.exec_driver_sql("SELECT path FROM duckdb_databases() WHERE database_name = 'eujp'"
                                        ).scalar_one() == f"{on_s3}/runs/{RUN_ID}/warehouse.duckdb"
        engine.dispose()
        # a DuckDB database file is left alone by the hook
        local = create_engine("duckdb:///var/objectstore/latest/warehouse.duckdb",
                              **_engine_kwargs("superset-engine-parameters-folder"))
        assert _query_both_ways(local)[0] == "warehouse"
        local.dispose()
    finally:
        event.remove(Engine, "connect", ns["attach_eujp_warehouse"])


def test_bi_host_setup_then_metabase_init_sql(on_s3, expected):
    run_shell("bi-host-setup")
    # Metabase: Database file ':memory:', the init SQL on each new connection, then its own queries
    con = duckdb.connect(":memory:")
    con.execute(recipe("metabase-init-sql"))
    assert con.execute("SELECT current_database()").fetchone() == ("eujp",)
    assert con.execute(CLAIMS_SQL).fetchall() == expected["claims"]
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = "
                                        "'eujp' AND table_schema = 'main'").fetchall()}
    assert {"mart_claims", "mart_trade_annual", "fact_goods_trade"} <= tables
    assert con.execute('SELECT claim_number, claim_id, verdict FROM main."mart_claims" ORDER BY claim_number'
                       ).fetchall() == expected["claims"]
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        con.execute("DELETE FROM mart_claims")


def test_metabase_folder_read_only_file(in_workdir, expected):
    """Metabase on the folder: the file opened read-only, queried as main."table"."""
    path = in_workdir / "var" / "objectstore" / "latest" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute('SELECT claim_number, claim_id, verdict FROM main."mart_claims" ORDER BY claim_number'
                           ).fetchall() == expected["claims"]


# --- Evidence -----------------------------------------------------------------------------------------------------

EVIDENCE_COPY_IGNORE = shutil.ignore_patterns("node_modules", ".evidence", ".svelte-kit", "build", "static")


def _evidence_skip_reason() -> str | None:
    if os.environ.get("EUJP_SKIP_EVIDENCE") == "1":
        return "EUJP_SKIP_EVIDENCE=1"
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found: the Evidence project needs Node.js 18+ and npm"
    return None


@pytest.fixture(scope="module")
def evidence_project(workdir, tmp_path_factory) -> Path:
    """bi/evidence copied beside the published folder (tmp/bi/evidence with tmp/var/objectstore, as in the
    repository), its dependencies installed with `npm ci` from package-lock.json."""
    reason = _evidence_skip_reason()
    if reason:
        pytest.skip(reason)
    project = workdir / "bi" / "evidence"
    if not (project / "node_modules").is_dir():
        shutil.copytree(EVIDENCE, project, ignore=EVIDENCE_COPY_IGNORE, dirs_exist_ok=True)
        started = time.monotonic()
        done = subprocess.run(["npm", "ci"], check=False, cwd=project, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        print(f"npm ci: {time.monotonic() - started:.1f} s")
    return project


def test_evidence_package_is_pinned():
    package = json.loads((EVIDENCE / "package.json").read_text())
    lock = json.loads((EVIDENCE / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert lock["packages"]["node_modules/@duckdb/node-api"]["version"].startswith(f"{duckdb.__version__}-")
    assert json.loads((EVIDENCE / "evidence.settings.json").read_text())["send_anonymous_usage_stats"] == "no"


def test_evidence_connection_in_the_doc_is_the_project_file():
    assert recipe("evidence-connection") + "\n" == (EVIDENCE / "sources" / "eujp" / "connection.yaml").read_text()


SOURCES_SCRIPT = r"""
const fs = require('fs'), path = require('path');
const [project, options] = [process.argv[1], JSON.parse(process.argv[2])];
const runQuery = require(require.resolve('@evidence-dev/duckdb', {paths: [project]}));
const dir = path.join(project, 'sources', 'eujp');
(async () => {
  const out = {};
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    const result = await runQuery(fs.readFileSync(path.join(dir, file), 'utf-8'), {...options, directory: dir});
    const rows = [];
    for await (const batch of result.rows()) rows.push(...batch);
    out[file.slice(0, -4)] = rows;
  }
  console.log(JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? Number(v) : v)));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _sql_blocks(page: Path) -> dict[str, str]:
    return dict(re.findall(r"```sql (\w+)\n(.*?)\n```", page.read_text(), re.DOTALL))


def test_evidence_sources_through_the_connector(evidence_project, workdir):
    """Offline part of the Evidence build: every source query through Evidence's DuckDB connector, with the
    committed connection.yaml, on the published warehouse; then every page query on the results."""
    connection = yaml.safe_load((evidence_project / "sources" / "eujp" / "connection.yaml").read_text())
    assert connection["type"] == "duckdb"
    done = subprocess.run(["node", "-e", SOURCES_SCRIPT, str(evidence_project), json.dumps(connection["options"])],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sources = json.loads(done.stdout)
    assert set(sources) == {"materials", "material_hs_codes", "material_trade", "material_restrictions"}

    materials = {m["slug"]: m for m in sources["materials"]}
    assert len(materials) == len(sources["materials"]) == 34
    assert materials["bauxite-alumina-aluminium"]["material"] == "bauxite/alumina/aluminium"
    assert materials["antimony"]["restriction_measures"] == 1 and materials["antimony"]["hs_code_count"] == 3
    assert len(sources["material_hs_codes"]) == sum(m["hs_code_count"] for m in materials.values())
    # Evidence serves no source without rows: a material without figures keeps one row of nulls
    assert all(sources.values())
    assert {r["slug"] for r in sources["material_trade"]} == set(materials)
    assert [r for r in sources["material_trade"] if r["reporter"] is not None] == []  # no CRM in the CN8 extract
    assert [(r["slug"], r["country_name"], r["measures"]) for r in sources["material_restrictions"]
            if r["country_name"] is not None] == [("antimony", "Argentina", 1)]

    # the pages' queries run in Evidence's DuckDB on tables eujp.<source>: the same here, per material page
    con = duckdb.connect()
    con.execute("CREATE SCHEMA eujp")
    published = workdir / "var" / "objectstore" / "latest" / "warehouse.duckdb"
    con.execute(f"ATTACH '{published}' AS warehouse (READ_ONLY)")
    for name in sources:
        con.execute("USE warehouse")
        sql = (evidence_project / "sources" / "eujp" / f"{name}.sql").read_text()
        con.execute(f"CREATE TABLE memory.eujp.{name} AS {sql}")
    con.execute("USE memory")
    index = _sql_blocks(evidence_project / "pages" / "index.md")
    pages = con.execute(index["materials"]).fetchall()
    assert len(pages) == 34 and ("antimony", "antimony") == pages[0][:2]
    template = _sql_blocks(evidence_project / "pages" / "materials" / "[material].md")
    assert set(template) == {"material", "hs_codes", "trade", "restrictions"}
    for slug in materials:
        results = {name: con.execute(sql.replace("${params.material}", slug)).fetchall()
                   for name, sql in template.items()}
        assert len(results["material"]) == 1
        assert len(results["hs_codes"]) == materials[slug]["hs_code_count"]
        assert len(results["trade"]) == materials[slug]["trade_rows"] == 0
        assert len(results["restrictions"]) == (1 if slug == "antimony" else 0)
    antimony = template["restrictions"].replace("${params.material}", "antimony")
    assert con.execute(antimony).fetchall()[0][:4] == ("Argentina", "Export tax", 2024, 1)


COMPILE_SCRIPT = r"""
const fs = require('fs'), path = require('path');
const project = process.argv[1];
const load = (m) => require(require.resolve(m, {paths: [project]}));
const svelte = load('svelte/compiler');
const evidencePreprocess = load('@evidence-dev/preprocess');
// Evidence serves pages/<route>.md as src/pages/<route>/+page.md
const route = (page) => { const rel = path.relative(path.join(project, 'pages'), page).slice(0, -3);
  return path.join(project, 'src', 'pages', rel === 'index' ? '' : rel, '+page.md'); };
const pages = [];
const walk = (d) => fs.readdirSync(d, {withFileTypes: true}).forEach((e) =>
  e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.md') && pages.push(path.join(d, e.name)));
walk(path.join(project, 'pages'));
(async () => {
  const out = {};
  for (const page of pages.sort()) {
    const source = fs.readFileSync(page, 'utf-8');
    const pre = await svelte.preprocess(source, evidencePreprocess(), {filename: route(page)});
    const compiled = svelte.compile(pre.code, {generate: 'ssr', filename: page});
    out[path.relative(project, page)] = compiled.warnings.filter((w) => w.code === 'missing-declaration')
      .map((w) => w.message.split("'")[1]);
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.stack || e); process.exit(1); });
"""


def test_evidence_pages_compile(evidence_project):
    """Offline part of `npm run build`: every page through Evidence's Markdown preprocessor and the Svelte
    compiler; what is left undeclared is only Evidence's components (injected at build time)."""
    done = subprocess.run(["node", "-e", COMPILE_SCRIPT, str(evidence_project)], check=False, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    undeclared = json.loads(done.stdout)
    assert set(undeclared) == {"pages/index.md", "pages/materials/[material].md"}
    assert set().union(*undeclared.values()) <= {"DataTable", "Value", "QueryViewer"}


def _reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def test_evidence_build(evidence_project, workdir):
    """The doc's build commands, from the directory holding bi/evidence and var/objectstore."""
    if not _reachable("extensions.duckdb.org"):
        pytest.skip("extensions.duckdb.org cannot be reached: Evidence's DuckDB-WASM downloads its parquet "
                    "extension from there in `npm run sources` and `npm run build` (docs/bi.md#evidence)")
    started = time.monotonic()
    done = subprocess.run(["bash", "-e", "-c", recipe("evidence-build")], check=False, cwd=workdir,
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "SEND_ANONYMOUS_USAGE_STATS": "no"})
    print(f"Evidence npm ci + sources + build: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, f"{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    build = evidence_project / "build"
    data = list((evidence_project / ".evidence" / "template" / "static" / "data" / "eujp").rglob("*.parquet"))
    assert {p.parent.name for p in data} == {"materials", "material_hs_codes", "material_trade",
                                             "material_restrictions"}
    assert (build / "index.html").is_file()
    pages = {p.parent.name for p in (build / "materials").glob("*/index.html")}  # trailingSlash: always
    assert len(pages) == 34 and {"antimony", "bauxite-alumina-aluminium"} <= pages
    # the page's data: rendered into its HTML or in the query results prerendered beside it
    rendered = [build / "materials" / "antimony" / "index.html", *build.rglob("*.arrow")]
    assert any(b"Argentina" in p.read_bytes() for p in rendered)
