"""A newer release of bop_its6_det saved beside the older one (two cubes, two `updated` stamps) is applied as
ext_lt_maineu's is (tests/sources/eurostat_goods/test_releases.py): in stamp order, the later figure winning,
the figures it repeats superseded rather than rejected."""

from __future__ import annotations

import json
from pathlib import Path

from eujp.landing import RawPayload
from eujp.sources import get_source
from eujp.stream import parse_and_transform

SNAPSHOT = Path(__file__).resolve().parents[3] / "data" / "snapshot"
FILE = "eurostat_bop_its6_det_jp.json"
NEW_STAMP = "2027-03-01T11:00:00+0100"


def test_a_later_release_beside_the_earlier_one_wins_and_nothing_is_rejected(countries):
    source = get_source("eurostat_services")
    bundled = (SNAPSHOT / FILE).read_bytes()
    doc = json.loads(bundled)
    doc["updated"] = NEW_STAMP
    key = next(iter(doc["value"]))
    old_value = doc["value"][key]
    doc["value"][key] = old_value + 1000.0
    payloads = [RawPayload(source.name, name, data, f"file:///snapshot/{name}")
                for name, data in (("eurostat_bop_its6_det_jp_2027-03.json", json.dumps(doc).encode()),
                                   (FILE, bundled))]
    result, version = parse_and_transform(source, payloads, countries)
    assert version == NEW_STAMP
    assert (result.rows_in, result.valid.height, result.rejected.height, result.conflicts) == (58, 29, 0, None)
    assert sorted(result.valid["value_mio_eur"].to_list()) == sorted(
        [v for k, v in doc["value"].items()])  # the later cube's figures, the revised one included
    assert old_value + 1000.0 in result.valid["value_mio_eur"].to_list()
