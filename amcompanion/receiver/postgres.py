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
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random

from amcompanion.history.schema import migrate_postgres

T = TypeVar("T")
POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10
JOB_WAIT_S = 5.0
_PARAMETER = re.compile(r"\?")
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_TABLES_WITHOUT_ID = frozenset({"sla_targets", "rate_buckets", "done_once"})
LISTEN_POLL_S = 1.0  # how often the listener looks whether it should stop
LISTEN_GROUP_S = 0.05  # other receivers' commits heard within this long are one wake-up
LISTEN_RETRY_S = 1.0
# A job that deadlocked with another receiver's (or lost a serialization race) was rolled back whole: run it again,
# a few times, after a short random pause. Each job is a function of its connection, so running it again is safe.
_AGAIN_AFTER_A_LOST_RACE = retry(
    retry=retry_if_exception(lambda exc: str(getattr(exc, "sqlstate", "")).startswith("40")),  # 40001, 40P01
    stop=stop_after_attempt(5),
    wait=wait_random(0, 0.05),
    reraise=True,
)


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
    """The history in PostgreSQL at `url`: `run` commits each job in a transaction of its own, `read` reads.

    Other receivers may share the database (`shared`): each job's locks keep their work apart (store.py and
    outbox.py lock what they claim), a job that lost a deadlock or a serialization race to another's is run again,
    and `on_others` hears when another receiver committed events (LISTEN/NOTIFY: a trigger on `events` notifies)."""

    shared = True

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        self.path = url
        self._pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._own: set[int] = set()  # the server processes of this pool's connections: their notices are ours
        self._listening: threading.Event | None = None  # set to stop the listener
        self._listener: threading.Thread | None = None
        self.on_commit: list[Callable[[], None]] = []  # told after each commit of this receiver's
        self.on_others: list[Callable[[], None]] = []  # told when another receiver committed events

    @property
    def opened(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Connect once (a server that is not there, or refuses us, fails here with its own words), migrate, then keep
        a pool: connections lost later (a restart, a failover) are made again by the pool as jobs need them."""
        await asyncio.to_thread(self._migrate)
        # a job waits at most JOB_WAIT_S for a connection: with the server down it fails (503) rather than hang
        pool = ConnectionPool(
            self.path,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            timeout=JOB_WAIT_S,
            configure=lambda conn: self._own.add(conn.info.backend_pid),
        )
        await asyncio.to_thread(pool.open, wait=True, timeout=CONNECT_TIMEOUT_S)
        self._pool = pool
        self._threads = ThreadPoolExecutor(self._pool_size, thread_name_prefix="amcompanion-postgres")
        self._listening = threading.Event()
        loop = asyncio.get_running_loop()
        self._listener = threading.Thread(
            target=self._listen, args=(loop, self._listening), name="amcompanion-listen", daemon=True
        )
        self._listener.start()

    def _migrate(self) -> None:
        with psycopg.connect(self.path, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            migrate_postgres(conn)

    def _listen(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        """Hear other receivers' commits (NOTIFY amcompanion) and tell `on_others`, at most every LISTEN_GROUP_S (a
        storm's commits are one wake-up). A lost connection is made again; what was missed meanwhile is told once."""
        while not stop.is_set():
            try:
                with psycopg.connect(self.path, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
                    conn.execute("LISTEN amcompanion")
                    loop.call_soon_threadsafe(self._heard)
                    while not stop.is_set():
                        notices = conn.notifies(timeout=LISTEN_POLL_S, stop_after=1)
                        heard = [notice for notice in notices if notice.pid not in self._own]
                        if heard:
                            loop.call_soon_threadsafe(self._heard)
                            stop.wait(LISTEN_GROUP_S)
            except psycopg.Error:
                stop.wait(LISTEN_RETRY_S)
            except RuntimeError:  # the event loop closed under us: the receiver is gone
                return

    def _heard(self) -> None:
        for listener in self.on_others:
            listener()

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        assert self._threads is not None and self._listening is not None and self._listener is not None
        self._listening.set()
        self._threads.shutdown(wait=True)
        await asyncio.to_thread(pool.close)
        await asyncio.to_thread(self._listener.join, LISTEN_POLL_S + CONNECT_TIMEOUT_S)

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

    @_AGAIN_AFTER_A_LOST_RACE
    def _transaction(self, fn: Callable[..., T], args: tuple) -> T:
        assert self._pool is not None
        with self._pool.connection() as conn, conn.transaction():
            return fn(Connection(conn), *args)
