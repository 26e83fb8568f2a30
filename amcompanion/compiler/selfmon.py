"""The receiver's own alerting rules ("self-monitoring"), so that a page that cannot get out is itself seen.

Each alert is declared once below, with the input that must make it fire and the input it must stay silent
on; the rule group, its PrometheusRule and its promtool tests are all derived from that. Unlike the catalog's
alerts, the tests feed the real metrics the receiver exports (and Prometheus's `up`), so they prove the
expressions themselves, range functions and all.
"""

import math
from dataclasses import dataclass

from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import SELF_MONITORING_GROUP, SELF_MONITORING_RECEIVER, Alert, Catalog, Level, Route
from amcompanion.catalog.numbers import promql_number
from amcompanion.compiler.alertmanager import matcher
from amcompanion.compiler.rules import AlertRule
from amcompanion.compiler.unittests import Expectation, alert_checks, series_string

LABEL = "amcompanion_self_monitoring"  # on every alert here: the route to their policy matches it
# One sample and one evaluation a minute: the ranges and offsets are whole minutes; a `for` that is not (a
# channel_failing_for of 90s) elapses at the next evaluation, which Expectation computes as Prometheus does.
TEST_INTERVAL_MS = 60_000
QUIET_CHECK_EVERY = 5  # samples between the checks of a test in which nothing may fire
INSTANCE = "amcompanion:8080"  # the receiver's target in the tests

# (first value, step per sample, samples): a value of None is no sample (the series does not exist), samples of
# None last to the end of the test
Runs = tuple[tuple[float | None, float, int | None], ...]


@dataclass(frozen=True)
class Input:
    """One input series of a test: the receiver's metric, its labels besides job and instance, its samples."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    runs: Runs

    def series(self, job: str) -> str:
        return series_string(self.metric, {"job": job, "instance": INSTANCE, **dict(self.labels)})

    def values(self, samples: int) -> str:
        """promtool's expanding notation: `a+bxn` is n+1 samples from a by b, `_xn` n missing samples."""
        parts = []
        for value, step, count in self.runs:
            count = samples - sum(c or 0 for _, _, c in self.runs) if count is None else count
            if value is None:
                parts.append(f"_x{count}")
            elif step:
                parts.append(f"{promql_number(value)}{'+' if step > 0 else '-'}{promql_number(abs(step))}x{count - 1}")
            else:
                parts.append(f"{promql_number(value)}x{count - 1}" if count > 1 else promql_number(value))
        return " ".join(parts)

    def value_at(self, index: int) -> float:
        start = 0
        for value, step, count in self.runs:
            if count is None or index < start + count:
                assert value is not None, (self.metric, index)
                return value + step * (index - start)
            start += count
        raise IndexError(index)


def _metric(metric: str, runs: Runs, **labels: str) -> Input:
    return Input(metric, tuple(sorted(labels.items())), runs)


UP = _metric("up", ((1, 0, None),))
NOTIFICATIONS = "amcompanion_notifications_total"
ONSET = 16  # the sample at which a test's fault begins: past the 15m of the longest range (and the 10m offset)
AGEING_OLDEST_ROW = _metric("amcompanion_outbox_oldest_queued_seconds", ((0, 0, ONSET), (60, 60, None)))
STUCK_OLDEST_ROW = _metric("amcompanion_outbox_oldest_queued_seconds", ((10, 0, ONSET), (70, 60, None)))
OVERDUE_STEPS = _metric("amcompanion_escalation_overdue_seconds", ((0, 0, ONSET), (60, 60, None)))


@dataclass(frozen=True)
class Fault:
    """Input on which the alert must fire: its condition holds from sample `holds_from` on, for every label set
    in `fires` (the series the expression returns, besides `job`), with `$value` that of the input `value`, and
    still fires `lasts` samples after it started firing (how long a range remembers the fault)."""

    title: str
    inputs: tuple[Input, ...]
    holds_from: int
    fires: tuple[dict[str, str], ...]
    value: Input | float
    lasts: int = 0


@dataclass(frozen=True)
class Quiet:
    """Input on which no alert may fire, checked every few samples."""

    title: str
    inputs: tuple[Input, ...]
    samples: int


@dataclass(frozen=True)
class SelfAlert:
    """One alert. In `expr`, `$JOB` stands for the job matcher; in the texts, `$FOR` for the rule's `for`."""

    name: str
    expr: str
    for_ms: int | None  # None: the catalog's self_monitoring.channel_failing_for
    severity: str  # critical or warning, or the nearest severity the catalog has
    summary: str
    description: str
    faults: tuple[Fault, ...]
    quiet: tuple[Quiet, ...] = ()


ALERTS = (
    SelfAlert(
        "AmcompanionReceiverDown",
        "up{$JOB} == 0",
        2 * 60_000,
        "critical",
        "The amcompanion receiver {{ $labels.instance }} is down",
        "Prometheus has failed to scrape the receiver {{ $labels.instance }} (job {{ $labels.job }}) for $FOR: "
        "Alertmanager's webhooks to it fail too, so nobody is paged through it. Check its process or pod (logs, "
        "restarts, OOM kills) and that it listens on its port. Escalation deadlines are kept in its database and "
        "resume when it is back.",
        (
            Fault(
                "the receiver stops answering its scrapes",
                (_metric("up", ((1, 0, ONSET), (0, 0, None))),),
                ONSET,
                ({"instance": INSTANCE},),
                0,
            ),
        ),
    ),
    SelfAlert(
        "AmcompanionReceiverNotScraped",
        "absent(up{$JOB})",
        5 * 60_000,
        "critical",
        "Prometheus does not scrape the amcompanion receiver (job {{ $labels.job }})",
        "There has been no up series of job {{ $labels.job }} for $FOR, so none of the receiver's other alerts "
        "can fire. Check the scrape configuration (or the ServiceMonitor and its labels) and that the catalog's "
        "self_monitoring.job names the job the receiver is scraped as.",
        (Fault("no series at all", (), 0, ({},), 1),),
    ),
    SelfAlert(
        "AmcompanionPagesFailing",
        # The second clause catches the first failure of a channel: the receiver creates the counter at that
        # failure, with value 1, which increase() cannot see. A series that exists now but not 10m ago, while the
        # job was scraped then, has counted failures since.
        f'sum by (job, channel) (increase({NOTIFICATIONS}{{$JOB, outcome="failed"}}[10m])) > 0\n'
        "or\n"
        "(\n"
        "  sum by (job, channel) (\n"
        f'    {NOTIFICATIONS}{{$JOB, outcome="failed"}}\n'
        "    unless\n"
        f'    {NOTIFICATIONS}{{$JOB, outcome="failed"}} offset 10m\n'
        "  ) > 0\n"
        "  and on (job)\n"
        "  max by (job) (up{$JOB} offset 10m) == 1\n"
        ")",
        0,
        "critical",
        "Pages through {{ $labels.channel }} are failing",
        "The receiver gave up delivering at least one notification through the channel {{ $labels.channel }} "
        "in the last 10 minutes (amcompanion_notifications_total, outcome failed): someone was not paged. Send a "
        "test message with `amcompanion channels test {{ $labels.channel }}` (add --to CONTACT for SMS, voice and "
        "e-mail) to see the service's answer, fix the channel's settings or credentials, and look up the "
        "notifications that failed in the history.",
        (
            Fault(
                "chat's failed counter goes up, and mail's appears at its first failure",
                (
                    UP,
                    _metric(NOTIFICATIONS, ((0, 1, None),), channel="chat", outcome="sent"),
                    _metric(NOTIFICATIONS, ((0, 0, ONSET), (1, 0, None)), channel="chat", outcome="failed"),
                    _metric(
                        NOTIFICATIONS, ((None, 0, ONSET - 3), (1, 0, 1), (2, 0, None)), channel="mail", outcome="retry"
                    ),
                    _metric(NOTIFICATIONS, ((None, 0, ONSET), (1, 0, None)), channel="mail", outcome="failed"),
                    _metric(NOTIFICATIONS, ((0, 2, None),), channel="sms", outcome="sent"),
                    _metric(NOTIFICATIONS, ((0, 0, ONSET - 1), (1, 0, None)), channel="sms", outcome="retry"),
                    _metric(NOTIFICATIONS, ((0, 0, None),), channel="sms", outcome="failed"),
                ),
                ONSET,
                ({"channel": "chat"}, {"channel": "mail"}),
                1,
                8,  # both still in the 10m that the two clauses look back over
            ),
        ),
    ),
    SelfAlert(
        "AmcompanionChannelFailing",
        "amcompanion_channel_up{$JOB} == 0",
        None,
        "warning",
        "Every delivery through {{ $labels.channel }} has failed for $FOR",
        "The receiver {{ $labels.instance }} has had its circuit breaker for the channel {{ $labels.channel }} "
        "open for $FOR (amcompanion_channel_up is 0): its notifications wait in the outbox, while the policies' "
        "other channels still deliver. Send a test message with `amcompanion channels test {{ $labels.channel }}` "
        "to see the service's answer, and fix the channel's credentials, URL or network path.",
        (
            Fault(
                "chat's deliveries start failing",
                (
                    UP,
                    _metric("amcompanion_channel_up", ((1, 0, ONSET), (0, 0, None)), channel="chat"),
                    _metric("amcompanion_channel_up", ((1, 0, None),), channel="sms"),
                ),
                ONSET,
                ({"instance": INSTANCE, "channel": "chat"},),
                0,
            ),
        ),
    ),
    SelfAlert(
        "AmcompanionOutboxBacklog",
        "amcompanion_outbox_oldest_queued_seconds{$JOB} > 300\nand\nderiv(amcompanion_outbox_queued{$JOB}[15m]) >= 0",
        10 * 60_000,
        "critical",
        "Notifications are stuck in the outbox of {{ $labels.instance }}",
        "The oldest notification waiting in the outbox has waited {{ $value | humanizeDuration }}, and the "
        "outbox has not shrunk over the last 15 minutes (oldest row over 5 minutes and deriv of "
        "amcompanion_outbox_queued at or above 0, for $FOR): pages are queued but not going out. A backlog that "
        "drains, as after an outage, does not fire. Look for AmcompanionChannelFailing alerts, channels held back "
        "by their rate_limit, and errors in the receiver's log.",
        (
            Fault(
                "deliveries stall: the outbox grows and its oldest row ages",
                (
                    UP,
                    _metric("amcompanion_outbox_queued", ((0, 0, ONSET), (2, 2, None))),
                    AGEING_OLDEST_ROW,
                ),
                ONSET + 5,  # the oldest row reaches 300 s at ONSET + 4, and is older after
                ({"instance": INSTANCE},),
                AGEING_OLDEST_ROW,
            ),
            Fault(
                "deliveries stop: the outbox keeps its 4 rows (deriv 0) and the oldest ages",
                (UP, _metric("amcompanion_outbox_queued", ((4, 0, None),)), STUCK_OLDEST_ROW),
                ONSET + 4,  # 250 s at ONSET + 3, 310 s at ONSET + 4
                ({"instance": INSTANCE},),
                STUCK_OLDEST_ROW,
            ),
        ),
        (
            Quiet(
                "an old backlog that drains",
                (
                    UP,
                    _metric("amcompanion_outbox_queued", ((60, -1, None),)),
                    _metric("amcompanion_outbox_oldest_queued_seconds", ((1800, -30, None),)),
                ),
                2 * ONSET,
            ),
        ),
    ),
    SelfAlert(
        "AmcompanionEscalationOverdue",
        "amcompanion_escalation_overdue_seconds{$JOB} > 120",
        5 * 60_000,
        "critical",
        "Escalation steps on {{ $labels.instance }} are {{ $value | humanizeDuration }} overdue",
        "An escalation step of a firing alert is {{ $value | humanizeDuration }} past due (more than 2 minutes "
        "for $FOR): the receiver is not taking its escalation steps, so the next level is not being paged. Check "
        "the receiver's log and its database (a locked or slow SQLite file) and restart it if its escalation loop "
        "is stuck: the steps' deadlines survive a restart.",
        (
            Fault(
                "the escalation loop stops",
                (UP, OVERDUE_STEPS),
                ONSET + 2,  # 120 s overdue at ONSET + 1 (not over the level), 180 s after
                ({"instance": INSTANCE},),
                OVERDUE_STEPS,
            ),
        ),
    ),
)
HEALTHY = Quiet(
    "a healthy receiver: deliveries, a retry, failures from before Prometheus started, a short queue, a step 30 s late",
    (
        UP,
        _metric("amcompanion_channel_up", ((1, 0, None),), channel="chat"),
        _metric("amcompanion_channel_up", ((1, 0, None),), channel="sms"),
        _metric(NOTIFICATIONS, ((0, 1, None),), channel="chat", outcome="sent"),
        _metric(NOTIFICATIONS, ((0, 0, None),), channel="chat", outcome="failed"),
        _metric(NOTIFICATIONS, ((0, 2, None),), channel="sms", outcome="sent"),
        _metric(NOTIFICATIONS, ((0, 0, 12), (1, 0, None)), channel="sms", outcome="retry"),
        _metric(NOTIFICATIONS, ((3, 0, None),), channel="sms", outcome="failed"),
        _metric("amcompanion_outbox_queued", ((0, 0, 5), (3, 0, 1), (1, 0, 1), (0, 0, None))),
        _metric("amcompanion_outbox_oldest_queued_seconds", ((0, 0, 5), (20, 0, 1), (45, 0, 1), (0, 0, None))),
        _metric("amcompanion_escalation_overdue_seconds", ((0, 0, 10), (30, 0, 1), (0, 0, None))),
    ),
    2 * ONSET,
)


def severity(catalog: Catalog, wanted: str) -> str:
    """`wanted` if the catalog has it, else its highest severity for critical and its lowest for warning."""
    severities = catalog.defaults.severities
    if wanted in severities:
        return wanted
    return severities[-1] if wanted == "critical" else severities[0]


def alert_rules(catalog: Catalog) -> list[AlertRule]:
    """The alerting rules, labelled as amcompanion's own on top of the catalog's default labels."""
    config = catalog.self_monitoring
    job = matcher("job", "=", config.job)
    rules = []
    for spec in ALERTS:
        for_ms = config.channel_failing_for_ms if spec.for_ms is None else spec.for_ms
        sev = severity(catalog, spec.severity)
        labels = dict(sorted({**catalog.defaults.labels, LABEL: "true", "severity": sev}.items()))
        texts = {
            "description": spec.description.replace("$FOR", format_duration(for_ms)),
            "summary": spec.summary.replace("$FOR", format_duration(for_ms)),
        }
        expr = spec.expr.replace("$JOB", job)
        # shaped like a catalog `expr` alert, so that the catalog's rule emission and route tests apply as they are
        alert = Alert(
            spec.name, "expr", SELF_MONITORING_GROUP, [Level(sev, None)], None, for_ms, labels, texts, expr=expr
        )
        rules.append(AlertRule(alert, sev, expr, for_ms, labels, texts, None))
    return rules


def rules_document(catalog: Catalog, rules: list[AlertRule]) -> dict:
    """The rule file: one group, evaluated as often as the catalog's own groups by default."""
    return {
        "groups": [
            {
                "name": SELF_MONITORING_GROUP,
                **({"interval": format_duration(catalog.defaults.interval_ms)} if catalog.defaults.interval_ms else {}),
                "rules": [rule.as_rule() for rule in rules],
            }
        ]
    }


def route(catalog: Catalog) -> Route | None:
    """The first route of the tree: the alerts go to their policy's webhook or to the native receiver, whatever
    the catalog's routes say; None without either (they then take the catalog's routes like any alert)."""
    config = catalog.self_monitoring
    if not config.enabled or (config.escalation is None and config.native is None):
        return None
    name = SELF_MONITORING_RECEIVER if config.native is not None else None
    return Route(name, [(LABEL, "=", "true")], config.escalation, config.native, [], [], False, {})


def _merge(into: dict[str, list], checks: dict[str, list]) -> None:
    for kind, entries in checks.items():
        into.setdefault(kind, []).extend(entries)


def _case(name: str, inputs: tuple[Input, ...], samples: int, job: str, checks: dict[str, list]) -> dict:
    return {
        "name": name,
        "interval": format_duration(TEST_INTERVAL_MS),
        "input_series": [{"series": i.series(job), "values": i.values(samples)} for i in inputs],
        **checks,
    }


def tests_document(catalog: Catalog, rules: list[AlertRule], rule_file: str) -> dict:
    """One test per alert in which it fires (silent one evaluation before its condition holds and before its
    `for` elapses, firing with its labels and annotations once it has) while every other alert stays silent;
    then the tests in which nothing may fire, a healthy receiver's among them."""
    job = catalog.self_monitoring.job
    by_name = {rule.alert.name: rule for rule in rules}
    cases = []
    for spec, fault in [(s, f) for s in ALERTS for f in s.faults]:
        rule = by_name[spec.name]
        steps = math.ceil(rule.for_ms / TEST_INTERVAL_MS)
        fires_at = fault.holds_from + steps
        edges = (fault.holds_from - 1, fires_at - 1, fires_at, fires_at + fault.lasts)
        indexes = sorted({i for i in edges if i >= 0})
        end = indexes[-1]
        value = fault.value
        exps = [
            Expectation(
                rule.for_ms,
                rule.labels,
                rule.annotations,
                [(False, fault.holds_from), (True, end + 1 - fault.holds_from)],
                (lambda i, v=value: v.value_at(i)) if isinstance(value, Input) else (lambda i, v=value: float(v)),
                {"job": job, **labels},
            )
            for labels in fault.fires
        ]
        checks: dict[str, list] = {}
        for other in rules:
            if other is rule:
                _merge(checks, alert_checks(rule.alert.name, exps, indexes, TEST_INTERVAL_MS))
            else:
                _merge(checks, alert_checks(other.alert.name, [], [end], TEST_INTERVAL_MS))
        cases.append(_case(f"{spec.name} fires: {fault.title}", fault.inputs, end + 1, job, checks))
    for quiet in [q for spec in ALERTS for q in spec.quiet] + [HEALTHY]:
        indexes = [*range(QUIET_CHECK_EVERY, quiet.samples, QUIET_CHECK_EVERY), quiet.samples - 1]
        checks = {}
        for rule in rules:
            _merge(checks, alert_checks(rule.alert.name, [], indexes, TEST_INTERVAL_MS))
        cases.append(_case(f"nothing fires: {quiet.title}", quiet.inputs, quiet.samples, job, checks))
    return {"rule_files": [rule_file], "evaluation_interval": format_duration(TEST_INTERVAL_MS), "tests": cases}
