"""`amcompanion oncall`: who is on call at a moment and the next hand-offs, from the catalog or a receiver config,
as text for a terminal or JSON for scripts."""

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from amcompanion.catalog.model import Schedule, display_name
from amcompanion.schedules import oncall
from amcompanion.schedules.roster import Roster
from amcompanion.schedules.sources import CalendarSources


def plan(
    schedules: Mapping[str, Schedule],
    contacts: Mapping[str, Mapping[str, str]],
    names: list[str],
    at: datetime,
    upcoming: int,
    base: Path,
) -> tuple[list[dict], dict[str, str], dict[str, list[str]]]:
    """Each schedule's people at `at` and its next `upcoming` shifts; the calendar sources that could not be read
    (`schedule/layer` → why); and the events of those read that name no contact (`schedule/layer` → summaries)."""
    sources = CalendarSources({name: schedules[name] for name in names}, base)
    asyncio.run(sources.refresh(at))
    strangers = Roster({name: schedules[name] for name in names}, contacts, {}, sources).strangers()
    out = []
    for name in names:
        schedule = schedules[name]
        calendars = sources.calendars(name)
        found = oncall.duty(schedule, at, upcoming, calendars, contacts)
        out.append(
            {
                "schedule": name,
                "time_zone": schedule.time_zone,
                "at": at.isoformat(),
                "on_call": list(found.current.who) if found.current else [],
                "until": found.until.isoformat() if found.until else None,
                "handoffs": [
                    {"people": list(s.who), "from": s.start.isoformat(), "to": s.end.isoformat(), "layer": s.layer}
                    for s in found.upcoming
                ],
            }
        )
    unread = {f"{schedule}/{layer}": why for (schedule, layer), why in sources.errors.items()}
    return out, unread, strangers


def text(found: list[dict], schedules: Mapping[str, Schedule], contacts: Mapping[str, Mapping[str, str]]) -> str:
    """For a terminal: times in each schedule's own zone, people by their display names."""

    def who(people: list[str]) -> str:
        return ", ".join(display_name(contacts, p) for p in people) or "nobody"

    lines = []
    for entry in found:
        zone = ZoneInfo(schedules[entry["schedule"]].time_zone)
        until = f" until {_local(entry['until'], zone)}" if entry["until"] else ""
        lines.append(f"{entry['schedule']} ({entry['time_zone']}): {who(entry['on_call'])}{until}")
        for shift in entry["handoffs"]:
            lines.append(f"  {_local(shift['from'], zone)} → {who(shift['people'])}  ({shift['layer']})")
    return "\n".join(lines)


def _local(stamp: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(stamp).astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def parse_moment(text: str | None) -> datetime:
    """RFC 3339 (an offset is required: a bare local time would be ambiguous across schedules)."""
    if not text:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"give the offset (Z or +01:00) in {text!r}")
    return moment.astimezone(UTC)


def as_json(found: list[dict], unread: dict[str, str], strangers: dict[str, list[str]]) -> str:
    return json.dumps({"schedules": found, "unread_sources": unread, "unknown_people": strangers}, indent=2)
