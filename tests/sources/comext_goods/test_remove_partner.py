"""A partner removed on request (`eujp run --remove-partner`, eujp.partners.remove_partner_rows): its rows leave the
Comext facts and etl_comext_coverage in the run's staged warehouse, the models are rebuilt without it (the
partitioned marts for the years its rows leave, equal to a rebuild of everything), the audit's
row-count checks allow for exactly the rows removed, and an audit that fails leaves the live warehouse as it was.

The warehouse is the bundled snapshot's (tests/sources/conftest.py): Japan, and in June 2025 EU27_2020 with every
partner (an all-partner extract), so mart_product_trade ranks Japan among 16 extra-EU partners."""

from __future__ import annotations

import shutil

import pytest
from support.pipeline_steps import query

from eujp.audit import AuditCheck, AuditReport, audit_staging
from eujp.config import Settings
from eujp.errors import AuditFailed
from eujp.marts import MODEL_TABLES
from eujp.marts.build import build_models
from eujp.partners import held_rows, loaded_partners, remove_partner_rows
from eujp.pipeline import load_countries
from eujp.run import load_audit_promote
from eujp.warehouse import connect

RUN = "20261206T060000Z-remove1"


def _settings(warehouse, **changes) -> Settings:
    return Settings(warehouse_path=warehouse, publish_uri=str(warehouse.parent / "objectstore"), run_id=RUN,
                    **changes)


def _partners(warehouse) -> dict[str, int]:
    return dict(query(warehouse, "SELECT partner, count(*) FROM fact_goods_trade_product GROUP BY partner"))


def _add_coverage(warehouse, partners) -> None:
    """A live extraction's coverage rows for `partners` (the bundled snapshot's load writes none)."""
    with connect(warehouse) as conn:
        for partner in partners:
            conn.execute("INSERT INTO etl_comext_coverage VALUES ('EU27_2020', ?, 'import', DATE '2025-06-01', "
                         "'ESTAT:CXT_NC(1.0)', 'live-0', now())", [partner])


def _japan_extra_eu(warehouse) -> tuple:
    return query(warehouse, "SELECT japan_rank_among_extra_eu, extra_eu_partners_ranked FROM mart_product_trade "
                            "WHERE reporter = 'EU27_2020' AND flow = 'import' AND period_year = 2025")[0]


def test_a_removed_partner_leaves_the_facts_the_coverage_and_every_model(warehouse):
    before = _partners(warehouse)
    assert before["CN"] and before["US"] and before["JP"] == 4
    assert _japan_extra_eu(warehouse)[1] == 16
    _add_coverage(warehouse, ["CN", "KR"])
    # Japan's expected rank among the extra-EU partners left: 1 + those left with a larger June import
    (larger,) = query(warehouse, """
        SELECT count(*) FROM fact_goods_trade_product AS f JOIN dim_country AS c ON c.iso2 = if(f.partner = 'XS', 'RS', f.partner)
        WHERE f.reporter = 'EU27_2020' AND f.flow = 'import' AND f.period_code = '2025-06'
          AND f.partner NOT IN ('JP', 'CN', 'US') AND c.eu_entry_date IS NULL
          AND f.value_eur > (SELECT value_eur FROM fact_goods_trade_product WHERE reporter = 'EU27_2020'
                             AND partner = 'JP' AND flow = 'import' AND period_code = '2025-06')""")[0]

    settings = _settings(warehouse, remove_partners=("CN", "US"), max_row_drop_pct=0.0)
    counts, audit, _, changes = load_audit_promote(settings, [], load_countries(settings.run_date))

    after = _partners(warehouse)
    assert "CN" not in after and "US" not in after
    assert after == {p: n for p, n in before.items() if p not in ("CN", "US")}  # nobody else lost a row
    assert counts["fact_goods_trade_product"] == sum(before.values()) - before["CN"] - before["US"]
    assert query(warehouse, "SELECT partner FROM etl_comext_coverage ORDER BY 1") == [("KR",)]
    assert changes["partners_removed"] == {"CN": {"fact_rows": before["CN"], "coverage_rows": 1},
                                           "US": {"fact_rows": before["US"], "coverage_rows": 0}}
    assert {"fact_goods_trade_product", "etl_comext_coverage"} <= set(changes["tables_written"])
    # the partitioned marts rebuilt for the year the partner's rows left, the models without the facts kept
    assert changes["models_rebuilt"]["mart_product_trade"].endswith("period_year 2025 only")
    assert "mart_arms_transfers" in changes["models_kept"]
    assert _japan_extra_eu(warehouse) == (1 + larger, 14)
    with connect(warehouse, read_only=True) as conn:
        assert {row["partner"] for row in loaded_partners(conn)} == set(after)
    assert query(warehouse, "SELECT count(*) FROM mart_partner_years WHERE partner IN ('CN', 'US')") == [(0,)]
    # the drop threshold of 0 % held: the checks compared against the live rows less those removed
    check = {c["name"]: c for c in audit["checks"]}["fact_goods_trade_product.row_count_delta"]
    assert check["ok"] and f"less the {before['CN'] + before['US']} row(s) removed on request" in check["detail"]


def test_the_row_count_checks_take_off_only_the_rows_removed(warehouse):
    """Any other row the run lost still fails them: the removal is no licence to drop more."""
    live = sum(_partners(warehouse).values())
    with connect(warehouse) as conn:
        conn.execute("BEGIN")
        removed = remove_partner_rows(conn, ["CN"])["CN"]["fact_rows"]
        ok = audit_staging(conn, run_id=RUN, previous_counts={"fact_goods_trade_product": live},
                           max_row_drop_pct=0.0, removed_rows={"fact_goods_trade_product": removed})
        conn.execute("DELETE FROM fact_goods_trade_product WHERE partner = 'KR'")  # one more row gone
        lost = audit_staging(conn, run_id=RUN, previous_counts={"fact_goods_trade_product": live},
                             max_row_drop_pct=0.0, removed_rows={"fact_goods_trade_product": removed})
        conn.execute("ROLLBACK")
    name = "fact_goods_trade_product.row_count_delta"
    assert {c.name: c.ok for c in ok.checks}[name]
    assert not {c.name: c.ok for c in lost.checks}[name]


def test_a_removal_whose_audit_fails_leaves_the_live_warehouse_as_it_was(warehouse, monkeypatch):
    before = _partners(warehouse)
    _add_coverage(warehouse, ["CN"])
    failed = AuditReport(checks=[AuditCheck("forced", False, "a check that failed")])
    monkeypatch.setattr("eujp.run.audit_staging", lambda *a, **k: failed)
    settings = _settings(warehouse, remove_partners=("CN",))
    with pytest.raises(AuditFailed):
        load_audit_promote(settings, [], load_countries(settings.run_date))
    assert _partners(warehouse) == before
    assert query(warehouse, "SELECT partner FROM etl_comext_coverage") == [("CN",)]
    assert _japan_extra_eu(warehouse)[1] == 16


def test_a_partner_the_warehouse_does_not_hold_is_said_so_and_nothing_else_changes(warehouse):
    before = _partners(warehouse)
    settings = _settings(warehouse, remove_partners=("NZ",))
    _, _, _, changes = load_audit_promote(settings, [], load_countries(settings.run_date))
    assert changes["partners_removed"] == {"NZ": {"fact_rows": 0, "coverage_rows": 0}}
    assert _partners(warehouse) == before
    assert "fact_goods_trade_product" not in changes["tables_written"]
    assert changes["models_kept"]  # nothing removed: the models are as they were


def test_held_rows_count_the_facts_and_the_coverage_of_each_partner(warehouse):
    """What tells a removal that changes something (a day with nothing new takes the full path for it) from one
    that changes nothing: a partner with coverage rows but no fact row is still held."""
    assert "NZ" not in _partners(warehouse) and "AR" not in _partners(warehouse)
    _add_coverage(warehouse, ["AR"])
    with connect(warehouse, read_only=True) as conn:
        held = held_rows(conn, ["CN", "AR", "NZ"])
    assert held == {"CN": {"fact_rows": 1, "coverage_rows": 0}, "AR": {"fact_rows": 0, "coverage_rows": 1},
                    "NZ": {"fact_rows": 0, "coverage_rows": 0}}


def test_the_models_after_a_removal_equal_a_rebuild_of_everything(warehouse, tmp_path):
    """The partner's rows leave years the run wrote nothing in: a 2024 copy of CN's June row (and of Japan's, so
    that the year is ranked) is removed too, and its year rebuilt, as a rebuild of every model leaves it."""
    with connect(warehouse) as conn:
        conn.execute("""INSERT INTO fact_goods_trade_product SELECT * REPLACE (period - INTERVAL 1 YEAR AS period,
                        '2024-06' AS period_code) FROM fact_goods_trade_product
                        WHERE partner IN ('CN', 'JP') AND period_code = '2025-06'""")
        build_models(conn, None)
    assert query(warehouse, "SELECT count(*) FROM mart_partner_years WHERE partner = 'CN'") == [(2,)]
    settings = _settings(warehouse, remove_partners=("CN",))
    _, _, _, changes = load_audit_promote(settings, [], load_countries(settings.run_date))
    assert changes["models_rebuilt"]["mart_product_trade"].endswith("period_year 2024, 2025 only")
    rebuilt = tmp_path / "rebuilt.duckdb"
    shutil.copyfile(warehouse, rebuilt)
    with connect(rebuilt) as conn:
        build_models(conn, None)
    for table in MODEL_TABLES:
        if table.name == "mart_claims":  # its verdicts' text names the run's time
            continue
        order = ", ".join(table.natural_key)
        columns = ", ".join(c for c in table.all_columns if c not in ("run_id", "loaded_at", "built_at"))
        sql = f"SELECT {columns} FROM {table.name} ORDER BY {order}"
        assert query(warehouse, sql) == query(rebuilt, sql), table.name
    assert query(warehouse, "SELECT count(*) FROM mart_partner_years WHERE partner = 'CN'") == [(0,)]
