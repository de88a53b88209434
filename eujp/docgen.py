"""Generated documentation: the Markdown tables that restate the declarations (eujp.sources.SOURCES and the
warehouse tables, eujp.tables), rewritten between markers so the docs cannot drift from the code.

    README.md          <!-- BEGIN GENERATED: sources -->  one row per source
                       <!-- BEGIN GENERATED: tables -->   one row per table: layer, grain, what it holds
    docs/warehouse.md  <!-- BEGIN GENERATED: columns -->  every table with its columns, types and docs

Each section runs from `<!-- BEGIN GENERATED: {name} -->` to `<!-- END GENERATED: {name} -->`; only the text
between the two is rewritten, and a file without a section's markers is left as it is.

    python -m eujp.docgen            rewrite the sections (`make docs`)
    python -m eujp.docgen --check    rewrite nothing; print a diff and exit 1 if a section is stale or missing
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from eujp.schema import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
WAREHOUSE_DOC = REPO_ROOT / "docs" / "warehouse.md"

Sections = Mapping[str, Callable[[], str]]  # section name -> its generated Markdown


class DocgenError(Exception):
    """A file's markers are unbalanced or repeated: nothing is rewritten."""


def begin_marker(name: str) -> str:
    return f"<!-- BEGIN GENERATED: {name} -->"


def end_marker(name: str) -> str:
    return f"<!-- END GENERATED: {name} -->"


def _cell(text: object) -> str:
    """Text for a Markdown table cell: pipes escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _code(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def first_sentence(text: str) -> str:
    """Up to the first '.', '!' or '?' followed by a space and a capital (or the end); 'e.g.' and 'i.e.' do
    not end a sentence."""
    match = re.match(r"(.*?(?<!e\.g)(?<!i\.e)[.!?])(?=\s+[A-Z(\"']|\s*$)", text, re.DOTALL)
    return match.group(1) if match else text


def layer(table: Table) -> str:
    """fact, ETL, dimension, reference or mart."""
    from eujp.tables import FACT_TABLES

    if table.name in {t.name for t in FACT_TABLES}:
        return "fact"
    prefix = table.name.split("_", 1)[0]
    return {"etl": "ETL", "dim": "dimension", "ref": "reference", "mart": "mart"}.get(prefix, prefix)


def _grain(table: Table) -> str:
    return _code(table.natural_key) if table.natural_key else "none (every row kept)"


def sources_section() -> str:
    """README: one row per source (eujp.sources.SOURCES, in run order)."""
    from eujp.sources import SOURCES

    rows = [(f"`{s.name}`", s.domain, f"`{s.table.name}`", s.wire_format, s.cadence_days,
             f"`{env}`" if (env := getattr(s, "endpoint_env", None)) else "none")
            for s in SOURCES]
    header = ["Source", "Domain", "Table", "Wire format", "Cadence (days)", "Live endpoint variable"]
    return _table(header, rows)


def tables_section() -> str:
    """README: one row per warehouse table, in creation order."""
    from eujp.tables import ALL_TABLES

    rows = [(layer(t), f"`{t.name}`", _grain(t), first_sentence(t.description)) for t in ALL_TABLES]
    return _table(["Layer", "Table", "Grain (natural key)", "What it holds"], rows)


def columns_section() -> str:
    """docs/warehouse.md: every table, its description and natural key, and its columns with their DuckDB
    types and COMMENTs (Table.docs)."""
    from eujp.tables import ALL_TABLES
    from eujp.warehouse import duck_type

    parts = []
    for t in ALL_TABLES:
        docs = t.docs
        columns = _table(["Column", "Type", "Description"],
                         [(f"`{c}`", duck_type(d), docs.get(c, "")) for c, d in t.all_columns.items()])
        parts.append(f"### `{t.name}` ({layer(t)})\n\n{t.description}\n\n"
                     f"Grain (natural key): {_grain(t)}.\n\n{columns}")
    return "\n\n".join(parts)


TARGETS: dict[Path, Sections] = {
    README: {"sources": sources_section, "tables": tables_section},
    WAREHOUSE_DOC: {"columns": columns_section},
}


def replace_section(text: str, name: str, body: str) -> str | None:
    """`text` with the section `name` holding `body`; None if the text has no such section. Raises DocgenError
    when only one of its markers is there, or either is there twice."""
    begin, end = begin_marker(name), end_marker(name)
    counts = (text.count(begin), text.count(end))
    if counts == (0, 0):
        return None
    start, stop = text.find(begin) + len(begin), text.find(end)
    if counts != (1, 1) or stop < start:
        raise DocgenError(f"section {name!r}: expected one {begin} followed by one {end}, found "
                          f"{counts[0]} and {counts[1]}")
    return f"{text[:start]}\n\n{body.strip()}\n\n{text[stop:]}"


def render(path: Path, sections: Sections) -> tuple[str | None, list[str]]:
    """The file's text with every section it marks regenerated (None if the file does not exist), and the
    sections it does not mark."""
    if not path.is_file():
        return None, list(sections)
    text = path.read_text(encoding="utf-8")
    missing = []
    for name, generate in sections.items():
        new = replace_section(text, name, generate())
        if new is None:
            missing.append(name)
        else:
            text = new
    return text, missing


def _label(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: Sequence[str] | None = None, targets: Mapping[Path, Sections] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eujp.docgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="print a diff and exit 1 if a section is stale "
                        "or missing; rewrite nothing")
    args = parser.parse_args(argv)
    failed = False
    for path, sections in (TARGETS if targets is None else targets).items():
        label = _label(path)
        new, missing = render(path, sections)
        for name in missing:
            what = ("file is missing" if new is None
                    else f"no {begin_marker(name)} ... {end_marker(name)} markers")
            print(f"{label}: section {name!r} not generated: {what}", file=sys.stderr)
            failed = failed or args.check
        if new is None:
            continue
        old = path.read_text(encoding="utf-8")
        if new == old:
            continue
        if args.check:
            diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"{label} (as is)", f"{label} (generated)")
            sys.stdout.writelines(diff)
            print(f"{label} is stale: run `make docs`", file=sys.stderr)
            failed = True
        else:
            path.write_text(new, encoding="utf-8")
            print(f"{label}: rewritten")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
