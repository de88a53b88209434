"""OECD Inventory of Export Restrictions on Industrial Raw Materials: SDMX-CSV (`format=csvfilewithlabels`).

One row per *attribute* of a measure: the measure is (REF_AREA, COMMODITY, POLICY_TYPE, POLICY_VARIATION,
TIME_PERIOD), the attribute code is in POLICY_DESCRIPTION (VAL, VAL_UNIT, DATI, TEMP, ...) and its text value in
OBS_VALUE. With labels, each code column is followed by a label column ("Commodity", "Policy type", ...).

Output frame (all String, one row per input row): REF_AREA, COMMODITY, POLICY_TYPE, POLICY_VARIATION,
POLICY_DESCRIPTION, TIME_PERIOD, OBS_VALUE, commodity_label, policy_type_label (the last two are null when the
payload came without labels). The pivot to one row per measure happens in transforms.restrictions.

Decisions:

* UTF-8, strictly (BOM dropped). Invalid UTF-8 raises ParseError; an empty body or an HTML/XML page (the SDMX API
  answers errors that way) raises ParseError.
* Columns: the seven code columns are required (all of them missing: ParseError, not this format; some of them:
  SchemaDriftError naming them). Known SDMX-CSV columns we do not use (STRUCTURE*, ACTION, other label columns,
  OBS_STATUS, UNIT_MULT, ...) are dropped; any other column raises SchemaDriftError naming it, since a new column
  in this dataflow would be a structure change we must look at.
* Mis-decoded UTF-8 in text is repaired by `repair_mojibake` (see there); what it cannot repair is counted in
  meta["rows_with_replacement_char"].
* source_version is None: SDMX-CSV carries no data-version stamp (STRUCTURE_ID is the *structure* version);
  meta["structure_ids"] records the latter.
"""

from __future__ import annotations

import polars as pl

from eujp.errors import ParseError
from eujp.parse import ParsedPayload, check_columns, decode_text_payload, read_text_csv

SOURCE = "OECD export restrictions SDMX-CSV"

CODE_COLUMNS: tuple[str, ...] = (
    "REF_AREA", "COMMODITY", "POLICY_TYPE", "POLICY_VARIATION", "POLICY_DESCRIPTION", "TIME_PERIOD", "OBS_VALUE",
)
LABEL_COLUMNS: dict[str, str] = {"Commodity": "commodity_label", "Policy type": "policy_type_label"}
OUTPUT_COLUMNS: tuple[str, ...] = (*CODE_COLUMNS, *LABEL_COLUMNS.values())

# SDMX-CSV columns that may appear and carry nothing we load.
KNOWN_UNUSED_COLUMNS: frozenset[str] = frozenset({
    "DATAFLOW", "STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION",
    "Reference area", "Policy variation", "Policy description", "Time period", "Observation value",
    "FREQ", "Frequency of observation", "OBS_STATUS", "Observation status", "UNIT_MULT", "Unit multiplier",
    "UNIT_MEASURE", "Unit of measure", "DECIMALS", "Decimals", "BASE_PER", "Base period",
})

# Mis-decoded UTF-8 seen in OECD strings. The lead byte of a two/three-byte sequence arrives as "i\ufffd"
# (an 'i' and U+FFFD) while the continuation bytes survive as their cp1252/latin-1 characters:
#   "People" "i\ufffd\u20ac\u2122" "s"  = E2 80 99 with E2 lost        -> "People’s"
#   "D" "i\ufffd\u00a9" "cret"         = C3 A9 with C3 lost             -> "Décret"
# The lost lead byte of a two-byte sequence is taken to be C3 (accented letters U+00E0..U+00FF, the common case in
# French/Spanish/Portuguese legal titles), except after "n"/"N"/"n." where the ordinal signs ° and º (C2 B0,
# C2 BA) are meant ("n° 265/2018", "n.º 4/24") unless a letter follows (C3 BA: "número"); "n" + "i\ufffd" +
# space is a lost "°" too (seen upstream). A capital (C3 80..9F, À..ß) arrives as "i\ufffd" and the character
# cp1252 reads its second byte as ("i\ufffd‰" = É); a three-byte E2 80 xx as "i\ufffd€" and its third byte's.


def _cp1252(byte: int) -> str:
    """The character cp1252 reads `byte` as (latin-1's control character for the five bytes cp1252 leaves
    undefined)."""
    return bytes([byte]).decode("cp1252", errors="ignore") or chr(byte)


_MOJIBAKE: dict[str, str] = {
    "i\ufffd\u20ac\u2122": "\u2019",  # ’
    "\ufffd\u20ac\u2122": "\u2019",
    "i\ufffd\u20ac\u0153": "\u201c",  # “  (E2 80 9C)
    "i\ufffd\u20ac\u02dc": "\u2018",  # ‘  (E2 80 98)
    "i\ufffd\u20ac\u201c": "\u2013",  # –  (E2 80 93)
    "i\ufffd\u20ac\u201d": "\u2014",  # —  (E2 80 94)
    # the rest of E2 80 xx (U+2000..U+203F: …, •, ‰, ‹ ›, the spaces), decoded, not listed one by one
    **{f"i\ufffd\u20ac{_cp1252(b)}": chr(0x2000 + b - 0x80) for b in range(0x80, 0xC0)},
    **{f"{n}i\ufffd{sign}": f"{n}{sign}" for n in ("n", "N", "n.", "N.") for sign in ("\u00b0", "\u00ba")},
    "ni\ufffd ": "n\u00b0 ",
    "Ni\ufffd ": "N\u00b0 ",
    **{f"i\ufffd{chr(b)}": chr(b + 0x40) for b in range(0xA0, 0xC0)},
    # C3 80..9F, the capitals À..ß ("i\ufffd‰" = É): their continuation bytes arrive as cp1252's characters
    # (C2 80..9F would be control characters, never text)
    **{f"i\ufffd{_cp1252(b)}": chr(b + 0x40) for b in range(0x80, 0xA0)},
    # the signs whose lead byte C2 is likelier than C3's letter wherever _AMBIGUOUS (below) did not read a letter
    "i\ufffd\u00ab": "\u00ab",  # « (a letter before it: ë)
    "i\ufffd\u00bb": "\u00bb",  # » (between letters: û)
    "i\ufffd\u00a7": "\u00a7",  # § (a letter before it: ç)
    "i\ufffd\u00b1": "\u00b1",  # ± (a letter before it: ñ)
    "i\ufffd\u00b0": "\u00b0",  # ° (ð: no language of the inventory's titles)
}
# The continuation bytes that both lead bytes make into common text: C2 a sign, C3 a letter. The letter is read
# where a letter comes before it (and after it, for »: "coût" but "aux»"), the ordinal sign º / ª after a digit
# ("Art. 1º", "1ª"), else the sign (by _MOJIBAKE above; º and ª stay ú and ê there: "Perú", "último").
_AMBIGUOUS: tuple[tuple[str, str], ...] = (
    (r"(\p{L})i\x{FFFD}\x{AB}", "${1}\u00eb"),          # Citroën, not Citroi«n
    (r"(\p{L})i\x{FFFD}\x{BB}(\p{L})", "${1}\u00fb${2}"),  # coût
    (r"(\p{L})i\x{FFFD}\x{A7}", "${1}\u00e7"),          # Licença
    (r"(\p{L})i\x{FFFD}\x{B1}", "${1}\u00f1"),          # España
    (r"([nN])i\x{FFFD}\x{BA}(\p{L})", "${1}\u00fa${2}"),  # número, Anúncio: ú before a letter, º only after
    (r"([0-9])i\x{FFFD}\x{BA}", "${1}\u00ba"),           # Art. 1º
    (r"([0-9])i\x{FFFD}\x{AA}", "${1}\u00aa"),           # 1ª
)


def repair_mojibake(expr: pl.Expr) -> pl.Expr:
    """Replace the known mis-decoded UTF-8 sequences (`_MOJIBAKE`) in a String expression, vectorised.

    The continuation bytes both lead bytes make into text (_AMBIGUOUS) are read by their neighbours first;
    then one Aho-Corasick pass, leftmost-first: at a given position the pattern listed first wins, so the
    longer, more specific sequences above take precedence over the generic two-byte rule. Text without U+FFFD is
    returned unchanged (every pattern contains U+FFFD).
    """
    for pattern, replacement in _AMBIGUOUS:
        expr = expr.str.replace_all(pattern, replacement)
    return expr.str.replace_many(list(_MOJIBAKE), list(_MOJIBAKE.values()), leftmost=True)


def parse_oecd_csv(data: bytes) -> ParsedPayload:
    text = decode_text_payload(data, SOURCE, "SDMX-CSV")
    frame = read_text_csv(text, SOURCE)
    columns = frame.columns
    if not any(c in columns for c in CODE_COLUMNS):
        raise ParseError(
            f"{SOURCE}: header has none of the SDMX code columns {list(CODE_COLUMNS)}; "
            f"first line: {text.splitlines()[0][:120]!r}"
        )
    check_columns(SOURCE, columns, CODE_COLUMNS, {*CODE_COLUMNS, *LABEL_COLUMNS, *KNOWN_UNUSED_COLUMNS},
                  extra_word="unknown")

    structure_ids = (
        sorted(frame["STRUCTURE_ID"].drop_nulls().unique().to_list()) if "STRUCTURE_ID" in columns else []
    )
    text_columns = ["OBS_VALUE", *[c for c in LABEL_COLUMNS if c in columns]]
    frame = frame.with_columns(repair_mojibake(pl.col(c)) for c in text_columns).select(
        *CODE_COLUMNS,
        *[
            (pl.col(src) if src in columns else pl.lit(None, dtype=pl.String)).alias(dst)
            for src, dst in LABEL_COLUMNS.items()
        ],
    )
    leftover = frame.select(
        pl.any_horizontal(
            pl.col(c).str.contains("\ufffd", literal=True).fill_null(False)
            for c in ("OBS_VALUE", *LABEL_COLUMNS.values())
        ).sum()
    ).item()
    meta = {
        "rows": frame.height,
        "structure_ids": structure_ids,
        "labels_present": [c for c in LABEL_COLUMNS if c in columns],
        "dropped_columns": [c for c in columns if c in KNOWN_UNUSED_COLUMNS],
        "rows_with_replacement_char": int(leftover or 0),
    }
    return ParsedPayload(frame=frame, source_version=None, meta=meta)
