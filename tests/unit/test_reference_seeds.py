"""The reference seeds (data/reference/*.csv) read the same when saved with a UTF-8 byte-order mark, as Excel
saves a CSV: the BOM is not part of the first column's name (it failed the run: "columns ['\\ufeffmaterial',
...] differ from the expected ...")."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from eujp.config import REFERENCE_DIR
from eujp.pipeline import load_countries
from eujp.reference import read_reference_tables
from eujp.sources import comext_goods

BOM = b"\xef\xbb\xbf"


def seeds_with_bom(folder: Path) -> Path:
    shutil.copytree(REFERENCE_DIR, folder)
    seeds = sorted(folder.glob("*.csv"))
    assert len(seeds) >= 7
    for path in seeds:
        data = path.read_bytes()
        assert not data.startswith(BOM)
        path.write_bytes(BOM + data)
    return folder


def test_every_reference_seed_reads_the_same_with_a_byte_order_mark(tmp_path, monkeypatch):
    folder = seeds_with_bom(tmp_path / "reference")
    expected, got = read_reference_tables(REFERENCE_DIR), read_reference_tables(folder)
    assert set(got) == set(expected)
    for name, frame in expected.items():
        assert frame.height and got[name].equals(frame), name
    today = date(2026, 12, 5)
    assert load_countries(today, folder).equals(load_countries(today, REFERENCE_DIR))
    # the live plans' code check reads the country seed too
    codes = comext_goods._country_codes()
    monkeypatch.setattr(comext_goods, "REFERENCE_DIR", folder)
    comext_goods._country_codes.cache_clear()
    try:
        assert comext_goods._country_codes() == codes and "JP" in codes
    finally:
        comext_goods._country_codes.cache_clear()
