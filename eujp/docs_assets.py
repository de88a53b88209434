"""Data Docs that work offline: the scripts, stylesheets and fonts GX's Data Docs load from CDNs, served from
the site itself.

GX 1.24's Data Docs templates (great_expectations/render/view/templates/: page.j2, index_page.j2,
page_minimal.j2, js_script_imports.j2, top_navbar.j2) load bootstrap, jQuery, popper, bootstrap-table (which
draws the index page's tables), bootstrap-datepicker, Font Awesome, vega/vega-lite/vega-embed and a dark theme
from CDNs, and the navbar logo from GX's S3 bucket: without a network the index page is empty and every page is
unstyled. `localise_site` copies each asset into the site (`static/vendor/`) from an installed registry
package and rewrites the pages' references to those copies (relative paths, so the site works from a folder,
file://, any web server or a bucket, under runs/{run_id}/docs/ as under latest/docs/).

Where the copies come from (`ASSETS`):

- PyPI packages, runtime dependencies of eujp (pyproject.toml): XStatic-jQuery, XStatic-Bootstrap (its
  bootstrap.bundle carries Popper, so GX's separate popper script is dropped), XStatic-Bootstrap-Datepicker,
  XStatic-Font-Awesome (CSS and webfonts) and django-js-lib-vega-embed (vega 5, vega-lite 5, vega-embed 6,
  plain JS files; no Django needed to read them);
- npm packages, for what no PyPI package ships: bootstrap-table 1.19.1 (with its filter-control extension)
  and @forevolve/bootstrap-dark 1.1.0, pinned by assets/data-docs/package.json and package-lock.json.
  `make run` / `make test` install them with `npm ci` into .venv/share/eujp/docs-assets/ (`npm_modules_dir`;
  EUJP_DOCS_ASSETS names another folder holding node_modules/).

An asset whose package is not installed keeps its CDN reference (the page still works online) and is named
in `LocalisedSite.missing`; `remote_asset_urls` lists every http(s) script, stylesheet, image or font a built
site still loads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

VENDOR_DIR = "static/vendor"  # under the site's root
SOURCES_FILE = "sources.json"  # in VENDOR_DIR: which package and file each copy came from


@dataclass(frozen=True)
class Asset:
    """One file the pages load: `name` under static/vendor/, taken from `path` in an installed package.
    `folders`: folders beside `path` (relative to its parent's parent) that it loads too (webfonts)."""

    name: str
    registry: str  # pypi | npm
    package: str  # the distribution (PyPI) or package (npm) name
    path: str  # PyPI: the file's path as installed in site-packages; npm: its path inside the package
    folders: tuple[str, ...] = ()


_XSTATIC = "xstatic/pkg"
_VEGA = "js_lib_vega_embed/static/js_lib_vega_embed"

ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset("jquery/jquery.min.js", "pypi", "XStatic-jQuery", f"{_XSTATIC}/jquery/data/jquery.min.js"),
    Asset("bootstrap/css/bootstrap.min.css", "pypi", "XStatic-Bootstrap",
          f"{_XSTATIC}/bootstrap/data/css/bootstrap.min.css"),
    Asset("bootstrap/js/bootstrap.bundle.min.js", "pypi", "XStatic-Bootstrap",
          f"{_XSTATIC}/bootstrap/data/js/bootstrap.bundle.min.js"),
    Asset("bootstrap-datepicker/bootstrap-datepicker.js", "pypi", "XStatic-Bootstrap-Datepicker",
          f"{_XSTATIC}/bootstrap_datepicker/data/bootstrap-datepicker.js"),
    Asset("bootstrap-datepicker/datepicker.css", "pypi", "XStatic-Bootstrap-Datepicker",
          f"{_XSTATIC}/bootstrap_datepicker/data/datepicker.css"),
    Asset("font-awesome/css/all.min.css", "pypi", "XStatic-Font-Awesome",
          f"{_XSTATIC}/font_awesome/data/css/all.min.css", folders=("webfonts",)),
    Asset("vega/vega.js", "pypi", "django-js-lib-vega-embed", f"{_VEGA}/vega5.js"),
    Asset("vega/vega-lite.js", "pypi", "django-js-lib-vega-embed", f"{_VEGA}/vega-lite5.js"),
    Asset("vega/vega-embed.js", "pypi", "django-js-lib-vega-embed", f"{_VEGA}/vega-embed6.js"),
    Asset("bootstrap-table/bootstrap-table.min.js", "npm", "bootstrap-table", "dist/bootstrap-table.min.js"),
    Asset("bootstrap-table/bootstrap-table.min.css", "npm", "bootstrap-table", "dist/bootstrap-table.min.css"),
    Asset("bootstrap-table/bootstrap-table-filter-control.min.js", "npm", "bootstrap-table",
          "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    Asset("bootstrap-table/bootstrap-table-filter-control.min.css", "npm", "bootstrap-table",
          "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    Asset("bootstrap-dark/bootstrap-prefers-dark.css", "npm", "@forevolve/bootstrap-dark",
          "dist/css/bootstrap-prefers-dark.css"),
)}

DROP = "drop"  # the tag is removed: what it loads comes with another asset
# Every asset URL GX 1.24's Data Docs templates hold -> an ASSETS name (a file of the site for GX's own images;
# DROP: remove the tag).
CDN_URLS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega/vega-lite.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega/vega-embed.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "font-awesome/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": DROP,  # in bootstrap.bundle
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/js/bootstrap.bundle.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/datepicker.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.css",
}
# GX's logo, from its S3 bucket (top_navbar.j2; the dark theme's background image): the copy GX writes into
# every site (static/images/logo-long.png). GX ships no dark logo: the dark theme shows the same one.
_GX_WEB_ASSETS = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/(?:logo-long|full_logo_dark)\.png[^\"')\s]*")
_GX_LOGO = "static/images/logo-long.png"

_TAG = re.compile(r"<(script|link)\b[^>]*>(?:\s*</script>)?", re.IGNORECASE)
_URL_ATTR = re.compile(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_CORS_ATTRS = re.compile(r"""\s+(?:integrity|crossorigin)(?:\s*=\s*(["']).*?\1)?""", re.IGNORECASE | re.DOTALL)
# What a browser fetches: src/srcset/poster of any tag, <link href>, CSS url(...) and @import.
_REMOTE_PATTERNS = (
    re.compile(r"""<(?:script|img|iframe|source|video|audio|embed|input)\b[^>]*?\b(?:src|srcset|poster)\s*=\s*"""
               r"""["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE),
    re.compile(r"""<link\b[^>]*?\bhref\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE),
    re.compile(r"""url\(\s*["']?((?:https?:)?//[^"')\s]+)""", re.IGNORECASE),
    re.compile(r"""@import\s+(?:url\()?\s*["']?((?:https?:)?//[^"')\s;]+)""", re.IGNORECASE),
)


class AssetMissing(LookupError):
    """An asset's package is not installed."""


def npm_modules_dir() -> Path:
    """The node_modules/ the npm assets are read from: $EUJP_DOCS_ASSETS/node_modules, else the one `make`
    installs into the environment: {sys.prefix}/share/eujp/docs-assets/node_modules."""
    base = os.environ.get("EUJP_DOCS_ASSETS")
    root = Path(base) if base else Path(sys.prefix) / "share" / "eujp" / "docs-assets"
    return root / "node_modules"


def asset_source(asset: Asset) -> tuple[Path, str]:
    """(the installed file, "package version") of an asset; AssetMissing when its package is not installed."""
    if asset.registry == "pypi":
        try:
            dist = metadata.distribution(asset.package)
        except metadata.PackageNotFoundError as exc:
            raise AssetMissing(f"{asset.name}: the PyPI package {asset.package} is not installed") from exc
        path, version = Path(str(dist.locate_file(asset.path))), dist.version
    else:
        package_dir = npm_modules_dir() / asset.package
        path = package_dir / asset.path
        try:
            version = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError):
            version = "?"
        if not path.is_file():
            raise AssetMissing(f"{asset.name}: the npm package {asset.package} is not installed in "
                               f"{npm_modules_dir()} (make installs it: npm ci, assets/data-docs/)")
    if not path.is_file():
        raise AssetMissing(f"{asset.name}: {path} is missing from {asset.package} {version}")
    return path, f"{asset.package} {version}"


def missing_assets() -> list[str]:
    """Why each asset that cannot be copied cannot (empty: every asset is installed)."""
    problems = []
    for asset in ASSETS.values():
        try:
            asset_source(asset)
        except AssetMissing as exc:
            problems.append(str(exc))
    return problems


@dataclass
class LocalisedSite:
    """What `localise_site` did: the assets copied, the pages rewritten, the assets left on their CDN (and
    why), and every remote asset URL the site still loads."""

    copied: dict[str, str] = field(default_factory=dict)  # name under static/vendor/ -> "package version"
    pages: int = 0  # pages rewritten
    missing: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        return not self.remote


def localise_site(site: Path | str) -> LocalisedSite:
    """Copy the assets the site's pages load from CDNs into the site (static/vendor/) and point the pages at
    the copies. Call after GX built the site; idempotent."""
    root = Path(site)
    result = LocalisedSite()
    available: dict[str, Path] = {}
    for name in sorted({n for n in CDN_URLS.values() if n != DROP}):
        try:
            path, origin = asset_source(ASSETS[name])
        except AssetMissing as exc:
            result.missing.append(str(exc))
            continue
        available[name] = path
        result.copied[name] = origin
    vendor = root / VENDOR_DIR
    used: set[str] = set()
    # The pages, and GX's own stylesheets (static/styles/: its dark theme's logo).
    files = [p for p in sorted(root.rglob("*")) if p.suffix in (".html", ".css") and vendor not in p.parents]
    for path in files:
        text = path.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(root, path.parent)).as_posix()
        new = _rewrite(text, prefix, available, used) if path.suffix == ".html" else _rewrite_logo(text, prefix)
        if path.suffix == ".html" and (root / _FAVICON).is_file():  # GX links it a level short on deep pages
            new = _FAVICON_LINK.sub(f'href="{prefix}/{_FAVICON}"', new)
        if new != text:
            path.write_text(new, encoding="utf-8")
            result.pages += path.suffix == ".html"
    for name in sorted(used):
        _copy_asset(ASSETS[name], available[name], vendor / name)
    result.copied = {n: o for n, o in result.copied.items() if n in used}
    if result.copied:
        (vendor / SOURCES_FILE).write_text(json.dumps(
            {n: {"package": o, "registry": ASSETS[n].registry, "file": ASSETS[n].path}
             for n, o in result.copied.items()}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    result.remote = remote_asset_urls(root)
    return result


_FAVICON = "static/images/favicon.ico"
_FAVICON_LINK = re.compile(r'href="(?:\.\./)*' + re.escape(_FAVICON) + '"')


def _rewrite(text: str, prefix: str, available: dict[str, Path], used: set[str]) -> str:
    def tag(match: re.Match) -> str:
        element = match.group(0)
        attr = _URL_ATTR.search(element)
        if attr is None:
            return element
        name = CDN_URLS.get(attr.group(3).strip())
        if name == DROP:
            return ""
        if name is None or name not in available:
            return element
        used.add(name)
        local = f"{prefix}/{VENDOR_DIR}/{name}"
        element = element[:attr.start(3)] + local + element[attr.end(3):]
        return _CORS_ATTRS.sub("", element)  # SRI hashes of other builds; CORS mode fails on file://

    return _rewrite_logo(_TAG.sub(tag, text), prefix)


def _rewrite_logo(text: str, prefix: str) -> str:
    return _GX_WEB_ASSETS.sub(f"{prefix}/{_GX_LOGO}", text)


def _copy_asset(asset: Asset, source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    for folder in asset.folders:  # e.g. Font Awesome's ../webfonts/ next to css/all.min.css
        src = source.parent.parent / folder
        if src.is_dir():
            shutil.copytree(src, target.parent.parent / folder, dirs_exist_ok=True)


def remote_asset_urls(site: Path | str, suffixes: Iterable[str] = (".html", ".htm", ".css", ".svg")) -> list[str]:
    """Every http(s) (or protocol-relative) URL a page or stylesheet of the site loads as a script,
    stylesheet, image, font or frame, as "file: url". Links a reader may follow (<a href>) are not assets."""
    root = Path(site)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in tuple(suffixes)):
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in _REMOTE_PATTERNS:
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(root).as_posix()}: {match.group(1)}")
    return found
