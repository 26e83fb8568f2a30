"""Whom a schedule names at a moment, for the receiver: the pure computation (oncall.py) over the config's
schedules and the calendars the sources last read. A step that finds nobody on call pages everyone on the
schedule instead, and says so: a page must not vanish because a rotation has a gap."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from amcompanion.catalog.model import NotifyTarget, Person, Schedule
from amcompanion.schedules import oncall
from amcompanion.schedules.sources import CalendarSources


@dataclass(frozen=True)
class Named:
    """Whom a step's schedule target resolved to, as the history records it."""

    schedule: str
    who: str  # oncall, next_oncall or everyone
    people: tuple[str, ...]
    fallback: str | None = None  # why the people are not whom `who` asked for

    def recorded(self) -> dict:
        out: dict = {"schedule": self.schedule, "who": self.who, "people": list(self.people)}
        return {**out, "fallback": self.fallback} if self.fallback else out


class Roster:
    def __init__(
        self,
        schedules: Mapping[str, Schedule],
        contacts: Mapping[str, Mapping[str, str]],
        people: Mapping[str, Person],
        sources: CalendarSources | None = None,
    ):
        self.schedules = schedules
        self.contacts = contacts
        self.people = people
        self.sources = sources

    def calendars(self, schedule: str) -> dict:
        return self.sources.calendars(schedule) if self.sources is not None else {}

    def on_call(self, schedule: str, at: datetime) -> tuple[str, ...]:
        return oncall.on_call(self.schedules[schedule], at, self.calendars(schedule), self.contacts)

    def everyone(self, schedule: str) -> tuple[str, ...]:
        return oncall.everyone(self.schedules[schedule], self.calendars(schedule), self.contacts)

    def name(self, schedule: str, who: str, at: datetime) -> Named:
        """The people a step's `{who: schedule}` reaches at `at`; a schedule the config lost names nobody."""
        if schedule not in self.schedules:
            return Named(schedule, who, (), "the schedule is no longer in the receiver config")
        if who == "everyone":
            return Named(schedule, who, self.everyone(schedule))
        people = (
            self.on_call(schedule, at)
            if who == "oncall"
            else oncall.next_on_call(self.schedules[schedule], at, self.calendars(schedule), self.contacts)
        )
        if people:
            return Named(schedule, who, people)
        return Named(schedule, who, self.everyone(schedule), "nobody on call: everyone on the schedule is paged")

    def strangers(self) -> dict[str, list[str]]:
        """`schedule/layer` → the summaries of its calendar's events that name no contact (they page nobody)."""
        found = {}
        for name in self.schedules:
            for layer, calendar in self.calendars(name).items():
                unknown = oncall.unmatched_summaries(calendar, self.contacts)
                if unknown:
                    found[f"{name}/{layer}"] = unknown
        return found

    def reach(
        self, target: NotifyTarget, at: datetime, channels: Collection[str]
    ) -> tuple[list[tuple[str, str]], Named]:
        """The (channel, person) pages of a step's schedule target at `at`, on the step's channel or each person's
        own `notify` channels (those of `channels`), and whom it named. People a calendar names may have no channel
        (the catalog checks only its rotations'): when nobody named can be reached, everyone on the schedule is."""
        assert target.schedule is not None and target.who is not None
        found = self.name(target.schedule, target.who, at)
        pages = self._pages(found.people, target.channel, channels)
        if pages or not found.people:
            return pages, found
        everyone = self.everyone(target.schedule)
        why = f"{', '.join(found.people)} cannot be reached (no notify channels): everyone on the schedule is paged"
        return self._pages(everyone, target.channel, channels), Named(target.schedule, target.who, everyone, why)

    def _pages(self, people: tuple[str, ...], channel: str | None, known: Collection[str]) -> list[tuple[str, str]]:
        return [
            (name, person)
            for person in people
            for name in ([channel] if channel else self.people.get(person, Person()).notify)
            if name in known
        ]
