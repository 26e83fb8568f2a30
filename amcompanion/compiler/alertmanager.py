"""The catalog's people-side → Alertmanager config: routes, receivers, inhibitions, time intervals."""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from amcompanion.catalog import promql
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Catalog, Route
from amcompanion.compiler.rules import AlertRule
from amcompanion.compiler.slo import SLOPlan

UNROUTED = "unrouted"
# Labels that tell series of one alert apart in common exporters; the automatic severity inhibition
# compares them (plus every label the alert's PromQL names) so a critical on one host never mutes a
# warning on another. Listing a label both sides lack is harmless: absent labels compare equal.
IDENTITY_LABELS = (
    "cluster",
    "namespace",
    "job",
    "instance",
    "pod",
    "container",
    "service",
    "node",
    "device",
    "mountpoint",
    "persistentvolumeclaim",
    "deployment",
    "statefulset",
    "daemonset",
)


@dataclass(frozen=True)
class RoutedAlert:
    """An alert's static label set (what Alertmanager routes on) and where it comes from."""

    name: str
    labels: dict[str, str]
    policy: str | None  # the policy its group (or the alert itself) names as default


def matcher(label: str, op: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{label}{op}"{escaped}"'


def severity_children(catalog: Catalog) -> list[dict]:
    """Per-severity group_wait/group_interval/repeat_interval as child routes that inherit everything else."""
    d = catalog.defaults
    children = []
    for severity in reversed(d.severities):
        timing = {}
        for key, values in (
            ("group_wait", d.group_wait),
            ("group_interval", d.group_interval),
            ("repeat_interval", d.repeat_interval),
        ):
            if severity in values:
                timing[key] = format_duration(values[severity])
        if timing:
            children.append({"matchers": [matcher("severity", "=", severity)], **timing})
    return children


def native_name(route: Route, index: int) -> str:
    return route.name or f"native-{index}"


def _route_node(route: Route, index: int, children: list[dict]) -> dict:
    node: dict = {"receiver": route.escalation or native_name(route, index)}
    if route.matchers:
        node["matchers"] = [matcher(*m) for m in route.matchers]
    for key in ("group_by", "group_wait", "group_interval", "repeat_interval"):
        if key in route.overrides:
            node[key] = route.overrides[key]
    if route.quiet_hours:
        node["mute_time_intervals"] = route.quiet_hours
    if route.active_hours:
        node["active_time_intervals"] = route.active_hours
    if route.continue_:
        node["continue"] = True
    fixed = [value for label, op, value in route.matchers if label == "severity" and op == "="]
    if len(fixed) == 1:  # a route for one severity needs only that severity's timing
        children = [c for c in children if c["matchers"] == [matcher("severity", "=", fixed[0])]]
    if children:
        # Alertmanager does not pass a route's time intervals down to its children, and the timing children are
        # where the route's alerts end: each carries them, or the route's quiet hours would mute nothing
        intervals = {key: node[key] for key in ("mute_time_intervals", "active_time_intervals") if key in node}
        node["routes"] = [{**child, **intervals} for child in children]
    return node


def route_tree(catalog: Catalog, routed: list[RoutedAlert], first: Route | None = None) -> dict:
    """The tree under the root: `first` (the self-monitoring route), the catalog's routes, the default policies'."""
    d = catalog.defaults
    children = severity_children(catalog)
    routes = [_route_node(first, -1, children)] if first is not None else []
    routes += [_route_node(route, i, children) for i, route in enumerate(catalog.routes)]
    by_policy: dict[str, set[str]] = {}
    for alert in routed:
        if alert.policy:
            by_policy.setdefault(alert.policy, set()).add(alert.name)
    for policy, names in sorted(by_policy.items()):
        routes.append(
            {
                "receiver": policy,
                "matchers": [matcher("alertname", "=~", "|".join(sorted(names)))],
                **({"routes": children} if children else {}),
            }
        )
    routes += children
    root: dict = {"receiver": d.escalation or UNROUTED, "group_by": d.group_by}
    for key, values in (
        ("group_wait", d.group_wait),
        ("group_interval", d.group_interval),
        ("repeat_interval", d.repeat_interval),
    ):
        if "*" in values:
            root[key] = format_duration(values["*"])
    if routes:
        root["routes"] = routes
    return root


def receivers(catalog: Catalog, first: Route | None = None) -> list[dict]:
    out = []
    token = catalog.receiver.bearer_token_file
    for policy in sorted(catalog.policies):
        webhook: dict = {"url": f"{catalog.receiver.url}/webhook/{policy}", "send_resolved": True, "max_alerts": 0}
        if token:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": token}}
        out.append({"name": policy, "webhook_configs": [webhook]})
    if first is not None and first.native is not None:
        out.append({"name": native_name(first, -1), **first.native})
    for i, route in enumerate(catalog.routes):
        if route.native is not None:
            out.append({"name": native_name(route, i), **route.native})
    if not catalog.defaults.escalation:
        out.append({"name": UNROUTED})
    return out


def _shift_weekdays(specs: list[str]) -> list[str]:
    """The weekdays of the after-midnight half of an overnight window: each day's next day."""
    days = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    chosen: set[int] = set()
    for spec in specs:
        start, _, end = spec.lower().partition(":")
        first, last = days.index(start), days.index(end or start)
        chosen.update(range(first, last + 1))
    shifted = sorted((d + 1) % 7 for d in chosen)
    ranges: list[list[int]] = []
    for day in shifted:
        if ranges and ranges[-1][1] == day - 1:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [days[a] if a == b else f"{days[a]}:{days[b]}" for a, b in ranges]


def time_interval(spec: dict) -> list[dict]:
    """Alertmanager wants start < end within a day: an overnight range (22:00-07:00) is split in two."""
    times = spec.get("times", [])
    same_day = [t for t in times if t["start_time"] < t["end_time"]]
    overnight = [t for t in times if t["start_time"] > t["end_time"]]
    if not overnight:
        return [spec]
    rest = {k: v for k, v in spec.items() if k != "times"}
    evening = {**rest, "times": same_day + [{"start_time": t["start_time"], "end_time": "24:00"} for t in overnight]}
    morning = {**rest, "times": [{"start_time": "00:00", "end_time": t["end_time"]} for t in overnight]}
    if "weekdays" in spec:
        morning["weekdays"] = _shift_weekdays(spec["weekdays"])
    return [evening, morning]


def time_intervals(catalog: Catalog) -> list[dict]:
    return [
        {"name": name, "time_intervals": [part for spec in specs for part in time_interval(spec)]}
        for name, specs in sorted(catalog.quiet_hours.items())
    ]


def inhibit_rules(catalog: Catalog, rules: list[AlertRule], plans: list[SLOPlan]) -> list[dict]:
    out = []
    for group in catalog.groups:
        for inhibit in group.inhibits:
            targets = sorted(inhibit.targets)
            target = (
                matcher("alertname", "=", targets[0])
                if len(targets) == 1
                else matcher("alertname", "=~", "|".join(targets))
            )
            rule: dict = {"source_matchers": [matcher("alertname", "=", inhibit.source)], "target_matchers": [target]}
            if inhibit.equal:
                rule["equal"] = inhibit.equal
            out.append(rule)
    slo_group_by = sorted({label for p in plans for label in p.slo.group_by})
    if catalog.defaults.inhibit_lower_severities:
        severities = catalog.defaults.severities
        used: set[str] = set()
        identity = set(IDENTITY_LABELS) | {g for g in catalog.defaults.group_by if g != "alertname"}
        multi = {}
        for rule in rules:
            multi.setdefault(rule.alert.name, set()).add(rule.severity)
        for rule in rules:
            if len(multi[rule.alert.name]) > 1:
                used.add(rule.severity)
                for expr in (rule.alert.expr, rule.alert.errors, rule.alert.total):
                    identity |= promql.mentioned_labels(expr) if expr else set()
        for plan in plans:
            if len(plan.alerts) > 1:
                used |= {a.tier.severity for a in plan.alerts}
                identity |= {"sloth_id", *plan.slo.group_by}
        identity.discard("severity")
        ordered = [s for s in severities if s in used]
        for i, higher in enumerate(ordered[1:], start=1):
            lower = ordered[:i]
            target = (
                matcher("severity", "=", lower[0]) if len(lower) == 1 else matcher("severity", "=~", "|".join(lower))
            )
            out.append(
                {
                    "source_matchers": [matcher("severity", "=", higher)],
                    "target_matchers": [target],
                    "equal": ["alertname", *sorted(identity)],
                }
            )
    if any(len(p.alerts) > 1 for p in plans):
        out.append(
            {
                "source_matchers": [matcher("sloth_severity", "=", "page")],
                "target_matchers": [matcher("sloth_severity", "=", "ticket")],
                "equal": ["alertname", "sloth_id", *slo_group_by],
            }
        )
    return out


def alertmanager_config(
    catalog: Catalog,
    routed: list[RoutedAlert],
    rules: list[AlertRule],
    plans: list[SLOPlan],
    first: Route | None = None,
) -> dict:
    """`first`: a route tried before the catalog's, with its native receiver if it has one (self-monitoring)."""
    config: dict = {"route": route_tree(catalog, routed, first), "receivers": receivers(catalog, first)}
    inhibits = inhibit_rules(catalog, rules, plans)
    if inhibits:
        config["inhibit_rules"] = inhibits
    intervals = time_intervals(catalog)
    if intervals:
        config["time_intervals"] = intervals
    return config


# -- what Alertmanager will do with a label set: the same walk as its dispatch.Route.Match ----------------
_MATCHER = re.compile(r'^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"$', re.S)


def parse_matcher(text: str) -> tuple[str, str, str]:
    """A matcher string of the generated config (`matcher`'s output) as (label, op, value)."""
    match = _MATCHER.match(text)
    assert match, text
    label, op, raw = match.groups()
    return label, op, raw.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


@functools.cache
def _compiled(text: str) -> Callable[[dict[str, str]], bool]:
    """A matcher string of the generated config as a predicate (parsed once: route trees repeat them)."""
    label, op, value = parse_matcher(text)
    if op in ("=", "!="):
        equal = op == "="
        return lambda labels: (labels.get(label, "") == value) == equal
    if op == "=~" and re.fullmatch(r"[\w:]+(\|[\w:]+)*", value):
        names = frozenset(value.split("|"))  # an alternation of names: a set lookup, not a regex
        return lambda labels: labels.get(label, "") in names
    pattern = re.compile(value)
    found = op == "=~"
    return lambda labels: (pattern.fullmatch(labels.get(label, "")) is not None) == found


@dataclass
class _CompiledRoute:
    """A route of the generated tree, its matchers compiled: route tests walk it once per alert."""

    matchers: list[Callable[[dict[str, str]], bool]]
    receiver: str
    children: list["_CompiledRoute"]
    continues: bool
    node: dict  # the route as generated: its timing and time intervals (Alertmanager does not inherit those)

    @classmethod
    def of(cls, node: dict, inherited: str) -> "_CompiledRoute":
        receiver = node.get("receiver", inherited)
        return cls(
            [_compiled(m) for m in node.get("matchers", [])],
            receiver,
            [cls.of(child, receiver) for child in node.get("routes", [])],
            bool(node.get("continue")),
            node,
        )

    def resolve(self, labels: dict[str, str], out: list["_CompiledRoute"]) -> bool:
        """Alertmanager's dispatch.Route.Match: the deepest matching routes, in order."""
        for matches in self.matchers:
            if not matches(labels):
                return False
        matched_child = False
        for child in self.children:
            if child.resolve(labels, out):
                matched_child = True
                if not child.continues:
                    break
        if not matched_child:
            out.append(self)
        return True


def matching_routes(tree: dict | _CompiledRoute, labels: dict[str, str]) -> list[_CompiledRoute]:
    """The routes Alertmanager picks for `labels` (the deepest that match), in order."""
    route = tree if isinstance(tree, _CompiledRoute) else _CompiledRoute.of(tree, tree["receiver"])
    out: list[_CompiledRoute] = []
    route.resolve(labels, out)
    return out


def receivers_for(tree: dict | _CompiledRoute, labels: dict[str, str]) -> list[str]:
    """Receivers Alertmanager picks for `labels`, in order, repeats kept (as amtool prints them)."""
    return [route.receiver for route in matching_routes(tree, labels)]


def route_tests(tree: dict, routed: list[RoutedAlert]) -> dict:
    routing = routing_labels(tree)
    compiled = _CompiledRoute.of(tree, tree["receiver"])
    known: dict[tuple, list[str]] = {}  # alerts that agree on every label a matcher names route alike
    cases = []
    for alert in routed:
        labels = {**alert.labels, "alertname": alert.name}
        key = tuple(labels.get(name, "") for name in routing)
        if key not in known:
            known[key] = receivers_for(compiled, labels)
        cases.append(
            {
                "name": f"{alert.name} {labels.get('severity', '')}".strip(),
                "labels": dict(sorted(labels.items())),
                "receivers": known[key],
            }
        )
    return {"tests": cases}


def routing_labels(node: dict) -> list[str]:
    """Every label name a matcher of the route tree reads."""
    names = {_MATCHER.match(text).group(1) for text in node.get("matchers", [])}  # type: ignore[union-attr]
    for child in node.get("routes", []):
        names.update(routing_labels(child))
    return sorted(names)
