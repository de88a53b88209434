"""A first live load of Comext from a local service: the peak memory of `eujp run --source live` (issue 12,
item 2: bounded memory "however the data arrive").

    .venv/bin/python -m benchmarks.live_load --rows 10000000 --months 120

The service runs in a process of its own (its memory is not the run's): it loads the monthly files of
benchmarks/shapes.py's `monthly` shape once and answers the Comext dissemination API as the live plan asks it
(eujp/sources/comext_goods.py; the requests of docs/live-extraction.md): the dataflow (its UPDATE_DATA), the
product codelist (CXT_NC: the synthetic CN8 codes), and SDMX-CSV data for a series key of reporters, partners,
products, flows and indicators from `startPeriod` to `endPeriod`, 413 EXTRACTION_TOO_BIG over `--max-rows` rows.
`eujp run --source live --only comext_goods` then plans every product by chapter and slice of months, fetches,
lands, parses, loads and publishes them; the parent samples its RSS every 0.1 s (benchmarks.run._timed_run).
`--compare-with REF` runs the same load with the code of a git revision too (a worktree), alternating.

The data are SYNTHETIC (benchmarks/generate.py): shapes and sizes of Comext, invented values.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import polars as pl

from benchmarks.measure import positive_int
from benchmarks.run import DATA_DIR, REPO_ROOT, _timed_run, loadavg, machine
from benchmarks.shapes import COMEXT_GLOB, shape_folders
from eujp.sources import comext_goods

PREFIX = "/api/comext/dissemination/sdmx/2.1"
DATA_PATH = f"{PREFIX}/data/DS-045409/"
CODELIST_PATH = f"{PREFIX}/codelist/ESTAT/CXT_NC"
DATAFLOW_PATH = f"{PREFIX}/dataflow/ESTAT/DS-045409"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "http"
CSV_TYPE = "application/vnd.sdmx.data+csv;version=1.0.0"
XML_TYPE = "application/vnd.sdmx.structure+xml;version=2.1"
PUBLISHED = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)


class Service:
    """The Comext answers, from the monthly files' rows: each month's rows of each CN8 chapter kept as the CSV
    lines they are answered with (the plan asks chapter by chapter; ~the files' size in memory, 50M rows fit),
    a request for every product of its chapters, every reporter, flow and indicator joined from them, any other
    filtered by polars."""

    def __init__(self, monthly: Path, max_rows: int) -> None:
        self.lines: dict[tuple[str, str], bytes] = {}  # (chapter, month) -> its CSV lines
        self.counts: dict[tuple[str, str], int] = {}
        self.header = b""
        products: set[str] = set()
        self.values: dict[str, set[str]] = {c: set() for c in ("freq", "reporter", "partner", "flow", "indicators")}
        for path in sorted(monthly.glob(COMEXT_GLOB)):
            rows = pl.read_csv(path, infer_schema=False)
            self.header = (",".join(rows.columns) + "\r\n").encode()
            products.update(rows.get_column("product").unique().to_list())
            for column, seen in self.values.items():
                seen.update(rows.get_column(column).unique().to_list())
            for (chapter, month), part in rows.with_columns(pl.col("product").str.slice(0, 2).alias("_ch")).partition_by(
                    ["_ch", "TIME_PERIOD"], as_dict=True).items():
                self.lines[(chapter, month)] = part.drop("_ch").write_csv(include_header=False,
                                                                          line_terminator="\r\n").encode()
                self.counts[(chapter, month)] = part.height
        self.products = sorted(products)
        self.by_chapter: dict[str, set[str]] = {}
        for p in self.products:
            self.by_chapter.setdefault(p[:2], set()).add(p)
        self.months = sorted({m for _, m in self.lines})
        self.max_rows = max_rows
        self.too_big = (FIXTURES / "comext_413_extraction_too_big.xml").read_bytes()
        self.no_results = (FIXTURES / "eurostat_fault_100_no_results.xml").read_bytes()
        self.dataflow = (FIXTURES / "comext_dataflow_ds045409.xml").read_text(encoding="utf-8").replace(
            "{update_data}", PUBLISHED.strftime("%Y-%m-%dT%H:%M:%S%z")).encode()
        self.served_rows = 0

    def codelist(self) -> bytes:
        codes = "".join(f'<s:Code id="{c}"><c:Name xml:lang="en">SYNTHETIC product {c}</c:Name></s:Code>'
                        for c in self.products)
        return ('<?xml version="1.0" encoding="UTF-8"?><m:Structure '
                'xmlns:m="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" '
                'xmlns:s="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure" '
                'xmlns:c="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"><m:Structures><s:Codelists>'
                f'<s:Codelist id="CXT_NC" agencyID="ESTAT" version="1.0">{codes}</s:Codelist>'
                "</s:Codelists></m:Structures></m:Structure>").encode()

    def data(self, key: str, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        parts = [part.split("+") if part else [] for part in key.split(".")]
        filters = dict(zip(("freq", "reporter", "partner", "product", "flow", "indicators"), parts, strict=True))
        start, end = query.get("startPeriod", ["0000"])[0], query.get("endPeriod", ["9999"])[0]
        asked = set(filters["product"])
        chapters = sorted({p[:2] for p in asked} & set(self.by_chapter)) if asked else sorted(self.by_chapter)
        cells = [(c, m) for c in chapters for m in self.months if start <= m <= end and (c, m) in self.lines]
        whole = all(not asked or self.by_chapter[c] <= asked for c in chapters) and all(
            not values or set(values) >= self.values[column] for column, values in filters.items()
            if column != "product")
        if whole:
            rows = sum(self.counts[cell] for cell in cells)
            body = b"".join([self.header, *(self.lines[cell] for cell in cells)])
        else:  # a narrower request: the cells' rows filtered
            frame = pl.read_csv(b"".join([self.header, *(self.lines[cell] for cell in cells)]), infer_schema=False)
            frame = frame.filter([pl.col(c).is_in(v) for c, v in filters.items() if v]) if frame.height else frame
            rows, body = frame.height, frame.write_csv(line_terminator="\r\n").encode()
        if rows > self.max_rows:
            return 413, self.too_big, "application/xml"
        if rows == 0:
            return 404, self.no_results, "application/xml"
        self.served_rows += rows
        return 200, body, CSV_TYPE


def serve(monthly: Path, port_file: Path, max_rows: int) -> None:
    service = Service(monthly, max_rows)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == CODELIST_PATH:
                status, body, kind = 200, service.codelist(), XML_TYPE
            elif url.path == DATAFLOW_PATH:
                status, body, kind = 200, service.dataflow, XML_TYPE
            elif url.path.startswith(DATA_PATH):
                status, body, kind = service.data(url.path[len(DATA_PATH):], parse_qs(url.query))
            else:
                status, body, kind = 404, b"not found", "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file.write_text(f"{server.server_address[1]} {len(service.products)}")
    signal.signal(signal.SIGTERM, lambda *_: (port_file.with_suffix(".served").write_text(str(service.served_rows)),
                                              os._exit(0)))
    server.serve_forever()


def start_service(monthly: Path, work: Path, max_rows: int) -> tuple[subprocess.Popen, int, int]:
    port_file = work / "service.port"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.live_load", "--serve", str(monthly), "--port-file",
                             str(port_file), "--max-rows", str(max_rows)], cwd=REPO_ROOT)
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None:
            raise RuntimeError(f"the Comext service exited with {proc.returncode}")
        time.sleep(0.2)
    port, products = map(int, port_file.read_text().split())
    return proc, port, products


def stop_service(proc: subprocess.Popen, work: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    served = work / "service.served"
    return int(served.read_text()) if served.exists() else -1


def live_run(code: Path, port: int, work: Path, name: str, start: str) -> dict:
    """`eujp run --source live --only comext_goods` with the code at `code`, into a new warehouse and store."""
    folder = work / name
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EUJP_"))}
    env.update(PREFECT_HOME=str(folder / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", GX_ANALYTICS_ENABLED="false", COLUMNS="200", NO_PROXY="127.0.0.1,localhost",
               EUJP_COMEXT_URL=f"http://127.0.0.1:{port}", EUJP_COMEXT_START=start, PYTHONPATH=str(code))
    cmd = [sys.executable, "-m", "flows.cli", "run", "--source", "live", "--only", comext_goods.SOURCE.name,
           "--warehouse", str(folder / "var" / "warehouse.duckdb"), "--publish", str(folder / "var" / "objectstore")]
    result = _timed_run(cmd, env, folder, "run")
    result["code"] = str(code)
    result["raw_bytes"] = sum(f.stat().st_size for f in (folder / "var" / "objectstore" / "raw").rglob("*")
                              if f.is_file())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=10_000_000)
    parser.add_argument("--months", type=positive_int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2020-01", help="EUJP_COMEXT_START (the generated data start in 2020)")
    parser.add_argument("--max-rows", type=int, default=1_000_000, help="rows over which an answer is 413")
    parser.add_argument("--compare-with", help="a git revision whose code runs the same load, alternating")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port_file, args.max_rows)
        return 0
    if args.compare_with:  # before any data is generated: git's own word on a revision it does not know
        known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{args.compare_with}^{{commit}}"],
                               cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if known.returncode:
            parser.error(f"--compare-with {args.compare_with}: no such commit in {REPO_ROOT}")
    monthly = shape_folders(args.rows, args.months, args.seed, DATA_DIR, ("monthly",))["monthly"]
    work = Path(tempfile.mkdtemp(prefix="live-load-"))
    codes = {"current": REPO_ROOT}
    try:
        if args.compare_with:
            ref = work / "ref"
            added = subprocess.run(["git", "worktree", "add", "--detach", str(ref), args.compare_with],
                                   cwd=REPO_ROOT, capture_output=True, text=True, check=False)
            if added.returncode:
                parser.error(f"--compare-with {args.compare_with}: git worktree add failed: "
                             f"{added.stderr.strip() or added.stdout.strip()}")
            codes = {args.compare_with: ref, "current": REPO_ROOT}
        proc, port, products = start_service(monthly, work, args.max_rows)
        results = []
        try:
            for i in range(args.repeat):
                for label, code in codes.items():
                    print(f"  {label} #{i + 1} ...", flush=True)
                    r = live_run(code, port, work, f"{label.replace('/', '_')}-{i}", args.start)
                    r.update(label=label, products=products)
                    results.append(r)
                    print(f"    {r['seconds']:.1f} s, peak {r['peak_sampled'] / 2**30:.2f} GiB (at {r['peak_at']}), "
                          f"exit {r['exit_code']}, raw zone {r['raw_bytes'] / 2**20:.0f} MiB", flush=True)
                    if r["exit_code"]:
                        print(r["log_tail"])
        finally:
            served = stop_service(proc, work)
        print(json.dumps({"machine": machine(), "loadavg": loadavg(), "rows_served_in_all": served}))
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                             "machine": machine(), "served": served, "results": results},
                                            indent=1, default=str))
    finally:
        if args.compare_with:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "ref")], check=False, cwd=REPO_ROOT,
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
