"""A SQLite copy of a PostgreSQL history, kept current: the history pages (Datasette) read SQLite, and on
PostgreSQL deployments they read this copy (`amcompanion history mirror`, the chart's history sidecar).

Each pass copies what changed since the last, by id: the tables that are only ever added to (alert_events,
escalations, acks, events) from their newest id on; alerts and notifications also again where they could still
change (an alert not yet resolved, a notification still queued), as the receiver updates those rows in place. The
copy is the SQLite history itself (its migrations, computed columns and view), so every page works on it. A pass
is one transaction on each side: the copy is always some moment of the source. Receivers' transactions run side by
side, so a row can commit after one with a higher id: the ids missing below the copy's newest (the last LATE_WINDOW)
are asked for again at each pass (a rolled-back insert leaves its id missing for good; asking for it costs nothing).
"""

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from amcompanion.history.schema import migrate

APPENDED = ("alert_events", "escalations", "acks", "events")  # rows are added, never changed
# rows changed in place until they settle: the table, and what a settled row is
SETTLING = {"alerts": "status = 'resolved'", "notifications": "status <> 'queued'"}
LATE_WINDOW = 10_000
ORDER = ("alerts", "alert_events", "escalations", "acks", "notifications", "events")  # parents before children


class Source(Protocol):
    """What a pass reads of the source: rows of a SQLite-dialect query (amcompanion.receiver.postgres.Connection)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ...) -> Any: ...


@dataclass
class Pass:
    copied: dict[str, int]  # rows written per table (new or changed)

    @property
    def total(self) -> int:
        return sum(self.copied.values())


def stored_columns(target: sqlite3.Connection, table: str) -> list[str]:
    """The table's own columns in the copy (not the computed ones, which SQLite works out from these)."""
    return [row[1] for row in target.execute(f"PRAGMA table_xinfo({table})") if row[6] == 0]


def mirror_once(source: Source, target: sqlite3.Connection) -> Pass:
    """Copy what changed in `source` (a history on PostgreSQL) since the last pass into `target` (SQLite)."""
    migrate(target)
    copied: dict[str, int] = {}
    target.execute("BEGIN IMMEDIATE")
    try:
        for table in ORDER:
            columns = stored_columns(target, table)
            (newest,) = target.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
            wanted = f"SELECT {', '.join(columns)} FROM {table} WHERE id > ?"
            parameters: list[object] = [newest]
            again = _missing(target, table, newest)
            if table in SETTLING:
                again += [row[0] for row in target.execute(f"SELECT id FROM {table} WHERE NOT ({SETTLING[table]})")]
            if again:
                wanted += " OR id = ANY(?)"
                parameters.append(again)
            rows = source.execute(wanted + " ORDER BY id", parameters).fetchall()
            copied[table] = _upsert(target, table, columns, rows)
        targets = source.execute("SELECT severity, ack_seconds, resolve_seconds FROM sla_targets").fetchall()
        target.execute("DELETE FROM sla_targets")
        target.executemany("INSERT INTO sla_targets VALUES (?, ?, ?)", [tuple(row) for row in targets])
        target.execute("COMMIT")
    except BaseException:
        target.execute("ROLLBACK")
        raise
    return Pass(copied)


def _missing(target: sqlite3.Connection, table: str, newest: int) -> list[int]:
    """The ids of the last LATE_WINDOW below `newest` that the copy has not got."""
    lowest = max(1, newest - LATE_WINDOW + 1)
    have = {row[0] for row in target.execute(f"SELECT id FROM {table} WHERE id >= ?", (lowest,))}
    return [i for i in range(lowest, newest + 1) if i not in have]


def _upsert(target: sqlite3.Connection, table: str, columns: list[str], rows: Iterable[Sequence[Any]]) -> int:
    marks = ", ".join("?" * len(columns))
    changes = ", ".join(f"{column} = excluded.{column}" for column in columns if column != "id")
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {changes}"
    values = [tuple(row) for row in rows]
    target.executemany(statement, values)
    return len(values)


def mirror(url: str, target_path: str) -> Pass:
    """One pass from the PostgreSQL history at `url` into the SQLite file at `target_path` (made if missing)."""
    import psycopg

    from amcompanion.receiver.db import connect
    from amcompanion.receiver.postgres import Connection

    target = connect(target_path)
    try:
        with psycopg.connect(url, connect_timeout=10) as source, source.transaction():
            source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return mirror_once(Connection(source), target)
    finally:
        target.close()
