"""Schedules as iCalendar: a feed of the on-call shifts that calendar apps subscribe to, and the reading of the
shared calendars that iCal layers take their shifts from."""

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import icalendar

from amcompanion.catalog.model import display_name
from amcompanion.schedules.oncall import Shift, expansion

PRODID = "-//amcompanion//schedules//EN"
_QUOTED_ERROR_CHARS = 200  # the parser's messages quote the offending line, which may be a whole HTML page


class ICalError(Exception):
    """Data that is not a usable iCalendar; the message starts with where it came from."""


def export(
    schedule_name: str,
    shifts: Iterable[Shift],
    contacts: Mapping[str, Mapping[str, str]],
    only: str | None = None,
    stamp: datetime | None = None,
) -> bytes:
    """The shifts as an iCalendar feed, each an event in UTC; `only` a contact name: their shifts alone (the
    per-person feed). A shift keeps its UID (from the schedule, its start and its people) from one export to the
    next, so a calendar app that refreshes the feed updates the event instead of adding another. `stamp` is the
    DTSTAMP of every event (now when None)."""
    stamp = (stamp or datetime.now(UTC)).astimezone(UTC)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    title = (
        f"On call: {schedule_name}" if only is None else f"On call: {display_name(contacts, only)} ({schedule_name})"
    )
    calendar.add("x-wr-calname", title)
    for shift in shifts:
        if only is not None and only not in shift.who:
            continue
        event = icalendar.Event()
        event.add("uid", _uid(schedule_name, shift))
        event.add("dtstamp", stamp)
        event.add("dtstart", shift.start.astimezone(UTC))
        event.add("dtend", shift.end.astimezone(UTC))
        people = ", ".join(display_name(contacts, name) for name in shift.who)
        event.add("summary", f"On call: {people} ({schedule_name})")
        calendar.add_component(event)
    return calendar.to_ical()


def parse(data: bytes, source: str) -> icalendar.Calendar:
    """A shared calendar read from `source` (a path or URL, for the message), checked to be a VCALENDAR whose
    events expand: one that would fail there is refused here, while the calendar read before is still at hand."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise ICalError(f"{source}: not iCalendar data: {str(exc)[:_QUOTED_ERROR_CHARS]}") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise ICalError(f"{source}: a {calendar.name}, not a VCALENDAR")
    try:
        expansion(calendar)  # made now, and kept for the queries to come
    except (ValueError, KeyError) as exc:  # a broken property, or an event without DTSTART (KeyError)
        raise ICalError(f"{source}: its events cannot be expanded: {type(exc).__name__}: {exc}") from None
    return calendar


def _uid(schedule_name: str, shift: Shift) -> str:
    identity = "\n".join([schedule_name, shift.start.astimezone(UTC).isoformat(), *shift.who])
    return f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}@amcompanion"
