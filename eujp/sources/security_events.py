"""EU–Japan security and defence co-operation events: a curated CSV, one dated event per row with its page.

Live: the file versioned in this repository (a file:// URL) by default; EUJP_EVENTS_URL may name an http(s)
URL of the file instead (a conditional GET). Every payload is the whole file: it replaces the previous
extract (`replace_scope=()`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from eujp.config import BUNDLED_SNAPSHOT_DIR
from eujp.errors import ExtractError
from eujp.http import EXPECT_CSV
from eujp.landing import RawPayload
from eujp.live import Endpoint, LiveContext
from eujp.parse.events import parse_events_csv
from eujp.schema import Table
from eujp.sources.base import Source
from transforms import security_events as transform

TABLE = Table(
    name="fact_security_events",
    description="Dated EU–Japan security and defence co-operation events (curated file, one source URL per row).",
    columns=transform.COLUMNS,
    natural_key=transform.NATURAL_KEY,
    column_docs={
        "event_id": "Deterministic id: sha1 of event_date and title.",
        "event_date": "Date; for month or year precision, the first day of that period.",
        "date_precision": "day, month or year.",
        "event_type": "agreement, dialogue, exercise, operation, export_control, statement, ...",
        "parties": "';'-separated ISO3 codes of the parties; EU (the Union itself), NATO, UN or WORLD "
        "(a measure aimed at all countries).",
        "title": "Short title.",
        "description": "One-sentence description (paraphrase).",
        "source_url": "Page the event was read from.",
        "source_title": "Title of that page.",
    },
)

ENDPOINT = Endpoint(
    "EUJP_EVENTS_URL", (BUNDLED_SNAPSHOT_DIR / "security_events.csv").as_uri(),
    "The curated events file; by default the copy versioned in this repository (file:// URL). "
    "Point it at an http(s) URL of the file (e.g. its raw URL on the git host) to fetch it.",
)


def fetch_events(ctx: LiveContext) -> list[RawPayload]:
    parts = urlsplit(ctx.base)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ExtractError(f"{ctx.source}: cannot read {ctx.base}: {exc}") from None
        return [RawPayload(source=ctx.source, name=path.name, data=data, url=ctx.base)]
    return ctx.conditional_get(ctx.base, Path(parts.path).name or "security_events.csv", expect=EXPECT_CSV)


SOURCE = Source(
    name="security_events",
    domain="defence",
    table=TABLE,
    wire_format="Curated events CSV (UTF-8)",
    parse=parse_events_csv,
    transform=transform.transform_events,
    suite_rules=transform.SUITE_RULES,
    snapshot_glob="security_events*.csv",
    extension="csv",
    cadence_days=31,
    description="EU–Japan security and defence co-operation events",
    endpoint=ENDPOINT,
    fetch=fetch_events,
    period_column="event_date",
    replace_scope=(),
)
