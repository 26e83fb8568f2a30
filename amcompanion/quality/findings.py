"""How well each alert serves the people it pages, from what its episodes did: pure functions of the episodes.

Per alert name: how often it fired, how much of it was acknowledged and how fast, how long it fired against its
`for`, how often a series fired again soon after it resolved (flapping), whether it comes at the same hour of the
day or the same weekday (periodic), and, against the catalog, whether it never fired. Between alert names: B
starting within a short window after A in most of A's episodes (a cascade or a storm: B could be inhibited by A).
Drills (`drill="true"`) are not alerts and are left out. Thresholds are data (`Thresholds`), each finding says its
figures.
"""

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import compress, repeat
from operator import and_, eq, floordiv, ge, is_not, lt, sub
from typing import NamedTuple

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Episode(NamedTuple):
    """One firing episode of one series, as the history has it (a tuple: a million are made in a second)."""

    alertname: str
    fingerprint: str
    labels: Mapping[str, str]
    starts_at: datetime
    ended_at: datetime | None  # resolved; None while it fires
    acked_at: datetime | None
    first_notice_at: datetime


@dataclass(frozen=True)
class Thresholds:
    flap_window: timedelta = timedelta(minutes=15)  # a series firing again this soon after it resolved: a flap
    min_flaps: int = 3  # a series flaps with this many flaps or more,
    flap_share: float = 0.5  # making this share of its re-fires or more (a busy series re-fires soon by chance)
    cascade_window: timedelta = timedelta(seconds=60)  # B starting this soon after A: together
    cascade_share: float = 0.8  # of A's episodes
    min_episodes: int = 4  # fewer episodes (or days, weeks) than this tell no pattern
    periodic_share: float = 0.6  # of the episodes in one hour of the day, or on one weekday


@dataclass
class AlertQuality:
    alertname: str
    fired: int
    acknowledged: int
    median_ack_s: float | None
    median_resolve_s: float | None  # from the first page to the end
    median_firing_s: float | None  # from startsAt to the end
    for_s: float | None  # the catalog's `for`; None when the alert is not in the catalog
    flaps: int  # re-fires within the flap window, in the series that flap
    flapping_series: int
    peak_hour: int | None  # the hour of the day most episodes started in (display time zone), when periodic
    peak_hour_share: float
    peak_weekday: str | None  # when periodic by weekday
    peak_weekday_share: float
    in_catalog: bool
    findings: list[str] = field(default_factory=list)  # flapping, periodic, never fired, never acknowledged

    @property
    def ack_share(self) -> float | None:
        return self.acknowledged / self.fired if self.fired else None


@dataclass
class Cascade:
    """`follower` started within the window after `leader` in `together` of the leader's `episodes`."""

    leader: str
    follower: str
    together: int
    episodes: int
    shared_labels: dict[str, str]  # labels every such pair had equal (what an inhibition would match on)

    @property
    def share(self) -> float:
        return self.together / self.episodes


@dataclass
class Quality:
    alerts: list[AlertQuality]
    cascades: list[Cascade]


def is_drill(episode: Episode) -> bool:
    return episode.labels.get("drill") == "true"


@dataclass(frozen=True)
class Columns:
    """Episodes as columns, in any order: what `assess` works on, a column at a time with functions written in C
    (`map`, `sorted`, `Counter`, slices), with Python loops only over names, series and quarter hours (a loop over a
    million episodes costs a second a step). Times are whole microseconds since the epoch: exact, as the history
    stores them, and cheap to subtract and compare."""

    names: list[str]
    fingerprints: list[str]
    starts: list[int]
    ends: list[int | None]  # resolved; None while it fires
    acks: list[int | None]
    notices: list[int]  # first notice
    labels: Callable[[int], Mapping[str, str]]  # the labels of the episode at a position (read for few of them)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_QUARTER_US = 900_000_000  # every time zone's offset has been whole quarter hours since 1972


def _micros(moments: Iterable[datetime]) -> list[int]:
    return list(map(floordiv, map(sub, moments, repeat(_EPOCH)), repeat(_US)))


def _micros_or_none(moments: Iterable[datetime | None]) -> list[int | None]:
    return [None if moment is None else (moment - _EPOCH) // _US for moment in moments]


def assess(
    episodes: Iterable[Episode],
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds = Thresholds(),
    zone: tzinfo | None = None,
) -> Quality:
    """The quality of each alert name in `episodes` (and of each catalog alert, `catalog_for_s`: name → `for` in
    seconds, that never fired), and the cascades between them. Hours and weekdays are in `zone` (default UTC)."""
    real = [e for e in episodes if not is_drill(e)]
    columns = Columns(
        [e.alertname for e in real],
        [e.fingerprint for e in real],
        _micros(e.starts_at for e in real),
        _micros_or_none(e.ended_at for e in real),
        _micros_or_none(e.acked_at for e in real),
        _micros(e.first_notice_at for e in real),
        lambda position: real[position].labels,
    )
    return assess_columns(columns, catalog_for_s, thresholds, zone)


def assess_columns(
    columns: Columns,
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds = Thresholds(),
    zone: tzinfo | None = None,
) -> Quality:
    """`assess` of episodes given as columns (drills already left out)."""
    by_start = sorted(range(len(columns.starts)), key=columns.starts.__getitem__)  # positions in start order
    starts = list(map(columns.starts.__getitem__, by_start))
    names = sorted(set(columns.names))
    number = {name: code for code, name in enumerate(names)}
    codes = list(map(list(map(number.__getitem__, columns.names)).__getitem__, by_start))
    by_name = sorted(range(len(codes)), key=codes.__getitem__)  # places in start order, by name
    sizes = Counter(codes)
    numbered = {fingerprint: n for n, fingerprint in enumerate(set(columns.fingerprints))}
    series = list(map(numbered.__getitem__, columns.fingerprints))  # fingerprints as numbers: sorted faster
    catalog = dict(catalog_for_s or {})
    local = _LocalTime(zone or UTC)
    alerts: list[AlertQuality] = []
    episodes: list[_NameEpisodes] = []
    first = 0
    for code, name in enumerate(names):
        places = by_name[first : first + sizes[code]]
        first += sizes[code]
        mine = _NameEpisodes(
            name, places, list(map(by_start.__getitem__, places)), list(map(starts.__getitem__, places))
        )
        episodes.append(mine)
        alerts.append(_alert(mine, columns, series, catalog, thresholds, local))
    alerts += [_never_fired(name, for_s) for name, for_s in catalog.items() if name not in number]
    alerts.sort(key=lambda a: (-a.fired, a.alertname))
    return Quality(alerts, _cascades(episodes, starts, codes, columns, thresholds))


@dataclass
class _NameEpisodes:
    """One alert name's episodes in start order: their places in start order (of all), their positions in the
    columns, and their starts."""

    name: str
    places: list[int]  # in start order
    positions: list[int]
    starts: list[int]


def _median_s(micros: Iterable[int]) -> float | None:
    """statistics.median of the values in seconds (sorting whole microseconds sorts the seconds alike)."""
    values = sorted(micros)
    middle = len(values) // 2
    if not values:
        return None
    if len(values) % 2:
        return values[middle] / 1_000_000
    return (values[middle - 1] / 1_000_000 + values[middle] / 1_000_000) / 2


def _alert(
    mine: _NameEpisodes,
    columns: Columns,
    series: list[int],
    catalog: Mapping[str, float],
    limits: Thresholds,
    local: "_LocalTime",
) -> AlertQuality:
    positions = mine.positions
    ends, acks, notices = (
        list(map(column.__getitem__, positions)) for column in (columns.ends, columns.acks, columns.notices)
    )
    acked = list(map(is_not, acks, repeat(None)))
    ended = list(map(is_not, ends, repeat(None)))
    hour, hour_share, weekday, weekday_share = _peaks(local.slots(mine.starts), len(positions), limits)
    flaps, flapping_series = _flaps(list(map(series.__getitem__, positions)), mine.starts, ends, limits)
    acknowledged = sum(acked)
    quality = AlertQuality(
        alertname=mine.name,
        fired=len(positions),
        acknowledged=acknowledged,
        median_ack_s=_median_s(map(sub, compress(acks, acked), compress(notices, acked))),  # type: ignore[arg-type]
        median_resolve_s=_median_s(map(sub, compress(ends, ended), compress(notices, ended))),  # type: ignore[arg-type]
        median_firing_s=_median_s(map(sub, compress(ends, ended), compress(mine.starts, ended))),  # type: ignore[arg-type]
        for_s=catalog.get(mine.name),
        flaps=flaps,
        flapping_series=flapping_series,
        peak_hour=hour,
        peak_hour_share=hour_share,
        peak_weekday=WEEKDAYS[weekday] if weekday is not None else None,
        peak_weekday_share=weekday_share,
        in_catalog=mine.name in catalog,
    )
    if flapping_series:
        quality.findings.append("flapping")
    if hour is not None or weekday is not None:
        quality.findings.append("periodic")
    if len(positions) >= limits.min_episodes and not acknowledged:
        quality.findings.append("never acknowledged")
    return quality


def _never_fired(name: str, for_s: float) -> AlertQuality:
    return AlertQuality(name, 0, 0, None, None, None, for_s, 0, 0, None, 0.0, None, 0.0, True, ["never fired"])


def _flaps(fingerprints: list[int], starts: list[int], ends: list[int | None], limits: Thresholds) -> tuple[int, int]:
    """(re-fires within the flap window, series) over the series (`fingerprints`, as numbers) that flap: at least
    min_flaps such re-fires, and at least flap_share of the series' re-fires. The episodes (in start order) are put
    in series order, and each one's gap to the one before it in its series is a re-fire when that one ended."""
    order = sorted(range(len(fingerprints)), key=fingerprints.__getitem__)
    series = list(map(fingerprints.__getitem__, order))
    begun = list(map(starts.__getitem__, order))
    ended = list(map(ends.__getitem__, order))
    again = list(map(and_, map(eq, series[1:], series[:-1]), map(is_not, ended[:-1], repeat(None))))
    refired = list(compress(series[1:], again))  # the series of each re-fire
    gaps = map(sub, compress(begun[1:], again), compress(ended[:-1], again))  # type: ignore[arg-type]
    soon = Counter(compress(refired, map(ge, repeat(limits.flap_window // _US), gaps)))
    refires = Counter(refired)
    flaps = series_flapping = 0
    for one in set(series):
        if soon[one] >= limits.min_flaps and soon[one] >= limits.flap_share * refires[one]:
            flaps += soon[one]
            series_flapping += 1
    return flaps, series_flapping


class _LocalTime:
    """Hours of the day and days in a time zone, for many moments: each quarter hour (UTC) is converted once, and
    its moments take its local hour and day when its offset is whole quarter hours and the same all through (every
    quarter hour but the few with a change of clocks, in every zone since 1972); the others are converted one by
    one. Quarter hours, not moments: a million episodes fall in a few thousand of them."""

    def __init__(self, zone: tzinfo):
        self.zone = zone
        self.quarters: dict[int, tuple[int, int] | None] = {}  # quarter hours since the epoch → (hour, day ordinal)

    def _quarter(self, quarter: int) -> tuple[int, int] | None:
        first = (_EPOCH + quarter * _QUARTER_US * _US).astimezone(self.zone)
        last = (_EPOCH + ((quarter + 1) * _QUARTER_US - 1) * _US).astimezone(self.zone)
        if first.utcoffset() != last.utcoffset() or first.minute % 15 or first.second or first.microsecond:
            return None
        return first.hour, first.toordinal()

    def slots(self, starts: list[int]) -> Counter[tuple[int, int]]:
        """(hour of the day, day ordinal) → how many of `starts` (in order) fell in it."""
        slots: Counter[tuple[int, int]] = Counter()
        for quarter, count in Counter(map(floordiv, starts, repeat(_QUARTER_US))).items():
            if quarter not in self.quarters:
                self.quarters[quarter] = self._quarter(quarter)
            slot = self.quarters[quarter]
            if slot is not None:
                slots[slot] += count
                continue
            begins = quarter * _QUARTER_US
            for start in starts[bisect_left(starts, begins) : bisect_left(starts, begins + _QUARTER_US)]:
                moment = (_EPOCH + start * _US).astimezone(self.zone)
                slots[moment.hour, moment.toordinal()] += 1
        return slots


def _peaks(
    slots: Counter[tuple[int, int]], total: int, limits: Thresholds
) -> tuple[int | None, float, int | None, float]:
    """(hour, its share, weekday, its share): the hour of the day and the weekday most episodes started in, each
    when the episodes spread over at least min_episodes days (for the hour) or weeks (for the weekday) and its share
    reaches periodic_share, else None with its share. Weekdays and ISO weeks come from the days' ordinals (day 1,
    1 January of year 1, was a Monday)."""
    hours: Counter[int] = Counter()
    days: Counter[int] = Counter()
    for (hour, day), count in slots.items():
        hours[hour] += count
        days[day] += count
    weekdays: Counter[int] = Counter()
    for day, count in days.items():
        weekdays[(day - 1) % 7] += count
    weeks = {(day - 1) // 7 for day in days}
    hour, hour_share = _top(hours, total, len(days), limits)
    weekday, weekday_share = _top(weekdays, total, len(weeks), limits)
    return hour, hour_share, weekday, weekday_share


def _top(counts: Counter[int], total: int, periods: int, limits: Thresholds) -> tuple[int | None, float]:
    """The slot with the most episodes (the first of equals) and its share, or None and the share when there are
    fewer than min_episodes periods or the share is below periodic_share."""
    top, count = max(counts.items(), key=lambda item: (item[1], -item[0]))
    share = count / total
    if periods >= limits.min_episodes and share >= limits.periodic_share:
        return top, share
    return None, share


def _cascades(
    episodes: list[_NameEpisodes], starts: list[int], codes: list[int], columns: Columns, limits: Thresholds
) -> list[Cascade]:
    """For each alert name A with enough episodes, the names B that started within the window after A's start in
    at least cascade_share of A's episodes. Two names found both ways round (they start together) are one cascade,
    led by the one followed more often (by name when it is even).

    Counted per follower B, not per leader episode (a million episodes have millions of (leader, follower) pairs):
    an episode is followed by a B when it starts in [start - window, start] of one of B's, ranges that join into a
    few stretches of the episodes in start order (`starts`, `codes`: all names' episodes), and the names in those
    stretches are counted in C. Then the pairs of the cascades found are looked at, for the labels they share."""
    window = limits.cascade_window // _US
    # for each place in start order, the first place whose episode started at most a window before, and the place
    # after the last one that started at the same moment
    earliest: list[int] = []
    first = 0
    for start in starts:
        while starts[first] < start - window:
            first += 1
        earliest.append(first)
    after = list(range(1, len(starts) + 1))
    for place in range(len(starts) - 2, -1, -1):
        if starts[place] == starts[place + 1]:
            after[place] = after[place + 1]
    names = "".join(map(chr, codes))  # a name a character: a stretch's names are a slice, counted in C
    together: dict[tuple[int, int], int] = {}  # (leader, follower) → A's episodes followed by a B
    for follower, theirs in enumerate(episodes):
        places = theirs.places
        apart = list(map(lt, repeat(window), map(sub, theirs.starts[1:], theirs.starts[:-1])))  # a new stretch
        lows = map(earliest.__getitem__, [places[0], *compress(places[1:], apart)])
        highs = map(after.__getitem__, [*compress(places[:-1], apart), places[-1]])
        for leader, count in Counter("".join(map(names.__getitem__, map(slice, lows, highs)))).items():
            together[ord(leader), follower] = count
    found: dict[frozenset[str], Cascade] = {}
    for leader, mine in enumerate(episodes):
        total = len(mine.starts)
        if total < limits.min_episodes:
            continue
        for follower, theirs in enumerate(episodes):
            count = together.get((leader, follower), 0)
            if follower == leader or count < limits.cascade_share * total:
                continue
            cascade = Cascade(mine.name, theirs.name, count, total, {})
            pair = frozenset((mine.name, theirs.name))
            other = found.get(pair)
            if other is None or (cascade.together, other.leader) > (other.together, cascade.leader):
                found[pair] = cascade
    named = {mine.name: mine for mine in episodes}
    for cascade in found.values():
        pairs = _pairs(named[cascade.leader], named[cascade.follower], window)
        cascade.shared_labels = _shared((columns.labels(a), columns.labels(b)) for a, b in pairs)
    return sorted(found.values(), key=lambda c: (-c.share, c.leader, c.follower))


def _pairs(leader: _NameEpisodes, follower: _NameEpisodes, window: int) -> Iterator[tuple[int, int]]:
    """The positions of each of the leader's episodes and of the first of the follower's that started within the
    window after it."""
    theirs = follower.starts
    for start, position in zip(leader.starts, leader.positions, strict=True):
        index = bisect_left(theirs, start)
        if index < len(theirs) and theirs[index] - start <= window:
            yield position, follower.positions[index]


def _shared(pairs: Iterable[tuple[Mapping[str, str], Mapping[str, str]]]) -> dict[str, str]:
    """The labels (not alertname) that had one value in both alerts of every pair (their labels)."""
    shared: dict[str, str] | None = None
    for leader, follower in pairs:
        equal = {k: v for k, v in leader.items() if k != "alertname" and follower.get(k) == v}
        shared = equal if shared is None else {k: v for k, v in shared.items() if equal.get(k) == v}
    return dict(sorted((shared or {}).items()))
