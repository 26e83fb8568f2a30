"""Input series that put an alert's own query just short of a level, then just past it.

Every metric the query reads gets series whose labels satisfy its selector's matchers and carry every label the
query groups, matches or templates on (and `instance`, `job`), shaped by how the query reads it: a counter
under `rate`/`increase`/`irate`, a ramp under `deriv`/`predict_linear`/`delta`, a timestamp in `time() - x`,
classic buckets under `histogram_quantile`, a staircase under `changes`, a sawtooth under `resets`, a gauge
otherwise. One metric (or all) is *driven* by a parameter while the others are held; the parameter is solved,
by evaluating the query here (`evaluate`), so that the value lands within one unit of the level's last digit
on either side. Where the query aggregates, a second series of the driven metric is held quiet beside it, so
that `sum` and `max`, or `by (a)` and `by (a, b)`, give different alerts. The test then states what the query
returns at every step: the series it really outputs, their labels and values.
"""

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace

from amcompanion.proof import tree as T
from amcompanion.proof.evaluate import (
    COMPARISONS,
    NAME,
    Inputs,
    Labels,
    Unsupported,
    Vector,
    labels_of,
    over_steps,
    with_records,
)

HELD = (100.0, 1.0, 0.0)  # values tried for the metrics that are not driven
SPREAD_LABELS = ("instance", "pod", "job", "amcompanion_replica")  # what tells a second series apart
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase"})
RAMP_FUNCTIONS = frozenset({"deriv", "predict_linear", "delta", "idelta"})
BUCKET_BOUNDS = tuple(m * 10.0**e for e in range(-3, 5) for m in (1, 3))  # 0.001 to 30000, and +Inf
BUCKET_RATE = 10.0  # observations per second (counters) or in all (gauges) of a bucketed metric
STANDARD_LABELS = ("instance", "job")
_POSITIVE = [m * 10.0**e for e in range(-3, 10) for m in (1, 2, 5)]
POSITIVE_GRID = _POSITIVE  # the parameters tried, from 0 outwards, when a query is not linear in its parameter
NEGATIVE_GRID = [-v for v in _POSITIVE]
SOLVE_STEPS = 60
# Per alert, in series × steps simulated: past this its query is reported unproven rather than slow a compile
# down (an anomaly over a histogram's buckets would take tens of seconds). The same inputs, the same verdict.
WORK_BUDGET = 400_000
SETTLE_STEPS = 60  # windows longer than this many test steps are not waited for
MAX_SHIFTS = 12  # where rules are evaluated every few samples: starts of the second phase tried between two
# Functions whose window holds an extreme or the last value for its length: a third phase shows that length.
HOLDING_FUNCTIONS = frozenset(
    {"max_over_time", "min_over_time", "last_over_time", "present_over_time", "quantile_over_time"}
)


class Unprovable(Exception):
    """Why an alert's query cannot be driven from synthetic inputs."""


@dataclass(frozen=True)
class Input:
    """One input series: its metric and labels, how its values move, and what sets them."""

    metric: str
    labels: dict[str, str]
    shape: str  # gauge, counter, ramp, timestamp, buckets, staircase, sawtooth
    driven: bool = True
    bound: float | None = None  # a bucket's upper bound (le)
    fixed: float | None = None  # a quiet replica's amount, whatever the parameter
    source: str = ""  # the selector it is fed for: the series of one selector are driven together
    decoy: bool = False  # excluded by a negative matcher of its selector

    def series_labels(self) -> Labels:
        return labels_of({NAME: self.metric, **self.labels})

    def amount(self, parameter: float, held: float) -> float:
        if self.fixed is not None:
            return self.fixed
        value = parameter if self.driven else held
        if self.bound is not None:  # observations spread evenly over [0, value]: the quantile q is q × value
            if math.isinf(self.bound) or value <= 0:
                return BUCKET_RATE
            return BUCKET_RATE * min(1.0, self.bound / value)
        return value


@dataclass(frozen=True)
class World:
    """Inputs with a parameter for each of two phases: `before` for samples [0, n), `after` from n on."""

    inputs: tuple[Input, ...]
    held: float
    interval_ms: int
    noisy: bool = False  # the first phase wobbles ±10% and the second ramps up (an anomaly's z-score needs both)

    def values(
        self, before: float, after: float, n: int, steps: int, back: int | None = None
    ) -> list[list[float | None]]:
        """Each input's samples: `before`'s amount for [0, n), `after`'s from n, and `before`'s again from
        `back` if given (a window that holds a high value for its length shows it as the value falls)."""
        out: list[list[float | None]] = []
        seconds = self.interval_ms / 1000
        end = min(back if back is not None else steps, steps)
        for item in self.inputs:
            amounts = self._amounts(item, before, after, n, end, steps)
            shape = item.shape
            row: list[float | None]
            if shape in ("gauge", "buckets_gauge"):
                row = list(amounts)
            elif shape in ("counter", "buckets"):  # added one at a time, as promtool expands `a+bxN`
                row = list(itertools.accumulate((a * seconds for a in amounts[1:]), initial=0.0))
            elif shape == "timestamp":
                row = [i * seconds - a for i, a in enumerate(amounts)]
            else:
                row = []
                current = 0.0
                for i, amount in enumerate(amounts):
                    if shape == "ramp":  # a level before, then a slope per second from where it was
                        current = current + amount * seconds if n <= i < end else amount
                    elif shape == "staircase":  # `amount` changes per step, at most one per step
                        current = float(math.floor(i * min(max(amount, 0.0), 1.0)))
                    else:  # sawtooth: drops (counter resets) at `amount` per step
                        rate = min(max(amount, 0.0), 1.0)
                        current = (i * rate) % 1.0 if rate else 0.0
                    row.append(current)
            out.append(row)
        return out

    def _amounts(self, item: Input, before: float, after: float, n: int, end: int, steps: int) -> list[float]:
        """The item's amount at each step: constant within a phase, but for an anomaly's driven series."""
        start, later = item.amount(before, self.held), item.amount(after, self.held)
        first, second = min(n, steps), max(0, end - min(n, steps))
        if not (self.noisy and item.driven and item.fixed is None):
            return [start] * first + [later] * second + [start] * (steps - first - second)
        out = []
        for i in range(steps):
            wobble = (0.1 if i % 2 else -0.1) * (abs(start) or 1.0)
            if item.decoy:  # against the wobble: a decoy let in flattens the baseline
                out.append(start - wobble)
            elif n <= i < end:  # a spike that grows with the cube of its age, so it outruns its own baseline
                out.append(start + abs(later - start) * (i - n + 1) ** 3)
            else:  # a baseline that wobbles ±10%
                out.append(start + wobble)
        return out


def _selectors(node: T.Node) -> list[T.Selector]:
    return [item for item in T.walk(node) if isinstance(item, T.Selector)]


SHAPE_OF_FUNCTION = {
    **dict.fromkeys(COUNTER_FUNCTIONS, "counter"),
    **dict.fromkeys(RAMP_FUNCTIONS, "ramp"),
    "changes": "staircase",
    "resets": "sawtooth",
}


def _shapes(node: T.Node) -> dict[str, str]:
    """How the query reads each selector (by its text; the first reading wins)."""
    shapes: dict[str, str] = {}

    def visit(item: T.Node, shape: str) -> None:
        if isinstance(item, T.Selector):
            shapes.setdefault(item.text, shape)
        elif isinstance(item, T.Call):
            if item.name == "histogram_quantile":
                for arg in item.args:
                    visit(arg, "buckets_gauge")
                return
            inner = SHAPE_OF_FUNCTION.get(item.name)
            for arg in item.args:
                if shape.startswith("buckets"):
                    visit(arg, "buckets" if inner == "counter" else shape)
                else:
                    visit(arg, inner or ("gauge" if item.name.endswith("_over_time") else shape))
        elif isinstance(item, T.Binary) and item.op == "-" and (_is_time(item.lhs) or _is_time(item.rhs)):
            visit(item.lhs, "timestamp" if _is_time(item.rhs) else shape)
            visit(item.rhs, "timestamp" if _is_time(item.lhs) else shape)
        else:
            for child in T.children(item):
                visit(child, shape)

    visit(node, "gauge")
    return shapes


def _is_time(node: T.Node) -> bool:
    while isinstance(node, T.Paren):
        node = node.expr
    return isinstance(node, T.Call) and node.name == "time"


def _windows(node: T.Node) -> int:
    """The longest time a window reaches back: a range (with its offset), or an instant selector's offset."""
    longest = 0
    for item in T.walk(node):
        if isinstance(item, T.Range):
            longest = max(longest, item.range_ms + item.selector.offset_ms)
        elif isinstance(item, T.Subquery):
            longest = max(longest, item.range_ms + item.offset_ms)
        elif isinstance(item, T.Selector):
            longest = max(longest, item.offset_ms)
    return longest


def shortest_range_ms(text: str) -> int | None:
    """The shortest range the query reads (a test step must leave samples in it)."""
    node = T.parse(text)
    if isinstance(node, str):
        return None
    ranges = [item.range_ms for item in T.walk(node) if isinstance(item, T.Range | T.Subquery)]
    return min(ranges, default=None)


def _value_for(matchers: list[tuple[str, str, str]], default: str) -> str | None:
    """A value of one label that satisfies all of a selector's matchers on it ("" for none)."""
    candidates = [value for _, op, value in matchers if op == "="]
    for _, op, value in matchers:
        if op == "=~":
            candidates += [e for part in _alternatives(value) if (e := _example(part)) is not None]
    candidates += [default, f"{default}-other", ""]
    return next((c for c in candidates if all(satisfies(c, m) for m in matchers)), None)


def satisfies(value: str, matcher: tuple[str, str, str]) -> bool:
    _, op, expected = matcher
    if op in ("=", "!="):
        return (value == expected) == (op == "=")
    try:
        found = re.fullmatch(expected, value, re.DOTALL) is not None
    except re.error:
        return False
    return found == (op == "=~")


def _grouping_labels(node: T.Node) -> set[str]:
    """Labels the query aggregates by, matches on or groups in: a second series must differ in none."""
    names: set[str] = set()
    for item in T.walk(node):
        if isinstance(item, T.Aggregate):
            names.update(item.grouping)
        elif isinstance(item, T.Binary):
            names.update(item.matching)
            names.update(item.include)
    return names


def _labels_per_selector(node: T.Node) -> dict[str, set[str]]:
    """The labels each selector's series carry (by selector text): those every vector match names, and those
    the aggregations around it group by. `node_load1 / count without (cpu) (node_cpu_seconds_total)`: only
    node_cpu_seconds_total has a cpu, as in Prometheus, so the two sides still match one to one."""
    matched: set[str] = set()
    for item in T.walk(node):
        if isinstance(item, T.Binary):
            matched.update(item.matching)
            matched.update(item.include)
    out: dict[str, set[str]] = {}

    def visit(item: T.Node, around: frozenset[str]) -> None:
        if isinstance(item, T.Selector):
            out.setdefault(item.text, set()).update(around | matched)
            return
        inner = around | frozenset(item.grouping) if isinstance(item, T.Aggregate) else around
        for child in T.children(item):
            visit(child, inner)

    visit(node, frozenset())
    return out


def _unaggregated_matcher_labels(node: T.Node) -> set[str]:
    """Labels that selectors under no aggregation match on (and require, but for `label=""`)."""
    out: set[str] = set()

    def visit(item: T.Node) -> None:
        if isinstance(item, T.Selector):
            out.update(name for name, op, value in item.matchers if name != NAME and (op != "=" or value))
        elif not isinstance(item, T.Aggregate):
            for child in T.children(item):
                visit(child)

    visit(node)
    return out


def _has_aggregation(node: T.Node) -> bool:
    return any(isinstance(item, T.Aggregate) for item in T.walk(node))


def _metric(selector: T.Selector) -> str:
    return selector.name or next((v for n, op, v in selector.matchers if n == NAME and op == "="), "")


def inputs_for(node: T.Node, template_labels: set[str], recorded: set[str]) -> list[Input]:
    """The input series of every selector (recorded names excepted: their rules compute them), and beside each
    a decoy for each value its negative matchers exclude: a matcher edited by mistake then lets a decoy in."""
    shapes = _shapes(node)
    scoped = _labels_per_selector(node)
    common = set(template_labels) | set(STANDARD_LABELS)
    # A label a selector outside aggregations matches on is every selector's (series of one exporter share their
    # labels), but for the filters of an `unless`, which would then take away what it keeps; and the value one
    # asks for is every selector's first choice: `a{fstype!="tmpfs", job="x"} / b` then matches one to one.
    shared = _unaggregated_matcher_labels(node)
    filters = {
        item.text for b in T.walk(node) if isinstance(b, T.Binary) and b.op == "unless" for item in _selectors(b.rhs)
    }
    preferred: dict[str, str] = {}
    for selector in _selectors(node):
        for name, op, value in selector.matchers:
            if op == "=" and name != NAME and value:
                preferred.setdefault(name, value)
    out: dict[tuple, Input] = {}
    for selector in _selectors(node):
        metric = _metric(selector)
        if not metric:
            raise Unprovable(f"the selector {selector} names no metric")
        if metric in recorded:
            continue
        if metric in ("ALERTS", "ALERTS_FOR_STATE"):
            raise Unprovable(f"it reads {metric}, which Prometheus writes from other alerts")
        by_label: dict[str, list[tuple[str, str, str]]] = {}
        for matcher in selector.matchers:
            if matcher[0] != NAME:
                by_label.setdefault(matcher[0], []).append(matcher)
        labels: dict[str, str] = {}
        names = (
            common | scoped.get(selector.text, set()) | set(by_label) | (set() if selector.text in filters else shared)
        )
        for name in sorted(names - {NAME, "le"}):
            value = _value_for(by_label.get(name, []), preferred.get(name, f"{name}-1"))
            if value is None:
                raise Unprovable(f"no value of {name} satisfies {selector}")
            if value:
                labels[name] = value
        shape = shapes.get(selector.text, "gauge")
        variants = [(labels, False)] + [(decoy, True) for decoy in _decoys(selector, labels)]
        for series_labels, decoy in variants:
            if shape.startswith("buckets"):
                for bound in (*BUCKET_BOUNDS, math.inf):
                    le = "+Inf" if math.isinf(bound) else repr(bound)
                    item = Input(
                        metric, {**series_labels, "le": le}, shape, bound=bound, source=selector.text, decoy=decoy
                    )
                    out.setdefault((metric, tuple(sorted(item.labels.items()))), item)
            else:
                item = Input(metric, series_labels, shape, source=selector.text, decoy=decoy)
                out.setdefault((metric, tuple(sorted(series_labels.items()))), item)
    return list(out.values())


MAX_DECOYS = 4  # per matcher


def _decoys(selector: T.Selector, labels: dict[str, str]) -> list[dict[str, str]]:
    """Label sets the selector excludes by one negative matcher each (`!=` its value, `!~` an example of each
    alternative), the other labels as the selector wants them."""
    out = []
    for name, op, value in selector.matchers:
        if op == "!=" and value:
            excluded = [value]
        elif op == "!~":
            excluded = [e for part in _alternatives(value) if (e := _example(part)) is not None][:MAX_DECOYS]
        else:
            continue
        for candidate in excluded:
            if candidate and not satisfies(candidate, (name, op, value)):
                out.append({**labels, name: candidate})
    return out


def _alternatives(regex: str) -> list[str]:
    """The top-level alternatives of a regular expression (`a|b(c|d)` → `a`, `b(c|d)`)."""
    parts, depth, current = [], 0, ""
    for i, char in enumerate(regex):
        escaped = i > 0 and regex[i - 1] == "\\"
        if char in "([" and not escaped:
            depth += 1
        elif char in ")]" and not escaped:
            depth -= 1
        if char == "|" and depth == 0 and not escaped:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _example(regex: str) -> str | None:
    """A string the regular expression matches whole, made by the plainest reading of it; None if that fails."""
    text = regex.strip("^$")
    text = re.sub(r"\(([^()|]*)(\|[^()]*)?\)", r"\1", text)  # a group: its first alternative
    text = re.sub(r"\[\^?([^\]])[^\]]*\]", r"\1", text)  # a class: its first character
    text = re.sub(r"\.[*+]|\.\{\d+(,\d*)?\}", "x", text)  # any run of characters
    text = re.sub(r"(?<!\\)\.", "0", text)  # any character
    text = re.sub(r"[*?]|\{\d+(,\d*)?\}", "", text)
    text = text.replace("+", "")
    text = re.sub(r"\\(.)", r"\1", text)
    try:
        return text if re.fullmatch(regex, text, re.DOTALL) else None
    except re.error:
        return None


def replicas(node: T.Node, inputs: list[Input], before: float) -> list[Input] | None:
    """Quiet second series of the driven inputs, at the amount they have before the level is crossed, told
    apart by a label the query neither groups nor matches on; None when no label is free."""
    taken = _grouping_labels(node)
    out = []
    for item in inputs:
        if not item.driven or item.bound is not None or item.decoy:
            continue
        spread = next((name for name in SPREAD_LABELS if name not in taken and _free(node, item, name)), None)
        if spread is None:
            return None
        out.append(replace(item, labels={**item.labels, spread: f"{spread}-2"}, fixed=before))
    return out


def _free(node: T.Node, item: Input, label: str) -> bool:
    """Whether every selector of the item's metric leaves `label` free to take another value."""
    return all(
        satisfies(f"{label}-2", m)
        for selector in _selectors(node)
        if _metric(selector) == item.metric
        for m in selector.matchers
        if m[0] == label
    )


def plain(value: float, wanted: Callable[[float], bool]) -> float:
    """`value` with the fewest decimals that still does what is wanted (7.5 → 7, 0.9 → 0)."""
    for places in range(16):
        scale = 10.0**places
        for candidate in (math.floor(value * scale) / scale, math.ceil(value * scale) / scale):
            if wanted(candidate):
                return candidate
    return value


@dataclass(frozen=True)
class Target:
    """Where one phase should put the query: `wanted` within a unit of the level, `accepted` at least on the
    right side. `aim` is the value of `lead` to solve for; None: the query's presence is the target, and the
    parameter is taken as near the edge between presence and absence as can be found."""

    wanted: Callable[[Vector | None], bool]
    accepted: Callable[[Vector | None], bool]
    aim: float | None
    lead: Callable[[Vector], float] = lambda vector: vector[0][1]
    margin: float = 1.0  # where presence is the target: how many EDGE_STEPs past the edge to sit


def level_targets(
    holds: Callable[[float], bool], comparison: str, level: float, low: float, high: float
) -> tuple[Target, Target]:
    """Before: nothing holds and the value is within a unit of the level, in the half further from it; after: the
    lead series holds, in the half of a unit nearer the level. For == (!=) the holding (quiet) side is the level
    itself. A window twice as long, measured as the query settles, reads half of each phase: their mean, short
    of the level, so a doubled (or halved) window crosses it at another evaluation."""
    lead = {">": _max, ">=": _max, "<": _min, "<=": _min}.get(comparison, lambda v: _closest(v, level))
    rising = comparison in (">", ">=")
    below, above = (low, (low + level) / 2), ((level + high) / 2, high)  # the halves further from the level
    near_below, near_above = ((low + level) / 2, level), (level, (level + high) / 2)

    either = (low, high)
    before_band = either if comparison == "==" else below if rising else above
    after_band = either if comparison == "!=" else near_above if rising else near_below

    def lands(vector: Vector, exact: bool, band: tuple[float, float]) -> bool:
        value = lead(vector)
        return value == level if exact else band[0] < value < band[1] and value != level

    def before_wanted(vector: Vector | None) -> bool:
        if not vector or any(holds(v) for _, v in vector):
            return False
        return lands(vector, comparison == "!=", before_band)

    def after_wanted(vector: Vector | None) -> bool:
        if not vector or not holds(lead(vector)):
            return False
        return lands(vector, comparison == "==", after_band)

    before = Target(
        before_wanted,
        lambda vector: vector is not None and _finite(vector) and not any(holds(v) for _, v in vector),
        {"!=": level, "==": (level + high) / 2}.get(comparison, sum(below if rising else above) / 2),
        lead,
    )
    after = Target(
        after_wanted,
        lambda vector: bool(vector) and _finite(vector) and any(holds(v) for _, v in vector),
        {"==": level, "!=": (low + level) / 2}.get(comparison, sum(near_above if rising else near_below) / 2),
        lead,
    )
    return before, after


def presence_targets() -> tuple[Target, Target]:
    """Absent, then present: the first phase three times as far from the edge as the second, so that a window
    twice as long, half in each, still returns nothing where the query's own has turned up."""
    absent = Target(lambda v: v is not None and not v, lambda v: v is not None and not v, None, margin=3.0)
    present = Target(lambda v: bool(v), lambda v: bool(v), None)
    return absent, present


def _finite(vector: Vector) -> bool:
    """No ±Inf or NaN: a held denominator of 0 makes them, and no real input looks like that."""
    return all(math.isfinite(v) for _, v in vector)


def _max(vector: Vector) -> float:
    return max(v for _, v in vector)


def _min(vector: Vector) -> float:
    return min(v for _, v in vector)


def _closest(vector: Vector, level: float) -> float:
    return min((v for _, v in vector), key=lambda v: abs(v - level))


EDGE_STEP = 1e-3  # where a query's presence is the target: each phase this far (relatively) from the edge


def _near_edge(edge: float, accepted: Callable[[float], bool]) -> Callable[[float], bool]:
    tolerance = max(abs(edge) * EDGE_STEP / 2, 1e-9)
    return lambda p: abs(p - edge) <= tolerance and accepted(p)


@dataclass
class Case:
    """One test of one alert: its input series sampled at each step, and what the query returns at each."""

    world: World
    before: float
    after: float
    n: int  # the first sample of the second phase
    steps: int  # samples
    outputs: list[Vector]  # at each evaluation
    back: int | None = None  # the first sample of the third phase, if any

    def series(self, steps: int | None = None) -> list[tuple[Input, list[float | None]]]:
        """Each input and its samples, over `steps` (the case's own by default; a longer test runs the last
        phase on)."""
        values = self.world.values(self.before, self.after, self.n, steps or self.steps, self.back)
        return list(zip(self.world.inputs, values, strict=True))


class Prover:
    """Solves the inputs of one alert's query and evaluates it over them."""

    def __init__(
        self, node: object, records: list[tuple[str, object]], interval_ms: int, non_negative: bool, every: int = 1
    ):
        self.node = node
        self.records = records
        self.interval_ms = interval_ms
        self.every = every  # rules are evaluated at every `every`-th sample only
        self.non_negative = non_negative
        self._labels: dict[int, tuple[World, list[Labels], dict]] = {}  # by world: its labels, their selections
        self._prefixes: dict[tuple, tuple[World, list]] = {}  # by (world, before, n): first-phase record rows
        self.work = 0  # series × steps simulated so far, against WORK_BUDGET

    def _inputs(self, world: World, before: float, after: float, n: int, total: int, back: int | None) -> Inputs:
        """The world's series, and its recording rules' rows: those of the first phase are computed once per
        world and parameter (an anomaly's baseline is hundreds of steps, solving runs it tens of times)."""
        key = id(world)
        if key not in self._labels or self._labels[key][0] is not world:
            self._labels[key] = (world, [item.series_labels() for item in world.inputs], {})
        _, labels, selected = self._labels[key]
        self.work += total * len(world.inputs)
        if self.work > WORK_BUDGET:
            raise Unprovable(
                "solving its inputs would take over "
                f"{WORK_BUDGET:,} series-steps of simulation (a long window over many series): give it examples"
            )
        inputs = Inputs(self.interval_ms, labels, world.values(before, after, n, total, back), selected)
        if not self.records:
            return inputs
        start = min(n, total)
        prefix = self._prefixes.get((key, before, start))
        fed, rows = with_records(
            inputs, self.records, prefix[1] if prefix else None, start if prefix else 0, self.every
        )
        if prefix is None and total >= start:
            self._prefixes[(key, before, start)] = (world, rows)
        return fed

    def outputs(
        self, world: World, before: float, after: float, n: int, steps: list[int], total: int, back: int | None = None
    ) -> list[Vector | None]:
        """The query at each of `steps` (None where Prometheus would refuse it)."""
        return over_steps(self.node, self._inputs(world, before, after, n, total, back), steps)

    def solve(self, measure: Callable[[float], Vector | None], target: Target) -> float | None:
        """A parameter whose measure is wanted (else accepted), plain where possible; None when none is."""
        cache: dict[float, Vector | None] = {}

        def at(p: float) -> Vector | None:
            if p not in cache:
                cache[p] = measure(p)
            return cache[p]

        def lead(p: float) -> float | None:
            vector = at(p)
            return target.lead(vector) if vector else None

        allowed = (lambda p: p >= 0) if self.non_negative else (lambda p: math.isfinite(p))
        if target.aim is not None:  # a query linear in the parameter is solved in one step
            points = [(p, lead(p)) for p in (1.0, 2.0, 4.0)]
            if all(v is not None and math.isfinite(v) for _, v in points):
                (p1, v1), (_, v2), (_, v4) = points
                if v1 == v2 == v4 and target.accepted(at(p1)):  # a query the parameter does not move
                    return p1
                slope = v2 - v1  # type: ignore[operator]
                if slope and math.isclose(v4 - v2, 2 * slope, rel_tol=1e-9, abs_tol=1e-12):  # type: ignore[operator]
                    guess = p1 + (target.aim - v1) / slope  # type: ignore[operator]
                    if allowed(guess):
                        found = plain(guess, lambda p: allowed(p) and target.wanted(at(p)))
                        if allowed(found) and target.wanted(at(found)):
                            return found
        marks: list[tuple[float, bool]] = []
        for side in (POSITIVE_GRID, NEGATIVE_GRID):  # nearest 0 first, and a gauge is rarely below 0
            previous: tuple[float, bool] | None = (0.0, target.accepted(at(0.0))) if allowed(0.0) else None
            if side is POSITIVE_GRID and previous is not None:
                marks.append(previous)
            for p in side:
                if not allowed(p):
                    continue
                here = (p, target.accepted(at(p)))
                marks.append(here)
                if previous is not None and previous[1] != here[1]:
                    # the first edge decides: a wanted parameter, or the accepted side as near the edge as goes
                    return self._bisect(at, target, allowed, previous, here)
                previous = here
        accepted = [p for p, ok in marks if ok]
        if not accepted:
            return None
        if target.aim is None:  # no edge: a typical value (a ramp's level of 0 would leave nothing to fall)
            return HELD[0] if HELD[0] in dict(marks) and dict(marks)[HELD[0]] else min(accepted, key=abs)
        # none lands within a unit (a count moves by whole numbers): the one that lands nearest the level
        return min(accepted, key=lambda p: (abs((lead(p) or 0.0) - target.aim), abs(p)))  # type: ignore[operator]

    @staticmethod
    def _bisect(
        at: Callable[[float], Vector | None],
        target: Target,
        allowed: Callable[[float], bool],
        one: tuple[float, bool],
        other: tuple[float, bool],
    ) -> float:
        """Between two parameters on either side of the target's edge: a wanted one, or else the accepted side
        as near the edge as a plain number goes."""
        good, bad = (one[0], other[0]) if one[1] else (other[0], one[0])
        for step in range(SOLVE_STEPS):
            mid = (good + bad) / 2
            if mid in (good, bad) or abs(good - bad) <= max(abs(good), 1e-9) * 1e-7:
                break
            if target.aim is not None and step % 2 == 0:  # every other step by the secant, bisecting between
                secant = _secant(good, bad, at, target)
                if secant is not None and min(good, bad) < secant < max(good, bad):
                    mid = secant
            if target.aim is not None and target.wanted(at(mid)):
                return plain(mid, lambda p: allowed(p) and target.wanted(at(p)))
            if target.accepted(at(mid)):
                good = mid
            else:
                bad = mid
        if target.aim is None:  # a fixed step past the edge, so that both phases sit as far from it
            edge = (good + bad) / 2
            beyond = edge + math.copysign(target.margin * EDGE_STEP * max(abs(edge), 1e-6), good - bad)
            found = plain(beyond, _near_edge(beyond, lambda p: allowed(p) and target.accepted(at(p))))
            return found if allowed(found) and target.accepted(at(found)) else good
        if target.wanted(at(good)):
            return plain(good, lambda p: allowed(p) and target.wanted(at(p)))
        # The edge itself is not wanted (the value sits on the level): the band lies a little further on.
        direction = math.copysign(max(abs(good), 1e-6), good - bad)
        for fraction in (1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3):
            probe = good + direction * fraction
            if allowed(probe) and target.wanted(at(probe)):
                return plain(probe, lambda p: allowed(p) and target.wanted(at(p)))
        return plain(good, _near_edge(good, lambda p: allowed(p) and target.accepted(at(p))))


def _secant(good: float, bad: float, at: Callable[[float], Vector | None], target: Target) -> float | None:
    """Where the line through the two ends' lead values meets the aim: a smooth query is solved in a few steps."""
    one, other = at(good), at(bad)
    if not one or not other or target.aim is None:
        return None
    a, b = target.lead(one), target.lead(other)
    if not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return None
    return good + (target.aim - a) * (bad - good) / (b - a)


@dataclass(frozen=True)
class Proof:
    """What the generated tests of one alert are built from: a case per level (one when it has none)."""

    cases: list[tuple[float | None, Case]]


def prove(
    query: str,
    records: list[tuple[str, str]],
    comparison: str | None,
    levels: list[float],
    template_labels: set[str],
    interval_ms: int,
    for_ms: int,
    noisy_levels: bool = False,
    neighbours: Callable[[float], tuple[float, float]] = lambda level: (level - 1, level + 1),
    eval_every: int = 1,
) -> Proof:
    """Inputs for `query` (the expression compared with the levels) at each level, or Unprovable.

    Inputs are sampled every `interval_ms`; rules are evaluated at every `eval_every`-th sample (a `for` of an
    hour needs few evaluations, a `rate[1m]` samples every 30s), so a case is measured and ends on an evaluation
    and its outputs are the query at each evaluation. `records` are the alert's own recording rules that `query`
    reads, in order; `noisy_levels` (anomalies) wobbles the first phase and measures the second where the last
    `for` elapses, since a z-score falls as the spike joins its own baseline."""
    node = _parsed(query)
    record_nodes = [(name, _parsed(expr)) for name, expr in records]
    sources = [node, *(n for _, n in record_nodes)]
    reach = _windows(node) + max((_windows(n) for _, n in record_nodes), default=0)
    every = eval_every
    delay = math.ceil(max(_offsets(n) for n in sources) / interval_ms)
    for_steps = _on_evaluation(math.ceil(for_ms / interval_ms), every)
    # Measured two steps into the second phase, a windowed value is on its way from the old value to the new one
    # and keeps going (a window of 5m and one of 10m then differ); where that does not last, once windows settle.
    # Solved where windows have settled, the moment the query crosses the level depends on each window's length
    # (`[5m]` and `[10m]` fire at different steps, `rate` and `irate` too); where windows are long (a trend's 6h),
    # two steps into the second phase, on the way from the old value to the new one.
    settle = math.ceil(reach / interval_ms) + 1
    early = delay + 2
    # Measured where windows have settled (else early). Where rules are evaluated every few samples, inputs are
    # solved there and a sample sooner, each tried with the second phase starting at every sample between two
    # evaluations, and the one whose evaluations tell apart the level moved by a unit, and then the most
    # misreadings of the query, is kept.
    shifts = range(min(every, MAX_SHIFTS)) if every > 1 else range(1)
    if settle <= SETTLE_STEPS and not noisy_levels:
        preferred = [settle, settle - 1] if every > 1 and settle - 1 >= early else [settle]
        starts = list(dict.fromkeys([*preferred, early]))
    else:
        preferred = starts = [early]
    misreadings = _misreadings(node) if len(shifts) > 1 else []  # none: the first phase starts one way only
    returns = any(isinstance(item, T.Call) and item.name in HOLDING_FUNCTIONS for n in sources for item in T.walk(n))
    recorded = {name for name, _ in records}
    inputs: dict[tuple, Input] = {}
    for source in sources:
        for item in inputs_for(source, template_labels, recorded):
            inputs.setdefault((item.metric, tuple(sorted(item.labels.items()))), item)
    found_inputs = list(inputs.values())
    if not found_inputs:
        raise Unprovable("its query reads no metric")
    metrics = list(dict.fromkeys(item.metric for item in found_inputs))
    selectors = list(dict.fromkeys(item.source for item in found_inputs))
    choices = [{m} for m in selectors] + ([set(selectors)] if len(selectors) > 1 else [])
    held_values = HELD if len(selectors) > 1 else HELD[:1]
    prover = Prover(
        node,
        record_nodes,
        interval_ms,
        any(item.shape in ("counter", "buckets", "staircase", "sawtooth") for item in found_inputs),
        every,
    )
    worlds = [
        World(
            tuple(replace(item, driven=item.source in driven) for item in found_inputs), held, interval_ms, noisy_levels
        )
        for driven in choices
        for held in held_values
    ]
    guards = {source: value for n in sources for source, value in _guards(n).items()}
    if guards:  # `... and on(...) ro == 0`: the metrics not driven held where their own comparisons hold
        worlds += [
            World(
                tuple(
                    replace(
                        item,
                        driven=item.source in driven,
                        fixed=guards[item.source] if item.source in guards and item.source not in driven else None,
                    )
                    for item in found_inputs
                ),
                held,
                interval_ms,
                noisy_levels,
            )
            for driven in choices
            for held in HELD[:1]
        ]
    aggregated = any(_has_aggregation(n) for n in sources)
    cases: list[tuple[float | None, Case]] = []
    covered: set[int] = set()  # misreadings an earlier level's case tells apart: the next prefers others
    for level in sorted(set(levels)) or [None]:
        if level is None:
            targets = presence_targets()
        else:
            low, high = neighbours(level)
            targets = level_targets(
                lambda v, lv=level: COMPARISONS[comparison or ">"](v, lv), comparison or ">", level, low, high
            )
        moved: list[Callable[[Vector | None], bool]] = []  # the query held against the level moved by a unit
        if level is not None and len(shifts) > 1:
            moved = [
                lambda vector, at=at: bool(vector) and any(COMPARISONS[comparison or ">"](v, at) for _, v in vector)
                for at in neighbours(level)
            ]
        chosen: Case | None = None
        noisy = [level] if noisy_levels and level is not None else []
        timings = [_timing(k, for_steps, noisy, returns, reach=settle, every=every) for k in starts]
        if noisy:  # a z-score that falls back too soon wants a longer baseline
            timings += [_timing(starts[0], for_steps, noisy, returns, baseline=f, every=every) for f in (2, 4)]
        best: tuple[tuple[int, int, int], Case, set[int]] | None = None
        tried: list[tuple[Case, set[int]]] = []  # every lasting case scored, and the misreadings it tells apart
        scored = bool(misreadings or moved)
        lasting = False
        for k, timing in zip([*starts, *starts[:1] * 2], timings, strict=False):
            if best is not None and k not in preferred:
                break  # a lasting case where windows settle: early is only for want of one
            found = _best(prover, worlds, targets, timing, node if aggregated else None)
            if found is None:
                continue
            _, world, before, after = found
            for shift in shifts if k in preferred and scored else range(1):
                if shift:
                    if prover.work > WORK_BUDGET // 2:  # the rest of the budget is for solving the next level
                        break
                    timing = _timing(k + shift, for_steps, noisy, returns, reach=settle, every=every)
                case, lasting, inputs = _case(prover, world, before, after, timing, targets[1], every)
                if lasting and scored:
                    levels_told, told = _told_apart(misreadings, moved, case, inputs, targets[1], every)
                    score = (levels_told, len(told - covered), len(told))
                    tried.append((case, told))
                    if best is None or score > best[0]:
                        best = (score, case, told)
                elif not shift and (chosen is None or lasting):
                    chosen = case
                if lasting and not scored:
                    break
            if lasting and not scored:
                break
        if best is not None:
            chosen = best[1]
            covered |= best[2]
        if chosen is None:
            what = "past its level" if level is not None else "return a series, and then none"
            raise Unprovable(f"no inputs make its query {what} ({'; '.join(sorted(metrics))} tried)")
        cases.append((level, chosen))
        # Misreadings another start tells apart but the chosen one does not (a window doubled, or `irate`, where
        # evaluations are too far apart for one case to show both): a second case for this level shows them.
        extra = max(tried, key=lambda item: len(item[1] - covered), default=None)
        if extra is not None and extra[1] - covered:
            cases.append((level, extra[0]))
            covered |= extra[1]
    return Proof(cases)


def _on_evaluation(samples: int, every: int) -> int:
    """The first evaluation (rules are evaluated every `every` samples) at or after `samples`."""
    return every * -(-samples // every)


@dataclass(frozen=True)
class Timing:
    n: int  # the first step of the second phase
    total: int
    measure: int  # where the second phase's value is solved for
    back: int | None = None  # the first step of the third phase (the first's inputs again), if any


def _timing(
    k: int,
    for_steps: int,
    noisy_levels: list[float],
    returns: bool,
    baseline: int = 1,
    reach: int = 0,
    every: int = 1,
) -> Timing:
    """Phases in samples, rules evaluated at every `every`-th: the second phase starts `k` samples before an
    evaluation, where it is measured (windows as they settle, however coarse the evaluations), and the test ends
    on one."""
    n = _on_evaluation(k + for_steps + 2 * every, every)
    if not noisy_levels:
        # The first phase is twice as long as the longest window (up to 2 × SETTLE_STEPS), so that a window of
        # twice the length reads other samples; the second settles and lets every `for` elapse.
        filled = 2 * reach if reach < 2 * SETTLE_STEPS else 0  # a window longer than that: no samples to spare
        first = _on_evaluation(max(k + 2 * every, min(filled, 2 * SETTLE_STEPS)) + k, every) - k
        if returns:
            return Timing(first, _on_evaluation(first + 2 * n, every), first + k, first + n)
        return Timing(first, _on_evaluation(first + n, every), first + k)
    # A z-score of z over a spike that grows as its age cubed for j samples needs about z²·j/7 samples of
    # baseline before it, to stay past z until the last `for` elapses; with a margin.
    before = baseline * math.ceil(0.2 * max(abs(v) for v in noisy_levels) ** 2 * (k + for_steps + 1)) + 4
    before = _on_evaluation(before + k, every) - k
    return Timing(before, _on_evaluation(before + n, every), before + k)


def _best(
    prover: Prover, worlds: list[World], targets: tuple[Target, Target], timing: Timing, aggregated: T.Node | None
) -> tuple[bool, World, float, float] | None:
    """The first world whose phases land near the level (else the first on the right sides), with a quiet
    second series beside the driven one where the query aggregates and that still lands."""
    best: tuple[bool, World, float, float] | None = None
    for world in worlds:
        solved = _solve_world(prover, world, targets, timing.n, timing.measure)
        if solved is None:
            continue
        wanted, before, after = solved
        if aggregated is not None:
            quiet = replicas(aggregated, list(world.inputs), before)
            if quiet:
                wide = replace(world, inputs=(*world.inputs, *quiet))
                again = _solve_world(prover, wide, targets, timing.n, timing.measure)
                if again is not None and (again[0] or not wanted):
                    world, (wanted, before, after) = wide, again
        if best is None or (wanted and not best[0]):
            best = (wanted, world, before, after)
        if wanted:
            break
    return best


def _misreadings(node: T.Node) -> list[T.Node]:
    """The query with one window doubled, or one `rate` read as `irate`: mistakes a case should tell apart."""
    out = []
    for item in T.walk(node):
        if isinstance(item, T.Range):
            out.append(_rebuilt(node, item, replace(item, range_ms=2 * item.range_ms)))
        elif isinstance(item, T.Call) and item.name == "rate" and item.args and isinstance(item.args[0], T.Range):
            out.append(_rebuilt(node, item, replace(item, name="irate")))
    return out


def _rebuilt(node: T.Node, old: T.Node, new: T.Node) -> T.Node:
    """`node` with `old` (by identity) replaced by `new`; the untouched parts shared."""
    if node is old:
        return new
    changes = {}
    for item in fields(node):  # type: ignore[arg-type]
        value = getattr(node, item.name)
        if isinstance(value, list):
            rebuilt = [_rebuilt(v, old, new) for v in value]
            if any(a is not b for a, b in zip(rebuilt, value, strict=True)):
                changes[item.name] = rebuilt
        elif is_dataclass(value) and not isinstance(value, type):
            rebuilt_one = _rebuilt(value, old, new)  # type: ignore[arg-type]
            if rebuilt_one is not value:
                changes[item.name] = rebuilt_one
    return replace(node, **changes) if changes else node  # type: ignore[type-var]


def _case(
    prover: "Prover", world: "World", before: float, after: float, timing: "Timing", holding: "Target", every: int
) -> tuple["Case", bool, Inputs]:
    """The case of these inputs and phases, whether the query goes on holding from where it is measured, and
    the series it was evaluated over."""
    inputs = prover._inputs(world, before, after, timing.n, timing.total, timing.back)
    outputs = over_steps(prover.node, inputs, range(0, timing.total, every))
    if any(out is None for out in outputs):
        raise Unprovable("Prometheus would refuse its query on these inputs (a many-to-many match)")
    case = Case(world, before, after, timing.n, timing.total, outputs, timing.back)  # type: ignore[arg-type]
    end = -(-timing.back // every) if timing.back is not None else None
    return case, all(holding.accepted(out) for out in outputs[timing.measure // every : end]), inputs


def _told_apart(
    misreadings: list[T.Node],
    moved: list[Callable[[Vector | None], bool]],
    case: "Case",
    inputs: Inputs,
    holding: "Target",
    every: int,
) -> tuple[int, set[int]]:
    """How many of the level moved by a unit either way, and which of the misreadings of the query, hold at some
    evaluation of the case where the query does not, or the other way round."""
    holds = [holding.accepted(out) for out in case.outputs]
    levels = sum(any(at(out) != held for out, held in zip(case.outputs, holds, strict=True)) for at in moved)
    evaluations = range(0, case.steps, every)
    told = set()
    for index, misread in enumerate(misreadings):
        try:
            outputs = over_steps(misread, inputs, evaluations)
        except (Unsupported, ZeroDivisionError, OverflowError, ValueError):
            continue
        if any(holding.accepted(out) != held for out, held in zip(outputs, holds, strict=True)):
            told.add(index)
    return levels, told


def _guards(node: T.Node) -> dict[str, float]:
    """Selectors compared with a number (`ro == 0`, `rate(c[5m]) > 0`), and an amount at which each holds."""
    out: dict[str, float] = {}
    for item in T.walk(node):
        if not isinstance(item, T.Binary) or item.op not in COMPARISONS or item.return_bool:
            continue
        for side, other, op in ((item.lhs, item.rhs, item.op), (item.rhs, item.lhs, _MIRRORED.get(item.op))):
            while isinstance(side, T.Paren):
                side = side.expr
            if not isinstance(other, T.Number) or op is None:
                continue
            if (
                isinstance(side, T.Call)
                and side.name in COUNTER_FUNCTIONS
                and side.args
                and isinstance(side.args[0], T.Range)
            ):
                side = side.args[0].selector  # a counter's amount is its rate
            if isinstance(side, T.Selector):
                value = other.val + {"==": 0, "!=": 1, ">": 1, ">=": 0, "<": -1, "<=": 0}[op]
                out.setdefault(side.text, value)
    return out


_MIRRORED = {"==": "==", "!=": "!=", ">": "<", "<": ">", ">=": "<=", "<=": ">="}


def _offsets(node: T.Node) -> int:
    return max([item.offset_ms for item in T.walk(node) if isinstance(item, T.Selector | T.Subquery)], default=0)


def _solve_world(
    prover: Prover, world: World, targets: tuple[Target, Target], n: int, measure: int
) -> tuple[bool, float, float] | None:
    before_target, after_target = targets
    try:
        before: float | None = HELD[0]  # an anomaly's wobbling baseline is scale-free: any level will do
        last = (n - 1) // prover.every * prover.every  # the last evaluation of the first phase
        if not world.noisy or not before_target.accepted(prover.outputs(world, before, before, n, [last], n)[0]):
            before = prover.solve(lambda p: prover.outputs(world, p, p, n, [last], n)[0], before_target)
        if before is None:
            return None
        after = prover.solve(lambda p: prover.outputs(world, before, p, n, [measure], measure + 1)[0], after_target)
    except (Unsupported, ZeroDivisionError, OverflowError, ValueError) as exc:
        if isinstance(exc, Unsupported):
            raise Unprovable(f"its query uses {exc}") from None
        return None
    if after is None:
        return None
    wanted = before_target.wanted(prover.outputs(world, before, before, n, [last], n)[0]) and after_target.wanted(
        prover.outputs(world, before, after, n, [measure], measure + 1)[0]
    )
    return wanted, before, after


def _parsed(text: str) -> T.Node:
    node = T.parse(text)
    if isinstance(node, str):
        raise Unprovable(f"its query does not parse: {node}")
    return node
