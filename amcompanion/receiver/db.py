"""The history database: one SQLite file, written by one thread that commits work in groups.

Every change goes through `Database.run(fn)`. The thread runs the jobs waiting in its queue inside one
transaction, each in its own savepoint (a failing job rolls back alone), then commits once: WAL with
synchronous=FULL makes each commit durable, and grouping lets many webhook requests share one fsync.
A job's caller is answered only after the commit that holds its work.
"""

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL,                 -- JSON object
    annotations TEXT NOT NULL,            -- JSON object
    policy TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    acked_at TEXT,
    acked_by TEXT,
    resolved_at TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0,  -- steps taken: 0 before the first
    repeats INTEGER NOT NULL DEFAULT 0,           -- repetitions of the last step so far
    first_notice_at TEXT NOT NULL,                -- when the receiver first heard of it: steps count from here
    next_step_at TEXT,                            -- when the next step comes due; NULL when none will
    generator_url TEXT NOT NULL DEFAULT '',
    group_key TEXT NOT NULL DEFAULT '',
    alertmanager_url TEXT NOT NULL DEFAULT '',
    silence_id TEXT,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, starts_at);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (next_step_at) WHERE next_step_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS alerts_by_name ON alerts (alertname, starts_at);
CREATE INDEX IF NOT EXISTS alerts_by_severity ON alerts (severity, starts_at);

CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    status TEXT NOT NULL,
    received_at TEXT NOT NULL,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    policy TEXT NOT NULL,
    UNIQUE (alert_id, status)
);

CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    kind TEXT NOT NULL CHECK (kind IN ('firing', 'resolved')),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,             -- a contact name; '' for the channel's own audience (a group robot)
    step INTEGER NOT NULL,               -- the escalation step (1-based); 0 for resolve notices
    round INTEGER NOT NULL DEFAULT 0,    -- which repetition of the step
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
    error TEXT,
    queued_at TEXT NOT NULL,
    sent_at TEXT,
    next_attempt_at TEXT NOT NULL,
    give_up_at TEXT NOT NULL,
    digest_id INTEGER,                   -- set when the message went out inside a digest (the first row's id)
    UNIQUE (alert_id, kind, step, round, channel, recipient)
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (channel, next_attempt_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS notifications_by_alert ON notifications (alert_id);
CREATE INDEX IF NOT EXISTS notifications_by_channel ON notifications (channel, status);

CREATE TABLE IF NOT EXISTS escalations (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    step INTEGER NOT NULL,
    from_level INTEGER NOT NULL,
    to_level INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS escalations_by_alert ON escalations (alert_id);

CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    by TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('link', 'api', 'phone', 'cli')),
    comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS acks_by_alert ON acks (alert_id);
"""

Job = tuple[Callable[..., Any], tuple, "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_STOP = object()
MAX_GROUP = 512  # jobs per transaction


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"the database has schema version {version}; this amcompanion knows {SCHEMA_VERSION}")
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class Database:
    def __init__(self, path: str):
        self.path = path
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.opened = False

    async def open(self) -> None:
        conn = connect(self.path)  # fails here, in the caller, when the file cannot be opened
        migrate(conn)
        self._thread = threading.Thread(target=self._serve, args=(conn,), name="amcompanion-db", daemon=True)
        self._thread.start()
        self.opened = True

    async def close(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        self.opened = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in the database thread; return its result once it is committed."""
        if self._thread is None:
            raise RuntimeError("the database is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, future, loop))
        return await future

    def _serve(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._jobs.get()
                if first is _STOP:
                    return
                batch: list[Job] = [first]
                stop = False
                while len(batch) < MAX_GROUP:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    batch.append(job)
                _run_group(conn, batch)
                if stop:
                    return
        finally:
            conn.close()


def _run_group(conn: sqlite3.Connection, batch: list[Job]) -> None:
    outcomes: list[tuple[Any, BaseException | None]] = []
    alone = len(batch) == 1  # a job alone needs no savepoint: the transaction is its own
    try:
        conn.execute("BEGIN IMMEDIATE")
        for fn, args, _future, _loop in batch:
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
        if conn.in_transaction:
            conn.execute("COMMIT")
    except sqlite3.Error as exc:  # the commit itself failed: nothing of the group is stored
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        outcomes = [(None, exc)] * len(batch)
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any, BaseException | None]]] = {}
    for (_fn, _args, future, loop), (result, error) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, result, error))
    for loop, settled in by_loop.items():  # one wake-up of each loop per group, not one per job
        loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if future.done():  # the caller went away (a cancelled request); its work is committed anyway
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
