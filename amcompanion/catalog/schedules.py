"""Reading the catalog's on-call parts: `schedules:`, the person fields of contacts (role, token, preferred
channels), steps that notify a schedule, and the receiver's trusted proxies. Errors go to the reader's
diagnostics like every other field's, so they come out as `file:line:col: field: message`."""

import calendar
import ipaddress
import itertools
import zoneinfo
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from amcompanion.catalog import shapes
from amcompanion.catalog.diagnostics import KeyPath
from amcompanion.catalog.model import (
    OVERRIDE_LAYER,
    ROLES,
    SCHEDULE_TARGETS,
    ICalSource,
    Layer,
    NotifyTarget,
    Origin,
    Override,
    Person,
    Restriction,
    Schedule,
)
from amcompanion.wording import did_you_mean

if TYPE_CHECKING:
    from amcompanion.catalog.reader import CatalogReader, FileReader

PERSON_FIELDS = ("notify", "role", "token_sha256", "token_env")  # contact fields that are not addresses
DEFAULT_ICAL_REFRESH_MS = 10 * 60_000
DAY_NAMES = tuple(name.lower() for name in calendar.day_name)  # monday first, as datetime.weekday() counts
HOUR_MS = 3_600_000


def read_person(reader: "CatalogReader", r: "FileReader", fields: dict, path: KeyPath) -> Person | None:
    """The contact's role, token and preferred channels; None when it sets none of them."""
    if not any(key in fields for key in PERSON_FIELDS):
        return None
    role = r.string(fields["role"], (*path, "role")) if "role" in fields else "responder"
    if role is not None and role not in ROLES:
        r.error(
            (*path, "role"),
            f'unknown role "{role}"{did_you_mean(role, ROLES) or "; expected one of: " + ", ".join(ROLES)}',
        )
    notify = r.string_list(fields.get("notify", []), (*path, "notify"))
    for i, channel in enumerate(notify):
        reader.refer(r, "channel", channel, (*path, "notify", i))
    digest = r.string(fields["token_sha256"], (*path, "token_sha256")) if "token_sha256" in fields else None
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        r.error(
            (*path, "token_sha256"),
            "expected 64 lower-case hex digits, the SHA-256 of the token (`amcompanion token` prints one)",
        )
        digest = None
    variable = r.string(fields["token_env"], (*path, "token_env")) if "token_env" in fields else None
    if digest and variable:
        r.error((*path, "token_env"), "give the token one way: token_sha256 or token_env, not both")
    return Person(role if role in ROLES else "responder", tuple(notify), digest, variable)


def read_networks(r: "FileReader", value: object, path: KeyPath) -> list[str]:
    networks = []
    for i, text in enumerate(r.string_list(value, path)):
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            r.error((*path, i), f'"{text}" is not an IP address or network such as 10.0.0.0/8 or ::1')
    return networks


def read_schedule_target(reader: "CatalogReader", r: "FileReader", target: dict, path: KeyPath) -> NotifyTarget | None:
    """`{oncall: SCHEDULE}`, `{next_oncall: ...}` or `{everyone: ...}`, with an optional `channel`."""
    named = [key for key in SCHEDULE_TARGETS if key in target]
    if len(named) > 1:
        r.error(
            path,
            f"a target names one schedule, by one of {', '.join(SCHEDULE_TARGETS)}; this one has {', '.join(named)}",
        )
        return None
    if "to" in target:
        r.error((*path, "to"), f"`to` does not go with `{named[0]}`: the schedule says whom to reach")
        return None
    schedule = r.string(target[named[0]], (*path, named[0]))
    if not schedule:
        return None
    reader.refer(r, "schedule", schedule, (*path, named[0]))
    channel = r.string(target["channel"], (*path, "channel")) if "channel" in target else None
    if channel:
        reader.refer(r, "channel", channel, (*path, "channel"))
    return NotifyTarget(channel, [], schedule, named[0])


def read_schedules(reader: "CatalogReader", r: "FileReader", data: object, path: KeyPath) -> None:
    d = r.mapping(data, path)
    for name, value in (d or {}).items():
        spath = (*path, name)
        if not reader.define(r, "schedule", str(name), spath, at_key=True):
            continue
        fields = r.shaped(value, spath, shapes.SCHEDULE)
        if fields is None or fields.get("time_zone") is None:
            continue
        zone = _zone(r, fields["time_zone"], (*spath, "time_zone"))
        layers_value = fields.get("layers")
        if not isinstance(layers_value, list) or not layers_value:
            r.error((*spath, "layers"), "expected a non-empty list of layers (each a rotation or an iCal source)")
            layers_value = []
        layers = [
            layer
            for i, item in enumerate(layers_value)
            if (layer := _layer(reader, r, item, (*spath, "layers", i), i)) is not None
        ]
        names = [layer.name for layer in layers]
        for i, layer in enumerate(layers):
            if names.index(layer.name) != i:
                r.error((*spath, "layers", i, "name"), f'duplicate layer name "{layer.name}" in this schedule')
        overrides = _overrides(reader, r, fields.get("overrides") or [], (*spath, "overrides"), zone)
        if zone is not None and layers:
            reader.schedules[str(name)] = Schedule(str(name), Origin(r.file, spath), zone.key, layers, overrides)


def _zone(r: "FileReader", value: object, path: KeyPath) -> zoneinfo.ZoneInfo | None:
    text = r.string(value, path)
    if not text:
        return None
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        r.error(path, f'unknown time zone "{text}" (use an IANA name such as Europe/Berlin or Asia/Shanghai)')
        return None


def _layer(reader: "CatalogReader", r: "FileReader", item: object, path: KeyPath, index: int) -> Layer | None:
    d = r.shaped(item, path, shapes.LAYER)
    if d is None:
        return None
    name = (r.string(d["name"], (*path, "name")) if "name" in d else None) or f"layer-{index + 1}"
    if name == OVERRIDE_LAYER:
        r.error((*path, "name"), f'the name "{OVERRIDE_LAYER}" is taken by the schedule\'s overrides in its timeline')
    restrict = d.get("restrict", [])
    specs = (
        [(restrict, (*path, "restrict"))]
        if isinstance(restrict, dict)
        else [
            (spec, (*path, "restrict", i))
            for i, spec in enumerate(restrict if isinstance(restrict, list) else [restrict])
        ]
    )
    restrictions = tuple(found for spec, where in specs if (found := _restriction(r, spec, where)) is not None)
    if "ical" in d:
        for key in ("rotation", "shift", "handoff"):
            if key in d:
                r.error(
                    (*path, key),
                    "an iCal layer takes its shifts from the calendar: leave out rotation, shift and handoff",
                )
        source = _ical(r, d["ical"], (*path, "ical"))
        return Layer(name, (), 0, None, restrictions, source) if source else None
    missing = [key for key in ("rotation", "shift", "handoff") if d.get(key) is None]
    for key in missing:
        r.error((*path, key), "required field is missing (a layer is a rotation: rotation, shift, handoff; or ical)")
    if missing:
        return None
    members = r.string_list(d["rotation"], (*path, "rotation"))
    if not members:
        r.error((*path, "rotation"), "a rotation with nobody: name the contacts who take turns")
    listed = isinstance(d["rotation"], list)
    for i, member in enumerate(members):
        reader.refer(r, "contact", member, (*path, "rotation", i) if listed else (*path, "rotation"))
    shift = r.duration(d["shift"], (*path, "shift"))
    if shift is not None and (shift <= 0 or shift % HOUR_MS):
        r.error(
            (*path, "shift"), f"a shift is a whole number of hours, days or weeks (12h, 1d, 1w), got {d['shift']!r}"
        )
        shift = None
    handoff = _local_time(r, d["handoff"], (*path, "handoff"))
    if not members or shift is None or handoff is None:
        return None
    return Layer(name, tuple(members), shift, handoff, restrictions)


def _as_datetime(value: object) -> object:
    """What the YAML reader made of a date or a time (even quoted ones): a datetime; a bare date is its midnight."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    return value


def _local_time(r: "FileReader", value: object, path: KeyPath) -> datetime | None:
    value = _as_datetime(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = r.string(value, path)
    if text is None:
        return None
    if not shapes.LOCAL_TIME.match(text):
        r.error(path, f'"{text}" is not a local date and time such as "2026-01-05 09:00"')
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError as exc:  # the shape of one, but no such day or time: 2026-02-30 09:00
        r.error(path, f'"{text}" is not a date and time that exists ({exc})')
        return None


def _restriction(r: "FileReader", item: object, path: KeyPath) -> Restriction | None:
    d = r.shaped(item, path, shapes.RESTRICTION)
    if d is None:
        return None
    days: list[int] = []
    for i, spec in enumerate(r.string_list(d.get("weekdays", []), (*path, "weekdays"))):
        bounds = [part.strip().lower() for part in spec.split(":")]
        unknown = [part for part in bounds if part not in DAY_NAMES]
        if unknown or len(bounds) > 2:
            r.error(
                (*path, "weekdays", i),
                f'"{spec}" is not a day or a range of days such as monday:friday'
                + (did_you_mean(unknown[0], DAY_NAMES) if unknown else ""),
            )
            continue
        first, last = DAY_NAMES.index(bounds[0]), DAY_NAMES.index(bounds[-1])
        days += [(first + n) % 7 for n in range((last - first) % 7 + 1)]
    times = {}
    for key in ("start_time", "end_time"):
        if key in d:
            times[key] = r.string(d[key], (*path, key), shapes.TIME_OF_DAY, "time (HH:MM)")
    if ("start_time" in d) != ("end_time" in d):
        r.error(path, "give both start_time and end_time, or neither (the whole day)")
        return None
    if "weekdays" not in d and not times:
        r.error(path, "a restriction needs weekdays, start_time and end_time, or both")
        return None
    return Restriction(tuple(sorted(set(days))), times.get("start_time"), times.get("end_time"))


def _ical(r: "FileReader", value: object, path: KeyPath) -> ICalSource | None:
    d = r.shaped(value, path, shapes.ICAL)
    if d is None:
        return None
    file = r.string(d["file"], (*path, "file")) if "file" in d else None
    url = r.string(d["url"], (*path, "url")) if "url" in d else None
    if (file is None) == (url is None):
        r.error(path, "an iCal source needs exactly one of file or url")
        return None
    if url is not None and not url.startswith(("http://", "https://")):
        r.error((*path, "url"), f'"{url}" is not an http(s) URL')
        return None
    refresh = r.duration(d["refresh"], (*path, "refresh")) if "refresh" in d else DEFAULT_ICAL_REFRESH_MS
    if refresh is not None and refresh < 60_000:
        r.error((*path, "refresh"), "read a calendar at most once a minute (refresh ≥ 1m)")
        return None
    return ICalSource(file, url, refresh or DEFAULT_ICAL_REFRESH_MS)


def _overrides(
    reader: "CatalogReader", r: "FileReader", value: object, path: KeyPath, zone: zoneinfo.ZoneInfo | None
) -> list[Override]:
    if not isinstance(value, list):
        r.error(path, "expected a list of overrides ({who, from, to})")
        return []
    read: list[tuple[Override, KeyPath]] = []
    for i, item in enumerate(value):
        opath = (*path, i)
        d = r.shaped(item, opath, shapes.OVERRIDE)
        if d is None or None in (d.get("who"), d.get("from"), d.get("to")):
            continue
        who = r.string(d["who"], (*opath, "who"))
        if who:
            reader.refer(r, "contact", who, (*opath, "who"))
        start, end = (_instant(r, d[key], (*opath, key), zone) for key in ("from", "to"))
        if who and start and end:
            if end <= start:
                r.error((*opath, "to"), "the override ends before it starts")
                continue
            read.append((Override(who, start, end), opath))
    ordered = sorted(read, key=lambda pair: pair[0].start)
    for (earlier, _), (later, later_path) in itertools.pairwise(ordered):
        if later.start < earlier.end:
            r.error(
                later_path,
                f"overlaps the override of {earlier.who} until {earlier.end.isoformat()}: who would be on call?",
            )
    return [override for override, _ in read]


def _instant(r: "FileReader", value: object, path: KeyPath, zone: zoneinfo.ZoneInfo | None) -> datetime | None:
    """RFC 3339 with its offset, or a local time in the schedule's zone (a date alone: its midnight)."""
    value = _as_datetime(value)
    if isinstance(value, datetime):
        moment = value
    else:
        text = r.string(value, path)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            r.error(path, f'"{text}" is not a time such as "2026-12-24T09:00:00+01:00" or "2026-12-24 09:00"')
            return None
    if moment.tzinfo is None:
        if zone is None:
            return None
        moment = moment.replace(tzinfo=zone)
    return moment


def check_schedule_recipients(reader: "CatalogReader", needs: Mapping[str, tuple[tuple[str, ...], bool]]) -> None:
    """Each person a schedule step may reach has a way to be reached: the step's channel, or their own `notify`
    channels, each with what it needs of them (a phone for SMS, ...)."""
    for policy in reader.policies.values():
        for s, step in enumerate(policy.steps):
            for t, target in enumerate(step.notify):
                schedule = reader.schedules.get(target.schedule or "")
                if schedule is None:
                    continue
                where = (*policy.origin.path, "steps", s, "notify", t)
                for person in schedule.members():
                    channels = [target.channel] if target.channel else list(reader.people.get(person, Person()).notify)
                    if not channels:
                        reader.diags.error(
                            policy.origin.file,
                            where,
                            f'schedule "{schedule.name}" may name {person}, who has no `notify` channels: '
                            "give the step a `channel` or the contact `notify: [channel, ...]`",
                        )
                    for channel in channels:
                        ctype = str(reader.channels.get(channel, {}).get("type", ""))
                        wanted = needs.get(ctype, ((), False))[0]
                        contact = reader.contacts.get(person, {})
                        if wanted and person in reader.contacts and not any(k in contact for k in wanted):
                            reader.diags.error(
                                policy.origin.file,
                                where,
                                f'schedule "{schedule.name}" may name {person}, who has no {" or ".join(wanted)}, '
                                f"which channel {channel} ({ctype}) needs",
                            )
