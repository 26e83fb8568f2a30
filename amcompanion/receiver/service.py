"""The running receiver: the database, the store, the escalation scheduler and the outbox, wired together."""

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets as token_generator
import socket
import sqlite3
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web

from amcompanion.console import views as console_views
from amcompanion.history.schema import set_sla_targets
from amcompanion.receiver import events, narrate
from amcompanion.receiver.channels import CHANNEL_TYPES, Channel
from amcompanion.receiver.config import ReceiverConfig
from amcompanion.receiver.db import POLL_S, open_database
from amcompanion.receiver.events import EventHub
from amcompanion.receiver.identity import Identities
from amcompanion.receiver.links import AckLinks
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.metrics import Metrics
from amcompanion.receiver.outbox import Outbox
from amcompanion.receiver.payload import Notification
from amcompanion.receiver.store import IngestSummary, StepTaken, Store
from amcompanion.receiver.timeutil import Clock, SystemClock, iso, no_later_than, parse_iso
from amcompanion.schedules import oncall
from amcompanion.schedules.roster import Roster
from amcompanion.schedules.sources import CalendarSources

log = logging.getLogger("amcompanion.receiver")
BUSY_S = 0.2  # wall-clock seconds before looking again at due alerts another receiver was stepping


@dataclass
class Settings:
    db_path: str
    token: str | None  # None only with --insecure-no-auth
    max_body_bytes: int = 4 * 1024 * 1024
    give_up_after: timedelta = timedelta(hours=1)
    alertmanager_url: str | None = None  # for silences on ack; default: the alert's externalURL
    ack_key: bytes | None = None  # signs ack links; default: derived from the token


def build_channels(config: ReceiverConfig) -> dict[str, Channel]:
    """A sender for every channel whose type this version can deliver to."""
    return {
        name: CHANNEL_TYPES[str(s["type"])](name, s)
        for name, s in config.channels.items()
        if s["type"] in CHANNEL_TYPES
    }


class Receiver:
    def __init__(self, config: ReceiverConfig, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.replica = f"{socket.gethostname()}-{os.getpid()}-{token_generator.token_hex(2)}"  # in the rows it leases
        self.db = open_database(settings.db_path)
        self.links = AckLinks(self._ack_key(), config.external_url, config.ack_link_ttl)
        self.config = config
        self.identities = Identities(config, settings.token, self._ack_key(), self.clock)
        self.calendars = CalendarSources(config.schedules, _config_dir(config))
        self.store = Store(config, settings.give_up_after, roster=self._roster(config))
        self.events = EventHub(self.db, console_views.alert_views(self))
        self.db.on_commit.append(self.events.wake)
        # Another receiver on the database committed events: the console's stream here tells them. Its deadlines and
        # messages are its own to see to; this one's scheduler and outbox look every POLL_S for what it left undone.
        self.db.on_others.append(self.events.wake)
        self.outbox = self._outbox(config)
        self._scheduler_wake = asyncio.Event()
        self._escalation_task: asyncio.Task | None = None
        self._outbox_task: asyncio.Task | None = None
        self._sleeping_until: datetime | None = None  # the scheduler's next deadline while it sleeps
        self._sla_task: asyncio.Task | None = None  # a reload's new SLA targets, on their way to the database
        self._calendar_task: asyncio.Task | None = None
        self._handoff_task: asyncio.Task | None = None
        self._schedules_changed = asyncio.Event()  # a reload: the hand-offs to wait for are others
        self.ready = False

    def _roster(self, config: ReceiverConfig) -> Roster:
        return Roster(config.schedules, config.contacts, config.people, self.calendars)

    def _ack_key(self) -> bytes:
        if self.settings.ack_key:
            return self.settings.ack_key
        if self.settings.token:
            return hashlib.sha256(b"amcompanion ack links\0" + self.settings.token.encode()).digest()
        log.warning("no token and no ack key: acknowledgement links will not survive a restart")
        return token_generator.token_bytes(32)

    def _outbox(self, config: ReceiverConfig) -> Outbox:
        renderer = Renderer(config.channels, _config_dir(config))
        return Outbox(
            self.db,
            build_channels(config),
            config.channels,
            config.contacts,
            renderer,
            self.links,
            self.clock,
            self.metrics,
            config.secrets,
            store=self.store,
            stepped=self.stepped,
            replica=self.replica,
        )

    async def start(self) -> None:
        await self.db.open()
        await self.db.run(set_sla_targets, self.config.sla)
        await self.events.start()
        # the calendars first, so that the first pages after a start name whom they say (each read is bounded)
        await self.calendars.refresh(self.clock.now())
        self._escalation_task = asyncio.create_task(self._escalate_forever())
        self._outbox_task = asyncio.create_task(self.outbox.run())
        self._calendar_task = asyncio.create_task(self._read_calendars_forever())
        self._handoff_task = asyncio.create_task(self._announce_handoffs_forever())
        self.ready = True

    async def stop(self) -> None:
        """Stop taking steps, let messages in flight finish, close the database."""
        self.ready = False
        await self.events.stop()
        for task in (self._escalation_task, self._outbox_task, self._calendar_task, self._handoff_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.db.close()

    def reload(self, config: ReceiverConfig) -> None:
        """Use a new config from now on; messages in flight finish with the old one. A config whose templates
        do not compile raises messages.TemplateProblem, and the running one stays."""
        outbox = self._outbox(config)
        if config.sla != self.config.sla and self.db.opened:
            self._sla_task = asyncio.create_task(self.db.run(set_sla_targets, config.sla))
        self.config = config
        self.store.config = config
        self.identities = Identities(config, self.settings.token, self.identities.key, self.clock)
        self.calendars = CalendarSources(config.schedules, _config_dir(config))
        if self._calendar_task is not None:
            self._calendar_task.cancel()
            self._calendar_task = asyncio.create_task(self._read_calendars_forever())
        self.store.roster = self._roster(config)
        self._schedules_changed.set()
        self.links.external_url = config.external_url
        self.links.lifetime = config.ack_link_ttl
        previous = self._outbox_task
        self.outbox = outbox
        if previous is not None:
            previous.cancel()  # Outbox.run drains its deliveries in flight before it ends
            self._outbox_task = asyncio.create_task(self._after(previous, self.outbox.run()))
        self.wake()

    @staticmethod
    async def _after(previous: asyncio.Task, then: Coroutine[None, None, None]) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await previous
        await then

    # -- what happens -----------------------------------------------------------------------------
    async def ingest(self, policy: str, note: Notification) -> IngestSummary:
        """Record a notification from Alertmanager (committed when this returns), then count and tell it."""
        summary = await self.db.run(self.store.ingest, policy, note, self.clock.now())
        for status in summary.statuses:
            self.metrics.received_by_status[status].inc()
        if summary.duplicates:
            self.metrics.duplicates.inc(summary.duplicates)
        for change in summary.changes:
            if change.what == "new":
                narrate.received(change.alert_id, change.alertname, change.severity, policy)
            else:
                narrate.resolved(change.alert_id, change.alertname, change.severity, "Alertmanager says so")
        self.stepped(summary.taken)
        if summary.queued:
            self.outbox.wake()
        if summary.next_deadline is not None:
            self.deadline_set(summary.next_deadline)
        return summary

    async def acknowledge(self, alert_id: int, by: str, via: str, comment: str) -> dict:
        """Acknowledge as `by` (committed when this returns), tell the incident tools the alert opened incidents in,
        count and narrate it. One acknowledged before keeps its first ack: `already_acknowledged` says so.
        store.NotFound and store.Conflict (resolved already) propagate."""
        alert: dict = await self.db.run(self.store.acknowledge, alert_id, by, via, comment, self.clock.now())
        if alert.pop("queued"):
            self.outbox.wake()
        if not alert["already_acknowledged"]:
            self.metrics.acks.labels(via).inc()
            narrate.acknowledged(alert["id"], alert["alertname"], alert["severity"], alert["acked_by"], via)
        return alert

    async def resolve(self, alert_id: int, by: str | None) -> dict:
        """Resolve by hand (as `by`): the resolve notices go out; a resolved alert is answered as it is."""
        alert, queued = await self.db.run(self.store.resolve, alert_id, self.clock.now(), by)
        if queued is not None:
            narrate.resolved(alert["id"], alert["alertname"], alert["severity"], f"by hand, by {by or 'the API'}")
        if queued:
            self.outbox.wake()
        return alert

    def stepped(self, taken: list[StepTaken]) -> None:
        """Escalation steps were committed: count them, tell them, and look at the deadlines they set."""
        for step in taken:
            self.metrics.escalations.labels(step.reason).inc()
            narrate.step(step.alert_id, step.alertname, step.severity, step.step, step.round, step.reason, step.targets)
        if taken:
            self._scheduler_wake.set()

    async def observe(self) -> None:
        """Set the gauges a scrape reads from the database: the outbox's depth and oldest row, and how late the
        most overdue escalation step is (a stuck scheduler shows here, not only in its own loop)."""
        depth, oldest, deadline = await self.db.read(_backlog)
        now = self.clock.now()
        self.metrics.queue_depth.set(depth)
        self.metrics.oldest_queued.set(max(0.0, (now - parse_iso(oldest)).total_seconds()) if oldest else 0.0)
        overdue = (now - deadline).total_seconds() if deadline is not None else 0.0
        self.metrics.escalation_overdue.set(max(0.0, overdue))

    def wake(self) -> None:
        """Something changed: deadlines to look at, rows to send."""
        self._scheduler_wake.set()
        self.outbox.wake()

    def deadline_set(self, deadline: datetime) -> None:
        """A step will come due at `deadline`: wake the scheduler only if it sleeps past it."""
        if self._sleeping_until is None or deadline < self._sleeping_until:
            self._scheduler_wake.set()

    async def _read_calendars_forever(self) -> None:
        """Keep the iCal sources' calendars fresh; each read at its own `refresh`."""
        told: dict[str, list[str]] = {}
        while True:
            await self.calendars.refresh(self.clock.now())
            roster = self.store.roster
            strangers = roster.strangers() if roster is not None else {}
            for source, summaries in strangers.items():
                if told.get(source) != summaries:
                    log.warning("calendar %s: events name no contact and page nobody: %s", source, ", ".join(summaries))
            told = strangers
            following = self.calendars.next_refresh()
            if following is None:
                return
            await self.clock.sleep_until(following, asyncio.Event())

    async def _announce_handoffs_forever(self) -> None:
        """At each schedule's hand-off, log `oncall.changed` with who is on call now, for the console's panel."""
        throttle = narrate.Throttle()
        while True:
            self._schedules_changed.clear()
            now = self.clock.now()
            following = self._next_handoff(now)
            await self.clock.sleep_until(following, self._schedules_changed)
            if self._schedules_changed.is_set():
                continue
            try:
                state = console_views.who_is_on_call(self, self.clock.now())
                await self.db.run(_announce_once, f"oncall.changed {following}", self.clock.now(), state)
            except Exception:
                if throttle.allow("handoff") is not None:
                    log.exception("could not announce a hand-off")

    def _next_handoff(self, now: datetime) -> datetime | None:
        """The first moment after `now` at which some schedule changes hands."""
        moments = []
        for name, schedule in self.config.schedules.items():
            calendars = self.calendars.calendars(name)
            for shift in oncall.next_handoffs(schedule, now, 1, calendars, self.config.contacts):
                moments += [moment for moment in (shift.start, shift.end) if moment > now]
        return min(moments, default=None)

    async def _escalate_forever(self) -> None:
        throttle = narrate.Throttle()
        while True:
            self._scheduler_wake.clear()
            try:
                taken, next_at = await self.db.run(self.store.escalate_due, self.clock.now())
            except Exception:
                if throttle.allow("escalation") is not None:
                    log.exception("escalation pass failed; trying again in 5 s")
                taken, next_at = [], self.clock.now() + timedelta(seconds=5)
            if taken:
                self.stepped(taken)
                self.outbox.wake()
            now = self.clock.now()
            if next_at is not None and next_at <= now and not taken:  # due, but another receiver is stepping them
                next_at = None
                asyncio.get_running_loop().call_later(BUSY_S, self._scheduler_wake.set)
            if self.db.shared:  # deadlines another receiver set, or left when it died
                next_at = no_later_than(next_at, now + timedelta(seconds=POLL_S))
            self._sleeping_until = next_at
            await self.clock.sleep_until(next_at, self._scheduler_wake)
            self._sleeping_until = None


RECEIVER_KEY = web.AppKey("receiver", Receiver)


def _config_dir(config: ReceiverConfig) -> Path:
    """Where the config's relative paths (templates, calendar files) start."""
    return Path(config.source).parent if config.source else Path.cwd()


def _announce_once(conn: sqlite3.Connection, key: str, now: datetime, oncall: list[dict]) -> None:
    """Log a hand-off once, whichever receivers on the database saw it come (each does)."""
    if conn.execute("INSERT OR IGNORE INTO done_once (key, at) VALUES (?, ?)", (key, iso(now))).rowcount:
        events.record(conn, "oncall.changed", None, now, oncall=oncall)


def _backlog(conn: sqlite3.Connection) -> tuple[int, str | None, datetime | None]:
    """Rows queued, the oldest one's queued_at, and the next escalation deadline of a firing alert."""
    depth, oldest = conn.execute(
        "SELECT COUNT(*), MIN(queued_at) FROM notifications WHERE status = 'queued'"
    ).fetchone()
    return depth, oldest, Store.next_deadline(conn)
