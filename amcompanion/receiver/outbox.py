"""Delivering the outbox: every notification is a row written before it is sent, updated after each try.

Each channel has a lane: a task that claims the channel's due rows in the order they came due and sends
them, up to `max_in_flight` at once (default 8) and within the channel's `rate_limit` (messages wait, they
are not dropped). A row waits while an earlier row about the same alert to the same recipient is queued, so
one person's messages about an alert never overtake each other (a resolve notice never beats its page).
When more rows are due than the rate limit lets through now, a storm, each recipient gets one digest.

No row can hold up a lane. Every failure to render or to send is a try: counted, backed off (tenacity's
exponential schedule, kept in the row so retries survive a restart) until the row's give-up time, which
gets one last try before the row is marked failed with the reason; a Retry-After is honoured up to that
time. A failure inside amcompanion (a bug, not the channel's answer) fails the row after INTERNAL_TRIES.

While a channel fails (network errors, timeouts, 5xx, 429 and the services' own "slow down"), its circuit
breaker is open: one probe at a time, at most PROBE_MAX_S apart (or as long as the service asked), instead
of every row on its own growing backoff; the first success closes it and releases at once every row that
failed meanwhile. A failed page is handed to the store, which moves the escalation on. Nothing is deleted.
"""

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import aiohttp
from tenacity import RetryCallState, wait_exponential
from tenacity.wait import wait_base

from amcompanion.catalog.durations import parse_duration
from amcompanion.history.schema import ALERT_COLUMNS
from amcompanion.receiver import db as database
from amcompanion.receiver import events, narrate
from amcompanion.receiver.channels import Channel, Outcome
from amcompanion.receiver.config import mask
from amcompanion.receiver.db import POLL_S, Database, locking
from amcompanion.receiver.links import AckLinks
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.metrics import Metrics
from amcompanion.receiver.ratelimit import RateLimit
from amcompanion.receiver.store import StepTaken, Store
from amcompanion.receiver.timeutil import Clock, iso, no_later_than, parse_iso

log = logging.getLogger("amcompanion.outbox")

BATCH = 500  # rows looked at when deciding whether a rate-limited channel is in a storm
ALERT_OF_ROW = ", ".join(f"a.{column}" for column in ALERT_COLUMNS)
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_IN_FLIGHT = 8
INTERNAL_TRIES = 3  # tries of a row that fails inside amcompanion before it is marked failed
PROBE_MAX_S = 4.0
PAUSE_S = 5.0  # after a database error, before a lane looks again
# A message being sent is leased to its receiver, which renews the lease while it sends; a receiver that died leaves
# its messages to the others once their leases run out (a second try of what was in flight: at most one duplicate).
LEASE_S = 15.0
RENEW_S = LEASE_S / 3
_ROW_BACKOFF = wait_exponential(multiplier=2, min=2, max=600)  # 2 s, 4 s, 8 s, ... at most 10 min
_PROBE_BACKOFF = wait_exponential(multiplier=1, min=1, max=PROBE_MAX_S)  # 1 s, 2 s, 4 s, 4 s, ...
# A row is claimed only when no earlier row about its alert to its recipient on its channel is still queued.
_FIRST_OF_ITS_KIND = (
    " AND NOT EXISTS (SELECT 1 FROM notifications e WHERE e.alert_id = n.alert_id AND e.channel = n.channel"
    " AND e.recipient = n.recipient AND e.status = 'queued' AND e.id < n.id)"
)


def backoff_seconds(attempts: int, schedule: wait_base = _ROW_BACKOFF) -> float:
    """The wait before try number attempts + 1."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempts
    return float(schedule(state))


def _timeout_seconds(settings: dict[str, object]) -> float:
    ms = parse_duration(str(settings["timeout"])) if settings.get("timeout") else None
    return ms / 1000 if ms else DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class DueRow:
    """A queued row with what rendering it needs."""

    id: int
    channel: str
    recipient: str
    kind: str
    step: int
    round: int
    queued_at: str
    alert: dict


@dataclass(frozen=True)
class Attempt:
    """One try of one message (a row, or a digest of rows)."""

    outcome: Outcome
    channel_fault: bool = False  # the channel did not take it (network, timeout, 5xx, 429, its "slow down")
    internal: bool = False  # amcompanion failed, not the channel
    template_error: str | None = None
    answer: str = ""  # what the channel answered, for the log: "HTTP 200", "SMTP 250"


@dataclass
class Breaker:
    """A channel's circuit breaker. Closed, rows go as they come due. After a try the channel did not take,
    it is open: one probe at a time, each at most PROBE_MAX_S after the last (longer only when the service
    asked for a longer wait), until a try succeeds."""

    failures: int = 0  # tries the channel did not take since its last success
    probe_at: datetime | None = None
    probe_row: int | None = None  # the row being sent as the probe
    failed_rows: set[int] = field(default_factory=set)

    @property
    def open(self) -> bool:
        return self.failures > 0

    def failed(self, row_ids: Iterable[int], now: datetime, retry_after: float | None) -> None:
        self.failures += 1
        self.failed_rows.update(row_ids)
        wait = max(backoff_seconds(self.failures, _PROBE_BACKOFF), retry_after or 0.0)
        at = now + timedelta(seconds=wait)
        self.probe_at = at if self.probe_at is None or self.probe_at < at else self.probe_at

    def succeeded(self) -> list[int]:
        """Close; the rows to try again at once. Those that failed while it was open, when more than one did:
        one row failing while others went through is that row's own trouble, and it keeps its backoff."""
        release = sorted(self.failed_rows) if len(self.failed_rows) > 1 else []
        self.failures, self.probe_at, self.failed_rows = 0, None, set()
        return release


@dataclass(frozen=True)
class Recorded:
    statuses: list[tuple[int, str, str, int]]  # per row: (id, status, queued_at, attempts)
    taken: list[StepTaken]  # escalation steps taken because a page failed
    retry_at: datetime | None  # when a retried row is tried next (the first row's)


@dataclass(frozen=True)
class Claimed:
    groups: list[list[DueRow]]  # the messages to start, their rows leased to this receiver
    next_at: datetime | None  # when to look again (None: only when woken)
    room_in: float | None = None  # seconds until the rate limit has room again, when it has none now
    probe: int | None = None  # the row sent as the open breaker's probe


class Outbox:
    def __init__(
        self,
        db: Database,
        channels: dict[str, Channel],
        settings: dict[str, dict[str, object]],
        contacts: dict[str, dict[str, str]],
        renderer: Renderer,
        links: AckLinks,
        clock: Clock,
        metrics: Metrics,
        secrets: Iterable[str] = (),
        store: Store | None = None,
        stepped: Callable[[list[StepTaken]], None] | None = None,
        replica: str = "",
    ):
        """The `store` hears, in the transaction that records them, of pages that failed for good (it moves
        their escalations on) and of pages delivered after their alert closed (it sends their resolve notices);
        `stepped` hears of the steps taken once they are committed. `replica` names this receiver in the leases of
        the rows it sends."""
        self.db = db
        self.replica = replica
        self.contacts = contacts
        self.renderer = renderer
        self.links = links
        self.clock = clock
        self.metrics = metrics
        self._secrets = [s for s in secrets if s]
        self.store = store
        self.stepped = stepped
        self._throttle = narrate.Throttle()
        self.lanes = {
            name: Lane(self, name, channels.get(name), channel_settings) for name, channel_settings in settings.items()
        }
        self.stopping = False
        self.session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        for lane in self.lanes.values():
            lane.wake.set()

    @property
    def sending(self) -> bool:
        """Whether a delivery is under way (rows handed to a channel and not yet recorded)."""
        return any(lane.in_flight for lane in self.lanes.values())

    async def run(self) -> None:
        self.session = aiohttp.ClientSession()
        try:
            await self.db.run(self._take_over_leases)
        except database.ERRORS as exc:
            log.error("could not look at the leases of messages in flight: %s", exc)
        lanes = [asyncio.create_task(lane.run()) for lane in self.lanes.values()]
        lanes.append(asyncio.create_task(self._renew_leases_forever()))
        try:
            await self._fail_orphans()
            await asyncio.gather(*lanes)
        finally:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            await self.drain()
            await self.session.close()

    def _take_over_leases(self, conn: sqlite3.Connection) -> None:
        """On SQLite this receiver is the only one: rows leased when it last stopped (killed in the middle of sending
        them) are free at once. On a shared database they wait for their leases to run out."""
        if not self.db.shared:
            conn.execute(
                "UPDATE notifications SET lease_until = NULL WHERE status = 'queued' AND lease_until IS NOT NULL"
            )

    async def _renew_leases_forever(self) -> None:
        """Every RENEW_S, the leases of the rows being sent: no other receiver takes over a message still on its way."""
        while True:
            await self.clock.sleep_until(self.clock.now() + timedelta(seconds=RENEW_S), asyncio.Event())
            ids = sorted(row for lane in self.lanes.values() for row in lane.row_ids)
            if not ids:
                continue
            try:
                await self.db.run(self._renew, ids, self.clock.now())
            except database.ERRORS as exc:
                self.log_throttled(("lease",), logging.ERROR, "could not renew the leases of messages sent: %s", exc)

    def _renew(self, conn: sqlite3.Connection, ids: list[int], now: datetime) -> None:
        """Only leases still held: a try recorded since the ids were taken let its lease go (NULL), and a lease
        renewed after that would hold its retry back for LEASE_S."""
        conn.execute(
            f"UPDATE notifications SET lease_until = ? WHERE id IN ({','.join(map(str, ids))}) AND status = 'queued'"
            " AND claimed_by = ? AND lease_until IS NOT NULL",
            (iso(now + timedelta(seconds=LEASE_S)), self.replica),
        )

    async def drain(self, timeout: float = 15.0) -> None:
        """Let the messages being sent finish (their rows are updated); queued ones stay for later."""
        self.stopping = True
        busy = [task for lane in self.lanes.values() for task in lane.in_flight.values()]
        if busy:
            _, late = await asyncio.wait(busy, timeout=timeout)
            for task in late:  # still waiting on a rate limit or a slow API: the rows stay queued
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _fail_orphans(self) -> None:
        """Rows of channels the config no longer has (a reload removed them) fail, and their pages move on."""
        try:
            recorded = await self.db.run(self._fail_orphan_rows, list(self.lanes), self.clock.now())
        except database.ERRORS as exc:
            log.error("could not look for rows of removed channels: %s", exc)
            return
        if recorded.taken and self.stepped:
            self.stepped(recorded.taken)

    def _fail_orphan_rows(self, conn: sqlite3.Connection, known: list[str], now: datetime) -> Recorded:
        kept = f" AND channel NOT IN ({','.join('?' * len(known))})" if known else ""  # PostgreSQL has no `IN ()`
        rows = conn.execute(
            f"SELECT id, channel, alert_id, kind, step, round FROM notifications WHERE status = 'queued'{kept}", known
        ).fetchall()
        for row in rows:
            error = f'channel "{row["channel"]}" is no longer in the receiver config'
            conn.execute("UPDATE notifications SET status = 'failed', error = ? WHERE id = ?", (error, row["id"]))
            events.record(
                conn, "notification.failed", row["alert_id"], now, channel=row["channel"], kind=row["kind"], error=error
            )
        pages = [(row["alert_id"], row["step"], row["round"]) for row in rows if row["kind"] == "firing"]
        taken = self.store.page_failed(conn, pages, now) if pages and self.store else []
        return Recorded([], taken, None)

    def mask(self, text: str) -> str:
        return mask(text, self._secrets)

    def log_throttled(self, key: tuple, level: int, text: str, *args: object, exc_info: bool = False) -> None:
        held = self._throttle.allow(key)
        if held is not None:
            more = f" ({held} more like it in the last minute)" if held else ""
            log.log(level, text + more, *args, exc_info=exc_info)


class Lane:
    """One channel's deliveries: its rows in flight, its rate limit, its circuit breaker."""

    def __init__(self, outbox: Outbox, name: str, channel: Channel | None, settings: dict[str, object]):
        self.outbox = outbox
        self.name = name
        self.channel = channel
        self.limit = int(settings.get("max_in_flight") or DEFAULT_IN_FLIGHT)  # type: ignore[call-overload]
        self.rate = RateLimit.of(name, settings.get("rate_limit"))
        self.timeout = _timeout_seconds(settings)
        self.breaker = Breaker()
        self.in_flight: dict[int, asyncio.Task] = {}  # first row id of each message being sent → its task
        self.row_ids: set[int] = set()  # every row in those messages (leased to this receiver)
        self.wake = asyncio.Event()
        outbox.metrics.channel_up.labels(name).set(1)
        for outcome in ("sent", "retry", "failed"):  # at 0 from the start, so that increase() sees the first one
            outbox.metrics.notifications.labels(name, outcome)

    async def run(self) -> None:
        outbox = self.outbox
        loop = asyncio.get_running_loop()
        while not outbox.stopping:
            self.wake.clear()
            now = outbox.clock.now()
            free = self.limit - len(self.in_flight)
            next_at: datetime | None = None
            if free > 0:
                try:
                    claimed = await outbox.db.run(self._claim, now, free, datetime.now(UTC))
                except database.ERRORS as exc:
                    outbox.log_throttled(("claim", self.name), logging.ERROR, "channel %s: %s", self.name, exc)
                    claimed = Claimed([], now + timedelta(seconds=PAUSE_S))
                if claimed.probe is not None:
                    self.breaker.probe_row = claimed.probe
                for group in claimed.groups:
                    self._start(group)
                if claimed.room_in is not None:  # the rate limit has room again then: wall-clock time
                    loop.call_later(claimed.room_in, self.wake.set)
                next_at = claimed.next_at
            if outbox.db.shared:  # rows another receiver scheduled, or left when it died
                next_at = no_later_than(next_at, now + timedelta(seconds=POLL_S))
            await outbox.clock.sleep_until(next_at, self.wake)

    # -- choosing what to send --------------------------------------------------------------------
    def _claim(self, conn: sqlite3.Connection, now: datetime, free: int, wall: datetime) -> "Claimed":
        """Lease the messages to start now (each a row, or a digest of rows) and say when to look again. Closed: the
        due rows. Open: rows at their give-up time, and the probe when its time has come. A row leased to another
        receiver is its own until the lease runs out; so is the room the rate limit has (`wall`: the wall clock)."""
        stamp = iso(now)
        leased = f" AND n.id NOT IN ({','.join(map(str, self.row_ids))})" if self.row_ids else ""
        queued = "n.channel = ? AND n.status = 'queued' AND (n.lease_until IS NULL OR n.lease_until <= ?)" + leased
        first = queued + _FIRST_OF_ITS_KIND
        level = self.rate.level(conn, wall) if self.rate is not None else 0.0
        allowed = self.rate.room(level) if self.rate is not None else free  # messages the rate limit lets go now
        room = min(free, allowed)
        breaker = self.breaker
        probe: int | None = None
        if not breaker.open:
            limit = max(room, BATCH) if self.rate is not None and room else room
            due = f"{first} AND n.next_attempt_at <= ?"
            rows = self._rows(conn, due, "n.next_attempt_at, n.id", limit, stamp, stamp)
            groups = self._groups(rows, allowed)[:room]
            later = [self._earliest(conn, "n.next_attempt_at", f"{queued} AND n.next_attempt_at > ?", stamp, stamp)]
        else:
            rows = self._rows(conn, f"{first} AND n.give_up_at <= ?", "n.give_up_at, n.id", room, stamp, stamp)
            probe_due = breaker.probe_row is None and breaker.probe_at is not None and breaker.probe_at <= now
            if probe_due and len(rows) < room:
                others = "".join(f" AND n.id != {row.id}" for row in rows)
                found = self._rows(conn, first + others, "n.next_attempt_at, n.id", 1, stamp)
                if found:
                    probe = found[0].id
                    rows.append(found[0])
            groups = [[row] for row in rows]
            later = [self._earliest(conn, "n.give_up_at", f"{first} AND n.give_up_at > ?", stamp, stamp)]
            if breaker.probe_row is None and breaker.probe_at is not None and breaker.probe_at > now:
                later.append(breaker.probe_at)
        leased_elsewhere = "n.channel = ? AND n.status = 'queued' AND n.lease_until > ?"  # or leased here
        later.append(self._earliest(conn, "n.lease_until", leased_elsewhere, stamp))
        room_in = None
        if self.rate is not None:
            if groups:
                level = self.rate.spend(conn, wall, level, len(groups))
            if not self.rate.room(level):
                room_in = (self.rate.room_at(wall, level) - wall).total_seconds()
        self._lease(conn, [row.id for group in groups for row in group], now)
        return Claimed(groups, min((c for c in later if c is not None), default=None), room_in, probe)

    def _lease(self, conn: sqlite3.Connection, ids: list[int], now: datetime) -> None:
        if ids:
            conn.execute(
                f"UPDATE notifications SET claimed_by = ?, lease_until = ? WHERE id IN ({','.join(map(str, ids))})",
                (self.outbox.replica, iso(now + timedelta(seconds=LEASE_S))),
            )

    def _rows(self, conn: sqlite3.Connection, where: str, order: str, limit: int, *args: object) -> list[DueRow]:
        """Queued rows with their alerts; on a shared database, those no other receiver is claiming just now."""
        rows = conn.execute(
            f"SELECT n.id, n.channel, n.recipient, n.kind, n.step, n.round, n.queued_at, {ALERT_OF_ROW}"
            f" FROM notifications n JOIN alerts a ON a.id = n.alert_id WHERE {where} ORDER BY {order} LIMIT ?"
            + locking(conn, skip_locked=True, of="n"),
            (self.name, *args, limit),
        ).fetchall()
        due = []
        for row in rows:
            alert = dict(zip(ALERT_COLUMNS, row[7:], strict=True))
            alert["labels"] = json.loads(alert["labels"])
            alert["annotations"] = json.loads(alert["annotations"])
            due.append(DueRow(*row[:7], alert))
        return due

    def _earliest(self, conn: sqlite3.Connection, column: str, where: str, *args: object) -> datetime | None:
        (earliest,) = conn.execute(
            f"SELECT MIN({column}) FROM notifications n WHERE {where}", (self.name, *args)
        ).fetchone()
        return parse_iso(earliest) if earliest else None

    def _groups(self, rows: list[DueRow], allowed: int) -> list[list[DueRow]]:
        """One message per row; in a storm (more due than the rate limit lets through now, `allowed`), one digest per
        recipient and kind."""
        if self.rate is None or len(rows) <= allowed:
            return [[row] for row in rows]
        by_recipient: dict[tuple[str, str], list[DueRow]] = {}
        for row in rows:
            by_recipient.setdefault((row.kind, row.recipient), []).append(row)
        return list(by_recipient.values())

    # -- sending ----------------------------------------------------------------------------------
    def _start(self, group: list[DueRow]) -> None:
        ids = [row.id for row in group]
        self.row_ids.update(ids)
        task = asyncio.create_task(self._deliver(group))
        self.in_flight[ids[0]] = task

        def done(_: asyncio.Task) -> None:
            self.in_flight.pop(ids[0], None)
            self.row_ids.difference_update(ids)
            self.wake.set()

        task.add_done_callback(done)

    async def _deliver(self, group: list[DueRow]) -> None:
        outbox = self.outbox
        try:
            attempt = await self._attempt(group)
            now = outbox.clock.now()
            recorded = await outbox.db.run(self._record, group, attempt, now, self._judge(group, attempt, now))
            self._report(group, attempt, recorded)
            if recorded.taken:
                outbox.wake()
                if outbox.stepped:
                    outbox.stepped(recorded.taken)
        except Exception as exc:  # the database, or a bug: the rows stay queued, held here so the lane cannot spin
            outbox.log_throttled(
                ("record", self.name), logging.ERROR, "channel %s: a try was not recorded: %s", self.name, exc
            )
            await outbox.clock.sleep_until(outbox.clock.now() + timedelta(seconds=PAUSE_S), asyncio.Event())
        finally:
            if self.breaker.probe_row == group[0].id:
                self.breaker.probe_row = None

    async def _attempt(self, group: list[DueRow]) -> Attempt:
        """Render and send one message; whatever goes wrong is an Attempt, never an exception."""
        outbox = self.outbox
        first = group[0]
        if self.channel is None:
            return Attempt(Outcome("permanent", f'channel "{self.name}" has no sender in this amcompanion'))
        single_firing = len(group) == 1 and first.kind == "firing"
        try:
            ack_url = (
                outbox.links.url(first.alert["id"], outbox.clock.now(), recipient=first.recipient)
                if single_firing
                else ""
            )
            rendered = outbox.renderer.compose(
                self.name,
                first.kind,
                [row.alert for row in group],
                first.recipient,
                outbox.contacts.get(first.recipient, {}),
                ack_url,
            )
        except Exception as exc:  # compose handles template errors; anything else is a bug of ours
            return self._internal("could not render the message", exc)
        if rendered.template_error:
            outbox.metrics.template_errors.labels(self.name).inc()
            outbox.log_throttled(
                ("template", self.name, rendered.template_error),
                logging.ERROR,
                "channel %s: %s",
                self.name,
                rendered.template_error,
            )
        message = replace(rendered.message, notification_id=first.id, external_url=outbox.links.external_url)
        assert outbox.session is not None
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.channel.send(outbox.session, message)
            outcome = self.channel.classify(response)
        except TimeoutError:
            reason = f"no answer within {self.timeout:g} s"
            return Attempt(Outcome("retry", reason), channel_fault=True, template_error=rendered.template_error)
        except (aiohttp.ClientError, OSError) as exc:
            reason = outbox.mask(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            return Attempt(Outcome("retry", reason), channel_fault=True, template_error=rendered.template_error)
        except Exception as exc:
            return replace(self._internal("could not send the message", exc), template_error=rendered.template_error)
        kind = "SMTP" if getattr(self.channel, "type", "") == "email" else "HTTP"
        return Attempt(
            replace(outcome, reason=outbox.mask(outcome.reason)),
            channel_fault=outcome.result == "retry" and not outcome.recipient_limit,
            template_error=rendered.template_error,
            answer=f"{kind} {response.status}" if response.status else outbox.mask(outcome.reason),
        )

    def _internal(self, what: str, exc: Exception) -> Attempt:
        self.outbox.log_throttled(
            ("internal", self.name, type(exc).__name__),
            logging.ERROR,
            "channel %s: %s (a bug in amcompanion; please report it)",
            self.name,
            what,
            exc_info=True,
        )
        reason = self.outbox.mask(f"{what}: {type(exc).__name__}: {exc}")
        return Attempt(Outcome("retry", reason), internal=True)

    def _judge(self, group: list[DueRow], attempt: Attempt, now: datetime) -> list[int]:
        """Tell the breaker; the rows to release when it closes."""
        breaker = self.breaker
        metrics = self.outbox.metrics
        if attempt.outcome.result == "ok" and breaker.open:
            metrics.channel_up.labels(self.name).set(1)
            return breaker.succeeded()
        if attempt.channel_fault:
            breaker.failed([row.id for row in group], now, attempt.outcome.retry_after)
            metrics.channel_up.labels(self.name).set(0)
        return []

    def _record(
        self, conn: sqlite3.Connection, group: list[DueRow], attempt: Attempt, now: datetime, release: list[int]
    ) -> Recorded:
        """Store the try's outcome on each row of the message, release what the breaker let go, and hand the
        pages that failed for good to the store."""
        outcome, stamp, store = attempt.outcome, iso(now), self.outbox.store
        digest = group[0].id if len(group) > 1 else None
        statuses, failed_pages = [], []
        retry_at: datetime | None = None
        for row in group:
            attempts, give_up_at, current = conn.execute(
                "SELECT attempts, give_up_at, status FROM notifications WHERE id = ?", (row.id,)
            ).fetchone()
            attempts += 1
            status, error, next_at = self._next(outcome, attempt.internal, attempts, now, parse_iso(give_up_at))
            if status != "sent" and current == "cancelled":  # acknowledged or resolved meanwhile: leave it be
                status, next_at = "cancelled", None
            conn.execute(
                "UPDATE notifications SET status = ?, attempts = ?, error = ?, sent_at = ?, digest_id = ?,"
                " lease_until = NULL, next_attempt_at = COALESCE(?, next_attempt_at),"
                " template_error = COALESCE(?, template_error) WHERE id = ?",
                (
                    "queued" if status == "retry" else status,
                    attempts,
                    error,
                    stamp if status == "sent" else None,
                    digest if status == "sent" else None,
                    iso(next_at) if next_at else None,
                    attempt.template_error,
                    row.id,
                ),
            )
            statuses.append((row.id, status, row.queued_at, attempts))
            if status in ("sent", "failed"):
                answered = {"answer": attempt.answer} if status == "sent" else {}  # what a drill shows
                events.record(
                    conn, f"notification.{status}", row.alert["id"], now,
                    channel=row.channel, recipient=row.recipient, kind=row.kind, error=error, **answered,
                )  # fmt: skip
            if status == "failed" and row.kind == "firing":
                failed_pages.append((row.alert["id"], row.step, row.round))
            elif status == "sent" and row.kind == "firing" and current == "cancelled" and store is not None:
                store.sent_after_close(conn, row.alert["id"], row.channel, row.recipient, now)
            retry_at = retry_at or next_at
        if release:
            conn.execute(
                f"UPDATE notifications SET next_attempt_at = ? WHERE id IN ({','.join(map(str, release))})"
                " AND status = 'queued' AND next_attempt_at > ?",
                (stamp, stamp),
            )
        taken = store.page_failed(conn, failed_pages, now) if failed_pages and store is not None else []
        return Recorded(statuses, taken, retry_at)

    @staticmethod
    def _next(
        outcome: Outcome, internal: bool, attempts: int, now: datetime, give_up: datetime
    ) -> tuple[str, str | None, datetime | None]:
        """(status, error, next try) after a try: sent; retry at the backoff or the asked wait, never past the
        give-up time, which gets the last try; failed, with why."""
        if outcome.result == "ok":
            return "sent", None, None
        if outcome.result == "permanent":
            return "failed", outcome.reason, None
        if internal and attempts >= INTERNAL_TRIES:
            return "failed", f"{outcome.reason} (an error inside amcompanion, {attempts} tries)", None
        if now >= give_up:
            return "failed", f"gave up after {attempts} tries: {outcome.reason}", None
        wait = outcome.retry_after if outcome.retry_after is not None else backoff_seconds(attempts)
        return "retry", outcome.reason, min(now + timedelta(seconds=wait), give_up)

    def _report(self, group: list[DueRow], attempt: Attempt, recorded: Recorded) -> None:
        metrics, now = self.outbox.metrics, self.outbox.clock.now()
        first = group[0]
        if len(group) > 1 and attempt.outcome.result == "ok":
            metrics.digests.labels(self.name).inc()
        for _, status, queued_at, _ in recorded.statuses:
            if status == "cancelled":  # acknowledged or resolved while it was tried: no longer a delivery
                continue
            metrics.notifications.labels(self.name, status).inc()
            if status == "retry":
                metrics.retries.labels(self.name).inc()
            elif status == "sent":
                metrics.latency.labels(self.name).observe(max(0.0, (now - parse_iso(queued_at)).total_seconds()))
        _, status, _, attempts = recorded.statuses[0]
        alerts = [(row.alert["id"], row.alert["alertname"], row.alert["severity"]) for row in group]
        answer = attempt.answer if status == "sent" else attempt.outcome.reason
        if status == "retry":
            held = self.outbox._throttle.allow(("retry", self.name, attempt.outcome.reason[:80]))
            if held is None:
                return
            retry_in = (recorded.retry_at - now).total_seconds() if recorded.retry_at else 0.0
            answer += f" ({held} more like it in the last minute)" if held else ""
            narrate.delivery(status, self.name, first.recipient, first.kind, alerts, attempts, answer, retry_in)
        elif status != "cancelled":
            narrate.delivery(status, self.name, first.recipient, first.kind, alerts, attempts, answer)
