"""Alerts → Prometheus rules.

Every leveled kind (and `expr`) is compiled to one recording rule, the alert's *signal*, and one
alerting rule per severity comparing the signal to its level. The split keeps the meaning of the
catalog's PromQL exactly while giving the generated promtool tests one series to drive per alert.
"""

from dataclasses import dataclass

from amcompanion.catalog import promql
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Alert
from amcompanion.catalog.numbers import promql_number


@dataclass(frozen=True)
class AlertRule:
    """One generated alerting rule, with what the test generator needs to know about it."""

    alert: Alert
    severity: str
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
        return signal > self.level if self.alert.comparison == ">" else signal < self.level

    def as_rule(self) -> dict:
        rule: dict = {"alert": self.alert.name, "expr": self.expr}
        if self.for_ms:
            rule["for"] = format_duration(self.for_ms)
        rule["labels"] = self.labels
        if self.annotations:
            rule["annotations"] = self.annotations
        return rule


def signal_name(alert: Alert) -> str:
    return f"amcompanion:{alert.name}:signal"


def _over(expr: str, range_ms: int) -> str:
    """`expr[range]`, as a subquery when expr is not a plain selector."""
    duration = format_duration(range_ms)
    return f"{expr}[{duration}]" if promql.is_selector(expr) else f"({expr})[{duration}:]"


def signal_expr(alert: Alert) -> str | None:
    """The PromQL each kind compares against its levels (CATALOG.md, "Kinds"); None: no signal."""
    kind = alert.kind
    if kind in ("threshold", "expr"):
        return alert.expr
    if kind == "ratio":
        return f"({alert.errors}) / (({alert.total}) > 0)"  # a zero total yields no series, never Inf
    if kind == "trend":
        return f"predict_linear({_over(alert.expr, alert.lookback_ms)}, {alert.horizon_ms // 1000})"  # type: ignore[arg-type]
    if kind == "anomaly":
        series = alert.expr if promql.is_selector(alert.expr) else f"({alert.expr})"  # type: ignore[arg-type]
        window = _over(alert.expr, alert.baseline_ms)  # type: ignore[arg-type]
        return f"abs({series} - avg_over_time({window})) / (stddev_over_time({window}) > 0)"
    if kind == "frequency":
        return f"increase({_over(alert.expr, alert.within_ms)})"  # type: ignore[arg-type]
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
    base_labels = {**alert.labels, "alert_kind": alert.kind}
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
        labels = dict(sorted({**base_labels, "severity": level.severity}.items()))
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


def signal_rule(alert: Alert) -> dict | None:
    expr = signal_expr(alert)
    if expr is None:
        return None
    return {"record": signal_name(alert), "expr": expr}
