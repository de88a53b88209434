"""JSON-stat 2.0 decoder: decoding rules, the flat-index helpers (property tests), and every malformed case."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eujp.errors import ParseError
from eujp.parse.jsonstat import flat_index, parse_jsonstat, unravel


def dataset(**overrides) -> dict:
    """A small ext_lt_maineu-like cube: freq(1) x geo(2) x time(3) = 6 cells."""
    doc = {
        "version": "2.0",
        "class": "dataset",
        "label": "EU trade with Japan",
        "source": "ESTAT",
        "updated": "2026-02-06T23:00:00+0100",
        "id": ["freq", "geo", "time"],
        "size": [1, 2, 3],
        "dimension": {
            "freq": {"label": "Time frequency", "category": {"index": {"A": 0}, "label": {"A": "Annual"}}},
            # positions deliberately not in the object's key order
            "geo": {"label": "Reporter", "category": {
                "index": {"EU28": 1, "EU27_2020": 0},
                "label": {"EU27_2020": "European Union - 27 countries (from 2020)", "EU28": "EU 28"}}},
            "time": {"label": "Time", "category": {"index": ["2021", "2022", "2023"]}},
        },
        "value": {"0": 154.7, "2": 12, "5": -3.5},
        "status": {"0": "p", "4": "c"},
        "extension": {"datasetId": "ext_lt_maineu"},
    }
    doc.update(overrides)
    return doc


def encode(doc: object) -> bytes:
    return json.dumps(doc).encode()


def rows(frame: pl.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame.iter_rows()]


# --------------------------------------------------------------------------- decoding


def test_sparse_dataset_decodes_codes_values_and_status():
    parsed = parse_jsonstat(encode(dataset()))
    assert parsed.frame.schema == pl.Schema(
        {"freq": pl.String, "geo": pl.String, "time": pl.String, "value": pl.Float64, "status": pl.String}
    )
    # cell 0 = (A, EU27_2020, 2021); 2 = (A, EU27_2020, 2023); 4 = (A, EU28, 2022) status only; 5 = (A, EU28, 2023)
    assert rows(parsed.frame) == [
        ("A", "EU27_2020", "2021", 154.7, "p"),
        ("A", "EU27_2020", "2023", 12.0, None),
        ("A", "EU28", "2022", None, "c"),
        ("A", "EU28", "2023", -3.5, None),
    ]
    assert parsed.source_version == "2026-02-06T23:00:00+0100"
    assert parsed.meta["label"] == "EU trade with Japan"
    assert parsed.meta["extension"] == {"datasetId": "ext_lt_maineu"}
    assert parsed.meta["dimension_labels"]["geo"] == {
        "EU27_2020": "European Union - 27 countries (from 2020)", "EU28": "EU 28"}
    # a category without a label is labelled by its code
    assert parsed.meta["dimension_labels"]["time"] == {"2021": "2021", "2022": "2022", "2023": "2023"}


def test_sparse_keys_in_any_order_come_out_in_flat_index_order():
    parsed = parse_jsonstat(encode(dataset(value={"5": 1, "0": 2, "3": 3}, status=None)))
    assert parsed.frame.select("geo", "time", "value").rows() == [
        ("EU27_2020", "2021", 2.0), ("EU28", "2021", 3.0), ("EU28", "2023", 1.0)]


def test_dense_array_with_nulls_and_dense_status():
    doc = dataset(value=[1, None, 3.25, None, None, 6], status=[None, None, "e", None, "c", None])
    assert rows(parse_jsonstat(encode(doc)).frame) == [
        ("A", "EU27_2020", "2021", 1.0, None),
        ("A", "EU27_2020", "2023", 3.25, "e"),
        ("A", "EU28", "2022", None, "c"),
        ("A", "EU28", "2023", 6.0, None),
    ]


def test_sparse_and_dense_forms_of_one_cube_decode_identically():
    sparse = parse_jsonstat(encode(dataset(value={"1": 7, "3": 8}, status={"3": "p"}))).frame
    dense = parse_jsonstat(encode(dataset(value=[None, 7, None, 8, None, None],
                                          status=[None, None, None, "p", None, None]))).frame
    assert sparse.equals(dense)
    assert sparse.height == 2


def test_null_value_with_status_is_kept_and_without_status_is_skipped():
    doc = dataset(value={"0": None, "1": None, "2": 5}, status={"1": "c"})
    assert rows(parse_jsonstat(encode(doc)).frame) == [
        ("A", "EU27_2020", "2022", None, "c"),
        ("A", "EU27_2020", "2023", 5.0, None),
    ]


@pytest.mark.parametrize("status", [{"1": "", "2": ""}, ["", "", "", "", "", ""], ""],
                         ids=["object", "array", "string"])
def test_an_empty_status_is_no_flag_and_a_cell_with_it_alone_is_no_observation(status):
    """A status of "" carries no flag: a cell with it and no value is no observation (it loaded as a withheld
    figure, a null value that would replace an earlier release's value), and a value with it has no status."""
    doc = dataset(value={"0": None, "1": None, "2": 5}, status=status)
    assert rows(parse_jsonstat(encode(doc)).frame) == [("A", "EU27_2020", "2023", 5.0, None)]


def test_an_integer_beyond_the_float_range_is_refused_not_read_as_missing():
    with pytest.raises(ParseError, match=r"value at key '2' is out of the float range \(401 digits\)"):
        parse_jsonstat(json.dumps(dataset()).replace('"2": 12', '"2": 1' + "0" * 400).encode())
    with pytest.raises(ParseError, match=r"value at position 1 is out of the float range"):
        parse_jsonstat(json.dumps(dataset(value=[1, 0, 2, 3, 4, 5])).replace("[1, 0,", "[1, 1" + "0" * 400 + ",")
                       .encode())


def test_status_string_applies_to_present_values_only():
    frame = parse_jsonstat(encode(dataset(value={"0": 1, "5": 2}, status="p"))).frame
    assert frame.select("value", "status").rows() == [(1.0, "p"), (2.0, "p")]


def test_one_element_status_array_applies_to_present_values_as_a_string_does():
    """JSON-stat lets one status stand for every value: a one-element array reads as the string (as the
    reference toolkit JJT reads it)."""
    one = parse_jsonstat(encode(dataset(value={"0": 1, "5": 2}, status=["p"]))).frame
    assert one.equals(parse_jsonstat(encode(dataset(value={"0": 1, "5": 2}, status="p"))).frame)
    assert one.select("value", "status").rows() == [(1.0, "p"), (2.0, "p")]
    assert parse_jsonstat(encode(dataset(value={"0": 1}, status=[None]))).frame["status"].to_list() == [None]


def test_dimension_without_index_uses_its_single_label_key():
    doc = dataset()
    doc["dimension"]["freq"]["category"] = {"label": {"A": "Annual"}}
    assert parse_jsonstat(encode(doc)).frame.get_column("freq").unique().to_list() == ["A"]


def test_missing_updated_gives_no_source_version_and_bom_is_tolerated():
    doc = dataset()
    del doc["updated"]
    parsed = parse_jsonstat(b"\xef\xbb\xbf" + encode(doc))
    assert parsed.source_version is None
    assert parsed.frame.height == 4


def test_empty_cube_gives_typed_empty_frame():
    doc = dataset(size=[1, 2, 0], value={}, status={})
    doc["dimension"]["time"]["category"]["index"] = []
    frame = parse_jsonstat(encode(doc)).frame
    assert frame.height == 0
    assert frame.columns == ["freq", "geo", "time", "value", "status"]
    assert frame.schema["value"] == pl.Float64


def test_integers_beyond_int64_are_read_as_floats():
    frame = parse_jsonstat(encode(dataset(value={"0": 10**20}, status=None))).frame
    assert frame.get_column("value").to_list() == [1e20]


# --------------------------------------------------------------------------- malformed payloads


def _without_dimension(name: str) -> dict:
    doc = dataset()
    del doc["dimension"][name]
    return doc


def _with_category(name: str, category: dict) -> dict:
    doc = dataset()
    doc["dimension"][name]["category"] = category
    return doc


MALFORMED: list[tuple[str, bytes, str]] = [
    ("empty", b"", r"empty payload \(0 bytes\)"),
    ("whitespace", b"  \n", r"empty payload"),
    ("not json", b"Service Unavailable", r"not valid JSON .*payload is 19 bytes"),
    ("html page", b"<!DOCTYPE html><html><head><title>Eurostat - Maintenance</title></head></html>",
     r"HTML/XML page instead of JSON .*Maintenance"),
    ("invalid utf-8", b'{"label": "\xff"}', r"not valid UTF-8"),
    ("NaN literal", b'{"value": [NaN]}', r"NaN"),
    ("top-level array", b"[1, 2]", r"top level is a JSON list"),
    ("api error body", encode({"error": [{"status": 400, "label": "Invalid dimension geo"}]}),
     r"answered with an error.*Invalid dimension geo"),
    ("class collection", encode(dataset(**{"class": "collection"})), r"class is 'collection', expected 'dataset'"),
    ("version 1.0", encode(dataset(version="1.0")), r"version is '1.0', expected '2.0'"),
    ("no version", encode({k: v for k, v in dataset().items() if k != "version"}), r"version is None"),
    ("id/size length", encode(dataset(size=[1, 2])), r"'id' has 3 dimensions but 'size' has 2 entries"),
    ("size not ints", encode(dataset(size=[1, "2", 3])), r"'size' must be an array of non-negative integers"),
    ("repeated id", encode(dataset(id=["freq", "geo", "geo"])), r"dimension ids repeat"),
    ("id clashes with output", encode(dataset(id=["freq", "geo", "value"])), r"'value' clashes"),
    ("dimension missing", encode(_without_dimension("time")), r"\['time'\] listed in 'id' are missing"),
    ("no category", encode(_with_category("time", None)), r"'time' has no 'category' object"),
    ("category count != size", encode(dataset(size=[1, 2, 4])), r"'time' has 3 categories but size says 4"),
    ("positions not a permutation", encode(_with_category("geo", {"index": {"EU27_2020": 0, "EU28": 2}})),
     r"'geo': category.index positions are not a permutation of 0..1"),
    ("position not an int", encode(_with_category("geo", {"index": {"EU27_2020": 0, "EU28": "1"}})),
     r"position '1' is not an integer"),
    ("repeated code", encode(_with_category("time", {"index": ["2021", "2021", "2023"]})),
     r"category code '2021' appears twice"),
    ("no index, several labels", encode(_with_category("geo", {"label": {"EU27_2020": "a", "EU28": "b"}})),
     r"no category.index but 2 categories"),
    ("value key not integer", encode(dataset(value={"0": 1, "x1": 2})), r"value key 'x1' is not a non-negative"),
    ("value key negative", encode(dataset(value={"-1": 2})), r"value key '-1' is not a non-negative"),
    ("value key zero-padded", encode(dataset(value={"01": 2})), r"value key '01' is not a non-negative"),
    ("value key out of range", encode(dataset(value={"0": 1, "6": 2})),
     r"value key 6 is out of range: the cube has 6 cells"),
    ("status key out of range", encode(dataset(status={"9": "c"})), r"status key 9 is out of range"),
    ("dense length", encode(dataset(value=[1, 2, 3, 4, 5], status=None)),
     r"dense value array has 5 entries but the cube has 6 cells"),
    ("dense status length", encode(dataset(value=[1, 2, 3, 4, 5, 6], status=["p", "e"])),
     r"dense status array has 2 entries but the cube has 6 cells"),
    ("one status not a string", encode(dataset(status=[1])), r"status must be a string, got 1"),
    ("error class", encode({"version": "2.0", "class": "error", "status": 400, "label": "Invalid dimension"}),
     r"answered with an error.*Invalid dimension"),
    ("dataset with an error", encode(dataset(error=[{"status": 413, "label": "EXTRACTION_TOO_BIG"}])),
     r"answered with an error.*EXTRACTION_TOO_BIG"),
    ("asynchronous answer", encode({"warning": {"status": 413, "label": "ASYNCHRONOUS_RESPONSE. Your request "
                                                "will be treated asynchronously."}}),
     r"answered with a warning instead of a dataset \(an asynchronous answer is not supported.*ASYNCHRONOUS"),
    ("value is a string", encode(dataset(value={"0": 1, "2": "12.5"})), r"value '12.5' at key '2' is not a number"),
    ("value is a bool", encode(dataset(value=[1, True, 3, 4, 5, 6])), r"value True at position 1 is not a number"),
    ("value is infinite", (b'{"version":"2.0","class":"dataset","id":["t"],"size":[1],'
                           b'"dimension":{"t":{"category":{"index":["2020"]}}},"value":[1e999]}'), r"infinite"),
    ("value missing", encode({k: v for k, v in dataset().items() if k != "value"}), r"'value' is missing"),
    ("status entry not a string", encode(dataset(status={"0": 1})), r"status entry 1 is not a string"),
    ("updated not a string", encode(dataset(updated=20260206)), r"'updated' must be a string"),
]


@pytest.mark.parametrize(("payload", "message"), [(p, m) for _, p, m in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_malformed_payload_raises_parse_error(payload: bytes, message: str):
    with pytest.raises(ParseError, match=message):
        parse_jsonstat(payload)


@pytest.mark.parametrize("error", [[], {}], ids=["empty list", "empty object"])
def test_a_dataset_with_an_empty_error_list_is_a_dataset(error):
    """`"error": []` lists no error: the dataset is read as without it (it was refused as "the API answered with
    an error"); a non-empty list is an error (MALFORMED, "dataset with an error")."""
    parsed = parse_jsonstat(encode(dataset(error=error)))
    expected = parse_jsonstat(encode(dataset()))
    assert parsed.frame.height and parsed.frame.equals(expected.frame)
    assert parsed.source_version == expected.source_version


@pytest.mark.parametrize("cut", [1, 7, 40, 200])
def test_truncated_json_says_truncated_and_gives_byte_length(cut: int):
    payload = encode(dataset())[:-cut]
    with pytest.raises(ParseError, match=rf"truncated JSON.*payload is {len(payload)} bytes") as caught:
        parse_jsonstat(payload)
    assert " at at " not in str(caught.value)  # json's "Unterminated string starting at", then ours


def test_a_string_cut_off_is_named_once_with_its_line_and_column():
    with pytest.raises(ParseError, match=r"\(Unterminated string starting at line 1 column 29; payload is 32 bytes"):
        parse_jsonstat(b'{"version": "2.0", "label": "abc')


# --------------------------------------------------------------------------- flat index helpers

sizes_strategy = st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=6)


@given(data=st.data(), sizes=sizes_strategy)
def test_unravel_and_flat_index_round_trip(data, sizes):
    index = data.draw(st.integers(min_value=0, max_value=math.prod(sizes) - 1))
    coords = unravel(index, sizes)
    assert all(0 <= c < s for c, s in zip(coords, sizes, strict=True))
    assert flat_index(coords, sizes) == index
    # independent oracle: numpy's C-order (last dimension fastest) unravel
    assert coords == tuple(int(c) for c in np.unravel_index(index, sizes))


@given(data=st.data(), sizes=sizes_strategy)
def test_vectorised_helpers_match_scalar_calls(data, sizes):
    total = math.prod(sizes)
    indexes = np.array(data.draw(st.lists(st.integers(0, total - 1), min_size=1, max_size=30)), dtype=np.int64)
    coords = unravel(indexes, sizes)
    for position, index in enumerate(indexes):
        assert tuple(int(c[position]) for c in coords) == unravel(int(index), sizes)
    assert np.array_equal(flat_index(coords, sizes), indexes)


def test_helpers_reject_out_of_range():
    with pytest.raises(ValueError, match="flat index outside 0..5"):
        unravel(6, [2, 3])
    with pytest.raises(ValueError, match="coordinate of dimension 1 outside 0..2"):
        flat_index((0, 3), [2, 3])


# --------------------------------------------------------------------------- property: random cubes

cell = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(min_value=-10**6, max_value=10**6),
)


@st.composite
def cubes(draw):
    """A random dense cube: sizes, a value per cell (None = missing), a status per cell (None = none)."""
    sizes = draw(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4))
    total = math.prod(sizes)
    values = draw(st.lists(cell, min_size=total, max_size=total))
    statuses = draw(st.lists(st.sampled_from([None, None, "p", "e", "c"]), min_size=total, max_size=total))
    index_as_array = draw(st.lists(st.booleans(), min_size=len(sizes), max_size=len(sizes)))
    order = draw(st.permutations(range(total)))
    return sizes, values, statuses, index_as_array, order


def build_sparse(sizes, values, statuses, index_as_array, order) -> tuple[dict, list[tuple]]:
    ids = [f"d{k}" for k in range(len(sizes))]
    codes = {d: [f"{d}c{i}" for i in range(n)] for d, n in zip(ids, sizes, strict=True)}
    dimension = {}
    for d, as_array in zip(ids, index_as_array, strict=True):
        if as_array:
            index: object = codes[d]
        else:  # object form, written in reverse key order to exercise the position mapping
            index = {c: i for i, c in reversed(list(enumerate(codes[d])))}
        dimension[d] = {"category": {"index": index}}
    doc = {
        "version": "2.0", "class": "dataset", "id": ids, "size": sizes, "dimension": dimension,
        "value": {str(i): values[i] for i in order if values[i] is not None},
        "status": {str(i): statuses[i] for i in order if statuses[i] is not None},
    }
    # Expected observations, enumerated independently of unravel(): itertools.product is row-major.
    expected = []
    for flat, combo in enumerate(itertools.product(*(codes[d] for d in ids))):
        if values[flat] is not None or statuses[flat] is not None:
            value = None if values[flat] is None else float(values[flat])
            expected.append((*combo, value, statuses[flat]))
    return doc, expected


@settings(max_examples=150, deadline=None)
@given(cubes())
def test_random_cube_as_sparse_jsonstat_parses_back_to_its_observations(cube):
    doc, expected = build_sparse(*cube)
    assert rows(parse_jsonstat(encode(doc)).frame) == expected


@settings(max_examples=60, deadline=None)
@given(cubes())
def test_random_cube_sparse_and_dense_forms_agree(cube):
    _, values, statuses, _, _ = cube
    doc, _ = build_sparse(*cube)
    dense = copy.deepcopy(doc)
    dense["value"], dense["status"] = values, statuses
    assert parse_jsonstat(encode(doc)).frame.equals(parse_jsonstat(encode(dense)).frame)


def test_large_cube_decodes_every_observation():
    """300k cells through the vectorised path: first, last and a middle cell traced by hand."""
    sizes = [1, 3, 10, 100, 100]
    ids = ["freq", "indic", "sitc", "partner", "time"]
    dimension = {d: {"category": {"index": [f"{d}{i}" for i in range(n)]}} for d, n in zip(ids, sizes, strict=True)}
    total = math.prod(sizes)
    doc = {"version": "2.0", "class": "dataset", "id": ids, "size": sizes, "dimension": dimension,
           "value": {str(i): i / 10 for i in range(total)}, "status": {"123456": "p"}}
    frame = parse_jsonstat(encode(doc)).frame
    assert frame.height == total
    assert frame.row(0) == ("freq0", "indic0", "sitc0", "partner0", "time0", 0.0, None)
    assert frame.row(total - 1) == ("freq0", "indic2", "sitc9", "partner99", "time99", (total - 1) / 10, None)
    # 123456 = 1*100000 + 2*10000 + 34*100 + 56
    assert frame.row(123456) == ("freq0", "indic1", "sitc2", "partner34", "time56", 12345.6, "p")


def test_the_latest_version_of_several_payloads_is_compared_as_a_time():
    """A batch of several payloads is stamped with the latest version: ISO 8601 stamps as times (offsets
    counted), others as text."""
    from eujp.parse import latest_version

    assert latest_version(["2026-02-06T23:30:00+0100", "2026-02-06T22:45:00Z"]) == "2026-02-06T22:45:00Z"
    assert latest_version(["2026-08-14T11:00:00", None, "2026-10-02T09:00:00", ""]) == "2026-10-02T09:00:00"
    assert latest_version(["2025-06", "2025-12"]) == "2025-12"
    assert latest_version(["b", "a"]) == "b" and latest_version([None, ""]) is None
    assert latest_version(["2026-02-06T23:30:00+0100", "2026-02-06T23:00:00"]) == "2026-02-06T23:00:00"  # UTC


def test_payloads_are_grouped_by_release_in_stamp_order():
    """eujp.stream.WholeStream applies a source's payloads release by release: one group per stamp (one time
    written two ways is one release), the earliest first, the payloads without a stamp before them."""
    from eujp.parse import releases

    assert releases(["2027-01-15T00:00:00+0100", "2026-11-24T00:00:00+0100", "2026-11-23T23:00:00Z"]) \
        == [[1, 2], [0]]
    assert releases(["2026-10-02T09:00:00", None, "2026-08-14T11:00:00", ""]) == [[1, 3], [2], [0]]
    assert releases(["b", "a", "b"]) == [[1], [0, 2]]
    assert releases(["v", "v"]) == [[0, 1]] and releases([None, None]) == [[0, 1]]
