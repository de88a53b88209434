"""What the Comext parser's record check (`eujp.parse.sdmx_csv._check_records`) costs, by payload shape: the same
rows plain or with every field quoted, with no figure empty or with a share of them empty (the empty last field
is what sends the check past its first test). Each case is parsed by `parse_comext_csv` and read by polars'
`read_csv` alone (every column String, as the parser reads it) in the same run, alternating, and the ratio of the
medians is reported: what the parser adds to the reader.

    .venv/bin/python -m benchmarks.record_check --rows 1000000 --repeat 5

The rows are made here from the layout of a real DS-045409 line (deterministic: `--seed`); nothing is read or
written on disk. Findings are in benchmarks/RESULTS.md ("Record check by payload shape").
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import polars as pl

from benchmarks.measure import positive_int
from eujp.parse import CSV_NULLS
from eujp.parse.sdmx_csv import COMEXT_COLUMNS, parse_comext_csv

HEADER = ",".join(COMEXT_COLUMNS)
REPORTERS = ("AT", "BE", "DE", "FR", "IT", "NL", "EU27_2020")
INDICATORS = ("QUANTITY_IN_100KG", "VALUE_IN_EUROS")


def payload(rows: int, *, quoted: bool, empty_share: float, seed: int) -> bytes:
    """`rows` DS-045409 lines (reporter, product, flow, indicator and month varying), every field quoted or none,
    `empty_share` of them with an empty figure (its field there, empty)."""
    rnd = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        values = ["ESTAT:DS-045409(1.0)", "14/08/26 11:00:00", "M", REPORTERS[i % len(REPORTERS)], "JP",
                  f"{84000000 + (i // 240) % 999999:08d}", str(1 + (i // 2) % 2), INDICATORS[i % 2],
                  f"{2002 + (i // 24) % 24}-{1 + (i // 2) % 12:02d}", f"{rnd.random() * 1e6:.2f}"]
        if rnd.random() < empty_share:
            values[-1] = ""
        lines.append(",".join(f'"{v}"' if quoted and v else v for v in values))
    return ("\n".join(lines) + "\n").encode()


def measure(data: bytes, repeat: int) -> dict[str, float]:
    """Median seconds of parse_comext_csv and of polars' read_csv alone, run alternately."""
    parsed, read = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        parse_comext_csv(data)
        parsed.append(time.perf_counter() - started)
        started = time.perf_counter()
        pl.read_csv(data, infer_schema=False, null_values=CSV_NULLS)
        read.append(time.perf_counter() - started)
    return {"parse": statistics.median(parsed), "read_csv": statistics.median(read)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Comext record check's cost by payload shape.")
    parser.add_argument("--rows", type=positive_int, default=1_000_000)
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--empty-share", type=float, nargs="+", default=[0.0, 0.2])
    args = parser.parse_args(argv)
    print("| shape | empty figures | parse_comext_csv s | read_csv s | parse / read_csv |\n|---|---|---|---|---|")
    for quoted in (False, True):
        for share in args.empty_share:
            data = payload(args.rows, quoted=quoted, empty_share=share, seed=args.seed)
            got = measure(data, args.repeat)
            print(f"| {'quoted' if quoted else 'plain'} | {share:.0%} | {got['parse']:.2f} | {got['read_csv']:.2f} | "
                  f"{got['parse'] / got['read_csv']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
