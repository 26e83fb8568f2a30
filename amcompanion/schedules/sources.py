"""The shared calendars of the iCal layers, read again as their `refresh` says. A read that fails keeps the
calendar read before, so an unreachable calendar server does not empty a schedule. Time comes from the caller
(the receiver's clock), never from sleeping here."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import icalendar

from amcompanion.catalog.model import ICalSource, Schedule
from amcompanion.schedules.ical import ICalError, parse

log = logging.getLogger("amcompanion.schedules")
FETCH_TIMEOUT_S = 10
_DUE_AT_ONCE = datetime.min.replace(tzinfo=UTC)  # the next refresh of a source never read


@dataclass
class _Source:
    schedule: str
    layer: str
    spec: ICalSource
    calendar: icalendar.Calendar | None = None  # the last good read
    read_at: datetime | None = None  # the last attempt, good or not

    def due_at(self) -> datetime:
        return _DUE_AT_ONCE if self.read_at is None else self.read_at + timedelta(milliseconds=self.spec.refresh_ms)


class CalendarSources:
    """Every iCal layer's calendar, by schedule and layer. `errors` holds why the last read of a source failed,
    by (schedule, layer), until a read succeeds: for status pages."""

    def __init__(self, schedules: Mapping[str, Schedule], base_dir: Path):
        """`base_dir`: what a relative `file` is relative to (the catalog's directory)."""
        self._base_dir = base_dir
        self._sources = [
            _Source(name, layer.name, layer.ical)
            for name, schedule in schedules.items()
            for layer in schedule.layers
            if layer.ical is not None
        ]
        self.errors: dict[tuple[str, str], str] = {}

    async def refresh(self, now: datetime) -> None:
        """Read each source whose refresh interval has passed since it was last read (all of them, the first
        time), together."""
        due = [source for source in self._sources if source.due_at() <= now]
        if not due:
            return
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as session:
            await asyncio.gather(*(self._read(source, session, now) for source in due))

    def calendars(self, schedule_name: str) -> dict[str, icalendar.Calendar]:
        """The schedule's calendars by layer name; a layer not read well yet is missing (it has nobody)."""
        return {
            source.layer: source.calendar
            for source in self._sources
            if source.schedule == schedule_name and source.calendar is not None
        }

    def next_refresh(self) -> datetime | None:
        """When `refresh` has something to read next (long past, before the first refresh); None without any
        iCal layer."""
        return min((source.due_at() for source in self._sources), default=None)

    async def _read(self, source: _Source, session: aiohttp.ClientSession, now: datetime) -> None:
        source.read_at = now
        key = (source.schedule, source.layer)
        try:
            source.calendar = await self._fetch(source.spec, session)
        except ICalError as exc:
            if key not in self.errors:  # once per failure streak: a dead server should not flood the log
                kept = "keeping the calendar read before" if source.calendar is not None else "the layer has nobody"
                log.warning("schedule %s, layer %s: %s; %s", source.schedule, source.layer, exc, kept)
            self.errors[key] = str(exc)
            return
        if self.errors.pop(key, None) is not None:
            log.info("schedule %s, layer %s: its calendar reads again", source.schedule, source.layer)

    async def _fetch(self, spec: ICalSource, session: aiohttp.ClientSession) -> icalendar.Calendar:
        if spec.file is not None:
            path = self._base_dir / spec.file
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError as exc:
                raise ICalError(f"{path}: {exc.strerror or exc}") from None
            return parse(data, str(path))
        assert spec.url is not None
        try:
            async with session.get(spec.url) as response:
                if response.status != 200:
                    raise ICalError(f"{spec.url}: HTTP {response.status} {response.reason or ''}".rstrip())
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = str(exc) or f"no answer within {FETCH_TIMEOUT_S} s"  # a timeout says nothing itself
            raise ICalError(f"{spec.url}: {type(exc).__name__}: {detail}") from None
        return parse(data, spec.url)
