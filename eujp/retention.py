"""Raw-zone retention (EUJP_RAW_RETENTION_DAYS): delete the landings that no retained day can need.

Every run lands what it extracted under `raw/{source}/{day}/` (eujp.landing), and nothing is ever deleted
there on its own; snapshot runs land their whole snapshot again each day. `prune_raw` is the explicit step
that deletes old landings: `eujp prune-raw [--dry-run]`, and the end of every successful publish when
EUJP_RAW_RETENTION_DAYS is set (unset: the raw zone is never pruned).

What must stay. The **retained days** are
  - every day within the window: today and the N days before it (N = EUJP_RAW_RETENTION_DAYS), and
  - the days of the runs still published under `runs/` (EUJP_KEEP_RUNS): the days of the landings their
    manifests list (`sources.*.raw_keys`), the day they were published and the day their run id names.
For each retained day D, `eujp run --from-raw D` needs the landings of D itself, and `eujp run --as-of D`
replays every landing on or before D, oldest first (eujp.asof.replay_plan). So a landing on a retained day is
never deleted, and an older one only when no as-of replay of a retained day can tell it is gone.

When is a landing L (of one source, on day d, not a retained day) not needed? Every retained day D >= d
replays L, and deleting it is invisible only if a later landing L' of the same source that every such
replay also loads, after L, undoes all that L did: L' on a day after d and on or before R, the first
retained day after d (at the latest, the oldest day of the window). That holds when L' holds exactly the
same payloads as L (the same sha256s, which the keys name): loading L' writes the same rows over the same
keys and the same replace scope as L did, so the warehouse after ...L...L' is the warehouse after ...L'
(`replay_plan` then loads L' where it skipped it as a repeat of L; the content is the same), and when the
day's payloads came in the same sequence of landings (eujp.landing.landing_order, as `replay_plan` compares
them): P and Q landed by two runs, Q superseding P, do not leave what P and Q landed together by one run
leave (a key both carry with different content is quarantined there and keeps its previous row). Landings
whose content differs are all kept, even for a source whose payloads replace its whole previous extract:
a later landing that fails to load (a drifted or truncated file) leaves the warehouse on L, so L is only
superseded by a landing known to load like it. In practice: the same file landed day after day (snapshot
runs, an unchanged source) shrinks to its last landing before the window; every distinct landing stays.
A folder holding payloads but no `.meta.json` (a landing cut off half-way) is not a landing for as-of or
--from-raw and is deleted when it is old enough.

Deleting a landing deletes its `.meta.json` files first, then its payloads: a prune cut off half-way leaves
payloads without metadata (ignored, deleted next time), never metadata without its payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from eujp.errors import EujpError
from eujp.landing import landing_order
from eujp.storage import ObjectStore

RETENTION_ENV = "EUJP_RAW_RETENTION_DAYS"
META_SUFFIX = ".meta.json"
# What the last prune kept (the days its window starts with, the days of the runs then published): at the
# store's root, beside latest.json, not under raw/ (whose keys are landings).
RECORD_KEY = "raw-retention.json"
_RUN_ID_DAY = re.compile(r"^(\d{8})T\d{6}Z")


@dataclass(frozen=True)
class LandingFolder:
    """`raw/{source}/{day}/`: one source's landing on one day (every object under it)."""

    source: str
    day: date
    keys: tuple[str, ...]
    checksums: frozenset[str]  # the payloads' sha256s, from their `{sha256}.meta.json` keys

    @property
    def prefix(self) -> str:
        return f"raw/{self.source}/{self.day.isoformat()}/"


@dataclass(frozen=True)
class Doomed:
    """A landing to delete, and why: `superseded_on` is the day of the later landing with the same payloads, in
    the same sequence of landings (None: a folder with no metadata, not a landing)."""

    folder: LandingFolder
    superseded_on: date | None

    def reason(self) -> str:
        if self.superseded_on is None:
            return "payloads without metadata (a landing cut off half-way)"
        return f"the same payloads were landed again on {self.superseded_on.isoformat()}"


@dataclass
class RawPrunePlan:
    today: date
    retention_days: int
    run_days: dict[date, tuple[str, ...]]  # days of the published runs -> their run ids
    doomed: list[Doomed] = field(default_factory=list)
    kept: list[LandingFolder] = field(default_factory=list)
    deleted: bool = False  # True once `prune_raw` deleted the objects (not a dry run)

    @property
    def window_start(self) -> date:
        """The oldest day of the window: landings on or after it are always kept."""
        return self.today - timedelta(days=self.retention_days)

    @property
    def keys(self) -> list[str]:
        return [k for d in self.doomed for k in d.folder.keys]

    def retained(self, day: date) -> bool:
        return day >= self.window_start or day in self.run_days

    def summary(self) -> str:
        verb = "deleted" if self.deleted else "to delete"
        runs = ", ".join(d.isoformat() for d in sorted(self.run_days)) or "none"
        return (f"{len(self.doomed)} landing(s), {len(self.keys)} object(s) {verb}; {len(self.kept)} landing(s) "
                f"kept (window: {self.window_start.isoformat()} on; days of published runs: {runs})")


def raw_landings(store: ObjectStore) -> dict[str, list[LandingFolder]]:
    """Every `raw/{source}/{day}/` folder of the store, per source, oldest first (one listing). Keys that do
    not have that shape are left out: they are never deleted."""
    grouped: dict[tuple[str, date], list[str]] = {}
    for key in store.list_keys("raw"):
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != "raw":
            continue
        try:
            day = date.fromisoformat(parts[2])
        except ValueError:
            continue
        if parts[2] != day.isoformat():  # e.g. 20260302: not a folder this code writes
            continue
        grouped.setdefault((parts[1], day), []).append(key)
    out: dict[str, list[LandingFolder]] = {}
    for (source, day), keys in sorted(grouped.items()):
        checksums = frozenset(k.rsplit("/", 1)[1].removesuffix(META_SUFFIX) for k in keys if k.endswith(META_SUFFIX))
        out.setdefault(source, []).append(LandingFolder(source, day, tuple(sorted(keys)), checksums))
    return out


def published_run_days(store: ObjectStore) -> dict[date, tuple[str, ...]]:
    """The days of the runs still published under `runs/` (those with a manifest): the days of the landings
    their manifests list, the day each was published and the day its run id names. A manifest that cannot
    be read stops the prune (EujpError): deleting without knowing what a run needs is not an option."""
    run_ids = sorted({k.split("/")[1] for k in store.list_keys("runs") if k.count("/") >= 2})
    days: dict[date, set[str]] = {}
    for run_id in run_ids:
        key = f"runs/{run_id}/manifest.json"
        if not store.exists(key):  # a publish that failed before its manifest: not a published run
            continue
        try:
            manifest = json.loads(store.get_bytes(key))
            found = set(_manifest_days(manifest))
        except (ValueError, TypeError, AttributeError) as exc:
            raise EujpError(f"raw retention: cannot read {store.uri}/{key} ({type(exc).__name__}: {exc}), so "
                            "which landings its run needs is unknown: nothing was pruned") from exc
        match = _RUN_ID_DAY.match(run_id)
        if match:
            found.add(datetime.strptime(match.group(1), "%Y%m%d").date())
        for day in found:
            days.setdefault(day, set()).add(run_id)
    return {day: tuple(sorted(ids)) for day, ids in sorted(days.items())}


def _manifest_days(manifest: dict) -> Iterable[date]:
    if manifest.get("published_at"):
        yield datetime.fromisoformat(manifest["published_at"]).astimezone(UTC).date()
    for source in (manifest.get("sources") or {}).values():
        for key in source.get("raw_keys") or ():
            parts = key.split("/")
            if len(parts) == 4 and parts[0] == "raw":
                yield date.fromisoformat(parts[2])


def plan_raw_prune(store: ObjectStore, retention_days: int, *, today: date | None = None) -> RawPrunePlan:
    """What `prune_raw` would delete, and why (see the module docstring); deletes nothing."""
    if retention_days < 1:
        raise ValueError(f"{RETENTION_ENV} must be at least 1, got {retention_days}")
    plan = RawPrunePlan(today or datetime.now(UTC).date(), retention_days, published_run_days(store))
    retained_days = sorted(plan.run_days)
    orders: dict[str, tuple[tuple[str, ...], ...] | None] = {}

    def order(folder: LandingFolder) -> tuple[tuple[str, ...], ...] | None:
        """The folder's landings in landing order (eujp.landing.landing_order), None when a record of them
        cannot be read (then no folder is the same as it)."""
        if folder.prefix not in orders:
            try:
                orders[folder.prefix] = tuple(landing_order(store, list(folder.keys)))
            except EujpError:
                orders[folder.prefix] = None
        return orders[folder.prefix]

    def same(a: LandingFolder, b: LandingFolder) -> bool:
        # the same payloads in the same sequence of landings: {P},{Q} (two runs) is not {P, Q} (one run, where a
        # key P and Q both carry conflicts and keeps its previous row), as eujp.asof.Landing.content tells
        return a.checksums == b.checksums and order(a) is not None and order(a) == order(b)

    for folders in raw_landings(store).values():
        for i, folder in enumerate(folders):
            if plan.retained(folder.day):
                plan.kept.append(folder)
                continue
            if not folder.checksums:
                plan.doomed.append(Doomed(folder, None))
                continue
            # The first retained day after this one: every replay of a retained day replays what lies before it.
            bound = min([d for d in retained_days if d > folder.day] + [plan.window_start])
            later = next((f for f in folders[i + 1:] if f.day <= bound and same(f, folder)), None)
            if later is None:
                plan.kept.append(folder)
            else:
                plan.doomed.append(Doomed(folder, later.day))
    return plan


def prune_raw(store: ObjectStore, retention_days: int, *, today: date | None = None,
              dry_run: bool = False) -> RawPrunePlan:
    """Delete the landings no retained day needs (`plan_raw_prune`): every `.meta.json` first, then the
    payloads; then record which days the prune kept (`RECORD_KEY`, read by `unretained_day`). `dry_run`: only
    the plan."""
    plan = plan_raw_prune(store, retention_days, today=today)
    if dry_run:
        return plan
    keys = plan.keys
    if keys:
        store.put_bytes(RECORD_KEY, json.dumps({
            "pruned_on": plan.today.isoformat(), "retention_days": plan.retention_days,
            "window_start": plan.window_start.isoformat(),
            "published_run_days": sorted(d.isoformat() for d in plan.run_days)}, indent=1).encode(),
            "application/json")
        store.delete([k for k in keys if k.endswith(META_SUFFIX)])
        store.delete([k for k in keys if not k.endswith(META_SUFFIX)])
    plan.deleted = True
    return plan


def unretained_day(store: ObjectStore, day: date) -> str | None:
    """Why `day`'s state can no longer be rebuilt from the raw zone (`--from-raw`, `--as-of`), or None: the
    last prune that deleted landings (its record, RECORD_KEY) kept every landing the days from its window on
    and the days of the runs then published need; an older day is none of them, so its landings, or those an
    as-of replay of it needs, may be gone. No record: the raw zone was never pruned."""
    if not store.exists(RECORD_KEY):
        return None
    record = json.loads(store.get_bytes(RECORD_KEY))
    kept = RawPrunePlan(date.fromisoformat(record["pruned_on"]), record["retention_days"],
                        {date.fromisoformat(d): () for d in record["published_run_days"]})
    if kept.retained(day):  # the prune's own rule
        return None
    window = kept.window_start
    runs = ", ".join(record["published_run_days"]) or "none"
    # the retention came from EUJP_RAW_RETENTION_DAYS or `eujp prune-raw --days`: the record says how long, not which
    return (f"the raw zone was pruned on {record['pruned_on']} with a retention of {record['retention_days']} "
            "day(s): it "
            f"keeps what the days from {window.isoformat()} on and the days of the runs then published ({runs}) "
            f"need, and {day.isoformat()} is none of them, so landings its state needs may be gone; rebuild a "
            "retained day instead")
