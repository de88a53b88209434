"""Baselines the pipeline is measured against (benchmarks/run.py).

- `pandas_parse` + `pandas_transform`: the Comext parse and transform_goods_product written with pandas
  (pandas 3, pyarrow-backed strings, the pyarrow CSV engine), the same rules, reasons, duplicate handling,
  pivot and output columns. Its output is checked against the polars transform on the same files
  (row counts and sums must match), so the comparison is of equal work.
- `duckdb_floor`: DuckDB's own `read_csv` of the same files, the pivot of the two indicators into one row
  per key (value and quantity side by side, as the fact table holds them) and an `INSERT` into a table of a
  fresh database file, checkpointed: the cost of reading the CSV and storing it in the fact table's shape,
  with no checks, no revisions, no validation and no publish. Issue 12 calls this the floor ("read_csv +
  pivot + INSERT"); until 2026-12-01 it had no pivot (a faster floor: the ratios measured before are
  against that one).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from eujp.parse.sdmx_csv import _NUMBER, COMEXT_COLUMNS
from transforms.comext_goods import (
    COMEXT_EU_REPORTERS,
    COMEXT_FACT_KEY,
    COMEXT_FLOWS,
    COMEXT_INDICATORS,
    COMEXT_ISO_EXTRAS,
    COMEXT_PARTNER_AGGREGATES,
    COMEXT_WIRE_KEY,
)

_MONTH = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"
_YEAR = r"^[0-9]{4}$"
_CN8 = r"^[0-9]{8}$"
FACT_COLUMNS = ("reporter", "partner", "product_cn8", "flow", "period", "period_code", "value_eur", "quantity_kg",
                "source", "source_version")


def pandas_parse(data: bytes) -> tuple[pd.DataFrame, str | None]:
    """Comext SDMX-CSV -> all-string DataFrame + OBS_VALUE (float, NaN unless a plain number) + OBS_VALUE_raw;
    returns it with the latest LAST UPDATE in ISO 8601 (what parse_comext_csv does, minus its error texts)."""
    frame = pd.read_csv(io.BytesIO(data.removeprefix(b"\xef\xbb\xbf")), dtype=str, keep_default_na=False,
                        na_values=[""], engine="pyarrow")
    missing = [c for c in COMEXT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"missing columns {missing}")
    frame = frame[list(COMEXT_COLUMNS)]
    if not frame["DATAFLOW"].str.startswith("ESTAT:DS-045409(").fillna(False).all():
        raise ValueError("foreign DATAFLOW")
    raw = frame["OBS_VALUE"]
    stripped = raw.str.strip()
    plain = stripped.str.contains(_NUMBER.replace("(", "(?:"), regex=True).fillna(False).astype(bool)
    frame["OBS_VALUE_raw"] = raw
    frame["OBS_VALUE"] = pd.to_numeric(stripped.where(plain), errors="coerce").astype("float64")
    stamps = pd.to_datetime(frame["LAST UPDATE"].dropna().unique(), format="%d/%m/%y %H:%M:%S")
    return frame, (stamps.max().isoformat() if len(stamps) else None)


def _raw_records(rows: pd.DataFrame) -> list[str]:
    raw = rows[list(COMEXT_COLUMNS)].copy()
    raw["OBS_VALUE"] = rows["OBS_VALUE_raw"]
    return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in raw.to_dict("records")]


def _rejected(rows: pd.DataFrame, reasons: pd.Series | str) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame({"reason": pd.Series(dtype=str), "raw_record": pd.Series(dtype=str)})
    reason = reasons if isinstance(reasons, pd.Series) else pd.Series(reasons, index=rows.index)
    return pd.DataFrame({"reason": reason.astype(str).to_numpy(), "raw_record": _raw_records(rows)})


def _key_label(rows: pd.DataFrame, quoted: bool = True, keys: tuple[str, ...] = COMEXT_FACT_KEY) -> pd.Series:
    q = "'" if quoted else ""
    parts = [k + "=" + q + rows[k].fillna("<null>").astype(str) + q for k in keys]
    label = parts[0]
    for p in parts[1:]:
        label = label + ", " + p
    return label


def pandas_transform(wire: pd.DataFrame, source_name: str, source_version: str | None,
                     iso2: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """transform_goods_product in pandas: (valid, rejected, valid_wire_rows)."""
    reporters = set(iso2) | set(COMEXT_ISO_EXTRAS) | set(COMEXT_EU_REPORTERS)
    partners = set(iso2) | set(COMEXT_ISO_EXTRAS) | set(COMEXT_PARTNER_AGGREGATES)

    def text(col: str) -> pd.Series:
        return wire[col].fillna("<null>").astype(str)

    def matches(col: str, pattern: str) -> np.ndarray:
        return wire[col].str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)

    freq = wire["freq"]
    period_ok = (freq.eq("M").fillna(False).to_numpy(dtype=bool) & matches("TIME_PERIOD", _MONTH)) | (
        freq.eq("A").fillna(False).to_numpy(dtype=bool) & matches("TIME_PERIOD", _YEAR))
    value = wire["OBS_VALUE"].to_numpy(dtype="float64", na_value=np.nan)
    conditions = [
        ~wire["indicators"].isin(list(COMEXT_INDICATORS)).to_numpy(dtype=bool),
        ~wire["flow"].isin(list(COMEXT_FLOWS)).to_numpy(dtype=bool),
        ~matches("product", _CN8),
        ~period_ok,
        ~wire["reporter"].isin(reporters).to_numpy(dtype=bool),
        ~wire["partner"].isin(partners).to_numpy(dtype=bool),
        wire["OBS_VALUE_raw"].isna().to_numpy(dtype=bool),
        np.isnan(value),
        np.nan_to_num(value, nan=0.0) < 0,
    ]
    broken = np.logical_or.reduce(conditions)
    rejected = []
    if broken.any():
        bad = wire[broken]
        messages = [
            "out of scope indicator " + text("indicators")[broken] + " (only " + ", ".join(COMEXT_INDICATORS)
            + " are loaded)",
            "flow " + text("flow")[broken] + " is neither 1 (import) nor 2 (export)",
            "product " + text("product")[broken] + " is not a CN8 code (8 digits)",
            "TIME_PERIOD " + text("TIME_PERIOD")[broken] + " does not match freq " + text("freq")[broken]
            + " (M: YYYY-MM, A: YYYY)",
            "unknown reporter code " + text("reporter")[broken],
            "unknown partner code " + text("partner")[broken],
            pd.Series("missing OBS_VALUE", index=bad.index),
            "OBS_VALUE " + text("OBS_VALUE_raw")[broken] + " is not a number",
            "negative OBS_VALUE " + text("OBS_VALUE_raw")[broken],
        ]
        reason = pd.Series(np.select([c[broken] for c in conditions], [m.to_numpy() for m in messages]),
                           index=bad.index)
        rejected.append(_rejected(bad, reason))
    ok = wire[~broken]
    # a fact key with a figure rejected for its value: its other rows too (a fact row is not loaded half)
    value_bad = np.logical_or.reduce(conditions[6:]) & ~np.logical_or.reduce(conditions[:6])
    if value_bad.any():
        bad_keys = wire[value_bad][list(COMEXT_FACT_KEY)].drop_duplicates()
        sib = ok.merge(bad_keys, on=list(COMEXT_FACT_KEY), how="left", indicator=True)["_merge"].eq("both")
        sib = sib.to_numpy()
        siblings = ok[sib]
        rejected.append(_rejected(siblings, "another row of natural key (" + _key_label(siblings, quoted=False)
                                  + ") was rejected for its OBS_VALUE: a fact row is not loaded half"))
        ok = ok[~sib]

    # Duplicates per indicator row, compared on the key and OBS_VALUE.
    key = list(COMEXT_WIRE_KEY)
    repeated = ok.duplicated(key, keep=False).to_numpy()
    if repeated.any():
        rep = ok[repeated]
        n_values = rep.groupby(key, dropna=False)["OBS_VALUE"].transform("nunique")
        conflict = (n_values > 1).to_numpy()
        copy = rep.duplicated(key + ["OBS_VALUE"], keep="first").to_numpy()
        dup = conflict | copy
        label = _key_label(rep, keys=COMEXT_WIRE_KEY)
        n_rows = rep.groupby(key, dropna=False)["OBS_VALUE"].transform("size").astype(str)
        reason = np.where(conflict, "conflicting rows for natural key " + label + ": " + n_rows
                          + " rows differ in OBS_VALUE", "exact duplicate of an earlier row with natural key " + label)
        rejected.append(_rejected(rep[dup], pd.Series(reason[dup], index=rep.index[dup])))
        ok = pd.concat([ok[~repeated], rep[~dup]])
        bad_keys = rep[conflict][list(COMEXT_FACT_KEY)].drop_duplicates()
        if len(bad_keys):
            sib = ok.merge(bad_keys, on=list(COMEXT_FACT_KEY), how="left", indicator=True)["_merge"].eq("both")
            sib = sib.to_numpy()
            siblings = ok[sib]
            rejected.append(_rejected(siblings, "conflicting values in another indicator for natural key ("
                                      + _key_label(siblings, quoted=False) + ")"))
            ok = ok[~sib]

    is_value = ok["indicators"].eq("VALUE_IN_EUROS").to_numpy(dtype=bool)
    obs = ok["OBS_VALUE"].to_numpy(dtype="float64")
    work = ok[list(COMEXT_FACT_KEY)].copy()
    work["value_eur"] = np.where(is_value, obs, np.nan)
    work["quantity_100kg"] = np.where(is_value, np.nan, obs)
    pivoted = work.groupby(list(COMEXT_FACT_KEY), sort=False, dropna=False).agg(
        value_eur=("value_eur", "max"), quantity_100kg=("quantity_100kg", "max"),
        wire_rows=("value_eur", "size")).reset_index()
    orphan = pivoted["value_eur"].isna().to_numpy()
    if orphan.any():
        keys = pivoted.loc[orphan, list(COMEXT_FACT_KEY)]
        hit = ok.merge(keys, on=list(COMEXT_FACT_KEY), how="left", indicator=True)["_merge"].eq("both").to_numpy()
        rows = ok[hit]
        rejected.append(_rejected(rows, "QUANTITY_IN_100KG without a VALUE_IN_EUROS row for natural key ("
                                  + _key_label(rows, quoted=False) + ")"))
        pivoted = pivoted[~orphan]
    code = pivoted["TIME_PERIOD"]
    valid = pd.DataFrame({
        "reporter": pivoted["reporter"],
        "partner": pivoted["partner"],
        "product_cn8": pivoted["product"],
        "flow": pivoted["flow"].map(COMEXT_FLOWS),
        "period": pd.to_datetime(code.where(code.str.len() != 4, code + "-01").astype(str) + "-01",
                                 format="%Y-%m-%d").dt.date,
        "period_code": code,
        "value_eur": pivoted["value_eur"],
        "quantity_kg": (pivoted["quantity_100kg"] * 100).round(4),
        "source": source_name,
        "source_version": source_version,
    })
    rej = pd.concat(rejected, ignore_index=True) if rejected else _rejected(wire.iloc[:0], "")
    return valid, rej, int(pivoted["wire_rows"].sum())


def duckdb_floor(files: list[Path], database: Path) -> int:
    """read_csv of `files`, pivoted to one row per key (value_eur, quantity_100kg), INSERT into a fresh DuckDB
    file + CHECKPOINT; returns the fact rows stored. Values are cast with TRY_CAST: a malformed number is a
    NULL here (the pipeline quarantines it with its reason)."""
    import duckdb

    for p in (database, database.with_suffix(database.suffix + ".wal")):
        p.unlink(missing_ok=True)
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COMEXT_COLUMNS) + "}"
    paths = "[" + ", ".join(f"'{p.as_posix()}'" for p in files) + "]"
    with duckdb.connect(str(database)) as conn:
        conn.execute("CREATE TABLE comext_fact (reporter VARCHAR, partner VARCHAR, product VARCHAR, flow VARCHAR, "
                     "period VARCHAR, value_eur DOUBLE, quantity_100kg DOUBLE)")
        conn.execute(f"""
            INSERT INTO comext_fact
            SELECT reporter, partner, product, flow, TIME_PERIOD,
                   max(TRY_CAST(OBS_VALUE AS DOUBLE)) FILTER (WHERE indicators = 'VALUE_IN_EUROS'),
                   max(TRY_CAST(OBS_VALUE AS DOUBLE)) FILTER (WHERE indicators = 'QUANTITY_IN_100KG')
            FROM read_csv({paths}, header = true, columns = {columns})
            GROUP BY reporter, partner, product, flow, TIME_PERIOD""")
        conn.execute("CHECKPOINT")
        return conn.execute("SELECT count(*) FROM comext_fact").fetchone()[0]
