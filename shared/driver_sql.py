"""Hot-path statements compiled once to psycopg's SQL and run on the driver connection beneath a SQLAlchemy
Connection, inside its transaction.

Executing a Core statement costs several times what psycopg itself spends: building the statement, its cache
key, an execution context, a result object. Measured on this machine, a run's compare-and-set
`UPDATE … RETURNING` took 0.80 ms of CPU through Core and 0.22 ms on the driver, a `SELECT` of one run 0.52 ms
and 0.18 ms. A run step makes about ten statements: through Core that was a tenth of a runs worker's CPU.
The statements are still written as Core constructs (the column knowledge stays in shared/models.py); each
shape is compiled once.

Callers see what Core would give them: JSON columns are written as Core writes them (`None` as JSON null), a
statement opens the connection's transaction if none is open (Core's autobegin), and a failure goes through
Core's own error handling — driver errors arrive wrapped (OperationalError, IntegrityError, …), and a dead
connection is invalidated together with every connection the pool opened before it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.util.concurrency import greenlet_spawn

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
        if not conn.in_transaction():
            conn.begin()  # as Core's autobegin: the block's commit() must cover what runs here
        args = self._args(params)
        raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        cursor = raw.cursor(row_factory=namedtuple_row) if self.named else raw.cursor()
        try:
            return cursor.execute(self.sql, args)
        except BaseException as err:
            # Core's own handling: wraps driver errors, and on a dead connection invalidates it and every
            # connection the pool opened before it (Postgres restarted: they are all dead; no pre-ping finds them).
            conn._handle_dbapi_exception(err, self.sql, args, cursor, None)  # type: ignore[arg-type]

    async def execute_async(self, conn: AsyncConnection, params: Mapping[str, Any]) -> "psycopg.AsyncCursor[Any]":
        if not conn.in_transaction():
            await conn.begin()
        args = self._args(params)
        raw: psycopg.AsyncConnection[Any] = (await conn.get_raw_connection()).driver_connection  # type: ignore
        cursor = raw.cursor(row_factory=namedtuple_row) if self.named else raw.cursor()
        try:
            return await cursor.execute(self.sql, args)
        except BaseException as err:
            # The same handling, in the greenlet SQLAlchemy's async layer runs its blocking calls in.
            await greenlet_spawn(conn.sync_connection._handle_dbapi_exception,  # type: ignore[union-attr]
                                 err, self.sql, args, None, None)
            raise  # not reached: the handler raises


def prepare(stmt: ClauseElement, column_keys: Sequence[str] | None = None, *, named: bool = False) -> Prepared:
    """`stmt` (with `bindparam`s, or the columns of an INSERT/UPDATE named in `column_keys`) as driver SQL;
    `named`: its rows as named tuples. Refuses what Core would have to do per execution and this does not:
    Python-side column defaults, parameters rendered at execution (`in_()` lists), values other than JSON that
    a type converts on the way in. (Values come back as psycopg loads them: the models' column types need no
    conversion by Core.)"""
    keys = list(column_keys) if column_keys is not None else None
    compiled = cast(SQLCompiler, stmt.compile(dialect=_DIALECT, column_keys=keys))
    binds = compiled.binds
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError(f"columns with Python-side defaults must be given: "
                         f"{[*compiled.insert_prefetch, *compiled.update_prefetch]}")
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise ValueError("parameters rendered at execution (e.g. in_() lists) are not supported")
    if keys is not None and set(keys) - set(binds):
        raise ValueError(f"not columns of the statement's table: {sorted(set(keys) - set(binds))}")
    json_params = frozenset(name for name, bind in binds.items() if isinstance(bind.type, sqltypes.JSON))
    converted = {name for name in compiled._bind_processors if name in binds}
    if unsupported := converted - json_params - {n for n in converted if isinstance(binds[n].type, sqltypes.Boolean)}:
        raise ValueError(f"parameters whose type converts them are not supported: {sorted(unsupported)}")
    fixed = {name: Jsonb(value) if name in json_params else value
             for name, value in compiled.construct_params(_check=False).items()
             if name in binds and not binds[name].required}
    return Prepared(str(compiled), json_params, fixed, named)


def names(cursor: "psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]") -> list[str]:
    """The columns of a cursor's result, by name."""
    return [d.name for d in cursor.description or ()]
