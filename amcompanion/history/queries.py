"""The history pages: canned queries, their titles and descriptions, and the weekly dashboard, as Datasette metadata.

Definitions the pages use (docs/history.md explains them for readers):
* MTTA, time to acknowledge: from the receiver's first notice of an alert (when paging starts) to its ack.
* MTTR, time to resolve: from the alert's `startsAt` (when the problem began) to its resolution.
* Median and p90 are nearest-rank percentiles: the value at rank ceil(p × n) of the n sorted values.
* Every page looks at alerts that started on or after `since` (a date, `YYYY-MM-DD`; default 7 days ago, the week
  a Monday review looks back on; the weekly trend: 28 days).
* Drills (`drill="true"`) are left out of every figure: `alert_times` holds the real alerts only. The volume and the
  latest alerts show them, as drills.
* Alerts are counted by when they started (`startsAt`) and, on the volume page and the latest alerts, by when they
  arrived (`first_notice_at`): a notice about an alert that started last week arrives, and pages, today.
* Service health score, 0-100: for a service's alerts of the severities that have SLA targets,
  100 × (acknowledged within the MTTA target + resolved within the MTTR target) / (2 × those alerts).
  An alert acknowledged late, never acknowledged, resolved late or still firing earns nothing on that side.

Queries stay plain SQLite (window functions, recursive CTEs and the JSON functions SQLite has built in since 3.38; no
extensions), so they run in any SQLite client as well.
"""

from dataclasses import dataclass

SEVERITY_ORDER = (
    "CASE {0} WHEN 'emergency' THEN 0 WHEN 'critical' THEN 1 WHEN 'warning' THEN 2 WHEN 'info' THEN 3"
    " WHEN 'drill' THEN 5 ELSE 4 END"
)


def since(days: int = 7) -> str:
    """The `since` parameter, or `days` ago when it is left empty."""
    return f"COALESCE(NULLIF(:since, ''), date('now', '-{days} days'))"


def distribution(name: str, source: str, value: str, unit: str = "1", sums: dict[str, str] | None = None) -> str:
    """A CTE `name` with, per group of `source`'s rows: `rows`, `n` (the rows with a `value`), the nearest-rank
    `median` and `p90` of `value` counted in whole `unit`s (rounded down), and a column per `sums` entry
    (name: the expression to add up).

    Counting whole units first (one GROUP BY) and ranking those counts is what keeps a page under a second at a
    million alerts: ranking every row (ROW_NUMBER, then each group's count) costs SQLite twice as much.
    """
    sums = sums or {}
    per_unit = "".join(f", SUM({expression}) AS {column}" for column, expression in sums.items())
    per_group = "".join(f", SUM({column}) AS {column}" for column in sums)
    return f"""{name}_counts AS (
  SELECT grp, CAST({value} / {unit} AS INTEGER) AS units, COUNT(*) AS c{per_unit}
  FROM {source} GROUP BY grp, units
),
{name}_running AS (
  SELECT *, SUM(c) FILTER (WHERE units IS NOT NULL) OVER (PARTITION BY grp) AS n,
    SUM(c) FILTER (WHERE units IS NOT NULL) OVER (PARTITION BY grp ORDER BY units ROWS UNBOUNDED PRECEDING) AS upto
  FROM {name}_counts
),
{name} AS (
  SELECT grp, SUM(c) AS rows, COALESCE(MAX(n), 0) AS n,
    MIN(CASE WHEN 2 * upto >= n THEN units END) * {unit} AS median,
    MIN(CASE WHEN 10 * upto >= 9 * n THEN units END) * {unit} AS p90{per_group}
  FROM {name}_running GROUP BY grp
)"""


def hourly(
    name: str, columns: dict[str, str], group: str, source: str, time: str, days: int = 7, where: str = ""
) -> str:
    """CTEs ending in `name`: `source`'s rows since `since`, grouped by `group` hour by hour of `time` (an ISO time
    column of `alerts`, e.g. `t.starts_at` for the alias t), as rows of `h` (the hour: the time's first 13
    characters) and `columns` (name: an expression; COUNT, SUM of whole numbers, MAX, that a page adds up over the
    hours).

    SQLite sorts every row of a GROUP BY, and sorting a million rows at once costs about a microsecond a row (a
    larger cache makes it slower: it is the processor's cache that the big sort misses). An hour's few hundred rows
    sort in a fraction of that, so grouping hour by hour (a correlated subquery per hour, through the time's index)
    and adding up the hours' few groups costs a half to a quarter of one big GROUP BY over the whole history. It
    only pays where the groups are few: counts per unit of a percentile are as many as the rows.
    """
    column = time.split(".")[-1]
    parts = ", ".join(columns)
    return f"""{name}_hours(h) AS (
  -- the hours that have rows, each found with one step through the time's index from the one before
  SELECT substr(MIN({column}), 1, 13) FROM alerts WHERE {column} >= {since(days)}
  UNION ALL SELECT (SELECT substr(MIN({column}), 1, 13) FROM alerts WHERE {column} >= h || 'x') FROM {name}_hours
  WHERE h IS NOT NULL
),
{name}_parts AS (
  SELECT h, (SELECT json_group_array(json_array({parts})) FROM (
    SELECT {", ".join(f"{expression} AS {column_name}" for column_name, expression in columns.items())} FROM {source}
    WHERE {time} >= h AND {time} < h || 'x' AND {time} >= {since(days)}{where} GROUP BY {group}
  )) AS parts FROM {name}_hours
),
{name} AS (
  SELECT h, {", ".join(f"json_extract(j.value, '$[{i}]') AS {c}" for i, c in enumerate(columns))}
  FROM {name}_parts, json_each({name}_parts.parts) j
)"""


def mtta_mttr(
    group: str, label: str, where: str = "", order: str = "alerts DESC", days: int = 7, shown: str = "grp"
) -> str:
    """MTTA and MTTR (median, p90, in minutes) of the alerts since `since`, grouped by the `group` expression and
    shown as `shown` (an expression of the group, `grp`: a cheap key per row, its words once per group)."""
    return f"""WITH t AS (
  SELECT {group} AS grp, ack_seconds, resolve_seconds FROM alert_times
  WHERE starts_at >= {since(days)}{where}
),
{distribution("ack", "t", "ack_seconds")},
{distribution("res", "t", "resolve_seconds")}
SELECT {shown} AS {label}, ack.rows AS alerts, ack.n AS acknowledged,
  ROUND(ack.median / 60.0, 1) AS mtta_median_min, ROUND(ack.p90 / 60.0, 1) AS mtta_p90_min,
  res.n AS resolved, ROUND(res.median / 60.0, 1) AS mttr_median_min, ROUND(res.p90 / 60.0, 1) AS mttr_p90_min
FROM ack JOIN res USING (grp)
ORDER BY {order}"""


# Within its target: acknowledged in time; or resolved in time (per side). Shared by SLA breaches and health.
ACK_IN_TIME = "t.ack_seconds <= s.ack_seconds"
RESOLVED_IN_TIME = "t.resolve_seconds <= s.resolve_seconds"
DELIVERY_SUMS = {
    "sent": "status = 'sent'",
    "failed": "status = 'failed'",
    "queued": "status = 'queued'",
    "retries": "MAX(attempts - 1, 0)",  # tries beyond the first
}
# The alert's week: the Julian day number of its Monday (day numbers divisible by 7 are Mondays), a number per row that
# costs less than date(starts_at, '-6 days', 'weekday 1') and sorts faster; shown as that Monday's date.
WEEK = "CAST(julianday(starts_at) + 0.5 AS INTEGER) / 7 * 7"
WEEK_SHOWN = "date(grp - 0.5)"
KIND = "CASE WHEN drill THEN 'drill' ELSE severity END"  # a drill is counted apart from the severities
PER_KIND = {"severity": KIND, "n": "COUNT(*)"}
# per hour, then added up: paged alerts by how far they escalated
PAGED = {
    "policy": "policy", "level": "escalation_level", "repeats": "repeats", "acked": "ack_seconds IS NOT NULL",
    "alerts": "COUNT(*)",
}  # fmt: skip


@dataclass(frozen=True)
class Query:
    title: str
    description: str
    sql: str


QUERIES: dict[str, Query] = {
    "mtta_mttr_by_severity": Query(
        "MTTA and MTTR by severity",
        "Median and p90 minutes to acknowledge (from the first notice) and to resolve (from the start), per severity.",
        mtta_mttr("severity", "severity", order=SEVERITY_ORDER.format("grp")),
    ),
    "mtta_mttr_by_service": Query(
        "MTTA and MTTR by service",
        "Median and p90 minutes to acknowledge and to resolve, per service (the `service` label).",
        mtta_mttr("COALESCE(service, '(none)')", "service"),
    ),
    "mtta_mttr_by_week": Query(
        "MTTA and MTTR by week",
        "Median and p90 minutes to acknowledge and to resolve, per week (starting Monday). Set since further back"
        " for a longer trend.",
        mtta_mttr(WEEK, "week", order="grp DESC", days=28, shown=WEEK_SHOWN),
    ),
    "mtta_by_person": Query(
        "MTTA per person",
        "How fast each person who acknowledged alerts did so (median and p90 minutes from the first notice), and"
        " how long those alerts then took to resolve.",
        mtta_mttr("acked_by", "acknowledged_by", where=" AND acked_by IS NOT NULL", order="mtta_median_min"),
    ),
    "sla_breaches": Query(
        "SLA breaches",
        "Alerts per severity that missed the MTTA or MTTR target (table sla_targets, from the catalog's"
        " defaults.sla). An alert breaches the MTTA target when it was acknowledged later, or was never"
        " acknowledged and resolved later; the MTTR target when it resolved later than the target after its start.",
        # the targets' severities are the outer loop (CROSS JOIN keeps the order): the period is read once per
        # severity, and the groups come in order, without sorting every alert
        f"""SELECT s.severity, s.ack_seconds / 60.0 AS mtta_target_min, s.resolve_seconds / 60.0 AS mttr_target_min,
  COUNT(*) AS alerts,
  SUM(t.wait_seconds > s.ack_seconds) AS mtta_breaches,
  ROUND(100.0 * SUM(t.wait_seconds > s.ack_seconds) / COUNT(*), 1) AS mtta_breach_pct,
  SUM(t.resolve_seconds > s.resolve_seconds) AS mttr_breaches,
  ROUND(100.0 * SUM(t.resolve_seconds > s.resolve_seconds) / COUNT(*), 1) AS mttr_breach_pct
FROM sla_targets s CROSS JOIN alert_times t ON t.severity = s.severity
WHERE t.starts_at >= {since()}
GROUP BY s.severity ORDER BY {SEVERITY_ORDER.format("s.severity")}""",
    ),
    "noisiest_alerts": Query(
        "Noisiest alerts",
        "The alerts that fired most often, with how many of those firings anyone acknowledged: a candidate list"
        " for tuning thresholds or deleting alerts.",
        f"""SELECT alertname, COALESCE(service, '(none)') AS service, COUNT(*) AS fired,
  COUNT(DISTINCT fingerprint) AS series, SUM(ack_seconds IS NOT NULL) AS acknowledged,
  ROUND(100.0 * SUM(ack_seconds IS NOT NULL) / COUNT(*), 1) AS acknowledged_pct,
  ROUND(AVG(resolve_seconds) / 60, 1) AS avg_duration_min, MAX(starts_at) AS last_fired
FROM alert_times WHERE starts_at >= {since()}
GROUP BY alertname, service ORDER BY fired DESC LIMIT 25""",
    ),
    "flapping_alerts": Query(
        "Flapping alerts",
        "Series (one fingerprint: an alert on one target) that fired more than min_flaps times within any window"
        " of hours hours (defaults 5 and 4). Usually a threshold too close to normal, or a `for:` too short.",
        f"""WITH windows AS (
  -- time in units of the window, so that the frame is one unit (a frame offset cannot be an expression)
  SELECT fingerprint, alertname, service, starts_at, ack_seconds, COUNT(*) OVER (
    PARTITION BY fingerprint ORDER BY julianday(starts_at) * 24.0 / CAST(COALESCE(NULLIF(:hours, ''), 4) AS REAL)
    RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS in_window
  FROM alerts INDEXED BY alerts_history  -- else SQLite reads every row from the table
  WHERE starts_at >= {since()} AND drill = 0
),
flapping AS (
  SELECT fingerprint, alertname, service, MAX(in_window) AS most_firings_in_window, COUNT(*) AS firings,
    COUNT(ack_seconds) AS acknowledged, MAX(starts_at) AS last_fired
  FROM windows GROUP BY fingerprint
  HAVING most_firings_in_window > CAST(COALESCE(NULLIF(:min_flaps, ''), 5) AS INTEGER)
  ORDER BY most_firings_in_window DESC, firings DESC LIMIT 100
)
SELECT alertname, COALESCE(service, '(none)') AS service,
  (SELECT json_extract(labels, '$.instance') FROM alerts a WHERE a.fingerprint = f.fingerprint LIMIT 1) AS instance,
  fingerprint, most_firings_in_window, firings, acknowledged, last_fired
FROM flapping f ORDER BY most_firings_in_window DESC, firings DESC""",
    ),
    "never_acknowledged": Query(
        "Alerts never acknowledged",
        "Paged alerts (severities with SLA targets) that nobody acknowledged, by alert: resolved on their own or"
        " still firing. Alerts that page but need no one are candidates for a lower severity.",
        f"""SELECT t.alertname, COALESCE(t.service, '(none)') AS service, t.severity, COUNT(*) AS never_acknowledged,
  SUM(t.resolve_seconds IS NULL) AS still_firing, MAX(t.escalation_level) AS highest_escalation_step,
  MAX(t.starts_at) AS last_fired
FROM alert_times t JOIN sla_targets s ON s.severity = t.severity
WHERE t.starts_at >= {since()} AND t.ack_seconds IS NULL
GROUP BY t.alertname, t.service, t.severity ORDER BY never_acknowledged DESC LIMIT 100""",
    ),
    "escalations_by_policy": Query(
        "Escalations by policy and step",
        "For the alerts since `since`: how many reached each step of their escalation policy, how many repeat"
        " rounds the last step reached (when the policy repeats it), and how many of those alerts someone"
        " acknowledged after all.",
        "WITH RECURSIVE "
        + hourly(
            "paged_hours",
            PAGED,
            "policy, escalation_level, repeats, ack_seconds IS NOT NULL",
            "alert_times",
            "starts_at",
            where=" AND escalation_level > 0",
        )
        + """,
paged AS (
  -- steps are taken in order, so an alert's level says which steps it reached; only the last one repeats
  SELECT policy, level, repeats, acked, SUM(alerts) AS alerts FROM paged_hours GROUP BY policy, level, repeats, acked
),
steps(step) AS (SELECT 1 UNION ALL SELECT step + 1 FROM steps WHERE step < (SELECT MAX(level) FROM paged))
SELECT p.policy, s.step, SUM(p.alerts) AS alerts,
  SUM(CASE WHEN p.level = s.step THEN p.alerts * p.repeats ELSE 0 END) AS repeats,
  SUM(p.alerts * p.acked) AS acknowledged_later
FROM paged p JOIN steps s ON s.step <= p.level
GROUP BY p.policy, s.step ORDER BY p.policy, s.step""",
    ),
    "deliveries_by_channel": Query(
        "Deliveries by channel",
        "Messages queued since `since` per channel: sent, failed, still queued, success rate, retries (tries"
        " beyond the first) and delivery latency (queued to sent: median and p90 seconds).",
        f"""WITH t AS (
  SELECT channel AS grp, status, attempts, latency_seconds FROM notifications WHERE queued_at >= {since()}
),
{distribution("lat", "t", "latency_seconds", "0.001", DELIVERY_SUMS)}
SELECT grp AS channel, rows AS messages, sent, failed, queued, ROUND(100.0 * sent / rows, 2) AS success_pct, retries,
  ROUND(median, 3) AS latency_median_s, ROUND(p90, 3) AS latency_p90_s
FROM lat ORDER BY messages DESC""",
    ),
    "service_health": Query(
        "Service health score",
        "0-100 per service: 100 × (alerts acknowledged within the MTTA target + alerts resolved within the MTTR"
        " target) / (2 × alerts), over the alerts of severities that have SLA targets. 100: every page answered"
        " and fixed in time.",
        f"""SELECT COALESCE(t.service, '(none)') AS service, COUNT(*) AS alerts,
  SUM({ACK_IN_TIME}) AS acknowledged_in_time, SUM({RESOLVED_IN_TIME}) AS resolved_in_time,
  ROUND(100.0 * (SUM({ACK_IN_TIME}) + SUM({RESOLVED_IN_TIME})) / (2 * COUNT(*)), 1) AS health_score
FROM alert_times t JOIN sla_targets s ON s.severity = t.severity
WHERE t.starts_at >= {since()}
GROUP BY t.service ORDER BY health_score""",
    ),
    "alerts_per_hour": Query(
        "Alert volume per hour",
        "Alerts per hour (UTC) since `since`, by severity (drills apart): how many started in the hour, and how many"
        " arrived in it (the receiver's first notice: an alert that started earlier may arrive, and page, now).",
        # grouped hour by hour (see hourly): times are ISO-8601 written one way (receiver.timeutil.iso), so an hour
        # is their first 13 characters, and ':00Z' is added once per hour
        "WITH RECURSIVE "
        + hourly("started", PER_KIND, KIND, "alerts INDEXED BY alerts_history", "starts_at")
        + ",\n"
        + hourly("arrived", PER_KIND, KIND, "alerts INDEXED BY alerts_by_arrival", "first_notice_at")
        + f"""
SELECT h || ':00Z' AS hour, severity, SUM(started) AS started, SUM(arrived) AS arrived FROM (
  SELECT h, severity, n AS started, 0 AS arrived FROM started
  UNION ALL SELECT h, severity, 0, n FROM arrived
) GROUP BY h, severity ORDER BY h, {SEVERITY_ORDER.format("severity")}""",
    ),
    "latest_alerts": Query(
        "Latest alerts",
        "The 100 alerts that arrived last since `since`, newest first, drills marked: each links to its page, with"
        " its timeline (pages, escalations, acknowledgement, resolution).",
        f"""SELECT id AS alert, alertname, severity, COALESCE(service, '(none)') AS service, status, drill,
  first_notice_at AS arrived_at, starts_at, acked_by, resolved_at
FROM alerts INDEXED BY alerts_by_arrival WHERE first_notice_at >= {since()}
ORDER BY first_notice_at DESC LIMIT 100""",
    ),
}
