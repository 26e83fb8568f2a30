"""Who is on call when. Each layer becomes recurring iCalendar events (a rotation: one event per member, repeating
every cycle; its restrictions: one event per window), which recurring-ical-events expands, so hand-offs follow the
local wall clock across DST changes as RFC 5545 says. What is left here is interval arithmetic: clipping to the
restriction windows, precedence (overrides, then the last layer with someone on duty) and merging."""

import functools
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby, pairwise
from operator import itemgetter
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from recurring_ical_events import CalendarQuery

from amcompanion.catalog.model import OVERRIDE_LAYER, Layer, Restriction, Schedule

LOOK_AHEAD = timedelta(days=366)  # how far next_handoffs and next_on_call look before they give up
_LOOK_AHEAD_SPANS = (timedelta(days=2), timedelta(days=14), timedelta(days=60), LOOK_AHEAD)
# Expansions reach this far past the asked span: floating and all-day events are placed in the schedule's zone
# only after the library has selected them, and a zone is at most 14 h from UTC.
_MARGIN = timedelta(days=2)
# Expansions start from a recent cycle (or week) instead of the hand-off, so the library does not walk years of
# history on every query; moving that start only every four weeks or so lets a cached calendar serve many queries.
_ANCHOR_SPAN = timedelta(weeks=4)
_ANCHOR_MONDAY = date(2000, 1, 3)
_WEEK = timedelta(weeks=1)
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_ICAL_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

_Piece = tuple[datetime, datetime, str]  # someone on duty from (UTC) to (UTC); the pieces of a layer may overlap
_Step = tuple[datetime, datetime, tuple[str, ...]]  # everyone on duty from to; a layer's steps never overlap


@dataclass(frozen=True)
class Shift:
    """`who` is on call from `start` to `end` (UTC), because of `layer` (a layer's name, or OVERRIDE_LAYER)."""

    who: tuple[str, ...]
    start: datetime
    end: datetime
    layer: str


@dataclass(frozen=True)
class _Directory:
    """How events name contacts: a summary by contact name, display name or email; an attendee by email."""

    by_label: dict[str, str]
    by_email: dict[str, str]

    @classmethod
    def of(cls, contacts: Mapping[str, Mapping[str, str]]) -> "_Directory":
        by_email = {}
        for name, contact in contacts.items():
            if contact.get("email"):
                by_email.setdefault(contact["email"].strip().casefold(), name)
        by_label = {name.casefold(): name for name in contacts}
        for name, contact in contacts.items():
            if contact.get("name"):
                by_label.setdefault(contact["name"].strip().casefold(), name)
        for email, name in by_email.items():
            by_label.setdefault(email, name)
        return cls(by_label, by_email)

    def named(self, event: icalendar.Component) -> tuple[str, ...]:
        """The contacts an event names, its summary's first."""
        names = []
        summary = str(event.get("SUMMARY", "")).strip().casefold()
        if summary in self.by_label:
            names.append(self.by_label[summary])
        attendees = event.get("ATTENDEE", [])
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            address = str(attendee).strip()
            if address[:7].casefold() == "mailto:" and address[7:].casefold() in self.by_email:
                names.append(self.by_email[address[7:].casefold()])
        return tuple(dict.fromkeys(names))


def timeline(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    calendars: Mapping[str, icalendar.Calendar],
    contacts: Mapping[str, Mapping[str, str]],
) -> list[Shift]:
    """Who is on call over [start, end): shifts in time order, none overlapping, gaps (nobody) left out, and
    neighbours with the same people from the same layer merged. `calendars` holds the iCal layers' calendars by
    layer name (one missing: that layer has nobody); they are taken as never changed once given."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    zone = ZoneInfo(schedule.time_zone)
    directory = _Directory.of(contacts)
    overrides = [(o.start.astimezone(UTC), o.end.astimezone(UTC), o.who) for o in schedule.overrides]
    ranked = [(OVERRIDE_LAYER, _steps(_clipped(overrides, start, end)))]  # the first that has someone wins
    for layer in reversed(schedule.layers):
        ranked.append((layer.name, _layer_steps(layer, zone, start, end, calendars, directory)))
    return _resolve(ranked)


def on_call(
    schedule: Schedule,
    at: datetime,
    calendars: Mapping[str, icalendar.Calendar],
    contacts: Mapping[str, Mapping[str, str]],
) -> tuple[str, ...]:
    """The contacts on call at `at` (usually one; none when no layer and no override has anyone)."""
    shifts = timeline(schedule, at, at + timedelta(microseconds=1), calendars, contacts)
    return shifts[0].who if shifts else ()


def next_handoffs(
    schedule: Schedule,
    at: datetime,
    count: int,
    calendars: Mapping[str, icalendar.Calendar],
    contacts: Mapping[str, Mapping[str, str]],
) -> list[Shift]:
    """The shift under way at `at` (if anyone is on call), from its real start, and the `count` shifts after it.
    It looks up to LOOK_AHEAD both ways: a shift reaching past that is cut there, and fewer may come back."""
    at = at.astimezone(UTC)
    for span in _LOOK_AHEAD_SPANS:
        shifts = [s for s in timeline(schedule, at - span, at + span, calendars, contacts) if s.end > at]
        under_way = bool(shifts) and shifts[0].start <= at
        wanted = shifts[: count + under_way]
        # the last one wanted is whole only if another follows it; the one under way only if it began in the span
        if len(shifts) > len(wanted) and not (under_way and shifts[0].start == at - span):
            return wanted
    return wanted


@dataclass(frozen=True)
class Duty:
    """Who is on call at a moment, until when (None: no hand-off within LOOK_AHEAD), and the shifts after."""

    current: Shift | None
    until: datetime | None
    upcoming: list[Shift]


def duty(
    schedule: Schedule,
    at: datetime,
    count: int,
    calendars: Mapping[str, icalendar.Calendar],
    contacts: Mapping[str, Mapping[str, str]],
) -> Duty:
    shifts = next_handoffs(schedule, at, count, calendars, contacts)
    current = shifts[0] if shifts and shifts[0].start <= at else None
    upcoming = shifts[1:] if current else shifts
    until = current.end if current and current.end < at.astimezone(UTC) + LOOK_AHEAD else None
    return Duty(current, until, upcoming[:count])


def next_on_call(
    schedule: Schedule,
    at: datetime,
    calendars: Mapping[str, icalendar.Calendar],
    contacts: Mapping[str, Mapping[str, str]],
) -> tuple[str, ...]:
    """The people of the first shift after `at` whose people are not those on call now: whom a hand-off brings
    next. Empty when the same people stay on (or nobody comes) within LOOK_AHEAD."""
    now = set(on_call(schedule, at, calendars, contacts))
    for span in _LOOK_AHEAD_SPANS:
        for shift in timeline(schedule, at, at + span, calendars, contacts):
            if set(shift.who) != now:
                return shift.who
    return ()


def everyone(
    schedule: Schedule,
    calendars: Mapping[str, icalendar.Calendar],
    contacts: Mapping[str, Mapping[str, str]],
) -> tuple[str, ...]:
    """Every contact the schedule may put on call: rotation members, override people, and whom the iCal layers'
    calendars name, in order of first mention."""
    names = list(schedule.members())
    directory = _Directory.of(contacts)
    for layer in schedule.layers:
        if layer.ical is not None and layer.name in calendars:
            names += [name for event in calendars[layer.name].walk("VEVENT") for name in directory.named(event)]
    return tuple(dict.fromkeys(names))


def unmatched_summaries(calendar: icalendar.Calendar, contacts: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The summaries of the events that name no known contact (which the schedule ignores), for a warning."""
    directory = _Directory.of(contacts)
    summaries = [str(e.get("SUMMARY", "")).strip() for e in calendar.walk("VEVENT") if not directory.named(e)]
    return list(dict.fromkeys(summaries))


def _layer_steps(
    layer: Layer,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    calendars: Mapping[str, icalendar.Calendar],
    directory: _Directory,
) -> list[_Step]:
    if layer.ical is not None:
        calendar = calendars.get(layer.name)
        pieces = [] if calendar is None else _ical_pieces(calendar, zone, directory, start, end)
    elif layer.members and layer.handoff is not None:
        pieces = _rotation_pieces(layer, zone, start, end)
    else:
        pieces = []
    steps = _steps(_clipped(pieces, start, end))
    if layer.restrictions and steps:
        return _within(steps, _steps(_clipped(_window_pieces(layer.restrictions, zone, start, end), start, end)))
    return steps


def _rotation_pieces(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> list[_Piece]:
    shift = timedelta(milliseconds=layer.shift_ms)
    frequency, unit = _frequency(shift)  # first: it refuses shifts that are no whole number of hours
    local_start = (start - _MARGIN).astimezone(zone).replace(tzinfo=None)
    first_cycle = _first_cycle(layer.handoff, len(layer.members) * shift, local_start)
    query = _rotation_calendar(layer, zone.key, first_cycle, frequency, len(layer.members) * shift // unit)
    return [_piece(event, str(event["SUMMARY"]), zone) for event in query.between(start - _MARGIN, end + _MARGIN)]


def _first_cycle(handoff: datetime, cycle: timedelta, local_start: datetime) -> int:
    """The cycle (every member's turn once) to expand from: at or before `local_start` (all on the wall clock)."""
    cycles = max(0, (local_start - handoff) // cycle)
    every = max(1, _ANCHOR_SPAN // cycle)
    return cycles // every * every


@functools.lru_cache(maxsize=256)
def _rotation_calendar(layer: Layer, zone_name: str, first_cycle: int, frequency: str, interval: int) -> CalendarQuery:
    """The layer from its `first_cycle` on: member i's shifts repeat every cycle from the hand-off's i-th shift."""
    assert layer.handoff is not None
    shift = timedelta(milliseconds=layer.shift_ms)
    first = layer.handoff + first_cycle * len(layer.members) * shift
    calendar = icalendar.Calendar()
    for turn, member in enumerate(layer.members):
        event = icalendar.Event()
        event.add("uid", f"{layer.name}-{turn}")
        event.add("summary", member)
        event.add("dtstart", (first + turn * shift).replace(tzinfo=ZoneInfo(zone_name)))
        event.add("duration", shift)
        event.add("rrule", {"freq": frequency, "interval": interval})
        calendar.add_component(event)
    return recurring_ical_events.of(calendar)


def _frequency(shift: timedelta) -> tuple[str, timedelta]:
    """The RRULE frequency for shifts this long: the largest unit that divides it (days and weeks are counted on
    the wall clock, which is what keeps a 09:00 hand-off at 09:00)."""
    for frequency, unit in (("WEEKLY", _WEEK), ("DAILY", _DAY), ("HOURLY", _HOUR)):
        if shift % unit == timedelta(0) and shift > timedelta(0):
            return frequency, unit
    raise ValueError(f"a rotation's shift must be a whole number of hours, not {shift}")


def _window_pieces(
    restrictions: tuple[Restriction, ...], zone: ZoneInfo, start: datetime, end: datetime
) -> list[_Piece]:
    local_day = (start - _MARGIN).astimezone(zone).date()
    anchor = _ANCHOR_MONDAY + (local_day - _ANCHOR_MONDAY) // _ANCHOR_SPAN * _ANCHOR_SPAN
    query = _window_calendar(restrictions, zone.key, anchor)
    return [_piece(event, "", zone) for event in query.between(start - _MARGIN, end + _MARGIN)]


@functools.lru_cache(maxsize=256)
def _window_calendar(restrictions: tuple[Restriction, ...], zone_name: str, anchor: date) -> CalendarQuery:
    """The restriction windows from the `anchor` day on, one recurring event each."""
    calendar = icalendar.Calendar()
    for number, restriction in enumerate(restrictions):
        opens = _clock(restriction.start) or time(0)
        length = _minutes(restriction.end, 24 * 60) - _minutes(restriction.start, 0)
        rule: dict[str, object] = {"freq": "DAILY"}
        first_day = anchor
        if restriction.weekdays:
            rule = {"freq": "WEEKLY", "byday": [_ICAL_DAYS[day] for day in sorted(restriction.weekdays)]}
            # DTSTART is an occurrence whatever BYDAY says (RFC 5545), so it must be one of the days
            first_day += timedelta(days=(min(restriction.weekdays) - anchor.weekday()) % 7)
        event = icalendar.Event()
        event.add("uid", f"window-{number}")
        event.add("dtstart", datetime.combine(first_day, opens, tzinfo=ZoneInfo(zone_name)))
        event.add("duration", timedelta(minutes=length if length > 0 else length + 24 * 60))
        event.add("rrule", rule)
        calendar.add_component(event)
    return recurring_ical_events.of(calendar)


def _clock(hhmm: str | None) -> time | None:
    return None if hhmm is None else time.fromisoformat(hhmm)


def _minutes(hhmm: str | None, missing: int) -> int:
    """Minutes after midnight; `missing` when the bound is not given (the day's start, or its end)."""
    clock = _clock(hhmm)
    return missing if clock is None else clock.hour * 60 + clock.minute


def _ical_pieces(
    calendar: icalendar.Calendar, zone: ZoneInfo, directory: _Directory, start: datetime, end: datetime
) -> list[_Piece]:
    return [
        _piece(event, name, zone)
        for event in expansion(calendar).between(start - _MARGIN, end + _MARGIN)
        for name in directory.named(event)
    ]


_ICAL_QUERIES: dict[int, CalendarQuery] = {}  # by id(calendar), each dropped when its calendar is


def expansion(calendar: icalendar.Calendar) -> CalendarQuery:
    """The expansion of a shared calendar, made once: it sorts out every event series up front, which costs as
    much as the calendar is long, and a calendar serves many queries until the next refresh replaces it (the
    first is `ical.parse`'s, which refuses a calendar that does not expand)."""
    key = id(calendar)
    if key not in _ICAL_QUERIES:
        _ICAL_QUERIES[key] = recurring_ical_events.of(calendar)
        weakref.finalize(calendar, _ICAL_QUERIES.pop, key, None)
    return _ICAL_QUERIES[key]


def _piece(event: icalendar.Component, who: str, zone: ZoneInfo) -> _Piece:
    return _utc(event["DTSTART"].dt, zone), _utc(event["DTEND"].dt, zone), who


def _utc(moment: date | datetime, zone: ZoneInfo) -> datetime:
    """An event's time in UTC: a date is the day's start in the schedule's zone, as is a floating time."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(0))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _clipped(pieces: Iterable[_Piece], start: datetime, end: datetime) -> list[_Piece]:
    clipped = ((max(s, start), min(e, end), who) for s, e, who in pieces)
    return [(s, e, who) for s, e, who in clipped if s < e]


def _steps(pieces: list[_Piece]) -> list[_Step]:
    """Possibly overlapping pieces as steps: spans that do not overlap, each with everyone on duty in it (in the
    order they came on), where someone is. Comings sort before goings at the same moment, so a person whose shift
    follows their own keeps their place."""
    changes = sorted([(s, -1, who) for s, _, who in pieces] + [(e, 1, who) for _, e, who in pieces])
    steps: list[_Step] = []
    on_duty: dict[str, int] = {}
    since: datetime | None = None
    for moment, group in groupby(changes, key=itemgetter(0)):
        if on_duty and since is not None:
            steps.append((since, moment, tuple(on_duty)))
        for _, going, who in group:
            count = on_duty.get(who, 0) - going
            if count:
                on_duty[who] = count
            else:
                del on_duty[who]
        since = moment
    return steps


def _within(steps: list[_Step], windows: list[_Step]) -> list[_Step]:
    """The parts of `steps` inside `windows` (both in time order, neither overlapping itself)."""
    kept: list[_Step] = []
    step_index = window_index = 0
    while step_index < len(steps) and window_index < len(windows):
        step_start, step_end, who = steps[step_index]
        window_start, window_end, _ = windows[window_index]
        if max(step_start, window_start) < min(step_end, window_end):
            kept.append((max(step_start, window_start), min(step_end, window_end), who))
        if step_end <= window_end:
            step_index += 1
        else:
            window_index += 1
    return kept


def _resolve(ranked: list[tuple[str, list[_Step]]]) -> list[Shift]:
    """One timeline from the sources' steps, highest precedence first: in each span between two of their edges,
    the first source with someone on duty decides."""
    edges = sorted({moment for _, steps in ranked for s, e, _ in steps for moment in (s, e)})
    positions = [0] * len(ranked)
    shifts: list[Shift] = []
    for span_start, span_end in pairwise(edges):
        for rank, (name, steps) in enumerate(ranked):
            position = positions[rank]
            while position < len(steps) and steps[position][1] <= span_start:
                position += 1
            positions[rank] = position
            if position < len(steps) and steps[position][0] <= span_start:
                who = steps[position][2]
                last = shifts[-1] if shifts else None
                if last is not None and last.end == span_start and last.who == who and last.layer == name:
                    shifts[-1] = Shift(who, last.start, span_end, name)
                else:
                    shifts.append(Shift(who, span_start, span_end, name))
                break
    return shifts
