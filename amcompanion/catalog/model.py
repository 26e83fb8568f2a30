"""The validated catalog: plain, typed objects the compiler works from. Durations are milliseconds."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

LEVELED_KINDS = ("threshold", "ratio", "trend", "anomaly", "frequency")
KINDS = (*LEVELED_KINDS, "absent", "composite", "expr", "record")
# How a level is compared, by the catalog key that gives it: `above: {warning: 80}` is `signal > 80`.
COMPARISONS = {"above": ">", "below": "<", "at_least": ">=", "at_most": "<=", "equals": "==", "not_equals": "!="}
SELF_MONITORING_GROUP = "amcompanion"  # the rule group (and file names) of the receiver's own alerts
SELF_MONITORING_RECEIVER = "amcompanion-self-monitoring"  # the Alertmanager receiver of `self_monitoring.native`


@dataclass(frozen=True)
class Origin:
    """Where a definition came from, for messages and generated-file headers."""

    file: str
    path: tuple[str | int, ...]


@dataclass(frozen=True)
class Level:
    severity: str | None  # None: the rule carries no severity label (`severity: null`, as imported rules may)
    value: float | None  # None for kinds that have no level (absent, composite, expr)


@dataclass(frozen=True)
class Escalate:
    from_severity: str
    to_severity: str
    after_ms: int


@dataclass(frozen=True)
class Example:
    """Input series (promtool's notation) and the severities that fire from them at `at_ms`."""

    series: list[tuple[str, str]]
    interval_ms: int
    at_ms: int | None  # None: at the last sample
    fires: list[str | None]  # severities; [None] for an alert without severity that fires


@dataclass
class Alert:
    name: str
    kind: str
    group: str
    levels: list[Level]
    comparison: str | None  # one of COMPARISONS' values; None for kinds without levels
    for_ms: int
    labels: dict[str, str]  # catalog defaults < group < alert
    annotations: dict[str, str]
    escalate: Escalate | None = None
    expr: str | None = None
    errors: str | None = None
    total: str | None = None
    lookback_ms: int | None = None
    horizon_ms: int | None = None
    baseline_ms: int | None = None
    within_ms: int | None = None
    members: list[str] = field(default_factory=list)
    all_members: bool = True
    on: list[str] = field(default_factory=list)
    escalation: str | None = None
    keep_firing_for_ms: int = 0
    variant: int | None = None  # which of an alert's `variants` (from 1; each its own expr, for, labels)
    kind_label: bool = True  # whether its rules carry `alert_kind` (off for imported rules: identity is kept)
    origin: Origin | None = None  # the alert's (or its variant's) mapping, where lint findings point
    lint_disabled: frozenset[str] = frozenset()  # lint checks that do not apply (`lint.disable`, with a reason)
    examples: list["Example"] = field(default_factory=list)  # the catalog's own tests (on the first variant)

    @property
    def is_record(self) -> bool:
        return self.kind == "record"


@dataclass(frozen=True)
class Tier:
    severity: str  # the tier's `severity`, or its labels' (as Sloth writes it: `page_alert.labels.severity`)
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class BurnWindow:
    """One window pair of a burn-rate alert: it fires when both windows burn `budget_percent` of the period's
    error budget faster than the period allows."""

    short_ms: int
    long_ms: int
    budget_percent: float


@dataclass(frozen=True)
class AlertWindows:
    """Sloth's AlertWindows: the page and ticket window pairs (quick, slow) for one SLO period."""

    name: str
    period_ms: int
    page: tuple[BurnWindow, BurnWindow]
    ticket: tuple[BurnWindow, BurnWindow]


@dataclass
class SLO:
    name: str
    service: str
    group: str
    objective: float
    window_ms: int
    errors: str | None  # event SLI, with {{window}}
    total: str | None
    latency_buckets: str | None  # latency SLI: a histogram _bucket selector and the `le` bound
    latency_le: str | None
    group_by: list[str]
    min_events: float
    labels: dict[str, str]
    alert_name: str
    alert_for_ms: int
    page: Tier | None
    ticket: Tier | None
    alert_labels: dict[str, str]  # catalog defaults, group and `alerting` labels, for the burn-rate alerts
    annotations: dict[str, str]
    escalation: str | None = None
    good: str | None = None  # event SLI counting good events instead of `errors`
    raw: str | None = None  # an error ratio query, with {{window}} (Sloth's errorRatioQuery)
    denominator_corrected: bool = False  # errors weighed by the window's share of the period's traffic (Sloth #459)
    windows: AlertWindows | None = None  # None: the 30d windows scaled to the period
    recordings: bool = True  # False: the SLI and metadata rules are left to someone else (alerts only)
    info_labels: dict[str, str] = field(default_factory=dict)  # extra labels of sloth_slo_info
    interval_ms: int | None = None  # its rule groups' evaluation interval; None: Prometheus's global one
    kind_label: bool = True  # whether its alerts carry `alert_kind: slo`

    @property
    def sloth_id(self) -> str:
        return f"{self.service}-{self.name}"


@dataclass(frozen=True)
class Inhibit:
    source: str
    targets: list[str]
    equal: list[str]


@dataclass
class Group:
    name: str  # unique within its catalog file, as Prometheus wants rule group names unique per rule file
    origin: Origin
    interval_ms: int | None  # None: Prometheus's global evaluation_interval
    labels: dict[str, str]
    escalation: str | None
    alerts: list[Alert]
    slos: list[SLO]
    inhibits: list[Inhibit]
    file_name: str = ""  # the generated files' name: the group's name, qualified by its catalog file on a clash
    prometheus_rule: dict[str, object] = field(default_factory=dict)  # PrometheusRule metadata (name, namespace...)


@dataclass
class Defaults:
    labels: dict[str, str] = field(default_factory=dict)
    for_ms: int = 5 * 60_000
    interval_ms: int | None = None  # None: rule groups say no interval, so Prometheus's global one applies
    scrape_interval_ms: int = 60_000  # how often the metrics are scraped: what lint measures rate windows against
    kind_label: bool = True
    severities: list[str] = field(default_factory=lambda: ["info", "warning", "critical", "emergency"])
    group_by: list[str] = field(default_factory=lambda: ["alertname"])
    group_wait: dict[str, int] = field(default_factory=dict)  # severity ("*" for all) → ms
    group_interval: dict[str, int] = field(default_factory=dict)
    repeat_interval: dict[str, int] = field(default_factory=dict)
    inhibit_lower_severities: bool = True
    slo_labels: dict[str, str] = field(default_factory=dict)  # on every rule of every SLO (Sloth's --extra-labels)
    slo_recordings: bool = True  # Sloth's --disable-recordings, when False
    slo_alerts: bool = True  # Sloth's --disable-alerts, when False
    slo_window_ms: int = 30 * 24 * 3600_000  # the period of SLOs that give none (Sloth's --default-slo-period)
    escalation: str | None = None  # where alerts no route matches go; none: an empty receiver
    sla: dict[str, tuple[int, int]] | None = None  # severity → (ack, resolve) targets in ms; None: the history's own


@dataclass
class Receiver:
    url: str = "http://localhost:8080"
    bearer_token_file: str | None = None
    external_url: str | None = None
    ack_link_ttl_ms: int | None = None  # how long an ack link works; None: the receiver's default, 24h
    trusted_proxies: list[str] = field(default_factory=list)  # networks whose user headers name the person
    user_header: str = "X-Forwarded-User"  # oauth2-proxy's, by default
    email_header: str = "X-Forwarded-Email"


@dataclass
class NotifyTarget:
    """A step's message: a channel to contacts (`to`), or to whom a schedule names when the step fires (`who` of
    `schedule`; `channel` None: each person's own `notify` channels)."""

    channel: str | None
    to: list[str]
    schedule: str | None = None
    who: str | None = None  # one of SCHEDULE_TARGETS


SCHEDULE_TARGETS = ("oncall", "next_oncall", "everyone")  # whom a step's `{oncall: SCHEDULE}` and the like reach
OVERRIDE_LAYER = "override"  # the layer a schedule's overrides are shown as, in its timeline: no layer may take it
ROLES = ("viewer", "responder", "admin")  # what a person may do through the API and the console


def display_name(contacts: Mapping[str, Mapping[str, str]], contact: str) -> str:
    """How people see a contact: its `name`, else its key."""
    return contacts.get(contact, {}).get("name") or contact


@dataclass(frozen=True)
class Person:
    """What a contact may do and how they are reached when a schedule names them."""

    role: str = "responder"  # one of ROLES
    notify: tuple[str, ...] = ()  # channels a schedule step without `channel` reaches them on
    token_sha256: str | None = None  # hex SHA-256 of their personal API token
    token_env: str | None = None  # or the environment variable that holds the token (from a Secret)


@dataclass(frozen=True)
class Restriction:
    """When a layer is in force: on `weekdays` (0 is Monday; empty: every day), from `start` to `end` local time
    (HH:MM; `end` at or before `start` runs past midnight; None: the whole day)."""

    weekdays: tuple[int, ...]
    start: str | None
    end: str | None


@dataclass(frozen=True)
class ICalSource:
    """A shared calendar whose events are shifts: each event's summary (or attendee) names a contact."""

    file: str | None
    url: str | None
    refresh_ms: int  # how often the receiver reads it again


@dataclass(frozen=True)
class Layer:
    """One rotation: `members` take turns, each for `shift_ms`, the first from `handoff` (local time in the
    schedule's zone; hand-offs keep that local time across DST changes); or the shifts of an iCal source."""

    name: str
    members: tuple[str, ...]
    shift_ms: int
    handoff: datetime | None  # naive: local time in the schedule's time zone; None for an iCal layer
    restrictions: tuple[Restriction, ...] = ()
    ical: ICalSource | None = None


@dataclass(frozen=True)
class Override:
    """`who` is on call from `start` to `end` (aware datetimes), whatever the layers say."""

    who: str
    start: datetime
    end: datetime


@dataclass
class Schedule:
    """Who is on call when: the last layer with someone on duty wins; overrides win over every layer."""

    name: str
    origin: Origin
    time_zone: str  # IANA name
    layers: list[Layer]
    overrides: list[Override] = field(default_factory=list)

    def members(self) -> list[str]:
        """Everyone a rotation or an override names, in order of first mention (not the iCal sources' people)."""
        names = [m for layer in self.layers for m in layer.members] + [o.who for o in self.overrides]
        return list(dict.fromkeys(names))


@dataclass
class Step:
    after_ms: int
    notify: list[NotifyTarget]


@dataclass
class Policy:
    name: str
    origin: Origin
    steps: list[Step]
    repeat_every_ms: int | None
    repeat_times: int
    on_resolve: str
    on_failure: str = "next_step"  # a page that fails for good: "next_step" now, or "wait" for the next deadline


@dataclass
class Route:
    name: str | None
    matchers: list[tuple[str, str, str]]  # (label, op, value) with op one of = != =~ !~
    escalation: str | None
    native: dict | None
    quiet_hours: list[str]
    active_hours: list[str]
    continue_: bool
    overrides: dict[str, object]  # group_by / group_wait / group_interval / repeat_interval


@dataclass
class SelfMonitoring:
    """The receiver's own alerting rules (compiler/selfmon.py): which scrape job they watch and whom they page."""

    enabled: bool = True
    job: str = "amcompanion"
    channel_failing_for_ms: int = 10 * 60_000
    escalation: str | None = None  # the policy paged; the catalog's first unless set; None with native or no policy
    native: dict | None = None  # an Alertmanager receiver body instead, so "the receiver is down" avoids the receiver


@dataclass
class Drills:
    """The scheduled drill (compiler/drills.py): each week at `weekday` and `minute` (UTC, Prometheus's clock), a
    rule per policy fires for `lasts_ms`, so the path to each policy is proven every week without anyone at it."""

    weekday: int  # 0 Sunday … 6 Saturday, as PromQL's day_of_week() and Alertmanager count
    minute: int  # of the day
    lasts_ms: int = 5 * 60_000
    escalations: list[str] = field(default_factory=list)  # the policies drilled; empty: every policy


@dataclass
class Catalog:
    root_name: str  # how the catalog directory is named in headers (its base name)
    files: list[str]
    defaults: Defaults
    receiver: Receiver
    contacts: dict[str, dict[str, str]]
    channels: dict[str, dict[str, object]]
    policies: dict[str, Policy]
    routes: list[Route]
    quiet_hours: dict[str, list[dict]]
    groups: list[Group]
    self_monitoring: SelfMonitoring = field(default_factory=SelfMonitoring)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)  # by contact name; a contact not here is a responder
    drills: Drills | None = None

    def alerts(self) -> list[Alert]:
        """Every alert (each variant apart), without the recording rules that share the groups' rule lists."""
        return [alert for group in self.groups for alert in group.alerts if not alert.is_record]

    def slos(self) -> list[SLO]:
        return [slo for group in self.groups for slo in group.slos]
