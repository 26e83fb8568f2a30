"""From alert quality findings to catalog edits, each with the figures that call for it: pure functions of the catalog
(its model and file texts) and the findings.

- flapping → a longer `for`. It is chosen from how long the condition held, not from the gaps: the startsAt
  Prometheus sends is when the alert fired, after `for`, so a blip held `for` + its firing time. The next step of a
  ladder above that, for the median episode, keeps such blips pending instead of paging. (A `for` longer than the
  gaps alone would not: each blip would still outlast it. The gaps are what `keep_firing_for` bridges.)
- cascade → an inhibition in the leader's group: the leader mutes the follower while both have the labels every
  pair shared (`equal`), without `severity` and `alert_kind`, which say nothing about the cause being the same.
- periodic and never acknowledged → the next lower severity (each level of a map one lower). Quiet hours would be
  the other way, but in the catalog they belong to routes (`routes[].quiet_hours`), where the first match wins: a
  route of its own for one alert would change where it goes, not only when. So the why names the hour, and quiet
  hours are left to a person.
- never fired → a comment above the alert to review or delete it (deleting could break inhibitions, composites and
  routes that name it).

Edited values carry a comment saying when tune set them and why. A later run reads it back: while the history
still goes back to before the edit, its findings describe the old value, so the value is left alone.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from ruamel.yaml.comments import CommentedMap

from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import COMPARISONS, Alert, Catalog, Group
from amcompanion.quality.findings import AlertQuality, Cascade, Quality, Thresholds
from amcompanion.quality.text import duration
from amcompanion.tune.source import MARKER, Edit, Source, flow_list, marked_on, marker, scalar

# `for` values a person would write, in ms: a raised `for` is the first one above what the figures need.
FOR_STEPS = [m * 60_000 for m in (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440)]
LEVEL_MAPS = (*COMPARISONS, "zscore")  # keys that may map severities to levels
NOT_EQUAL = ("severity", "alert_kind")  # labels an inhibition's `equal` leaves out
# A key added to an alert goes before the first of these it has (after its query and levels).
LATER_KEYS = (
    "summary",
    "description",
    "runbook_url",
    "dashboard_url",
    "labels",
    "annotations",
    "escalate",
    "escalation",
    "lint",
    "examples",
    "variants",
)


@dataclass
class Proposal:
    file: str  # relative to the catalog directory
    kind: str  # "for", "inhibit", "severity" or "review"
    alert: str
    why: str
    figures: dict[str, object]
    edits: list[Edit]
    # what the catalog must say once the edit is made: a problem, or None
    expect: Callable[[Catalog], str | None] = field(repr=False, default=lambda catalog: None)


@dataclass
class Tuning:
    proposals: list[Proposal]
    notes: list[str]  # findings tune cannot turn into an edit, and why


@dataclass
class _Context:
    catalog: Catalog
    texts: Mapping[str, str]
    limits: Thresholds
    period: str  # as the user gave it: 30d
    since: date
    today: date
    notes: list[str]
    sources: dict[str, Source | None] = field(default_factory=dict)

    def file(self, alert_or_group: Alert | Group) -> str:
        assert alert_or_group.origin is not None
        return alert_or_group.origin.file.removeprefix(f"{self.catalog.root_name}/")

    def source(self, file: str) -> Source | None:
        if file not in self.sources:
            text = self.texts.get(file)
            self.sources[file] = Source(text) if text is not None else None
        return self.sources[file]

    def mapping(self, file: str, path: tuple[str | int, ...], key: str, name: str) -> CommentedMap | None:
        """The file's mapping at `path`, when it is the one whose `key` is `name` (a file converted from another
        format when read has other paths)."""
        source = self.source(file)
        node = source.node(path) if source else None
        return node if isinstance(node, CommentedMap) and node.get(key) == name else None


def propose(
    catalog: Catalog,
    texts: Mapping[str, str],
    quality: Quality,
    limits: Thresholds,
    period: str,
    since: date,
    today: date,
) -> Tuning:
    """The edits the findings of `quality` (over `period`, from `since`) call for in the catalog whose files (by path
    relative to its directory) are `texts`; `today` dates the comments they leave."""
    context = _Context(catalog, texts, limits, period, since, today, [])
    by_name: dict[str, list[Alert]] = defaultdict(list)
    for alert in catalog.alerts():
        by_name[alert.name].append(alert)
    proposals: list[Proposal | None] = []
    for found in quality.alerts:
        alerts = by_name.get(found.alertname)
        if not alerts:  # only in the history: nothing in the catalog to edit
            continue
        if "flapping" in found.findings:
            proposals.append(_raise_for(context, found, alerts))
        if "periodic" in found.findings and "never acknowledged" in found.findings:
            proposals.append(_lower_severity(context, found, alerts))
        if "never fired" in found.findings:
            proposals.append(_review(context, found, alerts[0]))
    proposals += _inhibitions(context, quality.cascades)
    kept = [p for p in proposals if p is not None]
    kept.sort(key=lambda p: (p.file, min(e.start for e in p.edits)))
    return Tuning(kept, context.notes)


def next_step(ms: float) -> int:
    """The first `for` of the ladder above `ms` (past its end: whole days)."""
    return next((step for step in FOR_STEPS if step > ms), (int(ms) // 86_400_000 + 1) * 86_400_000)


def _raise_for(context: _Context, found: AlertQuality, alerts: list[Alert]) -> Proposal | None:
    name = found.alertname
    file = context.file(alerts[0])
    source = context.source(file)
    if source is None or found.median_firing_s is None:
        return None
    old = max(alert.for_ms for alert in alerts)
    new = next_step(old + found.median_firing_s * 1000)
    old_text = " / ".join(format_duration(ms) for ms in sorted({alert.for_ms for alert in alerts}))
    note = marker(context.today, f"for {old_text} → {format_duration(new)} (flapped {found.flaps} times)")
    targets: list[CommentedMap] = []  # where each variant's `for` is: its own, else the alert's (shared)
    for alert in alerts:
        assert alert.origin is not None
        path = alert.origin.path
        mapping = context.mapping(file, path if alert.variant is None else path[:-2], "alert", name)
        variant = source.node(path) if alert.variant is not None else None
        if isinstance(variant, CommentedMap) and "for" in (variant.lc.data or {}):
            mapping = variant if mapping is not None else None
        if mapping is None:
            context.notes.append(f"{name}: flapping, but its mapping is not in {file} as the catalog reads it")
            return None
        if all(mapping is not target for target in targets):
            targets.append(mapping)
    edits: list[Edit] = []
    for mapping in targets:
        when = marked_on(source.comments_about(mapping, "for"), "for")
        if when is not None and when >= context.since:
            context.notes.append(
                f"{name}: flapping, but tune set its `for` on {when}: the history since {context.since} is partly"
                " from before (try again with a --since after that day)"
            )
            return None
        made = source.set_value(mapping, "for", format_duration(new), note, LATER_KEYS)
        if not made:
            context.notes.append(f"{name}: flapping, but {file} cannot take a `for` there; raise it by hand")
            return None
        edits += made
    window = duration(context.limits.flap_window.total_seconds())
    firing = duration(found.median_firing_s)
    why = (
        f"{name} flapped {found.flaps} times in {context.period} on {found.flapping_series} series (re-fired within"
        f" {window} of resolving, firing {firing} in the median): `for` {old_text} → {format_duration(new)}, longer"
        f" than the condition held in the median episode ({format_duration(old)} + {firing})"
    )
    figures = {
        "flaps": found.flaps,
        "flapping_series": found.flapping_series,
        "flap_window_s": context.limits.flap_window.total_seconds(),
        "median_firing_s": found.median_firing_s,
        "for_s": old / 1000,
        "new_for_s": new / 1000,
    }

    def expect(catalog: Catalog) -> str | None:
        fors = {format_duration(a.for_ms) for a in catalog.alerts() if a.name == name}
        return None if fors == {format_duration(new)} else f"{name}: `for` is {', '.join(sorted(fors))} after the edit"

    return Proposal(file, "for", name, why, figures, edits, expect)


def _lower_severity(context: _Context, found: AlertQuality, alerts: list[Alert]) -> Proposal | None:
    name = found.alertname
    when = (
        f"{found.peak_hour_share:.0%} of them at {found.peak_hour:02d}:00"
        if found.peak_hour is not None
        else f"{found.peak_weekday_share:.0%} of them on a {found.peak_weekday}"
    )
    quiet = (
        f"{found.peak_hour:02d}:00-{(found.peak_hour + 1) % 24:02d}:00"
        if found.peak_hour is not None
        else f"{found.peak_weekday}s"
    )
    figures: dict[str, object] = {
        "fired": found.fired,
        "acknowledged": found.acknowledged,
        "peak_hour": found.peak_hour,
        "peak_hour_share": found.peak_hour_share,
        "peak_weekday": found.peak_weekday,
        "peak_weekday_share": found.peak_weekday_share,
    }
    finding = f"{name}: periodic ({when}) and never acknowledged"
    ranks = context.catalog.defaults.severities
    alert = alerts[0]
    severities = [level.severity for level in alert.levels]  # low → high
    if len(alerts) > 1:
        context.notes.append(f"{finding}, with variants: lower their severities, or mute {quiet}, by hand")
        return None
    if not severities or any(severity not in ranks for severity in severities) or ranks.index(severities[0]) == 0:
        what = "already the lowest severity" if severities and severities[0] == ranks[0] else "no ranked severity"
        context.notes.append(f"{finding}, {what}: mute {quiet} with quiet_hours on its route, or drop it")
        return None
    lower = {severity: ranks[ranks.index(severity) - 1] for severity in severities}
    assert alert.origin is not None
    file = context.file(alert)
    source = context.source(file)
    own = context.mapping(file, alert.origin.path, "alert", name)
    if source is None or own is None:
        context.notes.append(f"{finding}, but its mapping is not in {file} as the catalog reads it")
        return None
    if "severity" not in own and isinstance(own.get("labels"), dict) and "severity" in own["labels"]:
        context.notes.append(f"{finding}: its severity is a label; lower it, or mute {quiet}, by hand")
        return None
    levels = next((key for key in LEVEL_MAPS if isinstance(own.get(key), CommentedMap)), None)
    where = levels or "severity"  # a map of levels is renamed where it is; one severity set in `severity`
    marked = marked_on(source.comments_about(own, where), "severity")
    if marked is not None and marked >= context.since:
        context.notes.append(
            f"{finding}, but tune set its severity on {marked}: the history since {context.since} is partly from"
            " before (try again with a --since after that day)"
        )
        return None
    change = f"{', '.join(lower)} → {', '.join(lower.values())}"
    note = marker(context.today, f"severity {change} (periodic, never acknowledged)")
    if levels is not None:
        edits = source.rename_keys(own, levels, {old: scalar(new) for old, new in lower.items()}, note)
    elif len(lower) == 1:
        edits = source.set_value(own, "severity", scalar(lower[severities[0]]), note, LATER_KEYS)
    else:
        edits = []
    if not edits:
        context.notes.append(f"{finding}, but {file} cannot take a severity there; lower it by hand")
        return None
    why = (
        f"{name} fired {found.fired} times in {context.period}, {when}, and nobody acknowledged any: severity"
        f" {change} (or mute {quiet} with quiet_hours on its route)"
    )
    figures.update(severities=severities, new_severities=list(lower.values()))

    def expect(catalog: Catalog) -> str | None:
        now = [level.severity for a in catalog.alerts() if a.name == name for level in a.levels]
        return None if now == list(lower.values()) else f"{name}: severities {now} after the edit"

    return Proposal(file, "severity", name, why, figures, edits, expect)


def _review(context: _Context, found: AlertQuality, alert: Alert) -> Proposal | None:
    name = found.alertname
    assert alert.origin is not None
    file = context.file(alert)
    source = context.source(file)
    path = alert.origin.path if alert.variant is None else alert.origin.path[:-2]
    own = context.mapping(file, path, "alert", name)
    if source is None or own is None:
        context.notes.append(f"{name}: never fired, but its mapping is not in {file} as the catalog reads it")
        return None
    prefix = f"# {MARKER}: never fired"
    if any(line.strip().startswith(prefix) for line in source.comments_about(own, None)):
        return None  # marked by an earlier run
    text = f"{prefix} in the last {context.period} (since {context.since}): review or delete"
    edit = source.comment(own, None, text)
    if edit is None:
        context.notes.append(f"{name}: never fired in the last {context.period}; review or delete it")
        return None
    why = (
        f"{name} never fired in the last {context.period} (since {context.since}): review or delete it (a comment"
        " only: deleting could break what names it)"
    )
    return Proposal(file, "review", name, why, {"fired": 0, "since": context.since.isoformat()}, [edit])


@dataclass
class _Inhibition:
    """One new `inhibits` item: `source` mutes the followers of its cascades that share the labels `equal`."""

    source: str
    equal: list[str]
    cascades: list[Cascade]


def _inhibitions(context: _Context, cascades: list[Cascade]) -> list[Proposal | None]:
    """An inhibition for the cascades between catalog alerts not inhibited yet, one item per leader and `equal`.
    None that would close a loop (A mutes B, B mutes A: both are muted while both fire). The items of a group
    with no `inhibits` list yet (or an empty flow list) are one proposal, which writes the list."""
    catalog = context.catalog
    group_of: dict[str, Group] = {}
    for group in catalog.groups:
        for name in [a.name for a in group.alerts if not a.is_record] + [s.alert_name for s in group.slos]:
            group_of.setdefault(name, group)
    mutes: dict[str, set[str]] = defaultdict(set)  # source → targets, in the catalog and proposed
    for group in catalog.groups:
        for inhibit in group.inhibits:
            mutes[inhibit.source].update(inhibit.targets)
    items: dict[tuple[str, tuple[str, ...]], _Inhibition] = {}
    for cascade in cascades:
        leader, follower = cascade.leader, cascade.follower
        if leader not in group_of or follower not in group_of or follower in mutes[leader]:
            continue
        if _reaches(mutes, follower, leader):
            context.notes.append(
                f"{leader} → {follower}: a cascade, but {follower} already mutes {leader} (an inhibition, or a chain of"
                " them): one back would mute both while both fire; review which is the cause"
            )
            continue
        equal = [label for label in cascade.shared_labels if label not in NOT_EQUAL]
        if not equal:
            context.notes.append(
                f"{leader} → {follower}: a cascade, but their episodes had no label in common: an inhibition would"
                f" mute {follower} everywhere"
            )
            continue
        mutes[leader].add(follower)
        items.setdefault((leader, tuple(equal)), _Inhibition(leader, equal, [])).cascades.append(cascade)
    by_group: dict[int, list[_Inhibition]] = defaultdict(list)
    for item in items.values():
        by_group[id(group_of[item.source])].append(item)
    out: list[Proposal | None] = []
    for found in by_group.values():
        group = group_of[found[0].source]
        file = context.file(group)
        source = context.source(file)
        mapping = context.mapping(file, group.origin.path, "name", group.name)
        if source is None or mapping is None:
            context.notes.append(f"group {group.name}: cascades, but its mapping is not in {file} as read")
            continue
        present = mapping.get("inhibits") if "inhibits" in (mapping.lc.data or {}) else None
        for part in [found] if not present else [[item] for item in found]:
            new = [
                {
                    "source": scalar(item.source),
                    "targets": flow_list([c.follower for c in item.cascades]),
                    "equal": flow_list(item.equal),
                }
                for item in part
            ]
            edit = source.add_items(mapping, "inhibits", new, like="alerts")
            if edit is None:
                context.notes.append(f"group {group.name}: {file} cannot take an inhibition there; add it by hand")
                break
            out.append(_inhibit_proposal(context, file, group.name, part, edit))
    return out


def _reaches(mutes: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """Whether `start` mutes `goal`, directly or through alerts it mutes."""
    seen, todo = {start}, [start]
    while todo:
        for target in mutes.get(todo.pop(), ()):
            if target == goal:
                return True
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return False


def _inhibit_proposal(context: _Context, file: str, group: str, part: list[_Inhibition], edit: Edit) -> Proposal:
    window = duration(context.limits.cascade_window.total_seconds())
    whys = []
    for item in part:
        seen = [
            f"{c.follower} started within {window} of {c.leader} in {c.together} of {c.leader}'s {c.episodes}"
            f" episodes ({c.share:.0%}) in {context.period}"
            for c in item.cascades
        ]
        labels = ", ".join(f"{k}={item.cascades[0].shared_labels[k]}" for k in item.equal)
        targets = ", ".join(c.follower for c in item.cascades)
        whys.append(
            f"{'; '.join(seen)}, sharing {labels}: {item.source} inhibits {targets} on equal {', '.join(item.equal)}"
        )
    figures = {
        "window_s": context.limits.cascade_window.total_seconds(),
        "inhibitions": [
            {
                "source": item.source,
                "targets": [c.follower for c in item.cascades],
                "equal": item.equal,
                "cascades": [
                    {
                        "follower": c.follower,
                        "together": c.together,
                        "episodes": c.episodes,
                        "share": c.share,
                        "shared_labels": c.shared_labels,
                    }
                    for c in item.cascades
                ],
            }
            for item in part
        ],
    }
    wanted = {(item.source, c.follower, tuple(item.equal)) for item in part for c in item.cascades}

    def expect(catalog: Catalog) -> str | None:
        inhibits = [i for g in catalog.groups if g.name == group for i in g.inhibits]
        missing = wanted - {(i.source, t, tuple(i.equal)) for i in inhibits for t in i.targets}
        shown = ", ".join(f"{s} → {t}" for s, t, _ in sorted(missing))
        return f"group {group}: no inhibition {shown} after the edit" if missing else None

    sources = ", ".join(dict.fromkeys(item.source for item in part))
    return Proposal(file, "inhibit", sources, "; ".join(whys), figures, [edit], expect)
