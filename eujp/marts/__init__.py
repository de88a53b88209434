"""The model layer: built dimensions and BI marts, each declared beside its SQL, rebuilt when their inputs change.

    eujp/marts/{table}.yml     the table's declaration, dbt style: description, natural_key, depends_on (the
                               warehouse tables its SQL reads) and columns (name: DuckDB type, description)
    eujp/marts/{table}.sql     one SELECT per table (header comment: purpose, grain, caveats); columns must be
                               exactly the table's declared columns
    eujp/marts/claims/*.sql    one SELECT per op-ed claim, each returning one row; mart_claims (declared in
                               mart_claims.yml) is their union plus each file's text (`query_sql`)

The declarations are read at import into eujp.schema.Table records (non-fact, rebuilt every run): MODELS and
MODEL_TABLES, in build order (`build_order`: every model after the models it depends on). eujp.tables checks
that every depends_on entry is a warehouse table.

`eujp.marts.build.build_models(conn, written)` runs in the load step on the *staging* warehouse, after the facts and
reference tables are loaded and before the audit, so the marts are published atomically with the facts they come
from; it rebuilds only the models whose inputs the run wrote (or whose definition changed); `build_marts(conn)`
rebuilds them all.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from eujp.errors import EujpError
from eujp.schema import TS, B, D, F, I, S, Table

SQL_DIR = Path(__file__).resolve().parent
CLAIMS_DIR = SQL_DIR / "claims"

# The column types a declaration may use: DuckDB's names (as eujp.warehouse.create_table_sql writes them).
MODEL_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": S, "DOUBLE": F, "INTEGER": I, "BIGINT": pl.Int64(), "DATE": D, "BOOLEAN": B, "TIMESTAMPTZ": TS,
}
_KEYS = ("name", "description", "natural_key", "depends_on", "columns")
# Optional: `partition_by: {column: period_year, facts: {fact_table: SQL expression of the column}}`: the model's
# rows of one value of `column` depend only on its inputs' rows of that value (every GROUP BY, window and join
# carries it), so a run that wrote only some values (the facts' rows it wrote, through the expression, or a
# partitioned model upstream) rebuilds only those (eujp.marts.build).
# Optional: `depends_on_values: {fact_table: {column: C, held_in: M, where: SQL}}`: of that fact the model reads
# only the set of distinct values of C (a column of the fact's natural key), and holds each value it read in its
# column M (on its rows that `where` selects). A run that wrote rows to the fact (and to no other input), deleted
# none and brought no value the model does not hold leaves the model as it is: it is kept, not rebuilt.
_OPTIONAL_KEYS = ("partition_by", "depends_on_values")


class ModelDeclarationError(EujpError):
    """A model's YAML declaration is malformed, uses an unknown type, depends on a table the warehouse does
    not have, or the models depend on each other in a cycle."""


@dataclass(frozen=True)
class Partition:
    column: str  # a natural-key column of the model
    facts: tuple[tuple[str, str], ...] = ()  # (fact table, SQL expression of the column on its rows)


@dataclass(frozen=True)
class HeldValues:
    """`depends_on_values`: of `fact` the model reads only the distinct values of `column`, and holds each in
    its column `held_in` on its rows that `where` (SQL, or "" for all) selects."""
    fact: str
    column: str
    held_in: str
    where: str = ""


@dataclass(frozen=True)
class Model:
    table: Table
    depends_on: tuple[str, ...]  # the warehouse tables the model's SQL reads
    path: Path  # its YAML declaration
    partition: Partition | None = None
    values_of: tuple[HeldValues, ...] = ()  # its `depends_on_values`


def polars_dtype(type_name: object, what: str = "column") -> pl.DataType:
    """The polars dtype of a DuckDB type name (MODEL_TYPES)."""
    if not isinstance(type_name, str) or type_name not in MODEL_TYPES:
        raise ModelDeclarationError(f"{what}: unknown type {type_name!r}, expected one of {list(MODEL_TYPES)}")
    return MODEL_TYPES[type_name]


def _names(value: object, what: str) -> tuple[str, ...]:
    names = value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    if names is None or len(set(names)) != len(names):
        raise ModelDeclarationError(f"{what}: expected a list of distinct names, got {value!r}")
    return tuple(names)


def load_model(path: Path) -> Model:
    """A model from its YAML declaration; raises ModelDeclarationError naming the file and what is wrong."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ModelDeclarationError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict) or not set(_KEYS) <= set(spec) <= set(_KEYS + _OPTIONAL_KEYS):
        got = list(spec) if isinstance(spec, dict) else type(spec).__name__
        raise ModelDeclarationError(f"{path}: expected the keys {list(_KEYS)} (optional: {list(_OPTIONAL_KEYS)}), "
                                    f"got {got}")
    if spec["name"] != path.stem:
        raise ModelDeclarationError(f"{path}: name {spec['name']!r} differs from the file name")
    if not isinstance(spec["description"], str) or not spec["description"]:
        raise ModelDeclarationError(f"{path}: description must be a non-empty text")
    columns, docs = {}, {}
    if not isinstance(spec["columns"], dict) or not spec["columns"]:
        raise ModelDeclarationError(f"{path}: columns must map each column name to its type and description")
    for name, col in spec["columns"].items():
        what = f"{path}: column {name!r}"
        if not (isinstance(name, str) and isinstance(col, dict) and set(col) == {"type", "description"}
                and isinstance(col["description"], str) and col["description"]):
            raise ModelDeclarationError(f"{what}: expected a name with a type and a non-empty description")
        columns[name] = polars_dtype(col["type"], what)
        docs[name] = col["description"]
    natural_key = _names(spec["natural_key"], f"{path}: natural_key")
    if not set(natural_key) <= set(columns):
        raise ModelDeclarationError(f"{path}: natural_key {natural_key} names columns it does not declare")
    depends_on = _names(spec["depends_on"], f"{path}: depends_on")
    if spec["name"] in depends_on:
        raise ModelDeclarationError(f"{path}: {spec['name']} depends on itself")
    table = Table(name=spec["name"], description=spec["description"], columns=columns,
                  natural_key=natural_key, column_docs=docs, is_fact=False, rebuilt=True)
    return Model(table=table, depends_on=depends_on, path=path,
                 partition=_partition(spec.get("partition_by"), natural_key, depends_on, path),
                 values_of=_held_values(spec.get("depends_on_values"), columns, depends_on, path))


def _held_values(spec: object, columns: Mapping[str, object], depends_on: tuple[str, ...],
                 path: Path) -> tuple[HeldValues, ...]:
    if spec is None:
        return ()
    ok = isinstance(spec, dict) and all(
        isinstance(v, dict) and {"column", "held_in"} <= set(v) <= {"column", "held_in", "where"}
        and all(isinstance(x, str) and x for x in v.values()) for v in spec.values())
    if not ok:
        raise ModelDeclarationError(f"{path}: depends_on_values must map input fact tables to their column, the "
                                    f"model's column holding its values (held_in) and optionally where, got {spec!r}")
    unknown = set(spec) - set(depends_on)
    if unknown:
        raise ModelDeclarationError(f"{path}: depends_on_values names tables it does not depend on: {sorted(unknown)}")
    missing = sorted(v["held_in"] for v in spec.values() if v["held_in"] not in columns)
    if missing:
        raise ModelDeclarationError(f"{path}: depends_on_values holds values in columns it does not declare: {missing}")
    return tuple(HeldValues(fact, v["column"], v["held_in"], v.get("where", ""))
                 for fact, v in sorted(spec.items()))


def _partition(spec: object, natural_key: tuple[str, ...], depends_on: tuple[str, ...], path: Path) -> Partition | None:
    if spec is None:
        return None
    facts = spec.get("facts", {}) if isinstance(spec, dict) else None
    if (not isinstance(spec, dict) or not set(spec) <= {"column", "facts"} or spec.get("column") not in natural_key
            or not isinstance(facts, dict) or not all(isinstance(v, str) and v for v in facts.values())):
        raise ModelDeclarationError(f"{path}: partition_by must name a natural-key column and map input fact "
                                    f"tables to an SQL expression of it, got {spec!r}")
    unknown = set(facts) - set(depends_on)
    if unknown:
        raise ModelDeclarationError(f"{path}: partition_by names tables it does not depend on: {sorted(unknown)}")
    return Partition(column=spec["column"], facts=tuple(sorted(facts.items())))


def build_order(depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """The models' names so that each comes after the models it depends on (other names are tables loaded
    before any model: facts, references); among the models ready, dimensions first, then by name. Raises
    ModelDeclarationError on a cycle."""
    graph = {m: [d for d in deps if d in depends_on] for m, deps in depends_on.items()}  # models only
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ModelDeclarationError(f"the models' depends_on form a cycle: {cycle}") from exc
    order: list[str] = []
    ready: list[str] = []
    while sorter.is_active():
        ready.extend(sorter.get_ready())
        ready.sort(key=lambda m: (not m.startswith("dim_"), m))
        order.append(ready.pop(0))
        sorter.done(order[-1])
    return order


def load_models(directory: Path = SQL_DIR) -> dict[str, Model]:
    """Every {table}.yml of the directory, by name, in build order."""
    models = {m.table.name: m for m in map(load_model, sorted(directory.glob("*.yml")))}
    return {name: models[name] for name in build_order({n: m.depends_on for n, m in models.items()})}


def check_dependencies(models: Mapping[str, Model], tables: Collection[str]) -> None:
    """Raise ModelDeclarationError if a model depends on a table that is neither a model nor in `tables` (the
    warehouse's other tables)."""
    unknown = {f"{m.path.name}: {d}" for m in models.values() for d in m.depends_on
               if d not in models and d not in tables}
    if unknown:
        raise ModelDeclarationError(f"depends_on names tables the warehouse does not have: {sorted(unknown)}")


MODELS: dict[str, Model] = load_models()
# Built by build_marts in this order.
MODEL_TABLES: tuple[Table, ...] = tuple(m.table for m in MODELS.values())
MART_TABLES: tuple[Table, ...] = tuple(t for t in MODEL_TABLES if t.name.startswith("mart_"))
MART_CLAIMS: Table = MODELS["mart_claims"].table


def mart_sql(table: Table) -> str:
    return (SQL_DIR / f"{table.name}.sql").read_text(encoding="utf-8")


def claim_files() -> list[Path]:
    return sorted(CLAIMS_DIR.glob("*.sql"))
