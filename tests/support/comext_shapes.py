"""Shapes of Comext payloads drawn by hypothesis, for the property tests of the stream
(tests/sources/comext_goods/test_stream_shapes.py) and of its load (test_streamed_load.py): which rows (series
of several partners over a few months and a year, repeated rows, conflicting figures, bad rows), how they are
ordered and cut into payloads, how each payload is written (stamp, line ends, column order, quoting, a cut-off
end), files or bytes, the limit (EUJP_BATCH_ROWS) and the stream's block and buffer sizes. And `stream_all`,
which streams payloads to the end for those tests and the fixed-shape ones (test_streaming.py). The rows are
constructed for the tests, not real figures."""

from __future__ import annotations

import functools
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import polars as pl
from hypothesis import strategies as st

import eujp.stream
from eujp.landing import RawPayload
from eujp.pipeline import load_countries
from eujp.sources import SOURCES
from transforms.common import TransformResult

# Comext: the source whose payloads are streamed by series (found through the registry; its name is
# written in its own room only: tests/unit/test_layout.py)
COMEXT = next(s for s in SOURCES if s.series_key)
COLUMNS = ("DATAFLOW", "LAST UPDATE", "freq", "reporter", "partner", "product", "flow", "indicators", "TIME_PERIOD",
           "OBS_VALUE")
REPORTERS = ("DE", "FR", "EU27_2020")
PRODUCTS = ("84834030", "84829900", "01012100", "27090010")
PERIODS = (*(f"2024-{m:02d}" for m in range(1, 7)), "2024")  # months (freq M) and the year (freq A)
INDICATORS = ("VALUE_IN_EUROS", "QUANTITY_IN_100KG")
PARTNERS = ("JP", "CN", "US")  # users add comparison partners
STAMPS = ("01/08/26 11:00:00", "14/08/26 11:00:00", "02/09/26 11:00:00")


class Row(NamedTuple):
    """A wire row's fields after DATAFLOW, LAST UPDATE and freq."""
    reporter: str
    partner: str
    product: str
    flow: str
    indicator: str
    period: str
    value: str
    freq: str = ""  # as published; "" for the one the period implies

    @property
    def wire_freq(self) -> str:
        return self.freq or ("A" if len(self.period) == 4 else "M")

    @property
    def series(self) -> tuple[str, str, str, str]:
        return self.reporter, self.partner, self.product, self.flow


@functools.cache
def countries() -> pl.DataFrame:
    return load_countries(date(2026, 11, 24))


@st.composite
def wire_rows(draw) -> list[Row]:
    """A set of series (reporter, partner, product, flow) over some months and the year (freq A), both
    indicators or one, a few repeated rows (the same figure or another) and bad rows (an unknown reporter, a
    short product code, a value that is no number or empty, a freq that does not fit the period)."""
    series = draw(st.lists(st.tuples(st.sampled_from(REPORTERS), st.sampled_from(PARTNERS), st.sampled_from(PRODUCTS),
                                     st.sampled_from("12")), min_size=1, max_size=8, unique=True))
    months = draw(st.lists(st.sampled_from(PERIODS), min_size=1, max_size=len(PERIODS), unique=True))
    rows = []
    for n, (reporter, partner, product, flow) in enumerate(series):
        for month in months:
            for indicator in INDICATORS:
                if draw(st.integers(0, 9)) == 0:
                    continue  # an indicator (or both) missing for this key
                rows.append(Row(reporter, partner, product, flow, indicator, month, f"{n}{month[-1]}{len(rows)}.5"))
    if not rows:
        rows.append(Row(*series[0], INDICATORS[0], months[0], "7"))
    extra = draw(st.lists(st.tuples(st.sampled_from(["same", "other", "reporter", "product", "value", "empty", "freq"]),
                                    st.integers(0, 10_000)), max_size=4))
    for kind, pick in extra:
        row = rows[pick % len(rows)]
        rows.append({"same": row, "other": row._replace(value=row.value + "1"), "reporter": row._replace(reporter="XX"),
                     "product": row._replace(product=row.product[:5]), "value": row._replace(value="n.a."),
                     "empty": row._replace(value=""), "freq": row._replace(freq="M" if len(row.period) == 4 else "A"),
                     }[kind])
    return rows


@st.composite
def payload_shapes(draw):
    """A `Shape`: the rows ordered and cut into payloads (none empty), how each payload is written, and how the
    stream is set."""
    rows = draw(wire_rows())
    order = draw(st.sampled_from(["series", "month", "random"]))
    if order == "series":
        rows.sort(key=lambda r: (r.series, r.period, r.indicator))
    elif order == "month":
        rows.sort(key=lambda r: (r.period, r.series, r.indicator))
    else:
        rows = draw(st.permutations(rows))
    cut = draw(st.sampled_from(["one", "product", "month", "points"]))
    if cut == "one":
        parts = [rows]
    elif cut in ("product", "month"):
        groups: dict[str, list] = {}
        for r in rows:
            groups.setdefault(r.product if cut == "product" else r.period, []).append(r)
        parts = list(groups.values())
        if cut == "product" and draw(st.booleans()):  # slice some products' months apart as well
            sliced = []
            for part in parts:
                months = sorted({r.period for r in part})
                if len(months) > 1 and draw(st.booleans()):
                    half = months[draw(st.integers(1, len(months) - 1))]
                    sliced += [[r for r in part if r.period < half], [r for r in part if r.period >= half]]
                else:
                    sliced.append(part)
            parts = draw(st.permutations(sliced))
    else:
        points = sorted(draw(st.lists(st.integers(1, max(1, len(rows) - 1)), max_size=5, unique=True)))
        parts = [rows[a:b] for a, b in zip([0, *points], [*points, len(rows)], strict=True)]
    parts = [p for p in parts if p]
    stamps = [draw(st.sampled_from(STAMPS)) for _ in parts]
    ends = [draw(st.sampled_from(["\r\n", "\n"])) for _ in parts]
    columns = [tuple(COLUMNS) if draw(st.integers(0, 3)) else tuple(draw(st.permutations(COLUMNS)))
               for _ in parts]
    quoted = [not draw(st.integers(0, 5)) for _ in parts]
    cuts = [draw(st.sampled_from([0, 2, 9, 30])) if not draw(st.integers(0, 15)) else 0 for _ in parts]
    files = draw(st.booleans())
    limit = draw(st.integers(4, max(4, len(rows) + 2)))
    sizes = draw(st.none() | st.fixed_dictionaries({
        "READ_BLOCK": st.integers(1, 400), "SCAN_BLOCK": st.integers(1, 400),
        "SMALL_PAYLOAD_BYTES": st.integers(0, 1000), "SERIES_SCAN_ROWS": st.integers(1, 8),
        "QUARANTINE_WHOLE_BYTES": st.integers(0, 1000), "PARSE_AHEAD_BYTES": st.integers(0, 1000)}))
    return Shape(parts, stamps, ends, columns, quoted, cuts, files, limit, sizes)


class Shape(NamedTuple):
    parts: list[list[Row]]  # each payload's rows
    stamps: list[str]  # each payload's LAST UPDATE
    ends: list[str]  # each payload's line end
    columns: list[tuple[str, ...]]  # each payload's column order
    quoted: list[bool]  # each payload's fields all in double quotes, or none
    cuts: list[int]  # bytes cut off the end of each payload (a payload cut off mid-row)
    files: bool  # payloads as files (a snapshot folder) or bytes (read back from the raw zone)
    limit: int  # EUJP_BATCH_ROWS
    sizes: dict[str, int] | None = None  # the stream's block and buffer sizes (eujp.stream), made tiny


def stream_sizes(sizes: dict[str, int] | None):
    """eujp.stream's block and buffer sizes set to `sizes` (none: as they are), so that rows by the dozen
    take the paths that megabytes take: blocks read and scanned in many reads, a series scan in batches,
    payloads over the small-payload size, a quarantine read in pieces."""
    return mock.patch.multiple(eujp.stream, **sizes) if sizes else nullcontext()


def payloads_of(shape: Shape, folder: Path) -> list[RawPayload]:
    payloads = []
    for k, (rows, stamp, end, order, quoted, cut) in enumerate(zip(
            shape.parts, shape.stamps, shape.ends, shape.columns, shape.quoted, shape.cuts, strict=True)):
        fields = [dict(zip(COLUMNS, ("ESTAT:DS-045409(1.0)", stamp, r.wire_freq, *r[:7]), strict=True)) for r in rows]
        q = '"' if quoted else ""
        lines = [",".join(f"{q}{c}{q}" for c in order), *(",".join(f"{q}{f[c]}{q}" for c in order) for f in fields)]
        data = (end.join(lines) + end).encode()
        data = data[:len(data) - cut]
        name = f"part{k:02d}.csv"
        if shape.files:
            (folder / name).write_bytes(data)
            payloads.append(RawPayload.from_file(COMEXT.name, folder / name))
        else:
            payloads.append(RawPayload(source=COMEXT.name, name=name, data=data, url=f"file:///{name}"))
    return payloads


class SpillWatch:
    """A `step` observer that notes, at every step, whether a wire spill folder exists under `spill_dir`
    (Stream makes it there while it spills, and removes it after the chunks)."""

    def __init__(self, spill_dir: Path):
        self.spill_dir, self.seen = spill_dir, set()

    def __call__(self, name):
        self.seen.update(p.name for p in self.spill_dir.iterdir())
        return nullcontext()


class Streamed(NamedTuple):
    """What `stream_all` gives."""
    stream: eujp.stream.Stream
    spilled: set[str]  # the names seen under the spill folder while the stream ran (SpillWatch)
    valid: pl.DataFrame
    rejected: pl.DataFrame  # the chunks' rejected rows and the quarantined payloads' rows
    chunks: list[TransformResult]
    quarantined_rows: int


def stream_all(payloads: list[RawPayload], country_codes: pl.DataFrame, limit: int, spill_dir: Path) -> Streamed:
    """Every chunk of Comext's stream of `payloads` at `limit` (EUJP_BATCH_ROWS), spilling under `spill_dir`,
    which must be empty again at the end (nothing left behind)."""
    watch = SpillWatch(spill_dir)
    stream = eujp.stream.source_stream(COMEXT, payloads, country_codes, step=watch, limit=limit, spill_dir=spill_dir)
    chunks = list(stream.chunks())
    assert list(spill_dir.iterdir()) == []  # nothing left behind
    quarantined = [q.frame() for q in stream.quarantined]  # read while a file-backed payload is there
    return Streamed(stream, watch.seen, pl.concat([r.valid for r in chunks]),
                    pl.concat([*(r.rejected for r in chunks), *quarantined]), chunks,
                    sum(q.height for q in quarantined))
