"""The lint checks, each a function of one alert (or of all, for duplicates) to findings, in docs/lint.md's order."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import promql_parser as p

from amcompanion.catalog import promql
from amcompanion.catalog.diagnostics import Diagnostic, KeyPath, locate
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Alert, Catalog
from amcompanion.catalog.shapes import LINT_CHECKS
from amcompanion.compiler.gotemplate import referenced_labels
from amcompanion.lint.labels import LabelSet, is_scalar, output_labels

CHECKS = LINT_CHECKS
ANNOTATION_FIELDS = ("summary", "description", "runbook_url", "dashboard_url")  # also top-level alert keys
# Functions that need two samples in their window: under 2× the scrape interval one missed scrape leaves one.
TWO_SAMPLE_FUNCTIONS = frozenset(["rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear"])
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
# Where a counter's raw value is fine: counting or testing the series, not reading their value.
SERIES_ONLY = frozenset(["absent", "count", "group", "timestamp"])
COMPARISON_OPS = frozenset(["==", "!=", ">", "<", ">=", "<="])
UNANCHORED = re.compile(r"^\^|(?<!\\)\$$")


@dataclass(frozen=True)
class Finding:
    check: str
    file: str
    path: KeyPath
    message: str
    line: int = 0
    column: int = 0
    related: tuple[str, KeyPath] | None = None  # the other place the message refers to (the first duplicate)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.check}: {self.message}"


def lint(catalog: Catalog) -> list[Finding]:
    """Every finding of every check, except those an alert's `lint.disable` switches off."""
    scrape_ms = catalog.defaults.scrape_interval_ms
    alerts = [alert for alert in catalog.alerts() if alert.origin is not None]
    found: list[Finding] = []
    for alert in alerts:
        for check in ALERT_CHECKS:
            found += [f for f in check(alert, scrape_ms) if f.check not in alert.lint_disabled]
    disabled = {(a.origin.file, a.origin.path): a.lint_disabled for a in alerts if a.origin is not None}
    found += [f for f in duplicate_rule(alerts) if f.check not in disabled[(f.file, f.path)]]
    return list(dict.fromkeys(found))  # one `rate(x[1m])` read three times in an expression is one finding


def _finding(alert: Alert, check: str, field: tuple[str | int, ...], message: str) -> Finding:
    assert alert.origin is not None
    return Finding(check, alert.origin.file, (*alert.origin.path, *field), message)


def _expressions(alert: Alert) -> Iterator[tuple[str, object]]:
    """The alert's PromQL fields, parsed: (field name, tree)."""
    for key in ("expr", "errors", "total"):
        text = getattr(alert, key)
        node = promql.parse(text) if text else None
        if node is not None and not isinstance(node, str):
            yield key, node


def _output(alert: Alert) -> LabelSet | None:
    """The labels of the series the alert's rule returns, as the compiler builds it from the kind's fields."""
    trees = dict(_expressions(alert))
    if alert.kind == "ratio" and "errors" in trees and "total" in trees:
        return output_labels(trees["errors"]).both(output_labels(trees["total"]))
    if alert.kind in ("composite", "record") or "expr" not in trees:
        return None
    return output_labels(p.parse(f"absent({alert.expr})")) if alert.kind == "absent" else output_labels(trees["expr"])


def template_label(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """A template reading a label the expression cannot return renders empty (or `<no value>`) in every page.
    Prometheus gives templates the expression's output labels only, not the rule's own (`$labels.team` of a group
    label renders empty too)."""
    carried = _output(alert)
    if carried is None:
        return
    for field, text in template_fields(alert):
        for label in sorted(referenced_labels(text)):
            if not carried.can_carry(label):
                yield _finding(
                    alert,
                    "template-label",
                    field,
                    f'reads label "{label}", which the expression\'s output does not carry '
                    f"(it keeps {_shown(carried)}): keep it in the aggregation (by/on/group_left) or drop it here",
                )


def template_fields(alert: Alert) -> list[tuple[tuple[str, ...], str]]:
    """The alert's templated fields, (where in the alert, text): its labels and annotations."""
    fields = [(("labels", k), v) for k, v in alert.labels.items()]
    fields += [((k,) if k in ANNOTATION_FIELDS else ("annotations", k), v) for k, v in alert.annotations.items()]
    return fields


def _shown(labels: LabelSet) -> str:
    if labels.closed:
        return ", ".join(sorted(labels.names)) or "no labels"
    return "every label but " + ", ".join(sorted(labels.names))


def vector_matching(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """A binary operation between two vectors pairs series by their labels: `on (x)` with a side that cannot carry
    `x`, or two aggregations by different labels matched on all of them, never pair a series (the result is empty,
    or `unless` removes nothing), and `group_left (x)` from a side without `x` copies nothing."""
    trees = dict(_expressions(alert))
    for key, node in trees.items():
        binaries: list[p.BinaryExpr] = []

        def visit(item: object, binaries: list[p.BinaryExpr] = binaries) -> None:
            if isinstance(item, p.BinaryExpr):
                binaries.append(item)

        p.walk(node, visit)
        for binary in binaries:
            for message in _matching_problems(binary, ("left", "right")):
                yield _finding(alert, "vector-matching", (key,), message)
    if alert.kind == "ratio" and "errors" in trees and "total" in trees:  # the rule divides errors by total
        pair = p.parse(f"({trees['errors']}) / ({trees['total']})")
        for message in _matching_problems(pair, ("errors", "total")):
            yield _finding(alert, "vector-matching", ("errors",), message)


def _matching_problems(node: p.BinaryExpr, sides: tuple[str, str]) -> Iterator[str]:
    """What keeps `node`'s two vectors from pairing, as Prometheus matches them; nothing where a side's labels
    cannot be known from the text (a selector, an unknown function) or one side is a scalar."""
    op = str(node.op)
    if op == "or" or is_scalar(node.lhs) or is_scalar(node.rhs):
        return  # `or` keeps both sides whether they pair or not; a scalar applies to every series
    left, right = output_labels(node.lhs), output_labels(node.rhs)
    modifier = node.modifier
    shown = f"{op} {modifier}".strip() if modifier is not None else op
    outcome = "unless removes nothing" if op == "unless" else "the result is always empty"
    matching = modifier.matching if modifier is not None else None
    labels = frozenset(matching.labels) if matching is not None else frozenset()
    if matching is not None and matching.type == p.LabelModifierType.Include:  # on (...)
        for label in sorted(labels):
            for (name, this), (other_name, other) in (
                ((sides[0], left), (sides[1], right)),
                ((sides[1], right), (sides[0], left)),
            ):
                if not this.can_carry(label) and other.can_carry(label):
                    yield (
                        f'"{shown}" matches on label "{label}", which the {name} side\'s output does not carry (it '
                        f"keeps {_shown(this)}): no series of the {other_name} side that has it can pair; keep it in "
                        f"the {name} side's aggregation or drop it from on (...)"
                    )
    elif left.closed and right.closed and left.names - labels != right.names - labels:
        kept = f"{sides[0]} keeps {_shown(left.drop(labels))}; {sides[1]} keeps {_shown(right.drop(labels))}"
        yield (
            f'the two sides of "{shown}" keep different labels ({kept}) and are matched on all of them, so no '
            f"series pair and {outcome}: aggregate both by the same labels, or match with on (...)"
        )
    card = modifier.card if modifier is not None else p.VectorMatchCardinality.OneToOne
    group = frozenset(modifier.group_labels or ()) if modifier is not None else frozenset()
    if card in (p.VectorMatchCardinality.ManyToOne, p.VectorMatchCardinality.OneToMany):
        name, one = (sides[1], right) if card == p.VectorMatchCardinality.ManyToOne else (sides[0], left)
        how = "group_left" if card == p.VectorMatchCardinality.ManyToOne else "group_right"
        for label in sorted(x for x in group if not one.can_carry(x)):
            yield (
                f'"{shown}" copies label "{label}" from the {name} side, whose output does not carry it (it keeps '
                f"{_shown(one)}): the result never has it; keep it in the {name} side's aggregation or drop it from "
                f"{how} (...)"
            )


def rate_window(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """rate() and its kin need two samples in the window; under 2× the scrape interval one late scrape leaves one
    and the alert goes blind (or flaps) for a while."""
    least = 2 * scrape_ms
    advice = f"under 2× the scrape interval ({format_duration(scrape_ms)}): use {format_duration(least)} or more"
    for key, node in _expressions(alert):
        short: list[str] = []

        def visit(item: object, short: list[str] = short) -> None:
            if isinstance(item, p.Call) and item.func.name in TWO_SAMPLE_FUNCTIONS and item.args:
                arg = item.args[0]
                if isinstance(arg, p.MatrixSelector) and arg.range.total_seconds() * 1000 < least:
                    window = format_duration(int(arg.range.total_seconds() * 1000))
                    short.append(f"{item.func.name}() over [{window}]")

        p.walk(node, visit)
        for what in short:
            yield _finding(alert, "rate-window", (key,), f"{what} is {advice}")
    for key, attr, function in (("lookback", "lookback_ms", "predict_linear"), ("within", "within_ms", "increase")):
        window = getattr(alert, attr)
        if window is not None and 0 < window < least:
            yield _finding(alert, "rate-window", (key,), f"{function}() over [{format_duration(window)}] is {advice}")


def regex(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """Regex matchers that match everything or nothing make an alert that cannot fire or a filter that is none;
    anchors are noise, since Prometheus anchors every regex already."""
    for key, node in _expressions(alert):
        matchers: list[p.Matcher] = []

        def visit(item: object, matchers: list[p.Matcher] = matchers) -> None:
            if isinstance(item, p.VectorSelector):
                matchers.extend(m for m in item.matchers.matchers if m.op in (p.MatchOp.Re, p.MatchOp.NotRe))

        p.walk(node, visit)
        for m in matchers:
            op = "=~" if m.op == p.MatchOp.Re else "!~"
            shown = f'{m.name}{op}"{m.value}"'
            if m.value == ".*" and op == "!~":
                message = f"{shown} matches no series (every value matches .*, even none): the alert cannot fire"
            elif m.value == ".*":
                message = f"{shown} matches every series, with the label or without: drop the matcher"
            elif UNANCHORED.search(m.value):
                message = f'{shown}: Prometheus anchors regexes already; write {m.name}{op}"{_unanchored(m.value)}"'
            else:
                continue
            yield _finding(alert, "regex", (key,), message)


def _unanchored(value: str) -> str:
    return re.sub(r"(?<!\\)\$$", "", value.removeprefix("^"))


def counter_without_rate(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """A counter's raw value only grows (and resets on restarts): compared as it is, the alert fires forever
    once past the level, or at random after a restart. Read it through rate(), increase() and the like."""
    if alert.kind not in ("threshold", "ratio", "expr"):
        return  # the other kinds wrap the expression in a range function of their own
    for key, node in _expressions(alert):
        for name in sorted(set(_raw_counters(node))):
            yield _finding(
                alert,
                "counter-without-rate",
                (key,),
                f"{name} looks like a counter but is read without a range function: use rate({name}[5m]) or increase()",
            )


def _raw_counters(node: object) -> Iterator[str]:
    """Counter-named selectors read as instant vectors, outside any range (`[5m]`, subquery) or series count."""
    if isinstance(node, p.VectorSelector):
        name = node.name or ""
        if name.endswith(COUNTER_SUFFIXES) and ":" not in name:
            yield name
        return
    if isinstance(node, p.MatrixSelector | p.SubqueryExpr):
        return
    if isinstance(node, p.Call) and node.func.name in SERIES_ONLY:
        return
    if isinstance(node, p.AggregateExpr) and str(node.op) in SERIES_ONLY:
        return
    for child in _children(node):
        yield from _raw_counters(child)


def _children(node: object) -> list[object]:
    if isinstance(node, p.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, p.Call):
        return list(node.args)
    if isinstance(node, p.AggregateExpr):
        return [node.expr]
    if isinstance(node, p.ParenExpr | p.UnaryExpr):
        return [node.expr]
    return []


def no_comparison(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """An `expr` alert fires for every series its expression returns: without a comparison, `absent` or a set
    operator, that is every series there is, always."""
    if alert.kind != "expr":
        return
    for key, node in _expressions(alert):
        if not _filters(node):
            yield _finding(
                alert,
                "no-comparison",
                (key,),
                "the expression compares nothing, so the alert fires for every series it returns: add a comparison "
                "(> 0.9), or use kind threshold",
            )


def _filters(node: object) -> bool:
    found = [False]

    def visit(item: object) -> None:
        if isinstance(item, p.BinaryExpr):
            op = str(item.op)
            boolean = item.modifier is not None and item.modifier.return_bool
            found[0] |= (op in COMPARISON_OPS and not boolean) or op in ("and", "unless")
        elif isinstance(item, p.Call) and item.func.name in ("absent", "absent_over_time"):
            found[0] = True

    p.walk(node, visit)
    return found[0]


def absent_for(alert: Alert, scrape_ms: int) -> Iterator[Finding]:
    """`absent` fires the moment one scrape is late: a `for` of 2× the scrape interval waits out a missed one."""
    uses_absent = alert.kind == "absent" or any(_calls_absent(node) for _, node in _expressions(alert))
    if uses_absent and alert.for_ms < 2 * scrape_ms:
        yield _finding(
            alert,
            "absent-for",
            ("for",),
            f"for: {format_duration(alert.for_ms)} is under 2× the scrape interval ({format_duration(scrape_ms)}): "
            f"one missed scrape fires it; use for: {format_duration(2 * scrape_ms)} or more",
        )


def _calls_absent(node: object) -> bool:
    found = [False]

    def visit(item: object) -> None:
        found[0] |= isinstance(item, p.Call) and item.func.name in ("absent", "absent_over_time")

    p.walk(node, visit)
    return found[0]


def duplicate_rule(alerts: list[Alert]) -> Iterator[Finding]:
    """Two rules of one expression, labels and severity page twice for one problem, under two names."""
    first: dict[tuple, Alert] = {}
    for alert in alerts:
        texts = tuple(str(node) for _, node in _expressions(alert))
        if not texts:
            continue
        levels = tuple((level.severity, level.value) for level in alert.levels)
        key = (alert.kind, texts, alert.comparison, levels, tuple(sorted(alert.labels.items())))
        other = first.setdefault(key, alert)
        if other is not alert and other.origin is not None:
            finding = _finding(alert, "duplicate-rule", (), f'same expression, labels and severity as "{other.name}"')
            yield replace(finding, related=(other.origin.file, other.origin.path))


ALERT_CHECKS = (template_label, vector_matching, rate_window, regex, counter_without_rate, no_comparison, absent_for)


def locate_findings(findings: list[Finding], root: Path, display_root: str) -> list[Finding]:
    """Each finding with its line and column (and the line of the place it refers to), sorted by place."""
    places = {(f.file, f.path) for f in findings} | {f.related for f in findings if f.related}
    located = locate([Diagnostic(file, path, "") for file, path in places], root, display_root)
    where = {(d.file, d.path): (d.line, d.column) for d in located}
    out = []
    for f in findings:
        line, column = where[(f.file, f.path)]
        message = f.message
        if f.related:
            message += f" (at {f.related[0]}:{where[f.related][0]})"
        out.append(replace(f, line=line, column=column, message=message))
    return sorted(out, key=lambda f: (f.file, f.line, f.column, f.check, f.message))
