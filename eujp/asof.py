"""As-of rebuilds: the warehouse as it stood at the end of a past day, from the raw landing zone alone.

What "the state of day D" means: every daily run landed what each source delivered under
`raw/{source}/{day}/` (the day of the run), then upserted it into the warehouse. Live extraction is
incremental (a watermark re-reads only recent periods; a 304 lands nothing), so one day's landing is not
the whole picture: the warehouse of day D is the result of loading, in order, every landing on or before D.
A rebuild therefore *replays* each source's landings up to D, oldest first, into an empty warehouse:

- consecutive landing days with identical content (same set of payload checksums, landed in the same order:
  a snapshot landed every day, a source that did not change) are loaded once: a landing is skipped as a repeat
  only of the content last *applied* for its source (`Replay`), so one repeating a landing whose step was not
  applied (its audit failed) or whose load failed is replayed, as the next daily run loaded it;
- a day on which several runs landed payloads is replayed landing by landing, in the order they landed
  (eujp.landing.read_landed, eujp.stream.transform_landings): a later landing supersedes an earlier one; content that changes and changes back (A, B, A) is
  replayed as such, because B changed the warehouse in between; a landing of such a day that fails to parse
  or transform is left out (its run failed the source and loaded nothing of it), the others applied, and
  the rebuild reports it as an error naming the landing day;
- a day without a landing for a source is a day on which nothing new came (304 or no run): nothing to do;
- sources with nothing landed on or before D are missing from the rebuilt warehouse (reported).

Each replay step is a normal raw-mode load (parse, transform, validate, load, audit) with the same code
as today's runs, so a rebuild reproduces the past content with today's transforms and suites; a step whose
audit fails is not applied, as the original run would not have been promoted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from eujp.config import warehouse_files_dir
from eujp.landing import landed_days, landing_order
from eujp.sources import SOURCES, Source
from eujp.storage import ObjectStore


@dataclass(frozen=True)
class Landing:
    """One source's landing on one day: its payload checksums and when the newest of them was fetched."""

    source: str
    day: date
    checksums: frozenset[str]
    fetched_at: datetime | None
    # the day's landings in landing order (eujp.landing.landing_order): two days holding the same payloads
    # landed in another order do not leave the same warehouse
    order: tuple[tuple[str, ...], ...] = ()
    # when each payload was fetched (its .meta.json's fetched_at): checksum -> time
    fetched: Mapping[str, datetime] = field(default_factory=dict, compare=False)

    def fetched_of(self, checksums: Iterable[str] | None) -> datetime | None:
        """When the newest of `checksums` (None: of all the day's payloads) was fetched; None when none says."""
        if checksums is None:
            return self.fetched_at
        times = [self.fetched[c] for c in checksums if c in self.fetched]
        return max(times) if times else None

    @property
    def content(self) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
        return self.checksums, self.order


@dataclass(frozen=True)
class ReplayStep:
    day: date
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ReplayPlan:
    as_of: date
    steps: tuple[ReplayStep, ...]  # oldest first
    history: dict[str, tuple[Landing, ...]]  # per source: every landing on or before as_of, oldest first
    missing: tuple[str, ...]  # sources with nothing landed on or before as_of

    @property
    def loads(self) -> int:
        return sum(len(s.sources) for s in self.steps)


class Replay:
    """A plan's steps, decided one landing day at a time as the replay goes: a source's landing is replayed
    unless its content is that of the landing last applied for it (`applied`, which the caller reports after
    each step). A step whose audit fails is not applied, nor a source whose load failed in it: the next
    landing of the same content is then replayed (the original runs loaded it then), not dropped as a repeat.
    When every step applies, the steps are `ReplayPlan.steps`."""

    def __init__(self, history: dict[str, tuple[Landing, ...]]):
        self.history = history
        self.applied: dict[str, Landing] = {}  # per source: the landing whose content the warehouse holds
        # per source: the checksums of the payloads whose rows its applied step loaded (absent: every one of
        # the day's; a step leaves out a landing that fails, as its run did)
        self.loaded: dict[str, frozenset[str]] = {}

    def __iter__(self) -> Iterator[ReplayStep]:
        for day in sorted({landing.day for history in self.history.values() for landing in history}):
            names = tuple(name for name, history in self.history.items() for landing in history
                          if landing.day == day and (name not in self.applied
                                                     or landing.content != self.applied[name].content))
            if names:
                yield ReplayStep(day, names)

    def apply(self, day: date, sources: Iterable[str], loaded: Mapping[str, Iterable[str]] | None = None) -> None:
        """The step of `day` was applied for `sources` (loaded, its audit passed); `loaded`: per source, the
        checksums of the payloads whose rows it loaded (SourceBatch.fetched; absent or empty: all the day's)."""
        for name in sources:
            self.applied[name] = next(landing for landing in self.history[name] if landing.day == day)
            checksums = frozenset((loaded or {}).get(name, ()))
            if checksums:
                self.loaded[name] = checksums
            else:
                self.loaded.pop(name, None)

    @property
    def loaded_days(self) -> dict[str, date]:
        """Per source, the landing day of its last applied step (stamp_extraction_times)."""
        return {name: landing.day for name, landing in self.applied.items()}


def landings(store: ObjectStore, source: str, until: date) -> list[Landing]:
    """The source's landings on or before `until`, oldest first (days whose folder holds no payload are
    skipped)."""
    out = []
    for day in landed_days(store, source):
        if day > until:
            break
        keys = store.list_keys(f"raw/{source}/{day.isoformat()}")
        metas = [k for k in keys if k.endswith(".meta.json")]
        if not metas:
            continue
        checksums, fetched = set(), {}
        for key in metas:
            meta = json.loads(store.get_bytes(key))
            checksums.add(meta["sha256"])
            if meta.get("fetched_at"):
                fetched[meta["sha256"]] = _parse_ts(meta["fetched_at"])
        out.append(Landing(source, day, frozenset(checksums), max(fetched.values()) if fetched else None,
                           tuple(landing_order(store, keys)), fetched))
    return out


def landed_by(store: ObjectStore, sources: Iterable[str], day: date) -> bool:
    """Whether any of `sources` landed a payload on or before `day`: else a rebuild of `day` has no state to
    rebuild (`eujp run --as-of` refuses it in its preflight, before Prefect starts)."""
    for source in sources:
        for key in store.list_keys(f"raw/{source}"):
            parts = key.split("/")
            if len(parts) > 3 and key.endswith(".meta.json") and date.fromisoformat(parts[2]) <= day:
                return True
    return False


def replay_plan(store: ObjectStore, as_of: date, sources: Iterable[Source] = SOURCES) -> ReplayPlan:
    """Which source to load from which landing day, in order, to rebuild the warehouse of `as_of`."""
    histories: dict[str, tuple[Landing, ...]] = {}
    missing = []
    for source in sources:
        history = landings(store, source.name, as_of)
        if not history:
            missing.append(source.name)
            continue
        histories[source.name] = tuple(history)
    replay, steps = Replay(histories), []
    for step in replay:  # every step applied: new content (or back to older content) is replayed
        steps.append(step)
        replay.apply(step.day, step.sources)
    return ReplayPlan(as_of, tuple(steps), histories, tuple(missing))


def end_of_day(day: date) -> datetime:
    """The instant a day ends (UTC): the 'now' of an as-of rebuild."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def not_a_rebuild(target: Path) -> str | None:
    """Why an as-of rebuild must not write over `target`, or None: a missing file, a warehouse no run wrote
    into, or one an as-of rebuild wrote: it holds the rebuild's mark (etl_rebuild, `mark_rebuild`), which
    daily runs never create, and every run it records is one of that rebuild's replay steps
    ({run_id}-YYYYMMDD). A file holding other runs is a warehouse that runs built, the live one say, named by
    --warehouse by mistake: replacing it with a past state would have the next daily run build on that. The
    mark, not the shape of the run ids, tells the two apart: a daily run may be given any run id
    (`--run-id daily-20261205` ends in a day as a replay step's does)."""
    if not target.exists():
        return None
    import duckdb

    from eujp.schema import ETL_REBUILD
    from eujp.warehouse import table_exists

    try:
        with duckdb.connect(str(target), read_only=True) as conn:
            marked = table_exists(conn, ETL_REBUILD.name)
            # the newest run that is not a replay step of the rebuild that marked the file (unmarked: any run)
            foreign = "" if not marked else (
                f" WHERE NOT EXISTS (SELECT 1 FROM {ETL_REBUILD.name} m WHERE starts_with(r.run_id, m.run_id || '-')"
                " AND regexp_full_match(substr(r.run_id, length(m.run_id) + 2), '[0-9]{8}'))")
            run = conn.execute(f"SELECT run_id FROM etl_runs r{foreign} ORDER BY started_at DESC NULLS LAST "
                               "LIMIT 1").fetchone()
    except duckdb.Error as exc:
        return f"{target} exists and is not a warehouse an as-of rebuild wrote ({type(exc).__name__}: {exc})"
    if run is None:
        return None
    why = ("a run other than its replay steps wrote into it since" if marked else
           f"it has no as-of rebuild's mark, the table {ETL_REBUILD.name}")
    return (f"{target} is a warehouse that runs built (its last: {run[0]}), not one an as-of rebuild wrote "
            f"({why}): a rebuild never writes over it; name another file with --warehouse (the default is "
            "asof/warehouse-YYYY-MM-DD.duckdb in the live warehouse's files folder)")


def mark_rebuild(conn, run_id: str, as_of: date) -> None:
    """Mark the warehouse a rebuild wrote as one (etl_rebuild): `not_a_rebuild` lets the next rebuild replace
    it. Written last, into the private file the rebuild builds, before it is renamed over its target."""
    from eujp.schema import ETL_REBUILD
    from eujp.warehouse import create_tables

    create_tables(conn, [ETL_REBUILD])
    conn.execute(f"DELETE FROM {ETL_REBUILD.name}")
    conn.execute(f"INSERT INTO {ETL_REBUILD.name} (run_id, as_of, rebuilt_at) VALUES (?, ?, ?)",
                 [run_id, as_of, datetime.now(UTC)])


def default_warehouse(live_warehouse: Path, as_of: date) -> Path:
    """Where `eujp run --as-of` writes by default: asof/ in the live warehouse's files folder (var/asof/ for
    var/warehouse.duckdb: eujp.config.warehouse_files_dir), never over it."""
    return warehouse_files_dir(live_warehouse) / "asof" / f"warehouse-{as_of.isoformat()}.duckdb"


def last_confirmed(history: tuple[Landing, ...], loaded_day: date) -> Landing:
    """The newest landing that confirmed the content loaded on `loaded_day` (the source's last applied step):
    the later days that landed the same content were, in the original runs, successful extractions of an
    unchanged source (a replay skips them as repeats), even after a day whose landing failed to apply."""
    loaded = next(landing for landing in history if landing.day == loaded_day)
    return [landing for landing in history if landing.day >= loaded_day and landing.content == loaded.content][-1]


def stamp_extraction_times(conn, plan: ReplayPlan, loaded_days: dict[str, date],
                           loaded: Mapping[str, frozenset[str]] | None = None) -> None:
    """In a rebuilt warehouse, etl_source_state says when each source was *extracted* (landed), not when
    the rebuild replayed it, so freshness reads as it did on that day. `loaded_days`: per source, the
    landing day of its last successful replay step (absent: never loaded, last_success_at stays NULL);
    `loaded` (Replay.loaded): per source, the checksums of the payloads that step loaded. The last success is
    when the newest of those was fetched, not a landing of the day the step left out (it failed, as its run
    did); the last attempt, the day's newest landing, whatever became of it."""
    for source, history in plan.history.items():
        attempt = _landing_time(history[-1])
        day = loaded_days.get(source)
        success = _success_time(last_confirmed(history, day), (loaded or {}).get(source)) if day else None
        conn.execute(
            "UPDATE etl_source_state SET last_attempt_at = ?, "
            "last_success_at = CASE WHEN ? THEN ? ELSE NULL END WHERE source = ?",
            [attempt, success is not None, success, source],
        )


def _landing_time(landing: Landing) -> datetime:
    return landing.fetched_at or datetime.combine(landing.day, time(0), tzinfo=UTC)


def _success_time(landing: Landing, checksums: frozenset[str] | None) -> datetime:
    """When the newest of `checksums` (the payloads a step loaded; None: all) was fetched on `landing`'s day."""
    return landing.fetched_of(checksums) or _landing_time(landing)


def _parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
