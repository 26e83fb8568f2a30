"""SLOs → Sloth-compatible recording rules and multi-window multi-burn-rate alerts (SLOTH.md)."""

from dataclasses import dataclass
from fractions import Fraction

from amcompanion import __version__
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import SLO, Tier
from amcompanion.catalog.numbers import promql_number

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
BASE_WINDOW_MS = 5 * MINUTE_MS  # the SLI rule the period and current burn rate are computed from


@dataclass(frozen=True)
class WindowPair:
    short_ms: int
    long_ms: int
    budget_percent: int  # of the error budget spent when the pair fires at its factor


# Google SRE workbook windows, as Sloth ships them for 30d and 28d (internal/alert/windows/*.yaml).
PAGE_PAIRS = (WindowPair(5 * MINUTE_MS, HOUR_MS, 2), WindowPair(30 * MINUTE_MS, 6 * HOUR_MS, 5))
TICKET_PAIRS = (WindowPair(2 * HOUR_MS, DAY_MS, 10), WindowPair(6 * HOUR_MS, 3 * DAY_MS, 10))


def scaled(pair: WindowPair, period_ms: int) -> WindowPair:
    """Windows for a period other than 30d/28d: the 30d windows scaled by period/30d, whole minutes, ≥1m."""
    if period_ms in (30 * DAY_MS, 28 * DAY_MS):
        return pair

    def scale(ms: int) -> int:
        return max(MINUTE_MS, round(ms * period_ms / (30 * DAY_MS) / MINUTE_MS) * MINUTE_MS)

    return WindowPair(scale(pair.short_ms), scale(pair.long_ms), pair.budget_percent)


def factor(pair: WindowPair, period_ms: int) -> float:
    """Burn-rate factor: budget% × period_hours / 100 / long_window_hours (14.4 for 2% of 30d in 1h)."""
    return float(Fraction(pair.budget_percent) * Fraction(period_ms, HOUR_MS) / 100 / Fraction(pair.long_ms, HOUR_MS))


def error_budget(slo: SLO) -> float:
    return (100 - slo.objective) / 100


@dataclass(frozen=True)
class BurnAlert:
    """One tier's generated alerting rule, with what the test generator needs."""

    tier_name: str  # page | ticket
    tier: Tier
    pairs: tuple[WindowPair, ...]
    factors: tuple[float, ...]
    labels: dict[str, str]
    annotations: dict[str, str]
    rule: dict


@dataclass(frozen=True)
class SLOPlan:
    slo: SLO
    windows_ms: tuple[int, ...]  # every SLI window recorded
    event_windows_ms: tuple[int, ...]  # long windows whose event counts min_events needs
    groups: list[dict]
    alerts: list[BurnAlert]


def sloth_labels(slo: SLO) -> dict[str, str]:
    return {"sloth_id": slo.sloth_id, "sloth_service": slo.service, "sloth_slo": slo.name}


def _selector(slo: SLO) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in sloth_labels(slo).items())


def _with_le(selector: str, le: str) -> str:
    matcher = f'le="{le}"'
    if selector.endswith("}"):
        inner = selector[selector.index("{") + 1 : -1].strip()
        return f"{selector[: selector.index('{')]}{{{inner + ', ' if inner else ''}{matcher}}}"
    return f"{selector}{{{matcher}}}"


def _rate_sum(slo: SLO, selector: str, window: str, fn: str = "rate") -> str:
    by = f" by ({', '.join(slo.group_by)})" if slo.group_by else ""
    return f"sum{by} ({fn}({selector}[{window}]))"


def sli_errors_total(slo: SLO, window_ms: int) -> tuple[str, str]:
    window = format_duration(window_ms)
    if slo.latency_buckets:
        total = _rate_sum(slo, _with_le(slo.latency_buckets, "+Inf"), window)
        good = _rate_sum(slo, _with_le(slo.latency_buckets, slo.latency_le or ""), window)
        return f"{total} - {good}", total
    return (
        slo.errors.replace("{{window}}", window),  # type: ignore[union-attr]
        slo.total.replace("{{window}}", window),
    )  # type: ignore[union-attr]


def sli_expr(slo: SLO, window_ms: int) -> str:
    errors, total = sli_errors_total(slo, window_ms)
    # No errors series at all still means a ratio of 0; no traffic means no ratio (never NaN).
    return f"(({errors}) or (({total}) * 0)) / (({total}) > 0)"


def events_expr(slo: SLO, window_ms: int) -> str:
    if slo.latency_buckets:
        return _rate_sum(slo, _with_le(slo.latency_buckets, "+Inf"), format_duration(window_ms), "increase")
    return f"({sli_errors_total(slo, window_ms)[1]}) * {window_ms // 1000}"


def plan(slo: SLO) -> SLOPlan:
    period = slo.window_ms
    period_name = format_duration(period)
    labels = dict(sorted({**slo.labels, **sloth_labels(slo)}.items()))
    sel = _selector(slo)
    tiers = [
        (name, tier, tuple(scaled(p, period) for p in pairs))
        for name, tier, pairs in (("page", slo.page, PAGE_PAIRS), ("ticket", slo.ticket, TICKET_PAIRS))
        if tier is not None
    ]
    windows = sorted(
        {BASE_WINDOW_MS}
        | {
            ms
            for pairs in (PAGE_PAIRS, TICKET_PAIRS)
            for p in pairs
            for ms in (scaled(p, period).short_ms, scaled(p, period).long_ms)
        }
    )
    windows = [w for w in windows if w != period]
    event_windows = sorted({p.long_ms for _, _, pairs in tiers for p in pairs}) if slo.min_events else []

    sli_rules = [
        {
            "record": f"slo:sli_error:ratio_rate{format_duration(w)}",
            "expr": sli_expr(slo, w),
            "labels": {**labels, "sloth_window": format_duration(w)},
        }
        for w in windows
    ]
    base = f"slo:sli_error:ratio_rate{format_duration(BASE_WINDOW_MS)}{{{sel}}}"
    sli_rules.append(
        {
            "record": f"slo:sli_error:ratio_rate{period_name}",
            "expr": f"sum_over_time({base}[{period_name}])\n/ ignoring (sloth_window)\n"
            f"count_over_time({base}[{period_name}])",
            "labels": {**labels, "sloth_window": period_name},
        }
    )
    sli_rules += [
        {
            "record": f"slo:sli_total:count{format_duration(w)}",
            "expr": events_expr(slo, w),
            "labels": {**labels, "sloth_window": format_duration(w)},
        }
        for w in event_windows
    ]

    budget = error_budget(slo)
    on = "on (sloth_id, sloth_slo, sloth_service) group_left ()"
    positive_budget = f"(slo:error_budget:ratio{{{sel}}} > 0)"  # objective 100: no burn rate, not +Inf
    meta_rules = [
        {"record": "slo:objective:ratio", "expr": f"vector({promql_number(slo.objective / 100)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({promql_number(budget)})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({promql_number(period / DAY_MS)})", "labels": labels},
        {"record": "slo:current_burn_rate:ratio", "expr": f"{base}\n/ {on}\n{positive_budget}", "labels": labels},
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period_name}{{{sel}}}\n/ {on}\n{positive_budget}",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{{{sel}}}",
            "labels": labels,
        },
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": dict(
                sorted(
                    {
                        **labels,
                        "sloth_mode": "cli-gen-prom",
                        "sloth_objective": promql_number(slo.objective),
                        "sloth_spec": "prometheus/v1",
                        "sloth_version": f"amcompanion/{__version__}",
                    }.items()
                )
            ),
        },
    ]

    alerts = [_burn_alert(slo, name, tier, pairs, budget, sel) for name, tier, pairs in tiers]
    groups = [
        {"name": f"sloth-slo-sli-recordings-{slo.sloth_id}", "rules": sli_rules},
        {"name": f"sloth-slo-meta-recordings-{slo.sloth_id}", "rules": meta_rules},
    ]
    if alerts:
        groups.append({"name": f"sloth-slo-alerts-{slo.sloth_id}", "rules": [a.rule for a in alerts]})
    return SLOPlan(slo, tuple(windows), tuple(event_windows), groups, alerts)


def _burn_alert(slo: SLO, name: str, tier: Tier, pairs: tuple[WindowPair, ...], budget: float, sel: str) -> BurnAlert:
    budget_text = promql_number(budget)
    on_group = f"on ({', '.join(slo.group_by)})"
    clauses = []
    factors = []
    for pair in pairs:
        f = factor(pair, slo.window_ms)
        factors.append(f)
        threshold = f"({promql_number(f)} * {budget_text})"
        parts = [
            f"max(slo:sli_error:ratio_rate{format_duration(ms)}{{{sel}}} > {threshold}) without (sloth_window)"
            for ms in (pair.short_ms, pair.long_ms)
        ]
        if slo.min_events:
            parts.append(
                f"{on_group} (slo:sli_total:count{format_duration(pair.long_ms)}{{{sel}}} >= "
                f"{promql_number(slo.min_events)})"
            )
        clauses.append("(\n  " + "\n  and\n  ".join(parts) + "\n)")
    labels = dict(
        sorted(
            {
                **slo.alert_labels,
                **tier.labels,
                "severity": tier.severity,
                "sloth_severity": name,
                "alert_kind": "slo",
            }.items()
        )
    )
    what = "{{ $labels.sloth_service }} {{ $labels.sloth_slo }}"
    annotations = dict(
        sorted(
            {
                "summary": f"{what} SLO error budget burn rate is over expected.",
                "title": f"({name}) {what} SLO error budget burn rate is too fast.",
                **slo.annotations,
                **tier.annotations,
            }.items()
        )
    )
    rule: dict = {"alert": slo.alert_name, "expr": "\nor\n".join(clauses)}
    if slo.alert_for_ms:
        rule["for"] = format_duration(slo.alert_for_ms)
    rule["labels"] = labels
    rule["annotations"] = annotations
    return BurnAlert(name, tier, pairs, tuple(factors), labels, annotations, rule)
