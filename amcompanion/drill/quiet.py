"""Whether Alertmanager mutes a route at a moment: its time intervals evaluated as Alertmanager's `timeinterval`
package does (times as [start, end) minutes of the day; weekdays, days of the month, months and years as
inclusive ranges; a negative day of the month counts from the month's end; all in the interval's location).

A drill must not wake people in their quiet hours, and one sent into a muted route would never arrive: the
drill looks here first. The intervals are the compiled ones (an overnight window already split in two)."""

import calendar
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from amcompanion.catalog.reader import MONTHS, WEEKDAYS


def _bounds(spec: str, names: Sequence[str] = (), first_number: int = 0) -> tuple[int, int]:
    """A range's ends as numbers: names by their place in `names` (from `first_number`), numbers as written."""
    first, _, last = str(spec).lower().partition(":")

    def number(part: str) -> int:
        return names.index(part) + first_number if part in names else int(part)

    return number(first), number(last or first)


def _minutes(clock: str) -> int:
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes)


def _day_of_month(day: int, days_in_month: int) -> int:
    return days_in_month + day + 1 if day < 0 else day


def contains(interval: Mapping[str, object], moment: datetime) -> bool:
    """Whether one time interval (Alertmanager's form) holds `moment` (an aware datetime)."""
    location = interval.get("location")
    local = moment.astimezone(ZoneInfo(str(location)) if location and location != "Local" else moment.tzinfo)
    times = interval.get("times") or []
    if times:
        minute = local.hour * 60 + local.minute
        if not any(_minutes(t["start_time"]) <= minute < _minutes(t["end_time"]) for t in times):  # type: ignore[index]
            return False
    weekday = (local.weekday() + 1) % 7  # Python's Monday 0 → Sunday 0
    checks: list[tuple[str, int, Sequence[str], int]] = [
        ("weekdays", weekday, WEEKDAYS, 0),
        ("months", local.month, MONTHS, 1),
        ("years", local.year, (), 0),
    ]
    for key, value, names, first_number in checks:
        specs = interval.get(key) or []
        spans = [_bounds(s, names, first_number) for s in specs]  # type: ignore[union-attr]
        if spans and not any(lo <= value <= hi for lo, hi in spans):
            return False
    days = interval.get("days_of_month") or []
    if days:
        in_month = calendar.monthrange(local.year, local.month)[1]
        spans = [_bounds(s) for s in days]  # type: ignore[union-attr]
        if not any(_day_of_month(lo, in_month) <= local.day <= _day_of_month(hi, in_month) for lo, hi in spans):
            return False
    return True


def muted_by(route: Mapping[str, object], intervals: Mapping[str, list[dict]], moment: datetime) -> str | None:
    """The name of the quiet hours that mute `route` (a node of the compiled tree) at `moment`: one of its
    `mute_time_intervals` that holds, or its `active_time_intervals` when none holds; None when it is live."""
    for name in route.get("mute_time_intervals") or []:  # type: ignore[union-attr]
        if any(contains(part, moment) for part in intervals.get(str(name), [])):
            return str(name)
    active = [str(name) for name in route.get("active_time_intervals") or []]  # type: ignore[union-attr]
    if active and not any(contains(part, moment) for name in active for part in intervals.get(name, [])):
        return f"outside {', '.join(active)}"
    return None
