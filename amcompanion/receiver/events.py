"""What happened, in order: the `events` log and its fan-out to the console and other listeners.

Every change to an alert writes one row in the same transaction as the change, so the log is never ahead of
or behind the history, and a client that reconnects with `Last-Event-ID` misses nothing (the ids are the rows').
After each commit the hub reads the new rows once, dresses each with the alert as the console shows it, and
hands them to every subscriber's queue; a subscriber too slow to keep up is dropped, and resumes from its
last id like any reconnecting client.
"""

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amcompanion.receiver.db import Database
from amcompanion.receiver.timeutil import iso

log = logging.getLogger("amcompanion.events")

# Event types, as the stream names them (docs/receiver.md lists them with their data).
EVENT_TYPES = (
    "alert.firing",  # a new alert
    "alert.escalated",  # an escalation step was taken (its number, reason and whom it paged)
    "alert.acknowledged",
    "alert.resolved",
    "notification.sent",
    "notification.failed",
    "oncall.changed",  # a schedule's hand-off: who is on call now
)
RECENT = 10_000  # events kept in memory for clients that resume; older ones are read from the database
QUEUE = 2_000  # events a subscriber may fall behind by before it is dropped


def record(conn: sqlite3.Connection, event_type: str, alert_id: int | None, now: datetime, **data: Any) -> None:
    """Log an event in the caller's transaction."""
    conn.execute(
        "INSERT INTO events (type, alert_id, at, data) VALUES (?, ?, ?, ?)",
        (event_type, alert_id, iso(now), json.dumps(data, separators=(",", ":"), sort_keys=True)),
    )


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    alert_id: int | None
    at: str
    data: dict  # the logged fields, and `alert`: the alert as the console shows it when the event went out

    def encoded(self) -> str:
        return json.dumps({**self.data, "type": self.type, "at": self.at}, separators=(",", ":"))


Dresser = Callable[[sqlite3.Connection, list[int]], dict[int, dict]]  # alert ids → the console's view of each


def last_event_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]


class Subscription:
    def __init__(self, hub: "EventHub"):
        self.hub = hub
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE)  # None: dropped, reconnect

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        """Tell the subscriber the stream is over (the receiver stops): its client reconnects."""
        self.hub.subscribers.discard(self)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def close(self) -> None:
        self.hub.subscribers.discard(self)


class EventHub:
    def __init__(self, db: Database, dress: Dresser):
        self.db = db
        self.dress = dress
        self.subscribers: set[Subscription] = set()
        self.recent: deque[Event] = deque(maxlen=RECENT)
        self.seen = 0  # the last event id read
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.seen = await self.db.read(last_event_id)
        self._task = asyncio.create_task(self._forever())

    def end_streams(self) -> None:
        """Tell every subscriber the stream is over (the receiver is shutting down): their clients reconnect
        elsewhere or later and resume, and the server need not wait for streams that never end."""
        for subscriber in list(self.subscribers):
            subscriber.end()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.end_streams()

    def wake(self) -> None:
        """A commit may have logged events."""
        self._wake.set()

    async def subscribe(self, after: int | None) -> tuple[Subscription, list[Event]]:
        """A new subscriber, and the events after `after` it missed (None: only what comes from now on)."""
        subscription = Subscription(self)
        self.subscribers.add(subscription)
        if after is None or after >= self.seen:
            return subscription, []
        if self.recent and self.recent[0].id <= after + 1:
            return subscription, [event for event in self.recent if event.id > after]
        return subscription, await self.db.read(self._read, after, self.seen)

    async def _forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                events = await self.db.read(self._read, self.seen, None)
            except sqlite3.Error as exc:
                log.warning("events: the new events were not read (%s); trying again at the next change", exc)
                continue
            for event in events:
                self.seen = event.id
                self.recent.append(event)
                for subscriber in list(self.subscribers):
                    subscriber.offer(event)

    def _read(self, conn: sqlite3.Connection, after: int, upto: int | None) -> list[Event]:
        rows = conn.execute(
            "SELECT id, type, alert_id, at, data FROM events WHERE id > ? AND id <= ? ORDER BY id",
            (after, upto if upto is not None else 2**62),
        ).fetchall()
        views = self.dress(conn, sorted({row["alert_id"] for row in rows if row["alert_id"] is not None}))
        return [
            Event(
                row["id"],
                row["type"],
                row["alert_id"],
                row["at"],
                {**json.loads(row["data"]), **({"alert": views[row["alert_id"]]} if row["alert_id"] in views else {})},
            )
            for row in rows
        ]
