"""`amcompanion history prune`: retention. Resolved alerts older than the cut-off go, with their rows."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from amcompanion.history.schema import migrate
from amcompanion.receiver.timeutil import iso

CHILD_TABLES = ("alert_events", "notifications", "escalations", "acks", "events")
BATCH = 5000  # alerts per transaction: a running receiver waits at most one batch for the write lock


def prune(path: Path, cutoff: datetime, progress: Callable[[dict[str, int]], None] | None = None) -> dict[str, int]:
    """Delete alerts resolved before `cutoff` and every row that refers to them. Firing and acknowledged
    alerts stay whatever their age: they are still someone's work. Returns the rows deleted per table."""
    db = Database(path)
    db.conn.execute("PRAGMA busy_timeout = 10000")
    migrate(db.conn)
    pruned = dict.fromkeys(("alerts", *CHILD_TABLES), 0)
    while True:
        with db.atomic():
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at < ? ORDER BY id LIMIT ?",
                    [iso(cutoff), BATCH],
                )
            ]
            if not ids:
                break
            marks = ",".join("?" * len(ids))
            for table in CHILD_TABLES:
                pruned[table] += db.execute(f"DELETE FROM {table} WHERE alert_id IN ({marks})", ids).rowcount
            pruned["alerts"] += db.execute(f"DELETE FROM alerts WHERE id IN ({marks})", ids).rowcount
        if progress:
            progress(pruned)
    with db.atomic():  # events about no alert (a schedule's hand-off) go by their own age
        pruned["events"] += db.execute("DELETE FROM events WHERE alert_id IS NULL AND at < ?", [iso(cutoff)]).rowcount
    db.close()
    return pruned
