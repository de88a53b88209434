"""The Great Expectations Data Docs render with no network (issue 14, item 3).

A real validation (the bundled snapshot of one source, parsed, transformed and validated as a run does it:
without a run id, which build_data_docs then names) is rendered into a Data Docs site; the site's index page and
its validation page are opened in headless Chromium with every network request failing (a dead proxy, every
host name unresolvable), and the rendered DOM must show what only the scripts draw (bootstrap-table's index
table) and the table, the run id and the expectation results; a screenshot must show the stylesheets' and
icon font's colours. A site left with its CDN references (offline=False) renders none of it under the same
flags: the network really is off.

The npm assets (bootstrap-table, the dark theme) come from `make` (assets/data-docs/, npm ci); Chromium from
Debian (.ci/run installs it).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.chromium import OFFLINE_FLAGS, need, run_chromium

from eujp import config
from eujp.docs_assets import VENDOR_DIR, missing_assets, remote_asset_urls
from eujp.extract import read_snapshot
from eujp.pipeline import SourceBatch, load_countries, prepare_source
from eujp.sources import SOURCES, eurostat_goods

RUN_ID = "20261130T060000Z-docs01"
SOURCE = eurostat_goods.SOURCE.name  # by its module: a source's name is written in its own folder only
TABLE = "fact_goods_trade"


def run_chromium_offline(args: list[str], profile: Path):
    """Chromium with no network at all (support.chromium.OFFLINE_FLAGS)."""
    return run_chromium(args, profile, OFFLINE_FLAGS)


def rendered_text(dom: str) -> str:
    """The text a reader sees: the DOM without <script>/<style> elements (their source holds the index's data
    before bootstrap-table draws it) and without tags."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


@pytest.fixture(scope="module")
def reports():
    source = next(s for s in SOURCES if s.name == SOURCE)
    batch = SourceBatch(source=source.name, table=source.table.name, started_at=datetime.now(UTC))
    batch = prepare_source(source, read_snapshot(source, config.BUNDLED_SNAPSHOT_DIR),
                           load_countries(date(2026, 1, 1)), batch)
    assert batch.status == "prepared", batch.error
    assert batch.validation.run_id is None  # as in a run: validated before the run names it
    return [batch.validation]


@pytest.fixture(scope="module")
def site(reports, tmp_path_factory) -> Path:
    from eujp.validate import build_data_docs

    need("; ".join(missing_assets()) or None, "make installs the Data Docs assets (make test)")
    return build_data_docs(reports, tmp_path_factory.mktemp("docs") / "site", run_id=RUN_ID).parent


@pytest.fixture(scope="module")
def validation_page(site) -> Path:
    [page] = (site / "validations" / TABLE / RUN_ID).rglob("*.html")
    return page


def test_no_page_or_stylesheet_loads_anything_from_the_network(site):
    assert remote_asset_urls(site) == []
    # and by hand, over every file of the site: no script, stylesheet, image or font from http(s)
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".css", ".js"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(site)
        for remote in (r"""<(script|img)\b[^>]*\bsrc\s*=\s*["']?(https?:)?//""",
                       r"""<link\b[^>]*\bhref\s*=\s*["']?(https?:)?//""",
                       r"""url\(\s*["']?(https?:)?//""", r"""@import\s+(url\()?\s*["']?(https?:)?//"""):
            assert not re.search(remote, text, re.IGNORECASE), (where, remote)
        assert "cdn.jsdelivr" not in text and "unpkg.com" not in text and "cdnjs" not in text, where
    # every script and stylesheet a page loads is a file of the site
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        refs = re.findall(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"']+)""", text)
        refs += re.findall(r"""<link\b[^>]*\brel\s*=\s*["']stylesheet["'][^>]*\bhref\s*=\s*["']([^"']+)""", text)
        assert len(refs) >= 10, page
        for ref in refs:
            assert (page.parent / ref).resolve().is_file(), f"{page.relative_to(site)}: {ref}"
            assert f"/{VENDOR_DIR}/" in ref, ref
    assert (site / VENDOR_DIR / "font-awesome" / "webfonts" / "fa-solid-900.woff2").is_file()


def test_the_index_page_draws_its_table_offline(site, tmp_path):
    done = run_chromium_offline(["--dump-dom", (site / "index.html").as_uri()], tmp_path / "profile")
    dom = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0 and dom, done.stderr.decode(errors="replace")[-2000:]
    text = rendered_text(dom)
    # bootstrap-table (a script of the site) drew the validation results table from the page's data
    assert "fixed-table-container" in dom
    assert "Showing 1 to 1 of 1 rows" in text
    assert RUN_ID in text and TABLE in text and "__none__" not in text
    assert "ge-success-icon" in dom  # the row's status icon


def test_the_validation_page_names_the_table_and_the_run_and_shows_the_results_offline(
        site, validation_page, reports, tmp_path):
    done = run_chromium_offline(["--dump-dom", validation_page.as_uri()], tmp_path / "profile")
    dom = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0 and dom, done.stderr.decode(errors="replace")[-2000:]
    text = rendered_text(dom)
    assert f"Data asset: {TABLE}" in text and "Data asset: None" not in text
    assert RUN_ID in text and "__none__" not in text
    statistics = reports[0].statistics
    assert re.search(rf"Evaluated Expectations {statistics['evaluated']}\b", text)
    assert re.search(rf"Successful Expectations {statistics['successful']}\b", text)
    assert "Status: Succeeded" in text
    assert "values must never be null" in text  # an expectation, rendered
    assert dom.count('class="bootstrap-table') >= 3  # bootstrap-table ran over each results table


def test_the_pages_render_styled_with_their_icons(site, validation_page, tmp_path):
    from PIL import Image

    for page in (site / "index.html", validation_page):
        shot = tmp_path / f"{page.stem}.png"
        done = run_chromium_offline(["--window-size=1280,1400", f"--screenshot={shot}", page.as_uri()],
                            tmp_path / f"profile-{page.stem}")
        assert shot.is_file(), done.stderr.decode(errors="replace")[-2000:]
        counts = {rgb: n for n, rgb in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 22)}
        # bootstrap's .text-success green, drawn by Font Awesome's icon font: the check-circle status icons
        assert counts.get((40, 167, 69), 0) > 50, page.name
        # bootstrap's .alert-secondary background: the header box of each page
        assert counts.get((226, 227, 229), 0) > 5000, page.name
        if os.environ.get("EUJP_KEEP_SCREENSHOT"):  # to look at them: EUJP_KEEP_SCREENSHOT=/tmp/docs pytest ...
            Path(os.environ["EUJP_KEEP_SCREENSHOT"]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, Path(os.environ["EUJP_KEEP_SCREENSHOT"]) / shot.name)


def test_a_site_left_on_its_cdns_renders_nothing_under_the_same_flags(reports, tmp_path):
    """The control: the same Data Docs with GX's CDN references draw no table with these flags (so the tests
    above pass because the site carries its assets, not because a CDN answered)."""
    from eujp.validate import build_data_docs

    index = build_data_docs(reports, tmp_path / "cdn-site", run_id=RUN_ID, offline=False)
    assert remote_asset_urls(index.parent)
    done = run_chromium_offline(["--dump-dom", index.as_uri()], tmp_path / "profile")
    dom = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0 and dom, done.stderr.decode(errors="replace")[-2000:]
    assert "fixed-table-container" not in dom and "Showing 1 to" not in rendered_text(dom)
