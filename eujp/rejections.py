"""Rejected rows are visible: every source that rejected rows is a warning of the run, or its error above the
source's threshold.

    judge_rejections(settings, batches)   # before the load: each prepared batch's verdict, on the batch
    rejection_errors(batches) / rejection_warnings(batches)   # after it: what the run's summary says

The threshold is a share of the source's rows in (input rows, eujp.rows), in percent: EUJP_MAX_REJECTED_PCT
(default 5), or the source's own EUJP_MAX_REJECTED_PCT_<SOURCE> (its registered name in upper case). A share
at or below it: the run completes with a warning naming the source, the count, the share and where the rows
are (etl_rejected_rows). Above it: the source's valid rows are still loaded (they passed the transform and the
table's critical expectations), but the run fails, so that the on_failure hook alerts and a person looks; the
error names the source, the share and the threshold. Either names the reasons most rows were rejected for
(`common_reasons`: the values of a natural key left out, so that one kind of duplicate is one reason). The
verdict is also the source's etl_runs.message.

A batch that failed (or was blocked by a failed expectation: all its rows are rejected) already fails the run
with its own error: it gets no verdict here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from eujp.config import MAX_REJECTED_PCT_ENV, Settings, max_rejected_pct_env
from eujp.pipeline import SourceBatch
from eujp.rows import RUN_FAILS, format_pct
from eujp.sources import SOURCES_BY_NAME

WHERE = "etl_rejected_rows"
TOP_REASONS = 3  # how many reasons a verdict names
REASON_CHARS = 160  # a longer reason is cut there in the verdict (etl_rejected_rows keeps it whole)
KEY_WORDS = "natural key"  # a reason naming a natural key's values is counted by the words before them


@dataclass(frozen=True)
class Rejections:
    """One source's rejected rows in one run, against its threshold."""

    source: str
    run_id: str
    rows_in: int
    rows_rejected: int
    threshold: float  # percent of rows in
    setting: str  # the variable the threshold comes from
    reasons: list[tuple[str, int]] = field(default_factory=list)  # the most common reasons, with their rows

    @property
    def pct(self) -> float:
        return 100.0 * self.rows_rejected / self.rows_in if self.rows_in else 0.0

    @property
    def over(self) -> bool:
        return self.pct > self.threshold

    def message(self) -> str:
        counted = (f"{self.source}: {self.rows_rejected:,} of {self.rows_in:,} rows in rejected "
                   f"({format_pct(self.pct)})")
        where = f"see {WHERE} (run_id '{self.run_id}', source '{self.source}') for the rows and why"
        if self.reasons:
            where = "most often: " + ", ".join(
                f'"{reason}" ({rows:,} row{"" if rows == 1 else "s"})' for reason, rows in self.reasons) + "; " + where
        if self.over:
            shown = format_pct(self.threshold)
            if shown == format_pct(self.pct):  # 1.5625% above 1.56%: both as given, not as rounded alike
                counted, shown = counted.replace(f"({format_pct(self.pct)})", f"({self.pct:g}%)"), f"{self.threshold:g}%"
            return (f"{counted}, above the threshold of {shown} ({self.setting}); its "
                    f"{self.rows_in - self.rows_rejected:,} valid rows were loaded, but {RUN_FAILS}; {where}")
        return f"{counted}, within the threshold of {format_pct(self.threshold)} ({self.setting}); {where}"


def judge_rejections(settings: Settings, batches: list[SourceBatch]) -> list[Rejections]:
    """The verdict of every prepared batch that rejected rows, also set on the batch (`rejections`, the
    message; `rejected_over_threshold`) so that its etl_runs row records it when it is loaded."""
    verdicts = []
    for batch in batches:
        if batch.status != "prepared" or not batch.rows_rejected or not batch.rows_in:
            continue
        threshold, setting = settings.max_rejected_pct_for(batch.source)
        verdict = Rejections(source=batch.source, run_id=settings.run_id, rows_in=batch.rows_in,
                             rows_rejected=batch.rows_rejected, threshold=threshold, setting=setting,
                             reasons=common_reasons(batch))
        batch.rejections, batch.rejected_over_threshold = verdict.message(), verdict.over
        verdicts.append(verdict)
    return verdicts


def reason_kind(reason: pl.Expr) -> pl.Expr:
    """A rejected row's reason up to the words KEY_WORDS, where it names the values of a natural key ('exact
    duplicate of an earlier row with natural key …': every copy of a payload sent twice is one reason, not a
    reason a row), cut at REASON_CHARS. Every other reason stays whole: 'unknown partner code ZZ'. Plain
    string operations, no regular expression: 10M reasons of duplicates are counted in seconds."""
    at = reason.str.find(KEY_WORDS, literal=True)
    kind = pl.when(at.is_not_null()).then(reason.str.head(at + len(KEY_WORDS)) + " …").otherwise(reason)
    return pl.when(kind.str.len_chars() > REASON_CHARS).then(kind.str.head(REASON_CHARS - 1) + "…").otherwise(kind)


def common_reasons(batch: SourceBatch, top: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The `top` most common reasons (`reason_kind`) of the batch's rejected rows, with their counts, most
    first: read from the rejected rows it holds and the ones it spilled, one column at a time."""
    parts = [pl.scan_parquet(batch.rejected_chunks)] if batch.rejected_chunks else []
    if batch.rejected is not None and batch.rejected.height:
        parts.append(batch.rejected.lazy())
    if not parts:
        return []
    counted = (pl.concat([p.select("reason") for p in parts])
               .group_by(reason_kind(pl.col("reason")).fill_null("(no reason)").alias("reason")).len()
               .sort(["len", "reason"], descending=[True, False]).head(top).collect(engine="streaming"))
    return list(counted.iter_rows())


def rejection_errors(batches: list[SourceBatch]) -> list[str]:
    """The run's errors: the verdicts above their threshold of the batches that were loaded."""
    return [b.rejections for b in batches
            if b.status == "loaded" and b.rejections and b.rejected_over_threshold]


def rejection_warnings(batches: list[SourceBatch]) -> list[str]:
    """The run's warnings: the verdicts within their threshold of the batches that were loaded."""
    return [b.rejections for b in batches
            if b.status == "loaded" and b.rejections and not b.rejected_over_threshold]


def unknown_threshold_sources(settings: Settings) -> list[str]:
    """The EUJP_MAX_REJECTED_PCT_<SOURCE> variables that name no registered source (a typo would otherwise
    leave the source under the general threshold without a word), each with the known names."""
    known = ", ".join(max_rejected_pct_env(name) for name in SOURCES_BY_NAME)
    return [f"{max_rejected_pct_env(name)} names no source (the per-source thresholds are {known}; the "
            f"general one is {MAX_REJECTED_PCT_ENV})"
            for name, _ in settings.max_rejected_pct_by_source if name not in SOURCES_BY_NAME]
