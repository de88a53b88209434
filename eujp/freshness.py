"""Freshness: how long ago each source was last extracted successfully, against how often it publishes.

Read from `etl_source_state` (maintained by the load step, see eujp.incremental): `last_success_at` is the
last run that loaded the source or confirmed it unchanged (304 / same checksum), `newest_period` the newest
period the warehouse holds for it. A source whose last successful extraction is older than its cadence
(`Source.cadence_days`: how often it publishes) is *stale*: the pipeline has missed at least one of its
publications. A source never extracted successfully is *never*. Both are warnings, not failures: the
warehouse is still consistent, only behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from eujp.incremental import SourceState
from eujp.sources import SOURCES, Source

OK, STALE, NEVER = "ok", "stale", "never"


@dataclass(frozen=True)
class Freshness:
    source: str
    cadence_days: int
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_status: str | None  # success | unchanged | failed (the last attempt)
    newest_period: str | None
    age_days: float | None  # since the last successful extraction
    status: str  # ok | stale | never
    warning: str | None

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("last_success_at", "last_attempt_at"):
            d[k] = d[k].isoformat(timespec="seconds") if d[k] else None
        d["age_days"] = None if self.age_days is None else round(self.age_days, 2)
        return d


def assess(states: Mapping[str, SourceState | None], now: datetime,
           sources: Iterable[Source] = SOURCES) -> list[Freshness]:
    """One Freshness per source, in registry order. `now` is timezone-aware (the run's time, or the end
    of the day an as-of rebuild reconstructs)."""
    if now.tzinfo is None:
        raise ValueError("freshness needs a timezone-aware 'now'")
    out = []
    for source in sources:
        state = states.get(source.name)
        last = _aware(state.last_success_at) if state else None
        attempt = _aware(state.last_attempt_at) if state else None
        newest = state.newest_period if state else None
        if last is None:
            age, status = None, NEVER
            tried = f" (last attempt {attempt:%Y-%m-%d %H:%M} UTC: {state.last_status})" if attempt else ""
            warning = f"{source.name}: never extracted successfully{tried}"
        else:
            age = max((now - last).total_seconds(), 0.0) / 86400
            if age > source.cadence_days:
                status = STALE
                warning = (f"{source.name}: last successful extraction {age:.1f} days ago "
                           f"({last:%Y-%m-%d %H:%M} UTC), older than its {source.cadence_days}-day cadence; "
                           f"newest period held: {newest or 'none'}")
            else:
                status, warning = OK, None
        out.append(Freshness(source.name, source.cadence_days, last, attempt,
                             state.last_status if state else None, newest, age, status, warning))
    return out


def read_states(warehouse_path: Path) -> dict[str, SourceState]:
    """Every etl_source_state row of the warehouse (read-only); empty when there is no warehouse yet."""
    if not Path(warehouse_path).exists():
        return {}
    import duckdb

    from eujp.warehouse import read_source_state

    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        states = {s.name: read_source_state(conn, s.name) for s in SOURCES}
    return {k: v for k, v in states.items() if v is not None}


def warehouse_freshness(warehouse_path: Path, now: datetime | None = None) -> list[Freshness]:
    return assess(read_states(warehouse_path), now or datetime.now(UTC))


def warnings(items: Iterable[Freshness]) -> list[str]:
    return [f.warning for f in items if f.warning]


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
