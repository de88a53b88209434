"""Recorded responses of the live sources installed on a ReplayServer, and helpers that derive fault payloads
from them.

Each source's recording is `tests/sources/<source>/recording.json` (what the replay server answers for the
source's live request: path, method, headers, body; see tests/fixtures/http/README.md); a source without one
has no live tests. RECORDINGS maps the registered sources' names to their recordings.
"""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
import threading
import uuid
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from eujp.sources import SOURCES
from support.replay_server import ReplayServer, Reply, Responder, Seen

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
FIXTURES = TESTS / "fixtures" / "http"


def recording_path(source_name: str) -> Path:
    return TESTS / "sources" / source_name / "recording.json"


RECORDINGS: dict[str, dict] = {
    s.name: json.loads(recording_path(s.name).read_text(encoding="utf-8"))
    for s in SOURCES if recording_path(s.name).is_file()
}


def sliced(rec: dict) -> bool:
    """A recording answered per request from recorded rows (a `path_prefix` and `bodies`), not one body."""
    return "path_prefix" in rec


def body(source: str) -> bytes:
    """The recorded body of a single-request source, as the service sends it (envelope included)."""
    rec = RECORDINGS[source]
    data = (REPO / rec["body"]).read_bytes()
    if rec.get("envelope") == "json_base64_bytes":
        return json.dumps({"bytes": base64.b64encode(data).decode("ascii")}).encode()
    return data


def payload_bytes(source: str) -> bytes:
    """The bytes the pipeline should land for a single-request source (the envelope removed)."""
    return (REPO / RECORDINGS[source]["body"]).read_bytes()


def reply(source: str, **changes) -> Reply:
    rec = RECORDINGS[source]
    fields = {"status": 200, "body": body(source), "headers": dict(rec["headers"]), "gzip": rec.get("gzip", False)}
    fields.update(changes)
    return Reply(**fields)


def env_for(server: ReplayServer) -> dict[str, str]:
    """The EUJP_*_URL variables (each recorded source's `endpoint_env`) pointing every source at the replay
    server: its root, or the recorded path when the recording says `"endpoint": "path"` (the service's
    base URL is the resource itself)."""
    env = {}
    for source in SOURCES:
        rec = RECORDINGS.get(source.name)
        if rec is not None and source.endpoint_env:
            env[source.endpoint_env] = server.url + (rec["path"] if rec.get("endpoint") == "path" else "")
    return env


def _last_update(row: list[str]) -> datetime:
    """An SDMX-CSV row's `LAST UPDATE` (dd/mm/yy HH:MM:SS, Eurostat's time: taken as UTC here)."""
    return datetime.strptime(row[1], "%d/%m/%y %H:%M:%S").replace(tzinfo=UTC)


class ComextReplay:
    """Answers Comext data requests from the recorded SDMX-CSV files: the rows whose TIME_PERIOD lies in
    [startPeriod, endPeriod] and whose product is in the key (reporter/partner are not filtered: the rows
    are replayed as recorded) and, with `updatedAfter`, whose LAST UPDATE is later (a revised row is updated
    when it is revised). More than `max_months` months: 413 EXTRACTION_TOO_BIG, as the service documents. No
    rows: 404 with fault 100 'No Results Found'. The structure API: the product codelist (`codelist`) and the
    dataflow, whose UPDATE_DATA annotation is `update_data` (the newest LAST UPDATE, or the last revision)."""

    def __init__(self, rec: dict) -> None:
        self.headers = dict(rec["headers"])
        self.structure_headers = dict(rec["structure_headers"])
        self.codelist_path, self.dataflow_path = rec["codelist_path"], rec["dataflow_path"]
        self.codelist = (REPO / rec["codelist"]).read_bytes()
        self.dataflow_template = (REPO / rec["dataflow"]).read_text(encoding="utf-8")
        self.max_months = rec["max_months_per_request"]
        self.too_big = (REPO / rec["too_big"]).read_bytes()
        self.no_results = (REPO / rec["no_results"]).read_bytes()
        self.header_line = b""
        self.rows: list[bytes] = []
        for path in rec["bodies"]:
            lines = (REPO / path).read_bytes().splitlines(keepends=True)
            self.header_line = lines[0]
            self.rows += lines[1:]
        self.revised: dict[tuple[str, str, str], bytes] = {}  # (product, period, indicator) -> new OBS_VALUE
        self.revised_at: datetime | None = None  # when `revised` was last changed (see `revise`)
        self.update_data: datetime = max(_last_update(r.decode().split(",")) for r in self.rows)
        self.no_results_status = 404  # a test may make it 204 No Content

    def revise(self, key: tuple[str, str, str], value: bytes) -> None:
        """Revise one observation now: its row and the dataflow's UPDATE_DATA say so."""
        self.revised[key] = value
        self.revised_at = self.update_data = datetime.now(UTC)

    def structure(self, seen: Seen) -> Reply | None:
        if seen.path == self.codelist_path:
            return Reply(200, self.codelist, self.structure_headers)
        if seen.path == self.dataflow_path:
            stamp = self.update_data.strftime("%Y-%m-%dT%H:%M:%S%z")
            return Reply(200, self.dataflow_template.replace("{update_data}", stamp).encode(),
                         self.structure_headers)
        return None

    @staticmethod
    def months(start: str, end: str) -> int:
        (y1, m1), (y2, m2) = (map(int, start.split("-")), map(int, end.split("-")))
        return (y2 * 12 + m2) - (y1 * 12 + m1) + 1

    def __call__(self, seen: Seen) -> Reply:
        structure = self.structure(seen)
        if structure is not None:
            return structure
        start, end = seen.param("startPeriod"), seen.param("endPeriod")
        after = seen.param("updatedAfter")
        after = datetime.fromisoformat(after) if after else None
        if self.months(start, end) > self.max_months:
            return Reply(413, self.too_big, {"Content-Type": "application/xml"})
        products = seen.path.rsplit("/", 1)[1].split(".")[3]
        wanted = set(products.split("+")) if products else None
        out = []
        for line in self.rows:
            f = line.decode().rstrip("\r\n").split(",")
            if start <= f[8] <= end and (wanted is None or f[5] in wanted):
                key = (f[5], f[8], f[7])
                updated = _last_update(f)
                if key in self.revised:
                    f[9] = self.revised[key].decode()
                    updated = self.revised_at or updated
                    f[1] = updated.strftime("%d/%m/%y %H:%M:%S")
                    line = (",".join(f) + "\r\n").encode()
                if after is None or updated > after:
                    out.append(line)
        if not out:
            if self.no_results_status == 204:
                return Reply(204, b"", {})
            return Reply(404, self.no_results, {"Content-Type": "application/xml"})
        return Reply(200, self.header_line + b"".join(out), self.headers)


class AsyncComext:
    """Comext's data requests answered as Eurostat's asynchronous delivery answers them (eujp.eurostat_async): of
    the answers `replay` (a ComextReplay, or any Comext responder) gives, a request `deliver_async(seen)` picks gets a `queued` ticket (HTTP 200) instead of its data, the answer
    `replay` would give it is kept under the ticket's key, the key's status (`…/1.0/async/status/{key}`)
    follows `statuses` (the last one repeats), and its data (`…/1.0/async/data/{key}`) is the kept answer,
    zipped or gzipped with `packed` ("zip", "gzip"), or the DATA_NOT_YET_AVAILABLE fault while the status is
    not AVAILABLE. `forget` makes the service answer UNKNOWN_REQUEST for every key it issued."""

    API = "/api/comext/dissemination"

    def __init__(self, replay: Responder, statuses=("SUBMITTED", "PROCESSING", "AVAILABLE"), *,
                 deliver_async: Callable[[Seen], bool] = lambda seen: True, packed: str | None = None) -> None:
        self.replay, self.statuses, self.deliver_async, self.packed = replay, list(statuses), deliver_async, packed
        self.kept: dict[str, Reply] = {}
        self.asked: dict[str, int] = {}  # key -> status requests so far
        self.forget = False
        self._lock = threading.Lock()

    def install(self, server: ReplayServer, path_prefix: str) -> None:
        server.respond(path_prefix, self.data_request, prefix=True)
        server.respond(f"{self.API}/1.0/async/status/", self.status, prefix=True)
        server.respond(f"{self.API}/1.0/async/data/", self.data, prefix=True)

    def data_request(self, seen: Seen) -> Reply:
        answer = self.replay(seen)
        if answer.status == 413 or not self.deliver_async(seen):  # the cost is judged first: a 413 stays one
            return answer
        with self._lock:
            key = str(uuid.uuid4())
            self.kept[key], self.asked[key] = answer, 0
        body = (FIXTURES / "eurostat_async_queued.xml").read_text().replace("{key}", key)
        return Reply(200, body.encode(), {"Content-Type": "application/xml"})

    def _state(self, key: str) -> str | None:
        if self.forget or key not in self.kept:
            return None
        return self.statuses[min(self.asked[key], len(self.statuses)) - 1] if self.asked[key] else self.statuses[0]

    def status(self, seen: Seen) -> Reply:
        key = seen.path.rsplit("/", 1)[1]
        with self._lock:
            if key in self.asked:
                self.asked[key] += 1
            state = self._state(key)
        if state is None:
            return Reply(400, (FIXTURES / "eurostat_fault_unknown_request.xml").read_bytes(),
                         {"Content-Type": "application/xml"})
        body = (FIXTURES / "eurostat_async_status.xml").read_text().replace("{key}", key).replace("{status}", state)
        return Reply(200, body.encode(), {"Content-Type": "application/xml"})

    def data(self, seen: Seen) -> Reply:
        key = seen.path.rsplit("/", 1)[1]
        with self._lock:
            state = self._state(key)
        if state is None:
            return Reply(400, (FIXTURES / "eurostat_fault_unknown_request.xml").read_bytes(),
                         {"Content-Type": "application/xml"})
        if state != "AVAILABLE":
            return Reply(400, (FIXTURES / "eurostat_fault_data_not_yet_available.xml").read_bytes(),
                         {"Content-Type": "application/xml"})
        answer = self.kept[key]
        if answer.status != 200 or self.packed is None:
            return answer
        if self.packed == "gzip":
            return Reply(200, gzip.compress(answer.body), {"Content-Type": "application/octet-stream"})
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{key}.csv", answer.body)
        return Reply(200, archive.getvalue(), {"Content-Type": "application/zip"})


def install(server: ReplayServer) -> dict[str, ComextReplay]:
    """Every source's recording on `server`; returns the responders of the sliced recordings by source name
    (to inspect or revise)."""
    responders = {}
    for source, rec in RECORDINGS.items():
        if sliced(rec):
            responders[source] = ComextReplay(rec)
            server.respond(rec["path_prefix"], responders[source], prefix=True)
            for path in (rec["codelist_path"], rec["dataflow_path"]):
                server.respond(path, responders[source])
        else:
            server.route(rec["path"], reply(source))
    return responders


def jsonstat_doc(source: str) -> dict:
    return json.loads(payload_bytes(source))


def with_new_dimension(doc: dict, dim_id: str = "unit", codes: tuple[str, ...] = ("MIO_EUR", "MIO_USD"),
                       before: str = "time") -> dict:
    """The same JSON-stat dataset with one more dimension (inserted before `before`): every observation
    appears once per new code (the second code's value x1.1), as if the service had added a breakdown."""
    doc = copy.deepcopy(doc)
    ids, sizes = doc["id"], doc["size"]
    pos = ids.index(before)
    inner = 1
    for s in sizes[pos:]:
        inner *= s
    n = len(codes)
    values, status = {}, {}
    for key, v in doc["value"].items():
        outer, rest = divmod(int(key), inner)
        for c in range(n):
            new_key = str((outer * n + c) * inner + rest)
            values[new_key] = v if c == 0 else round(v * 1.1, 1)
            if key in (doc.get("status") or {}):
                status[new_key] = doc["status"][key]
    doc["value"], doc["status"] = values, status
    doc["id"] = [*ids[:pos], dim_id, *ids[pos:]]
    doc["size"] = [*sizes[:pos], n, *sizes[pos:]]
    doc["dimension"][dim_id] = {"label": "Unit of measure",
                                "category": {"index": {c: i for i, c in enumerate(codes)},
                                             "label": {c: c for c in codes}}}
    return doc


def with_value(doc: dict, flat_index: int, value: float) -> dict:
    doc = copy.deepcopy(doc)
    doc["value"][str(flat_index)] = value
    return doc


def jsonstat_since(doc: dict, since: str) -> dict:
    """The JSON-stat dataset restricted to the periods from `since` on (the `time` dimension re-indexed), as the
    statistics API answers `sinceTimePeriod`. Extensions keyed by flat index are dropped."""
    doc = copy.deepcopy(doc)
    ids, sizes = doc["id"], list(doc["size"])
    t = ids.index("time")
    cat = doc["dimension"]["time"]["category"]
    index = cat["index"]
    codes = sorted(index, key=index.get) if isinstance(index, dict) else list(index)
    keep = [c for c in codes if c >= since]
    new_sizes = [*sizes[:t], len(keep), *sizes[t + 1:]]

    def positions(flat: int, dims: list[int]) -> list[int]:
        out = []
        for size in reversed(dims):
            flat, pos = divmod(flat, size)
            out.append(pos)
        return out[::-1]

    def flat_of(pos: list[int], dims: list[int]) -> int:
        flat = 0
        for p, size in zip(pos, dims, strict=True):
            flat = flat * size + p
        return flat

    new_time = {c: i for i, c in enumerate(keep)}
    for part in ("value", "status"):
        old = doc.get(part) or {}
        if isinstance(old, list):
            raise TypeError("dense JSON-stat arrays are not handled here")
        new = {}
        for key, v in old.items():
            pos = positions(int(key), sizes)
            code = codes[pos[t]]
            if code in new_time:
                pos[t] = new_time[code]
                new[str(flat_of(pos, new_sizes))] = v
        if part in doc:
            doc[part] = new
    doc["size"] = new_sizes
    cat["index"] = new_time
    if "label" in cat:
        cat["label"] = {c: cat["label"][c] for c in keep if c in cat["label"]}
    for key in ("provenance", "positions-with-no-data"):
        (doc.get("extension") or {}).pop(key, None)
    return doc


def csv_between(data: bytes, start: str | None, end: str | None, column: str = "TIME_PERIOD") -> bytes:
    """The CSV rows whose `column` lies in [start, end] (either open), as an SDMX service answers
    startPeriod/endPeriod."""
    import polars as pl

    frame = pl.read_csv(data, infer_schema=False)
    if start:
        frame = frame.filter(pl.col(column) >= start)
    if end:
        frame = frame.filter(pl.col(column) <= end)
    return frame.write_csv().encode()


def by_representation(source: str, period_param: str) -> Responder:
    """A responder for a single-request source that answers what the request asks for: the recorded body
    restricted to the periods from `period_param` on (JSON-stat `sinceTimePeriod` or SDMX `startPeriod`), with
    an ETag of that representation, as a real server's: one URL's validators never match another URL's
    answer (the replay server answers 304 when If-None-Match matches)."""
    import hashlib

    def respond(seen: Seen) -> Reply:
        since = seen.param(period_param)
        data = body(source)
        if since and period_param == "sinceTimePeriod":
            data = json.dumps(jsonstat_since(json.loads(data), since)).encode()
        elif since or seen.param("endPeriod"):
            data = csv_between(data, since, seen.param("endPeriod"))
        etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
        return reply(source, body=data, headers={**RECORDINGS[source]["headers"], "ETag": etag})

    return respond
