"""What a source's transform is called with (eujp.stream.run_transform): `fetched_on`, the day its payloads
were fetched, only when the transform declares it; a source module written before it was given (four
arguments: docs/add-a-source.md) still runs."""

from datetime import date
from types import SimpleNamespace

import polars as pl

from eujp.stream import run_transform, takes_fetched_on
from transforms.common import TransformResult, empty_rejected

WIRE = pl.DataFrame({"value": ["1", "2"]})
COUNTRIES = pl.DataFrame({"code": ["JP"]})


def _result(wire: pl.DataFrame, note: str) -> TransformResult:
    return TransformResult(valid=wire.with_columns(pl.lit(note).alias("note")), rejected=empty_rejected())


def four_arguments(wire, source_name, source_version, countries):
    return _result(wire, f"{source_name} {source_version} {countries.height}")


def with_fetched_on(wire, source_name, source_version, countries, *, fetched_on=None):
    return _result(wire, f"{source_name} {source_version} {fetched_on}")


def with_keywords(wire, source_name, source_version, countries, **options):
    return _result(wire, f"{sorted(options.items())}")


def test_a_transform_of_four_arguments_is_called_without_fetched_on():
    source = SimpleNamespace(name="plugin", transform=four_arguments)
    result = run_transform(source, WIRE, "v1", COUNTRIES, date(2026, 6, 1))
    assert result.valid["note"].to_list() == ["plugin v1 1", "plugin v1 1"]
    assert not takes_fetched_on(four_arguments)


def test_a_transform_that_declares_fetched_on_gets_the_payloads_day():
    source = SimpleNamespace(name="plugin", transform=with_fetched_on)
    assert run_transform(source, WIRE, "v1", COUNTRIES, date(2026, 6, 1)).valid["note"][0] == "plugin v1 2026-06-01"
    keywords = SimpleNamespace(name="plugin", transform=with_keywords)
    assert run_transform(keywords, WIRE, None, COUNTRIES, None).valid["note"][0] == "[('fetched_on', None)]"
