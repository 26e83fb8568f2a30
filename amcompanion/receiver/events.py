"""What happened, in order: the `events` log and its fan-out to the console and other listeners.

Every change to an alert writes one row in the same transaction as the change, so the log is never ahead of
or behind the history, and a client that reconnects with `Last-Event-ID` misses nothing (the ids are the rows').
After each commit the hub reads the new rows once, dresses each with the alert as the console shows it, encodes
it once as a Server-Sent Events frame, and hands the frames to every subscriber in batches; a subscriber too slow to
keep up is dropped, and resumes from its last id like any reconnecting client. With nobody subscribed the hub
reads nothing: dressing events nobody reads would slow every webhook down.

On PostgreSQL transactions run side by side (this receiver's and others'), so an event can commit after one with a
higher id: an id skipped over is looked for again at each read for LATE_S, and handed out when it comes (streams go
in the order events became visible; a resuming client picks up after its last event in that order).
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from amcompanion.receiver import db as database
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
RECENT = 2_000  # events kept in memory (as frames) for clients that resume; older ones are read from the database
QUEUE = 2_000  # events a subscriber may fall behind by before it is dropped
# How long the hub waits after a commit before it reads: every event of that moment goes out together. Real time,
# not the receiver's clock (which tests stop): it only groups writes, and costs each event at most this much.
LINGER_S = 0.05
LATE_S = 60.0  # how long an id skipped over is looked for (a transaction still running, or one rolled back)
LATE_MAX = 1_000


def record(conn: sqlite3.Connection, event_type: str, alert_id: int | None, now: datetime, **data: Any) -> None:
    """Log an event in the caller's transaction."""
    conn.execute(
        "INSERT INTO events (type, alert_id, at, data) VALUES (?, ?, ?, ?)",
        (event_type, alert_id, iso(now), orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode() if data else "{}"),
    )


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    frame: bytes  # the event as the stream sends it: `id:`, `event:` and one `data:` line of JSON

    @staticmethod
    def of(event_id: int, event_type: str, at: str, data: dict) -> "Event":
        """`data`: the logged fields, and `alert`, the alert as the console shows it when the event went out."""
        payload = orjson.dumps({**data, "type": event_type, "at": at})  # one line: orjson escapes newlines
        return Event(
            event_id, event_type, b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event_type.encode(), payload)
        )


Dresser = Callable[[sqlite3.Connection, list[int]], dict[int, dict]]  # alert ids → the console's view of each


def last_event_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]


class Subscription:
    """One client's events waiting to be written; the hub hands them over a batch at a time."""

    def __init__(self, hub: "EventHub"):
        self.hub = hub
        self.pending: list[Event] = []
        self.ended = False  # dropped (too slow) or the receiver stops: the client reconnects and resumes
        self._ready = asyncio.Event()

    def offer(self, events: list[Event]) -> None:
        if len(self.pending) + len(events) > QUEUE:
            self.end()
            return
        self.pending += events
        self._ready.set()

    async def take(self) -> list[Event]:
        """Every event waiting, once there is one (or the end: `ended`, and what was waiting is dropped)."""
        await self._ready.wait()
        self._ready.clear()
        taken, self.pending = self.pending, []
        return taken

    def end(self) -> None:
        """Tell the subscriber the stream is over: its client reconnects, and resumes from its last event."""
        self.hub.subscribers.discard(self)
        self.ended = True
        self.pending = []
        self._ready.set()

    def close(self) -> None:
        self.hub.subscribers.discard(self)


class EventHub:
    def __init__(self, db: Database, dress: Dresser):
        self.db = db
        self.dress = dress
        self.subscribers: set[Subscription] = set()
        self.recent: deque[Event] = deque(maxlen=RECENT)
        self.seen: int | None = None  # the highest event id handed out; None while nobody listens (then not followed)
        self.late: dict[int, float] = {}  # ids below `seen` not seen yet → since when (loop time)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # a subscriber joins between two hand-outs, never during one
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
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
        async with self._lock:
            if self.seen is None:  # nobody listened until now: what the memory holds may have a gap
                self.seen = await self.db.read(last_event_id)
                self.recent.clear()
                self.late.clear()
            self.subscribers.add(subscription)
            self.wake()  # a commit since `seen` was read may have found nobody listening: look again
            if after is None:
                return subscription, []
            recent = list(self.recent)
            for position in range(len(recent) - 1, -1, -1):
                if recent[position].id == after:
                    return subscription, recent[position + 1 :]
            if after >= self.seen:
                return subscription, []
            if recent and recent[0].id <= after + 1:
                return subscription, [event for event in recent if event.id > after]
            return subscription, await self.db.read(self._read, after, self.seen)

    async def _forever(self) -> None:
        while True:
            await self._wake.wait()
            if not self.subscribers:  # nobody listens: nothing is read (the next subscriber reads where we are)
                self._wake.clear()
                self.seen = None
                continue
            await asyncio.sleep(LINGER_S)  # let a storm's commits gather: one read, one write per client
            self._wake.clear()
            async with self._lock:
                if self.seen is None or not self.subscribers:
                    continue
                try:
                    events = await self.db.read(self._read, self.seen, None, sorted(self.late))
                except database.ERRORS as exc:
                    log.warning("events: the new events were not read (%s); trying again at the next change", exc)
                    continue
                self._note_late(events)
                if events:
                    self.recent.extend(events)
                    for subscriber in list(self.subscribers):
                        subscriber.offer(events)

    def _note_late(self, events: list[Event]) -> None:
        """Move `seen` past what was read; remember the ids it skipped, forget those that came or are too old."""
        assert self.seen is not None
        now = asyncio.get_running_loop().time()
        for event in events:
            self.late.pop(event.id, None)
        newest = max((event.id for event in events), default=self.seen)
        if newest > self.seen:
            got = {event.id for event in events}
            self.late.update((i, now) for i in range(self.seen + 1, newest) if i not in got)
            self.seen = newest
        for event_id, since in list(self.late.items()):
            if now - since > LATE_S or len(self.late) > LATE_MAX:
                del self.late[event_id]
        if self.late:
            asyncio.get_running_loop().call_later(LINGER_S * 4, self.wake)

    def _read(self, conn: sqlite3.Connection, after: int, upto: int | None, late: Sequence[int] = ()) -> list[Event]:
        """Events after `after` (up to `upto`), and those of the ids in `late` that are there now."""
        also = f" OR id IN ({','.join(map(str, late))})" if late else ""
        rows = conn.execute(
            f"SELECT id, type, alert_id, at, data FROM events WHERE (id > ? AND id <= ?){also} ORDER BY id",
            (after, upto if upto is not None else 2**62),
        ).fetchall()
        views = self.dress(conn, sorted({row["alert_id"] for row in rows if row["alert_id"] is not None}))
        return [
            Event.of(
                row["id"],
                row["type"],
                row["at"],
                {
                    **(orjson.loads(row["data"]) if row["data"] != "{}" else {}),
                    **({"alert": views[row["alert_id"]]} if row["alert_id"] in views else {}),
                },
            )
            for row in rows
        ]
