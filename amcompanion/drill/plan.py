"""Which labels send a drill to a policy: found in the compiled route tree, so the drill proves the catalog's own
routing (a route that names no policy is never used, nor the self-monitoring one), checked by the same walk
Alertmanager does. Pure: the compiled Alertmanager config and a moment in, label sets out."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from amcompanion.catalog.durations import parse_duration
from amcompanion.compiler.alertmanager import matching_routes, parse_matcher
from amcompanion.drill.labels import ALERTNAME, DRILL_LABEL, POLICY_LABEL
from amcompanion.drill.quiet import muted_by

FILLER = "drill"  # a label value where a route wants one that is not empty


@dataclass(frozen=True)
class Target:
    """Labels that reach `policy`, through the top-level route `route` (its matchers, as the config has them)."""

    policy: str
    labels: dict[str, str]
    route: str
    muted: str | None  # the quiet hours muting that route at the moment asked about; None when it is live
    also: tuple[str, ...] = ()  # other receivers it reaches too (routes with `continue`)
    held_s: float = 0.0  # how long Alertmanager may hold it: the route's group_wait, or its group_interval when a
    # group of the same labels is still open (a drill of the same policy a minute before)


def _values(op: str, value: str) -> Iterator[str | None]:
    """Values of a label that may satisfy one matcher, likeliest first; None: leave the label out."""
    if op == "=":
        yield value
    elif op == "!=":
        yield None if value else FILLER
    elif op == "=~":
        yield from value.split("|")  # an alternation of names (the default routes by alertname), or a try
        yield re.sub(r"\\(.)", r"\1", value)
        yield FILLER
        yield None
    else:  # !~
        yield None
        yield FILLER


def _accepts(op: str, value: str, actual: str) -> bool:
    if op in ("=", "!="):
        return (actual == value) == (op == "=")
    return (re.fullmatch(value, actual) is not None) == (op == "=~")


def _satisfy(matchers: list[str], base: dict[str, str]) -> dict[str, str] | None:
    """Labels over `base` that every matcher accepts (a label set already must do as it is); None if none found."""
    labels = dict(base)
    for text in matchers:
        label, op, value = parse_matcher(text)
        if label in labels:
            if not _accepts(op, value, labels[label]):
                return None
            continue
        fit = next((c for c in _values(op, value) if _accepts(op, value, c or "")), False)
        if fit is False:
            return None
        if fit is not None:
            labels[label] = fit
    return labels


def _within(node: dict, inner: dict) -> bool:
    return inner is node or any(_within(child, inner) for child in node.get("routes", []))


def _held_s(tree: dict, leaf: dict) -> float:
    """The longest Alertmanager may hold a new alert of the route `leaf`: its group_wait or group_interval (each
    inherited from the routes above; Alertmanager's defaults 30s and 5m)."""
    timing = {"group_wait": "30s", "group_interval": "5m"}

    def walk(node: dict, inherited: dict[str, str]) -> dict[str, str] | None:
        here = {**inherited, **{k: node[k] for k in timing if k in node}}
        if node is leaf:
            return here
        return next((t for child in node.get("routes", []) if (t := walk(child, here)) is not None), None)

    found = walk(tree, timing) or timing
    return max(parse_duration(found[k]) or 0 for k in timing) / 1000


def targets(config: dict, policy: str, severities: list[str], moment: datetime) -> list[Target]:
    """Every way the catalog's routes reach `policy`, in the tree's order, with the quiet hours that mute each
    at `moment`. Each top-level route to the policy is tried with each severity, most severe first (a route
    without a severity matcher carries them all), and kept when Alertmanager would really send it there."""
    tree = config["route"]
    intervals = {item["name"]: item["time_intervals"] for item in config.get("time_intervals", [])}
    found: list[Target] = []
    for node in tree.get("routes", []):
        if node.get("receiver") != policy:
            continue
        matchers = node.get("matchers", [])
        if any(parse_matcher(m)[0] == "amcompanion_self_monitoring" for m in matchers):
            continue
        for severity in reversed(severities):  # the catalog lists them least severe first
            base = {"alertname": ALERTNAME, DRILL_LABEL: "true", POLICY_LABEL: policy, "severity": severity}
            labels = _satisfy(matchers, base)
            if labels is None:  # a route by alert name (a group's default policy): the drill takes one of those
                labels = _satisfy(matchers, {k: v for k, v in base.items() if k != "alertname"})
            if labels is None:
                continue
            routes = matching_routes(tree, labels)
            leaf = next((route for route in routes if _within(node, route.node)), None)
            if leaf is None:
                continue  # an earlier route takes these labels (elsewhere, or to the policy by another way)
            receivers = [route.receiver for route in routes]
            target = Target(
                policy,
                dict(sorted(labels.items())),
                ", ".join(matchers) or "(every alert)",
                muted_by(leaf.node, intervals, moment),
                tuple(r for r in receivers if r != policy),
                _held_s(tree, leaf.node),
            )
            found.append(target)
            break  # one severity per route is enough
    return found


def choose(config: dict, policy: str, severities: list[str], moment: datetime) -> list[Target]:
    """The routes to drill through, the live ones first: the first is the one to use."""
    found = targets(config, policy, severities, moment)
    return sorted(found, key=lambda t: t.muted is not None)
