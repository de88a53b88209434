"""Building the model layer: the dimensions and marts of eujp.marts.MODEL_TABLES, in order, from their SQL
(eujp/marts/{table}.sql; mart_claims from eujp/marts/claims/*.sql), on the staging warehouse.

A model is rebuilt only where its inputs changed (`build_models`): when the run wrote one of the tables it
depends on (a fact a source loaded, a reference or dim_country whose rows changed: `table_digests`, or a model
rebuilt before it in this run), when its definition (YAML + SQL) differs from the one it was last built from,
or when it was never built. etl_model_state keeps, per model, that definition's SHA-256 and the run that last
rebuilt it. `build_marts` rebuilds every model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from eujp import marts
from eujp.errors import AuditFailed
from eujp.marts import CLAIMS_DIR, MART_CLAIMS, MODEL_TABLES, MODELS, SQL_DIR
from eujp.schema import ETL_MODEL_STATE, Table
from eujp.sql import quote_ident, sql_string
from eujp.warehouse import create_table_sql, duplicate_keys, table_exists, write_comments

VERDICTS = ("supported", "contradicted", "not enough data")


class MartBuildError(AuditFailed):
    """A mart's SQL failed, returned other columns than declared, or broke its natural key: nothing is
    promoted or published."""


def _result_columns(conn: duckdb.DuckDBPyConnection, sql: str, what: str) -> list[str]:
    try:
        return [d[0] for d in conn.execute(f"SELECT * FROM (\n{sql}\n) LIMIT 0").description]
    except duckdb.Error as exc:
        raise MartBuildError(f"{what}: the query failed: {exc}") from exc


def _fill(conn: duckdb.DuckDBPyConnection, table: Table, sql: str, what: str) -> int:
    expected = list(table.all_columns)
    got = _result_columns(conn, sql, what)
    if got != expected:
        raise MartBuildError(f"{what}: the query returns columns {got}, the table declares {expected}")
    t = quote_ident(table.name)
    conn.execute(f"DELETE FROM {t}")
    try:
        conn.execute(f"INSERT INTO {t} SELECT * FROM (\n{sql}\n)")
    except duckdb.Error as exc:
        raise MartBuildError(f"{what}: loading the result failed: {exc}") from exc
    return conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]


def claims_sql(conn: duckdb.DuckDBPyConnection) -> str:
    """mart_claims' query: every claim file's row plus the file's text as query_sql."""
    parts = []
    claim_columns = [c for c in MART_CLAIMS.all_columns if c != "query_sql"]
    for path in marts.claim_files():
        sql = path.read_text(encoding="utf-8").strip().rstrip(";")
        what = f"claim {path.name}"
        got = _result_columns(conn, sql, what)
        if got != claim_columns:
            raise MartBuildError(f"{what}: returns columns {got}, expected {claim_columns}")
        if got[0] != "claim_id":
            raise MartBuildError(f"{what}: first column must be claim_id")
        n = conn.execute(f"SELECT count(*), min(claim_id) FROM (\n{sql}\n)").fetchone()
        if n[0] != 1 or n[1] != path.stem:
            raise MartBuildError(f"{what}: must return exactly one row with claim_id = {path.stem!r}, got {n}")
        parts.append(f"SELECT *, {sql_string(sql)} AS query_sql FROM (\n{sql}\n)")
    if not parts:
        raise MartBuildError(f"no claim queries in {CLAIMS_DIR}")
    return "\nUNION ALL\n".join(parts)


@dataclass
class ModelBuild:
    """What build_models did: rows per model (rebuilt or kept) and, per rebuilt model, why."""

    counts: dict[str, int] = field(default_factory=dict)
    rebuilt: dict[str, str] = field(default_factory=dict)

    @property
    def kept(self) -> list[str]:
        return [name for name in self.counts if name not in self.rebuilt]


def definition_sha256(table: Table) -> str:
    """SHA-256 of what a model is built from: its YAML declaration and its SQL (mart_claims: every claim)."""
    digest = hashlib.sha256(MODELS[table.name].path.read_bytes())
    sources = marts.claim_files() if table is MART_CLAIMS else [SQL_DIR / f"{table.name}.sql"]
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def table_digests(conn: duckdb.DuckDBPyConnection, names: Iterable[str]) -> dict[str, tuple]:
    """Rows and an order-independent hash of every row, per table: equal digests, equal rows (for the small
    tables a run replaces whole: dim_country, the references), so that a rewrite with the same rows does not
    count as written."""
    out = {}
    for name in names:
        t = quote_ident(name)
        out[name] = (conn.execute(f"SELECT count(*), sum(hash(t)) FROM {t} AS t").fetchone()
                     if table_exists(conn, name) else None)
    return out


def _model_state(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    conn.execute(create_table_sql(ETL_MODEL_STATE))
    return dict(conn.execute(f"SELECT model, definition_sha256 FROM {quote_ident(ETL_MODEL_STATE.name)}").fetchall())


def _why_rebuild(table: Table, state: dict[str, str], definition: str, written: Collection[str] | None) -> str | None:
    if written is None:
        return "every model rebuilt"
    if table.name not in state:
        return "never built"
    if state[table.name] != definition:
        return "definition changed"
    inputs = sorted(set(MODELS[table.name].depends_on) & set(written))
    return f"input written: {', '.join(inputs)}" if inputs else None


def deleted_partition_values(conn: duckdb.DuckDBPyConnection, table: str, where: str,
                             params: list | None = None) -> dict[str, list]:
    """{expression: its distinct values} over the rows of fact `table` that `where` selects, for each partition
    expression a model declares over it (`partition_by.facts`): read before the run deletes those rows, and given
    to build_models (`deleted`), so that the partitions they leave are rebuilt (no row of the run marks them)."""
    expressions = sorted({expression for m in MODELS.values() if m.partition is not None
                          for fact, expression in m.partition.facts if fact == table})
    return {e: [r[0] for r in conn.execute(f"SELECT DISTINCT {e} FROM {quote_ident(table)} WHERE {where}",
                                           params or []).fetchall()] for e in expressions}


def _touched(conn: duckdb.DuckDBPyConnection, model, written: Collection[str], run_id: str | None,
             partial: dict[str, tuple[str, list]], additive: set[str],
             deleted: dict[str, dict[str, list]] | None = None) -> list | None:
    """The values of a partitioned model's column that the run's writes touched, or None when they cannot be
    told (then the whole model is rebuilt): every written input must be a fact of `partition_by.facts`
    loaded by natural key (its touched values: the expression over the rows the run wrote, and over the rows
    it deleted: `deleted`, {fact: {expression: values}}, from `deleted_partition_values`), a model
    partially rebuilt on the same column (its values), or a model whose rebuild only added rows."""
    part = model.partition
    if part is None or run_id is None:
        return None
    facts = dict(part.facts)
    values: set = set()
    for name in sorted(set(model.depends_on) & set(written)):
        if name in facts:
            if _loaded_with_replace_scope(name):  # a scoped delete could drop rows of any value
                return None
            values |= {r[0] for r in conn.execute(
                f"SELECT DISTINCT {facts[name]} FROM {quote_ident(name)} WHERE run_id = ?", [run_id]).fetchall()}
            gone = (deleted or {}).get(name)
            if gone is not None:
                if facts[name] not in gone:  # deleted rows whose values for this expression were not read
                    return None
                values |= set(gone[facts[name]])
        elif name in partial and partial[name][0] == part.column:
            values |= set(partial[name][1])
        elif name not in additive:
            return None
    return sorted(v for v in values if v is not None) or None


def _loaded_with_replace_scope(table: str) -> bool:
    """Whether a source loads `table` with a replace scope: its load may delete rows of any value."""
    from eujp.sources import SOURCES

    return any(s.table.name == table and s.replace_scope is not None for s in SOURCES)


def _holds_every_new_value(conn: duckdb.DuckDBPyConnection, model, written: Collection[str], run_id: str | None,
                           deleted: dict[str, dict[str, list]] | None = None) -> bool:
    """Whether the run's writes leave `model` as it is, by its `depends_on_values`: every input the run wrote is
    a fact declared there, loaded by natural key (no replace scope) with the declared column in that key, no row
    of it deleted by the run (`deleted`), and every value of the column on the rows the run wrote (its run id) is
    one the model holds already. The fact's set of values is then the one the model was built from: a row the
    run replaced had the same natural key, so the same value. False whenever that cannot be told."""
    held = {v.fact: v for v in model.values_of}
    inputs = set(model.depends_on) & set(written)
    if run_id is None or not inputs or not inputs <= set(held):
        return False
    from eujp.tables import ALL_TABLES

    tables = {t.name: t for t in ALL_TABLES}
    for name in sorted(inputs):
        spec, table = held[name], tables.get(name)
        if (table is None or not table.is_fact or spec.column not in table.natural_key or name in (deleted or {})
                or _loaded_with_replace_scope(name)):
            return False
        where = f" WHERE {spec.where}" if spec.where else ""
        new = conn.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {quote_ident(spec.column)} AS v FROM {quote_ident(name)} "
            f"WHERE run_id = ?) AS w ANTI JOIN (SELECT {quote_ident(spec.held_in)} AS v FROM "
            f"{quote_ident(model.table.name)}{where}) AS m ON w.v = m.v", [run_id]).fetchone()[0]
        if new:
            return False
    return True


def _literals(values: list) -> str:
    """The values as an SQL list of literals: a constant IN list is pushed down into the model's query (its
    scans, GROUP BYs and windows partitioned by the column), a subquery would not be (3.3 s vs 11 s for one
    year of mart_product_trade at 5M fact rows)."""
    def literal(v) -> str:
        if isinstance(v, bool) or not isinstance(v, int | str):
            raise MartBuildError(f"partition value {v!r}: only integers and text are supported")
        return str(int(v)) if isinstance(v, int) else sql_string(v)
    return "(" + ", ".join(literal(v) for v in values) + ")"


_YEAR_OF = re.compile(r"^\s*year\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")


def _rows_of(expression: str, values: list) -> str:
    """The predicate that keeps an input's rows whose partition value (`expression`) is in `values`. For
    `year(column)` and whole years it also bounds the column itself (column >= 'Y-01-01' AND column <
    'Y+1-01-01'): DuckDB skips the row groups outside those bounds by their min/max (zone maps), which it
    cannot do for a function of the column (a year of 25M fact rows: the scan of every row took ~0.7 s)."""
    wanted = f"({expression}) IN {_literals(values)}"
    match = _YEAR_OF.match(expression)
    if not match or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return wanted
    column = quote_ident(match.group(1))
    bounds = " OR ".join(f"({column} >= MAKE_DATE({int(v)}, 1, 1) AND {column} < MAKE_DATE({int(v) + 1}, 1, 1))"
                         for v in sorted(set(values)))
    return f"{wanted} AND ({bounds})"


def _fill_partitions(conn: duckdb.DuckDBPyConnection, table: Table, column: str, values: list, sql: str,
                     what: str, facts: dict[str, str] | None = None) -> int:
    """Replace the rows of `table` whose `column` is in `values` by those the model's `sql` gives for them.

    `facts` (input table -> the expression of its rows' partition value: the model's `partition_by.facts`, and
    the models rebuilt for the same column): the model declares that its rows of a value depend only on its
    inputs' rows of that value, so while the query runs each of those tables is shadowed by a temporary view
    of its rows of `values` only. Filtering the
    result alone is not enough: a CTE the query reads several times is materialized over the whole fact table
    before the filter applies (16 s for one year of the three partitioned marts at 25M fact rows)."""
    expected = list(table.all_columns)
    got = _result_columns(conn, sql, what)
    if got != expected:
        raise MartBuildError(f"{what}: the query returns columns {got}, the table declares {expected}")
    t, c, in_list = quote_ident(table.name), quote_ident(column), _literals(values)
    conn.execute(f"DELETE FROM {t} WHERE {c} IN {in_list}")
    name = conn.execute("SELECT current_database()").fetchone()[0]  # the file's stem, e.g. a run id
    database = '"' + name.replace('"', '""') + '"'
    shadowed = []
    try:
        for fact, expression in (facts or {}).items():
            f = quote_ident(fact)
            conn.execute(f"CREATE OR REPLACE TEMP VIEW {f} AS SELECT * FROM {database}.main.{f} "
                         f"WHERE {_rows_of(expression, values)}")
            shadowed.append(f)
        conn.execute(f"INSERT INTO {t} SELECT * FROM (\n{sql}\n) WHERE {c} IN {in_list}")
    except duckdb.Error as exc:
        raise MartBuildError(f"{what}: loading the result failed: {exc}") from exc
    finally:
        for f in shadowed:
            conn.execute(f"DROP VIEW IF EXISTS temp.main.{f}")
    keys = ", ".join(quote_ident(k) for k in table.natural_key)
    dups = conn.execute(f"SELECT count(*) FROM (SELECT {keys} FROM {t} WHERE {c} IN {in_list} "
                        "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    if dups:
        raise MartBuildError(f"{table.name}: {dups} natural key value(s) {table.natural_key} occur more than once")
    return conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]


def _feeds_a_partition(name: str) -> bool:
    return any(m.partition is not None and name in m.depends_on for m in MODELS.values())


def _partitioned_inputs(model, partial: dict[str, tuple[str, list]], *, every: bool) -> dict[str, str]:
    """The inputs of a partitioned `model` whose rows of a value are known, as {table: the expression of its
    partition value}: its facts (`partition_by.facts`), the models rebuilt for the same column in this run
    and, for a build of `every` value, the models partitioned by that column (kept ones too)."""
    column = model.partition.column
    inputs = dict(model.partition.facts)
    for name in model.depends_on:
        upstream = MODELS.get(name)
        if (name in partial and partial[name][0] == column) or (
                every and upstream is not None and upstream.partition is not None
                and upstream.partition.column == column):
            inputs[name] = quote_ident(column)
    return inputs


def _every_value(conn: duckdb.DuckDBPyConnection, inputs: dict[str, str]) -> list | None:
    """Every partition value of the rows of `inputs` ({table: expression}), or None when there is none or
    some row's value is null (a null is in no value's partition: the model is then built whole)."""
    values: set = set()
    for name, expression in inputs.items():
        for (value,) in conn.execute(f"SELECT DISTINCT {expression} FROM {quote_ident(name)}").fetchall():
            if value is None:
                return None
            values.add(value)
    return sorted(values) or None


def _fill_by_value(conn: duckdb.DuckDBPyConnection, table: Table, column: str, values: list, sql: str,
                   what: str, inputs: dict[str, str]) -> int:
    """`_fill_partitions` one value at a time: each query reads one value's input rows, so its memory and
    time follow a value (a year), not the history (mart_product_trade over 25.8M fact rows, six years: 18 s,
    1.6-3.7 s a year, against 29 s as one query)."""
    rows = 0
    for value in values:
        rows = _fill_partitions(conn, table, column, [value], sql, what, inputs)
    return rows


def build_models(conn: duckdb.DuckDBPyConnection, written: Collection[str] | None = None, *,
                 run_id: str | None = None, now: datetime | None = None,
                 deleted: dict[str, dict[str, list]] | None = None) -> ModelBuild:
    """Build the models of MODEL_TABLES, in order, that need it (see the module docstring); `written`: the
    tables the run wrote (None: rebuild every model); `deleted`: the partition values of fact rows the run
    deleted (`deleted_partition_values`), rebuilt as those it wrote. Each rebuilt table is created if missing, emptied and
    filled from its SQL, its comments rewritten, its natural key checked, and its etl_model_state row
    replaced. Raises MartBuildError (an AuditFailed: the run publishes nothing) on any error."""
    now = now or datetime.now(UTC)
    state = _model_state(conn)
    changed = None if written is None else set(written)
    result = ModelBuild()
    partial: dict[str, tuple[str, list]] = {}  # model -> (column, values rebuilt)
    additive: set[str] = set()  # models whose rebuild only added rows
    for table in MODEL_TABLES:
        conn.execute(create_table_sql(table))
        definition = definition_sha256(table)
        reason = _why_rebuild(table, state, definition, changed)
        if reason is not None and reason.startswith("input") and _holds_every_new_value(
                conn, MODELS[table.name], changed, run_id, deleted):
            reason = None  # its inputs' rows changed, not the values it reads of them
        if reason is None:
            result.counts[table.name] = conn.execute(f"SELECT count(*) FROM {quote_ident(table.name)}").fetchone()[0]
            continue
        write_comments(conn, table)
        sql = claims_sql(conn) if table is MART_CLAIMS else marts.mart_sql(table).strip().rstrip(";")
        what = f"{table.name} ({SQL_DIR.name}/{table.name}.sql)"
        model = MODELS[table.name]
        values = (_touched(conn, model, changed, run_id, partial, additive, deleted) if reason.startswith("input")
                  else None)
        every = every_inputs = None
        if values is None and model.partition is not None:  # built whole: one partition value at a time
            every_inputs = _partitioned_inputs(model, partial, every=True)
            every = _every_value(conn, every_inputs)
        if values is not None:
            inputs = _partitioned_inputs(model, partial, every=False)
            rows = _fill_by_value(conn, table, model.partition.column, values, sql, what, inputs)
            partial[table.name] = (model.partition.column, values)
            reason += f"; {model.partition.column} {', '.join(map(str, values))} only"
        elif every is not None:
            conn.execute(f"DELETE FROM {quote_ident(table.name)}")  # the values no input has any more too
            rows = _fill_by_value(conn, table, model.partition.column, every, sql, what, every_inputs)
            partial[table.name] = (model.partition.column, every)
            reason += f"; built by {model.partition.column}, {len(every)} value(s) one at a time"
        else:
            keep_old = reason.startswith("input") and _feeds_a_partition(table.name)
            if keep_old:  # to tell whether the rebuild only added rows (then partitions downstream hold)
                conn.execute(f"CREATE OR REPLACE TEMP TABLE _model_before AS SELECT * FROM {quote_ident(table.name)}")
            rows = _fill(conn, table, sql, what)
            dups = duplicate_keys(conn, table)
            if dups:
                raise MartBuildError(f"{table.name}: {dups} natural key value(s) {table.natural_key} occur more "
                                     "than once")
            if keep_old:
                removed = conn.execute(f"SELECT count(*) FROM (SELECT * FROM _model_before EXCEPT ALL "
                                       f"SELECT * FROM {quote_ident(table.name)})").fetchone()[0]
                conn.execute("DROP TABLE _model_before")
                if removed == 0:
                    additive.add(table.name)
        if table is MART_CLAIMS:
            bad = conn.execute(
                f"SELECT claim_id, verdict FROM {quote_ident(MART_CLAIMS.name)} WHERE verdict NOT IN "
                f"({', '.join(repr(v) for v in VERDICTS)}) OR verdict IS NULL").fetchall()
            if bad:
                raise MartBuildError(f"mart_claims: verdicts outside {VERDICTS}: {bad}")
        conn.execute(f"DELETE FROM {quote_ident(ETL_MODEL_STATE.name)} WHERE model = ?", [table.name])
        conn.execute(f"INSERT INTO {quote_ident(ETL_MODEL_STATE.name)} VALUES (?, ?, ?, ?, ?, ?)",
                     [table.name, definition, run_id, now, rows, reason])
        result.counts[table.name], result.rebuilt[table.name] = rows, reason
        if changed is not None:
            changed.add(table.name)
    return result


def build_marts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """(Re)build every dimension and mart of MODEL_TABLES, in order; returns rows per table (build_models
    with every model rebuilt)."""
    return build_models(conn, None).counts
