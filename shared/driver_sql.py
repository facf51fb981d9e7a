"""Hot-path statements compiled once to psycopg's SQL and run on the driver connection beneath a SQLAlchemy
Connection, inside its transaction.

Executing a Core statement costs several times what psycopg itself spends: building the statement, its cache
key, an execution context, a result object. Measured on this machine, a run's compare-and-set
`UPDATE … RETURNING` took 0.80 ms of CPU through Core and 0.22 ms on the driver, a `SELECT` of one run 0.52 ms
and 0.18 ms. A run step makes about ten statements: through Core that was a tenth of a runs worker's CPU.
The statements are still written as Core constructs (the column knowledge stays in shared/models.py); each
shape is compiled once.

Callers see what Core would give them: JSON columns are written as Core writes them (`None` as JSON null), a
driver error arrives as SQLAlchemy's wrapper of it (OperationalError, IntegrityError, …), and a connection the
error shows dead is invalidated, so the pool does not hand it out again.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Dialect, exc
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Prepared:
    sql: str
    json_params: frozenset[str]  # parameters bound to JSON columns
    fixed: Mapping[str, Any]  # values written in the statement itself (`status == "in_progress"`)
    named: bool = False  # rows as named tuples (`row.id`), not plain ones

    def _args(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.fixed, **{k: Jsonb(v) if k in self.json_params else v for k, v in params.items()}}

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> "psycopg.Cursor[Any]":
        args = self._args(params)
        raw = conn.connection.driver_connection
        try:
            cursor = raw.cursor(row_factory=namedtuple_row) if self.named else raw.cursor()  # type: ignore[union-attr]
            return cursor.execute(self.sql, args)  # type: ignore[no-any-return]
        except psycopg.Error as err:
            gone = _gone(conn.dialect, err, raw)
            if gone:
                conn.invalidate(err)
            raise self._wrapped(conn.dialect, err, args, gone) from err

    async def execute_async(self, conn: AsyncConnection, params: Mapping[str, Any]) -> "psycopg.AsyncCursor[Any]":
        args = self._args(params)
        raw = (await conn.get_raw_connection()).driver_connection
        try:
            cursor = raw.cursor(row_factory=namedtuple_row) if self.named else raw.cursor()  # type: ignore[union-attr]
            return await cursor.execute(self.sql, args)  # type: ignore[no-any-return]
        except psycopg.Error as err:
            gone = _gone(conn.dialect, err, raw)
            if gone:
                await conn.invalidate(err)
            raise self._wrapped(conn.dialect, err, args, gone) from err

    def _wrapped(self, dialect: Dialect, err: psycopg.Error, args: dict[str, Any], gone: bool) -> exc.StatementError:
        return exc.DBAPIError.instance(self.sql, args, err, psycopg.Error, connection_invalidated=gone,
                                       dialect=dialect)


def _gone(dialect: Dialect, err: psycopg.Error, raw: Any) -> bool:
    """Whether `err` shows the connection dead, as Core judges it (the engine's dialect knows its driver)."""
    return bool(dialect.is_disconnect(err, raw, None))  # type: ignore[arg-type]


def prepare(stmt: ClauseElement, column_keys: Sequence[str] | None = None, *, named: bool = False) -> Prepared:
    """`stmt` (with `bindparam`s, or the columns of an INSERT/UPDATE named in `column_keys`) as driver SQL;
    `named`: its rows as named tuples."""
    compiled = cast(SQLCompiler, stmt.compile(dialect=_DIALECT,
                                              column_keys=list(column_keys) if column_keys is not None else None))
    if compiled.insert_prefetch or compiled.update_prefetch:  # Core would compute these before executing
        raise ValueError(f"columns with Python-side defaults must be given: {compiled.insert_prefetch}")
    binds = compiled.binds
    json_params = frozenset(name for name, bind in binds.items() if isinstance(bind.type, sqltypes.JSON))
    fixed = {name: value for name, value in compiled.construct_params(_check=False).items()
             if name in binds and not binds[name].required}
    return Prepared(str(compiled), json_params, fixed, named)


def names(cursor: "psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]") -> list[str]:
    """The columns of a cursor's result, by name."""
    return [d.name for d in cursor.description or ()]
