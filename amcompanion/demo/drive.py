"""Which alert the demo drives, and the gauges that drive it.

The demo's exporter serves gauges whose values it sets, so it can drive an alert whose expression reads only
gauges: plain selectors combined with numbers, arithmetic, comparisons, `and`/`unless` and sum, avg, min, max or
count (absent() too). For such an alert it serves every metric the expression selects, with labels that satisfy
the selectors' matchers, holds all of them but one at HELD, and finds a value of that one that makes the chosen
severity fire (and none above it, which would mute it) and one that makes no severity fire. The values come from
evaluating the expression here, the way Prometheus does for one series per metric; what then runs is the real
thing: Prometheus evaluates the compiled rules on what it scrapes.
"""

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import promql_parser as pp

from amcompanion.catalog import promql
from amcompanion.catalog.model import Alert, Catalog
from amcompanion.compiler.rules import AlertRule, alert_rules, signal_expr
from amcompanion.proof.evaluate import ARITHMETIC, COMPARISONS
from amcompanion.proof.synthesize import plain

TARGET_LABELS = {"job": "node", "instance": "demo-node"}  # the exporter's scrape target
HELD = 100.0  # the value of every metric the expression reads but the driven one
WRITTEN_BY_PROMETHEUS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
DRIVABLE = (
    "An alert the demo can drive reads only gauges: plain selectors (no ranges, offsets or functions; not up, "
    "ALERTS or recording rules) combined with numbers, arithmetic, comparisons, and/unless and sum, avg, min, max "
    "or count, as threshold, expr and absent alerts often do; and one of its severities reaches an escalation "
    "policy."
)
AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count"})


# Candidate values: whole numbers first, then fractions, then the negatives (a gauge is rarely below 0).
_POSITIVE = [m * 10.0**e for e in range(13) for m in (1, 2, 5)] + [m * 10.0**-e for e in range(1, 4) for m in (5, 2, 1)]
SIMPLE = [0.0, *_POSITIVE, *(-v for v in _POSITIVE)]
GRID = sorted(SIMPLE)

SIDES = {">": "over", ">=": "at or over", "<": "under", "<=": "at or under", "==": "at", "!=": "off"}
Labels = dict[str, str]
Value = float | tuple[Labels, float] | None  # a number, a vector of one series, or no series


class Undrivable(Exception):
    """Why the demo cannot drive an alert, or any alert of a catalog."""


def _number(value: Value) -> float:
    return value if isinstance(value, float) else value[1]  # type: ignore[index]


def _matched(labels: Labels, modifier: object) -> Labels:
    """The labels a binary operation matches on: all of them, those of on(...), or those but ignoring(...)'s."""
    matching = getattr(modifier, "matching", None)
    if matching is None:
        return labels
    names = set(matching.labels)
    keep = matching.type == pp.LabelModifierType.Include
    return {k: v for k, v in labels.items() if (k in names) == keep}


def _binary(node: pp.BinaryExpr, left: Value, right: Value) -> Value:
    op, modifier = str(node.op), node.modifier
    vectors = not isinstance(left, float) and not isinstance(right, float)
    if op in ("and", "unless"):
        matched = left is not None and right is not None and _matched(left[0], modifier) == _matched(right[0], modifier)  # type: ignore[index]
        return left if matched == (op == "and") else None
    if op not in ARITHMETIC and op not in COMPARISONS:
        raise Undrivable(f"`{op}`")
    if left is None or right is None:
        return None
    a, b = _number(left), _number(right)
    if op in COMPARISONS:
        holds = COMPARISONS[op](a, b)
        if modifier is not None and modifier.return_bool:
            result = float(holds)
        elif not holds:
            return None
        else:  # a filter keeps the vector's own value
            result = b if isinstance(left, float) and not isinstance(right, float) else a
    else:
        try:
            result = ARITHMETIC[op](a, b)
        except (ValueError, OverflowError):
            result = math.nan
    if isinstance(left, float) and isinstance(right, float):
        return result
    if not vectors:
        return (right if isinstance(left, float) else left)[0], result  # type: ignore[index]
    if _matched(left[0], modifier) != _matched(right[0], modifier):  # type: ignore[index]
        return None
    card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
    if card == pp.VectorMatchCardinality.OneToMany:
        return right[0], result  # type: ignore[index]
    return (_matched(left[0], modifier) if card == pp.VectorMatchCardinality.OneToOne else left[0]), result  # type: ignore[index]


def _evaluate(node: object, served: Mapping[str, float | None], labels: Labels) -> Value:
    """`node` at one instant when every metric has one series with `labels`, at `served[metric]` (None or
    missing: not served); Undrivable naming what it cannot evaluate. Every node is visited whatever the values,
    so an evaluation with nothing served checks the whole expression."""
    if isinstance(node, pp.NumberLiteral):
        return float(node.val)
    if isinstance(node, pp.ParenExpr):
        return _evaluate(node.expr, served, labels)
    if isinstance(node, pp.VectorSelector):
        value = served.get(_metric(node))
        return None if value is None else (labels, value)
    if isinstance(node, pp.UnaryExpr):
        inner = _evaluate(node.expr, served, labels)
        return inner if inner is None else (-inner if isinstance(inner, float) else (inner[0], -inner[1]))
    if isinstance(node, pp.BinaryExpr):
        return _binary(node, _evaluate(node.lhs, served, labels), _evaluate(node.rhs, served, labels))
    if isinstance(node, pp.AggregateExpr) and str(node.op) in AGGREGATIONS and node.param is None:
        inner = _evaluate(node.expr, served, labels)
        if inner is None or isinstance(inner, float):
            return None
        modifier = node.modifier
        names = set(modifier.labels) if modifier is not None else set()
        keep = modifier is not None and modifier.type == pp.AggModifierType.By
        grouped = {k: v for k, v in inner[0].items() if (k in names) == keep} if modifier is not None else {}
        return grouped, 1.0 if str(node.op) == "count" else inner[1]
    if isinstance(node, pp.Call) and node.func.name == "absent" and len(node.args) == 1:
        inner = _evaluate(node.args[0], served, labels)
        return (promql.equality_labels(str(node.args[0])), 1.0) if inner is None else None
    if isinstance(node, pp.AggregateExpr):
        raise Undrivable(f"{node.op}()")
    if isinstance(node, pp.Call):
        raise Undrivable(f"{node.func.name}()")
    if isinstance(node, pp.MatrixSelector):
        raise Undrivable(f"a range ({node})")
    raise Undrivable(f"a {type(node).__name__}")


def _metric(selector: pp.VectorSelector) -> str:
    named = [m.value for m in selector.matchers.matchers if m.name == "__name__" and m.op == pp.MatchOp.Equal]
    return selector.name or (named[0] if named else "")


def _selectors(node: object) -> list[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []
    pp.walk(node, lambda item: found.append(item) if isinstance(item, pp.VectorSelector) else None)
    return found


def _check_selector(selector: pp.VectorSelector) -> str:
    """The metric a selector reads, if the exporter can serve it."""
    name = _metric(selector)
    if not name or any(m.name == "__name__" and m.op != pp.MatchOp.Equal for m in selector.matchers.matchers):
        raise Undrivable(f"its selector {selector} names no one metric")
    if name in WRITTEN_BY_PROMETHEUS:
        raise Undrivable(f"it reads {name}, which Prometheus writes itself")
    if ":" in name:
        raise Undrivable(f"it reads {name}, a recording rule's output (a colon in the name)")
    if selector.offset is not None or selector.at is not None or selector.matchers.or_matchers:
        raise Undrivable(f"its selector {selector} reads another time or uses `or`")
    return name


def _satisfies(value: str, matcher: pp.Matcher) -> bool:
    if matcher.op in (pp.MatchOp.Equal, pp.MatchOp.NotEqual):
        return (value == matcher.value) == (matcher.op == pp.MatchOp.Equal)
    try:
        found = re.fullmatch(matcher.value, value) is not None  # Prometheus anchors its regular expressions
    except re.error:
        return False
    return found == (matcher.op == pp.MatchOp.Re)


def _labels(selectors: list[pp.VectorSelector]) -> Labels:
    """One label set every selector matches: the target's job and instance, and for each label a matcher
    names a value that satisfies all its matchers (an equality's, "demo", a regex's alternatives, none)."""
    matchers: dict[str, list[pp.Matcher]] = {}
    for selector in selectors:
        for m in selector.matchers.matchers:
            if m.name != "__name__":
                matchers.setdefault(m.name, []).append(m)
    labels = dict(TARGET_LABELS)
    for name, ms in sorted(matchers.items()):
        candidates = [m.value for m in ms if m.op == pp.MatchOp.Equal]
        candidates += [TARGET_LABELS[name]] if name in TARGET_LABELS else ["demo"]
        candidates += [part for m in ms if m.op == pp.MatchOp.Re for part in m.value.split("|")]
        candidates += [] if name in TARGET_LABELS else [""]  # the target always sets job and instance
        value = next((c for c in candidates if all(_satisfies(c, m) for m in ms)), None)
        if value is None:
            raise Undrivable(f"no value of the label {name} satisfies {', '.join(map(str, ms))}")
        if value:
            labels[name] = value
        else:
            labels.pop(name, None)
    return dict(sorted(labels.items()))


@dataclass(frozen=True)
class Drive:
    """One severity of one alert, and the gauges that make it fire and resolve."""

    alert: Alert
    severity: str | None  # None: its rules carry no severity label
    policy: str  # the escalation policy its route reaches
    rule: AlertRule
    expression: pp.Expr
    labels: Labels  # of every series the exporter serves
    held: dict[str, float]  # every metric read besides the driven one
    metric: str  # the driven one
    calm: float | None  # its value while no severity fires; None: not served
    fire: float | None  # its value while the severity fires

    def served(self, value: float | None) -> dict[str, float | None]:
        return {self.metric: value, **self.held}

    def signal(self, value: float | None) -> float | None:
        """What the alert compares with its level when the driven metric is `value`; None: no series."""
        result = _evaluate(self.expression, self.served(value), self.labels)
        return None if result is None else _number(result)

    def series(self, metric: str, value: float | None) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{metric}{{{labels}}} " + ("not served" if value is None else f"{value:g}")

    def explain(self, value: float | None) -> str:
        """What the alert's expression makes of `value`, as the narration says it."""
        name, signal = self.alert.name, self.signal(value)
        if self.rule.level is None:
            returns = "returns a series: it fires" if signal is not None else "returns nothing"
            return f"{name}'s expression {returns}"
        if signal is None:
            return f"{name}'s expression returns nothing"
        if self.rule.holds(signal):
            side = SIDES[self.alert.comparison or ">"]
            level = f"{self.severity} level" if self.severity else "level"
            return f"{name}'s expression is {signal:g}, {side} its {level} ({self.rule.level:g})"
        levels = ", ".join(f"{level.severity or 'level'} {level.value:g}" for level in self.alert.levels)
        return f"{name}'s expression is {signal:g}, past none of its levels ({levels})"


def _bisect(f: Callable[[float], float | None], aim: float) -> Iterator[float]:
    """Values where f crosses `aim`, between neighbours of GRID: the non-negative first, nearest 0 first."""
    points = [(v, f(v)) for v in GRID]
    brackets = [
        (lo, hi)
        for (lo, a), (hi, b) in itertools.pairwise(points)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and (a - aim) * (b - aim) <= 0
    ]
    for lo, hi in sorted(brackets, key=lambda b: (b[0] < 0, abs(b[0]))):
        rising = (f(hi) or 0) >= (f(lo) or 0)
        for _ in range(200):
            mid = (lo + hi) / 2
            value = f(mid)
            if value is None or mid in (lo, hi):
                break
            if (value < aim) == rising:
                lo = mid
            else:
                hi = mid
        yield (lo + hi) / 2


def _aims(rule: AlertRule, rules: list[AlertRule], comparison: str | None) -> tuple[float | None, float | None]:
    """Where the expression should land: inside the severity's band (halfway to the next level; past the last
    one by half the band below it, or by a tenth), and a tenth short of the first level."""
    if rule.level is None:
        return None, None
    if comparison in ("==", "!="):
        beside = rule.level + _pad(rule.level)
        return (rule.level, beside) if comparison == "==" else (beside, rule.level)
    sign = 1.0 if comparison in (">", ">=") else -1.0
    levels = sorted({r.level for r in rules if r.level is not None}, key=lambda level: sign * level)
    below = [level for level in levels if sign * level < sign * rule.level]
    beyond = [level for level in levels if sign * level > sign * rule.level]
    if beyond:
        fire = (rule.level + beyond[0]) / 2
    else:
        fire = rule.level + sign * (abs(rule.level - below[-1]) / 2 if below else _pad(rule.level))
    return fire, levels[0] - sign * _pad(levels[0])


def _pad(level: float) -> float:
    """A tenth of a level: far enough past it to read, near enough to stay in its band."""
    return abs(level) / 10 if level else 1.0


def _value(
    f: Callable[[float], float | None], aim: float | None, wanted: Callable[[float | None], bool]
) -> float | None:
    """A value of the driven metric that does what is wanted: near the aim, else a simple one, else none."""
    solved = [plain(v, wanted) for v in (_bisect(f, aim) if aim is not None else ())]
    for candidate in [*solved, *SIMPLE, None]:
        if wanted(candidate):
            return candidate
    raise Undrivable("no value")


def _signal_expr(alert: Alert) -> str:
    if alert.kind == "absent":
        return f"absent({alert.expr})"
    expr = signal_expr(alert)
    if expr is None:
        raise Undrivable(f"a {alert.kind} alert fires on other alerts: drive one of them")
    return expr


@dataclass(frozen=True)
class Gauges:
    """What an alert's expression reads, when the exporter can serve all of it."""

    expression: pp.Expr
    metrics: list[str]
    labels: Labels


def _gauges(alert: Alert) -> Gauges:
    """The gauges `alert` reads, the same for each of its severities; Undrivable with the reason."""
    node = promql.parse(_signal_expr(alert))
    if isinstance(node, str):
        raise Undrivable(f"its expression does not parse: {node}")
    try:
        _evaluate(node, {}, {})
    except Undrivable as exc:
        raise Undrivable(f"its expression uses {exc}") from None
    selectors = _selectors(node)
    metrics = list(dict.fromkeys(_check_selector(s) for s in selectors))
    if not metrics:
        raise Undrivable("its expression reads no metric")
    return Gauges(node, metrics, _labels(selectors))


def _drive_with(base: Drive, rules: list[AlertRule], above: list[AlertRule]) -> Drive:
    """`base` with the driven metric's values that make its severity fire alone, and none fire."""

    def fires(value: float | None) -> bool:
        signal = base.signal(value)
        return base.rule.holds(signal) and not any(r.holds(signal) for r in above)

    def calm(value: float | None) -> bool:
        signal = base.signal(value)
        return not any(r.holds(signal) for r in rules)

    fire_aim, calm_aim = _aims(base.rule, rules, base.alert.comparison)
    return dataclasses.replace(
        base, fire=_value(base.signal, fire_aim, fires), calm=_value(base.signal, calm_aim, calm)
    )


def _drive(alert: Alert, severity: str | None, policy: str, catalog: Catalog, read: Gauges) -> Drive:
    """How the demo makes `severity` of `alert` fire (and no severity above it, which would mute it) and then
    resolve: one metric moves, the others stay at HELD; Undrivable when no metric can do it."""
    rules = [rule for rule in alert_rules(alert) if "escalated_from" not in rule.labels]
    rule = next(r for r in rules if r.severity == severity)
    rank = {name: i for i, name in enumerate(catalog.defaults.severities)}
    above = [r for r in rules if rank.get(r.severity, -1) > rank.get(severity, -1)]
    for metric in read.metrics:
        held = {m: HELD for m in read.metrics if m != metric}
        base = Drive(alert, severity, policy, rule, read.expression, read.labels, held, metric, None, None)
        try:
            return _drive_with(base, rules, above)
        except Undrivable:
            continue
    raise Undrivable(f"no value of {' or '.join(read.metrics)} makes {severity or 'it'} fire alone and then resolve")


def _policies_reached(route_tests: dict) -> dict[tuple[str, str | None], list[str]]:
    """(alertname, severity) → the receivers Alertmanager picks, from the compiled routes.test.yml."""
    reached: dict[tuple[str, str], list[str]] = {}
    for case in route_tests["tests"]:
        labels = case["labels"]
        if "escalated_from" not in labels:
            reached.setdefault((labels["alertname"], labels.get("severity")), case["receivers"])
    return reached


def _drives(alert: Alert, catalog: Catalog, reached: dict[tuple[str, str | None], list[str]]) -> Iterator[Drive | str]:
    """Each severity of `alert` the demo can drive through a policy, or why not."""
    try:
        read = _gauges(alert)
    except Undrivable as exc:
        yield str(exc)
        return
    for level in alert.levels:
        receivers = reached.get((alert.name, level.severity), [])
        policy = next((r for r in receivers if r in catalog.policies), None)
        if policy is None:
            reaches = f"{level.severity} reaches" if level.severity else "it reaches"
            yield f"{reaches} no escalation policy (only {', '.join(receivers) or 'no receiver'})"
            continue
        try:
            yield _drive(alert, level.severity, policy, catalog, read)
        except Undrivable as exc:
            yield str(exc)


def choose(catalog: Catalog, route_tests: dict, name: str | None = None) -> Drive:
    """The alert named `name`, or the first of the catalog the demo can drive through an escalation policy,
    preferring one whose policy has a second step (the escalation and the ack link are the story); within an
    alert, the first such severity. Undrivable with every alert's reason when there is none."""
    alerts = catalog.alerts()
    if name is not None:
        alerts = [alert for alert in alerts if alert.name == name]
        if not alerts:
            known = ", ".join(alert.name for alert in catalog.alerts()) or "none"
            raise Undrivable(f"--alert {name}: no such alert in this catalog (its alerts: {known})")
    reached = _policies_reached(route_tests)
    fallback: Drive | None = None
    reasons = []
    for alert in alerts:
        outcomes = list(_drives(alert, catalog, reached))
        for outcome in outcomes:
            if isinstance(outcome, Drive) and len(catalog.policies[outcome.policy].steps) > 1:
                return outcome
            if isinstance(outcome, Drive):
                fallback = fallback or outcome
        if not any(isinstance(outcome, Drive) for outcome in outcomes):
            reasons.append(f"  {alert.name}: {'; '.join(map(str, outcomes))}")
    if fallback is not None:
        return fallback
    subject = name if name is not None else "any alert of this catalog"
    raise Undrivable(
        f"the demo cannot drive {subject}:\n" + "\n".join(reasons) + f"\n{DRIVABLE} --alert takes the name of one."
    )
