"""How well each alert serves the people it pages, from what its episodes did: pure functions of the episodes.

Per alert name: how often it fired, how much of it was acknowledged and how fast, how long it fired against its
`for`, how often a series fired again soon after it resolved (flapping), whether it comes at the same hour of the
day or the same weekday (periodic), and, against the catalog, whether it never fired. Between alert names: B
starting within a short window after A in most of A's episodes (a cascade or a storm: B could be inhibited by A).
Drills (`drill="true"`) are not alerts and are left out. Thresholds are data (`Thresholds`), each finding says its
figures.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

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


Ints = npt.NDArray[np.int64]  # times in whole microseconds since the epoch, positions, counts
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Columns:
    """Episodes as columns, in any order: what `assess` works on, a column at a time with NumPy (sorts, searches,
    counts), with Python loops only over names, quarter hours and the cascades found (a loop over a million episodes
    costs a second a step). Times are whole microseconds since the epoch: exact, as the history stores them, and
    cheap to subtract and compare."""

    names: list[str]
    fingerprints: list[str]
    starts: Ints
    ends: Ints  # resolved, where `ended` (not while it fires)
    ended: Flags
    acks: Ints  # where `acked`
    acked: Flags
    notices: Ints  # first notice
    labels: Callable[[Ints], list[Mapping[str, str]]]  # the labels of the episodes at some positions (read for few)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_QUARTER_US = 900_000_000  # every time zone's offset has been whole quarter hours since 1972


def _micros(moments: Iterable[datetime | None]) -> tuple[Ints, Flags]:
    """The moments as microseconds since the epoch, and where there is one (0 where None)."""
    values = [None if moment is None else (moment - _EPOCH) // _US for moment in moments]
    return np.array([value or 0 for value in values], np.int64), np.array([v is not None for v in values], bool)


def assess(
    episodes: Iterable[Episode],
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds = Thresholds(),
    zone: tzinfo | None = None,
) -> Quality:
    """The quality of each alert name in `episodes` (and of each catalog alert, `catalog_for_s`: name → `for` in
    seconds, that never fired), and the cascades between them. Hours and weekdays are in `zone` (default UTC)."""
    real = [e for e in episodes if not is_drill(e)]
    ends, ended = _micros(e.ended_at for e in real)
    acks, acked = _micros(e.acked_at for e in real)
    columns = Columns(
        [e.alertname for e in real],
        [e.fingerprint for e in real],
        _micros(e.starts_at for e in real)[0],
        ends,
        ended,
        acks,
        acked,
        _micros(e.first_notice_at for e in real)[0],
        lambda positions: [real[position].labels for position in positions.tolist()],
    )
    return assess_columns(columns, catalog_for_s, thresholds, zone)


@dataclass(frozen=True)
class _ByName:
    """All episodes by name (a name's code: its place among the names sorted), each name's in start order: their
    codes, places in start order (of all episodes), positions in the columns and starts. A name's episodes are
    `bounds[code]:bounds[code + 1]`."""

    codes: Ints
    places: Ints
    positions: Ints
    starts: Ints
    bounds: Ints


def assess_columns(
    columns: Columns,
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds = Thresholds(),
    zone: tzinfo | None = None,
) -> Quality:
    """`assess` of episodes given as columns (drills already left out)."""
    names = sorted(set(columns.names))
    catalog = dict(catalog_for_s or {})
    alerts, cascades = _assessed(columns, names, catalog, thresholds, zone or UTC) if names else ([], [])
    fired = set(names)
    alerts += [_never_fired(name, for_s) for name, for_s in catalog.items() if name not in fired]
    alerts.sort(key=lambda a: (-a.fired, a.alertname))
    return Quality(alerts, cascades)


def _assessed(
    columns: Columns, names: list[str], catalog: Mapping[str, float], limits: Thresholds, zone: tzinfo
) -> tuple[list[AlertQuality], list[Cascade]]:
    number = {name: code for code, name in enumerate(names)}
    coded = np.fromiter(map(number.__getitem__, columns.names), np.int64, len(columns.names))
    numbered = {fingerprint: n for n, fingerprint in enumerate(set(columns.fingerprints))}
    series = np.fromiter(map(numbered.__getitem__, columns.fingerprints), np.int64, len(columns.fingerprints))
    by_start = np.argsort(columns.starts, kind="stable")  # positions in start order (a stable sort, as `sorted`)
    starts = columns.starts[by_start]
    codes = coded[by_start]
    places = np.argsort(codes, kind="stable")
    grouped = codes[places]
    by_name = _ByName(
        grouped, places, by_start[places], starts[places], np.searchsorted(grouped, np.arange(len(names) + 1))
    )
    positions = by_name.positions
    fired = np.diff(by_name.bounds)
    acked = columns.acked[positions]
    ended = columns.ended[positions]
    ends, notices = columns.ends[positions], columns.notices[positions]
    medians = (
        _medians_s(columns.acks[positions] - notices, acked, by_name),
        _medians_s(ends - notices, ended, by_name),
        _medians_s(ends - by_name.starts, ended, by_name),
    )
    peaks = _peaks(by_name, _LocalTime(zone).hours_and_days(starts), limits)
    flaps, flapping = _flaps(by_name, series[positions], ends, ended, limits)
    acknowledged = _sums(acked, by_name.bounds)
    alerts: list[AlertQuality] = []
    for code, name in enumerate(names):
        hour, hour_share, weekday, weekday_share = peaks[code]
        quality = AlertQuality(
            alertname=name,
            fired=int(fired[code]),
            acknowledged=int(acknowledged[code]),
            median_ack_s=medians[0][code],
            median_resolve_s=medians[1][code],
            median_firing_s=medians[2][code],
            for_s=catalog.get(name),
            flaps=int(flaps[code]),
            flapping_series=int(flapping[code]),
            peak_hour=hour,
            peak_hour_share=hour_share,
            peak_weekday=WEEKDAYS[weekday] if weekday is not None else None,
            peak_weekday_share=weekday_share,
            in_catalog=name in catalog,
        )
        if quality.flapping_series:
            quality.findings.append("flapping")
        if hour is not None or weekday is not None:
            quality.findings.append("periodic")
        if quality.fired >= limits.min_episodes and not quality.acknowledged:
            quality.findings.append("never acknowledged")
        alerts.append(quality)
    return alerts, _cascades(by_name, starts, codes, names, columns, limits)


def _sums(values: Ints | Flags, bounds: Ints) -> Ints:
    """The sums of `values` between consecutive `bounds` (groups in order, empty ones too)."""
    totals = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return totals[bounds[1:]] - totals[bounds[:-1]]


def _medians_s(micros: Ints, kept: Flags, by_name: _ByName) -> list[float | None]:
    """Per name, statistics.median of its `micros` where `kept`, in seconds: the middle values of whole microseconds
    (found by np.partition) are the middle values of the seconds, and are divided as statistics.median divides."""
    values = micros[kept]
    bounds = np.searchsorted(by_name.codes[kept], np.arange(len(by_name.bounds)))
    medians: list[float | None] = []
    for low, high in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        middle = (high - low) // 2
        if high == low:
            medians.append(None)
        elif (high - low) % 2:
            medians.append(int(np.partition(values[low:high], middle)[middle]) / 1_000_000)
        else:
            below, above = np.partition(values[low:high], (middle - 1, middle))[middle - 1 : middle + 1].tolist()
            medians.append((below / 1_000_000 + above / 1_000_000) / 2)
    return medians


def _never_fired(name: str, for_s: float) -> AlertQuality:
    return AlertQuality(name, 0, 0, None, None, None, for_s, 0, 0, None, 0.0, None, 0.0, True, ["never fired"])


def _flaps(by_name: _ByName, series: Ints, ends: Ints, ended: Flags, limits: Thresholds) -> tuple[Ints, Ints]:
    """Per name, (re-fires within the flap window, series) over its series (`series`, as numbers) that flap: at
    least min_flaps such re-fires, and at least flap_share of the series' re-fires. The episodes are put in series
    order (by name, by series, in start order), and each one's gap to the one before it in its series is a re-fire
    when that one ended."""
    keys = by_name.codes * (int(series.max()) + 1) + series  # a name's series
    order = np.argsort(keys, kind="stable")
    keys, begun, ends, ended = keys[order], by_name.starts[order], ends[order], ended[order]
    same = keys[1:] == keys[:-1]
    again = np.concatenate(([False], same & ended[:-1]))  # a re-fire (at the episode that fired again)
    soon = again & np.concatenate(([False], begun[1:] - ends[:-1] <= limits.flap_window // _US))
    runs = np.flatnonzero(np.concatenate(([True], ~same, [True])))  # each series' first place, and the end
    refires, flaps = _sums(again, runs), _sums(soon, runs)
    flapping = (flaps >= limits.min_flaps) & (flaps >= limits.flap_share * refires)
    bounds = np.searchsorted(by_name.codes[order][runs[:-1]], np.arange(len(by_name.bounds)))  # each name's series
    return _sums(np.where(flapping, flaps, 0), bounds), _sums(flapping, bounds)


class _LocalTime:
    """Hours of the day and days in a time zone, for many moments: each quarter hour (UTC) is converted once, and
    its moments take its local hour and day when its offset is whole quarter hours and the same all through (every
    quarter hour but the few with a change of clocks, in every zone since 1972); the others are converted one by
    one. Quarter hours, not moments: a million episodes fall in a few thousand of them."""

    def __init__(self, zone: tzinfo):
        self.zone = zone

    def _quarter(self, quarter: int) -> tuple[int, int] | None:
        first = (_EPOCH + quarter * _QUARTER_US * _US).astimezone(self.zone)
        last = (_EPOCH + ((quarter + 1) * _QUARTER_US - 1) * _US).astimezone(self.zone)
        if first.utcoffset() != last.utcoffset() or first.minute % 15 or first.second or first.microsecond:
            return None
        return first.hour, first.toordinal()

    def hours_and_days(self, starts: Ints) -> tuple[Ints, Ints]:
        """The hour of the day and the day's ordinal of each of `starts` (in order)."""
        quarters = starts // _QUARTER_US
        firsts = np.flatnonzero(np.concatenate(([True], quarters[1:] != quarters[:-1])))  # each quarter's first
        counts = np.diff(np.append(firsts, len(starts)))
        slots = [self._quarter(quarter) for quarter in quarters[firsts].tolist()]
        hours = np.repeat([slot[0] if slot else 0 for slot in slots], counts)
        days = np.repeat([slot[1] if slot else 0 for slot in slots], counts)
        for first, count, slot in zip(firsts.tolist(), counts.tolist(), slots, strict=True):
            if slot is None:  # a change of clocks: each moment on its own
                for place in range(first, first + count):
                    moment = (_EPOCH + int(starts[place]) * _US).astimezone(self.zone)
                    hours[place], days[place] = moment.hour, moment.toordinal()
        return hours, days


def _peaks(
    by_name: _ByName, hours_and_days: tuple[Ints, Ints], limits: Thresholds
) -> list[tuple[int | None, float, int | None, float]]:
    """Per name, (hour, its share, weekday, its share): the hour of the day and the weekday most episodes started in
    (`hours_and_days`: of each episode, in start order), each when the episodes spread over at least min_episodes
    days (for the hour) or weeks (for the weekday) and its share reaches periodic_share, else None with its share.
    Weekdays and ISO weeks come from the days' ordinals (day 1, 1 January of year 1, was a Monday)."""
    names = len(by_name.bounds) - 1
    hours, days = (column[by_name.places] for column in hours_and_days)
    weekdays, weeks = (days - 1) % 7, (days - 1) // 7
    by_hour = np.bincount(by_name.codes * 24 + hours, minlength=names * 24).reshape(names, 24)
    by_weekday = np.bincount(by_name.codes * 7 + weekdays, minlength=names * 7).reshape(names, 7)
    spread = [_distinct(by_name.codes, names, periods) for periods in (days, weeks)]
    fired = np.diff(by_name.bounds)
    return [
        (
            *_top(by_hour[code], fired[code], spread[0][code], limits),
            *_top(by_weekday[code], fired[code], spread[1][code], limits),
        )
        for code in range(names)
    ]


def _distinct(codes: Ints, names: int, periods: Ints) -> Ints:
    """Per name, how many distinct `periods` (days, weeks: numbers in a short range) its episodes fell in."""
    first = int(periods.min())
    span = int(periods.max()) - first + 1
    seen = np.zeros(names * span, bool)
    seen[codes * span + periods - first] = True
    return seen.reshape(names, span).sum(axis=1)


def _top(counts: Ints, total: np.int64, periods: np.int64, limits: Thresholds) -> tuple[int | None, float]:
    """The slot with the most episodes (the first of equals) and its share, or None and the share when there are
    fewer than min_episodes periods or the share is below periodic_share."""
    top = int(np.argmax(counts))
    share = int(counts[top]) / int(total)
    if int(periods) >= limits.min_episodes and share >= limits.periodic_share:
        return top, share
    return None, share


def _cascades(
    by_name: _ByName, starts: Ints, codes: Ints, names: list[str], columns: Columns, limits: Thresholds
) -> list[Cascade]:
    """For each alert name A with enough episodes, the names B that started within the window after A's start in
    at least cascade_share of A's episodes. Two names found both ways round (they start together) are one cascade,
    led by the one followed more often (by name when it is even).

    Counted per follower B, not per leader episode (a million episodes have millions of (leader, follower) pairs):
    an episode is followed by a B when it starts in [start - window, start] of one of B's, ranges that join into a
    few stretches of the episodes in start order (`starts`, `codes`: all names' episodes), and the names in those
    stretches are counted. Then the pairs of the cascades found are looked at, for the labels they share."""
    window = limits.cascade_window // _US
    fired = np.diff(by_name.bounds)
    # B's stretches: its episodes (in start order) cut where the next starts more than a window later; each covers
    # the places from the first that started at most a window before its first to the last that started with its last
    cut = (by_name.codes[1:] != by_name.codes[:-1]) | (by_name.starts[1:] - by_name.starts[:-1] > window)
    firsts = np.flatnonzero(np.concatenate(([True], cut)))
    lasts = np.append(firsts[1:], len(starts)) - 1
    lows = np.searchsorted(starts, by_name.starts[firsts] - window, "left")
    highs = np.searchsorted(starts, by_name.starts[lasts], "right")
    stretches = np.searchsorted(by_name.codes[firsts], np.arange(len(names) + 1))  # each follower's
    enough = fired >= limits.min_episodes
    found: list[Cascade] = []
    for follower in range(len(names)):
        theirs = slice(stretches[follower], stretches[follower + 1])
        low, lengths = lows[theirs], highs[theirs] - lows[theirs]
        # the places the stretches cover, one after the other
        covered = np.arange(int(lengths.sum())) + np.repeat(low - np.cumsum(lengths) + lengths, lengths)
        together = np.bincount(codes[covered], minlength=len(names))  # per leader: its episodes followed by a B
        cascading = enough & (together >= limits.cascade_share * fired)
        cascading[follower] = False
        for leader in np.flatnonzero(cascading).tolist():
            found.append(Cascade(names[leader], names[follower], int(together[leader]), int(fired[leader]), {}))
    kept: dict[frozenset[str], Cascade] = {}
    for cascade in sorted(found, key=lambda c: (c.leader, c.follower)):
        pair = frozenset((cascade.leader, cascade.follower))
        other = kept.get(pair)
        if other is None or (cascade.together, other.leader) > (other.together, cascade.leader):
            kept[pair] = cascade
    number = {name: code for code, name in enumerate(names)}
    for cascade in kept.values():
        pairs = _pairs(by_name, number[cascade.leader], number[cascade.follower], window)
        leaders, followers = map(columns.labels, pairs)
        cascade.shared_labels = _shared(leaders, followers)
    return sorted(kept.values(), key=lambda c: (-c.share, c.leader, c.follower))


def _pairs(by_name: _ByName, leader: int, follower: int, window: int) -> tuple[Ints, Ints]:
    """The positions of each of the leader's episodes and of the first of the follower's that started within the
    window after it."""
    mine = slice(by_name.bounds[leader], by_name.bounds[leader + 1])
    theirs = slice(by_name.bounds[follower], by_name.bounds[follower + 1])
    starts = by_name.starts[theirs]
    first = np.searchsorted(starts, by_name.starts[mine], "left")  # of the follower's, at or after each
    near = first < len(starts)
    near[near] = starts[first[near]] - by_name.starts[mine][near] <= window
    return by_name.positions[mine][near], by_name.positions[theirs][first[near]]


def _shared(leaders: list[Mapping[str, str]], followers: list[Mapping[str, str]]) -> dict[str, str]:
    """The labels (not alertname) that had one value in both alerts of every pair (their labels, pair by pair): after
    the first pair, only the labels still shared are looked at (thousands of pairs, few labels)."""
    shared: dict[str, str] | None = None
    for leader, follower in zip(leaders, followers, strict=True):
        keys = leader if shared is None else shared
        equal = {k: leader[k] for k in keys if k != "alertname" and k in leader and follower.get(k) == leader[k]}
        shared = equal if shared is None else {k: v for k, v in shared.items() if equal.get(k) == v}
        if not shared:
            break
    return dict(sorted((shared or {}).items()))
