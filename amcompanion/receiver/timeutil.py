"""Time for the receiver: one text format for every timestamp, and a clock tests can move by hand."""

import asyncio
import contextlib
import functools
from datetime import UTC, datetime, timedelta
from typing import Protocol


@functools.lru_cache(maxsize=256)  # one request formats the same moment for every row it writes
def iso(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and `Z`: sorts as text, reads in Datasette and SQLite's date functions."""
    # what strftime("%Y-%m-%dT%H:%M:%S.%fZ") writes, in a third less time
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def no_later_than(moment: datetime | None, latest: datetime) -> datetime:
    """`moment`, or `latest` when that comes first (or there is no moment)."""
    return latest if moment is None else min(moment, latest)


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, moment: datetime | None, wake: asyncio.Event) -> None:
        """Return at `moment` (never, if None) or as soon as `wake` is set, whichever comes first."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime | None, wake: asyncio.Event) -> None:
        timeout = None if moment is None else max(0.0, (moment - self.now()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)


class ManualClock:
    """Virtual time for tests: `advance()` moves it and wakes every sleeper whose moment has come."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    async def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._changed.set()
        self._changed = asyncio.Event()
        await asyncio.sleep(0)

    async def sleep_until(self, moment: datetime | None, wake: asyncio.Event) -> None:
        while moment is None or self._now < moment:
            changed = self._changed
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(changed.wait())]
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if wake.is_set():
                return
