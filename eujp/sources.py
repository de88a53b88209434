"""The sources the pipeline reads: one entry each, naming its wire format, parser, transform and table.

Snapshot file names are the contract of a snapshot folder (`--snapshot-dir`): see README, 'Snapshot folder'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from eujp.parse import ParsedPayload
from eujp.parse.events import parse_events_csv
from eujp.parse.jsonstat import parse_jsonstat
from eujp.parse.oecd import parse_oecd_csv
from eujp.parse.sdmx_csv import parse_comext_csv
from eujp.parse.sipri import parse_sipri_register
from eujp.schema import (
    FACT_ARMS_TRANSFERS,
    FACT_EXPORT_RESTRICTIONS,
    FACT_GOODS_TRADE,
    FACT_GOODS_TRADE_PRODUCT,
    FACT_SECURITY_EVENTS,
    FACT_SERVICES_TRADE,
    Table,
)
from transforms.arms import transform_arms
from transforms.common import TransformResult
from transforms.events import transform_events
from transforms.goods import COMEXT_FACT_KEY, transform_goods_annual, transform_goods_product
from transforms.restrictions import transform_restrictions
from transforms.services import transform_services

# transform(wire_frame, source_name, source_version, countries) -> TransformResult
Transform = Callable[[pl.DataFrame, str, str | None, pl.DataFrame], TransformResult]


@dataclass(frozen=True)
class Source:
    name: str
    domain: str  # trade | defence | minerals
    table: Table
    wire_format: str
    snapshot_glob: str  # file name pattern inside a snapshot folder; several files are concatenated
    extension: str  # extension of landed raw payloads
    parse: Callable[[bytes], ParsedPayload]
    transform: Transform
    cadence_days: int  # how often the source publishes: stale (a freshness warning) when the last successful
    # extraction is older than this (eujp.freshness)
    description: str
    # What one payload replaces in the warehouse (see warehouse.upsert_fact): None = upsert by natural
    # key (sources that send slices, e.g. some periods); () = the source's whole previous extract.
    replace_scope: tuple[str, ...] | None = None
    # Wire columns that confine every interaction of the transform between rows (duplicates, pivots): rows
    # that differ in any of them never affect each other. When set, payloads are parsed and transformed one
    # at a time (eujp.pipeline.parse_and_transform), so memory follows the largest payload, not the sum;
    # the transform must stamp `source_version` as given on every valid row. () = whole-batch transform.
    transform_key: tuple[str, ...] = ()


SOURCES: tuple[Source, ...] = (
    Source(
        name="eurostat_goods",
        domain="trade",
        table=FACT_GOODS_TRADE,
        wire_format="Eurostat dissemination API, JSON-stat 2.0 (ext_lt_maineu)",
        snapshot_glob="eurostat_ext_lt_maineu*.json",
        extension="json",
        parse=parse_jsonstat,
        transform=transform_goods_annual,
        cadence_days=31,
        description="Annual EU trade in goods with Japan by EU aggregate",
    ),
    Source(
        name="comext_goods",
        domain="trade",
        table=FACT_GOODS_TRADE_PRODUCT,
        wire_format="Eurostat Comext DS-045409, SDMX-CSV",
        snapshot_glob="comext_ds045409*.csv",
        extension="csv",
        parse=parse_comext_csv,
        transform=transform_goods_product,
        cadence_days=31,
        description="Monthly EU trade by CN8 product",
        transform_key=COMEXT_FACT_KEY,
    ),
    Source(
        name="eurostat_services",
        domain="trade",
        table=FACT_SERVICES_TRADE,
        wire_format="Eurostat dissemination API, JSON-stat 2.0 (bop_its6_det)",
        snapshot_glob="eurostat_bop_its6_det*.json",
        extension="json",
        parse=parse_jsonstat,
        transform=transform_services,
        cadence_days=366,
        description="Annual EU trade in services with Japan",
    ),
    Source(
        name="sipri_arms",
        domain="defence",
        table=FACT_ARMS_TRANSFERS,
        wire_format="SIPRI trade register CSV (latin-1, preamble)",
        snapshot_glob="sipri_trade_register*.csv",
        extension="csv",
        parse=parse_sipri_register,
        transform=transform_arms,
        cadence_days=366,
        description="Arms transfers with Japan as supplier or recipient",
        replace_scope=(),
    ),
    Source(
        name="security_events",
        domain="defence",
        table=FACT_SECURITY_EVENTS,
        wire_format="Curated events CSV (UTF-8)",
        snapshot_glob="security_events*.csv",
        extension="csv",
        parse=parse_events_csv,
        transform=transform_events,
        cadence_days=31,
        description="EU–Japan security and defence co-operation events",
        replace_scope=(),
    ),
    Source(
        name="oecd_restrictions",
        domain="minerals",
        table=FACT_EXPORT_RESTRICTIONS,
        wire_format="OECD SDMX REST, CSV with labels",
        snapshot_glob="oecd_export_restrictions*.csv",
        extension="csv",
        parse=parse_oecd_csv,
        transform=transform_restrictions,
        cadence_days=366,
        description="Export restrictions on industrial raw materials",
        replace_scope=("period_year",),
    ),
)
SOURCES_BY_NAME: dict[str, Source] = {s.name: s for s in SOURCES}
DOMAINS: tuple[str, ...] = ("trade", "defence", "minerals")


def sources_for(domain: str) -> tuple[Source, ...]:
    return tuple(s for s in SOURCES if s.domain == domain)
