"""On-call schedules: the computation checked against a plain walk over the wall clock written here (not the
library-built recurrences under test), the iCal export and import, and the calendar sources' refresh."""

import asyncio
import bisect
import logging
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from aiohttp import web

from amcompanion.catalog.model import OVERRIDE_LAYER, ICalSource, Layer, Origin, Override, Restriction, Schedule
from amcompanion.schedules import ical, oncall
from amcompanion.schedules.oncall import Shift
from amcompanion.schedules.sources import CalendarSources

DATA = Path(__file__).resolve().parent / "data" / "schedules"
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR_MS = 3600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
CONTACTS = {
    "alice": {"name": "Alice Liddell", "email": "alice@example.com"},
    "bob": {"name": "Bob Builder", "email": "bob@example.com"},
    "carol": {"email": "carol@example.com"},
    "dave": {"email": "dave@example.com"},
    "erin": {"name": "Erin", "email": "erin@example.com"},
}


def schedule(zone: str, *layers: Layer, overrides: list[Override] | None = None) -> Schedule:
    return Schedule("team", Origin("schedules.yaml", ("schedules", "team")), zone, list(layers), overrides or [])


def rotation(name: str, members: tuple[str, ...], shift_ms: int, handoff: datetime, *restrictions) -> Layer:
    return Layer(name, members, shift_ms, handoff, tuple(restrictions))


def ical_layer(name: str = "calendar", file: str = "team.ics", url: str | None = None) -> Layer:
    return Layer(name, (), 0, None, (), ICalSource(None if url else file, url, 10 * 60_000))


def calendar(name: str) -> icalendar.Calendar:
    return ical.parse((DATA / name).read_bytes(), name)


def utc(zone: ZoneInfo, *fields: int) -> datetime:
    """A local wall-clock time as an instant in UTC (UTC, so that comparisons are by instant)."""
    return datetime(*fields, tzinfo=zone).astimezone(UTC)


def instants(start: datetime, end: datetime, step: timedelta = timedelta(minutes=30)) -> list[datetime]:
    return [start + n * step for n in range((end - start) // step)]


class Walk:
    """A rotation's hand-offs found by walking the wall clock one hour at a time from its first: after every
    `shift` of wall-clock hours the next member takes over. Each local time becomes an instant through zoneinfo."""

    def __init__(self, layer: Layer, zone: ZoneInfo, until: datetime):
        self.members = layer.members
        shift_hours = layer.shift_ms // HOUR_MS
        wall, hours = layer.handoff, 0
        self.handoffs = [wall.replace(tzinfo=zone).astimezone(UTC)]
        while self.handoffs[-1] <= until:
            wall += timedelta(hours=1)
            hours += 1
            if hours % shift_hours == 0:
                self.handoffs.append(wall.replace(tzinfo=zone).astimezone(UTC))

    def member(self, at: datetime) -> str | None:
        """Who is on duty at `at`; None before the first hand-off."""
        turn = bisect.bisect_right(self.handoffs, at) - 1
        assert turn < len(self.handoffs) - 1, "walk further"
        return None if turn < 0 else self.members[turn % len(self.members)]


def check_rotation(layer: Layer, zone: ZoneInfo, moments: list[datetime]) -> None:
    sched = schedule(zone.key, layer)
    walk = Walk(layer, zone, moments[-1])
    for at in moments:
        expected = walk.member(at)
        assert oncall.on_call(sched, at, {}, {}) == ((expected,) if expected else ()), at


# --- rotations ------------------------------------------------------------------------------------------------


WEEKLY = rotation("weekly", ("alice", "bob", "carol"), WEEK_MS, datetime(2026, 1, 5, 9, 0))  # a Monday


@pytest.mark.parametrize("around", [date(2026, 3, 29), date(2026, 10, 25)], ids=["spring", "autumn"])
def test_weekly_rotation_keeps_its_local_handoff_across_dst(around: date):
    start = datetime.combine(around - timedelta(days=15), clock(0), tzinfo=UTC)
    check_rotation(WEEKLY, BERLIN, instants(start, start + timedelta(days=30), timedelta(minutes=20)))
    shifts = oncall.timeline(schedule("Europe/Berlin", WEEKLY), start, start + timedelta(days=30), {}, {})
    whole = shifts[1:-1]  # the first and last are cut by the span
    assert {(s.start.astimezone(BERLIN).weekday(), s.start.astimezone(BERLIN).time()) for s in whole} == {(0, clock(9))}
    lengths = {s.start.astimezone(BERLIN).date(): (s.end - s.start) // timedelta(hours=1) for s in whole}
    dst_week = around - timedelta(days=6)  # the Monday before the Sunday of the change
    assert lengths.pop(dst_week) == (167 if around.month == 3 else 169)
    assert set(lengths.values()) == {168}


def test_weekly_rotation_before_its_handoff_has_nobody():
    sched = schedule("Europe/Berlin", WEEKLY)
    assert oncall.on_call(sched, utc(BERLIN, 2026, 1, 5, 8, 59), {}, {}) == ()
    assert oncall.on_call(sched, utc(BERLIN, 2026, 1, 5, 9, 0), {}, {}) == ("alice",)
    assert oncall.on_call(sched, utc(BERLIN, 2026, 1, 12, 9, 0), {}, {}) == ("bob",)


def test_twelve_hour_rotation_follows_the_wall_clock_across_dst():
    layer = rotation("halves", ("alice", "bob"), 12 * HOUR_MS, datetime(2026, 3, 1, 8, 0))
    start = datetime(2026, 3, 5, tzinfo=UTC)
    check_rotation(layer, NEW_YORK, instants(start, start + timedelta(days=7), timedelta(minutes=15)))
    shifts = oncall.timeline(schedule("America/New_York", layer), start, start + timedelta(days=7), {}, {})
    night = next(s for s in shifts if s.start == utc(NEW_YORK, 2026, 3, 7, 20, 0))
    assert night.end == utc(NEW_YORK, 2026, 3, 8, 8, 0)
    assert night.end - night.start == timedelta(hours=11)  # the clocks sprang forward in it
    assert {s.start.astimezone(NEW_YORK).time() for s in shifts[1:]} == {clock(8), clock(20)}


def test_daily_rotation_across_dst():
    layer = rotation("daily", ("alice", "bob", "carol"), DAY_MS, datetime(2026, 10, 20, 9, 0))
    start = datetime(2026, 10, 19, tzinfo=UTC)
    check_rotation(layer, BERLIN, instants(start, start + timedelta(days=12), timedelta(minutes=30)))


def test_a_handoff_years_ago_still_counts_turns_from_it():
    layer = rotation("old", ("alice", "bob", "carol", "dave", "erin"), 12 * HOUR_MS, datetime(2019, 6, 3, 21, 0))
    start = datetime(2026, 3, 27, tzinfo=UTC)
    moments = instants(start, start + timedelta(days=4), timedelta(hours=1, minutes=7))
    check_rotation(layer, BERLIN, moments)


def test_a_shift_that_is_not_whole_hours_is_refused():
    layer = rotation("odd", ("alice", "bob"), 90 * 60_000, datetime(2026, 1, 5, 9, 0))
    with pytest.raises(ValueError, match="whole number of hours"):
        oncall.on_call(schedule("Europe/Berlin", layer), utc(BERLIN, 2026, 2, 1, 12), {}, {})


# --- restrictions -----------------------------------------------------------------------------------------------


BASE = rotation("base", ("dave", "erin"), WEEK_MS, datetime(2026, 1, 5, 9, 0))


def test_business_hours_layer_over_a_base_layer():
    hours = Restriction((0, 1, 2, 3, 4), "09:00", "17:00")
    business = rotation("business", ("alice", "bob"), DAY_MS, datetime(2026, 1, 5, 9, 0), hours)
    sched = schedule("Europe/Berlin", BASE, business)
    start = datetime(2026, 3, 20, tzinfo=UTC)
    walks = {layer: Walk(layer, BERLIN, start + timedelta(days=16)) for layer in (BASE, business)}
    for at in instants(start, start + timedelta(days=16)):
        local = at.astimezone(BERLIN)
        inside = local.weekday() < 5 and clock(9) <= local.time() < clock(17)
        assert oncall.on_call(sched, at, {}, {}) == (walks[business if inside else BASE].member(at),), local


def test_overnight_restriction_runs_past_midnight_and_across_dst():
    nights = Restriction((4, 5), "22:00", "06:00")  # Friday and Saturday nights
    night = rotation("night", ("carol",), WEEK_MS, datetime(2026, 1, 5, 9, 0), nights)
    sched = schedule("Europe/Berlin", BASE, night)
    start = datetime(2026, 10, 15, tzinfo=UTC)
    base = Walk(BASE, BERLIN, start + timedelta(days=14))
    for at in instants(start, start + timedelta(days=14), timedelta(minutes=20)):
        local = at.astimezone(BERLIN)
        yesterday = (local.date() - timedelta(days=1)).weekday()
        inside = (local.weekday() in (4, 5) and local.time() >= clock(22)) or (
            yesterday in (4, 5) and local.time() < clock(6)
        )
        expected = ("carol",) if inside else (base.member(at),)
        assert oncall.on_call(sched, at, {}, {}) == expected, local
    shifts = oncall.timeline(sched, start, start + timedelta(days=14), {}, {})
    long_night = next(s for s in shifts if s.start == utc(BERLIN, 2026, 10, 24, 22, 0))
    assert (long_night.who, long_night.end) == (("carol",), utc(BERLIN, 2026, 10, 25, 6, 0))
    assert long_night.end - long_night.start == timedelta(hours=9)


def test_whole_day_restriction_and_gaps_left_out():
    weekend = rotation("weekend", ("bob",), WEEK_MS, datetime(2026, 1, 5, 9, 0), Restriction((5, 6), None, None))
    sched = schedule("Europe/Berlin", weekend)
    shifts = oncall.timeline(sched, utc(BERLIN, 2026, 3, 23), utc(BERLIN, 2026, 4, 6), {}, {})
    assert shifts == [
        Shift(("bob",), utc(BERLIN, 2026, 3, 28), utc(BERLIN, 2026, 3, 30), "weekend"),
        Shift(("bob",), utc(BERLIN, 2026, 4, 4), utc(BERLIN, 2026, 4, 6), "weekend"),
    ]
    assert shifts[0].end - shifts[0].start == timedelta(hours=47)  # the weekend the clocks sprang forward


def test_adjacent_pieces_of_the_same_people_and_layer_merge():
    late, early = Restriction((0,), "22:00", None), Restriction((1,), None, "06:00")
    split = rotation("split", ("carol",), WEEK_MS, datetime(2026, 1, 5, 9, 0), late, early)
    doubled = rotation("doubled", ("alice", "alice", "bob"), DAY_MS, datetime(2026, 3, 2, 9, 0))
    start, end = utc(BERLIN, 2026, 3, 2, 9), utc(BERLIN, 2026, 3, 5, 9)
    assert oncall.timeline(schedule("Europe/Berlin", split), start, end, {}, {}) == [
        Shift(("carol",), utc(BERLIN, 2026, 3, 2, 22), utc(BERLIN, 2026, 3, 3, 6), "split")
    ]
    assert oncall.timeline(schedule("Europe/Berlin", doubled), start, end, {}, {}) == [
        Shift(("alice",), start, utc(BERLIN, 2026, 3, 4, 9), "doubled"),
        Shift(("bob",), utc(BERLIN, 2026, 3, 4, 9), end, "doubled"),
    ]


# --- overrides and precedence ---------------------------------------------------------------------------------


def test_overrides_beat_every_layer():
    top = rotation("top", ("carol",), WEEK_MS, datetime(2026, 1, 5, 9, 0), Restriction((), "08:00", "20:00"))
    covering = Override("erin", utc(BERLIN, 2026, 3, 10, 7), utc(BERLIN, 2026, 3, 10, 12))
    sched = schedule("Europe/Berlin", WEEKLY, top, overrides=[covering])
    shifts = oncall.timeline(sched, utc(BERLIN, 2026, 3, 10, 0), utc(BERLIN, 2026, 3, 11, 0), {}, {})
    assert shifts == [
        Shift(("alice",), utc(BERLIN, 2026, 3, 10, 0), utc(BERLIN, 2026, 3, 10, 7), "weekly"),
        Shift(("erin",), utc(BERLIN, 2026, 3, 10, 7), utc(BERLIN, 2026, 3, 10, 12), OVERRIDE_LAYER),
        Shift(("carol",), utc(BERLIN, 2026, 3, 10, 12), utc(BERLIN, 2026, 3, 10, 20), "top"),
        Shift(("alice",), utc(BERLIN, 2026, 3, 10, 20), utc(BERLIN, 2026, 3, 11, 0), "weekly"),
    ]
    assert oncall.on_call(sched, utc(BERLIN, 2026, 3, 10, 11, 59), {}, {}) == ("erin",)


def test_an_empty_schedule_has_nobody():
    sched = schedule("Europe/Berlin")
    at = utc(BERLIN, 2026, 3, 10, 12)
    assert oncall.timeline(sched, at, at + timedelta(days=3), {}, {}) == []
    assert oncall.on_call(sched, at, {}, {}) == ()
    assert oncall.next_handoffs(sched, at, 3, {}, {}) == []
    assert oncall.next_on_call(sched, at, {}, {}) == ()


# --- what comes next ------------------------------------------------------------------------------------------


def test_next_handoffs_gives_the_shift_under_way_from_its_start_and_the_next_ones():
    at = utc(BERLIN, 2026, 3, 18, 12)  # Wednesday, in bob's week
    handoffs = oncall.next_handoffs(schedule("Europe/Berlin", WEEKLY), at, 3, {}, {})
    mondays = [utc(BERLIN, 2026, 3, 16, 9), utc(BERLIN, 2026, 3, 23, 9), utc(BERLIN, 2026, 3, 30, 9)]
    mondays += [utc(BERLIN, 2026, 4, 6, 9), utc(BERLIN, 2026, 4, 13, 9)]
    walk = Walk(WEEKLY, BERLIN, mondays[-1])
    expected = [(walk.member(monday),) for monday in mondays[:4]]
    assert [s.who for s in handoffs] == expected == [("bob",), ("carol",), ("alice",), ("bob",)]
    assert [(s.start, s.end) for s in handoffs] == list(pairwise(mondays))


def test_next_handoffs_in_a_gap_starts_with_the_next_shift():
    hours = Restriction((0, 1, 2, 3, 4), "09:00", "17:00")
    sched = schedule("Europe/Berlin", rotation("business", ("alice", "bob"), DAY_MS, datetime(2026, 1, 5, 9), hours))
    handoffs = oncall.next_handoffs(sched, utc(BERLIN, 2026, 3, 21, 12), 2, {}, {})  # a Saturday
    assert [(s.who, s.start, s.end) for s in handoffs] == [
        (("bob",), utc(BERLIN, 2026, 3, 23, 9), utc(BERLIN, 2026, 3, 23, 17)),
        (("alice",), utc(BERLIN, 2026, 3, 24, 9), utc(BERLIN, 2026, 3, 24, 17)),
    ]


def test_next_handoffs_stops_at_the_look_ahead():
    lone = Override("erin", utc(BERLIN, 2026, 3, 20, 9), utc(BERLIN, 2026, 3, 21, 9))
    handoffs = oncall.next_handoffs(schedule("Europe/Berlin", overrides=[lone]), utc(BERLIN, 2026, 3, 1), 3, {}, {})
    assert handoffs == [Shift(("erin",), lone.start, lone.end, OVERRIDE_LAYER)]


def test_next_on_call():
    sched = schedule("Europe/Berlin", WEEKLY)
    assert oncall.next_on_call(sched, utc(BERLIN, 2026, 3, 18, 12), {}, {}) == ("carol",)
    assert oncall.next_on_call(sched, utc(BERLIN, 2026, 1, 1), {}, {}) == ("alice",)  # nobody yet, then alice
    covering = Override("alice", utc(BERLIN, 2026, 3, 18, 0), utc(BERLIN, 2026, 3, 25, 0))
    covered = schedule("Europe/Berlin", WEEKLY, overrides=[covering])
    assert oncall.on_call(covered, utc(BERLIN, 2026, 3, 18, 12), {}, {}) == ("alice",)
    # the override runs into carol's week: she is next, not bob, whose week the override covers
    assert oncall.next_on_call(covered, utc(BERLIN, 2026, 3, 18, 12), {}, {}) == ("carol",)
    alone = schedule("Europe/Berlin", rotation("alone", ("dave",), WEEK_MS, datetime(2026, 1, 5, 9)))
    assert oncall.next_on_call(alone, utc(BERLIN, 2026, 3, 18, 12), {}, {}) == ()


def test_on_call_is_fast():
    five = rotation("weekly", ("alice", "bob", "carol", "dave", "erin"), WEEK_MS, datetime(2024, 1, 1, 9))
    hours = Restriction((0, 1, 2, 3, 4), "09:00", "17:00")
    sched = schedule("Europe/Berlin", five, rotation("business", ("bob", "alice"), DAY_MS, datetime(2024, 1, 1), hours))
    moments = instants(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), timedelta(hours=7))
    oncall.on_call(sched, moments[0], {}, {})
    began = time.perf_counter()
    for at in moments:
        oncall.on_call(sched, at, {}, {})
    assert (time.perf_counter() - began) / len(moments) < 0.010


# --- iCal layers --------------------------------------------------------------------------------------------------


def listed_duty(at: datetime) -> tuple[str, ...]:
    """Who tests/data/schedules/team.ics has on call, its recurrences written out by hand."""
    days = [date(2026, 3, 2) + timedelta(days=n) for n in range(38)]
    pieces = [
        ("alice", datetime.combine(d, clock(9), BERLIN), datetime.combine(d, clock(17), BERLIN))
        for d in days
        if d.weekday() in (0, 2) and d not in (date(2026, 3, 11), date(2026, 3, 16))  # an EXDATE; a moved one
    ]
    pieces += [
        ("bob", datetime(2026, 3, 16, 12, tzinfo=BERLIN), datetime(2026, 3, 16, 20, tzinfo=BERLIN)),  # moved
        ("bob", datetime(2026, 3, 2, 13, tzinfo=BERLIN), datetime(2026, 3, 2, 15, tzinfo=BERLIN)),  # by email
        ("carol", datetime(2026, 3, 4, 17, tzinfo=BERLIN), datetime(2026, 3, 5, 9, tzinfo=BERLIN)),  # attendee
    ]
    return tuple(sorted({who for who, start, end in pieces if start <= at < end}))


def test_ical_layer_expands_recurrences_exceptions_and_names():
    sched = schedule("Europe/Berlin", ical_layer())
    calendars = {"calendar": calendar("team.ics")}
    for at in instants(utc(BERLIN, 2026, 3, 1), utc(BERLIN, 2026, 4, 12), timedelta(minutes=30)):
        assert tuple(sorted(oncall.on_call(sched, at, calendars, CONTACTS))) == listed_duty(at), at
    day = oncall.timeline(sched, utc(BERLIN, 2026, 3, 2), utc(BERLIN, 2026, 3, 3), calendars, CONTACTS)
    assert [(s.who, s.start.astimezone(BERLIN).hour, s.end.astimezone(BERLIN).hour) for s in day] == [
        (("alice",), 9, 13),
        (("alice", "bob"), 13, 15),
        (("alice",), 15, 17),
    ]


def test_ical_layer_named_by_attendees_and_all_day_events():
    sched = schedule("Europe/Berlin", BASE, ical_layer(file="attendees.ics"))
    calendars = {"calendar": calendar("attendees.ics")}
    shifts = oncall.timeline(sched, utc(BERLIN, 2026, 3, 10), utc(BERLIN, 2026, 3, 13), calendars, CONTACTS)
    assert [(s.who, s.start, s.end, s.layer) for s in shifts] == [
        (("erin",), utc(BERLIN, 2026, 3, 10), datetime(2026, 3, 10, 8, tzinfo=UTC), "base"),
        (("dave", "erin"), datetime(2026, 3, 10, 8, tzinfo=UTC), datetime(2026, 3, 10, 16, tzinfo=UTC), "calendar"),
        (("erin",), datetime(2026, 3, 10, 16, tzinfo=UTC), utc(BERLIN, 2026, 3, 11), "base"),
        (("dave",), utc(BERLIN, 2026, 3, 11), utc(BERLIN, 2026, 3, 12), "calendar"),  # all day, in Berlin
        (("erin",), utc(BERLIN, 2026, 3, 12), utc(BERLIN, 2026, 3, 13), "base"),
    ]


def test_an_ical_layer_without_its_calendar_lets_the_layer_below_show():
    sched = schedule("Europe/Berlin", BASE, ical_layer())
    assert oncall.on_call(sched, utc(BERLIN, 2026, 3, 2, 10), {}, CONTACTS) == ("dave",)
    assert oncall.on_call(sched, utc(BERLIN, 2026, 3, 2, 10), {"calendar": calendar("team.ics")}, CONTACTS) == (
        "alice",
    )


def test_everyone_and_unmatched_summaries():
    sched = schedule(
        "Europe/Berlin",
        rotation("r", ("dave",), WEEK_MS, datetime(2026, 1, 5, 9)),
        ical_layer(),
        overrides=[Override("erin", utc(BERLIN, 2026, 3, 1), utc(BERLIN, 2026, 3, 2))],
    )
    calendars = {"calendar": calendar("team.ics")}
    assert oncall.everyone(sched, calendars, CONTACTS) == ("dave", "erin", "alice", "bob", "carol")
    assert oncall.everyone(sched, {}, CONTACTS) == ("dave", "erin")
    assert oncall.unmatched_summaries(calendars["calendar"], CONTACTS) == ["Team offsite"]
    assert oncall.unmatched_summaries(calendar("attendees.ics"), CONTACTS) == []


# --- export and parse --------------------------------------------------------------------------------------------


def exported_events(data: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(data).walk("VEVENT"))


def test_export_round_trips_the_timeline():
    covering = Override("carol", utc(BERLIN, 2026, 3, 18, 7), utc(BERLIN, 2026, 3, 18, 12))
    sched = schedule("Europe/Berlin", WEEKLY, ical_layer(), overrides=[covering])
    calendars = {"calendar": calendar("team.ics")}
    shifts = oncall.timeline(sched, utc(BERLIN, 2026, 3, 1), utc(BERLIN, 2026, 3, 29), calendars, CONTACTS)
    data = ical.export("team", shifts, CONTACTS, stamp=datetime(2026, 3, 1, tzinfo=UTC))
    parsed = icalendar.Calendar.from_ical(data)
    assert (str(parsed["PRODID"]), str(parsed["X-WR-CALNAME"])) == (ical.PRODID, "On call: team")
    names = {"alice": "Alice Liddell", "bob": "Bob Builder", "carol": "carol"}
    assert [(e["DTSTART"].dt, e["DTEND"].dt, str(e["SUMMARY"])) for e in parsed.walk("VEVENT")] == [
        (s.start, s.end, f"On call: {', '.join(names[n] for n in s.who)} (team)") for s in shifts
    ]
    assert b"DTSTART:20260302T120000Z" in data  # UTC, as the feed promises
    assert {e["DTSTAMP"].dt for e in parsed.walk("VEVENT")} == {datetime(2026, 3, 1, tzinfo=UTC)}
    assert ical.parse(data, "export").walk("VEVENT")


def test_export_per_person_feed_and_stable_uids():
    shifts = oncall.timeline(
        schedule("Europe/Berlin", WEEKLY), utc(BERLIN, 2026, 3, 2, 9), utc(BERLIN, 2026, 5, 4), {}, {}
    )
    bobs = exported_events(ical.export("team", shifts, CONTACTS, only="bob"))
    assert [(e["DTSTART"].dt, e["DTEND"].dt) for e in bobs] == [(s.start, s.end) for s in shifts if s.who == ("bob",)]
    assert len(bobs) == 3
    assert {str(e["SUMMARY"]) for e in bobs} == {"On call: Bob Builder (team)"}
    assert b"X-WR-CALNAME:On call: Bob Builder (team)" in ical.export("team", shifts, CONTACTS, only="bob")
    first = [str(e["UID"]) for e in exported_events(ical.export("team", shifts, CONTACTS))]
    later = ical.export("team", shifts, CONTACTS, stamp=datetime(2026, 4, 1, tzinfo=UTC))
    assert [str(e["UID"]) for e in exported_events(later)] == first
    assert len(set(first)) == len(shifts)
    other = [str(e["UID"]) for e in exported_events(ical.export("ops", shifts, CONTACTS))]
    assert not set(other) & set(first)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><body>Internal Server Error</body></html>", "feed.ics: not iCalendar data"),
        (b"", "feed.ics: not iCalendar data"),
        (b"BEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n", "feed.ics: a VEVENT, not a VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "cannot be expanded"),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260301T090000Z\r\nRRULE:FREQ=SOMETIMES\r\n"
            b"END:VEVENT\r\nEND:VCALENDAR\r\n",
            "cannot be expanded",
        ),
    ],
)
def test_parse_refuses_what_is_not_icalendar(data: bytes, message: str):
    with pytest.raises(ical.ICalError, match=message):
        ical.parse(data, "feed.ics")


# --- calendar sources -----------------------------------------------------------------------------------------


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REFRESH = timedelta(minutes=10)
MONDAY_TEN = utc(BERLIN, 2026, 3, 2, 10)


async def refreshed(sources: CalendarSources, now: datetime) -> None:
    async with asyncio.timeout(10):
        await sources.refresh(now)


async def test_file_source_is_read_again_only_when_its_refresh_has_passed(tmp_path: Path):
    feed = tmp_path / "feeds" / "team.ics"
    feed.parent.mkdir()
    feed.write_bytes((DATA / "team.ics").read_bytes())
    sched = schedule("Europe/Berlin", BASE, ical_layer(file="feeds/team.ics"))
    sources = CalendarSources({"team": sched}, tmp_path)
    assert sources.next_refresh() <= T0
    assert sources.calendars("team") == {}
    await refreshed(sources, T0)
    assert sources.next_refresh() == T0 + REFRESH
    assert oncall.on_call(sched, MONDAY_TEN, sources.calendars("team"), CONTACTS) == ("alice",)
    feed.write_bytes((DATA / "team.ics").read_bytes().replace(b"SUMMARY:Alice Liddell", b"SUMMARY:Carol"))
    await refreshed(sources, T0 + REFRESH - timedelta(seconds=1))
    assert oncall.on_call(sched, MONDAY_TEN, sources.calendars("team"), CONTACTS) == ("alice",)
    await refreshed(sources, T0 + REFRESH)
    assert oncall.on_call(sched, MONDAY_TEN, sources.calendars("team"), CONTACTS) == ("carol",)
    assert sources.errors == {}


async def test_missing_file_is_an_error_and_the_layer_has_nobody(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    sched = schedule("Europe/Berlin", BASE, ical_layer(file="absent.ics"))
    sources = CalendarSources({"team": sched, "empty": schedule("UTC")}, tmp_path)
    with caplog.at_level(logging.WARNING, "amcompanion.schedules"):
        await refreshed(sources, T0)
    assert sources.calendars("team") == {}
    assert "No such file" in sources.errors[("team", "calendar")]
    assert "the layer has nobody" in caplog.text
    assert oncall.on_call(sched, MONDAY_TEN, sources.calendars("team"), CONTACTS) == ("dave",)
    assert CalendarSources({"empty": schedule("UTC")}, tmp_path).next_refresh() is None


async def test_url_source_keeps_its_last_good_calendar_when_the_server_fails(
    aiohttp_server, caplog: pytest.LogCaptureFixture
):
    served = {"status": 200, "body": (DATA / "team.ics").read_bytes()}
    requests = []

    async def feed(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.Response(status=served["status"], body=served["body"], content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/team.ics", feed)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = str(server.make_url("/team.ics"))
    sched = schedule("Europe/Berlin", BASE, ical_layer(url=url))
    sources = CalendarSources({"team": sched}, Path("."))
    await refreshed(sources, T0)
    good = sources.calendars("team")["calendar"]
    assert oncall.on_call(sched, MONDAY_TEN, {"calendar": good}, CONTACTS) == ("alice",)

    served["status"] = 500
    with caplog.at_level(logging.WARNING, "amcompanion.schedules"):
        await refreshed(sources, T0 + REFRESH)
        assert sources.calendars("team") == {"calendar": good}
        assert sources.errors == {("team", "calendar"): f"{url}: HTTP 500 Internal Server Error"}
        served.update(status=200, body=b"<html>maintenance</html>")
        await refreshed(sources, T0 + 2 * REFRESH)
        assert sources.calendars("team") == {"calendar": good}
        assert sources.errors[("team", "calendar")].startswith(f"{url}: not iCalendar data")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one per failure streak
    assert "HTTP 500" in warnings[0]
    assert "keeping the calendar read before" in warnings[0]

    served["body"] = (DATA / "team.ics").read_bytes().replace(b"SUMMARY:Alice Liddell", b"SUMMARY:dave")
    await refreshed(sources, T0 + 3 * REFRESH)
    assert sources.errors == {}
    assert oncall.on_call(sched, MONDAY_TEN, sources.calendars("team"), CONTACTS) == ("dave",)
    assert len(requests) == 4
