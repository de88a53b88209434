"""Comext's live request plan without a server: the request shape, the slices a too-big request splits
into, the endpoint and the watermark."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from eujp.errors import ExtractError, ParseError
from eujp.live import env_list
from eujp.sources.comext_goods import (
    COMEXT_DEFAULTS,
    ENDPOINT,
    SOURCE,
    ComextSlice,
    comext_backfill,
    comext_request,
    comext_scope,
    comext_watermark,
    parse_cn_codelist,
    parse_update_data,
    plan_slices,
)

REPO = Path(__file__).resolve().parents[3]


def test_default_endpoint_is_the_comext_service():
    assert ENDPOINT.base_url({}) == "https://ec.europa.eu/eurostat"
    assert SOURCE.endpoint_env == "EUJP_COMEXT_URL"


def test_comext_requests_follow_the_comext_sdmx_api():
    url, params = comext_request("https://ec.europa.eu/eurostat", {},
                                 ComextSlice("2024-01", "2025-07", ("84834030",)))
    members = "AT+BE+BG+CY+CZ+DE+DK+EE+ES+FI+FR+GR+HR+HU+IE+IT+LT+LU+LV+MT+NL+PL+PT+RO+SE+SI+SK"
    assert url == ("https://ec.europa.eu/eurostat/api/comext/dissemination/sdmx/2.1/data/DS-045409/"
                   f"M.EU27_2020+{members}.JP.84834030.1+2.VALUE_IN_EUROS+QUANTITY_IN_100KG")
    assert params == [("startPeriod", "2024-01"), ("endPeriod", "2025-07"), ("format", "SDMX-CSV"),
                      ("compressed", "false")]
    _, params = comext_request("https://x", {"EUJP_COMEXT_REPORTERS": ""}, ComextSlice("2024-01", "2025-07", ()),
                               updated_after="2025-07-15T06:00:00+00:00")
    assert params[-1] == ("updatedAfter", "2025-07-15T06:00:00+00:00")
    url, _ = comext_request("https://x", {"EUJP_COMEXT_REPORTERS": "DE,FR", "EUJP_COMEXT_FLOWS": "2"},
                            ComextSlice("2025-01", "2025-01", ("84834030", "85011010")))
    assert url.endswith("/DS-045409/M.DE+FR.JP.84834030+85011010.2.VALUE_IN_EUROS+QUANTITY_IN_100KG")


def test_comext_slices_split_by_period_then_chapter_then_product_list():
    s = ComextSlice("2025-01", "2025-07", ("84834030", "85011010", "85011091"))
    assert [(p.start, p.end) for p in s.split()] == [("2025-01", "2025-03"), ("2025-04", "2025-07")]
    one_month = ComextSlice("2025-06", "2025-06", s.products)
    assert [p.products for p in one_month.split()] == [("84834030",), ("85011010", "85011091")]
    one_chapter = ComextSlice("2025-06", "2025-06", ("85011010", "85011091"))
    assert [p.products for p in one_chapter.split()] == [("85011010",), ("85011091",)]
    assert ComextSlice("2025-06", "2025-06", ("85011010",)).split() == []
    assert ComextSlice("2025-06", "2025-06", ()).split() == []  # all products: no codes to split on
    # annual data: cut between years only (a year's figure answers any of its months)
    years = ComextSlice("2020-04", "2024-12", s.products)
    assert [(p.start, p.end) for p in years.split(years=True)] == [("2020-04", "2021-12"), ("2022-01", "2024-12")]
    assert [p.products for p in ComextSlice("2020-01", "2020-12", s.products).split(years=True)] == [
        ("84834030",), ("85011010", "85011091")]


@settings(max_examples=200, deadline=None)
@given(products=st.lists(st.from_regex(r"[0-9]{8}", fullmatch=True), min_size=1, max_size=40, unique=True),
       first=st.integers(0, 40), months=st.integers(1, 60), months_per_slice=st.integers(1, 24),
       products_per_request=st.integers(1, 30), cap=st.integers(1, 200), years=st.booleans())
def test_the_plan_and_its_splits_ask_for_every_product_and_month_once(products, first, months, months_per_slice,
                                                                      products_per_request, cap, years):
    """However the products fall into chapters, the months into slices and the service's size limit (`cap`
    product-months per answer, 413 beyond it) into the plan: the slices the plan makes, split as
    fetch_comext_slice splits a 413 (periods, then chapters, then halves of the product list) until each piece
    fits, ask for every (product, month) exactly once. A piece over the cap can always be split: one product
    and one month fits any cap. (Until the twenty-fourth session fetch_comext_slice gave up after ten levels
    of splits, where a default slice of 24 months and 400 codes of one chapter needs 11 levels to reach pieces
    of 12 product-months and 14 to reach one.) Annual data (`years`): the unit is a product's year, which any
    of its months answers: the plan and its splits cut between years only, so each year is asked for once."""
    start = f"{2002 + first // 12}-{first % 12 + 1:02d}"
    end_index = first + months - 1
    end = f"{2002 + end_index // 12}-{end_index % 12 + 1:02d}"

    def units(part: ComextSlice) -> list[str]:  # what a piece's answer holds per product: months, or years
        return sorted({m[:4] for m in part.months()}) if years else part.months()

    asked: list[tuple[str, str]] = []
    for piece in plan_slices(tuple(products), start, end, months_per_slice=months_per_slice,
                             products_per_request=products_per_request, years=years):
        pending = [piece]
        while pending:
            part = pending.pop(0)
            if len(part.products) * len(units(part)) <= cap:
                asked += [(p, u) for p in part.products for u in units(part)]
                continue
            parts = part.split(years=years)
            assert parts, part
            pending[0:0] = parts
    assert sorted(asked) == sorted((p, u) for p in products for u in units(ComextSlice(start, end, ())))


def test_defaults_cover_every_product_since_2002():
    assert COMEXT_DEFAULTS["EUJP_COMEXT_PRODUCTS"] == ""  # every CN8 code of the codelist
    assert COMEXT_DEFAULTS["EUJP_COMEXT_START"] == "2002-01"
    assert env_list({}, "EUJP_COMEXT_REPORTERS", COMEXT_DEFAULTS["EUJP_COMEXT_REPORTERS"])[0] == "EU27_2020"
    assert len(env_list({}, "EUJP_COMEXT_REPORTERS", COMEXT_DEFAULTS["EUJP_COMEXT_REPORTERS"])) == 28


def test_plan_is_chapter_by_chapter_then_by_months():
    products = ("85011010", "84834030", "84811000", "85011091", "01012100")
    slices = plan_slices(products, "2024-01", "2025-07", months_per_slice=12, products_per_request=2)
    assert [(s.products, s.start, s.end) for s in slices] == [
        (("01012100",), "2024-01", "2024-12"), (("01012100",), "2025-01", "2025-07"),
        (("84811000", "84834030"), "2024-01", "2024-12"), (("84811000", "84834030"), "2025-01", "2025-07"),
        (("85011010", "85011091"), "2024-01", "2024-12"), (("85011010", "85011091"), "2025-01", "2025-07"),
    ]


def test_codelist_keeps_cn8_codes_and_their_english_names():
    labels = parse_cn_codelist((REPO / "data/snapshot/comext_codelist_cxt_nc_excerpt.xml").read_bytes())
    assert labels.rows() == [("84834030", "Ball or roller screws", "ESTAT:CXT_NC(1.0)")]
    with pytest.raises(ParseError, match="no Code element"):
        parse_cn_codelist(b"<a><b/></a>")
    with pytest.raises(ParseError, match="not an SDMX-ML codelist"):
        parse_cn_codelist(b"DATAFLOW,LAST UPDATE")


def test_dataflow_update_data():
    template = (REPO / "tests/fixtures/http/comext_dataflow_ds045409.xml").read_text()
    stamp = parse_update_data(template.replace("{update_data}", "2023-05-10T11:00:00+0200").encode())
    assert stamp == datetime(2023, 5, 10, 9, 0, tzinfo=UTC)
    assert parse_update_data(b"<Structure/>") is None


@pytest.mark.parametrize(("watermark", "start", "full", "expected"), [
    ("2024-01", "2002-01", False, "2024-01"),  # the watermark: the revision window
    ("2024-01", "2025-04", False, "2025-04"),  # a start moved past it: no month before the start is asked for
    ("2024", "2025-04", False, "2025-04"),
    ("2024-01", "2025", False, "2025-01"),
    (None, "2023-05", False, "2023-05"),  # a first extraction
    ("2024-01", "2023-05", True, "2023-05"),  # fetched whole
])
def test_the_request_starts_at_the_watermark_or_the_start_whichever_is_later(watermark, start, full, expected):
    from datetime import date
    from types import SimpleNamespace

    from eujp.sources.comext_goods import comext_period_range

    ctx = SimpleNamespace(source=SOURCE.name, watermark=watermark, env={"EUJP_COMEXT_START": start},
                          run_date=date(2025, 7, 15))
    assert comext_period_range(ctx, full=full) == (expected, "2025-07")


def test_a_start_after_the_run_month_fails_the_extraction_naming_the_setting():
    from datetime import date
    from types import SimpleNamespace

    from eujp.sources.comext_goods import comext_period_range

    ctx = SimpleNamespace(source=SOURCE.name, watermark=None, env={"EUJP_COMEXT_START": "2027"},
                          run_date=date(2026, 12, 31))
    with pytest.raises(ExtractError, match=r"^EUJP_COMEXT_START='2027' is later than this month \(2026-12, the run's"):
        comext_period_range(ctx)


def test_watermark():
    assert SOURCE.next_watermark("2025-06") == "2024-01"
    assert comext_watermark("2025-06") == "2024-01"


def test_the_scope_names_every_list_of_the_key_and_the_first_month():
    scope = comext_scope({"EUJP_COMEXT_PARTNERS": "US+JP", "EUJP_COMEXT_START": "2010"})
    assert scope["partners"] == ["JP", "US"] and scope["products"] == ["*"] and scope["start"] == "2010-01"
    assert scope["reporters"][0] == "AT" and len(scope["reporters"]) == 28
    assert set(scope) == {"freq", "reporters", "partners", "products", "flows", "indicators", "start"}


def test_a_widened_scope_is_backfilled_by_one_list_or_the_months_before_else_fetched_whole():
    before = comext_scope({})
    assert comext_backfill(before, comext_scope({})) is None
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_REPORTERS": "DE"})) is None  # fewer: nothing to add
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "KR"})).added == ("KR",)  # JP for KR
    partners = comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "JP,CN,KR"}))
    assert (partners.setting, partners.added, partners.full) == ("EUJP_COMEXT_PARTNERS", ("CN", "KR"), None)
    earlier = comext_backfill(before, comext_scope({"EUJP_COMEXT_START": "1999-01"}))
    assert (earlier.before, earlier.setting, earlier.full) == ("2002-01", None, None)
    listed = comext_scope({"EUJP_COMEXT_PRODUCTS": "84834030"})
    every = comext_backfill(listed, comext_scope({}))  # every product now: the codelist's codes not asked before
    assert (every.setting, every.added, every.full) == ("EUJP_COMEXT_PRODUCTS", None, None)
    # fetched whole: an indicator added (a fact row joins both), every reporter (no list says which are new),
    # or two parts at once
    assert "both indicators" in comext_backfill(comext_scope({"EUJP_COMEXT_INDICATORS": "VALUE_IN_EUROS"}),
                                                before).full
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_FREQ": "M,A"})).full
    assert "every reporter" in comext_backfill(before, comext_scope({"EUJP_COMEXT_REPORTERS": ""})).full
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "JP,CN", "EUJP_COMEXT_REPORTERS": "EU28"})).full
    assert comext_backfill(before, comext_scope({"EUJP_COMEXT_PARTNERS": "JP,CN", "EUJP_COMEXT_START": "1999"})).full


# --- a widened request: what the backfill and the incremental request ask for, cell by cell -------------------

CODELIST = ("01012100", "01012910", "84834030", "84839089", "85011010")
END = "2025-07"
RUN = date(2025, 7, 15)  # a day of END


def _lists(codes: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(codes), min_size=1, unique=True).map(",".join)


@st.composite
def settings_of(draw) -> dict[str, str]:
    """Comext settings of a run: lists of reporters, partners, flows and products (empty: every CN8 code) and
    a first month."""
    return {"EUJP_COMEXT_REPORTERS": draw(_lists(("EU27_2020", "DE", "FR"))),
            "EUJP_COMEXT_PARTNERS": draw(_lists(("JP", "CN", "KR", "US"))),
            "EUJP_COMEXT_FLOWS": draw(_lists(("1", "2"))),
            "EUJP_COMEXT_PRODUCTS": draw(st.one_of(st.just(""), _lists(CODELIST))),
            "EUJP_COMEXT_START": f"{draw(st.integers(2021, 2025))}-{draw(st.integers(1, 7)):02d}"}


def _months(start: str, end: str) -> list[str]:
    return ComextSlice(start, end, ()).months()


UNIVERSE = {"EUJP_COMEXT_REPORTERS": ("EU27_2020", "DE", "FR"), "EUJP_COMEXT_PARTNERS": ("JP", "CN", "KR", "US"),
            "EUJP_COMEXT_FLOWS": ("1", "2")}


def _cells(env: dict, products, months) -> set[tuple]:
    """(reporter, partner, flow, product, month) a request of `env`'s lists asks for (an empty list: every code,
    as in the request's key)."""
    def codes(name: str) -> tuple[str, ...]:
        return env_list(env, name, COMEXT_DEFAULTS[name]) or UNIVERSE[name]

    return {(r, p, f, c, m) for r in codes("EUJP_COMEXT_REPORTERS") for p in codes("EUJP_COMEXT_PARTNERS")
            for f in codes("EUJP_COMEXT_FLOWS") for c in products for m in months}


def _asked(env: dict, slices) -> list[tuple]:
    return [cell for s in slices for cell in _cells(s.settings(env), s.products, s.months())]


@st.composite
def settings_then(draw) -> tuple[dict[str, str], dict[str, str]]:
    """The settings of a last extraction, and this run's: mostly the same with one or two of them drawn again."""
    before = draw(settings_of())
    again = draw(settings_of())
    changed = draw(st.sets(st.sampled_from(sorted(before)), min_size=1, max_size=2) | st.just(set(before)))
    return before, {k: again[k] if k in changed else v for k, v in before.items()}


@settings(max_examples=400, deadline=None)
@given(runs=settings_then(), newest=st.integers(0, 60))
def test_a_backfill_asks_for_every_cell_the_settings_add_once_and_the_incremental_request_the_rest(runs, newest):
    """For any settings of a last extraction and of this run: what the settings add (cells of reporter, partner,
    flow, product and month no extraction asked for) is in the backfill, which asks for nothing outside this
    run's settings; the incremental request asks only for cells asked before, every one of them from its first
    month; no cell is asked twice. A widening no backfill describes is fetched whole."""
    from types import SimpleNamespace

    from eujp.incremental import month_add
    from eujp.sources.comext_goods import plan_backfill

    def products_of(env):
        return env_list(env, "EUJP_COMEXT_PRODUCTS", "") or CODELIST

    before, now = runs
    previous, current = comext_scope(before), comext_scope(now)
    asked_before = _cells(before, products_of(before), _months(previous["start"], END))
    wanted = _cells(now, products_of(now), _months(current["start"], END))
    added = wanted - asked_before
    backfill = comext_backfill(previous, current)
    if backfill is None:
        event("no widening")
        assert not added
        return
    if backfill.full:
        event("fetched whole")
        assert added, backfill.full
        return
    event(f"backfill of {backfill.setting or 'earlier months'}")
    # the incremental request asks from the watermark: January of the year before the newest month loaded
    # (comext_period_range), earlier than the first month in the first year
    start = comext_watermark(min(month_add(previous["start"], newest), END))
    ctx = SimpleNamespace(env=now, previous_scope=previous, run_date=RUN)
    sizes = {"months_per_slice": 5, "products_per_request": 2}
    split = plan_backfill(ctx, backfill, products_of(now), start, END, sizes)
    backfilled = _asked(now, split.slices)
    incremental = _asked(now, [replace(s, key=split.key) for s in plan_slices(split.products, split.start, END,
                                                                                 **sizes)])
    assert len(backfilled) == len(set(backfilled)) and len(incremental) == len(set(incremental))
    assert added <= set(backfilled) <= wanted
    assert not set(backfilled) & set(incremental)
    assert set(incremental) <= _cells(before, products_of(before), _months(start, END))
    assert {c for c in asked_before & wanted if c[4] >= start} <= set(incremental)


@settings(max_examples=300, deadline=None)
@given(runs=settings_then(), months=st.integers(1, 30), newest=st.integers(0, 60))
def test_with_the_history_in_stages_the_runs_that_follow_ask_for_every_added_cell_once(runs, months, newest):
    """EUJP_COMEXT_HISTORY_MONTHS set, for any settings of a last (whole) extraction and of the runs after it:
    each run asks for no cell twice, and for no more than `months` months of history beyond the incremental
    request's once the first stage is fetched; the runs record what they fetched (comext_scope_fetched) and
    the next plans from it; in a few runs every cell the settings add is fetched whole, exactly once, nothing
    outside them, and the last run records the settings' scope itself (no stage left). A widening no backfill
    describes is fetched whole, as without stages (every product asked for where a list was, too)."""
    from types import SimpleNamespace

    from eujp.incremental import month_add
    from eujp.sources.comext_goods import STAGE, comext_scope_fetched, plan_backfill

    def products_of(env):
        return env_list(env, "EUJP_COMEXT_PRODUCTS", "") or CODELIST

    before, now = runs
    now = {**now, "EUJP_COMEXT_HISTORY_MONTHS": str(months)}
    previous, current = comext_scope(before), comext_scope(now)
    asked_before = _cells(before, products_of(before), _months(previous["start"], END))
    added = _cells(now, products_of(now), _months(current["start"], END)) - asked_before
    watermark = comext_watermark(min(month_add(previous["start"], newest), END))
    start = max(watermark, current["start"])  # the incremental request's first month (comext_period_range)
    sizes = {"months_per_slice": 5, "products_per_request": 2}
    fetched: list[tuple] = []
    for run in range(1, 100):
        backfill = comext_backfill(previous, current, staged=True)
        if backfill is None:
            break
        if backfill.full:
            event("fetched whole")
            assert run == 1 and (added or current["products"] == ["*"]), backfill.full  # every code of the codelist
            return
        event(f"backfill of {backfill.setting or 'earlier months'}{' in stages' if run > 1 else ''}")
        ctx = SimpleNamespace(env=now, previous_scope=previous, run_date=RUN, source="comext_goods")
        split = plan_backfill(ctx, backfill, products_of(now), start, END, sizes)
        backfilled = _asked(now, split.slices)
        incremental = _asked(now, [replace(s, key=split.key) for s in plan_slices(split.products, split.start, END,
                                                                                     **sizes)])
        assert len(backfilled) == len(set(backfilled)) and len(incremental) == len(set(incremental))
        assert not set(backfilled) & set(incremental)
        if run > 1:
            assert len({c[4] for c in backfilled}) <= months
            assert {c for c in fetched if c[4] >= split.start} <= set(incremental)  # asked with updatedAfter
        fetched += backfilled
        previous = comext_scope_fetched(current, previous, now, RUN, watermark)
    else:
        pytest.fail("the history in stages never ends")
    assert len(fetched) == len(set(fetched))
    assert added <= set(fetched) and set(fetched) <= added | {c for c in asked_before if c[4] < start}
    assert STAGE not in previous


@pytest.mark.parametrize(("env", "message"), [
    ({"EUJP_COMEXT_PARTNERS": "JP,XX"}, "EUJP_COMEXT_PARTNERS: 'XX' is not an ISO 3166 country code"),
    ({"EUJP_COMEXT_REPORTERS": "EU27_2020,EL,UK"},
     r"'EL', 'UK' are not an ISO 3166 country code or an EU aggregate.*EL is Eurostat's code for Greece, Comext's is GR"),
    ({"EUJP_COMEXT_PARTNERS": "JP,RS"},
     r"EUJP_COMEXT_PARTNERS: 'RS' is not .*RS is ISO 3166's code for Serbia, the Comext geonomenclature's is XS"),
    ({"EUJP_COMEXT_PRODUCTS": "848340"}, "EUJP_COMEXT_PRODUCTS: '848340' is not a CN8 code: 8 digits"),
    ({"EUJP_COMEXT_PRODUCTS": "8483 40 30"}, "'8483 40 30' is not a code"),
    ({"EUJP_COMEXT_FLOWS": "import"},
     r"EUJP_COMEXT_FLOWS: 'IMPORT' is not 1 \(import\) or 2 \(export\) \(an import is flow 1\)"),
    ({"EUJP_COMEXT_INDICATORS": "VALUE_IN_EUR"}, "'VALUE_IN_EUR' is not VALUE_IN_EUROS or QUANTITY_IN_100KG"),
    ({"EUJP_COMEXT_FREQ": "Q"}, "EUJP_COMEXT_FREQ: 'Q' is not M"),
    ({"EUJP_COMEXT_START": "2002-1"}, "EUJP_COMEXT_START='2002-1' is not a month"),  # '2002-1' > '2002-07' as text
    ({"EUJP_COMEXT_START": "2025-13"}, "EUJP_COMEXT_START='2025-13' is not a month"),
    ({"EUJP_COMEXT_START": "2025-01-15"}, "is not a month"),
])
def test_a_comext_code_the_service_would_answer_with_nothing_is_refused_naming_the_setting(env, message):
    with pytest.raises(ExtractError, match=message):
        comext_scope(env)


@pytest.mark.parametrize("setting, value", [("EUJP_COMEXT_HISTORY_MONTHS", "0"), ("EUJP_COMEXT_HISTORY_MONTHS", "a"),
                                            ("EUJP_COMEXT_ASYNC_WAIT_SECONDS", "-1")])
def test_the_scope_reads_the_plans_other_settings_so_the_preflight_refuses_a_bad_one(setting, value):
    with pytest.raises(ExtractError, match=setting):
        comext_scope({setting: value})


def test_the_history_in_stages_starts_n_months_before_the_first_month_reached():
    from datetime import date

    from eujp.sources.comext_goods import comext_history_start, comext_scope_fetched

    env = {"EUJP_COMEXT_START": "2002-01", "EUJP_COMEXT_HISTORY_MONTHS": "24"}
    run = date(2026, 11, 30)
    assert comext_history_start(env, run, None) == "2024-12"  # a first extraction: the newest 24 months
    assert comext_history_start(env, run, "2024-12") == "2022-12"  # then the 24 before the first reached
    assert comext_history_start(env, run, "2003-06") == "2002-01"  # never before EUJP_COMEXT_START
    assert comext_history_start({"EUJP_COMEXT_START": "2002-01"}, run, None) == "2002-01"  # unset: all at once
    scope = comext_scope(env, run)
    assert comext_scope_fetched(scope, None, env, run)["start"] == "2024-12"
    assert comext_scope_fetched(scope, {**scope, "start": "2024-12"}, env, run)["start"] == "2022-12"
    assert comext_scope_fetched(scope, scope, env, run) == scope  # the history whole: the scope as asked
    # another list widened with the start: a full extraction, staged from the newest months again
    assert comext_scope_fetched(scope, {**scope, "start": "2024-12", "partners": ["CN"]}, env, run)["start"] == \
        "2024-12"


def test_the_landed_scope_starts_where_statements_of_the_same_key_reach_without_a_gap():
    """A run of the history in stages whose incremental request was fetched too lands two statements of one key,
    the months before the first one reached and those from it on: a replay of it asked for every month from the
    earlier. A statement of another key (a partner added, from a later month) keeps the latest first month."""
    import json as _json

    from eujp.landing import RawPayload
    from eujp.sources.comext_goods import comext_landed_scope

    def statement(start, end, partners=("JP",)):
        return {"dataflow": "DS-045409", "products": "all", "codelist": "ESTAT:CXT_NC(7.0)", "freq": "M",
                "reporters": ["DE"], "partners": list(partners), "flows": ["import"], "start": start, "end": end}

    def landed(*statements):
        url = ("https://x/api/comext/dissemination/sdmx/2.1/data/DS-045409/M.DE.JP..1.VALUE_IN_EUROS+QUANTITY_IN_100KG"
               "?startPeriod=2025-01")
        return [RawPayload("comext_goods", "coverage", _json.dumps(list(statements)).encode(), url, kind="coverage")]

    assert comext_landed_scope(landed(statement("2025-02", "2025-04"), statement("2025-05", "2025-07")))["start"] \
        == "2025-02"
    assert comext_landed_scope(landed(statement("2025-01", "2025-01"), statement("2025-02", "2025-04"),
                                      statement("2025-05", "2025-07")))["start"] == "2025-01"
    # a gap (2025-04 stated by none): from the later statement
    assert comext_landed_scope(landed(statement("2025-01", "2025-03"), statement("2025-05", "2025-07")))["start"] \
        == "2025-05"
    # another key's statement from 2025-04: its partners were not asked for before it
    assert comext_landed_scope(landed(statement("2025-02", "2025-04"), statement("2025-05", "2025-07"),
                                      statement("2025-04", "2025-07", ("CN",))))["start"] == "2025-05"
