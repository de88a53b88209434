"""Any shape of Comext payloads streams to the one-batch result.

The stream decides per group of payloads how to chunk it (in memory by month, by series, apart by months, or
spilled to disk by key hash); each route has its own tests in test_streaming.py. Here hypothesis draws the
shape (tests/support/comext_shapes.py): which rows (series of several partners over a few months and a year,
repeated rows, conflicting figures, bad rows), how they are ordered (by series, by month, at random) and cut
into payloads (whole, by product, by product with some months sliced apart, by month, at random points), each
payload's stamp, line ends, column order and quoting, a payload cut off mid-row, whether payloads are files
or bytes, the limit, and the stream's block and buffer sizes (tiny, so that a few dozen rows take the paths
megabytes take). Whatever it draws, the chunks hold exactly the rows, rejected rows and quarantined payloads
of one batch, no chunk is over the limit (unless one key has more rows), and nothing is left on disk. Several
landings of a day: the same, against the landings applied one after the other in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.comext_shapes import (
    COLUMNS,
    COMEXT,
    Row,
    Shape,
    countries,
    payload_shapes,
    payloads_of,
    stream_all,
    stream_sizes,
)

from eujp.errors import EujpError
from eujp.stream import count_data_lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=payload_shapes())
@example(shape=Shape(  # found by this test: one payload over the limit whose keys the first hash put in one part
    [[Row("FR", "JP", "84829900", "2", "QUANTITY_IN_100KG", "2024-01", "010.5"),
      Row("FR", "JP", "84829900", "2", "QUANTITY_IN_100KG", "2024-03", "032.5"),
      Row("FR", "JP", "84829900", "2", "VALUE_IN_EUROS", "2024-03", "031.5"),
      Row("FR", "JP", "84829900", "2", "QUANTITY_IN_100KG", "2024-04", "044.5"),
      Row("FR", "JP", "84829900", "2", "VALUE_IN_EUROS", "2024-04", "043.5")]],
    ["01/08/26 11:00:00"], ["\r\n"], [COLUMNS], [False], [0], False, 4))
@example(shape=Shape(  # found by this test: the lone payload's cut last line, LAST UPDATE late in its columns
    [[Row("DE", "JP", "84829900", "1", "QUANTITY_IN_100KG", "2024-01", "213.5"),
      Row("DE", "JP", "84829900", "1", "VALUE_IN_EUROS", "2024-01", "212.5"),
      Row("DE", "JP", "84834030", "1", "QUANTITY_IN_100KG", "2024-01", "010.5"),
      Row("DE", "JP", "84834030", "1", "QUANTITY_IN_100KG", "2024-01", "010.5"),
      Row("DE", "JP", "84834030", "2", "QUANTITY_IN_100KG", "2024-01", "111.5")]],
    ["01/08/26 11:00:00"], ["\r\n"], [(*COLUMNS[:1], *COLUMNS[2:8], "LAST UPDATE", *COLUMNS[8:])], [False], [30],
    False, 4))
@example(shape=Shape(  # found by this test: every payload cut, the grouped plan parsing the second one first
    [[Row("DE", "JP", "84834030", "2", "QUANTITY_IN_100KG", "2024-03", "130.5", "")],
     [Row("DE", "JP", "84834030", "2", "QUANTITY_IN_100KG", "2024-04", "142.5", ""),
      Row("DE", "JP", "84834030", "2", "VALUE_IN_EUROS", "2024-04", "141.5", ""),
      Row("DE", "JP", "84834030", "2", "QUANTITY_IN_100KG", "2024-05", "154.5", ""),
      Row("DE", "JP", "84834030", "2", "VALUE_IN_EUROS", "2024-05", "153.5", "")]],
    ["01/08/26 11:00:00", "01/08/26 11:00:00"], ["\r\n", "\r\n"],
    [COLUMNS, (*COLUMNS[:1], *COLUMNS[7:8], *COLUMNS[2:7], *COLUMNS[8:], "LAST UPDATE")], [True, True], [30, 9],
    False, 4))
def test_any_shape_of_payloads_streams_to_the_one_batch_result(shape: Shape):
    """...with the same payloads quarantined (a payload cut off mid-row among others), or the same error, word
    for word (the only payload cut so)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("files", "one", "chunked"):
            (folder / name).mkdir()
        payloads = payloads_of(shape, folder / "files")
        total = sum(count_data_lines(p) for p in payloads)
        try:
            one = stream_all(payloads, countries(), total + 1, folder / "one")
        except EujpError as exc:
            with pytest.raises(type(exc)) as raised, stream_sizes(shape.sizes):
                stream_all(payloads, countries(), shape.limit, folder / "chunked")
            assert str(raised.value) == str(exc)
            return
        with stream_sizes(shape.sizes):
            got = stream_all(payloads, countries(), shape.limit, folder / "chunked")
    assert one.stream.chunk_wire_rows == [total - one.quarantined_rows] or not total
    largest_key = max(Counter((r.series, r.period) for rows in shape.parts for r in rows).values())
    assert max(got.stream.chunk_wire_rows, default=0) <= max(shape.limit, largest_key)
    assert sum(got.stream.chunk_wire_rows) == sum(one.stream.chunk_wire_rows)
    assert got.stream.version == one.stream.version
    assert sorted(got.stream.payload_errors) == sorted(one.stream.payload_errors)
    assert got.valid.sort(pl.all()).equals(one.valid.sort(pl.all()))
    assert sorted(got.rejected.iter_rows()) == sorted(one.rejected.iter_rows())
    assert sum(r.rows_in for r in got.chunks) + got.quarantined_rows == total


@st.composite
def landed_shapes(draw):
    """A shape of payloads, each given to one of two or three landings (runs of one day, replayed together)."""
    shape = draw(payload_shapes())
    landings = draw(st.lists(st.integers(1, 3), min_size=len(shape.parts), max_size=len(shape.parts)))
    return shape._replace(cuts=[0] * len(shape.parts)), landings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=landed_shapes())
def test_any_shape_of_several_landings_streams_to_the_landings_applied_in_order(shape):
    """A replay of a day on which several runs landed payloads: streamed and folded out of core
    (`LandingsStream`), the rows, rejected rows and version of the landings applied one after the other in
    memory (`transform_landings`, each landing one batch: a later landing's figure supersedes an earlier one)."""
    from dataclasses import replace

    from eujp.stream import transform_landings

    shape, landings = shape
    total = sum(len(p) for p in shape.parts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("files", "chunked"):
            (folder / name).mkdir()
        payloads = [replace(p, landing=n) for p, n in
                    zip(payloads_of(shape, folder / "files"), landings, strict=True)]
        with mock.patch.dict(os.environ, {"EUJP_BATCH_ROWS": str(total + 1)}):
            want, want_version, _, _ = transform_landings(COMEXT, payloads, countries())
        with stream_sizes(shape.sizes):
            got = stream_all(payloads, countries(), shape.limit, folder / "chunked")
    assert got.stream.version == want_version
    assert sum(r.rows_in for r in got.chunks) == want.rows_in == total
    assert got.valid.sort(pl.all()).equals(want.valid.select(got.valid.columns).sort(pl.all()))
    assert sorted(got.rejected.iter_rows()) == sorted(want.rejected.iter_rows())
