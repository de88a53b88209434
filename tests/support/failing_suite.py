"""A real way for the tests of a failed run to fail a critical expectation: Comext files without their release
stamp.

The transforms reject a row whose own values a critical expectation refuses, that row alone
(transforms.common.SuiteRule): one bad row no longer fails a suite. What still does is a batch-wide rule:
fact_goods_trade_product requires `source_version` (critical), which every Comext row takes from its payload's
`LAST UPDATE` stamp; a payload whose stamps are blank has none, so the whole Comext batch is blocked, its rows
quarantined as "not loaded: ..." and the table's previous rows kept.

    unstamp(text)                  # one Comext file's text without its LAST UPDATE stamps
    unstamp_snapshot(folder)       # every Comext file of a copied snapshot folder, rewritten so
"""

from __future__ import annotations

import re
from pathlib import Path

from eujp.sources import comext_goods

SOURCE = comext_goods.SOURCE
TABLE = SOURCE.table.name
# What the failure names: the table and the expectation
FAILED_EXPECTATION = "expect_column_values_to_not_be_null(source_version)"
_STAMP = re.compile(r"^([^,\n]*),\d\d/\d\d/\d\d \d\d:\d\d:\d\d,", re.MULTILINE)


def unstamp(text: str) -> str:
    """A Comext SDMX-CSV text with every LAST UPDATE (the second column) blank."""
    blank = _STAMP.sub(r"\1,,", text)
    assert blank != text, "no LAST UPDATE stamp to blank"
    return blank


def unstamp_snapshot(folder: Path) -> list[Path]:
    """Blank the LAST UPDATE stamps of every Comext file in `folder` (a copy of a snapshot); returns them."""
    files = sorted(folder.glob(SOURCE.snapshot_glob))
    assert files, f"no Comext file in {folder}"
    for path in files:
        path.write_text(unstamp(path.read_text(encoding="utf-8")), encoding="utf-8")
    return files
