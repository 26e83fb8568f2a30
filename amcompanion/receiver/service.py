"""The running receiver: the database, the store, the escalation scheduler and the outbox, wired together."""

import asyncio
import contextlib
import hashlib
import logging
import secrets as token_generator
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from amcompanion.history.schema import set_sla_targets
from amcompanion.receiver.channels import CHANNEL_TYPES, Channel
from amcompanion.receiver.config import ReceiverConfig
from amcompanion.receiver.db import Database
from amcompanion.receiver.links import AckLinks
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.metrics import Metrics
from amcompanion.receiver.outbox import Outbox
from amcompanion.receiver.store import Store
from amcompanion.receiver.timeutil import Clock, SystemClock

log = logging.getLogger("amcompanion.receiver")


@dataclass
class Settings:
    db_path: str
    token: str | None  # None only with --insecure-no-auth
    max_body_bytes: int = 4 * 1024 * 1024
    give_up_after: timedelta = timedelta(hours=1)
    ack_link_lifetime: timedelta = timedelta(hours=24)
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
        self.db = Database(settings.db_path)
        self.links = AckLinks(self._ack_key(), config.external_url, settings.ack_link_lifetime)
        self.config = config
        self.store = Store(config, settings.give_up_after)
        self.outbox = self._outbox(config)
        self._scheduler_wake = asyncio.Event()
        self._escalation_task: asyncio.Task | None = None
        self._outbox_task: asyncio.Task | None = None
        self._sleeping_until: datetime | None = None  # the scheduler's next deadline while it sleeps
        self._sla_task: asyncio.Task | None = None  # a reload's new SLA targets, on their way to the database
        self.ready = False

    def _ack_key(self) -> bytes:
        if self.settings.ack_key:
            return self.settings.ack_key
        if self.settings.token:
            return hashlib.sha256(b"amcompanion ack links\0" + self.settings.token.encode()).digest()
        log.warning("no token and no ack key: acknowledgement links will not survive a restart")
        return token_generator.token_bytes(32)

    def _outbox(self, config: ReceiverConfig) -> Outbox:
        return Outbox(
            self.db,
            build_channels(config),
            config.channels,
            config.contacts,
            Renderer(config.channels, Path(config.source).parent if config.source else Path.cwd()),
            self.links,
            self.clock,
            self.metrics,
            config.secrets,
        )

    async def start(self) -> None:
        await self.db.open()
        await self.db.run(set_sla_targets, self.config.sla)
        self._escalation_task = asyncio.create_task(self._escalate_forever())
        self._outbox_task = asyncio.create_task(self.outbox.run())
        self.ready = True

    async def stop(self) -> None:
        """Stop taking steps, let messages in flight finish, close the database."""
        self.ready = False
        for task in (self._escalation_task, self._outbox_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.db.close()

    def reload(self, config: ReceiverConfig) -> None:
        """Use a new config from now on; messages in flight finish with the old one."""
        if config.sla != self.config.sla and self.db.opened:
            self._sla_task = asyncio.create_task(self.db.run(set_sla_targets, config.sla))
        self.config = config
        self.store.config = config
        self.links.external_url = config.external_url
        previous = self._outbox_task
        self.outbox = self._outbox(config)
        if previous is not None:
            previous.cancel()  # Outbox.run drains its deliveries in flight before it ends
            self._outbox_task = asyncio.create_task(self._after(previous, self.outbox.run()))
        self.wake()

    @staticmethod
    async def _after(previous: asyncio.Task, then: Coroutine[None, None, None]) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await previous
        await then

    def wake(self) -> None:
        """Something changed: deadlines to look at, rows to send."""
        self._scheduler_wake.set()
        self.outbox.wake()

    def deadline_set(self, deadline: datetime) -> None:
        """A step will come due at `deadline`: wake the scheduler only if it sleeps past it."""
        if self._sleeping_until is None or deadline < self._sleeping_until:
            self._scheduler_wake.set()

    async def _escalate_forever(self) -> None:
        while True:
            self._scheduler_wake.clear()
            try:
                taken, next_at = await self.db.run(self.store.escalate_due, self.clock.now())
            except Exception:
                log.exception("escalation pass failed; trying again in 5 s")
                taken, next_at = 0, self.clock.now() + timedelta(seconds=5)
            if taken:
                self.metrics.escalations.labels("deadline").inc(taken)
                self.outbox.wake()
            self._sleeping_until = next_at
            await self.clock.sleep_until(next_at, self._scheduler_wake)
            self._sleeping_until = None
