"""Alerts → Prometheus rules.

Every leveled kind (and `expr`) is compiled to one recording rule, the alert's *signal*, and one
alerting rule per severity comparing the signal to its level. The split keeps the meaning of the
catalog's PromQL exactly while giving the generated promtool tests one series to drive per alert.
"""

import hashlib
import operator
import re
from dataclasses import dataclass

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


def signal_name(alert: Alert) -> str:
    return _recorded(alert, "signal")


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
    if kind == "ratio":
        return f"({alert.errors}) / (({alert.total}) > 0)"  # a zero total yields no series, never Inf
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
    for level in alert.levels:
        if level.value is None:
            expr = expr_for.get(None) or signal_name(alert)
        else:
            expr = f"{signal_name(alert)} {alert.comparison} {promql_number(level.value)}"
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


def signal_rules(alert: Alert) -> list[dict]:
    """The recording rules an alert's levels are compared with: its signal, and its input if it needs one; for a
    catalog `record`, the recording rule itself."""
    if alert.is_record:
        return [{"record": alert.name, "expr": alert.expr, **({"labels": alert.labels} if alert.labels else {})}]
    expr = signal_expr(alert)
    if expr is None:
        return []
    rules = [{"record": input_name(alert), "expr": alert.expr}] if needs_input_rule(alert) else []
    return [*rules, {"record": signal_name(alert), "expr": expr}]
