"""SLOs → Sloth-compatible recording rules and multi-window multi-burn-rate alerts (SLOTH.md).

Names, labels and values are Sloth's (internal/plugin/slo/core/*): a rule Sloth writes for an SLO exists here with
the same name and labels and gives the same value, bit for bit, wherever the SLI has traffic. The differences are
deliberate and listed in docs/catalog.md (§5, "Differences from Sloth").
"""

from dataclasses import dataclass

from amcompanion import __version__
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import SLO, AlertWindows, BurnWindow, Tier
from amcompanion.catalog.numbers import promql_number
from amcompanion.catalog.reader import builtin_windows

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
BASE_WINDOW_MS = 5 * MINUTE_MS  # scaled windows: the SLI rule the period rule and current burn rate read


def scaled(windows: AlertWindows, period_ms: int) -> AlertWindows:
    """Windows for a period no AlertWindows is for: those of `windows` scaled by the ratio of the periods,
    in whole minutes, at least 1m."""

    def scale(ms: int) -> int:
        return max(MINUTE_MS, round(ms * period_ms / windows.period_ms / MINUTE_MS) * MINUTE_MS)

    def pair(p: BurnWindow) -> BurnWindow:
        return BurnWindow(scale(p.short_ms), scale(p.long_ms), p.budget_percent)

    page, ticket = (tuple(pair(p) for p in pairs) for pairs in (windows.page, windows.ticket))
    return AlertWindows(f"{windows.name}, scaled", period_ms, page, ticket)  # type: ignore[arg-type]


def windows_of(slo: SLO) -> tuple[AlertWindows, int]:
    """The SLO's windows, and the SLI window its period rule and current burn rate are computed from (Sloth's:
    the page quick pair's short window)."""
    if slo.windows is not None:
        return slo.windows, slo.windows.page[0].short_ms
    month = next(w for w in builtin_windows() if w.period_ms == 30 * DAY_MS)
    return scaled(month, slo.window_ms), BASE_WINDOW_MS


def hours(ms: int) -> float:
    """Go's Duration.Hours(), rounding included."""
    whole, rest = divmod(ms, HOUR_MS)
    return whole + rest / HOUR_MS


def factor(pair: BurnWindow, period_ms: int) -> float:
    """Burn-rate factor, as Sloth computes it in float64 (14.4 for 2% of 30d in 1h; 5.6000000000000005 for 5%
    of 28d in 6h): budget% × period_hours / 100 / long_window_hours."""
    return pair.budget_percent * hours(period_ms) / 100 / hours(pair.long_ms)


def error_budget(slo: SLO) -> float:
    return (100 - slo.objective) / 100


@dataclass(frozen=True)
class BurnAlert:
    """One tier's generated alerting rule, with what the test generator needs."""

    tier_name: str  # page | ticket
    tier: Tier
    pairs: tuple[BurnWindow, ...]
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


def _at(query: str, window_ms: int) -> str:
    return query.replace("{{window}}", format_duration(window_ms))


def sli_total(slo: SLO, window_ms: int) -> str:
    """The events SLI's total (the +Inf bucket of a latency SLI); raw SLIs have none."""
    if slo.latency_buckets:
        return _rate_sum(slo, _with_le(slo.latency_buckets, "+Inf"), format_duration(window_ms))
    return _at(slo.total or "", window_ms)


def sli_expr(slo: SLO, window_ms: int) -> str:
    """The error ratio over one window. No errors (or good) series at all is a ratio of 0 (of 1), not nothing;
    no traffic is no ratio, not NaN. A raw SLI is Sloth's `(query)`."""
    if slo.raw:
        return f"({_at(slo.raw, window_ms)})"
    total = sli_total(slo, window_ms)
    if slo.latency_buckets:
        good = _rate_sum(slo, _with_le(slo.latency_buckets, slo.latency_le or ""), format_duration(window_ms))
        counted = f"{total} - {good}"
    else:
        counted = _at(slo.good or slo.errors or "", window_ms)
    counted = f"({counted}) or (({total}) * 0)"
    if slo.denominator_corrected:  # no correction yet (its rule has not run): no ratio, as in Sloth
        counted = f"slo:numerator_correction:ratio{format_duration(window_ms)}{{{_selector(slo)}}} * on () ({counted})"
    ratio = f"({counted}) / (({total}) > 0)"
    return f"1 - ({ratio})" if slo.good else ratio


def events_expr(slo: SLO, window_ms: int) -> str:
    if slo.latency_buckets:
        return _rate_sum(slo, _with_le(slo.latency_buckets, "+Inf"), format_duration(window_ms), "increase")
    return f"({sli_total(slo, window_ms)}) * {window_ms // 1000}"


def plan(slo: SLO) -> SLOPlan:
    period = slo.window_ms
    period_name = format_duration(period)
    windows, base_ms = windows_of(slo)
    labels = dict(sorted({**slo.labels, **sloth_labels(slo)}.items()))
    sel = _selector(slo)
    tiers = [
        (name, tier, pairs)
        for name, tier, pairs in (("page", slo.page, windows.page), ("ticket", slo.ticket, windows.ticket))
        if tier is not None
    ]
    every_pair = (*windows.page, *windows.ticket)
    sli_windows = sorted({base_ms} | {ms for p in every_pair for ms in (p.short_ms, p.long_ms)} - {period})
    event_windows = sorted({p.long_ms for _, _, pairs in tiers for p in pairs}) if slo.min_events else []

    sli_rules = [
        {
            "record": f"slo:sli_error:ratio_rate{format_duration(w)}",
            "expr": sli_expr(slo, w),
            "labels": {**labels, "sloth_window": format_duration(w)},
        }
        for w in sli_windows
    ]
    base = f"slo:sli_error:ratio_rate{format_duration(base_ms)}{{{sel}}}"
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

    objective = promql_number(slo.objective / 100)
    on = "on (sloth_id, sloth_slo, sloth_service) group_left ()"
    positive_budget = f"(slo:error_budget:ratio{{{sel}}} > 0)"  # objective 100: no burn rate, not +Inf
    info = {
        **labels,
        "sloth_mode": "cli-gen-prom",
        "sloth_objective": promql_number(slo.objective),
        "sloth_spec": "prometheus/v1",
        "sloth_version": f"amcompanion/{__version__}",
        **slo.info_labels,
    }
    meta_rules = [
        {"record": "slo:objective:ratio", "expr": f"vector({objective})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector(1-{objective})", "labels": labels},
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
        {"record": "sloth_slo_info", "expr": "vector(1)", "labels": dict(sorted(info.items()))},
    ]
    if slo.denominator_corrected:  # each window's share of the period's traffic (Sloth's contrib plugin)
        meta_rules += [
            {
                "record": f"slo:numerator_correction:ratio{format_duration(w)}",
                "expr": f"({sli_total(slo, w)}) / (({sli_total(slo, period)}) > 0)",
                "labels": labels,
            }
            for w in sli_windows
        ]

    alerts = [_burn_alert(slo, name, tier, pairs, sel) for name, tier, pairs in tiers]
    interval = {"interval": format_duration(slo.interval_ms)} if slo.interval_ms else {}
    groups = []
    if slo.recordings:
        groups += [
            {"name": f"sloth-slo-sli-recordings-{slo.sloth_id}", **interval, "rules": sli_rules},
            {"name": f"sloth-slo-meta-recordings-{slo.sloth_id}", **interval, "rules": meta_rules},
        ]
    if alerts:
        groups.append({"name": f"sloth-slo-alerts-{slo.sloth_id}", **interval, "rules": [a.rule for a in alerts]})
    return SLOPlan(slo, tuple(sli_windows), tuple(event_windows), groups, alerts)


def _burn_alert(slo: SLO, name: str, tier: Tier, pairs: tuple[BurnWindow, ...], sel: str) -> BurnAlert:
    budget_text = promql_number(error_budget(slo))
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
    kind = {"alert_kind": "slo"} if slo.kind_label else {}
    labels = dict(
        sorted({**slo.alert_labels, **tier.labels, "severity": tier.severity, "sloth_severity": name, **kind}.items())
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
