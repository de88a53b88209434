"""Incremental loading: what the warehouse remembers about each source (table `etl_source_state`), and
how far back the next live request starts (the watermark).

- `input_checksum`, `etag`, `last_modified` are those of the last *successful load*: a source whose
  content checksum is unchanged, or that answers 304 to a conditional request built from them, is
  "unchanged": one small request and zero load work.
- `request_url` is the URL those validators belong to, `requested_at` when the last successful
  extraction started (the next `updatedAfter`), `request_scope` what it asked for (its settings).
- `newest_period` is the newest period the warehouse holds for the source (never moves backwards).
- `watermark` is where the next live request starts: `newest_period` minus the source's revision window,
  because Eurostat and Comext revise recent periods. Periods from the watermark on are fetched again and
  upserted; revised values replace the old ones and are recorded in `etl_revisions`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl


@dataclass(frozen=True)
class SourceState:
    """One row of etl_source_state."""

    source: str
    last_success_at: datetime | None = None  # last run that loaded the source or confirmed it unchanged
    last_attempt_at: datetime | None = None
    last_status: str | None = None  # success | unchanged | failed
    etag: str | None = None
    last_modified: str | None = None
    input_checksum: str | None = None
    newest_period: str | None = None
    watermark: str | None = None
    # The request the validators (etag, last_modified) belong to: a conditional request is only meaningful for
    # the URL whose representation they describe (eujp.live.LiveContext.windowed_get).
    request_url: str | None = None
    # When the last successful extraction (loaded or confirmed unchanged) started: what the service changed
    # after it is what the next run asks for (SDMX `updatedAfter`, a dataflow's UPDATE_DATA annotation).
    requested_at: datetime | None = None
    # What the last successful live extraction asked for, by the settings that choose it (JSON: the source's
    # `request_scope`): a run whose settings ask for more (a partner added, an earlier start) fetches the
    # history of what was added, not only what changed after `requested_at` (scope_widening).
    request_scope: str | None = None


ALL_CODES = "*"  # in a request scope: every code of a list (an empty list setting asks for all)
# In a request scope: codes of one list whose history is held from a later period than the scope's start,
# {"list": "partners", "codes": ["CN"], "start": "2024-01"} (the months before it are still to fetch).
STAGE = "stage"


def scope_widening(previous: Mapping | None, current: Mapping | None) -> dict:
    """What `current` (a source's request_scope under this run's settings) asks for beyond `previous` (the last
    successful extraction's): {list: the codes added, or ALL_CODES when it now asks for every code and did not},
    and "start": the new first period, when it moved earlier. Empty when it asks for no more (the same, or
    less: what is no longer asked for stays in the warehouse), or when either scope is unknown; a list the
    previous scope did not record counts as unchanged, and a part that is neither a list nor the start (a
    source's own record: Comext's `stage`) is not compared."""
    if not previous or not current:
        return {}
    widened: dict = {}
    for name, codes in current.items():
        before = previous.get(name)
        if before is None or (name != "start" and not (isinstance(codes, list) and isinstance(before, list))):
            continue
        if name == "start":
            if codes and codes < before:  # periods as text: YYYY-MM (or YYYY) sort as they run
                widened[name] = codes
        elif ALL_CODES not in before:
            if ALL_CODES in codes:
                widened[name] = ALL_CODES
            elif added := sorted(set(codes) - set(before)):
                widened[name] = added
    return widened


def recorded_scope(state: SourceState | None) -> dict | None:
    """The request_scope a source's state recorded (None: none recorded, or not readable as one)."""
    if state is None or not state.request_scope:
        return None
    try:
        scope = json.loads(state.request_scope)
    except ValueError:
        return None
    return scope if isinstance(scope, dict) else None


def describe_widening(widened: Mapping) -> str:
    """`scope_widening`'s result for a log line, e.g. 'partners + CN,KR; first period 1999-01'."""
    return "; ".join(f"first period {codes}" if name == "start" else
                     f"{name} + {'every code' if codes == ALL_CODES else ','.join(codes)}"
                     for name, codes in widened.items())


def merge_scopes(a: Mapping | None, b: Mapping | None) -> dict | None:
    """The request scope of two extractions together (what the warehouse holds after loading both): each list
    of codes the union of both ('*' when either asked for every code; a list only one recorded, as it
    recorded it), the earlier first period. None when neither is known.

    A code is held from the earlier of the periods the two scopes hold it from (`held_from`: the scope's start,
    or its `STAGE` record's for the codes the stage names). Codes held from a later period than the merged
    start (a partner only the later-starting scope asked for, a stage the other scope does not cover) become
    the merged scope's `STAGE` record, from the latest of their periods (Comext backfills the months before it:
    eujp.sources.comext_goods.comext_backfill); when no single stage describes them (codes of two lists, every
    code of a list), the merged scope starts at that period instead: the history before it is fetched again
    rather than taken as held."""
    if not a or not b:
        return dict(a or b) if (a or b) else None
    merged: dict = {}
    for name in {**a, **b}:
        x, y = a.get(name), b.get(name)
        if name == STAGE:
            continue
        if x is None or y is None:
            merged[name] = x if y is None else y
        elif name == "start":
            merged[name] = min(x, y)
        elif isinstance(x, list) and isinstance(y, list):
            merged[name] = [ALL_CODES] if ALL_CODES in x or ALL_CODES in y else sorted({*x, *y})
        else:
            merged[name] = x
    start = merged.get("start")
    late: dict[str, dict[str, str]] = {}  # list -> code -> the period it is held from, after the merged start
    for name, codes in merged.items():
        if name == "start" or not isinstance(codes, list) or not start:
            continue
        for code in codes:
            held = [p for p in (held_from(a, name, code), held_from(b, name, code)) if p is not None]
            if held and min(held) > start:
                late.setdefault(name, {})[code] = min(held)
    if len(late) == 1 and ALL_CODES not in next(iter(late.values())):
        (name, codes), = late.items()
        merged[STAGE] = {"list": name, "codes": sorted(codes), "start": max(codes.values())}
    elif late:
        merged["start"] = max(p for codes in late.values() for p in codes.values())
    return merged


def held_from(scope: Mapping, name: str, code: str) -> str | None:
    """The period from which `scope` holds `code` of its list `name`: its `STAGE` record's start for a code the
    stage names, else the scope's start ('' when it records none); None when the list does not hold the code
    (nor every code)."""
    codes = scope.get(name)
    if not isinstance(codes, list) or not (code in codes or ALL_CODES in codes):
        return None
    stage = scope.get(STAGE)
    if isinstance(stage, dict) and stage.get("list") == name and code in stage.get("codes", ()):
        return stage.get("start") or ""
    return scope.get("start") or ""


def newest_period(column: str | None, frame: pl.DataFrame | None) -> str | None:
    """Newest value of a batch's period `column` as text (YYYY, YYYY-MM or YYYY-MM-DD), None if it has none
    (or the source declares no period column)."""
    if frame is None or column is None or column not in frame.columns or frame.is_empty():
        return None
    values = frame.get_column(column).drop_nulls()
    if values.is_empty():
        return None
    if values.dtype == pl.String:  # period codes: monthly ones outrank annual ones of the same year
        newest = values.max()
        if "-" in newest:  # the newest code is monthly: so is the newest monthly one (one pass, no filter)
            return newest
        monthly = values.filter(values.str.contains("-"))
        return (monthly if not monthly.is_empty() else values).max()
    newest = values.max()
    return newest.isoformat() if isinstance(newest, date) else str(newest)


def later_period(a: str | None, b: str | None) -> str | None:
    """The later of two period texts of the same kind (None counts as nothing)."""
    if a is None or b is None:
        return a or b
    return max(a, b)


def earlier_period(a: str | None, b: str | None) -> str | None:
    """The earlier of two watermarks (None is "from the start", the earliest of all)."""
    if a is None or b is None:
        return None
    return min(a, b)


def month_add(period: str, months: int) -> str:
    """'2025-06' + (-17) -> '2024-01'."""
    year, month = (int(x) for x in period.split("-")[:2])
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def annual_lookback(years: int):
    """A watermark for annual sources revised for `years` years: the next request re-reads the `years`
    years before the newest loaded ('2024' -> '2022' with 2)."""
    def watermark(newest: str) -> str:
        return str(int(newest[:4]) - years)

    watermark.__qualname__ = f"annual_lookback({years})"
    return watermark
