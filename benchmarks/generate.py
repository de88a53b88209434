"""Deterministic generator of a SYNTHETIC snapshot folder at Comext scale.

    .venv/bin/python -m benchmarks.generate --years 1 --seed 7 --out benchmarks/data/y1
    .venv/bin/python -m benchmarks.generate --rows 100000 --out /tmp/eujp-100k

Writes, into --out (a snapshot folder `eujp run --snapshot-dir` reads):

- `comext_ds045409_SYNTHETIC_EU27xJP_{YYYY-MM}.csv`: Comext DS-045409 SDMX-CSV, one file per month (as the
  live extraction splits requests by period), exactly the wire format of the real files in data/snapshot/:
  the ten DS-045409 columns, CRLF, sorted by reporter, partner, product, flow, indicators. Grid per month:
  27 member states x partners (default JP) x ~9,000 synthetic CN8 codes x 2 flows x 2 indicators; a seeded
  subset of the grid is present so that a year holds 10,000,000 wire rows (`--years`), or the rows are
  spread evenly over the months (`--rows`, 100k..50M intended). A few rows per million carry an
  OBS_VALUE that is not a number (":", or empty) so the quarantine path runs at scale too.
- `eurostat_ext_lt_maineu_SYNTHETIC.json`, `eurostat_bop_its6_det_SYNTHETIC.json`: JSON-stat 2.0 annual
  goods / services for the same years and the *widened* partner list (every dim_country Eurostat code).
- the bundled SIPRI register subset, curated events file and OECD inventory, COPIED unchanged from
  data/snapshot/ (naturally small sources: their size does not grow with CN8 detail or years).
- `SYNTHETIC` (marker), `README.md` and `synthetic_manifest.json` (parameters, per-file rows and sha256).

Every generated value is invented. Synthetic rows are marked in the data itself: Comext DATAFLOW is
`ESTAT:DS-045409(SYNTHETIC)` and the JSON-stat labels and `extension.synthetic_note` say so. Output depends
only on the arguments (no clock, no global RNG): the same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = REPO_ROOT / "data" / "snapshot"
COUNTRIES_CSV = REPO_ROOT / "data" / "reference" / "countries.csv"

ROWS_PER_YEAR = 10_000_000
# The 27 member states as Comext writes them (GR, not EL).
EU27 = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
        "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
N_PRODUCTS = 9_000
FLOWS = ("1", "2")
INDICATORS = ("QUANTITY_IN_100KG", "VALUE_IN_EUROS")  # sorted, as Comext sorts them
DATAFLOW = "ESTAT:DS-045409(SYNTHETIC)"
BAD_ROWS_PER_MILLION = 5  # OBS_VALUE ":" or empty: rejected by the transform (and their sibling row)
COPIED = ("sipri_trade_register_japan.csv", "security_events.csv", "oecd_export_restrictions.csv")
COMEXT_COLUMNS = ("DATAFLOW", "LAST UPDATE", "freq", "reporter", "partner", "product", "flow", "indicators",
                  "TIME_PERIOD", "OBS_VALUE")


@dataclass(frozen=True)
class Plan:
    rows: int
    seed: int
    start_year: int
    years: int
    partners: tuple[str, ...]
    products: int = N_PRODUCTS

    @property
    def months(self) -> list[str]:
        return [f"{self.start_year + y:04d}-{m:02d}" for y in range(self.years) for m in range(1, 13)]

    def rows_in_month(self, i: int) -> int:
        base, extra = divmod(self.rows, 12 * self.years)
        return base + (1 if i < extra else 0)

    @property
    def grid_per_month(self) -> int:
        """Fact keys one month can hold: reporters x partners x products x flows."""
        return len(EU27) * len(self.partners) * self.products * len(FLOWS)

    def check_fits(self) -> Plan:
        """The plan, if a month's rows fit the grid (each key has two indicator rows), else ValueError."""
        if self.rows_in_month(0) > 2 * self.grid_per_month:
            raise ValueError(f"{self.rows_in_month(0):,} rows a month do not fit the grid of "
                             f"{self.grid_per_month:,} keys x 2 indicators: spread the rows over more months")
        return self


def make_plan(*, rows: int | None, years: int | None, seed: int, start_year: int,
              partners: tuple[str, ...]) -> Plan:
    if (rows is None) == (years is None):
        raise ValueError("give exactly one of --rows and --years")
    if years is not None:
        if years < 1:
            raise ValueError("--years must be at least 1")
        rows = years * ROWS_PER_YEAR
    else:
        if rows < 1:
            raise ValueError("--rows must be positive")
        years = max(1, math.ceil(rows / ROWS_PER_YEAR))
    return Plan(rows=rows, seed=seed, start_year=start_year, years=years, partners=partners).check_fits()


def products(seed: int, n: int = N_PRODUCTS) -> np.ndarray:
    """`n` distinct synthetic CN8 codes (chapters 01..97), sorted, as int64."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    codes = rng.choice(np.arange(1_000_000, 98_000_000, 10, dtype=np.int64), size=n, replace=False)
    return np.sort(codes)


def last_update(month: str) -> str:
    """Comext-style `LAST UPDATE` (dd/mm/yy HH:MM:SS): mid of the second month after the period."""
    year, mon = int(month[:4]), int(month[5:])
    index = year * 12 + mon - 1 + 2
    return f"15/{index % 12 + 1:02d}/{(index // 12) % 100:02d} 11:00:00"


def comext_month(plan: Plan, month_index: int, codes: np.ndarray) -> pl.DataFrame:
    """The wire rows of one month: a seeded subset of the grid, sorted as Comext sorts its answer."""
    month = plan.months[month_index]
    n_rows = plan.rows_in_month(month_index)
    n_keys = (n_rows + 1) // 2  # an odd count: the last key has its VALUE_IN_EUROS row only
    rng = np.random.default_rng(np.random.SeedSequence([plan.seed, 1, month_index]))
    grid = plan.grid_per_month
    keys = np.sort(rng.choice(grid, size=n_keys, replace=False)) if n_keys < grid else np.arange(grid)
    # key = ((reporter * partners + partner) * products + product) * flows + flow
    flow, rest = keys % len(FLOWS), keys // len(FLOWS)
    product, rest = rest % plan.products, rest // plan.products
    partner, reporter = rest % len(plan.partners), rest // len(plan.partners)

    value = np.maximum(1, np.rint(np.exp(rng.normal(9.5, 2.4, n_keys)))).astype(np.int64)  # euro
    price = np.exp(rng.normal(1.5, 1.2, n_keys))  # euro per kg
    quantity_centi = np.maximum(1, np.rint(value / price)).astype(np.int64)  # 100 kg x 100 = kg
    keys_frame = pl.DataFrame({
        "reporter": pl.Series(np.asarray(EU27)[reporter]),
        "partner": pl.Series(np.asarray(plan.partners)[partner]),
        "product": pl.Series(codes[product]).cast(pl.String).str.zfill(8),
        "flow": pl.Series(np.asarray(FLOWS)[flow]),
        "value": value,
        "qc": quantity_centi,
    })
    quantity_text = pl.format("{}.{}", pl.col("qc") // 100, (pl.col("qc") % 100).cast(pl.String).str.zfill(2))
    both = pl.concat([
        keys_frame.select("reporter", "partner", "product", "flow", pl.lit(INDICATORS[0]).alias("indicators"),
                          quantity_text.alias("OBS_VALUE")).with_row_index("k"),
        keys_frame.select("reporter", "partner", "product", "flow", pl.lit(INDICATORS[1]).alias("indicators"),
                          pl.col("value").cast(pl.String).alias("OBS_VALUE")).with_row_index("k"),
    ]).sort("k", "indicators")
    if n_rows % 2:  # drop the quantity row of the last key
        both = both.filter(~((pl.col("k") == n_keys - 1) & (pl.col("indicators") == INDICATORS[0])))
    n_bad = rng.binomial(n_rows, BAD_ROWS_PER_MILLION / 1e6)
    if n_bad:
        bad = np.sort(rng.choice(n_rows, size=n_bad, replace=False))
        kind = rng.integers(0, 2, n_bad)
        both = both.with_columns(
            pl.Series("_bad", np.full(n_rows, -1, dtype=np.int8)).scatter(bad, kind.astype(np.int8)).alias("_b")
        ).with_columns(
            pl.when(pl.col("_b") == 0).then(pl.lit(":")).when(pl.col("_b") == 1).then(pl.lit(None, pl.String))
            .otherwise(pl.col("OBS_VALUE")).alias("OBS_VALUE")
        )
    return both.select(
        pl.lit(DATAFLOW).alias("DATAFLOW"), pl.lit(last_update(month)).alias("LAST UPDATE"),
        pl.lit("M").alias("freq"), "reporter", "partner", "product", "flow", "indicators",
        pl.lit(month).alias("TIME_PERIOD"), "OBS_VALUE",
    )


def comext_file_name(plan: Plan, month: str) -> str:
    partners = "-".join(plan.partners) if len(plan.partners) <= 3 else f"{len(plan.partners)}partners"
    return f"comext_ds045409_SYNTHETIC_EU27x{partners}_{month}.csv"


def _jsonstat(template: Path, *, label: str, partners: list[str], years: list[str], seed: int, salt: int,
              scale: float) -> dict:
    """A JSON-stat dataset shaped like `template`, for `partners` x `years`, with invented values."""
    doc = json.loads(template.read_text(encoding="utf-8"))
    doc["label"] = label
    doc["updated"] = f"{int(years[-1]) + 1}-06-30T23:00:00+0200"
    dims = doc["dimension"]
    dims["partner"]["category"] = {"index": {p: i for i, p in enumerate(partners)},
                                   "label": {p: p for p in partners}}
    dims["time"]["category"] = {"index": {y: i for i, y in enumerate(years)}, "label": {y: y for y in years}}
    doc["size"] = [len(dims[d]["category"]["index"]) for d in doc["id"]]
    cells = math.prod(doc["size"])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, salt]))
    values = np.round(np.exp(rng.normal(math.log(scale), 2.0, cells)), 1)
    doc["value"] = {str(i): float(v) for i, v in enumerate(values)}
    doc["status"] = {}
    doc["extension"] = {"lang": "EN", "synthetic_note": "SYNTHETIC: generated by benchmarks/generate.py for "
                        "performance tests. Invented values; not Eurostat data."}
    doc["extension"]["positions-with-no-data"] = {d: [] for d in doc["id"]}
    return doc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def generate(plan: Plan, out: Path, *, log=print) -> dict:
    """Write the synthetic snapshot folder for `plan` into `out` (created; existing generated files are
    replaced) and return the manifest it also writes as synthetic_manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("comext_ds045409_SYNTHETIC_*.csv"), *out.glob("eurostat_*_SYNTHETIC.json")]:
        old.unlink()
    codes = products(plan.seed, plan.products)
    files: dict[str, dict] = {}
    started = time.perf_counter()
    for i, month in enumerate(plan.months):
        frame = comext_month(plan, i, codes)
        path = out / comext_file_name(plan, month)
        frame.write_csv(path, line_terminator="\r\n")
        files[path.name] = {"rows": frame.height, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        if (i + 1) % 12 == 0:
            log(f"  {month}: {sum(f['rows'] for f in files.values()):,} rows "
                f"({time.perf_counter() - started:.1f} s)")

    years = [str(plan.start_year + y) for y in range(plan.years)]
    countries = pl.read_csv(COUNTRIES_CSV, infer_schema=False)
    partners = sorted(countries.get_column("eurostat_code").drop_nulls().unique().to_list())
    for name, template, salt, scale, label in (
        ("eurostat_ext_lt_maineu_SYNTHETIC.json", BUNDLED / "eurostat_ext_lt_maineu_jp.json", 1, 5000.0,
         "SYNTHETIC EU trade in goods by partner, annual (ext_lt_maineu shape; invented values)"),
        ("eurostat_bop_its6_det_SYNTHETIC.json", BUNDLED / "eurostat_bop_its6_det_jp.json", 2, 2000.0,
         "SYNTHETIC EU trade in services by partner, annual (bop_its6_det shape; invented values)"),
    ):
        doc = _jsonstat(template, label=label, partners=partners, years=years, seed=plan.seed, salt=salt,
                        scale=scale)
        path = out / name
        path.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=False), encoding="utf-8")
        files[name] = {"rows": len(doc["value"]), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    for name in COPIED:
        shutil.copyfile(BUNDLED / name, out / name)
        files[name] = {"copied_from": f"data/snapshot/{name}", "bytes": (out / name).stat().st_size,
                       "sha256": sha256_file(out / name)}

    comext_rows = sum(f["rows"] for n, f in files.items() if n.startswith("comext_"))
    manifest = {
        "synthetic": True,
        "generator": "benchmarks/generate.py",
        "plan": {**asdict(plan), "partners": list(plan.partners)},
        "comext_rows": comext_rows,
        "comext_bytes": sum(f["bytes"] for n, f in files.items() if n.startswith("comext_")),
        "files": files,
    }
    (out / "synthetic_manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (out / "SYNTHETIC").write_text(
        "Everything in this folder except the files listed as copied_from in synthetic_manifest.json is\n"
        "SYNTHETIC data generated by benchmarks/generate.py for performance tests. Never load it into a\n"
        "warehouse that anyone reads.\n")
    (out / "README.md").write_text(
        f"# SYNTHETIC snapshot folder ({comext_rows:,} Comext rows, seed {plan.seed})\n\n"
        "Generated by `benchmarks/generate.py` for the benchmarks in `benchmarks/`; see its docstring.\n"
        "Comext and Eurostat files hold invented values (Comext DATAFLOW `ESTAT:DS-045409(SYNTHETIC)`).\n"
        f"Copied unchanged from data/snapshot/ (real, naturally small sources): {', '.join(COPIED)}.\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int, help="Comext wire rows in total (100k..50M intended)")
    size.add_argument("--years", type=int, help=f"years of monthly data, {ROWS_PER_YEAR:,} Comext rows each")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-year", type=int, default=2020)
    parser.add_argument("--partners", default="JP", help="comma-separated partner codes (default JP)")
    parser.add_argument("--out", type=Path, required=True, help="snapshot folder to write")
    args = parser.parse_args(argv)
    try:
        plan = make_plan(rows=args.rows, years=args.years, seed=args.seed, start_year=args.start_year,
                         partners=tuple(p.strip() for p in args.partners.split(",") if p.strip()))
    except ValueError as exc:
        parser.error(str(exc))
    started = time.perf_counter()
    manifest = generate(plan, args.out)
    print(f"wrote {manifest['comext_rows']:,} Comext rows ({manifest['comext_bytes'] / 1e9:.2f} GB) in "
          f"{len(plan.months)} files + 5 other sources to {args.out} in {time.perf_counter() - started:.1f} s "
          "(SYNTHETIC)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
