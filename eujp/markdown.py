"""Text shown in markdown (the Prefect artifacts, eujp.validate.ValidationReport.to_markdown) as text: the values
there come from the sources (an unexpected value, a rejected row quoted in a warning, an error), and a markdown
renderer would make `[click](http://evil.example)` a working link and `<img src=x onerror=...>` an element, as
the Data Docs would without their escaping (eujp.validate._escaped_result)."""

from __future__ import annotations

import html
import re

# what makes a link or an image ([...]), emphasis (* and _ but one inside a word, which never is), strikethrough,
# code, a heading, a table cell's end or an escape in CommonMark / GFM
_MARKUP = re.compile(r"[\\`*\[\]#~|]|(?<!\w)_|_(?!\w)")


def markdown_text(text: object) -> str:
    """`text` on one line, reading as itself in markdown: <, > and & HTML-escaped (no element, no entity, no
    autolink), the characters of links, emphasis, code and table cells backslash-escaped (an underscore inside a
    word, `fact_goods_trade`, never makes emphasis: left as it is)."""
    one_line = re.sub(r"\s+", " ", str(text))
    return _MARKUP.sub(lambda m: "\\" + m.group(), html.escape(one_line, quote=False))


def code_block(text: str) -> str:
    """`text` as a fenced code block whose fence no run of backticks in it can close."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}\n{text}\n{fence}"
