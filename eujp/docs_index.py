"""The Data Docs index page with its run times in UTC, as everything else the project writes.

GX's index renderer (great_expectations.render.renderer.SiteIndexPageRenderer) prints a validation's run time
in the process' local time zone, named by its abbreviation ("2026-12-06 00:46:17 JST" under TZ=Asia/Tokyo),
and GX offers no setting for the zone. A Data Docs site's `site_index_builder` may name another renderer
class, though: eujp.validate.build_data_docs names `UtcSiteIndexPageRenderer`, which prints the same instant
in UTC ("2026-12-05 15:46:17 UTC"), whatever the host's time zone. The sort order of the column (a timestamp)
is GX's, unchanged.

Imported only by GX, when it builds the site (this module imports Great Expectations at once).
"""

from __future__ import annotations

import datetime as dt

from great_expectations.render.renderer.site_index_page_renderer import SiteIndexPageRenderer

RUN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def utc_run_time(value: dt.datetime | str | None) -> str | None:
    """A run time (a datetime, or text GX stored) as the index shows it, in UTC; a time without an offset is
    taken as UTC (the run times eujp gives GX carry one)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value  # not a time: shown as GX stored it
    if not isinstance(value, dt.datetime):
        return None
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.strftime(RUN_TIME_FORMAT)


class UtcSiteIndexPageRenderer(SiteIndexPageRenderer):
    """GX's index page renderer, its "Run Time" column in UTC (`utc_run_time`)."""

    @classmethod
    def _get_formatted_datetime(cls, _datetime):
        return utc_run_time(_datetime)
