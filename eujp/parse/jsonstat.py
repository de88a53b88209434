"""JSON-stat 2.0 dataset decoder (Eurostat dissemination API).

Output frame (one row per observation, in flat-index order):

- one String column per dimension, named by the dimension id, in `id` order, holding category CODES;
- `value` (Float64): the observation, null when the cell only carries a status;
- `status` (String): the observation's flag (`p`, `e`, `c`, ...), null if none (an empty string is none).

Which cells become rows: every cell with a non-null value, and every cell with a per-cell status
(`status` as an object or an array) even when its value is absent or null. Eurostat publishes
confidential cells as a `c` status with no value; keeping them (value null) lets the transforms count
them as rejected instead of losing them silently. A cell with neither a value nor a status is not an
observation and produces no row. A `status` given as a single string applies to the cells that have a
value; it does not turn empty cells into rows.

`source_version` is the dataset's `updated` field. `meta` holds `label`, `dimension_labels`
({dimension id: {code: label}}), `extension` and `source`.

The decoder is strict: anything that is not a well-formed JSON-stat 2.0 dataset raises `ParseError`
with a message naming what is wrong; so does an error answer (JSON-stat's `error` class, or a non-empty `error`
list or object: an empty one lists no error). Flat indexes are decoded with vectorised integer div/mod
(`unravel`), never per row in Python.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from eujp.errors import ParseError
from eujp.parse import ParsedPayload

_RESERVED_COLUMNS = ("value", "status")
_NUMBER_TYPES = (int, float, type(None))
_MAX_CELLS = 2**62


# --------------------------------------------------------------------------- flat index helpers


def flat_index(coords: Sequence[Any], sizes: Sequence[int]) -> Any:
    """Row-major flat index (last dimension fastest) of `coords` in a cube of `sizes`.

    `coords` holds one int or one integer array per dimension; returns an int or an int64 array.
    Raises ValueError when a coordinate is outside its dimension.
    """
    if len(coords) != len(sizes):
        raise ValueError(f"{len(coords)} coordinates for {len(sizes)} dimensions")
    scalar = all(np.ndim(c) == 0 for c in coords)
    index = np.zeros(np.broadcast_shapes(*(np.shape(c) for c in coords)), dtype=np.int64)
    for position, (coord, size) in enumerate(zip(coords, sizes, strict=True)):
        arr = np.asarray(coord, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= size):
            raise ValueError(f"coordinate of dimension {position} outside 0..{size - 1}")
        index = index * size + arr
    return int(index) if scalar else index


def unravel(index: Any, sizes: Sequence[int]) -> tuple[Any, ...]:
    """Inverse of `flat_index`: one coordinate (int or int64 array) per dimension.

    Raises ValueError when an index is negative or not below the product of `sizes`.
    """
    total = math.prod(sizes)
    scalar = np.ndim(index) == 0
    rest = np.asarray(index, dtype=np.int64)
    if rest.size and (rest.min() < 0 or rest.max() >= total):
        raise ValueError(f"flat index outside 0..{total - 1}")
    coords: list[np.ndarray] = []
    for size in reversed(sizes):
        coords.append(rest % size)
        rest = rest // size
    coords.reverse()
    return tuple(int(c) for c in coords) if scalar else tuple(coords)


# --------------------------------------------------------------------------- parsing


def _reject_constant(name: str) -> float:
    raise ValueError(f"JSON constant {name} is not a number JSON-stat allows")


def _load(data: bytes) -> Any:
    size = len(data)
    if not data or data.isspace():
        raise ParseError(f"JSON-stat: empty payload ({size} bytes)")
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        title = re.search(rb"<title[^>]*>(.*?)</title>", data[:4096], re.IGNORECASE | re.DOTALL)
        hint = f" (title: {title.group(1).decode('utf-8', 'replace').strip()!r})" if title else ""
        raise ParseError(
            f"JSON-stat: got an HTML/XML page instead of JSON ({size} bytes){hint}; "
            "the API probably answered with an error or maintenance page"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"JSON-stat: payload is not valid UTF-8 (byte {exc.start} of {size}: {data[exc.start:exc.start + 1]!r})"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        exc.msg = exc.msg.removesuffix(" at")  # json's "Unterminated string starting at" (then: "at line ...")
        end = len(text.rstrip())
        if exc.pos >= end or exc.msg.startswith("Unterminated string"):
            raise ParseError(
                f"JSON-stat: truncated JSON, the document ends unexpectedly ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno}; payload is {size} bytes)", line=exc.lineno, column=exc.colno,
            ) from None
        raise ParseError(
            f"JSON-stat: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}; "
            f"payload is {size} bytes)", line=exc.lineno, column=exc.colno,
        ) from None
    except ValueError as exc:  # NaN / Infinity literals
        raise ParseError(f"JSON-stat: {exc} (payload is {size} bytes)") from None


def _categories(dim_id: str, dim: Any, size: int) -> tuple[list[str], dict[str, str]]:
    """Category codes in position order, and their labels, for one dimension."""
    if not isinstance(dim, dict) or not isinstance(dim.get("category"), dict):
        raise ParseError(f"JSON-stat: dimension {dim_id!r} has no 'category' object")
    category = dim["category"]
    index = category.get("index")
    labels = category.get("label")
    if labels is not None and not isinstance(labels, dict):
        raise ParseError(f"JSON-stat: dimension {dim_id!r}: category.label must be an object")
    if index is None:
        if not labels:
            raise ParseError(f"JSON-stat: dimension {dim_id!r} has neither category.index nor category.label")
        if len(labels) != 1:
            raise ParseError(
                f"JSON-stat: dimension {dim_id!r} has no category.index but {len(labels)} categories "
                "(index may only be omitted for a single category)"
            )
        codes = list(labels)
    elif isinstance(index, list):
        codes = index
    elif isinstance(index, dict):
        positions = list(index.values())
        if not all(type(p) is int for p in positions):
            bad = next(p for p in positions if type(p) is not int)
            raise ParseError(f"JSON-stat: dimension {dim_id!r}: category.index position {bad!r} is not an integer")
        if sorted(positions) != list(range(len(positions))):
            raise ParseError(
                f"JSON-stat: dimension {dim_id!r}: category.index positions are not a permutation of "
                f"0..{len(positions) - 1} (got {sorted(positions)[:10]}{'...' if len(positions) > 10 else ''})"
            )
        codes = [None] * len(positions)
        for code, position in index.items():
            codes[position] = code
    else:
        raise ParseError(f"JSON-stat: dimension {dim_id!r}: category.index must be an object or an array")
    if not all(isinstance(c, str) for c in codes):
        raise ParseError(f"JSON-stat: dimension {dim_id!r}: category codes must be strings")
    if len(set(codes)) != len(codes):
        dup = next(c for c in codes if codes.count(c) > 1)
        raise ParseError(f"JSON-stat: dimension {dim_id!r}: category code {dup!r} appears twice")
    if len(codes) != size:
        raise ParseError(
            f"JSON-stat: dimension {dim_id!r} has {len(codes)} categories but size says {size}"
        )
    labels = labels or {}
    return codes, {code: str(labels.get(code, code)) for code in codes}


def _sparse_keys(keys: list[str], what: str, total: int) -> pl.Series:
    """Object keys of a sparse `value`/`status` → Int64 flat indexes (validated).

    A key must be the canonical decimal form of its index ('7', not '07' or '+7'), so distinct JSON keys
    are distinct indexes.
    """
    series = pl.Series("idx", keys, dtype=pl.String)
    parsed = series.str.to_integer(dtype=pl.Int64, strict=False)
    ok = (parsed.cast(pl.String) == series) & (parsed >= 0)
    if not ok.fill_null(False).all():
        bad = series.filter(~ok.fill_null(False))[0]
        raise ParseError(f"JSON-stat: {what} key {bad!r} is not a non-negative integer index")
    if parsed.len() and parsed.max() >= total:
        raise ParseError(
            f"JSON-stat: {what} key {int(parsed.max())} is out of range: the cube has {total} cells "
            "(product of size)"
        )
    return parsed


def _numbers(values: list[Any], where: Any) -> pl.Series:
    """Observation values → Float64 (null for JSON null); anything not a number raises ParseError."""
    types = set(map(type, values))
    if not types.issubset(_NUMBER_TYPES):
        position = next(i for i, v in enumerate(values) if type(v) not in _NUMBER_TYPES)
        raise ParseError(
            f"JSON-stat: value {values[position]!r} at {where(position)} is not a number or null"
        )
    series = pl.Series("value", values, dtype=pl.Float64, strict=False)
    if series.is_infinite().any():
        raise ParseError("JSON-stat: value is out of the float range (infinite)")
    if series.null_count() > values.count(None):  # an integer too large for a float: not read as a missing value
        position = next(i for i, (v, x) in enumerate(zip(values, series.to_list(), strict=True))
                        if v is not None and x is None)
        raise ParseError(f"JSON-stat: value at {where(position)} is out of the float range "
                         f"({len(str(values[position]))} digits)")
    return series


def _strings(values: list[Any], what: str) -> pl.Series:
    if not set(map(type, values)).issubset((str, type(None))):
        bad = next(v for v in values if not isinstance(v, str | None))
        raise ParseError(f"JSON-stat: {what} entry {bad!r} is not a string")
    return pl.Series("status", values, dtype=pl.String)


def _observations(doc: dict, total: int) -> pl.DataFrame:
    """Frame (idx Int64, value Float64, status String) of the present cells, sorted by idx."""
    value = doc.get("value")
    if isinstance(value, dict):
        keys = list(value)
        values = _numbers(list(value.values()), lambda i: f"key {keys[i]!r}")
        obs = pl.DataFrame({"idx": _sparse_keys(keys, "value", total), "value": values})
    elif isinstance(value, list):
        if len(value) != total:
            raise ParseError(
                f"JSON-stat: dense value array has {len(value)} entries but the cube has {total} cells "
                "(product of size)"
            )
        values = _numbers(value, lambda i: f"position {i}")
        obs = pl.DataFrame({"idx": pl.int_range(0, total, dtype=pl.Int64, eager=True), "value": values})
    else:
        raise ParseError("JSON-stat: 'value' is missing or is neither an object nor an array")
    obs = obs.filter(pl.col("value").is_not_null())

    status = doc.get("status")
    if status is None:
        return obs.with_columns(status=pl.lit(None, dtype=pl.String)).sort("idx")
    if isinstance(status, list) and len(status) == 1 and total != 1:
        status = status[0]  # one flag for every value (as the reference toolkit JJT reads it), as a string is
        if status is not None and not isinstance(status, str):
            raise ParseError(f"JSON-stat: status must be a string, got {status!r}"[:300])
    if status is None or status == "":  # an empty status is no flag
        return obs.with_columns(status=pl.lit(None, dtype=pl.String)).sort("idx")
    if isinstance(status, str):
        return obs.with_columns(status=pl.lit(status, dtype=pl.String)).sort("idx")
    if isinstance(status, dict):
        flags = pl.DataFrame(
            {"idx": _sparse_keys(list(status), "status", total), "status": _strings(list(status.values()), "status")}
        )
    elif isinstance(status, list):
        if len(status) != total:
            raise ParseError(
                f"JSON-stat: dense status array has {len(status)} entries but the cube has {total} cells"
            )
        flags = pl.DataFrame(
            {"idx": pl.int_range(0, total, dtype=pl.Int64, eager=True), "status": _strings(status, "status")}
        )
    else:
        raise ParseError("JSON-stat: 'status' must be a string, an object or an array")
    flags = flags.filter(pl.col("status").is_not_null() & (pl.col("status") != ""))  # an empty status: no flag
    return obs.join(flags, on="idx", how="full", coalesce=True).sort("idx")


def parse_jsonstat(data: bytes) -> ParsedPayload:
    """Decode a JSON-stat 2.0 dataset into one row per observation (see module docstring)."""
    doc = _load(data)
    if not isinstance(doc, dict):
        raise ParseError(f"JSON-stat: top level is a JSON {type(doc).__name__}, not an object")
    error = doc.get("error")
    if error in ([], {}):  # an empty list (or object) of errors: none
        error = None
    if error is not None or doc.get("class") == "error":
        # JSON-stat's error class, a dataset carrying an `error` (Eurostat: EXTRACTION_TOO_BIG, ...)
        said = error if error is not None else {k: doc.get(k) for k in ("label", "status")}
        raise ParseError(f"JSON-stat: the API answered with an error instead of a dataset: {said!r}"[:500])
    if "class" not in doc and doc.get("warning") is not None:
        # Eurostat's answer to a large request it serves later (ASYNCHRONOUS_RESPONSE): no data yet
        raise ParseError(f"JSON-stat: the API answered with a warning instead of a dataset (an asynchronous "
                         f"answer is not supported: narrow the request): {doc['warning']!r}"[:500])
    if doc.get("class") != "dataset":
        raise ParseError(f"JSON-stat: class is {doc.get('class')!r}, expected 'dataset'")
    if doc.get("version") != "2.0":
        raise ParseError(f"JSON-stat: version is {doc.get('version')!r}, expected '2.0'")

    ids, sizes = doc.get("id"), doc.get("size")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
        raise ParseError("JSON-stat: 'id' must be a non-empty array of dimension ids")
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes):
        raise ParseError(f"JSON-stat: 'size' must be an array of non-negative integers, got {sizes!r}"[:300])
    if len(ids) != len(sizes):
        raise ParseError(f"JSON-stat: 'id' has {len(ids)} dimensions but 'size' has {len(sizes)} entries")
    if len(set(ids)) != len(ids):
        raise ParseError(f"JSON-stat: dimension ids repeat: {ids}")
    clash = [i for i in ids if i in _RESERVED_COLUMNS]
    if clash:
        raise ParseError(f"JSON-stat: dimension id {clash[0]!r} clashes with the output column of that name")
    dimensions = doc.get("dimension")
    if not isinstance(dimensions, dict):
        raise ParseError("JSON-stat: 'dimension' object is missing")
    missing = [i for i in ids if i not in dimensions]
    if missing:
        raise ParseError(f"JSON-stat: dimension(s) {missing} listed in 'id' are missing from 'dimension'")
    total = math.prod(sizes)
    if total > _MAX_CELLS:
        raise ParseError(f"JSON-stat: cube of {total} cells is too large to index")

    codes: dict[str, list[str]] = {}
    dimension_labels: dict[str, dict[str, str]] = {}
    for dim_id, size in zip(ids, sizes, strict=True):
        codes[dim_id], dimension_labels[dim_id] = _categories(dim_id, dimensions[dim_id], size)

    obs = _observations(doc, total)
    coords = unravel(obs.get_column("idx").to_numpy(), sizes)
    columns = [
        pl.Series(dim_id, codes[dim_id], dtype=pl.String).gather(pl.Series(coord, dtype=pl.Int64))
        for dim_id, coord in zip(ids, coords, strict=True)
    ]
    frame = pl.DataFrame([*columns, obs.get_column("value"), obs.get_column("status")])

    updated = doc.get("updated")
    if updated is not None and not isinstance(updated, str):
        raise ParseError(f"JSON-stat: 'updated' must be a string, got {updated!r}")
    meta = {
        "label": doc.get("label"),
        "source": doc.get("source"),
        "dimension_labels": dimension_labels,
        "extension": doc.get("extension"),
    }
    return ParsedPayload(frame=frame, source_version=updated, meta=meta)
