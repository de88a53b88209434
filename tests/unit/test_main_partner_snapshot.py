"""The bundled main-partner figures (data/snapshot/eurostat_ext_lt_maineu_main_partners.json) are the build
output of their cited reference table, and every figure names the published page it was read from."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data"
FILE = "eurostat_ext_lt_maineu_main_partners.json"
REF = "eu_main_partners_goods_trade_annual.csv"


def test_the_bundled_file_is_the_build_output_of_its_reference_table(tmp_path):
    spec = importlib.util.spec_from_file_location("build_snapshot", DATA / "build" / "build_snapshot.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    # an out-of-tree build (--out-dir): the curated table is read from the repository's data/ and copied over
    # with the other hand-kept file (it was read from the empty output folder: FileNotFoundError)
    assert build.build_main_partners(tmp_path) == 30
    build.copy_curated(tmp_path)
    assert (tmp_path / "snapshot" / FILE).read_bytes() == (DATA / "snapshot" / FILE).read_bytes()
    for name in build.CURATED:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()


def test_every_figure_cites_its_page():
    doc = json.loads((DATA / "snapshot" / FILE).read_text(encoding="utf-8"))
    rows = list(csv.DictReader((DATA / "reference" / REF).read_text(encoding="utf-8").splitlines()))
    provenance = doc["extension"]["provenance"]
    assert set(provenance) == set(doc["value"]) and len(provenance) == len(rows) == 30
    for key, value in doc["value"].items():
        p = provenance[key]
        row = rows[p["reference_line"] - 2]
        assert p["cited_from_published_page"] is True
        assert p["source_url"].startswith(("http://ec.europa.eu/", "https://ec.europa.eu/")), p["source_url"]
        assert (p["source_url"], p["as_published"]) == (row["source_url"], row["as_published"])
        assert value == round(float(row["value_eur_bn"]) * 1000, 1)
    assert "NOT an API response" in doc["label"]
