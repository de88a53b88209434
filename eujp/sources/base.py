"""What a source declares: the `Source` record every module of eujp/sources/ builds once, as `SOURCE`.

A source is one feed of facts: where it lives (live endpoint and request plan, snapshot file pattern), how it
is read (wire format, parser), what it becomes (transform, fact table, suite), and how it is loaded and kept
up to date (replace scope, period column, watermark, streaming key, cadence). The registry
(eujp/sources/__init__.py) collects these records; nothing else in the code knows a source by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from eujp.parse import ParsedPayload
from eujp.schema import Table
from transforms.common import SuiteRule, TransformResult

if TYPE_CHECKING:  # only for annotations: a source module imports eujp.live itself when it has a live plan
    from eujp.landing import RawPayload
    from eujp.live import Endpoint, LiveContext


class Transform(Protocol):
    """A source's transform (transforms/<source>.py): wire frame -> valid and rejected rows, pure.

    `fetched_on`: the UTC day the transformed payloads were fetched (the newest of them; a replayed landing
    keeps its own: eujp.stream.payloads_fetched_on), None when no payload says. A transform that judges its rows
    against the calendar reads this day, never the clock, so that the same payloads give the same rows
    whatever the day it runs (a replay, an as-of rebuild, a test). A transform that does not declare it (a
    source module written before it was given) is called without it (eujp.stream.takes_fetched_on)."""

    def __call__(self, wire: pl.DataFrame, source_name: str, source_version: str | None, countries: pl.DataFrame,
                 *, fetched_on: date | None = None) -> TransformResult: ...


# The live request plan: the payloads of one extraction ([] = nothing new since the last load).
LivePlan = Callable[["LiveContext"], list["RawPayload"]]

DOMAINS: tuple[str, ...] = ("trade", "defence", "minerals")  # the known domains, in run order


@dataclass(frozen=True)
class LabelFeed:
    """Labels a source's service publishes beside its data (Comext: the product codelist with the CN8
    descriptions). Its payloads (RawPayload.kind == `kind`) are fetched by the source's live plan or read from
    the snapshot folder (`snapshot_glob`), landed with the data (extension `extension`), never parsed as data,
    and upserted into `table` (by its natural key) in the same transaction as the source's data."""

    table: Table
    kind: str
    extension: str
    parse: Callable[[bytes], pl.DataFrame]  # a payload's bytes -> rows of `table` (its columns)
    snapshot_glob: str


@dataclass(frozen=True)
class CoverageFeed:
    """What a source's live plan states it asked for in full (Comext: every CN8 product of the codelist, for
    these reporters, partners, flows and months), so that the warehouse knows where its rows are complete.
    The plan writes it as a small JSON payload of its own (RawPayload.kind == `kind`; the run's statement
    about its requests, not the service's bytes) beside the data of a successful extraction only; it is
    landed with the data (extension "json"), so a replay of the raw zone states it again, never parsed as
    data, and its rows (`parse`) are upserted into `table` (by its natural key) in the same transaction as
    the source's data."""

    table: Table
    kind: str
    parse: Callable[[bytes], pl.DataFrame]  # a payload's bytes -> rows of `table` (its columns but run_id, loaded_at)
    extension: str = "json"


@dataclass(frozen=True)
class WireGroups:
    """How the payloads of a streamed source (`Source.transform_key`) that can share a key are found without
    parsing them (eujp.stream.Stream): by the distinct values of one wire column that is part of the
    transform key (Comext: TIME_PERIOD), read alone from each payload. Payloads that share no value of it
    share no key, so they are parsed and transformed in memory, a few at a time, instead of being
    hash-partitioned to disk. `version` gives the source_version the source's parser gives a payload, from
    the distinct values of `version_column` (a frame of that one column): the batch's version is then known
    before its first chunk is transformed. The parser must give exactly that version (Stream checks it)."""

    column: str
    version_column: str
    version: Callable[[pl.DataFrame], str | None]


@dataclass(frozen=True)
class Source:
    name: str
    domain: str  # trade | defence | minerals (a new domain runs after these)
    table: Table  # the fact table the source loads (declared in the source's module)
    wire_format: str
    parse: Callable[[bytes], ParsedPayload]
    transform: Transform
    snapshot_glob: str  # file name pattern inside a snapshot folder; several files are concatenated
    extension: str  # extension of landed raw payloads
    cadence_days: int  # how often the source publishes: stale (a freshness warning) when the last successful
    # extraction is older than this (eujp.freshness)
    description: str
    # Live extraction (`eujp run --source live`): the service's base URL and its environment variable, and
    # the request plan. None: the source has no live service.
    endpoint: Endpoint | None = None
    fetch: LivePlan | None = None
    # What the live request asks for, by the settings that choose it (its lists of codes, '*' = all, and a
    # first period `start`), JSON-ready: recorded with each successful extraction (etl_source_state), so that a
    # run whose settings ask for more fetches the history of what they add (eujp.incremental.scope_widening). With
    # `backfills_scope`, the request plan fetches that history itself (LiveContext.previous_scope); else a
    # widened scope makes the run's extraction full, as --force does. None: the request has no settings.
    # Called with the run's date (UTC, Settings.run_date): a first period after it is refused, naming its setting.
    request_scope: Callable[[Mapping[str, str], date], dict] | None = None
    # The part of request_scope a run's extraction fetches in full, given the scope the last successful one
    # recorded (None: a first or forced extraction), with the run's settings and date and the state's watermark:
    # recorded in its stead. None: all of it (Comext fetching its history in stages, EUJP_COMEXT_HISTORY_MONTHS,
    # records the first month it reached, and the month from which codes added to a list were fetched).
    scope_fetched: Callable[[dict, Mapping | None, Mapping[str, str], date, str | None], dict] | None = None
    backfills_scope: bool = False
    # The request scope that landed payloads of a live extraction asked for, read from what was landed with
    # them (Comext: its coverage statements; Eurostat, OECD: their request URLs), None when they do not say: a
    # --from-raw replay or an as-of rebuild records it as a live run does, and a live run whose state recorded
    # none rebuilds it from the raw zone (with a coverage statement: eujp.live.fetch_live), or extracts in full,
    # rather than take the settings' scope as fetched.
    landed_scope: Callable[[list[RawPayload]], dict | None] | None = None
    # The fact column that holds the codes of each list of request_scope whose codes the rows carry as asked
    # (Comext: partners -> partner): after a live load whose settings added codes to such a list, the codes of
    # which the run loaded no row are named in the run's warnings (eujp.pipeline.added_without_rows). A list
    # not declared (Comext's flows, which the table holds as import/export) is not checked.
    scope_columns: Mapping[str, str] = field(default_factory=dict)
    # Incremental loading (eujp.incremental): the fact column holding each row's period (newest_period), and
    # where the next live request starts given the newest period loaded (None: always a full extract).
    period_column: str | None = None
    watermark: Callable[[str], str] | None = None
    # The fact column by which each chunk of valid rows is sorted before it is loaded (eujp.pipeline.
    # in_period_order: rows of one period stored side by side), when it is not period_column itself: a column
    # that orders the rows as the period does and sorts faster (Comext: its month's first day, a date, rather
    # than the text period code: 0.04 s against 0.14 s for 750k rows).
    load_order_column: str | None = None
    # What one payload replaces in the warehouse (see warehouse.upsert_fact): None = upsert by natural
    # key (sources that send slices, e.g. some periods); () = the source's whole previous extract.
    replace_scope: tuple[str, ...] | None = None
    # Wire columns that confine every interaction of the transform between rows (duplicates, pivots): rows
    # that differ in any of them never affect each other. When set (and replace_scope is None), the source is
    # streamed: parsed, transformed, validated and loaded in chunks of at most EUJP_BATCH_ROWS wire rows that
    # never split a key (eujp.stream.Stream), so memory follows the chunk, not the source; the transform
    # must stamp `source_version` as given on every valid row. () = whole-batch transform.
    transform_key: tuple[str, ...] = ()
    # How a streamed source's payloads that can share a key are found cheaply (see WireGroups); None: every
    # payload of a source over EUJP_BATCH_ROWS wire rows is hash-partitioned by transform_key to disk.
    wire_groups: WireGroups | None = None
    # Wire columns (part of transform_key) by which the service sorts an answer first (Comext: reporter,
    # partner, product, flow, before the indicator and the period): when a lone payload over EUJP_BATCH_ROWS,
    # or a group of payloads parsed whole that share wire group values, holds each of their value combinations
    # in one contiguous run of lines of one payload (checked by a scan first), it is streamed in chunks cut
    # between runs instead of being hash-partitioned to disk (eujp.stream.Stream).
    # Needs wire_groups (its version column stamps the batch before the first chunk). (): always hashed.
    series_key: tuple[str, ...] = ()
    # The table's Great Expectations suite; None = expectations/<table>.json (eujp.validate.suite_path).
    suite: Path | None = None
    # The suite's critical row rules the transform checks row by row, with their values (its constants):
    # eujp.suites writes them into the suite, so a row the suite refuses is rejected alone by the transform.
    suite_rules: tuple[SuiteRule, ...] = ()
    # Labels published beside the data (see LabelFeed); None: the source has none.
    labels: LabelFeed | None = None
    # What a successful live extraction covered in full (see CoverageFeed); None: the source states nothing.
    coverage: CoverageFeed | None = None

    def __post_init__(self) -> None:
        if self.period_column is not None and self.period_column not in self.table.columns:
            raise ValueError(f"source {self.name}: period column {self.period_column!r} is not a column of "
                             f"{self.table.name}")
        if self.load_order_column is not None and self.load_order_column not in self.table.columns:
            raise ValueError(f"source {self.name}: load order column {self.load_order_column!r} is not a column of "
                             f"{self.table.name}")
        if missing := sorted(c for c in self.scope_columns.values() if c not in self.table.columns):
            raise ValueError(f"source {self.name}: scope column(s) {', '.join(missing)} not column(s) of "
                             f"{self.table.name}")
        if self.scope_columns and self.request_scope is None:
            raise ValueError(f"source {self.name}: scope_columns need a request_scope")
        if self.fetch is not None and self.endpoint is None:
            raise ValueError(f"source {self.name}: a live request plan needs an endpoint")
        if self.wire_groups is not None and self.wire_groups.column not in self.transform_key:
            raise ValueError(f"source {self.name}: wire group column {self.wire_groups.column!r} is not "
                             f"part of its transform_key {self.transform_key}")
        if self.series_key and (self.wire_groups is None or not set(self.series_key) <= set(self.transform_key)):
            raise ValueError(f"source {self.name}: series_key {self.series_key} needs wire_groups and must be "
                             f"part of its transform_key {self.transform_key}")

    def extension_of(self, kind: str) -> str:
        """The extension a payload of `kind` is landed with: the data's, the label feed's or the coverage's."""
        if kind == "data":
            return self.extension
        for feed in (self.labels, self.coverage):
            if feed is not None and feed.kind == kind:
                return feed.extension
        raise ValueError(f"source {self.name}: no payload kind {kind!r}")

    @property
    def endpoint_env(self) -> str | None:
        """The environment variable that overrides the live service's base URL."""
        return self.endpoint.env if self.endpoint else None

    def next_watermark(self, newest: str | None) -> str | None:
        """Where the next live request starts, given the newest period loaded (None: from the start)."""
        if newest is None or self.watermark is None:
            return None
        return self.watermark(newest)
