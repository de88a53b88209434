"""dim_country: EU membership over time from the reference seed."""

from __future__ import annotations

from datetime import date

from eujp.pipeline import load_countries
from transforms.countries import eu_members_on


def test_membership_follows_accession_and_exit_dates():
    dim = load_countries(date(2026, 11, 24))
    assert len(eu_members_on(dim, date(2026, 11, 24))) == 27
    assert len(eu_members_on(dim, date(2013, 7, 1))) == 28  # Croatia joins
    assert len(eu_members_on(dim, date(2013, 6, 30))) == 27  # EU27_2007
    assert len(eu_members_on(dim, date(1995, 1, 1))) == 15
    assert "GB" in eu_members_on(dim, date(2020, 1, 31))  # its last day as a member
    assert "GB" not in eu_members_on(dim, date(2020, 2, 1))
    members = dim.filter(dim["is_eu_member"])["iso2"].to_list()
    assert len(members) == 27 and "GB" not in members and "HR" in members
