"""The history database: one SQLite file, written in groups of jobs that share one durable commit.

Every change goes through `Database.run(fn)`. Jobs run on the event loop's thread, each in its own
savepoint of the open transaction (a failing job rolls back alone); the transaction's COMMIT, the fsync
of WAL with synchronous=FULL, runs in a thread of its own, and jobs that arrive meanwhile wait to form the
next group. A job's caller is answered only after the commit that holds its work. Statements stay on one
thread so that a webhook request costs no hand-over of the interpreter lock per statement; only the
fsync, where the lock is released anyway, leaves the loop. Reads that may be long (listings) go through
`Database.read(fn)`, on a connection of their own in another thread, and see committed data only.
"""

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from amcompanion.history.schema import migrate
from amcompanion.receiver import postgres
from amcompanion.receiver.postgres import PostgresDatabase

T = TypeVar("T")


# What a database may answer that is not the receiver's fault, on either engine: caught where a job may wait for
# the next try (the outbox, the event stream), and, when `unavailable`, answered 503 (Alertmanager retries).
ERRORS = (sqlite3.Error, psycopg.Error)
# On a shared database the scheduler and the outbox look at least this often: for the deadlines and messages another
# receiver left (it died), which nothing here is told of.
POLL_S = 2.0


def unavailable(exc: BaseException) -> bool:
    """Busy, locked, unwritable, full or corrupt (SQLite), or unreachable (PostgreSQL down, restarting, no connection
    free in time): what a retry may get past. A constraint or a misuse (IntegrityError, ProgrammingError, ...) is a
    bug of ours and would fail every retry the same way."""
    return isinstance(exc, sqlite3.OperationalError | psycopg.OperationalError) or type(exc) is sqlite3.DatabaseError


def locking(conn: Any, skip_locked: bool = False, of: str | None = None) -> str:
    """The lock clause for a SELECT whose rows the job goes on to change, on PostgreSQL, where other receivers' jobs
    run beside this one; nothing on SQLite, whose one writer has the whole database. `NO KEY UPDATE`: an insert that
    only refers to the row (an event of the alert) does not wait for it. `skip_locked`: rows another job is working
    on are left to it (claims); `of`: lock only that table's rows of a join."""
    if not isinstance(conn, postgres.Connection):
        return ""
    return " FOR NO KEY UPDATE" + (f" OF {of}" if of else "") + (" SKIP LOCKED" if skip_locked else "")


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    # a write whose triggers write another table (the history's counts) keeps a statement journal: in memory, not
    # in a temporary file per statement (a third of those triggers' cost)
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


Job = tuple[Callable[..., Any], tuple, "asyncio.Future[Any]"]


class Database:
    """The history in a SQLite file: one receiver writes it (not `shared`)."""

    shared = False

    def __init__(self, path: str):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._pending: list[Job] = []
        self._group: asyncio.Task | None = None  # running the pending jobs and committing them
        self._committer: ThreadPoolExecutor | None = None
        self._reading: ThreadPoolExecutor | None = None
        self.on_commit: list[Callable[[], None]] = []  # told after each commit (the event hub reads what it logged)
        self.on_others: list[Callable[[], None]] = []  # as PostgresDatabase has it; no other receiver writes here

    @property
    def opened(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        conn = connect(self.path)  # fails here, in the caller, when the file cannot be opened
        migrate(conn)
        self._conn = conn
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="amcompanion-commit")
        self._reading = ThreadPoolExecutor(1, thread_name_prefix="amcompanion-read")

    async def close(self) -> None:
        """Commit what was handed in, then close."""
        if self._conn is None:
            return
        while self._group is not None:
            await asyncio.shield(self._group)
        self._conn.close()
        self._conn = None
        if self._reader is not None:
            await asyncio.get_running_loop().run_in_executor(self._reading, self._reader.close)
            self._reader = None
        for executor in (self._committer, self._reading):
            executor.shutdown(wait=False)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in the write transaction; return its result once it is committed."""
        if self._conn is None:
            raise RuntimeError("the database is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, args, future))
        if self._group is None:
            self._group = asyncio.create_task(self._commit_groups(self._conn))
        return await future

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the reading connection, off the event loop."""
        if self._conn is None:
            raise RuntimeError("the database is not open")
        return await asyncio.get_running_loop().run_in_executor(self._reading, self._read, fn, args)

    def _read(self, fn: Callable[..., T], args: tuple) -> T:
        if self._reader is None:
            self._reader = connect(self.path)
        return fn(self._reader, *args)

    async def _commit_groups(self, conn: sqlite3.Connection) -> None:
        """Until no job waits: run the waiting jobs, commit them in the commit thread, answer their callers."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = _run_jobs(conn, batch)
                    if conn.in_transaction:
                        await loop.run_in_executor(self._committer, conn.execute, "COMMIT")
                        for listener in self.on_commit:
                            listener()
                except sqlite3.Error as exc:  # BEGIN or COMMIT failed: nothing of the group is stored
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    outcomes = [(None, exc)] * len(batch)
                for (_fn, _args, future), (result, error) in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller went away (a cancelled request); its work is committed anyway
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(result)
        finally:
            self._group = None


def _run_jobs(conn: sqlite3.Connection, batch: list[Job]) -> list[tuple[Any, BaseException | None]]:
    """Each job in its own savepoint of one open transaction (a job alone needs none: the transaction is its own)."""
    outcomes: list[tuple[Any, BaseException | None]] = []
    alone = len(batch) == 1
    conn.execute("BEGIN IMMEDIATE")
    for fn, args, _future in batch:
        if not alone:
            conn.execute("SAVEPOINT job")
        try:
            result = fn(conn, *args)
        except Exception as exc:
            conn.execute("ROLLBACK" if alone else "ROLLBACK TO job")
            outcomes.append((None, exc))
        else:
            outcomes.append((result, None))
        if not alone:
            conn.execute("RELEASE job")
    return outcomes


def on_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_database(target: str) -> Database | PostgresDatabase:
    """The history at `target`: a PostgreSQL URL (postgresql://…), else a SQLite file."""
    return PostgresDatabase(target) if on_postgres(target) else Database(target)


@contextlib.contextmanager
def transaction(target: str, read_only: bool = False) -> Iterator[Any]:
    """One transaction on the history at `target` for the command line (`amcompanion ack`, `alerts`), committed when
    the block ends: a connection taking the store's SQL, on either engine. A SQLite file that is not there is a
    FileNotFoundError, not a new empty history."""
    if on_postgres(target):
        with psycopg.connect(target, connect_timeout=postgres.CONNECT_TIMEOUT_S) as conn, conn.transaction():
            yield postgres.Connection(conn)
        return
    if not Path(target).is_file():
        raise FileNotFoundError(f"no history database at {target} (the receiver's --db)")
    conn = (
        sqlite3.connect(Path(target).absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        if read_only
        else connect(target)
    )
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
