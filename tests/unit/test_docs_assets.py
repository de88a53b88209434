"""eujp.docs_assets: every CDN asset of GX's Data Docs templates has a local copy from an installed package, and
the pages' references are rewritten to it. (The built site in headless Chromium with no network:
tests/integration/test_data_docs_offline.py.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from eujp import docs_assets
from eujp.docs_assets import ASSETS, CDN_URLS, DROP, VENDOR_DIR, AssetMissing, asset_source, localise_site

# GX's own files, found without importing it (seconds)
GX_VIEW = Path(importlib.util.find_spec("great_expectations").submodule_search_locations[0]) / "render" / "view"
URL = re.compile(r"""https?://[^\s"'<>)]+""")


def _template_asset_urls() -> set[str]:
    """Every http(s) URL in GX's Data Docs templates and default stylesheet but the links a reader follows."""
    urls = set()
    for path in [*(GX_VIEW / "templates").glob("*.j2"), *(GX_VIEW / "static" / "styles").glob("*.css")]:
        text = path.read_text(encoding="utf-8")
        links = {m.group(1) for m in re.finditer(r"""<a\b[^>]*\bhref\s*=\s*["']([^"']+)""", text)}
        links |= set(re.findall(r"\]\((https?://[^)\s]+)\)", text))  # markdown links (markdown_*.j2)
        urls |= {u for u in URL.findall(text) if u not in links}
    return urls


def test_every_cdn_asset_of_the_gx_templates_is_mapped():
    urls = _template_asset_urls()
    assert len(urls) >= 15
    for url in urls:
        if "great-expectations-web-assets" in url:  # GX's logo: top_navbar.j2 (a base), the dark theme (css)
            target = url if url.endswith(".png") else url + "logo-long.png?d=20261130&dataContextId=x"
            assert docs_assets._GX_WEB_ASSETS.fullmatch(target), url
        else:
            assert url in CDN_URLS, f"GX's Data Docs load {url}: map it in eujp.docs_assets.CDN_URLS"
    assert set(CDN_URLS) <= urls  # nothing mapped that GX does not load
    assert {n for n in CDN_URLS.values() if n != DROP} <= set(ASSETS)


def test_the_pypi_assets_are_installed_and_the_npm_ones_once_make_installed_them():
    for asset in ASSETS.values():
        try:
            path, origin = asset_source(asset)
        except AssetMissing as exc:
            if asset.registry == "npm":
                continue  # make installs them (assets/data-docs/); the integration test requires them
            raise AssertionError(f"{exc}: add {asset.package} to pyproject.toml's dependencies") from exc
        assert path.stat().st_size > 100 and origin.startswith(asset.package + " "), asset.name
        for folder in asset.folders:
            assert any((path.parent.parent / folder).iterdir()), (asset.name, folder)


PAGE = """<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css">
<style>.navbar-brand a {background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png')}</style>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-x" crossorigin="anonymous"></script>
<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" integrity="sha384-y" crossorigin="anonymous"></script>
<script src="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js"></script>
</head><body>
<link rel="icon" href="../../static/images/favicon.ico">
<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=2"/>
<a href="https://greatexpectations.io">Great Expectations</a>
</body></html>
"""


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "validations" / "t" / "run").mkdir(parents=True)
    (root / "static" / "styles").mkdir(parents=True)
    (root / "static" / "images").mkdir(parents=True)
    (root / "static" / "images" / "favicon.ico").write_bytes(b"ico")
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "validations" / "t" / "run" / "page.html").write_text(PAGE, encoding="utf-8")
    (root / "static" / "styles" / "default.css").write_text(
        "a {background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png')}")
    return root


def test_localise_site_points_every_page_at_its_copies(site, monkeypatch, tmp_path):
    npm = tmp_path / "npm"
    monkeypatch.setenv("EUJP_DOCS_ASSETS", str(npm))
    (npm / "node_modules" / "bootstrap-table" / "dist").mkdir(parents=True)
    for name in ("bootstrap-table.min.js", "bootstrap-table.min.css"):
        (npm / "node_modules" / "bootstrap-table" / "dist" / name).write_text("/* bootstrap-table */")
    (npm / "node_modules" / "bootstrap-table" / "package.json").write_text('{"version": "1.19.1"}')

    done = localise_site(site)
    assert done.offline and done.remote == [] and done.pages == 2
    page = (site / "validations" / "t" / "run" / "page.html").read_text(encoding="utf-8")
    assert '<script src="../../../static/vendor/jquery/jquery.min.js"></script>' in page
    assert '<script src="../../../static/vendor/bootstrap/js/bootstrap.bundle.min.js"></script>' in page
    assert "popper" not in page and "integrity" not in page and "crossorigin" not in page
    assert 'src="../../../static/images/logo-long.png"' in page
    assert "url('../../../static/images/logo-long.png')" in page
    assert '<a href="https://greatexpectations.io">' in page  # a link, not an asset
    assert '<link rel="icon" href="../../../static/images/favicon.ico">' in page  # GX writes it a level short
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="./static/vendor/bootstrap-table/bootstrap-table.min.css"' in index
    assert "url('../../static/images/logo-long.png')" in (site / "static" / "styles" / "default.css").read_text()
    vendor = site / VENDOR_DIR
    assert (vendor / "jquery" / "jquery.min.js").stat().st_size > 50_000
    assert (vendor / "bootstrap-table" / "bootstrap-table.min.js").read_text() == "/* bootstrap-table */"
    assert not (vendor / "vega").exists()  # only what the pages load
    assert done.copied["bootstrap-table/bootstrap-table.min.js"] == "bootstrap-table 1.19.1"
    assert localise_site(site).pages == 0  # idempotent


def test_an_asset_whose_package_is_missing_stays_on_its_cdn_and_is_reported(site, monkeypatch, tmp_path):
    monkeypatch.setenv("EUJP_DOCS_ASSETS", str(tmp_path / "nowhere"))
    done = localise_site(site)
    assert not done.offline
    assert any("npm package bootstrap-table is not installed" in m for m in done.missing)
    assert sorted({r.split(": ", 1)[1] for r in done.remote}) == [
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js"]
    assert (site / VENDOR_DIR / "jquery" / "jquery.min.js").is_file()
