"""eujp.live.covers: which earlier request's validators can answer for a later request (the first day after a
full load, or after the watermark moved: LiveContext.windowed_get)."""

from __future__ import annotations

from eujp.live import covers

BASE = "https://ec.europa.eu/eurostat/api/dissemination/statistics/1.0/data/ext_lt_maineu?format=JSON&geo=EU27_2020"


def test_an_earlier_start_or_none_covers_a_later_start():
    assert covers(BASE, BASE + "&sinceTimePeriod=2022", "sinceTimePeriod")  # the full load covers the window
    assert covers(BASE + "&sinceTimePeriod=2020", BASE + "&sinceTimePeriod=2022", "sinceTimePeriod")
    assert covers(BASE + "&sinceTimePeriod=2022", BASE + "&sinceTimePeriod=2022", "sinceTimePeriod")


def test_a_later_start_or_other_filters_do_not_cover():
    assert not covers(BASE + "&sinceTimePeriod=2023", BASE + "&sinceTimePeriod=2022", "sinceTimePeriod")
    assert not covers(BASE + "&sinceTimePeriod=2020", BASE, "sinceTimePeriod")  # the window misses the start
    assert not covers(BASE.replace("EU27_2020", "EU28"), BASE + "&sinceTimePeriod=2022", "sinceTimePeriod")
    assert not covers(BASE + "&geo=EU28", BASE + "&sinceTimePeriod=2022", "sinceTimePeriod")
    assert not covers(BASE.replace("ext_lt_maineu", "bop_its6_det"), BASE + "&sinceTimePeriod=2022",
                      "sinceTimePeriod")
    oecd = "https://sdmx.oecd.org/public/rest/data/X/all?startPeriod={}&endPeriod={}"
    assert covers(oecd.format(2009, 2025), oecd.format(2023, 2025), "startPeriod")
    assert not covers(oecd.format(2009, 2025), oecd.format(2024, 2026), "startPeriod")  # a new year: not held
