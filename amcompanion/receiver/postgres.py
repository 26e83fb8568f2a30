"""The history on PostgreSQL (psycopg 3): the same jobs as on SQLite (`Database.run(fn)`, `Database.read(fn)`), the
same SQL, on a pool of connections.

The store's SQL is written once, in SQLite's dialect, and translated here as it is first used (`?` parameters,
`INSERT OR IGNORE`, the id of an insert): the receiver's statements are plain enough that a few rules cover them,
and one copy of each statement is what keeps the two engines' semantics the same. Each job runs in a transaction
of its own, in a thread (psycopg's blocking API, as the store's functions are plain functions of a connection).
"""

import asyncio
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from amcompanion.history.schema import migrate_postgres

T = TypeVar("T")
POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10
JOB_WAIT_S = 5.0
_PARAMETER = re.compile(r"\?")
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_TABLES_WITHOUT_ID = frozenset({"sla_targets"})


class InUse(Exception):
    """Another receiver has the database."""


class Row(Sequence[Any]):
    """A row as sqlite3.Row gives it: by position (`row[0]`) and by column name (`row["id"]`, `dict(row)`)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: tuple[str, ...], values: tuple[Any, ...]):
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return self._values[self._names.index(key)]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


class Cursor:
    """What the store reads of a statement's result: rows, `rowcount` and the new row's `lastrowid`."""

    def __init__(self, cursor: psycopg.Cursor, returned_id: bool):
        self._cursor = cursor
        names = tuple(column.name for column in cursor.description or ())
        self._rows = [Row(names, tuple(values)) for values in cursor.fetchall()] if cursor.description else []
        self.rowcount = cursor.rowcount
        self.lastrowid = self._rows[0][0] if returned_id and self._rows else None

    def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Row]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, bool]:
    """SQLite's SQL as PostgreSQL takes it, and whether it returns the inserted row's id (for `lastrowid`)."""
    text = sql.replace("%", "%%")
    ignore = bool(_INSERT_OR_IGNORE.match(text))
    if ignore:
        text = _INSERT_OR_IGNORE.sub("INSERT INTO", text, count=1) + " ON CONFLICT DO NOTHING"
    text = _PARAMETER.sub("%s", text)
    insert = _INSERT.match(text)
    returns_id = bool(insert) and insert.group(1) not in _TABLES_WITHOUT_ID and "RETURNING" not in text.upper()
    if returns_id:
        text += " RETURNING id"
    return text, returns_id


class Connection:
    """A psycopg connection that takes the store's SQLite-dialect statements."""

    def __init__(self, conn: psycopg.Connection):
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        text, returns_id = translate(sql)
        with self._conn.cursor() as cursor:
            cursor.execute(text, tuple(parameters))  # type: ignore[call-overload]
            return Cursor(cursor, returns_id)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        text, _ = translate(sql)
        with self._conn.cursor() as cursor:
            cursor.executemany(text.removesuffix(" RETURNING id"), [tuple(row) for row in rows])  # type: ignore[arg-type]

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


class PostgresDatabase:
    """The history in PostgreSQL at `url`: `run` commits each job in a transaction of its own, `read` reads."""

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        self.path = url
        self._pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._holder: psycopg.Connection | None = None  # holds the receiver's lock on the database
        self.on_commit: list[Callable[[], None]] = []

    @property
    def opened(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Connect once (a server that is not there, or refuses us, fails here with its own words), migrate, take the
        database for this receiver, then keep a pool: connections lost later (a restart, a failover) are made again
        by the pool as jobs need them."""
        await asyncio.to_thread(self._migrate)
        holder = await asyncio.to_thread(self._take)
        # a job waits at most JOB_WAIT_S for a connection: with the server down it fails (503) rather than hang
        pool = ConnectionPool(self.path, min_size=1, max_size=self._pool_size, open=False, timeout=JOB_WAIT_S)
        try:
            await asyncio.to_thread(pool.open, wait=True, timeout=CONNECT_TIMEOUT_S)
        except BaseException:
            await asyncio.to_thread(holder.close)  # let the database go: this receiver does not start
            raise
        self._holder, self._pool = holder, pool
        self._threads = ThreadPoolExecutor(self._pool_size, thread_name_prefix="amcompanion-postgres")

    def _take(self) -> psycopg.Connection:
        """One receiver per database, for now: a second would send every page twice, as the outbox's claims are not
        shared between processes yet. A session lock, held by a connection of its own while the receiver runs (and
        let go by the server when that connection ends, the process killed or not; also when the server restarts,
        which is why it is a guard against a second receiver started by mistake, not a claim on the work)."""
        holder = psycopg.connect(self.path, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
        (taken,) = holder.execute("SELECT pg_try_advisory_lock(hashtext('amcompanion receiver'))").fetchone()  # type: ignore[misc]
        if not taken:
            holder.close()
            raise InUse(
                "another receiver is using this database: run one receiver per database (several replicas on one"
                " database are not supported yet)"
            )
        return holder

    def _migrate(self) -> None:
        with psycopg.connect(self.path, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            migrate_postgres(conn)

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        assert self._threads is not None and self._holder is not None
        self._threads.shutdown(wait=True)
        await asyncio.to_thread(pool.close)
        await asyncio.to_thread(self._holder.close)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(conn, *args) in a transaction of its own; its result once committed."""
        result = await self._in_thread(self._transaction, fn, args)
        for listener in self.on_commit:
            listener()
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._in_thread(self._transaction, fn, args)

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        if self._pool is None or self._threads is None:
            raise RuntimeError("the database is not open")
        return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    def _transaction(self, fn: Callable[..., T], args: tuple) -> T:
        assert self._pool is not None
        with self._pool.connection() as conn, conn.transaction():
            return fn(Connection(conn), *args)
