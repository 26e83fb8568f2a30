"""How the history's figures read to a person: durations in s, min, h and d as they grow, times in the display time
zone. One place, so that the pages, their SQL functions (`duration_words`, `local_time`) and the report agree."""

import re
from datetime import UTC, datetime, tzinfo

# What the receiver writes (receiver/timeutil.iso) and what the pages' SQL makes of it (an hour: ...T12:00Z)
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")


def duration_words(seconds: float | None) -> str:
    """45 s, 12 min, 3 h 24 min, 8 d 13 h; '-' for none. Two units at most: a reader wants the size, not a clock."""
    if seconds is None:
        return "-"
    if seconds < 59.5:
        return f"{seconds:.1f} s" if seconds < 9.95 and round(seconds, 1) != round(seconds) else f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def moment(text: str) -> datetime:
    """A stored time (ISO 8601, `Z` or an offset) as an aware datetime."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local_time(text: str, zone: tzinfo) -> str:
    """A stored time in `zone`, to the second (to the minute when it has no seconds), with the zone's abbreviation:
    2026-11-23 20:00:05 CST."""
    local = moment(text).astimezone(zone)
    clock = "%H:%M" if local.second == 0 and local.microsecond == 0 else "%H:%M:%S"
    return local.strftime(f"%Y-%m-%d {clock} %Z")


def local_iso(text: str, zone: tzinfo) -> str:
    """A stored time as the wall clock in `zone`, without an offset: a browser's chart reads it as it is written."""
    return moment(text).astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
