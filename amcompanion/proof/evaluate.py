"""PromQL at one instant over synthetic series, computed as Prometheus 2.42 computes it.

The test generator needs to know what an alert's own query returns for the inputs it feeds promtool: which
series, with which labels, at which value (annotations print `$value`). This evaluator follows Prometheus's
engine and functions step by step (range bounds closed at both ends, a 5m lookback, `rate`'s extrapolation,
Kahan sums in `*_over_time`, the same order of float operations), so the expectations it yields are the ones
promtool checks. What it does not know raises Unsupported, and the alert is then proven another way.
"""

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from amcompanion.proof import tree as T

Labels = tuple[tuple[str, str], ...]  # sorted by name, with __name__
Sample = tuple[Labels, float]
Vector = list[Sample]
Points = list[tuple[int, float]]  # (milliseconds, value)
Value = float | str | Vector
LOOKBACK_MS = 5 * 60 * 1000
NAME = "__name__"


class Unsupported(Exception):
    """A part of PromQL this evaluator does not compute, named."""


class QueryError(Exception):
    """What Prometheus would refuse at evaluation time (many-to-many matching, duplicate series)."""


@dataclass
class Inputs:
    """Series sampled every `interval_ms` from 0: one value per step, None where a sample is missing."""

    interval_ms: int
    labels: list[Labels]
    values: list[list[float | None]]
    selected: dict[int, tuple[T.Selector, list[int]]] = field(default_factory=dict)  # shareable by equal labels

    def select(self, node: T.Selector) -> list[int]:
        """Indexes of the series a selector matches, in Prometheus's order (sorted by labels). Kept by node,
        with the node itself so that its id cannot be reused."""
        key = id(node)
        if key not in self.selected or self.selected[key][0] is not node:
            matchers = list(node.matchers)
            if node.name:
                matchers.append((NAME, "=", node.name))
            if node.or_matchers:
                raise Unsupported("`or` inside a selector")
            found = [i for i, labels in enumerate(self.labels) if all(_matches(dict(labels), m) for m in matchers)]
            self.selected[key] = (node, sorted(found, key=lambda i: self.labels[i]))
        return self.selected[key][1]

    def points(self, index: int, mint: int, maxt: int) -> Points:
        iv = self.interval_ms
        first = max(0, -(-mint // iv))
        last = min(len(self.values[index]) - 1, maxt // iv)
        row = self.values[index]
        return [(j * iv, v) for j in range(first, last + 1) if (v := row[j]) is not None]


def _matches(labels: dict[str, str], matcher: tuple[str, str, str]) -> bool:
    name, op, value = matcher
    have = labels.get(name, "")
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    found = _regex(value).fullmatch(have) is not None
    return found if op == "=~" else not found


_REGEXES: dict[str, re.Pattern] = {}


def _regex(text: str) -> re.Pattern:
    if text not in _REGEXES:
        try:
            _REGEXES[text] = re.compile(text, re.DOTALL)
        except re.error as exc:
            raise Unsupported(f"the regular expression {text!r} ({exc})") from None
    return _REGEXES[text]


def labels_of(mapping: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def _drop_name(labels: Labels) -> Labels:
    return tuple(item for item in labels if item[0] != NAME)


def _divide(a: float, b: float) -> float:
    """IEEE division, as Go's: x/0 is ±Inf, 0/0 NaN."""
    if b:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _power(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.inf if abs(a) > 1 else math.nan


def _modulo(a: float, b: float) -> float:
    return math.fmod(a, b) if b and math.isfinite(a) else math.nan


ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "%": _modulo,
    "^": _power,
    "atan2": math.atan2,
}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


class Evaluator:
    """Evaluates expressions over one set of inputs."""

    def __init__(self, inputs: Inputs):
        self.inputs = inputs

    # -- entry ---------------------------------------------------------------------------------------------
    def instant(self, node: object, t: int) -> Value:
        if isinstance(node, T.Number):
            return node.val
        if isinstance(node, T.String):
            return node.val
        if isinstance(node, T.Paren):
            return self.instant(node.expr, t)
        if isinstance(node, T.Negation):
            inner = self.instant(node.expr, t)
            if isinstance(inner, float):
                return -inner
            return [(_drop_name(labels), -value) for labels, value in inner]  # type: ignore[union-attr]
        if isinstance(node, T.Selector):
            return self._vector_selector(node, t)
        if isinstance(node, T.Binary):
            return self._binary(node, t)
        if isinstance(node, T.Aggregate):
            return self._aggregate(node, t)
        if isinstance(node, T.Call):
            return self._call(node, t)
        raise Unsupported(f"a {type(node).__name__} where an instant value is needed")

    def vector(self, node: object, t: int) -> Vector:
        value = self.instant(node, t)
        if not isinstance(value, list):
            raise Unsupported("a scalar where a vector is needed")
        return value

    def scalar(self, node: object, t: int) -> float:
        value = self.instant(node, t)
        if not isinstance(value, float):
            raise Unsupported("a vector where a scalar is needed")
        return value

    # -- selectors -----------------------------------------------------------------------------------------
    def _latest(self, node: T.Selector, t: int) -> list[tuple[Labels, int, float]]:
        """Each matching series' last sample within the lookback: its labels, time and value."""
        if node.at:
            raise Unsupported("the @ modifier")
        ref = t - node.offset_ms
        out = []
        for index in self.inputs.select(node):
            points = self.inputs.points(index, ref - LOOKBACK_MS, ref)
            if points:
                out.append((self.inputs.labels[index], *points[-1]))
        return out

    def _vector_selector(self, node: T.Selector, t: int) -> Vector:
        return [(labels, value) for labels, _, value in self._latest(node, t)]

    def matrix(self, node: object, t: int) -> list[tuple[Labels, Points]]:
        """A range argument: a selector's samples in [t - range, t], or a subquery's steps."""
        if isinstance(node, T.Range):
            selector = node.selector
            if selector.at:
                raise Unsupported("the @ modifier")
            maxt = t - selector.offset_ms
            mint = maxt - node.range_ms
            return [(self.inputs.labels[i], self.inputs.points(i, mint, maxt)) for i in self.inputs.select(selector)]
        if isinstance(node, T.Subquery):
            if node.at:
                raise Unsupported("the @ modifier")
            step = node.step_ms or self.inputs.interval_ms
            end = t - node.offset_ms
            start = end - node.range_ms
            if start % step:
                start = start - start % step + step
            series: dict[Labels, Points] = {}
            for ts in range(start, end + 1, step):
                for labels, value in self.vector(node.expr, ts):
                    series.setdefault(labels, []).append((ts, value))
            return sorted(series.items())
        if isinstance(node, T.Paren):
            return self.matrix(node.expr, t)
        raise Unsupported(f"a {type(node).__name__} where a range is needed")

    # -- binary operators ----------------------------------------------------------------------------------
    def _binary(self, node: T.Binary, t: int) -> Value:
        op = node.op
        lhs, rhs = self.instant(node.lhs, t), self.instant(node.rhs, t)
        return_bool = node.return_bool
        if isinstance(lhs, float) and isinstance(rhs, float):
            if op in COMPARISONS:
                return float(COMPARISONS[op](lhs, rhs))
            return ARITHMETIC[op](lhs, rhs)
        if isinstance(lhs, str) or isinstance(rhs, str):
            raise Unsupported("a string operand")
        if op in ("and", "or", "unless"):
            return self._set_operation(op, lhs, rhs, node)  # type: ignore[arg-type]
        if isinstance(lhs, float) or isinstance(rhs, float):
            return self._vector_scalar(op, lhs, rhs, return_bool)
        return self._vector_vector(op, lhs, rhs, node)

    @staticmethod
    def _vector_scalar(op: str, lhs: Value, rhs: Value, return_bool: bool) -> Vector:
        swap = isinstance(lhs, float)
        vector, number = (rhs, lhs) if swap else (lhs, rhs)
        out: Vector = []
        for labels, v in vector:  # type: ignore[union-attr]
            left, right = (number, v) if swap else (v, number)
            if op in COMPARISONS:
                keep = COMPARISONS[op](left, right)  # type: ignore[arg-type]
                value = v
                if return_bool:
                    value, keep = float(keep), True
            else:
                value, keep = ARITHMETIC[op](left, right), True  # type: ignore[arg-type]
            if keep:
                out.append((_drop_name(labels) if op not in COMPARISONS or return_bool else labels, value))
        return out

    @staticmethod
    def _signature(node: T.Binary) -> Callable[[Labels], Labels]:
        if node.on:
            names = set(node.matching)
            return lambda labels: tuple(item for item in labels if item[0] in names)
        dropped = {NAME, *node.matching}
        return lambda labels: tuple(item for item in labels if item[0] not in dropped)

    def _set_operation(self, op: str, lhs: Vector, rhs: Vector, node: T.Binary) -> Vector:
        sig = self._signature(node)
        if op == "and":
            right = {sig(labels) for labels, _ in rhs}
            return [s for s in lhs if sig(s[0]) in right]
        if op == "unless":
            right = {sig(labels) for labels, _ in rhs}
            return [s for s in lhs if sig(s[0]) not in right]
        left = {sig(labels) for labels, _ in lhs}
        return [*lhs, *(s for s in rhs if sig(s[0]) not in left)]

    def _vector_vector(self, op: str, lhs: Vector, rhs: Vector, node: T.Binary) -> Vector:
        card, return_bool = node.card, node.return_bool
        sig = self._signature(node)
        one_to_many = card == "one-to-many"
        if one_to_many:
            lhs, rhs = rhs, lhs
        right: dict[Labels, Sample] = {}
        for sample in rhs:
            key = sig(sample[0])
            if key in right:
                raise QueryError("found duplicate series for the match group on the one side")
            right[key] = sample
        seen: set[Labels] = set()
        out: Vector = []
        for left_labels, left_value in lhs:
            found = right.get(sig(left_labels))
            if found is None:
                continue
            right_labels, right_value = found
            a, b = (right_value, left_value) if one_to_many else (left_value, right_value)
            if op in COMPARISONS:
                keep = COMPARISONS[op](a, b)
                value = a
                if return_bool:
                    value, keep = float(keep), True
                if not keep:
                    continue
            else:
                value = ARITHMETIC[op](a, b)
            result = dict(left_labels)
            if op in ARITHMETIC:
                result.pop(NAME, None)
            if card == "one-to-one":
                if node.on:
                    result = {k: v for k, v in result.items() if k in set(node.matching)}
                else:
                    for name in node.matching:
                        result.pop(name, None)
            right_dict = dict(right_labels)
            for name in node.include:
                if right_dict.get(name, ""):
                    result[name] = right_dict[name]
                else:
                    result.pop(name, None)
            if return_bool:
                result.pop(NAME, None)
            labels = labels_of(result)
            if card == "one-to-one":
                if labels in seen:
                    raise QueryError("multiple matches for labels: many-to-one matching must be explicit")
                seen.add(labels)
            out.append((labels, value))
        return out

    # -- aggregations --------------------------------------------------------------------------------------
    def _aggregate(self, node: T.Aggregate, t: int) -> Vector:
        op = node.op
        vector = self.vector(node.expr, t)
        names = set(node.grouping)
        without = node.without
        if without:
            names.add(NAME)

        def key(labels: Labels) -> Labels:
            if not node.grouped:
                return ()
            return tuple(item for item in labels if (item[0] in names) != without)

        param = None
        if node.param is not None:
            param = self.instant(node.param, t)
        groups: dict[Labels, list[Sample]] = {}
        for sample in vector:
            groups.setdefault(key(sample[0]), []).append(sample)
        out: Vector = []
        for grouping, samples in groups.items():
            values = [v for _, v in samples]
            if op in ("topk", "bottomk"):
                k = int(param)  # type: ignore[arg-type]
                ranked = sorted(samples, key=lambda s: s[1], reverse=op == "topk")
                out += ranked[: max(k, 0)]
                continue
            out.append((grouping, _aggregated(op, values, param)))
        return out

    # -- functions -----------------------------------------------------------------------------------------
    def _call(self, node: T.Call, t: int) -> Value:
        name = node.name
        args = node.args
        if name in RANGE_FUNCTIONS:
            extra = [self.instant(a, t) for a in args if not isinstance(a, T.Range | T.Subquery)]
            matrix_arg = next(a for a in args if isinstance(a, T.Range | T.Subquery))
            out: Vector = []
            for labels, points in self.matrix(matrix_arg, t):
                if not points:
                    continue
                value = RANGE_FUNCTIONS[name](self, matrix_arg, points, t, extra)
                if value is not None:
                    out.append((labels if name == "last_over_time" else _drop_name(labels), value))
            return out
        if name in ("absent_over_time", "present_over_time"):
            present = [p for _, p in self.matrix(args[0], t) if p]
            if name == "present_over_time":
                return [(_drop_name(labels), 1.0) for labels, p in self.matrix(args[0], t) if p]
            return [] if present else [(_absent_labels(args[0]), 1.0)]
        if name == "absent":
            return [] if self.vector(args[0], t) else [(_absent_labels(args[0]), 1.0)]
        if name == "time":
            return t / 1000
        if name == "vector":
            return [((), self.scalar(args[0], t))]
        if name == "scalar":
            vector = self.vector(args[0], t)
            return vector[0][1] if len(vector) == 1 else math.nan
        if name in MATH:
            return [(_drop_name(labels), MATH[name](v)) for labels, v in self.vector(args[0], t)]
        if name in ("clamp", "clamp_min", "clamp_max"):
            bounds = [self.scalar(a, t) for a in args[1:]]
            return [(_drop_name(labels), _clamp(name, v, bounds)) for labels, v in self.vector(args[0], t)]
        if name == "round":
            nearest = self.scalar(args[1], t) if len(args) > 1 else 1.0
            inverse = 1.0 / nearest
            return [
                (_drop_name(labels), math.floor(v * inverse + 0.5) / inverse) for labels, v in self.vector(args[0], t)
            ]
        if name in ("sort", "sort_desc"):
            return sorted(self.vector(args[0], t), key=lambda s: s[1], reverse=name == "sort_desc")
        if name == "timestamp":
            return self._timestamps(args[0], t)
        if name == "label_replace":
            return self._label_replace(args, t)
        if name == "label_join":
            return self._label_join(args, t)
        if name == "histogram_quantile":
            return self._histogram_quantile(args, t)
        if name in DATES:
            raise Unsupported(f"{name}()")  # wall-clock functions: a test at the epoch proves little
        raise Unsupported(f"{name}()")

    def _timestamps(self, arg: object, t: int) -> Vector:
        if not isinstance(arg, T.Selector):
            raise Unsupported("timestamp() of an expression")
        return [(_drop_name(labels), ts / 1000) for labels, ts, _ in self._latest(arg, t)]

    def _label_replace(self, args: Sequence[object], t: int) -> Vector:
        vector = self.vector(args[0], t)
        dst, replacement, src, regex = (self.instant(a, t) for a in args[1:])
        pattern = _regex(f"^(?:{regex})$")  # type: ignore[str-format]
        out: Vector = []
        for labels, value in vector:
            found = pattern.match(dict(labels).get(str(src), ""))
            if found is None:
                out.append((labels, value))
                continue
            text = _expand(str(replacement), found)
            changed = dict(labels)
            changed[str(dst)] = text
            out.append((labels_of(changed), value))
        return out

    def _label_join(self, args: Sequence[object], t: int) -> Vector:
        vector = self.vector(args[0], t)
        dst, sep, *srcs = (str(self.instant(a, t)) for a in args[1:])
        out: Vector = []
        for labels, value in vector:
            mapping = dict(labels)
            mapping[dst] = sep.join(mapping.get(s, "") for s in srcs)
            out.append((labels_of(mapping), value))
        return out

    def _histogram_quantile(self, args: Sequence[object], t: int) -> Vector:
        q = self.scalar(args[0], t)
        groups: dict[Labels, list[tuple[float, float]]] = {}
        for labels, value in self.vector(args[1], t):
            mapping = dict(labels)
            le = mapping.pop("le", None)
            if le is None:
                continue
            try:
                bound = float(le)
            except ValueError:
                continue
            mapping.pop(NAME, None)
            groups.setdefault(labels_of(mapping), []).append((bound, value))
        return [(labels, _bucket_quantile(q, buckets)) for labels, buckets in groups.items()]


def with_records(
    inputs: Inputs,
    records: Sequence[tuple[str, "T.Node"]],
    known: list[dict[Labels, list[float | None]]] | None = None,
    start: int = 0,
    every: int = 1,
) -> tuple[Inputs, list[dict[Labels, list[float | None]]]]:
    """`inputs` and what recording rules write from them, evaluated in order at every `every`-th step as a rule
    group is; and each rule's rows. Rows `known` for the steps before `start` (the same inputs up to there) are
    kept."""
    steps = len(inputs.values[0]) if inputs.values else 0
    all_rows = []
    for index, (name, node) in enumerate(records):
        rows: dict[Labels, list[float | None]] = {}
        for key, row in (known[index] if known else {}).items():
            rows[key] = [*row[:start], *[None] * (steps - start)]
        evaluator = Evaluator(inputs)
        evaluations = range(every * -(-start // every), steps, every)
        for step, out in zip(evaluations, over_steps(node, inputs, evaluations, evaluator), strict=True):
            for out_labels, value in out or ():
                key = labels_of({**dict(out_labels), NAME: name})
                rows.setdefault(key, [None] * steps)[step] = value
        all_rows.append(rows)
        if rows:
            inputs = Inputs(inputs.interval_ms, [*inputs.labels, *rows], [*inputs.values, *rows.values()])
    return inputs, all_rows


def over_steps(
    node: "T.Node", inputs: Inputs, steps: Iterable[int], evaluator: "Evaluator | None" = None
) -> list[Vector | None]:
    """The query at each step (None where Prometheus would refuse it)."""
    evaluator = evaluator or Evaluator(inputs)
    out: list[Vector | None] = []
    for step in steps:
        try:
            out.append(evaluator.vector(node, step * inputs.interval_ms))
        except QueryError:
            out.append(None)
    return out


def _absent_labels(arg: object) -> Labels:
    """absent()'s labels: the equality matchers of a selector, when a label has exactly one."""
    selector = arg.selector if isinstance(arg, T.Range) else arg
    if not isinstance(selector, T.Selector):
        return ()
    found: dict[str, str] = {}
    repeated: set[str] = set()
    for name, op, value in selector.matchers:
        if name == NAME:
            continue
        if op == "=":
            if name in found:
                repeated.add(name)
            found[name] = value
    return labels_of({k: v for k, v in found.items() if k not in repeated})


def _expand(template: str, found: re.Match) -> str:
    """Go's regexp Expand: $1, ${1}, $name; a $ before anything else is dropped."""

    def group(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        try:
            return found.group(int(name) if name.isdigit() else name) or ""
        except IndexError:
            return ""

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", group, template).replace("$$", "$")


def _aggregated(op: str, values: list[float], param: object) -> float:
    if op == "sum":
        total = values[0]
        for v in values[1:]:
            total += v
        return total
    if op == "avg":
        mean, count = values[0], 1
        for v in values[1:]:
            count += 1
            if math.isinf(mean) and (
                (math.isinf(v) and (mean > 0) == (v > 0)) or (not math.isinf(v) and not math.isnan(v))
            ):
                continue
            mean += v / count - mean / count
        return mean
    if op == "count":
        return float(len(values))
    if op == "group":
        return 1.0
    if op in ("max", "min"):
        best = values[0]
        for v in values[1:]:
            if (best < v if op == "max" else best > v) or math.isnan(best):
                best = v
        return best
    if op in ("stddev", "stdvar"):
        mean, total, count = 0.0, 0.0, 0
        for v in values:
            count += 1
            delta = v - mean
            mean += delta / count
            total += delta * (v - mean)
        return total / count if op == "stdvar" else math.sqrt(total / count)
    if op == "quantile":
        return _quantile(float(param), values)  # type: ignore[arg-type]
    raise Unsupported(f"{op}()")


def _quantile(q: float, values: list[float]) -> float:
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values)
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    top = merged[0][1]
    for bucket in merged[1:]:
        if bucket[1] > top:
            top = bucket[1]
        elif bucket[1] < top:
            bucket[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


def _clamp(name: str, value: float, bounds: list[float]) -> float:
    if name == "clamp_min":
        return max(bounds[0], value) if not math.isnan(value) else value
    if name == "clamp_max":
        return min(bounds[0], value) if not math.isnan(value) else value
    low, high = bounds
    if high < low:
        raise Unsupported("clamp() with max < min")
    return max(low, min(high, value)) if not math.isnan(value) else value


def _rate(counter: bool, per_second: bool) -> Callable:
    def compute(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float | None:
        """Prometheus 2.42's extrapolatedRate."""
        if len(points) < 2:
            return None
        if not isinstance(arg, T.Range):
            raise Unsupported("a rate over a subquery")
        offset = arg.selector.offset_ms
        range_ms = arg.range_ms
        range_start, range_end = t - (range_ms + offset), t - offset
        result = points[-1][1] - points[0][1]
        if counter:
            previous = points[0][1]
            for _, v in points[1:]:
                if v < previous:
                    result += previous
                previous = v
        to_start = (points[0][0] - range_start) / 1000
        to_end = (range_end - points[-1][0]) / 1000
        sampled = (points[-1][0] - points[0][0]) / 1000
        average = sampled / (len(points) - 1)
        if counter and result > 0 and points[0][1] >= 0:
            to_zero = sampled * (points[0][1] / result)
            if to_zero < to_start:
                to_start = to_zero
        threshold = average * 1.1
        interval = sampled
        interval += to_start if to_start < threshold else average / 2
        interval += to_end if to_end < threshold else average / 2
        factor = interval / sampled
        if per_second:
            factor /= range_ms / 1000
        return result * factor

    return compute


def _instant_rate(per_second: bool) -> Callable:
    def compute(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float | None:
        if len(points) < 2:
            return None
        (t0, v0), (t1, v1) = points[-2], points[-1]
        result = v1 if per_second and v1 < v0 else v1 - v0
        if t1 == t0:
            return None
        return result / ((t1 - t0) / 1000) if per_second else result

    return compute


def _regression(points: Points, intercept_ms: int) -> tuple[float, float]:
    n = 0.0
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    first = points[0][1]
    constant = True
    for i, (ts, v) in enumerate(points):
        if constant and i > 0 and v != first:
            constant = False
        n += 1.0
        x = (ts - intercept_ms) / 1e3
        sx, cx = _kahan_inc(x, sx, cx)
        sy, cy = _kahan_inc(v, sy, cy)
        sxy, cxy = _kahan_inc(x * v, sxy, cxy)
        sx2, cx2 = _kahan_inc(x * x, sx2, cx2)
    if constant:
        return (math.nan, math.nan) if math.isinf(first) else (0.0, first)
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = cov / var if var else _divide(cov, var)
    return slope, sy / n - slope * sx / n


def _deriv(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float | None:
    if len(points) < 2:
        return None
    return _regression(points, points[0][0])[0]


def _predict_linear(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float | None:
    if len(points) < 2:
        return None
    slope, intercept = _regression(points, t)
    return slope * float(extra[0]) + intercept


def _avg_over_time(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float:
    mean = count = c = 0.0
    for _, v in points:
        count += 1
        if math.isinf(mean) and (
            (math.isinf(v) and (mean > 0) == (v > 0)) or (not math.isinf(v) and not math.isnan(v))
        ):
            continue
        mean, c = _kahan_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def _sum_over_time(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float:
    total = c = 0.0
    for _, v in points:
        total, c = _kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _variance(points: Points) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for _, v in points:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _extreme(pick: Callable[[float, float], bool]) -> Callable:
    def compute(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float:
        best = points[0][1]
        for _, v in points:
            if pick(v, best) or math.isnan(best):
                best = v
        return best

    return compute


def _changes(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float:
    count, previous = 0, points[0][1]
    for _, v in points[1:]:
        if v != previous and not (math.isnan(v) and math.isnan(previous)):
            count += 1
        previous = v
    return float(count)


def _resets(ev: Evaluator, arg: object, points: Points, t: int, extra: list) -> float:
    count, previous = 0, points[0][1]
    for _, v in points[1:]:
        if v < previous:
            count += 1
        previous = v
    return float(count)


RANGE_FUNCTIONS: dict[str, Callable] = {
    "rate": _rate(counter=True, per_second=True),
    "increase": _rate(counter=True, per_second=False),
    "delta": _rate(counter=False, per_second=False),
    "irate": _instant_rate(per_second=True),
    "idelta": _instant_rate(per_second=False),
    "deriv": _deriv,
    "predict_linear": _predict_linear,
    "avg_over_time": _avg_over_time,
    "sum_over_time": _sum_over_time,
    "count_over_time": lambda ev, arg, points, t, extra: float(len(points)),
    "last_over_time": lambda ev, arg, points, t, extra: points[-1][1],
    "max_over_time": _extreme(operator.gt),
    "min_over_time": _extreme(operator.lt),
    "stddev_over_time": lambda ev, arg, points, t, extra: math.sqrt(_variance(points)),
    "stdvar_over_time": lambda ev, arg, points, t, extra: _variance(points),
    "quantile_over_time": lambda ev, arg, points, t, extra: _quantile(float(extra[0]), [v for _, v in points]),
    "changes": _changes,
    "resets": _resets,
}


def _safe(f: Callable[[float], float]) -> Callable[[float], float]:
    def apply(v: float) -> float:
        try:
            return f(v)
        except (ValueError, OverflowError):
            return math.nan if not math.isinf(v) else f(math.copysign(1e308, v))

    return apply


def _log(base_log: Callable[[float], float]) -> Callable[[float], float]:
    def apply(v: float) -> float:
        if v == 0:
            return -math.inf
        if v < 0 or math.isnan(v):
            return math.nan
        return base_log(v)

    return apply


MATH: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "floor": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "exp": _safe(math.exp),
    "sqrt": lambda v: math.sqrt(v) if v >= 0 else math.nan,
    "ln": _log(math.log),
    "log2": _log(math.log2),
    "log10": _log(math.log10),
    "sgn": lambda v: v if math.isnan(v) else float((v > 0) - (v < 0)),
}
DATES = frozenset(["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"])
