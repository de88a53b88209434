"""SIPRI Arms Transfers Database trade register (CSV export of the web front end).

Layout (see FORMATS.md): a free-text preamble (11 lines in the 2025 export, not assumed), then the header

    Recipient,Supplier,Year of order, ,Number ordered, ,Weapon designation,Weapon description,
    Number delivered, ,Year(s) of delivery,status,Comments,SIPRI TIV per unit,SIPRI TIV for total order,
    SIPRI TIV of delivered weapons

The three blank-named columns hold a '?' flag for the column *before* each of them. 'Number delivered' is also
accepted under the name 'Deliveries in the Year Range', which public code and excerpts of the web front end's
register exports use in 2026 (docs/live-extraction.md, SIPRI).

SIPRI's other CSV layout, the per-delivery export ('SIPRI AT Database ID,Supplier,Recipient,...', one row per
deal and delivery year, without number ordered, comments or the TIV of the order), is not the register: it is
rejected with a ParseError that names it.

Decisions:

* **Encoding.** SIPRI exports latin-1. A payload starting with a UTF-8 BOM, or one that is valid UTF-8 *and*
  contains non-ASCII bytes, has been re-saved as UTF-8 (e.g. by a spreadsheet) and is decoded as UTF-8: real
  latin-1 text with accented letters ('ü' = 0xFC) is practically never valid UTF-8, and decoding UTF-8 as latin-1
  would silently turn 'Curaçao' into 'CuraÃ§ao'. Anything else is decoded as latin-1 (which never fails), so
  garbage is caught structurally: NUL bytes (binary, UTF-16), an HTML/XML body, no header line. Except: bytes
  0x80-0x9F are control characters in latin-1 that no text export means, and Windows-1252's quotes and dashes
  (0x92 '’', 0x96 '–') in a file saved on Windows: such a payload is decoded as Windows-1252 where it can be.
* **Line ends.** CR LF as exported, LF as stored elsewhere, or a CR alone (a file saved on classic Mac OS):
  each ends a line, as in Python's universal newlines (a CR-only file read as one line would be reported as a
  changed header).
* **Broken records.** The export does not quote fields, and a few Comments contain a line break: the record then
  continues on the next physical line (the 2025-03-13 register has 4 such records among its 29,519 lines after
  the header, i.e. 29,515 records). A record with too few fields takes the lines after it while they supply
  exactly the missing fields (each line break becomes a space; broken records in a row pair up, a record broken
  twice takes two). Any other record with the wrong number of fields raises ParseError naming its line.
* **Quotes.** The body is read by Python's csv module, as spreadsheets write CSV (RFC 4180): a '"' at a field's
  start opens a quoted field that may hold commas and line breaks (a re-saved export); a '"' inside a field is
  a character (inch marks: `Mk-42 5" gun`). A quote at a field's start that is never closed where it should be
  would swallow the records after it: a record that spans lines of which the first and another hold the
  header's fields (every '"' read as a character) raises ParseError naming them.
* **Header.** Found by content, not position: the first line starting with 'Recipient,Supplier,Year of order'
  (or, failing that, a line holding most of the expected names, to report drift precisely). Names are compared
  after trimming and case-folding; a missing, renamed or unexpected column raises SchemaDriftError naming it.
* **Version.** "Data generated: 13 Mar 2025 10:02:49 AM" -> source_version "2025-03-13T10:02:49". A preamble
  without that line gives source_version None (recorded in meta); a present but unreadable one raises ParseError.
* Empty fields are null; all columns are String (typing happens in transforms.sipri_arms), and beside them
  `line`, the record's first physical line in its file (Int64), and `register`, the file's digest.
"""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import datetime

import polars as pl

from eujp.errors import ParseError, SchemaDriftError
from eujp.parse import ParsedPayload

SOURCE = "SIPRI trade register"

# (header name as published, output column). None marks a blank-named '?' flag column.
_LAYOUT: tuple[tuple[str | None, str], ...] = (
    ("Recipient", "recipient"),
    ("Supplier", "supplier"),
    ("Year of order", "year_of_order"),
    (None, "year_of_order_flag"),
    ("Number ordered", "number_ordered"),
    (None, "number_ordered_flag"),
    ("Weapon designation", "weapon_designation"),
    ("Weapon description", "weapon_description"),
    ("Number delivered", "number_delivered"),
    (None, "number_delivered_flag"),
    ("Year(s) of delivery", "delivery_years"),
    ("status", "status"),
    ("Comments", "comments"),
    ("SIPRI TIV per unit", "tiv_per_unit"),
    ("SIPRI TIV for total order", "tiv_total_order"),
    ("SIPRI TIV of delivered weapons", "tiv_delivered"),
)
# Other published names of a column (case-folded) -> output column.
_ALIASES = {"deliveries in the year range": "number_delivered"}
OUTPUT_COLUMNS: tuple[str, ...] = tuple(col for _, col in _LAYOUT)
# Beside them: the record's first physical line in its file (1-based), and the file's digest (the first 16 hex
# digits of the SHA-1 of its bytes), so that the transform tells the registers of several files apart (identical
# records are numbered within one register; two copies of one file: their lines start again) and a message can
# point at the record.
LINE_COLUMN = "line"
REGISTER_COLUMN = "register"
_CANONICAL = {name.casefold(): col for name, col in _LAYOUT if name is not None}
_NAMED = {**_CANONICAL, **_ALIASES}
# flag column -> the named column it qualifies (the one just before it)
# a record broken by a line break has at least the fields up to the first free-text column (where a break falls)
_BREAKABLE_FROM = OUTPUT_COLUMNS.index("weapon_description") + 1
_FLAG_OF = {col: _LAYOUT[i - 1][1] for i, (name, col) in enumerate(_LAYOUT) if name is None}
_PUBLISHED = {col: name for name, col in _LAYOUT if name is not None}
_HEADER_PREFIX = "recipient,supplier,year of order"
# SIPRI's per-delivery export (not the register): its header starts so.
_PER_DELIVERY_PREFIX = "sipri at database id,supplier,recipient"

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_GENERATED = re.compile(
    r"^\s*Data generated:\s*(?P<d>\d{1,2})\s+(?P<mon>[A-Za-z]{3})[A-Za-z]*\s+(?P<y>\d{4})\s+"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})\s*(?P<ampm>[AaPp][Mm])?\s*$"
)


def decode_sipri(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding used). See the module docstring for the rule."""
    if not data or not data.strip():
        raise ParseError(f"{SOURCE}: empty payload")
    if b"\x00" in data[:4096]:
        raise ParseError(f"{SOURCE}: payload contains NUL bytes (binary or UTF-16), not a latin-1 CSV")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise ParseError(f"{SOURCE}: payload has a UTF-8 BOM but is not valid UTF-8 ({exc})") from exc
    if not data.isascii():
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if _C1_BYTES.search(data):
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in Windows-1252 too
            pass
    return data.decode("latin-1"), "latin-1"


_C1_BYTES = re.compile(rb"[\x80-\x9f]")


def _preamble_text(line: str) -> str:
    """A preamble line's text: its one non-empty field when it reads as CSV with one (a quoted or padded
    line), else the line as it is."""
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error:
        return line
    filled = [f for f in fields if f.strip()]
    return filled[0] if len(filled) == 1 else line


def parse_generated(line: str) -> str | None:
    """'Data generated: 13 Mar 2025 10:02:49 AM' -> '2025-03-13T10:02:49'; None if not that line. The line as
    a spreadsheet re-saves it is read too: quoted ('"Data generated: ..."'), or padded with empty fields to the
    header's ('Data generated: ...,,,,')."""
    line = _preamble_text(line)
    if not line.strip().lower().startswith("data generated"):
        return None
    m = _GENERATED.match(line)
    month = _MONTHS.get(m.group("mon").lower()) if m else None
    if m is None or month is None:
        raise ParseError(f"{SOURCE}: unreadable 'Data generated' line: {line.strip()!r}")
    hour = int(m.group("h"))
    if m.group("ampm"):
        if not 1 <= hour <= 12:
            raise ParseError(f"{SOURCE}: unreadable 'Data generated' line: {line.strip()!r}")
        hour = hour % 12 + (12 if m.group("ampm").lower() == "pm" else 0)
    try:
        stamp = datetime(int(m.group("y")), month, int(m.group("d")), hour, int(m.group("mi")), int(m.group("s")))
    except ValueError as exc:
        raise ParseError(f"{SOURCE}: unreadable 'Data generated' line: {line.strip()!r} ({exc})") from exc
    return stamp.isoformat()


def _split_header(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # stray control characters: not a header anyway
        return line.split(",")


def _find_header(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if line.lstrip().casefold().startswith(_HEADER_PREFIX):
            return i
    expected = "expected a line starting with 'Recipient,Supplier,Year of order'"
    # SIPRI's other layout: say so rather than report drift or garbage.
    for i, line in enumerate(lines[:200]):
        if line.lstrip().casefold().startswith(_PER_DELIVERY_PREFIX):
            raise ParseError(
                f"{SOURCE}: no header line found ({expected}): line {i + 1} is the header of SIPRI's per-delivery "
                f"export ({line.strip()[:60]!r}...), one row per deal and delivery year without number ordered, "
                "comments or the TIV of the order, which is not the trade register; export the 'Transfer "
                "register' as CSV instead (docs/live-extraction.md, SIPRI)"
            )
    # No canonical header: look for a drifted one (most expected names present) to report it precisely.
    for i, line in enumerate(lines[:200]):
        names = {f.strip().casefold() for f in _split_header(line)} if line.strip() else set()
        if len(names & _NAMED.keys()) >= len(_CANONICAL) // 2:
            return i
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    raise ParseError(f"{SOURCE}: no header line found ({expected}); first line: {first[:120]!r}")


def _map_header(fields: list[str]) -> list[str]:
    """Header fields -> output column names, positionally. Raises SchemaDriftError on any drift."""
    out: list[str] = []
    missing: list[str] = []
    unexpected: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(fields):
        name = raw.strip().casefold()
        if name:
            col = _NAMED.get(name)
            if col is None or col in seen:
                unexpected.append(raw)
                out.append(f"__unexpected_{i}")
            else:
                out.append(col)
                seen.add(col)
            continue
        # blank-named column: a '?' flag for the column just before it
        prev = out[-1] if out else None
        flag = next((f for f, base in _FLAG_OF.items() if base == prev), None)
        if flag is None or flag in seen:
            unexpected.append(f"blank column at position {i + 1} (after {fields[i - 1].strip()!r})"
                              if i else "blank first column")
            out.append(f"__unexpected_{i}")
        else:
            out.append(flag)
            seen.add(flag)
    for name, col in _LAYOUT:
        if col not in seen:
            missing.append(name if name is not None else f"blank '?' flag column after {_PUBLISHED[_FLAG_OF[col]]!r}")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(m) for m in missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(repr(u) for u in unexpected))
        raise SchemaDriftError(f"{SOURCE}: header changed: {'; '.join(parts)}")
    return out


def _literal_fields(line: str) -> int:
    """The fields of a physical line read with every '"' as a character: what the unquoted export means."""
    return line.count(",") + 1


def _records(lines: list[str], first_line_no: int, n_fields: int
             ) -> tuple[list[list[str]], list[int], list[int]]:
    """The body's records: read by Python's csv module (RFC 4180 as spreadsheets write it: a '"' opens a quoted
    field only at a field's start, so an inch mark inside a field stays a character; a quoted field may hold
    commas and line breaks, blank lines included), then records broken by an unquoted line break joined back
    (the break becomes a space): a record with too few fields takes the records after it while their fields
    complete it exactly, so broken records in a row pair up. Returns the records, each record's first
    physical line number, and that of each joined record. Raises ParseError naming the lines of a record with a wrong number of
    fields, and of a stray quote (below).

    A stray '"' at a field's start (an unclosed quote in Comments: the export quotes no field) opens a quoted
    field that swallows the lines after it, records included, possibly into a record of the right length: a
    record over several physical lines, whose first line and another hold the header's fields when every '"'
    is a character, is that, and a ParseError."""
    text_lines = [line.removesuffix("\r") + "\n" for line in lines]
    reader = csv.reader(text_lines)
    read: list[tuple[int, list[str]]] = []
    stray: list[int] = []
    before = 0
    try:
        for fields in reader:
            start, end = before + 1, reader.line_num
            before = end
            if not any(f.strip() for f in fields):
                continue  # a blank line (or one of commas only, as a spreadsheet pads one)
            if end > start:
                full = [first_line_no + i for i in range(start - 1, end)
                        if _literal_fields(text_lines[i].rstrip("\n")) == n_fields]
                if full and full[0] == first_line_no + start - 1 and len(full) > 1:
                    stray += full
                    continue
            read.append((first_line_no + start - 1, [f.replace("\r\n", "\n") for f in fields]))
    except csv.Error as exc:
        raise ParseError(f"{SOURCE}: line {first_line_no + reader.line_num - 1}: {exc}",
                         line=first_line_no + reader.line_num - 1) from exc
    if stray:
        sample = ", ".join(f"line {n}: {lines[n - first_line_no].rstrip(chr(13))[:100]!r}" for n in stray[:3])
        raise ParseError(f"{SOURCE}: {len(stray)} line(s) hold the header's {n_fields} fields and an unpaired "
                         f'double quote ("), which would join them with the lines after them: {sample}',
                         line=stray[0])
    records: list[list[str]] = []
    starts: list[int] = []
    joined: list[int] = []
    bad: list[tuple[int, int]] = []
    i = 0
    while i < len(read):
        line_no, fields = read[i]
        j = i
        # a line break only falls in a free-text field (the weapon's description, the comments), and what
        # follows it is never a whole record: a short line of another kind (a note pasted between records)
        # is not joined to the record after it
        while (_BREAKABLE_FROM <= len(fields) < n_fields and j + 1 < len(read)
               and len(read[j + 1][1]) < n_fields and len(fields) + len(read[j + 1][1]) - 1 <= n_fields):
            following = read[j + 1][1]
            fields = [*fields[:-1], f"{fields[-1]} {following[0]}", *following[1:]]
            j += 1
        if len(fields) != n_fields:
            bad.append((line_no, len(read[i][1])))
            i += 1
            continue
        if j > i:
            joined.append(line_no)
        records.append(fields)
        starts.append(line_no)
        i = j + 1
    if bad:
        sample = ", ".join(f"line {n} ({k} fields)" for n, k in bad[:5])
        raise ParseError(f"{SOURCE}: {len(bad)} line(s) do not have the header's {n_fields} fields: {sample}",
                         line=bad[0][0])
    return records, starts, joined


def parse_sipri_register(data: bytes) -> ParsedPayload:
    """SIPRI trade register CSV -> one String row per record, columns `OUTPUT_COLUMNS`, its `line` and
    `register`."""
    text, encoding = decode_sipri(data)
    if text.lstrip().startswith("<"):
        raise ParseError(f"{SOURCE}: payload is HTML/XML, not the CSV register: {text.lstrip()[:80]!r}")
    # Python's universal newlines: CR LF, LF and a CR alone (a file saved on classic Mac OS) each end a line
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header_idx = _find_header(lines)
    header_fields = _split_header(lines[header_idx].rstrip("\r"))
    columns = _map_header(header_fields)

    source_version = None
    for line in lines[:header_idx]:
        stamp = parse_generated(line)
        if stamp is not None:
            source_version = stamp
            break

    records, starts, joined = _records(lines[header_idx + 1:], header_idx + 2, len(columns))
    frame = pl.DataFrame(records, schema=dict.fromkeys(columns, pl.String()), orient="row").with_columns(
        pl.all().replace("", None), pl.Series(LINE_COLUMN, starts, dtype=pl.Int64),
        pl.lit(hashlib.sha1(data).hexdigest()[:16]).alias(REGISTER_COLUMN))
    frame = frame.select(*OUTPUT_COLUMNS, LINE_COLUMN, REGISTER_COLUMN)
    meta = {
        "encoding": encoding,
        "header_line": header_idx + 1,
        "preamble_lines": header_idx,
        "records": frame.height,
        "joined_broken_lines": joined,
        "source_version_found": source_version is not None,
    }
    return ParsedPayload(frame=frame, source_version=source_version, meta=meta)
