"""Great Expectations validation of transform output, one suite per table (expectations/<table>.json).

A suite validates exactly what a transform hands to the loader: a polars frame with the table's
`business_columns` (eujp.schema), before `run_id` / `loaded_at` are added.

Severity is GX 1.x's own per-expectation field (`"severity": "critical" | "warning"` in the suite JSON):

- a failed *critical* expectation blocks the table's load (`ValidationReport.raise_for_critical()` raises
  `ValidationFailed`);
- a failed *warning* expectation is reported (report, artifact, Data Docs) and does not block.

    report = validate_frame("fact_goods_trade", frame, run_id=run_id)
    report.raise_for_critical()          # ValidationFailed names table, expectation, offending rows
    manifest["validation"] = report.to_dict()
    ...
    build_data_docs(reports, out_dir, run_id=run_id)  # once per run: static GX Data Docs site that renders
                                                      # offline (its assets: eujp.docs_assets)

Great Expectations is slow to import (several seconds) and chatty: it is imported lazily, only inside the functions
here, with analytics and progress bars off. One ephemeral GX context is created per process and reused.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from eujp import config
from eujp.deferred_imports import import_great_expectations
from eujp.errors import ValidationFailed
from eujp.markdown import markdown_text
from eujp.memory import release_unused_memory
from eujp.schema import DIM_COUNTRY
from eujp.sources import SOURCES
from eujp.tables import FACT_TABLES, TABLES

EXPECTATIONS_DIR = config.EXPECTATIONS_DIR
"""Where the suites live: `expectations/<table>.json` (in a built wheel, the copy it ships: eujp.config)."""

SUITE_TABLES: tuple[str, ...] = (DIM_COUNTRY.name, *(t.name for t in FACT_TABLES))
"""Tables that have a suite."""

CRITICAL, WARNING = "critical", "warning"
SEVERITIES: tuple[str, ...] = (CRITICAL, WARNING)

SAMPLE_ROWS = 5  # offending rows kept per failed expectation
_ROWS_IN_MESSAGE = 3  # offending rows quoted in a ValidationFailed message
_VALUE_CHARS = 80  # longer values are cut in messages
# GX's SUMMARY result carries up to this many unexpected values and row indices per expectation.
_PARTIAL_UNEXPECTED_COUNT = 20
_ID_NAMESPACE = uuid.UUID("6f1d3a56-2f64-4b8e-9c55-0c8f3b1b6e01")

# pandas' datetime64[ns] range (within it); a Date column with a date outside it goes to GX as datetime64[us].
_NS_MIN, _NS_MAX = dt.date(1678, 1, 1), dt.date(2261, 12, 31)
_SMALL_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32)


# --------------------------------------------------------------------------------------------- suites


def suite_path(table_name: str) -> Path:
    """The suite file of a table: the one its source declares (eujp.sources.base.Source.suite), else
    expectations/<table>.json."""
    declared = [s.suite for s in SOURCES if s.table.name == table_name and s.suite is not None]
    return declared[0] if declared else EXPECTATIONS_DIR / f"{table_name}.json"


def load_suite(table_name: str, expectations_dir: Path | str | None = None) -> dict:
    """The suite for `table_name` as the JSON dict GX writes (name, expectations, meta, notes).

    Checks that the file names the table and that every expectation says `critical` or `warning`.
    `expectations_dir` overrides the repo's `expectations/` folder.
    """
    path = Path(expectations_dir) / f"{table_name}.json" if expectations_dir is not None else suite_path(table_name)
    folder = path.parent
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) or "none"
        raise FileNotFoundError(f"no expectation suite for table {table_name!r}: {path} does not exist "
                                f"(suites in {folder}: {known})")
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"expectation suite {path} is not valid JSON: {exc}") from exc
    if suite.get("name") != table_name:
        raise ValueError(f"expectation suite {path} is named {suite.get('name')!r}, expected {table_name!r}")
    expectations = suite.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ValueError(f"expectation suite {path} has no expectations")
    for i, exp in enumerate(expectations):
        if exp.get("severity") not in SEVERITIES:
            raise ValueError(f"expectation suite {path}: expectation #{i} ({exp.get('type')}) has severity "
                             f"{exp.get('severity')!r}; each must say one of {list(SEVERITIES)}")
    return suite


def _expectation_id(table_name: str, position: int) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{table_name}/{position}"))


def _gx_suite(suite: Mapping[str, Any], only: Iterable[str] | None = None):
    """A GX ExpectationSuite from a suite dict, each expectation given a stable id (its position); `only`:
    keep just the expectations with these ids."""
    import_great_expectations()
    from great_expectations.core.expectation_suite import ExpectationSuite, ExpectationSuiteSchema

    data = json.loads(json.dumps(suite))  # deep copy
    for i, exp in enumerate(data["expectations"]):
        exp["id"] = _expectation_id(data["name"], i)
    if only is not None:
        keep = set(only)
        data["expectations"] = [e for e in data["expectations"] if e["id"] in keep]
    return ExpectationSuite(**ExpectationSuiteSchema().load(data))


# -------------------------------------------------------------------------------------------- reports


@dataclass
class ExpectationOutcome:
    """How one expectation of a suite fared on one frame."""

    expectation_type: str
    columns: tuple[str, ...]  # the column(s) it checks; () for table-level expectations
    kwargs: dict[str, Any]
    severity: str  # critical | warning
    success: bool
    unexpected_count: int | None  # None: not a row-level expectation, or it could not be evaluated
    unexpected_percent: float | None
    sample_offending_rows: list[dict[str, Any]]  # up to SAMPLE_ROWS rows of the validated frame
    message: str
    element_count: int | None = None  # rows the expectation looked at (after its row_condition)
    missing_count: int | None = None  # of those, null ones (GX's unexpected_percent is of the others)
    # What the message names, kept so that chunks' outcomes merge into one message (merge_reports): GX's
    # partial_unexpected_counts, and for a Date column the offending values as the frame holds them.
    partial_unexpected_counts: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    date_values: list[Any] | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """`expect_column_values_to_be_in_set(flow)`."""
        return f"{self.expectation_type}({', '.join(self.columns)})" if self.columns else self.expectation_type

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation_type": self.expectation_type,
            "columns": list(self.columns),
            "kwargs": _json_safe(self.kwargs),
            "severity": self.severity,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": _json_safe(self.unexpected_percent),
            "sample_offending_rows": _json_safe(self.sample_offending_rows),
            "message": self.message,
        }


@dataclass
class ValidationReport:
    """The outcome of one table's suite on one frame. `success` means no critical expectation failed."""

    table: str
    run_id: str | None
    row_count: int
    outcomes: list[ExpectationOutcome]
    duration_seconds: float
    natural_key: tuple[str, ...] = ()
    # The raw GX ExpectationSuiteValidationResult and suite, kept for Data Docs (not in to_dict()).
    gx_result: Any = field(default=None, repr=False, compare=False)
    gx_suite: Any = field(default=None, repr=False, compare=False)

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == CRITICAL]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Failed warning-level expectations."""
        return [o for o in self.outcomes if not o.success and o.severity == WARNING]

    @property
    def success(self) -> bool:
        return not self.critical_failures

    @property
    def statistics(self) -> dict[str, int]:
        evaluated = len(self.outcomes)
        successful = sum(o.success for o in self.outcomes)
        return {
            "evaluated": evaluated,
            "successful": successful,
            "unsuccessful": evaluated - successful,
            "critical_failed": len(self.critical_failures),
            "warning_failed": len(self.warnings),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (artifacts, run manifest); the raw GX result is left out."""
        return {
            "table": self.table,
            "run_id": self.run_id,
            "success": self.success,
            "row_count": self.row_count,
            "duration_seconds": round(self.duration_seconds, 3),
            "statistics": self.statistics,
            "expectations": [o.to_dict() for o in self.outcomes],
        }

    def to_markdown(self) -> str:
        """A short section for a Prefect markdown artifact: a status line and a table of failures."""
        st = self.statistics
        if not self.success:
            status = f"FAILED, not loaded: {st['critical_failed']} critical"
            status += f", {st['warning_failed']} warning" if st["warning_failed"] else ""
        elif st["warning_failed"]:
            status = f"passed with {st['warning_failed']} warning(s)"
        else:
            status = "passed"
        lines = [f"### {self.table}: {status}", "",
                 f"{self.row_count:,} rows; {st['successful']} of {st['evaluated']} expectations met"
                 + (f" (run {self.run_id})" if self.run_id else "") + "."]
        failed = self.critical_failures + self.warnings
        if failed:
            lines += ["", "| severity | expectation | column(s) | unexpected | detail |",
                      "|---|---|---|---|---|"]
            for o in failed:
                unexpected = "" if o.unexpected_count is None else f"{o.unexpected_count:,}"
                if o.unexpected_percent is not None:
                    unexpected += f" ({o.unexpected_percent:.2f}%)"
                cells = [o.severity, o.expectation_type, ", ".join(o.columns) or "(table)", unexpected,
                         _cut(o.message, 200)]
                lines.append("| " + " | ".join(markdown_text(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def raise_for_critical(self) -> None:
        """Raise ValidationFailed naming the table, each failed critical expectation and offending rows.

        The exception carries this report as `.report`.
        """
        failures = self.critical_failures
        if not failures:
            return
        parts = []
        for o in failures:
            text = f"{self.table}: critical expectation {o.label} {o.message}"
            if o.sample_offending_rows:
                shown = [_row_for_message(r, self.natural_key, o.columns)
                         for r in o.sample_offending_rows[:_ROWS_IN_MESSAGE]]
                text += "; offending rows: " + ", ".join(shown)
            parts.append(text)
        head = (f"{self.table}: {len(failures)} critical expectation(s) failed on {self.row_count:,} rows; "
                f"the batch is not loaded.")
        err = ValidationFailed(head + "\n" + "\n".join(parts))
        err.report = self  # type: ignore[attr-defined]
        raise err


# ------------------------------------------------------------------------------------------ GX runtime


class _Runtime:
    """The process's one ephemeral GX context, a pandas data source and one dataframe asset per table."""

    def __init__(self) -> None:
        import_great_expectations()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every in-memory batch under HASH_THRESHOLD (1 GB) by hashing all its cells, for a
        # batch marker only (above 1 GB it skips it): 1.3 s of the 6.5 s a 5M-row Comext batch takes. A batch
        # is identified here by its table and run, so no batch is fingerprinted.
        pandas_execution_engine.HASH_THRESHOLD = 0
        self.context = gx.get_context(mode="ephemeral")
        self.context.config.analytics_enabled = False
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.datasource = self.context.data_sources.add_pandas("eujp")
        self._batch_definitions: dict[str, Any] = {}

    def batch_definition(self, table_name: str):
        if table_name not in self._batch_definitions:
            asset = self.datasource.add_dataframe_asset(table_name)
            self._batch_definitions[table_name] = asset.add_batch_definition_whole_dataframe("transform_output")
        return self._batch_definitions[table_name]


_RUNTIME: _Runtime | None = None
_LOCK = threading.RLock()  # GX contexts are not documented as thread-safe: one validation at a time


def _runtime() -> _Runtime:
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None:
            os.environ["GX_ANALYTICS_ENABLED"] = "false"
            _RUNTIME = _Runtime()
        return _RUNTIME


# ------------------------------------------------------------------------------------------ validation


def validate_frame(table_name: str, frame: pl.DataFrame, *, run_id: str | None = None,
                   expectations_dir: Path | str | None = None) -> ValidationReport:
    """Run `table_name`'s suite on `frame` (the transform output) and report every expectation.

    Never raises for a failed expectation: call `raise_for_critical()` on the report to block the load.
    """
    if table_name not in TABLES:
        raise ValueError(f"unknown table {table_name!r}; tables with suites: {', '.join(SUITE_TABLES)}")
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"{table_name}: validate_frame expects a polars DataFrame, got {type(frame).__name__}")
    suite_dict = load_suite(table_name, expectations_dir)
    started = time.perf_counter()
    pdf = _to_pandas(frame)
    with _LOCK:
        runtime = _runtime()
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.validator.v1_validator import Validator

        suite = _gx_suite(suite_dict)

        def run(gx_suite, result_format: str):
            # What ValidationDefinition.run does, minus storing the suite/result in the context. (Going
            # through Batch.validate would load and fingerprint the frame twice: +0.5 s at 2M rows.)
            return Validator(
                batch_definition=runtime.batch_definition(table_name),
                batch_parameters={"dataframe": pdf},
                result_format={"result_format": result_format, "partial_unexpected_count": _PARTIAL_UNEXPECTED_COUNT},
            ).validate_expectation_suite(gx_suite)

        # BASIC first (counts and percentages of every expectation): SUMMARY's unexpected values, counts and row
        # indices make GX filter the whole frame once per expectation, even when nothing is unexpected (5M
        # Comext rows: ~1.5 s of ~6). Only the expectations that failed are run again with SUMMARY, for the
        # offending rows the reports and the ValidationFailed message show.
        try:
            result = run(suite, "BASIC")
            failed = [r.expectation_config.id for r in result.results if not r.success]
            if failed:
                detail = {r.expectation_config.id: r
                          for r in run(_gx_suite(suite_dict, only=failed), "SUMMARY").results}
                result.results = [detail.get(r.expectation_config.id, r) for r in result.results]
        finally:
            # GX's execution engine keeps the last batch (our pandas copy) cached until the next validation:
            # drop it, so that it is not held through the load (5M Comext rows: ~0.5 GB).
            manager = runtime.datasource.get_execution_engine().batch_manager
            manager.batch_data_cache.clear()
            manager.reset_batch_cache()
    # What ValidationDefinition.run would add; Data Docs needs run_id and validation_time.
    gx_run_id = RunIdentifier(run_name=run_id, run_time=dt.datetime.now(dt.UTC))
    result.meta["run_id"] = gx_run_id
    result.meta["validation_time"] = gx_run_id.run_time
    result.meta["batch_parameters"] = {"dataframe": "<DATAFRAME>"}
    # The validation page's "Data asset:" reads batch_spec (GX's fluent data sources leave it out): the table.
    result.meta["batch_spec"] = {**(result.meta.get("batch_spec") or {}), "data_asset_name": table_name}

    pdf = None  # dropped (run() is not called again)
    release_unused_memory()  # the pandas copy's Arrow buffers: the load that follows must not start on top of them
    position = {_expectation_id(table_name, i): i for i in range(len(suite_dict["expectations"]))}
    results = sorted(result.results, key=lambda r: position.get(r.expectation_config.id, len(position)))
    outcomes = [_outcome(r, frame) for r in results]
    return ValidationReport(
        table=table_name, run_id=run_id, row_count=frame.height, outcomes=outcomes,
        duration_seconds=time.perf_counter() - started, natural_key=TABLES[table_name].natural_key,
        gx_result=result, gx_suite=suite,
    )


def merge_reports(reports: list[ValidationReport]) -> ValidationReport:
    """One report for a table validated in chunks (a streamed source, eujp.stream.Stream): an expectation
    holds when it held on every chunk; counts are summed over the chunks and percentages taken of the sum;
    the table's row count expectation is judged on the total. The message is rebuilt from the summed counts
    and the unexpected values of every chunk where the expectation failed; the offending rows sampled are
    the first chunks'. Data Docs show the GX result of the first chunk that failed, else of the first chunk,
    with every expectation's counts, percentages and unexpected values merged the same way
    (_merged_gx_result). One report: returned as it is."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    rows = sum(r.row_count for r in reports)
    outcomes = []
    for position, outcome in enumerate(first.outcomes):
        same = [r.outcomes[position] for r in reports]
        failed = [o for o in same if not o.success]
        merged = copy.copy(failed[0] if failed else outcome)
        if outcome.expectation_type == "expect_table_row_count_to_be_between":
            low, high = outcome.kwargs.get("min_value"), outcome.kwargs.get("max_value")
            merged.success = (low is None or rows >= low) and (high is None or rows <= high)
            merged.message = "met" if merged.success else (
                f"failed: {rows:,} rows, expected between {low} and {high}")
            merged.sample_offending_rows = []
        else:
            merged.success = not failed
            counts = [o.unexpected_count for o in same]
            elements = [o.element_count for o in same]
            if all(c is not None for c in counts):
                merged.unexpected_count = sum(counts)
            if all(e is not None for e in elements):
                merged.element_count = sum(elements)
                merged.missing_count = sum(o.missing_count or 0 for o in same)
                judged = merged.element_count - merged.missing_count  # GX's percentage: of the non-null rows
                if merged.unexpected_count is not None:
                    merged.unexpected_percent = 100.0 * merged.unexpected_count / judged if judged else None
            merged.sample_offending_rows = [row for o in failed for row in o.sample_offending_rows][:SAMPLE_ROWS]
            merged.partial_unexpected_counts = _summed_counts(o.partial_unexpected_counts for o in failed)
            dates = [v for o in failed for v in o.date_values or []]
            merged.date_values = list(dict.fromkeys(dates))[:5] or None
            if (failed and merged.unexpected_count is not None and merged.element_count is not None
                    and not any(o.message.startswith("could not be evaluated") for o in failed)):
                res = {"unexpected_count": merged.unexpected_count, "element_count": merged.element_count,
                       "partial_unexpected_counts": merged.partial_unexpected_counts}
                merged.message = _failure_message(merged.expectation_type, merged.kwargs, res, merged.date_values)
        outcomes.append(merged)
    shown = next((r for r in reports if not r.success), first)
    return ValidationReport(
        table=first.table, run_id=first.run_id, row_count=rows, outcomes=outcomes,
        duration_seconds=sum(r.duration_seconds for r in reports), natural_key=first.natural_key,
        gx_result=_merged_gx_result(reports, shown, outcomes, rows), gx_suite=shown.gx_suite,
    )


def _summed_counts(chunks: Iterable[list[dict[str, Any]] | None], limit: int = _PARTIAL_UNEXPECTED_COUNT):
    """GX's partial_unexpected_counts of several chunks as one: counts summed per value, most frequent first."""
    summed: dict[str, dict[str, Any]] = {}
    for counts in chunks:
        for c in counts or []:
            key = json.dumps(_json_safe(c.get("value")), sort_keys=True)
            entry = summed.setdefault(key, {"value": c.get("value"), "count": 0})
            entry["count"] += c.get("count") or 0
    return sorted(summed.values(), key=lambda c: -c["count"])[:limit] or None


def _merged_gx_result(reports: list[ValidationReport], shown: ValidationReport,
                      outcomes: list[ExpectationOutcome], rows: int):
    """The GX result Data Docs show for a table validated in chunks: `shown`'s (the first chunk that failed),
    each expectation's result taken from the first chunk where it failed and given the merged success and
    counts, GX's percentages of them, and the unexpected values, counts and row positions (in the whole
    stream) of every chunk. None when a chunk kept no GX result."""
    if any(r.gx_result is None for r in reports):
        return shown.gx_result
    position = {_expectation_id(shown.table, i): i for i in range(len(outcomes))}
    by_chunk = [{r.expectation_config.id: r for r in report.gx_result.results} for report in reports]
    starts = [sum(r.row_count for r in reports[:i]) for i in range(len(reports))]
    merged = copy.copy(shown.gx_result)
    merged.results = []
    for result in shown.gx_result.results:
        key = result.expectation_config.id
        i = position.get(key)
        same = [(start, chunk[key]) for start, chunk in zip(starts, by_chunk, strict=True) if key in chunk]
        if i is None or len(same) != len(reports):
            merged.results.append(result)
            continue
        outcome = outcomes[i]
        failed = [(start, r) for start, r in same if not r.success]
        one = copy.copy((failed or same)[0][1])
        one.success = outcome.success
        res = dict(one.result or {})
        if outcome.expectation_type == "expect_table_row_count_to_be_between":
            res["observed_value"] = rows
        elif outcome.unexpected_count is not None and outcome.element_count is not None:
            elements, unexpected, missing = outcome.element_count, outcome.unexpected_count, outcome.missing_count or 0
            res.update(element_count=elements, unexpected_count=unexpected,
                       unexpected_percent=outcome.unexpected_percent)
            if "missing_count" in res:
                res["missing_count"] = missing
            if "missing_percent" in res:
                res["missing_percent"] = 100.0 * missing / elements if elements else None
            if "unexpected_percent_total" in res:
                res["unexpected_percent_total"] = 100.0 * unexpected / elements if elements else None
            if "unexpected_percent_nonmissing" in res:
                res["unexpected_percent_nonmissing"] = outcome.unexpected_percent
            chunk_results = [(start, r.result or {}) for start, r in failed]
            if any("partial_unexpected_list" in r for _, r in chunk_results):
                res["partial_unexpected_list"] = [v for _, r in chunk_results
                                                  for v in r.get("partial_unexpected_list") or []
                                                  ][:_PARTIAL_UNEXPECTED_COUNT]
            if any("partial_unexpected_counts" in r for _, r in chunk_results):
                res["partial_unexpected_counts"] = _summed_counts(
                    r.get("partial_unexpected_counts") for _, r in chunk_results) or []
            if any("partial_unexpected_index_list" in r for _, r in chunk_results):
                res["partial_unexpected_index_list"] = [
                    start + i if isinstance(i, int) and not isinstance(i, bool) else i
                    for start, r in chunk_results for i in r.get("partial_unexpected_index_list") or []
                ][:_PARTIAL_UNEXPECTED_COUNT]
        one.result = res
        merged.results.append(one)
    statistics = dict(merged.statistics or {})
    evaluated = len(merged.results)
    successful = sum(bool(r.success) for r in merged.results)
    statistics.update(evaluated_expectations=evaluated, successful_expectations=successful,
                      unsuccessful_expectations=evaluated - successful,
                      success_percent=100.0 * successful / evaluated if evaluated else None)
    merged.statistics = statistics
    merged.success = successful == evaluated
    return merged


def _to_pandas(frame: pl.DataFrame):
    """pandas copy for GX, with dtypes GX's pandas metrics handle vectorised.

    GX compares datetime64[ns] (not [ms]) and int64/float64 (not int32) columns vectorised; other
    dtypes go through a per-row Python function (slow) or fail on string bounds. A Date column holding a
    date outside the datetime64[ns] range (before 1678 or after 2261) goes as datetime64[us] instead, which
    holds every date as it is (GX compares it right, ~1.7x slower): clamped to the [ns] range, two such dates
    compared equal, so that `date_end >= date_introduced` passed for 2300-01-01 and 2400-01-01 where the SQL
    audit (eujp.suite_sql) fails it.
    """
    casts = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            low, high = frame.get_column(name).min(), frame.get_column(name).max()
            unit = "ns" if low is None or (_NS_MIN <= low and high <= _NS_MAX) else "us"
            casts.append(pl.col(name).cast(pl.Datetime(unit)))
        elif isinstance(dtype, _SMALL_INTS):
            casts.append(pl.col(name).cast(pl.Int64))
    converted = frame.with_columns(casts) if casts else frame
    return converted.to_pandas()


def _outcome(r, frame: pl.DataFrame) -> ExpectationOutcome:
    config = r.expectation_config
    kwargs = {k: v for k, v in config.to_json_dict()["kwargs"].items() if k != "batch_id"}
    severity = getattr(config.severity, "value", config.severity) or CRITICAL
    columns = _columns_of(config.type, kwargs)
    res = r.result or {}
    error = _exception_message(r.exception_info)
    sample: list[dict[str, Any]] = []
    date_values = None
    if error is not None:
        missing = [c for c in (*columns, *_condition_columns(kwargs.get("row_condition")))
                   if c not in frame.columns]
        if missing:
            error = f"column(s) {list(dict.fromkeys(missing))} not in the frame"
        message = f"could not be evaluated: {error}"
        success = False
    else:
        success = bool(r.success)
        date_values = _date_values(frame, columns, res)
        message = "met" if success else _failure_message(config.type, kwargs, res, date_values)
        if not success:
            sample = _sample_rows(frame, res.get("partial_unexpected_index_list"))
    return ExpectationOutcome(
        expectation_type=config.type, columns=columns, kwargs=kwargs, severity=str(severity),
        success=success, unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"), sample_offending_rows=sample, message=message,
        element_count=res.get("element_count"), missing_count=res.get("missing_count"),
        partial_unexpected_counts=res.get("partial_unexpected_counts"), date_values=date_values,
    )


def _columns_of(expectation_type: str, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    if expectation_type.startswith("expect_table_"):
        return ()
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    return tuple(kwargs.get("column_list") or ())


def _exception_message(info: Any) -> str | None:
    """GX puts either one {raised_exception, exception_message} dict or one such dict per metric."""
    if not info:
        return None
    if not isinstance(info, Mapping):
        return str(info)
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    messages = [str(i.get("exception_message")) for i in infos if i.get("raised_exception")]
    return "; ".join(dict.fromkeys(messages)) or None


def _date_values(frame: pl.DataFrame, columns: tuple[str, ...], res: Mapping[str, Any]) -> list[Any] | None:
    """For a Date column, the offending values as the frame holds them: GX saw them as datetimes."""
    if len(columns) != 1 or frame.schema.get(columns[0]) != pl.Date:
        return None
    positions = [i for i in res.get("partial_unexpected_index_list") or []
                 if isinstance(i, int) and 0 <= i < frame.height]
    return list(dict.fromkeys(frame[columns[0]].gather(positions).to_list()))[:5] if positions else None


def _failure_message(expectation_type: str, kwargs: Mapping[str, Any], res: Mapping[str, Any],
                     date_values: list[Any] | None = None) -> str:
    observed = res.get("observed_value")
    if expectation_type == "expect_table_columns_to_match_ordered_list":
        expected, found = list(kwargs.get("column_list") or []), list(observed or [])
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        if missing or extra:
            return f"failed: columns missing {missing}, unexpected columns {extra}"
        return f"failed: columns are in the wrong order: {found}"
    if expectation_type == "expect_table_row_count_to_be_between":
        return (f"failed: {observed:,} rows, expected between {kwargs.get('min_value')} "
                f"and {kwargs.get('max_value')}")
    if expectation_type == "expect_column_distinct_values_to_contain_set":
        return f"failed: value(s) {res.get('partial_missing_list')} never occur"
    if "unexpected_count" in res:
        where = _condition_text(kwargs.get("row_condition"))
        text = f"failed on {res['unexpected_count']:,} of {res.get('element_count', 0):,} rows"
        text += f" where {where}" if where else ""
        counts = res.get("partial_unexpected_counts") or []
        if date_values:
            text += "; unexpected values: " + ", ".join(_fmt(v) for v in date_values)
        elif counts:
            values = ", ".join(f"{_cut(_fmt(c.get('value')))} (x{c.get('count')})" for c in counts[:5])
            text += f"; unexpected values: {values}"
        return text
    return f"failed: observed {_cut(_fmt(observed))}"


def _condition_text(condition: Any) -> str:
    """Readable form of a serialised GX row_condition (comparison, nullity, and/or, pass-through)."""
    if not condition:
        return ""
    if isinstance(condition, str):
        return condition
    kind = condition.get("type")
    if kind == "comparison":
        return f"{condition['column']['name']} {condition['operator'].lower()} {condition['parameter']!r}"
    if kind == "nullity":
        return f"{condition['column']['name']} is {'null' if condition.get('is_null') else 'not null'}"
    if kind in ("and", "or"):
        return f" {kind} ".join(f"({_condition_text(c)})" for c in condition.get("conditions", []))
    if kind == "pass_through":
        return str(condition.get("pass_through_filter"))
    return json.dumps(condition, default=str)


def _condition_columns(condition: Any) -> list[str]:
    if not isinstance(condition, Mapping):
        return []
    if "column" in condition:
        return [condition["column"]["name"]]
    return [c for sub in condition.get("conditions", []) for c in _condition_columns(sub)]


def _sample_rows(frame: pl.DataFrame, index_list: Iterable[Any] | None) -> list[dict[str, Any]]:
    """The first SAMPLE_ROWS distinct rows named by GX's unexpected index list (row positions)."""
    positions: list[int] = []
    for idx in index_list or []:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < frame.height:
            continue
        if idx not in positions:
            positions.append(idx)
        if len(positions) == SAMPLE_ROWS:
            break
    if not positions:
        return []
    return [_json_safe(row) for row in frame[positions].to_dicts()]


# ---------------------------------------------------------------------------------------- formatting


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else value if math.isfinite(value) else str(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return str(value)


def _fmt(value: Any) -> str:
    return repr(_json_safe(value))


def _cut(text: str, limit: int = _VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _row_for_message(row: Mapping[str, Any], natural_key: Iterable[str], columns: Iterable[str]) -> str:
    """A row cut to its natural key and the checked columns (the whole row if those are unknown)."""
    keep = list(dict.fromkeys([*natural_key, *columns]))
    items = [(k, row[k]) for k in keep if k in row] or list(row.items())
    return "{" + ", ".join(f"{k!r}: {_cut(_fmt(v))}" for k, v in items) + "}"




# ----------------------------------------------------------------------------------------- Data Docs

_SITE = "eujp"
_log = logging.getLogger("eujp")


def build_data_docs(reports: Iterable[ValidationReport], out_dir: Path | str, *, run_id: str | None = None,
                    offline: bool = True) -> Path:
    """Render a static GX Data Docs site for `reports` into `out_dir`; returns its index.html.

    GX builds Data Docs from its stores, so the suites and validation results are put in a throwaway
    file-mode context (temporary directory) whose only built site writes to `out_dir`. Call once per run.
    `run_id`: the run named on the pages of results validated without one (else GX says `__none__`).
    `offline`: serve the scripts, stylesheets and fonts from the site itself (eujp.docs_assets), so that the
    pages render with no network; an asset whose package is not installed stays on its CDN (logged).
    """
    reports = [r for r in reports if r.gx_result is not None]
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        runtime = _runtime()
        import great_expectations as gx
        from great_expectations.data_context.data_context.context_factory import project_manager
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        try:
            with tempfile.TemporaryDirectory(prefix="eujp-gx-docs-") as tmp:
                context = gx.get_context(mode="file", project_root_dir=tmp)
                context.add_data_docs_site(_SITE, {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out)},
                    # the index's "Run Time" column in UTC, not the host's zone (eujp.docs_index)
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                                           "renderer": {"module_name": "eujp.docs_index",
                                                        "class_name": "UtcSiteIndexPageRenderer"}},
                })
                added: set[str] = set()
                for report in reports:
                    name = report.gx_result.suite_name
                    if name not in added:
                        context.suites.add(_gx_suite(load_suite(report.table)) if report.gx_suite is None
                                           else _copy_suite(report.gx_suite))
                        added.add(name)
                    named, run = _named_result(report, run_id)
                    result = _escaped_result(named)
                    key = ValidationResultIdentifier(
                        expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
                        run_id=run,
                        batch_identifier=result.batch_id or report.table,
                    )
                    context.validation_results_store.set(key, result)
                context.build_data_docs(site_names=[_SITE])
        finally:
            project_manager.set_project(runtime.context)  # get_context() made the temp context current
    index = out / "index.html"
    if not index.is_file():
        raise RuntimeError(f"GX Data Docs build wrote no {index}")
    if offline:
        from eujp.docs_assets import localise_site

        site = localise_site(out)
        if site.remote:
            _log.warning("Data Docs in %s still load %d asset(s) from the network (%s)%s", out, len(site.remote),
                         "; ".join(sorted({r.split(": ", 1)[1] for r in site.remote})[:5]),
                         f": {'; '.join(site.missing)}" if site.missing else "")
    return index


def _named_result(report: ValidationReport, run_id: str | None):
    """The report's GX result, named for Data Docs, and the run identifier of its page: the run (`run_id` when
    it was validated without one) and the table as its data asset (results validated before validate_frame
    named it). The result's `run_id` is written as GX stores it, a dict, with its time in UTC: GX's own
    RunIdentifier serialises its time in the process' time zone (RunIdentifierSchema.prepare_dump), and the page
    prints the stored time with a 'Z' (under TZ=Asia/Tokyo, 15:46 UTC read 00:46Z)."""
    import_great_expectations()
    from great_expectations.core.run_identifier import RunIdentifier

    result = report.gx_result
    current = result.meta.get("run_id")
    run = RunIdentifier(run_name=getattr(current, "run_name", None) or report.run_id or run_id,
                        run_time=getattr(current, "run_time", None))
    spec = result.meta.get("batch_spec") or {}
    named = copy.copy(result)
    named.meta = {**result.meta,
                  "run_id": {"run_name": run.run_name, "run_time": run.run_time.astimezone(dt.UTC).isoformat()},
                  "batch_spec": {**spec, "data_asset_name": spec.get("data_asset_name") or report.table}}
    return named, run


def _escaped_result(result):
    """A copy of a GX suite result whose expectation results carry every string HTML-escaped (unexpected
    values, their counts' values, observed values, exception messages): GX's renderer puts them into the
    page as they are, and they are the source's values (a value `<img src=x onerror=...>` would run in the
    reader's browser). The report's own result (manifest, artifacts) is left as it is."""
    escaped = copy.copy(result)
    escaped.results = []
    for r in result.results:
        one = copy.copy(r)
        one.result = _escape_strings(r.result)
        one.exception_info = _escape_strings(r.exception_info)
        escaped.results.append(one)
    return escaped


def _escape_strings(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, Mapping):
        return {k: _escape_strings(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_escape_strings(v) for v in value)
    if isinstance(value, list):
        return [_escape_strings(v) for v in value]
    return value


def _copy_suite(suite):
    import_great_expectations()
    from great_expectations.core.expectation_suite import ExpectationSuite, ExpectationSuiteSchema

    schema = ExpectationSuiteSchema()
    return ExpectationSuite(**schema.load(schema.dump(suite)))
