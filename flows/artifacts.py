"""Prefect artifacts of a run: what a data engineer looks at first in the UI.

- table `eujp-rows`: per table (and source): status, rows in / valid / rejected / written (eujp.rows);
- markdown `eujp-run-report`: outcome, where it was published, where to open the Data Docs and the HTML
  report, the validation outcome of every suite, freshness (stale sources as warnings), errors and failed
  audit checks;
- links `eujp-data-docs` and `eujp-html-report`: the run's Great Expectations Data Docs site and HTML report,
  when they are served over http(s) (EUJP_PUBLIC_URL). A published file with no http URL is named by its
  location in the markdown instead ("published to <store uri>/<key>"): a file path or file:// link cannot be
  opened from the Prefect UI.

Values of the sources (in errors, warnings, failed expectations and audit checks) read as text, never as
markup: eujp.markdown escapes them. Artifacts carry a key, so the UI also shows each one's history across runs. The builders are plain
functions of the run summary (tested without Prefect); `create_run_artifacts` posts them.
"""

from __future__ import annotations

from collections.abc import Iterable

from eujp.markdown import code_block, markdown_text
from eujp.rows import ROW_WORDS

ROWS_KEY = "eujp-rows"
REPORT_KEY = "eujp-run-report"
DOCS_KEY = "eujp-data-docs"
HTML_REPORT_KEY = "eujp-html-report"


def rows_table(summary: dict) -> list[dict]:
    rows = []
    for s in summary.get("sources", []):
        row = {"table": s["table"], "source": s["source"]}
        if s.get("landing_day"):
            row["landing day"] = s["landing_day"]
        row |= {"status": s["status"]} | {word: s.get(key, 0) for key, word in ROW_WORDS.items()}
        rows.append(row)
    return rows


def run_markdown(summary: dict, reports: Iterable = (), *, flow_label: str = "eujp-daily") -> str:
    """The run report. `reports`: the run's eujp.validate.ValidationReport objects (details of failures)."""
    status = summary["status"].upper()
    lines = [f"## {flow_label} run `{summary['run_id']}`: {status}", ""]
    lines += ["| | |", "|---|---|"]
    if summary.get("current_run_id"):
        lines.append(f"| published to | nothing new: run {_code(summary['current_run_id'])} at "
                     f"{_code(summary['published_to'])} is current |")
    else:
        lines.append(f"| published to | {_code(summary['published_to']) if summary.get('published_to') else 'not published'} |")
    validated = any(s.get("validation") for s in summary.get("sources", []))
    no_docs = "not built" if validated else "none: no source was validated in this run"
    lines.append(f"| Data Docs | {_where(summary, 'docs_url', 'open the Data Docs') or no_docs} |")
    report = "open the run report" if not summary.get("current_run_id") else \
        f"open the report of run {summary['current_run_id']}"
    lines.append(f"| report | {_where(summary, 'report_url', report) or 'not published'} |")
    lines.append(f"| warehouse | {_code(summary.get('warehouse') or '-')} |")
    if summary.get("as_of"):
        lines.append(f"| rebuilt as of | {summary['as_of']} (from the raw landing zone) |")
    if summary.get("table_rows"):
        rows = ", ".join(f"{k} {v:,}" for k, v in summary["table_rows"].items())
        lines.append(f"| table rows | {_cell(rows)} |")
    changes = summary.get("changes") or {}
    if "tables_written" in changes:  # a day with nothing new has only partners_removed
        rebuilt, kept = changes.get("models_rebuilt") or {}, changes.get("models_kept") or []
        lines.append(f"| models rebuilt | {len(rebuilt)} of {len(rebuilt) + len(kept)}"
                     f"{': ' + _cell(', '.join(rebuilt)) if rebuilt else ''} |")
    if changes.get("partners_removed"):
        from eujp.partners import removal_note

        lines.append(f"| partners removed | {_cell(removal_note(changes['partners_removed']))} |")
    if summary.get("errors"):
        lines += ["", "### Errors", ""] + [f"- {_cell(e)}" for e in summary["errors"]]
    if summary.get("warnings"):
        lines += ["", "### Warnings", ""] + [f"- {_cell(w)}" for w in summary["warnings"]]

    lines += ["", "### Validation (one Great Expectations suite per table)", "",
              "| table | source | outcome | rows | expectations met | critical failed | warnings failed |",
              "|---|---|---|---|---|---|---|"]
    for s in summary.get("sources", []):
        v = s.get("validation")
        label = s["source"] + (f" ({s['landing_day']})" if s.get("landing_day") else "")
        if not v:
            why = "not validated: " + ("unchanged since its last load" if s["status"] == "unchanged"
                                       else f"{s['status']} before validation")
            lines.append(f"| {s['table']} | {label} | {why} | | | | |")
            continue
        st = v["statistics"]
        outcome = ("passed" if not st["warning_failed"] else "passed with warnings") if v["success"] \
            else "**FAILED** (not loaded)"
        lines.append(f"| {s['table']} | {label} | {outcome} | {v['row_count']:,} | "
                     f"{st['successful']}/{st['evaluated']} | {st['critical_failed']} | {st['warning_failed']} |")
    details = [r.to_markdown() for r in reports if r is not None and (r.critical_failures or r.warnings)]
    if details:
        lines += ["", "#### Failed expectations", ""] + details

    if summary.get("freshness"):
        lines += ["", "### Freshness (etl_source_state)", "",
                  "| source | last successful extraction (UTC) | age (days) | cadence (days) | newest period | status |",
                  "|---|---|---|---|---|---|"]
        for f in summary["freshness"]:
            age = "-" if f["age_days"] is None else f"{f['age_days']:.1f}"
            status = {"ok": "ok", "stale": "**STALE**", "never": "**NEVER**"}.get(f["status"], f["status"])
            last = (f["last_success_at"] or "-").replace("T", " ")[:19]
            lines.append(f"| {f['source']} | {last} | {age} | {f['cadence_days']} | {f['newest_period'] or '-'} "
                         f"| {status} |")

    failed_checks = [c for c in (summary.get("audit") or {}).get("checks", []) if not c.get("ok")]
    if failed_checks:
        lines += ["", "### Failed audit checks", ""] + [f"- {c['name']}: {_cell(c['detail'])}" for c in failed_checks]
    return "\n".join(lines) + "\n"


def failure_markdown(run_id: str, error: str, flow_label: str = "eujp-daily") -> str:
    return (f"## {flow_label} run `{run_id}`: FAILED before it could summarise\n\n"
            f"{code_block(error)}\n\nNothing was promoted or published by this run.\n")


def create_run_artifacts(summary: dict, reports: Iterable = (), *, flow_label: str = "eujp-daily") -> None:
    """Post the run's artifacts (inside a flow run)."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    run_id = summary["run_id"]
    create_table_artifact(key=ROWS_KEY, table=rows_table(summary),
                          description=f"Rows in / valid / rejected / written per table, run {run_id} ({summary['status']})")
    create_markdown_artifact(key=REPORT_KEY, markdown=run_markdown(summary, reports, flow_label=flow_label),
                             description=f"Run {run_id}: validation, publication, freshness")
    if is_http(summary.get("docs_url")):
        create_link_artifact(key=DOCS_KEY, link=summary["docs_url"], link_text=f"Data Docs of run {run_id}",
                             description="Great Expectations Data Docs built from this run's validation results")
    if is_http(summary.get("report_url")):
        shown = summary.get("current_run_id") or run_id
        create_link_artifact(key=HTML_REPORT_KEY, link=summary["report_url"], link_text=f"Report of run {shown}",
                             description="The HTML run report (tables, charts, claims) of the published warehouse")


def create_failure_artifact(run_id: str, error: str, flow_label: str = "eujp-daily") -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key=REPORT_KEY, markdown=failure_markdown(run_id, error, flow_label),
                             description=f"Run {run_id}: failed")


def is_http(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("http://", "https://"))


def _where(summary: dict, field: str, text: str) -> str | None:
    """A markdown link when the summary's `field` is an http(s) URL, else where the file is."""
    url = summary.get(field)
    if not url:
        return None
    if is_http(url):
        return f"[{text}]({url})"
    return f"published to {_code(url)}" if summary.get("published_to") else f"{_code(url)} (not published)"


def _code(text: str) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def _cell(text: str) -> str:
    """Text of the summary (source values among it) in a table cell or a list item: as text (markdown_text)."""
    return markdown_text(text)
