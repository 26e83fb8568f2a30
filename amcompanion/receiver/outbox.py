"""Delivering the outbox: every notification is a row written before it is sent, updated after each try.

A dispatcher hands each channel its due rows; one task per channel sends them, within the channel's
rate limit (messages wait, they are not dropped). When more rows are due than the limit lets through
now, a storm, each recipient gets one digest instead. Failures are retried with exponential backoff
(tenacity's schedule, kept in the rows, so retries survive a restart) until the row's give-up time;
then the row is marked failed with the reason. Nothing is deleted.
"""

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import aiohttp
from aiolimiter import AsyncLimiter
from tenacity import RetryCallState, wait_exponential

from amcompanion.catalog.durations import parse_duration
from amcompanion.history.schema import ALERT_COLUMNS
from amcompanion.receiver.channels import Channel, Message, Outcome
from amcompanion.receiver.config import mask
from amcompanion.receiver.db import Database
from amcompanion.receiver.links import AckLinks
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.metrics import Metrics
from amcompanion.receiver.timeutil import Clock, iso, parse_iso

log = logging.getLogger("amcompanion.outbox")

BATCH = 500  # rows handed to one channel at a time
ALERT_OF_ROW = ", ".join(f"a.{column}" for column in ALERT_COLUMNS)
DEFAULT_TIMEOUT_S = 10.0
_BACKOFF = wait_exponential(multiplier=2, min=2, max=600)  # 2 s, 4 s, 8 s, ... at most 10 min
_RATE = re.compile(r"^(\d+)/(s|sec|second|m|min|minute|h|hour)$")
_PERIOD_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def backoff_seconds(attempts: int) -> float:
    """The wait before try number attempts + 1."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempts
    return float(_BACKOFF(state))


def limiter_for(rate: object) -> AsyncLimiter | None:
    match = _RATE.match(str(rate)) if rate else None
    return AsyncLimiter(int(match.group(1)), _PERIOD_S[match.group(2)]) if match else None


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
    queued_at: str
    alert: dict


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
    ):
        self.db = db
        self.channels = channels
        self.contacts = contacts
        self.renderer = renderer
        self.links = links
        self.clock = clock
        self.metrics = metrics
        self._secrets = [s for s in secrets if s]
        self._limiters = {name: limiter_for(s.get("rate_limit")) for name, s in settings.items()}
        self._timeouts = {name: _timeout_seconds(s) for name, s in settings.items()}
        self._wake = asyncio.Event()
        self._busy: dict[str, asyncio.Task] = {}
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def sending(self) -> bool:
        """Whether a delivery is under way (rows handed to a channel and not yet recorded)."""
        return bool(self._busy)

    async def run(self) -> None:
        self._session = aiohttp.ClientSession()
        try:
            while True:
                self._wake.clear()
                batches, next_at, depth = await self.db.run(self._claim, self.clock.now(), set(self._busy))
                self.metrics.queue_depth.set(depth)
                for channel, rows in batches.items():
                    self._busy[channel] = asyncio.create_task(self._deliver(channel, rows))
                await self.clock.sleep_until(next_at, self._wake)
        finally:
            await self.drain()
            await self._session.close()

    async def drain(self, timeout: float = 15.0) -> None:
        """Let the messages being sent finish (their rows are updated); queued ones stay for later."""
        self._stopping = True
        if self._busy:
            _, late = await asyncio.wait(list(self._busy.values()), timeout=timeout)
            for task in late:  # still waiting on a rate limit or a slow API: the rows stay queued
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # -- database side ------------------------------------------------------------------------
    @staticmethod
    def _claim(
        conn: sqlite3.Connection, now: datetime, busy: set[str]
    ) -> tuple[dict[str, list[DueRow]], datetime | None, int]:
        skip = ",".join("?" * len(busy))
        not_busy = f" AND n.channel NOT IN ({skip})" if busy else ""
        rows = conn.execute(
            f"SELECT n.id, n.channel, n.recipient, n.kind, n.queued_at, {ALERT_OF_ROW} FROM notifications n"
            " JOIN alerts a ON a.id = n.alert_id"
            f" WHERE n.status = 'queued' AND n.next_attempt_at <= ?{not_busy}"
            " ORDER BY n.next_attempt_at, n.id LIMIT ?",
            (iso(now), *busy, BATCH),
        ).fetchall()
        batches: dict[str, list[DueRow]] = {}
        for row in rows:
            alert = dict(zip(ALERT_COLUMNS, row[5:], strict=True))
            alert["labels"] = json.loads(alert["labels"])
            alert["annotations"] = json.loads(alert["annotations"])
            batches.setdefault(row["channel"], []).append(DueRow(row[0], row[1], row[2], row[3], row[4], alert))
        (earliest,) = conn.execute(
            f"SELECT MIN(next_attempt_at) FROM notifications n WHERE n.status = 'queued' AND n.next_attempt_at > ?"
            f"{not_busy}",
            (iso(now), *busy),
        ).fetchone()
        (depth,) = conn.execute("SELECT COUNT(*) FROM notifications WHERE status = 'queued'").fetchone()
        return batches, parse_iso(earliest) if earliest else None, depth

    @staticmethod
    def _record(conn: sqlite3.Connection, ids: list[int], outcome: Outcome, now: datetime) -> list[tuple[str, str]]:
        """Store one try's outcome on each row; return (status, queued_at) per row for the metrics."""
        results = []
        digest = ids[0] if len(ids) > 1 else None
        for row_id in ids:
            row = conn.execute("SELECT attempts, give_up_at, queued_at FROM notifications WHERE id = ?", (row_id,))
            attempts, give_up_at, queued_at = row.fetchone()
            attempts += 1
            if outcome.result == "ok":
                conn.execute(
                    "UPDATE notifications SET status = 'sent', sent_at = ?, attempts = ?, error = NULL, digest_id = ?"
                    " WHERE id = ?",
                    (iso(now), attempts, digest, row_id),
                )
                results.append(("sent", queued_at))
                continue
            retry_at = now + timedelta(seconds=outcome.retry_after or backoff_seconds(attempts))
            if outcome.result == "retry" and iso(retry_at) <= give_up_at:
                conn.execute(
                    "UPDATE notifications SET attempts = ?, error = ?, next_attempt_at = ? WHERE id = ?",
                    (attempts, outcome.reason, iso(retry_at), row_id),
                )
                results.append(("retry", queued_at))
            else:
                reason = outcome.reason
                if outcome.result == "retry":
                    reason = f"gave up after {attempts} tries: {reason}"
                conn.execute(
                    "UPDATE notifications SET status = 'failed', attempts = ?, error = ? WHERE id = ?",
                    (attempts, reason, row_id),
                )
                results.append(("failed", queued_at))
        return results

    # -- sending ------------------------------------------------------------------------------
    async def _deliver(self, name: str, rows: list[DueRow]) -> None:
        try:
            limiter = self._limiters.get(name)
            groups = [[row] for row in rows]
            if limiter is not None and len(rows) > 1 and not limiter.has_capacity(len(rows)):
                by_recipient: dict[tuple[str, str], list[DueRow]] = {}
                for row in rows:
                    by_recipient.setdefault((row.kind, row.recipient), []).append(row)
                groups = list(by_recipient.values())
            for group in groups:
                if self._stopping:
                    break
                if limiter is not None:
                    await limiter.acquire()
                outcome = await self._send(name, group)
                results = await self.db.run(self._record, [row.id for row in group], outcome, self.clock.now())
                self._count(name, group, outcome, results)
        except Exception:  # a bug must not stop the other channels; the rows stay queued and are tried again
            log.exception("delivery through channel %s failed unexpectedly", name)
        finally:
            del self._busy[name]
            self.wake()

    async def _send(self, name: str, group: list[DueRow]) -> Outcome:
        channel = self.channels.get(name)
        if channel is None:
            return Outcome("permanent", f'channel "{name}" has no sender in this amcompanion')
        first = group[0]
        single_firing = len(group) == 1 and first.kind == "firing"
        message: Message = self.renderer.render(
            name,
            first.kind,
            [row.alert for row in group],
            first.recipient,
            self.contacts.get(first.recipient, {}),
            self.links.url(first.alert["id"], self.clock.now()) if single_firing else "",
        )
        message = replace(message, notification_id=first.id, external_url=self.links.external_url)
        assert self._session is not None
        timeout = self._timeouts.get(name, DEFAULT_TIMEOUT_S)
        try:
            async with asyncio.timeout(timeout):
                response = await channel.send(self._session, message)
        except TimeoutError:
            return Outcome("retry", f"no answer within {timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome("retry", self._mask(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
        outcome = channel.classify(response)
        return Outcome(outcome.result, self._mask(outcome.reason), outcome.retry_after)

    def _mask(self, text: str) -> str:
        return mask(text, self._secrets)

    def _count(self, name: str, group: list[DueRow], outcome: Outcome, results: list[tuple[str, str]]) -> None:
        if len(group) > 1 and outcome.result == "ok":
            self.metrics.digests.labels(name).inc()
        now = self.clock.now()
        for status, queued_at in results:
            self.metrics.notifications.labels(name, status).inc()
            if status == "retry":
                self.metrics.retries.labels(name).inc()
                log.warning("channel %s: will retry: %s", name, outcome.reason)
            elif status == "failed":
                log.error("channel %s: failed: %s", name, outcome.reason)
            else:
                self.metrics.latency.labels(name).observe(max(0.0, (now - parse_iso(queued_at)).total_seconds()))
