#!/usr/bin/env python3
"""Regenerate the bundled snapshot (data/snapshot/) and reference seeds (data/reference/).

    python data/build/build_snapshot.py [SHARED_DATA_DIR] [--out-dir DATA_DIR]

SHARED_DATA_DIR defaults to ../shared/data beside the repository root; --out-dir defaults to this
repository's data/ folder. The script is offline and deterministic (standard library only): running it
twice over the same inputs writes byte-identical files. What every output is, and where its inputs came
from, is in data/README.md.

Three kinds of output:
  * verbatim byte copies of real files (Comext SDMX-CSV, the SIPRI Japan subset, the curated events
    file, the reference tables);
  * real published figures rewritten into a source's wire format (the two Eurostat JSON-stat datasets,
    built from the reference tables; the OECD csvfilewithlabels file, built from a per-measure JSON
    excerpt). These are NOT API responses, and each file says so inside itself;
  * a seed built from ISO 3166-1 (vendored from pycountry, see ISO_JSON below), the SIPRI register's
    country names and the EU accession dates (countries.csv).

Every JSON-stat value is decoded back through the row-major index arithmetic and compared with the
reference row it came from before the file is written (see _check_jsonstat).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "data"

# ISO 3166-1: pycountry 26.2.16 (wheel pycountry-26.2.16-py3-none-any.whl from PyPI), file
# pycountry/databases/iso3166-1.json, which is the Debian iso-codes data (LGPL-2.1-or-later).
ISO_JSON = Path(__file__).resolve().parent / "iso3166-1.json"
ISO_JSON_SHA256 = "f01b812b57fba9f31ff621bf33e7c7570a01964dbeb5be2167e94decf538c89f"

# The `updated` stamp of the two rewritten JSON-stat datasets: the day they were built, fixed so that
# rebuilds are byte-identical. Change it (and say why in data/README.md) when the figures change.
UPDATED = "2026-11-24T00:00:00+0100"

# --------------------------------------------------------------------------------------------------
# Verbatim copies: (source path under SHARED_DATA_DIR, output path under DATA_DIR)
# --------------------------------------------------------------------------------------------------
VERBATIM = (
    ("trade/comext_DS-045409_sdmxcsv_DE_JP_84834030_2025Q1.csv",
     "snapshot/comext_ds045409_DE_JP_84834030_2025Q1.csv"),
    ("trade/comext_DS-045409_sdmxcsv_EU27_allpartners_84834030_2025-06.csv",
     "snapshot/comext_ds045409_EU27_2020_allpartners_84834030_2025-06.csv"),
    ("defence/sipri_trade_register_japan_subset.csv", "snapshot/sipri_trade_register_japan.csv"),
    ("reference/eu_critical_raw_materials.csv", "reference/eu_critical_raw_materials.csv"),
    ("reference/eu_japan_goods_trade_annual.csv", "reference/eu_japan_goods_trade_annual.csv"),
    ("reference/eu_japan_services_trade_annual.csv", "reference/eu_japan_services_trade_annual.csv"),
    ("reference/japan_rank_among_eu_partners.csv", "reference/japan_rank_among_eu_partners.csv"),
    ("reference/export_restrictions_trend.csv", "reference/export_restrictions_trend.csv"),
    ("reference/NOTES.md", "reference/NOTES.md"),
)
SIPRI_FULL = "defence/sipri_trade_register_all_2025-03-13.csv"
SIPRI_SUBSET = "defence/sipri_trade_register_japan_subset.csv"
SIPRI_PREAMBLE_LINES = 11
EVENTS_SRC = "reference/eu_japan_security_events.csv"
EVENTS_OUT = "snapshot/security_events.csv"
EVENTS_COLUMNS = ["date", "date_precision", "event_type", "parties", "title", "description", "source_url",
                  "source_title"]
GOODS_SRC = "reference/eu_japan_goods_trade_annual.csv"
SERVICES_SRC = "reference/eu_japan_services_trade_annual.csv"
OECD_SRC = "minerals/oecd_export_restrictions_2024_bitbaum_excerpt.json"

# --------------------------------------------------------------------------------------------------
# Vintage rule for the reference trade tables (several rows per year, reporter and flow)
# --------------------------------------------------------------------------------------------------
VINTAGE_RULE = (
    "One figure per (year, reporter aggregate, flow). Candidates are ranked by: (1) official publications "
    "(Eurostat releases and Statistics Explained, including copies and news-agency reports of a named "
    "Eurostat release; European Commission DG Trade pages; EEAS/EU Delegation pages) before secondary "
    "summaries that cite no release; (2) the most recent publication (vintage) date, as listed per source "
    "in data/build/build_snapshot.py PUBLICATIONS (some dates are approximate: see vintage_date_basis); "
    "(3) on equal dates, DG Trade before Eurostat before EEAS. The first-ranked row is kept; the others "
    "are listed under other_vintages. Figures are never moved between aggregates (EU15, EU27_2007, EU28, "
    "EU27_2020 are separate geo codes)."
)
PUBLISHER_RANK = {"dg_trade": 0, "eurostat": 1, "eeas": 2, "secondary": 3}
OFFICIAL = {"dg_trade", "eurostat", "eeas"}

# source_title (exactly as in the reference CSVs) -> (vintage date, how the date was read, publisher)
PUBLICATIONS: dict[str, tuple[str, str, str]] = {
    "Eurostat, Statistics in Focus: External Trade No.11/2000 (8.2.2000) - abstract via europeansources.info":
        ("2000-02-08", "publication date in the title", "eurostat"),
    "Eurostat news release for EU-Japan summit of 23 Apr 2008 'A EU27 external trade deficit of 34 bn euro "
    "with Japan in 2007' (copy on newsfood.com)":
        ("2008-04-23", "release date in the title", "eurostat"),
    "Eurostat STAT/09/59, 29 Apr 2009 'An EU27 external trade deficit of 32 bn euro with Japan in 2008' "
    "(copy on denederlandsegrondwet.nl)":
        ("2009-04-29", "release date in the title", "eurostat"),
    "Eurostat news release (2010) 'An EU27 External Trade Deficit of 20 bn Euro with Japan in 2009' "
    "(copy on europe.xorte.com)":
        ("2010-01-01", "year only (2010) in the title; first day of the year used", "eurostat"),
    "Eurostat news release 26 May 2011 (copy on denederlandsegrondwet.nl)":
        ("2011-05-26", "release date in the title", "eurostat"),
    "EUbusiness 'The EU's Trade Relationship with Japan' (last modified 08 Jul 2011)":
        ("2011-07-08", "'last modified' date in the title", "secondary"),
    "Eurostat release 'EU27 Trade in Goods Deficit with Japan Restricted to 8 bn euro in 2012' "
    "(copy on europe.xorte.com, added 2013-03-25)":
        ("2013-03-25", "date the copy was added (title); the release itself is not dated", "eurostat"),
    "Eurostat STAT/13/170, 18 Nov 2013 'EU28 trade in goods deficit with Japan decreased to 1.9 bn euro in "
    "the first half of 2013' (copy on parlement.com)":
        ("2013-11-18", "release date in the title", "eurostat"),
    "KUNA 'EU-Japan trade exchanges drop' (6 May 2014) reporting Eurostat release for 22nd EU-Japan summit":
        ("2014-05-06", "article date in the title (reports a Eurostat release)", "eurostat"),
    "European Commission DG Trade, Countries and regions: Japan (archived version c. late 2014, "
    "'Trade in goods 2011-2013')":
        ("2014-10-01",
         ("approximate: title says 'c. late 2014'; 2014-10-01 stands for 'late 2014'. Its 2012 figures "
          "(55.7/64.8) equal the May 2015 Eurostat release, not the May 2014 one (55.6/64.7), which "
          "supports it being the later vintage"),
         "dg_trade"),
    "Eurostat news release 93/2015, 28 May 2015 'EU trade in goods with Japan almost in balance in 2014' "
    "(copy on paperzz.com)":
        ("2015-05-28", "release date in the title", "eurostat"),
    "Helgi Library summary of Eurostat release on EU international trade in services 2015":
        ("2016-01-01", "approximate: first Eurostat release of 2015 services data, so 2016; year only",
         "eurostat"),
    "Eurostat Statistics Explained, Archive: Japan-EU - international trade in goods statistics "
    "(revision 11 Jun 2018, data extracted Apr 2018)":
        ("2018-06-11", "revision date in the title", "eurostat"),
    "European Commission DG Trade, Countries and regions: Japan (archived version, "
    "'Date of retrieval: 17/04/2019')":
        ("2019-04-17", "'Date of retrieval' printed on the page", "dg_trade"),
    "Delegation of the European Union to Japan, 'EU-Japan Trade and Investment Relations' "
    "(version with 2020 data)":
        ("2021-01-01", "approximate: page version carrying 2020 data, so 2021 at the earliest; year only",
         "eeas"),
    "Delegation of the EU to Japan, 'Trade and Investment Relations / EU-Japan Policy Dialogues' "
    "(version with 2023 data; URL as stored)":
        ("2024-01-01", "approximate: page version carrying 2023 data, so 2024 at the earliest; year only",
         "eeas"),
    "European Commission DG Trade and Economic Security, 'Japan - EU trade relations' page "
    "(policy.trade.ec.europa.eu, 2025 version; URL as stored is a proxy mirror)":
        ("2025-01-01", "approximate: '2025 version' in the title; year only", "dg_trade"),
}

GEO_ORDER = ("EU15", "EU27_2007", "EU28", "EU27_2020")
GEO_LABELS = {
    "EU15": "European Union - 15 countries (1995-2004)",
    "EU27_2007": "European Union - 27 countries (2007-2013)",
    "EU28": "European Union - 28 countries (2013-2020)",
    "EU27_2020": "European Union - 27 countries (from 2020)",
}

# --------------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------------
EUROSTAT_CODE_EXCEPTIONS = {"GR": "EL", "GB": "UK"}
# Source: https://european-union.europa.eu/principles-countries-history/eu-countries_en
# (founders: the Treaty of Rome's entry into force, 1958-01-01)
EU_ENTRY = {
    **dict.fromkeys(("BE", "DE", "FR", "IT", "LU", "NL"), "1958-01-01"),
    **dict.fromkeys(("DK", "IE", "GB"), "1973-01-01"),
    "GR": "1981-01-01",
    **dict.fromkeys(("ES", "PT"), "1986-01-01"),
    **dict.fromkeys(("AT", "FI", "SE"), "1995-01-01"),
    **dict.fromkeys(("CY", "CZ", "EE", "HU", "LV", "LT", "MT", "PL", "SK", "SI"), "2004-05-01"),
    **dict.fromkeys(("BG", "RO"), "2007-01-01"),
    "HR": "2013-07-01",
}
EU_EXIT = {"GB": "2020-01-31"}

# SIPRI register names that do not equal an ISO 3166-1 name, common name or official name.
SIPRI_NAME_TO_ISO2 = {
    "Bosnia-Herzegovina": "BA",
    "Brunei": "BN",
    "Cote d'Ivoire": "CI",
    "DR Congo": "CD",
    "Palestine": "PS",
    "Russia": "RU",
    "Saint Vincent": "VC",
    "Turkiye": "TR",
    "UAE": "AE",
    "eSwatini": "SZ",
}
# Names in the full register deliberately left without an ISO row: former states, non-ISO entities,
# international organisations (SIPRI marks them '**'), armed non-state actors (marked '*') and unknowns.
SIPRI_UNMAPPED = frozenset({
    # former states / entities that no longer exist
    "Biafra", "Czechoslovakia", "East Germany (GDR)", "Katanga", "North Yemen", "South Vietnam",
    "South Yemen", "Soviet Union", "Yemen Arab Republic (North Yemen)", "Yugoslavia",
    # not in ISO 3166-1
    "Kosovo", "Northern Cyprus",
    # international organisations
    "African Union**", "European Union**", "NATO**", "OSCE**", "Regional Security System**",
    "United Nations**",
    # armed non-state actors
    "ANC (South Africa)*", "Amal (Lebanon)*", "Anti-Castro rebels (Cuba)*", "Armas (Guatemala)*",
    "Contras (Nicaragua)*", "Darfur rebels (Sudan)*", "ELF (Ethiopia)*", "EPLF (Ethiopia)*", "FAN (Chad)*",
    "FMLN (El Salvador)*", "FNLA (Angola)*", "FRELIMO (Portugal)*", "GUNT (Chad)*", "Haiti rebels*",
    "Hamas (Palestine)*", "Hezbollah (Lebanon)*", "Houthi rebels (Yemen)*", "Indonesia rebels*",
    "Khmer Rouge (Cambodia)*", "Kurdistan Regional Government (Iraq)*", "LF (Lebanon)*", "LRA (Uganda)*",
    "LTTE (Sri Lanka)*", "Lebanon Palestinian rebels*", "Libya HoR*", "MNLF (Philippines)*",
    "MPLA (Portugal)*", "MTA (Myanmar)*", "Mujahedin (Afghanistan)*", "NLA (Macedonia)*", "NTC (Libya)*",
    "Northern Alliance (Afghanistan)*", "PAIGC (Portugal)*", "PIJ (Israel/Palestine)*", "PKK (Turkiye)*",
    "PLO (Israel)*", "PRC (Israel/Palestine)*", "Pathet Lao (Laos)*", "Provisional IRA (UK)*",
    "RPF (Rwanda)*", "RUF (Sierra Leone)*", "SLA (Lebanon)*", "SNA (Somalia)*", "SPLA (Sudan)*",
    "Southern rebels (Yemen)*", "Syria rebels*", "UIC (Somalia)*", "UNITA (Angola)*", "Ukraine Rebels*",
    "United Wa State (Myanmar)*", "Viet Cong (South Vietnam)*", "Viet Minh (France)*", "ZAPU (Zimbabwe)*",
    "unknown rebel group*",
    # unknown parties
    "unknown recipient(s)", "unknown supplier(s)",
})

# --------------------------------------------------------------------------------------------------
# OECD csvfilewithlabels
# --------------------------------------------------------------------------------------------------
OECD_HEADER = [
    "STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION", "REF_AREA", "Reference area", "COMMODITY",
    "Commodity", "POLICY_TYPE", "Policy type", "POLICY_VARIATION", "Policy variation", "POLICY_DESCRIPTION",
    "Policy description", "TIME_PERIOD", "Time period", "OBS_VALUE", "Observation value",
]
OECD_DATAFLOW = "OECD.TAD.ADM,DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC,3.0"
OECD_STRUCTURE_ID = "OECD.TAD.ADM:DSD_QDD_TAD_EXP_RESTRIC@DF_QDD_TAD_EXP_RESTRIC(3.0)"
OECD_STRUCTURE_NAME = (
    "OECD Inventory of Export Restrictions on Critical Raw Materials "
    "[REWRITTEN from a per-measure JSON excerpt (bitbaum/substrata), not an OECD API response; "
    "see data/README.md]"
)
OECD_VARIATION_PLACEHOLDER = "_Z"
OECD_VARIATION_LABEL = "Placeholder: the real POLICY_VARIATION code is not in the source excerpt"
# excerpt field -> attribute code, in the order rows are written
OECD_ATTRIBUTES = (
    ("value", "VAL"), ("valueUnit", "VAL_UNIT"), ("condition", "VAL_CONDITION"), ("introduced", "DATI"),
    ("ends", "END"), ("temporary", "TEMP"), ("purpose", "POM"), ("document", "NOD"),
    ("legalBasis", "LEG"), ("link", "LINK"), ("agency", "AGEN"), ("note", "ADD"),
)
OECD_EXPECTED_ISO3 = {"ae": "ARE", "ao": "AGO", "ar": "ARG"}


# ==================================================================================================
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_iso() -> list[dict]:
    raw = ISO_JSON.read_bytes()
    if sha256(raw) != ISO_JSON_SHA256:
        sys.exit(f"{ISO_JSON} does not match the vendored pycountry 26.2.16 file (sha256)")
    return sorted(json.loads(raw)["3166-1"], key=lambda c: c["alpha_2"])


# --------------------------------------------------------------------------------------------------
def copy_verbatim(shared: Path, out: Path) -> None:
    for src, dst in VERBATIM:
        write_bytes(out / dst, (shared / src).read_bytes())


def check_sipri_subset(shared: Path) -> None:
    """The Japan subset must be the full register's Japan rows (content; line endings differ)."""
    full = (shared / SIPRI_FULL).read_bytes().decode("latin-1").split("\n")
    sub = (shared / SIPRI_SUBSET).read_bytes().decode("latin-1").split("\r\n")
    head = SIPRI_PREAMBLE_LINES + 1
    if full[:head] != sub[:head]:
        sys.exit("SIPRI subset preamble/header differs from the full register")
    japan = []
    for line in full[head:]:
        r = next(csv.reader([line]), [])
        if len(r) >= 2 and "Japan" in (r[0], r[1]):
            japan.append(line)
    if japan != [line for line in sub[head:] if line]:
        sys.exit("SIPRI subset rows are not exactly the full register's Japan rows")


def build_events(shared: Path, out: Path) -> int:
    """Curated events file: copied; only whitespace trimming would be allowed (none is needed today)."""
    raw = (shared / EVENTS_SRC).read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    if rows[0] != EVENTS_COLUMNS:
        sys.exit(f"{EVENTS_SRC}: unexpected header {rows[0]}")
    trimmed = [[v.strip() for v in r] for r in rows]
    if trimmed == rows:
        data = raw
    else:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(trimmed)
        data = buf.getvalue().encode("utf-8")
    write_bytes(out / EVENTS_OUT, data)
    return len(rows) - 1


# --------------------------------------------------------------------------------------------------
def _rank(row: dict[str, str]) -> tuple:
    title = row["source_title"]
    if title not in PUBLICATIONS:
        sys.exit(f"no vintage date known for source_title {title!r}: add it to PUBLICATIONS")
    date, _, publisher = PUBLICATIONS[title]
    tier = 0 if publisher in OFFICIAL else 1
    # sort ascending: official first, then newest date first, then publisher preference
    return (tier, -int(date.replace("-", "")), PUBLISHER_RANK[publisher])


def choose_vintages(rows: list[dict[str, str]]) -> dict[tuple[int, str, str], tuple[dict, list[dict]]]:
    groups: dict[tuple[int, str, str], list[dict]] = defaultdict(list)
    for n, row in enumerate(rows, start=1):
        row = {**row, "_row": n}
        if row["partner"] != "JP":
            sys.exit(f"unexpected partner {row['partner']!r}")
        if row["reporter"] not in GEO_LABELS:
            sys.exit(f"unexpected reporter {row['reporter']!r}")
        groups[(int(row["year"]), row["reporter"], row["flow"])].append(row)
    chosen = {}
    for key, cands in groups.items():
        cands = sorted(cands, key=_rank)
        if len(cands) > 1 and _rank(cands[0]) == _rank(cands[1]):
            sys.exit(f"vintage rule cannot separate the candidates for {key}")
        chosen[key] = (cands[0], cands[1:])
    return chosen


def _mio(value_bn: str) -> float:
    return round(float(value_bn) * 1000, 1)


def _provenance(row: dict, others: list[dict], ref_name: str) -> dict:
    date, basis, publisher = PUBLICATIONS[row["source_title"]]
    return {
        "source_url": row["source_url"],
        "source_title": row["source_title"],
        "as_published": row["as_published"],
        "notes": row["notes"],
        "publisher": publisher,
        "vintage_date": date,
        "vintage_date_basis": basis,
        "reference_file": ref_name,
        "reference_line": row["_row"] + 1,
        "value_eur_bn": row["value_eur_bn"],
        "other_vintages": [
            {"value_mio_eur": _mio(o["value_eur_bn"]), "source_title": o["source_title"],
             "source_url": o["source_url"], "as_published": o["as_published"],
             "vintage_date": PUBLICATIONS[o["source_title"]][0], "reference_line": o["_row"] + 1}
            for o in others
        ],
    }


def build_jsonstat(*, rows: list[dict[str, str]], ref_name: str, label: str, dataset_id: str,
                   fixed_dims: list[tuple[str, str, str, str]],
                   flow_dim: tuple[str, str, dict[str, tuple[str, str]]], flow_position: int,
                   synthetic_note: str) -> tuple[dict, dict[tuple, dict]]:
    """Build one JSON-stat 2.0 dataset from a reference trade table.

    fixed_dims: (dim id, dim label, code, code label) of the one-category dimensions, in order (partner
    included); the flow dimension is inserted at flow_position; geo and time always come last."""
    chosen = choose_vintages(rows)
    flow_id, flow_label, flow_codes = flow_dim  # flow_codes: reference flow -> (code, label)
    geos = [g for g in GEO_ORDER if any(k[1] == g for k in chosen)]
    years = sorted({k[0] for k in chosen})
    dims: list[tuple[str, str, list[tuple[str, str]]]] = [(d, dl, [(c, cl)]) for d, dl, c, cl in fixed_dims]
    dims.insert(flow_position, (flow_id, flow_label, list(flow_codes.values())))
    dims.append(("geo", "Geopolitical entity (reporting)", [(g, GEO_LABELS[g]) for g in geos]))
    dims.append(("time", "Time", [(str(y), str(y)) for y in years]))
    ids = [d[0] for d in dims]
    size = [len(d[2]) for d in dims]
    pos = {d[0]: {code: i for i, (code, _) in enumerate(d[2])} for d in dims}

    def flat_index(coords: dict[str, str]) -> int:
        idx = 0
        for dim_id, n in zip(ids, size):
            idx = idx * n + pos[dim_id][coords[dim_id]]
        return idx

    values: dict[int, float] = {}
    provenance: dict[int, dict] = {}
    decoded: dict[int, tuple] = {}
    for (year, geo, flow), (row, others) in chosen.items():
        coords = {d[0]: d[2][0][0] for d in dims if len(d[2]) == 1}
        coords.update({flow_id: flow_codes[flow][0], "geo": geo, "time": str(year)})
        i = flat_index(coords)
        if i in values:
            sys.exit(f"index collision at {i}")
        values[i] = _mio(row["value_eur_bn"])
        provenance[i] = _provenance(row, others, ref_name)
        decoded[i] = (year, geo, flow, row)

    no_data = {}
    for k, (dim_id, _, cats) in enumerate(dims):
        used = set()
        for i in values:
            rest = i
            for j in range(len(dims) - 1, k, -1):
                rest //= size[j]
            used.add(rest % size[k])
        no_data[dim_id] = [p for p in range(len(cats)) if p not in used]

    dataset = {
        "version": "2.0",
        "class": "dataset",
        "label": label,
        "source": "ESTAT",
        "updated": UPDATED,
        "value": {str(i): values[i] for i in sorted(values)},
        "status": {},
        "id": ids,
        "size": size,
        "dimension": {
            dim_id: {"label": dim_label,
                     "category": {"index": {c: n for n, (c, _) in enumerate(cats)},
                                  "label": {c: cl for c, cl in cats}}}
            for dim_id, dim_label, cats in dims
        },
        "extension": {
            "lang": "EN",
            "agencyId": "ESTAT",
            "id": dataset_id,
            "positions-with-no-data": no_data,
            "synthetic_note": synthetic_note,
            "vintage_rule": VINTAGE_RULE,
            "built_from": {
                "file": f"data/reference/{ref_name}",
                "unit_conversion": "value = round(value_eur_bn * 1000, 1): billions to millions of euro",
            },
            "provenance": {str(i): provenance[i] for i in sorted(provenance)},
        },
    }
    return dataset, decoded


def _check_jsonstat(dataset: dict, decoded: dict[int, tuple], flow_id: str,
                    flow_codes: dict[str, tuple[str, str]]) -> None:
    """Decode every value by row-major index arithmetic and compare with the chosen reference row."""
    ids, size = dataset["id"], dataset["size"]
    if len(dataset["value"]) != len(decoded):
        sys.exit("value count differs from chosen rows")
    inverse = {d: {p: c for c, p in dataset["dimension"][d]["category"]["index"].items()} for d in ids}
    code_to_flow = {code: flow for flow, (code, _) in flow_codes.items()}
    for key, value in dataset["value"].items():
        rest, coords = int(key), {}
        for dim_id, n in reversed(list(zip(ids, size))):
            coords[dim_id] = inverse[dim_id][rest % n]
            rest //= n
        year, geo, flow, row = decoded[int(key)]
        ok = (coords["time"] == row["year"] == str(year) and coords["geo"] == row["reporter"] == geo
              and code_to_flow[coords[flow_id]] == row["flow"] == flow and coords["partner"] == row["partner"]
              and abs(value - float(row["value_eur_bn"]) * 1000) < 1e-6
              and dataset["extension"]["provenance"][key]["as_published"] == row["as_published"])
        if not ok:
            sys.exit(f"JSON-stat round trip failed at index {key}: {coords} {value} vs {row}")


def dump_jsonstat(dataset: dict) -> bytes:
    # compact, as the dissemination API sends it
    return json.dumps(dataset, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_goods(shared: Path, out: Path) -> int:
    rows = read_csv_rows(shared / GOODS_SRC)
    flow_codes = {"export": ("MIO_EXP_VAL", "Exports in million of ECU/EURO"),
                  "import": ("MIO_IMP_VAL", "Imports in million of ECU/EURO"),
                  "balance": ("MIO_BAL_VAL", "Trade balance in million ECU/EURO")}
    dataset, decoded = build_jsonstat(
        rows=rows, ref_name="eu_japan_goods_trade_annual.csv",
        label="EU trade in goods with Japan, annual, million euro: published figures rewritten into the "
              "ext_lt_maineu JSON-stat shape (NOT an API response)",
        dataset_id="EXT_LT_MAINEU",
        fixed_dims=[("freq", "Time frequency", "A", "Annual"),
                    ("sitc06", "Standard International Trade Classification (SITC Rev. 4)", "TOTAL",
                     "Total - all products"),
                    ("partner", "Geopolitical entity (partner)", "JP", "Japan")],
        flow_dim=("indic_et", "External trade indicator", flow_codes), flow_position=1,
        synthetic_note=(
            "Real published figures (Eurostat news releases, DG Trade and Statistics Explained pages, as "
            "collected in data/reference/eu_japan_goods_trade_annual.csv with their source URL and the text "
            "as published) rewritten into the JSON-stat 2.0 shape of the Eurostat dissemination API for "
            "ext_lt_maineu. This is not a response of that API: no ext_lt_maineu extract was available. "
            "Values are the published billions x 1000 (so they carry the published rounding); 'updated' is "
            "the build date. Some reporter aggregates were inferred by the reference table's compiler from "
            "the page date (see each observation's notes)."),
    )
    _check_jsonstat(dataset, decoded, "indic_et", flow_codes)
    write_bytes(out / "snapshot/eurostat_ext_lt_maineu_jp.json", dump_jsonstat(dataset))
    return len(dataset["value"])


MAIN_PARTNERS_REF = "reference/eu_main_partners_goods_trade_annual.csv"
# Kept by hand in this repository's data/ (each says where its content was read: data/README.md), not built from
# the shared files: copied into --out-dir as they are, so that a build elsewhere is the whole data folder.
CURATED = (MAIN_PARTNERS_REF, "snapshot/comext_codelist_cxt_nc_excerpt.xml")


def copy_curated(out: Path) -> None:
    for name in CURATED:
        source, target = DEFAULT_OUT / name, out / name
        if source.resolve() != target.resolve():
            write_bytes(target, source.read_bytes())
MAIN_PARTNER_LABELS = {"US": "United States", "CN": "China", "UK": "United Kingdom", "CH": "Switzerland",
                       "RU": "Russia", "TR": "Türkiye", "NO": "Norway", "KR": "South Korea", "IN": "India"}


def build_main_partners(out: Path) -> int:
    """The EU's trade in goods with its other main partners (not Japan), from the repository's own curated
    table data/reference/eu_main_partners_goods_trade_annual.csv (each row cites the page it was read from),
    rewritten into the ext_lt_maineu JSON-stat shape. One figure per (year, partner, aggregate, flow): the
    table holds one vintage only, and the build refuses duplicates."""
    rows = read_csv_rows(DEFAULT_OUT / MAIN_PARTNERS_REF)
    flow_codes = {"export": ("MIO_EXP_VAL", "Exports in million of ECU/EURO"),
                  "import": ("MIO_IMP_VAL", "Imports in million of ECU/EURO"),
                  "balance": ("MIO_BAL_VAL", "Trade balance in million ECU/EURO")}
    keyed: dict[tuple[int, str, str, str], dict] = {}
    for n, row in enumerate(rows, start=1):
        key = (int(row["year"]), row["partner"], row["reporter"], row["flow"])
        if row["partner"] not in MAIN_PARTNER_LABELS:
            sys.exit(f"{MAIN_PARTNERS_REF} line {n + 1}: partner {row['partner']!r} is not a main partner")
        if row["reporter"] not in GEO_LABELS or row["flow"] not in flow_codes:
            sys.exit(f"{MAIN_PARTNERS_REF} line {n + 1}: unexpected reporter or flow")
        if key in keyed:
            sys.exit(f"{MAIN_PARTNERS_REF} line {n + 1}: duplicate figure for {key}")
        keyed[key] = {**row, "_row": n}
    partners = [p for p in MAIN_PARTNER_LABELS if any(k[1] == p for k in keyed)]
    geos = [g for g in GEO_ORDER if any(k[2] == g for k in keyed)]
    years = sorted({k[0] for k in keyed})
    dims = [("freq", "Time frequency", [("A", "Annual")]),
            ("indic_et", "External trade indicator", list(flow_codes.values())),
            ("sitc06", "Standard International Trade Classification (SITC Rev. 4)",
             [("TOTAL", "Total - all products")]),
            ("partner", "Geopolitical entity (partner)", [(p, MAIN_PARTNER_LABELS[p]) for p in partners]),
            ("geo", "Geopolitical entity (reporting)", [(g, GEO_LABELS[g]) for g in geos]),
            ("time", "Time", [(str(y), str(y)) for y in years])]
    ids = [d[0] for d in dims]
    size = [len(d[2]) for d in dims]
    pos = {d[0]: {code: i for i, (code, _) in enumerate(d[2])} for d in dims}
    values: dict[int, float] = {}
    provenance: dict[int, dict] = {}
    for (year, partner, geo, flow), row in keyed.items():
        coords = {"freq": "A", "indic_et": flow_codes[flow][0], "sitc06": "TOTAL", "partner": partner,
                  "geo": geo, "time": str(year)}
        i = 0
        for dim_id, n in zip(ids, size):
            i = i * n + pos[dim_id][coords[dim_id]]
        values[i] = _mio(row["value_eur_bn"])
        provenance[i] = {"source_url": row["source_url"], "source_title": row["source_title"],
                         "as_published": row["as_published"], "notes": row["notes"],
                         "cited_from_published_page": True, "reference_file": MAIN_PARTNERS_REF.split("/")[1],
                         "reference_line": row["_row"] + 1, "value_eur_bn": row["value_eur_bn"]}
    # round trip: decode every flat index back to its row
    inverse = {d[0]: {p: c for c, p in pos[d[0]].items()} for d in dims}
    code_to_flow = {code: flow for flow, (code, _) in flow_codes.items()}
    for i, value in values.items():
        rest, coords = i, {}
        for dim_id, n in reversed(list(zip(ids, size))):
            coords[dim_id] = inverse[dim_id][rest % n]
            rest //= n
        row = keyed[(int(coords["time"]), coords["partner"], coords["geo"], code_to_flow[coords["indic_et"]])]
        if abs(value - float(row["value_eur_bn"]) * 1000) > 1e-6:
            sys.exit(f"JSON-stat round trip failed at index {i}")
    dataset = {
        "version": "2.0", "class": "dataset",
        "label": "EU trade in goods with its main partners other than Japan, annual, million euro: figures cited "
                 "from published European Commission and Eurostat pages, rewritten into the ext_lt_maineu "
                 "JSON-stat shape (NOT an API response)",
        "source": "ESTAT", "updated": UPDATED,
        "value": {str(i): values[i] for i in sorted(values)},
        "status": {}, "id": ids, "size": size,
        "dimension": {d: {"label": dl, "category": {"index": {c: n for n, (c, _) in enumerate(cats)},
                                                    "label": {c: cl for c, cl in cats}}}
                      for d, dl, cats in dims},
        "extension": {
            "lang": "EN", "agencyId": "ESTAT", "id": "EXT_LT_MAINEU",
            "synthetic_note": (
                "Real published figures, each cited from a published DG Trade or Eurostat page (provenance per "
                "observation: cited_from_published_page), rewritten into the JSON-stat 2.0 shape of the "
                "Eurostat dissemination API for ext_lt_maineu. NOT an API response. Only partner-years a page "
                "could be found for are present; the others are absent, never estimated. Values are the "
                "published billions x 1000."),
            "built_from": {"file": f"data/{MAIN_PARTNERS_REF}",
                           "unit_conversion": "value = round(value_eur_bn * 1000, 1): billions to millions of euro"},
            "provenance": {str(i): provenance[i] for i in sorted(provenance)},
        },
    }
    write_bytes(out / "snapshot/eurostat_ext_lt_maineu_main_partners.json", dump_jsonstat(dataset))
    return len(values)


def build_services(shared: Path, out: Path) -> int:
    rows = read_csv_rows(shared / SERVICES_SRC)
    flow_codes = {"export": ("CRE", "Credit"), "import": ("DEB", "Debit"), "balance": ("BAL", "Balance")}
    dataset, decoded = build_jsonstat(
        rows=rows, ref_name="eu_japan_services_trade_annual.csv",
        label="EU trade in services with Japan, annual, million euro: published figures rewritten into the "
              "bop_its6_det JSON-stat shape (NOT an API response)",
        dataset_id="BOP_ITS6_DET",
        fixed_dims=[("freq", "Time frequency", "A", "Annual"),
                    ("currency", "Currency", "MIO_EUR", "Million euro"),
                    ("bop_item", "BOP_item", "S", "Services"),
                    ("partner", "Geopolitical entity (partner)", "JP", "Japan")],
        flow_dim=("stk_flow", "Stock or flow", flow_codes), flow_position=3,
        synthetic_note=(
            "Real published figures (Eurostat releases, DG Trade and EU Delegation to Japan pages, as "
            "collected in data/reference/eu_japan_services_trade_annual.csv with their source URL and the "
            "text as published) rewritten into the JSON-stat 2.0 shape of the Eurostat dissemination API for "
            "bop_its6_det. This is not a response of that API: no bop_its6_det extract was available. "
            "export -> CRE, import -> DEB, balance -> BAL. Values are the published billions x 1000 (so they "
            "carry the published rounding); 'updated' is the build date. A published balance need not equal "
            "credit minus debit (2020: the EEAS page prints a surplus of 'almost 15bn' beside 25.5 and "
            "12.5)."),
    )
    _check_jsonstat(dataset, decoded, "stk_flow", flow_codes)
    write_bytes(out / "snapshot/eurostat_bop_its6_det_jp.json", dump_jsonstat(dataset))
    return len(dataset["value"])


# --------------------------------------------------------------------------------------------------
def _ddmmyyyy(iso_date: str) -> str:
    y, m, d = iso_date.split("-")
    return f"{d}/{m}/{y}"


def build_oecd(shared: Path, out: Path, iso: list[dict]) -> int:
    doc = json.loads((shared / OECD_SRC).read_bytes())
    if doc["dataYear"] != 2024 or doc["dataflow"] != OECD_DATAFLOW:
        sys.exit("unexpected OECD excerpt header")
    by_iso2 = {c["alpha_2"].lower(): c for c in iso}
    period = str(doc["dataYear"])
    rows = []
    for m in doc["measures"]:
        country = by_iso2[m["iso2"]]
        iso3 = country["alpha_3"]
        if m["iso2"] in OECD_EXPECTED_ISO3 and OECD_EXPECTED_ISO3[m["iso2"]] != iso3:
            sys.exit(f"ISO3 mismatch for {m['iso2']}")
        for line in m["lines"]:
            attrs = []
            for field, code in OECD_ATTRIBUTES:
                v = m[field]
                if v is None:
                    continue  # null in the excerpt: no row (OECD may have sent 'nd', '' or nothing)
                if field in ("introduced", "ends"):
                    v = _ddmmyyyy(v)
                elif field == "temporary":
                    v = "yes" if v else "no"
                attrs.append((code, v))
            if line.get("asLegislated"):
                attrs.append(("ORIG_LEG_PROD", line["asLegislated"]))
            for code, v in attrs:
                rows.append(["DATAFLOW", OECD_STRUCTURE_ID, OECD_STRUCTURE_NAME, "I", iso3, country["name"],
                             "HS07_" + line["hs"], line["label"], m["type"], m["typeLabel"],
                             OECD_VARIATION_PLACEHOLDER, OECD_VARIATION_LABEL, code, "", period, "", v, ""])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(OECD_HEADER)
    w.writerows(rows)
    write_bytes(out / "snapshot/oecd_export_restrictions.csv", buf.getvalue().encode("utf-8"))
    return len(rows)


# --------------------------------------------------------------------------------------------------
def sipri_names(shared: Path) -> set[str]:
    """Supplier and recipient names of the full register (latin-1, 11 preamble lines).

    The stored file has LF line endings, two stray CRs, and 4 records whose comment holds a line break:
    their 4-field tails (starting with an empty Recipient) are skipped here."""
    text = (shared / SIPRI_FULL).read_bytes().decode("latin-1").replace("\r", "")
    lines = text.split("\n")
    if not lines[SIPRI_PREAMBLE_LINES].startswith("Recipient,Supplier,Year of order"):
        sys.exit("SIPRI register header not where expected")
    names = set()
    for r in csv.reader(lines[SIPRI_PREAMBLE_LINES + 1:]):
        if len(r) >= 13 and r[0] and r[1]:
            names.update((r[0], r[1]))
    return names


def build_countries(shared: Path, out: Path, iso: list[dict]) -> int:
    by_name: dict[str, str] = {}
    for c in iso:
        for k in ("name", "common_name", "official_name"):
            if k in c:
                by_name.setdefault(c[k], c["alpha_2"])
    names = sipri_names(shared)
    sipri_for: dict[str, str] = {}
    unmapped = set()
    for n in sorted(names):
        code = SIPRI_NAME_TO_ISO2.get(n) or by_name.get(n)
        if code is None:
            unmapped.add(n)
            continue
        if code in sipri_for:
            sys.exit(f"two SIPRI names for {code}: {sipri_for[code]!r}, {n!r}")
        sipri_for[code] = n
    if unmapped != SIPRI_UNMAPPED:
        sys.exit(f"SIPRI names changed: new unmapped {sorted(unmapped - SIPRI_UNMAPPED)}, "
                 f"no longer present {sorted(SIPRI_UNMAPPED - unmapped)}")
    iso2s = {c["alpha_2"] for c in iso}
    if not set(EU_ENTRY) <= iso2s or len(EU_ENTRY) != 28:
        sys.exit("EU entry table broken")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["iso2", "iso3", "name", "eurostat_code", "sipri_name", "eu_entry_date", "eu_exit_date"])
    for c in iso:
        a2 = c["alpha_2"]
        w.writerow([a2, c["alpha_3"], c["name"], EUROSTAT_CODE_EXCEPTIONS.get(a2, a2), sipri_for.get(a2, ""),
                    EU_ENTRY.get(a2, ""), EU_EXIT.get(a2, "")])
    write_bytes(out / "reference/countries.csv", buf.getvalue().encode("utf-8"))
    return len(iso)


# ==================================================================================================
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared_data", nargs="?", type=Path, default=DEFAULT_SHARED,
                    help="folder holding trade/, defence/, minerals/, reference/ (default: ../shared/data)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT,
                    help="data folder to write snapshot/ and reference/ into (default: this repo's data/)")
    args = ap.parse_args(argv)
    shared, out = args.shared_data.resolve(), args.out_dir.resolve()
    if not shared.is_dir():
        sys.exit(f"shared data folder not found: {shared}")
    iso = load_iso()
    copy_verbatim(shared, out)
    copy_curated(out)
    check_sipri_subset(shared)
    counts = {
        "snapshot/security_events.csv": build_events(shared, out),
        "snapshot/eurostat_ext_lt_maineu_jp.json": build_goods(shared, out),
        "snapshot/eurostat_bop_its6_det_jp.json": build_services(shared, out),
        "snapshot/eurostat_ext_lt_maineu_main_partners.json": build_main_partners(out),
        "snapshot/oecd_export_restrictions.csv": build_oecd(shared, out, iso),
        "reference/countries.csv": build_countries(shared, out, iso),
    }
    for name, n in counts.items():
        print(f"{name}: {n}")
    for sub in ("snapshot", "reference"):
        for p in sorted((out / sub).iterdir()):
            print(f"{sha256(p.read_bytes())}  {sub}/{p.name}")


if __name__ == "__main__":
    main()
