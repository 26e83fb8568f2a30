"""How well each alert serves the people it pages, from what its episodes did: pure functions of the episodes.

Per alert name: how often it fired, how much of it was acknowledged and how fast, how long it fired against its
`for`, how often a series fired again soon after it resolved (flapping), whether it comes at the same hour of the
day or the same weekday (periodic), and, against the catalog, whether it never fired. Between alert names: B
starting within a short window after A in most of A's episodes (a cascade or a storm: B could be inhibited by A).
Drills (`drill="true"`) are not alerts and are left out. Thresholds are data (`Thresholds`), each finding says its
figures.
"""

import bisect
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from itertools import pairwise
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


def assess(
    episodes: Iterable[Episode],
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds = Thresholds(),
    zone: tzinfo | None = None,
) -> Quality:
    """The quality of each alert name in `episodes` (and of each catalog alert, `catalog_for_s`: name → `for` in
    seconds, that never fired), and the cascades between them. Hours and weekdays are in `zone` (default UTC)."""
    real = sorted((e for e in episodes if not is_drill(e)), key=lambda e: e.starts_at)
    by_name: dict[str, list[Episode]] = defaultdict(list)
    for episode in real:
        by_name[episode.alertname].append(episode)
    catalog = dict(catalog_for_s or {})
    alerts = [_alert(name, found, catalog, thresholds, zone) for name, found in by_name.items()]
    alerts += [_never_fired(name, for_s) for name, for_s in catalog.items() if name not in by_name]
    alerts.sort(key=lambda a: (-a.fired, a.alertname))
    return Quality(alerts, _cascades(real, by_name, thresholds))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _alert(
    name: str, episodes: list[Episode], catalog: Mapping[str, float], limits: Thresholds, zone: tzinfo | None
) -> AlertQuality:
    acked = [e for e in episodes if e.acked_at is not None]
    ended = [e for e in episodes if e.ended_at is not None]
    hour, hour_share = _peak(episodes, lambda t: t.hour, lambda t: t.date(), limits, zone)
    weekday, weekday_share = _peak(episodes, lambda t: t.weekday(), lambda t: t.isocalendar()[:2], limits, zone)
    flaps, flapping_series = _flaps(episodes, limits)
    quality = AlertQuality(
        alertname=name,
        fired=len(episodes),
        acknowledged=len(acked),
        median_ack_s=_median([(e.acked_at - e.first_notice_at).total_seconds() for e in acked if e.acked_at]),
        median_resolve_s=_median([(e.ended_at - e.first_notice_at).total_seconds() for e in ended if e.ended_at]),
        median_firing_s=_median([(e.ended_at - e.starts_at).total_seconds() for e in ended if e.ended_at]),
        for_s=catalog.get(name),
        flaps=flaps,
        flapping_series=flapping_series,
        peak_hour=hour,
        peak_hour_share=hour_share,
        peak_weekday=WEEKDAYS[weekday] if weekday is not None else None,
        peak_weekday_share=weekday_share,
        in_catalog=name in catalog,
    )
    if flapping_series:
        quality.findings.append("flapping")
    if hour is not None or weekday is not None:
        quality.findings.append("periodic")
    if len(episodes) >= limits.min_episodes and not acked:
        quality.findings.append("never acknowledged")
    return quality


def _never_fired(name: str, for_s: float) -> AlertQuality:
    return AlertQuality(name, 0, 0, None, None, None, for_s, 0, 0, None, 0.0, None, 0.0, True, ["never fired"])


def _flaps(episodes: list[Episode], limits: Thresholds) -> tuple[int, int]:
    """(re-fires within the flap window, series) over the series that flap: at least min_flaps such re-fires, and
    at least flap_share of the series' re-fires."""
    by_series: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        by_series[episode.fingerprint].append(episode)
    flaps = series_flapping = 0
    for series in by_series.values():
        gaps = [b.starts_at - a.ended_at for a, b in pairwise(series) if a.ended_at is not None]
        soon = sum(1 for gap in gaps if gap <= limits.flap_window)
        if soon >= limits.min_flaps and soon >= limits.flap_share * len(gaps):
            flaps += soon
            series_flapping += 1
    return flaps, series_flapping


def _peak(episodes: list[Episode], slot, period, limits: Thresholds, zone: tzinfo | None) -> tuple[int | None, float]:  # type: ignore[no-untyped-def]
    """The slot (hour, weekday) most episodes started in and its share, when the episodes spread over at least
    min_episodes periods (days, weeks) and that share reaches periodic_share; else (None, share)."""
    if not episodes:
        return None, 0.0
    local = [e.starts_at.astimezone(zone) if zone else e.starts_at for e in episodes]
    counts: dict[int, int] = defaultdict(int)
    for moment in local:
        counts[slot(moment)] += 1
    top, count = max(counts.items(), key=lambda item: (item[1], -item[0]))
    share = count / len(local)
    periods = {period(moment) for moment in local}
    if len(periods) >= limits.min_episodes and share >= limits.periodic_share:
        return top, share
    return None, share


def _cascades(episodes: list[Episode], by_name: Mapping[str, list[Episode]], limits: Thresholds) -> list[Cascade]:
    """For each alert name A with enough episodes, the names B that started within the window after A's start in
    at least cascade_share of A's episodes. Two names found both ways round (they start together) are one cascade,
    led by the one followed more often (by name when it is even).

    A sweep over the episodes in start order, with names as numbers: a million episodes have millions of (leader,
    follower) pairs, so the first pass only counts them; the second looks at the pairs of the cascades found, for
    the labels they share."""
    names = sorted(by_name)
    number = {name: i for i, name in enumerate(names)}
    width = len(names)
    starts = [e.starts_at.timestamp() for e in episodes]
    codes = [number[e.alertname] for e in episodes]
    window = limits.cascade_window.total_seconds()
    together = [0] * (width * width)  # leader * width + follower → A episodes followed by B
    for index, (leader, start) in enumerate(zip(codes, starts, strict=True)):
        limit, seen, base = start + window, 0, leader * width
        later = index + 1
        while later < len(starts) and starts[later] <= limit:
            follower = codes[later]
            if follower != leader and not (seen >> follower) & 1:
                seen |= 1 << follower
                together[base + follower] += 1
            later += 1
    found: dict[frozenset[str], Cascade] = {}
    for leader, leader_name in enumerate(names):
        total = len(by_name[leader_name])
        if total < limits.min_episodes:
            continue
        for follower, follower_name in enumerate(names):
            count = together[leader * width + follower]
            if count < limits.cascade_share * total:
                continue
            cascade = Cascade(leader_name, follower_name, count, total, {})
            pair = frozenset((leader_name, follower_name))
            other = found.get(pair)
            if other is None or (cascade.together, other.leader) > (other.together, cascade.leader):
                found[pair] = cascade
    for cascade in found.values():
        cascade.shared_labels = _shared(_pairs(episodes, starts, cascade, window))
    return sorted(found.values(), key=lambda c: (-c.share, c.leader, c.follower))


def _pairs(
    episodes: list[Episode], starts: list[float], cascade: Cascade, window: float
) -> Iterator[tuple[Episode, Episode]]:
    """Each episode of the cascade's leader with the first of its follower's that started within the window."""
    for index, leader in enumerate(episodes):
        if leader.alertname != cascade.leader:
            continue
        end = bisect.bisect_right(starts, starts[index] + window, lo=index)
        follower = next((e for e in episodes[index + 1 : end] if e.alertname == cascade.follower), None)
        if follower is not None:
            yield leader, follower


def _shared(pairs: Iterable[tuple[Episode, Episode]]) -> dict[str, str]:
    """The labels (not alertname) that had one value in both alerts of every pair."""
    shared: dict[str, str] | None = None
    for leader, follower in pairs:
        equal = {k: v for k, v in leader.labels.items() if k != "alertname" and follower.labels.get(k) == v}
        shared = equal if shared is None else {k: v for k, v in shared.items() if equal.get(k) == v}
    return dict(sorted((shared or {}).items()))
