"""Generated documentation (eujp.docgen): README.md and docs/warehouse.md hold exactly what the declarations
generate, and only the text between a section's markers is ever rewritten."""

from __future__ import annotations

import pytest

from eujp import docgen
from eujp.docgen import DocgenError, begin_marker, end_marker, main, render, replace_section
from eujp.tables import ALL_TABLES


@pytest.mark.parametrize("path", list(docgen.TARGETS), ids=lambda p: p.name)
def test_generated_sections_are_up_to_date(path):
    label = path.relative_to(docgen.REPO_ROOT)
    sections = docgen.TARGETS[path]
    assert path.is_file(), f"{label} is missing: write it with the markers of {sorted(sections)}, then run " \
                           "`make docs`"
    new, missing = render(path, sections)
    assert not missing, (f"{label} lacks the markers of section(s) {missing} ({begin_marker(missing[0])} ... "
                         f"{end_marker(missing[0])}): add them, then run `make docs`")
    assert new == path.read_text(encoding="utf-8"), f"{label} is stale: run `make docs`"


def test_sections_describe_every_source_and_table():
    from eujp.sources import SOURCES

    sources, tables, columns = docgen.sources_section(), docgen.tables_section(), docgen.columns_section()
    assert len(sources.splitlines()) == 2 + len(SOURCES)
    assert len(tables.splitlines()) == 2 + len(ALL_TABLES)
    for t in ALL_TABLES:
        assert f"| `{t.name}` |" in tables and f"### `{t.name}` (" in columns
    assert "' \\| '-separated" in columns  # a pipe in a column doc does not split the cell
    assert docgen.first_sentence("One row per day, e.g. 2020-01-01. Joins on year.") == \
        "One row per day, e.g. 2020-01-01."


def test_only_the_text_between_markers_is_rewritten(tmp_path):
    page = tmp_path / "page.md"
    before = f"# Title\n\nintro\n{begin_marker('x')}\nold | stale\n{end_marker('x')}\noutro\n"
    page.write_text(before, encoding="utf-8")
    untouched = tmp_path / "other.md"
    untouched.write_text("# No markers here\n", encoding="utf-8")
    targets = {page: {"x": lambda: "| a |\n|---|\n| b |\n"}, untouched: {"x": lambda: "never written"}}

    assert main(["--check"], targets) == 1  # stale, and other.md lacks the markers
    assert page.read_text(encoding="utf-8") == before

    assert main([], targets) == 0
    assert page.read_text(encoding="utf-8") == (
        f"# Title\n\nintro\n{begin_marker('x')}\n\n| a |\n|---|\n| b |\n\n{end_marker('x')}\noutro\n")
    assert untouched.read_text(encoding="utf-8") == "# No markers here\n"
    assert main(["--check"], {page: targets[page]}) == 0  # idempotent
    assert main([], {page: targets[page]}) == 0


def test_check_prints_a_diff_of_a_stale_section(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(f"{begin_marker('x')}\n\nold\n\n{end_marker('x')}\n", encoding="utf-8")
    assert main(["--check"], {page: {"x": lambda: "new"}}) == 1
    out, err = capsys.readouterr()
    assert "-old\n+new\n" in out and "run `make docs`" in err


def test_unbalanced_or_repeated_markers_are_refused():
    assert replace_section("no markers\n", "x", "body") is None
    for text in (f"{begin_marker('x')}\n", f"{end_marker('x')}\n{begin_marker('x')}\n",
                 f"{begin_marker('x')}\n{end_marker('x')}\n{begin_marker('x')}\n{end_marker('x')}\n"):
        with pytest.raises(DocgenError, match="section 'x'"):
            replace_section(text, "x", "body")
