"""The model layer's declarations (eujp/marts/*.yml): each model's depends_on is exactly what its SQL reads,
the build order follows it, and a malformed declaration, an unknown dependency or a cycle fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from eujp.marts import (
    CLAIMS_DIR,
    MODEL_TABLES,
    MODEL_TYPES,
    MODELS,
    SQL_DIR,
    ModelDeclarationError,
    build_order,
    check_dependencies,
    claim_files,
    load_models,
)
from eujp.tables import ALL_TABLES, MART_TABLES, TABLES
from eujp.warehouse import duck_type


def tables_read(sql: str) -> set[str]:
    """The tables a query reads, from DuckDB's parse tree: every base table reference, less the CTE names."""
    with duckdb.connect() as conn:
        tree = json.loads(conn.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    assert not tree["error"], tree
    refs: set[str] = set()
    ctes: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                refs.add(node["table_name"])
            ctes.update(e["key"] for e in (node.get("cte_map") or {}).get("map", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    assert not ctes & set(TABLES), f"a CTE shadows a warehouse table: {ctes & set(TABLES)}"
    return refs - ctes


def model_sql_files(name: str) -> list[Path]:
    return claim_files() if name == "mart_claims" else [SQL_DIR / f"{name}.sql"]


def test_the_parser_sees_through_ctes_subqueries_and_joins():
    sql = ("WITH x AS (SELECT * FROM a) SELECT * FROM x JOIN b USING (k), (SELECT * FROM c) "
           "WHERE k IN (SELECT k FROM d)")
    assert tables_read(sql) == {"a", "b", "c", "d"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_depends_on_is_exactly_the_warehouse_tables_the_sql_reads(name):
    read = set().union(*(tables_read(p.read_text(encoding="utf-8").strip().rstrip(";"))
                         for p in model_sql_files(name)))
    assert read <= set(TABLES), f"{name} reads tables the warehouse does not have: {read - set(TABLES)}"
    assert set(MODELS[name].depends_on) == read, \
        f"{MODELS[name].path.name}: depends_on must list {sorted(read)}"


def test_every_model_has_its_sql_and_every_sql_its_declaration():
    assert {p.stem for p in SQL_DIR.glob("*.sql")} == set(MODELS) - {"mart_claims"}
    assert {p.stem for p in SQL_DIR.glob("*.yml")} == set(MODELS)
    assert claim_files() and CLAIMS_DIR.is_dir()


def test_models_are_built_and_created_after_the_tables_they_read():
    built = [t.name for t in MODEL_TABLES]
    assert built == list(MODELS)
    created = [t.name for t in ALL_TABLES]
    for name, model in MODELS.items():
        for dep in model.depends_on:
            assert created.index(dep) < created.index(name), f"{name} is created before {dep}"
    # dimensions first, then the marts; ties by name
    assert built[:3] == ["dim_eu_aggregate_member", "dim_date", "dim_product"]
    assert [t.name for t in MART_TABLES] == [n for n in built if n.startswith("mart_")]
    assert built.index("mart_product_trade") < built.index("mart_chapter_trade")


def test_models_are_rebuilt_documented_tables_with_warehouse_types():
    for table in MODEL_TABLES:
        assert not table.is_fact and table.rebuilt, table.name
        assert table.docs.keys() == table.all_columns.keys(), f"{table.name}: undocumented columns"
        assert set(table.natural_key) <= set(table.columns), table.name
    for name, dtype in MODEL_TYPES.items():
        assert duck_type(dtype) == name  # a declared type is the type the DDL writes


def test_build_order_breaks_ties_dimensions_first_then_by_name():
    deps = {"mart_b": ["fact_x"], "mart_a": ["dim_z"], "dim_z": ["dim_country"], "dim_y": [],
            "mart_c": ["mart_a"]}
    assert build_order(deps) == ["dim_y", "dim_z", "mart_a", "mart_b", "mart_c"]


def test_a_cycle_is_refused_naming_the_models():
    cycle = r"cycle: (mart_a -> mart_b -> mart_a|mart_b -> mart_a -> mart_b)"
    with pytest.raises(ModelDeclarationError, match=cycle):
        build_order({"mart_a": ["mart_b"], "mart_b": ["mart_a", "fact_x"]})


def _declare(directory: Path, name: str, depends_on: list[str], type_name: str = "VARCHAR") -> None:
    (directory / f"{name}.yml").write_text(
        f"name: {name}\ndescription: A test model.\nnatural_key: [k]\ndepends_on: {json.dumps(depends_on)}\n"
        f"columns:\n  k:\n    type: {type_name}\n    description: The key.\n", encoding="utf-8")


def test_declarations_in_a_cycle_are_refused(tmp_path):
    _declare(tmp_path, "mart_a", ["mart_b"])
    _declare(tmp_path, "mart_b", ["mart_a"])
    with pytest.raises(ModelDeclarationError, match="cycle"):
        load_models(tmp_path)


def test_an_unknown_dependency_is_refused_naming_the_file_and_table(tmp_path):
    _declare(tmp_path, "mart_a", ["fact_goods_trade", "fact_nonexistent"])
    models = load_models(tmp_path)
    check_dependencies(models, {"fact_goods_trade", "fact_nonexistent"})
    with pytest.raises(ModelDeclarationError, match=r"mart_a\.yml: fact_nonexistent"):
        check_dependencies(models, set(TABLES))


def test_a_malformed_declaration_is_refused_naming_the_file(tmp_path):
    _declare(tmp_path, "mart_a", [], type_name="TEXTISH")
    with pytest.raises(ModelDeclarationError, match=r"mart_a\.yml: column 'k': unknown type 'TEXTISH'"):
        load_models(tmp_path)
    (tmp_path / "mart_a.yml").write_text("name: mart_b\n", encoding="utf-8")
    with pytest.raises(ModelDeclarationError, match="expected the keys"):
        load_models(tmp_path)


@pytest.mark.parametrize(("values", "error"), [
    ({"fact_goods_trade_product": {"column": "product_cn8"}}, "must map input fact tables to their column"),
    ({"fact_goods_trade_product": {"column": "product_cn8", "held_in": "k", "when": "x"}},
     "must map input fact tables to their column"),
    ({"fact_goods_trade": {"column": "product_cn8", "held_in": "k"}}, "names tables it does not depend on"),
    ({"fact_goods_trade_product": {"column": "product_cn8", "held_in": "code"}},
     r"holds values in columns it does not declare: \['code'\]"),
])
def test_a_malformed_depends_on_values_is_refused_naming_the_file(tmp_path, values, error):
    _declare(tmp_path, "mart_a", ["fact_goods_trade_product"])
    path = tmp_path / "mart_a.yml"
    path.write_text(path.read_text(encoding="utf-8") + f"depends_on_values: {json.dumps(values)}\n", encoding="utf-8")
    with pytest.raises(ModelDeclarationError, match=rf"mart_a\.yml: depends_on_values .*{error}"):
        load_models(tmp_path)


@pytest.mark.parametrize("name", [m for m in MODELS if MODELS[m].values_of])
def test_what_depends_on_values_declares_holds_for_the_facts_it_names(name):
    """A model keeps its rows when a run brings no new value of a fact's declared column (eujp.marts.build): that
    column must be in the fact's natural key (a replaced row then keeps its value), and the model must read it."""
    by_name = {t.name: t for t in ALL_TABLES}
    sql = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    for held in MODELS[name].values_of:
        fact = by_name[held.fact]
        assert fact.is_fact and held.column in fact.natural_key, (name, held)
        assert held.column in sql and held.held_in in MODELS[name].table.columns, (name, held)
