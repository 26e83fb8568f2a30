"""Alerts → Prometheus rules.

Each severity of an alert is one alerting rule that carries its kind's expression compared with its level, as
a person would write it (`expr > 80`, `expr > 95`): no series of ours per input series. A recording rule is
added only where it saves real work: a trend, an anomaly or a frequency over an expression that is not a plain
selector records that expression once (`amcompanion:<alert>:input`), so that the range over it reads recorded
samples instead of a subquery evaluating the expression again at every step of the range.
"""

import hashlib
import operator
import re
from dataclasses import dataclass

import promql_parser

from amcompanion.catalog import promql
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Alert
from amcompanion.catalog.numbers import promql_number


@dataclass(frozen=True)
class AlertRule:
    """One generated alerting rule, with what the test generator needs to know about it."""

    alert: Alert
    severity: str | None
    expr: str
    for_ms: int
    labels: dict[str, str]
    annotations: dict[str, str]
    level: float | None  # the signal crosses it with alert.comparison; None: fires whenever present

    def holds(self, signal: float | None) -> bool:
        if signal is None:
            return False
        if self.level is None:
            return True
        return COMPARE[self.alert.comparison or ">"](signal, self.level)

    def as_rule(self) -> dict:
        rule: dict = {"alert": self.alert.name, "expr": self.expr}
        if self.for_ms:
            rule["for"] = format_duration(self.for_ms)
        if self.alert.keep_firing_for_ms:
            rule["keep_firing_for"] = format_duration(self.alert.keep_firing_for_ms)
        if self.labels:
            rule["labels"] = self.labels
        if self.annotations:
            rule["annotations"] = self.annotations
        return rule


COMPARE = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_NOT_IN_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _recorded(alert: Alert, what: str) -> str:
    """The name of a series recorded for an alert. Alert names may be anything Prometheus accepts (`Cert-manager
    Absent`, `BloatHigh(>80%)`); metric names may not, so such a name is spelt safe and told apart by a hash."""
    name = alert.name
    safe = _NOT_IN_METRIC_NAME.sub("_", name)
    if safe != name:
        safe += "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    variant = f":{alert.variant}" if alert.variant else ""
    return f"amcompanion:{safe}{variant}:{what}"


def input_name(alert: Alert) -> str:
    return _recorded(alert, "input")


def needs_input_rule(alert: Alert) -> bool:
    """Kinds that take a range of `expr`: an expression other than a selector is recorded first, so the
    signal reads `recorded[range]` instead of a subquery re-evaluating `expr` at every step of the range
    (an anomaly's 1d baseline would cost 1,440 evaluations of `expr` per rule evaluation)."""
    return alert.kind in ("trend", "anomaly", "frequency") and not promql.is_selector(alert.expr or "")


def _series(alert: Alert) -> str:
    return input_name(alert) if needs_input_rule(alert) else alert.expr  # type: ignore[return-value]


def signal_expr(alert: Alert) -> str | None:
    """The PromQL each kind compares against its levels (CATALOG.md, "Kinds"); None: no signal."""
    kind = alert.kind
    if kind in ("threshold", "expr"):
        return alert.expr
    if kind == "ratio":  # a zero total yields no series, never Inf
        return f"{operand(alert.errors, '/', 'left')} / ({operand(alert.total, '>', 'left')} > 0)"  # type: ignore[arg-type]
    series = _series(alert)
    if kind == "trend":
        return f"predict_linear({series}[{format_duration(alert.lookback_ms)}], {alert.horizon_ms // 1000})"  # type: ignore[arg-type, operator]
    if kind == "anomaly":
        window = f"{series}[{format_duration(alert.baseline_ms)}]"  # type: ignore[arg-type]
        return f"abs({series} - avg_over_time({window})) / (stddev_over_time({window}) > 0)"
    if kind == "frequency":
        return f"increase({series}[{format_duration(alert.within_ms)}])"  # type: ignore[arg-type]
    return None


def composite_expr(alert: Alert) -> str:
    by = ", ".join(alert.on)
    if not alert.all_members:
        names = "|".join(alert.members)
        return f'max by ({by}) (ALERTS{{alertname=~"{names}", alertstate="firing"}})'
    parts = [f'max by ({by}) (ALERTS{{alertname="{m}", alertstate="firing"}})' for m in alert.members]
    return f" and on ({by}) ".join(parts)


def alert_rules(alert: Alert) -> list[AlertRule]:
    """The alerting rules of one catalog alert: one per severity level, plus its escalation."""
    base_labels = {**alert.labels, "alert_kind": alert.kind} if alert.kind_label else dict(alert.labels)
    annotations = dict(sorted(alert.annotations.items()))
    if alert.kind == "absent":
        expr_for = {None: f"absent({alert.expr})"}
    elif alert.kind == "composite":
        expr_for = {None: composite_expr(alert)}
    else:
        expr_for = {}
    rules = []
    signal = signal_expr(alert)
    for level in alert.levels:
        if level.value is None:
            expr = expr_for.get(None) or signal
        else:
            expr = compared(signal, alert.comparison or ">", level.value)  # type: ignore[arg-type]
        severity = {"severity": level.severity} if level.severity is not None else {}
        labels = dict(sorted({**base_labels, **severity}.items()))
        rules.append(AlertRule(alert, level.severity, expr, alert.for_ms, labels, annotations, level.value))
    if alert.escalate:
        source = next(rule for rule in rules if rule.severity == alert.escalate.from_severity)
        labels = dict(
            sorted({**source.labels, "severity": alert.escalate.to_severity, "escalated_from": source.severity}.items())
        )
        rules.append(
            AlertRule(
                alert,
                alert.escalate.to_severity,
                source.expr,
                alert.for_ms + alert.escalate.after_ms,
                labels,
                annotations,
                source.level,
            )
        )
    return rules


def recording_rules(alert: Alert) -> list[dict]:
    """The recording rules of an alert: its input, if it needs one; for a catalog `record`, the rule itself."""
    if alert.is_record:
        return [{"record": alert.name, "expr": alert.expr, **({"labels": alert.labels} if alert.labels else {})}]
    return [{"record": input_name(alert), "expr": alert.expr}] if needs_input_rule(alert) else []


# Binary operators from the loosest to the tightest (PromQL's precedence); ^ binds to the right.
_PRECEDENCE = {"or": 0, "and": 1, "unless": 1, "==": 2, "!=": 2, "<": 2, ">": 2, "<=": 2, ">=": 2}
_PRECEDENCE.update({"+": 3, "-": 3, "*": 4, "/": 4, "%": 4, "atan2": 4, "^": 5})


def operand(expr: str, op: str, side: str) -> str:
    """`expr` as the `side` operand of `op`, in parentheses only where its own top operator binds looser (or
    as loosely, on the side the operator does not group from) or where a line comment would swallow the rest."""
    text = expr.strip()
    node = promql.parse(text)
    top = _PRECEDENCE.get(str(node.op)) if isinstance(node, promql_parser.BinaryExpr) else None
    wanted = _PRECEDENCE[op]
    right_grouping = op == "^"
    loose = top is not None and (top < wanted or (top == wanted and (side == "right") != right_grouping))
    if loose or "#" in text:  # a `#` may start a comment: the operator must not follow it on its line
        return f"(\n{text}\n)" if "\n" in text or "#" in text else f"({text})"
    return text


def compared(signal: str, comparison: str, level: float) -> str:
    """`signal <comparison> level`, the alerting rule's expression."""
    return f"{operand(signal, comparison, 'left')} {comparison} {promql_number(level)}"
