"""The history pages: canned queries, their titles and descriptions, and the weekly dashboard, as Datasette metadata.

Definitions the pages use (docs/history.md explains them for readers):
* MTTA, time to acknowledge: from the receiver's first notice of an alert (when paging starts) to its ack.
* MTTR, time to resolve: from the alert's `startsAt` (when the problem began) to its resolution.
* Median and p90 are nearest-rank percentiles: the value at rank ceil(p × n) of the n sorted values, times counted
  in the unit a page shows them in (rollups.duration_key): the exact figure, rounded as shown.
* Most pages read `rollups`, counts per day that triggers keep as rows are written (rollups.py): a page adds up days
  in the table's order instead of sorting every alert of its period.
* Every page looks at alerts that started on or after `since` (a date, `YYYY-MM-DD`: whole days; default 7 days ago,
  the week a Monday review looks back on; the weekly trend: 28 days).
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

from amcompanion.history.rollups import FLAP_HOURS, FLAP_WINDOW_S, GROUPS, flap_units, in_flap_window

SEVERITY_ORDER = (
    "CASE {0} WHEN 'emergency' THEN 0 WHEN 'critical' THEN 1 WHEN 'warning' THEN 2 WHEN 'info' THEN 3"
    " WHEN 'drill' THEN 5 ELSE 4 END"
)


def since(days: int = 7) -> str:
    """The `since` parameter's day, or `days` ago when it is left empty: pages count whole days (their counts are
    kept per day, `rollups`), so a time in it is not looked at."""
    return f"substr(COALESCE(NULLIF(:since, ''), date('now', '-{days} days')), 1, 10)"


def counted(figure: str, days: int = 7, extra: str = "") -> str:
    """SQL for `figure`'s counts (`rollups`) since `since`: per group and key, `n` and `total`, in that order, read in
    the table's own order (nothing sorted); `extra`: more columns of the same groups."""
    return (
        f"SELECT grp, key, SUM(n) AS n, TOTAL(total) AS total{extra} FROM rollups"
        f" WHERE figure = '{figure}' AND day >= {since(days)} AND n <> 0 GROUP BY grp, key"
    )


def distribution(name: str, figure: str, days: int = 7) -> str:
    """A CTE `name` with, per group of `figure`'s counts: `n` (the values) and their nearest-rank `median` and `p90`,
    in the unit the figure counts them in (rollups.duration_key: what a page shows), from the running count of the
    values in order."""
    return f"""{name}_running AS (
  SELECT grp, key, SUM(n) OVER (PARTITION BY grp) AS n,
    SUM(n) OVER (PARTITION BY grp ORDER BY key ROWS UNBOUNDED PRECEDING) AS upto
  FROM ({counted(figure, days)})
),
{name} AS (
  SELECT grp, MAX(n) AS n, MIN(CASE WHEN 2 * upto >= n THEN key END) AS median,
    MIN(CASE WHEN 10 * upto >= 9 * n THEN key END) AS p90
  FROM {name}_running GROUP BY grp
)"""


def last_start(row: str, more: str = "") -> str:
    """SQL: the last start of the alerts of `row`'s group (`grp`: [alertname, service, ...]) that match `more`, read
    from their last day (`last_day`, from the counts) alone: a day's alerts, not the period's."""
    return f"""(SELECT MAX(starts_at) FROM alert_times t
    WHERE t.starts_at >= {row}.last_day AND t.starts_at < date({row}.last_day, '+1 day')
    AND t.alertname = json_extract({row}.grp, '$[0]') AND t.service IS json_extract({row}.grp, '$[1]'){more})"""


def mtta_mttr(group: str, label: str, order: str = "alerts DESC", days: int = 7, shown: str = "grp") -> str:
    """MTTA and MTTR (median, p90, in minutes) of the alerts since `since`, per `group` (rollups.GROUPS, or a person:
    the alerts they acknowledged), shown as `shown` (an expression of the group, `grp`)."""
    if group in GROUPS:
        alerts = f"""SELECT json_extract(grp, '$[{list(GROUPS).index(group)}]') AS grp, SUM(n) AS alerts
  FROM ({counted("alerts", days)}) GROUP BY 1"""
    else:
        alerts = "SELECT grp, n AS alerts FROM ack"
    return f"""WITH {distribution("ack", f"ack_by_{group}", days)},
{distribution("res", f"resolve_by_{group}", days)},
groups AS ({alerts})
SELECT {shown} AS {label}, g.alerts, COALESCE(ack.n, 0) AS acknowledged,
  ROUND(ack.median / 60.0, 1) AS mtta_median_min, ROUND(ack.p90 / 60.0, 1) AS mtta_p90_min,
  COALESCE(res.n, 0) AS resolved, ROUND(res.median / 60.0, 1) AS mttr_median_min,
  ROUND(res.p90 / 60.0, 1) AS mttr_p90_min
FROM groups g LEFT JOIN ack USING (grp) LEFT JOIN res USING (grp)
ORDER BY {order}"""


# Within its target: acknowledged in time; or resolved in time (per side). Shared by SLA breaches and health.
ACK_IN_TIME = "t.ack_seconds <= s.ack_seconds"
RESOLVED_IN_TIME = "t.resolve_seconds <= s.resolve_seconds"
# The week's Monday is counted as its Julian day number (rollups.WEEK), shown as that Monday's date.
WEEK_SHOWN = "date(grp - 0.5)"


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
        mtta_mttr("service", "service"),
    ),
    "mtta_mttr_by_week": Query(
        "MTTA and MTTR by week",
        "Median and p90 minutes to acknowledge and to resolve, per week (starting Monday). Set since further back"
        " for a longer trend.",
        mtta_mttr("week", "week", order="grp DESC", days=28, shown=WEEK_SHOWN),
    ),
    "mtta_by_person": Query(
        "MTTA per person",
        "How fast each person who acknowledged alerts did so (median and p90 minutes from the first notice), and"
        " how long those alerts then took to resolve.",
        mtta_mttr("person", "acknowledged_by", order="mtta_median_min"),
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
        # counts per name and service (key: acknowledged × 2 + resolved; total: the firing time), their series
        f"""WITH fired AS (
  SELECT grp, SUM(n) AS fired, SUM(CASE WHEN key >= 2 THEN n ELSE 0 END) AS acknowledged,
    SUM(CASE WHEN key % 2 = 1 THEN n ELSE 0 END) AS resolved, TOTAL(total) AS firing_s, MAX(last_day) AS last_day
  FROM ({counted("fired", extra=", MAX(day) AS last_day")}) GROUP BY grp ORDER BY fired DESC, grp LIMIT 25
),
series AS (SELECT grp, COUNT(*) AS series FROM ({counted("series")}) WHERE grp IN (SELECT grp FROM fired) GROUP BY grp)
SELECT json_extract(grp, '$[0]') AS alertname, COALESCE(json_extract(grp, '$[1]'), '(none)') AS service, fired,
  series, acknowledged, ROUND(100.0 * acknowledged / fired, 1) AS acknowledged_pct,
  ROUND(firing_s / resolved / 60, 1) AS avg_duration_min,
  {last_start("f")} AS last_fired
FROM fired f JOIN series USING (grp) ORDER BY fired DESC, grp""",
    ),
    "flapping_alerts": Query(
        "Flapping alerts",
        "Series (one fingerprint: an alert on one target) that fired more than min_flaps times within any window"
        " of hours hours (defaults 5 and 4). Usually a threshold too close to normal, or a `for:` too short.",
        f"""WITH settings AS (
  SELECT CAST(COALESCE(NULLIF(:hours, ''), {FLAP_HOURS}) AS REAL) AS hours,
    CAST(COALESCE(NULLIF(:min_flaps, ''), 5) AS INTEGER) AS min_flaps, {since()} AS since,
    strftime('%Y-%m-%dT%H:%M:%fZ', {since()}, '+{FLAP_WINDOW_S} seconds') AS inside
),
-- in the default window, the firings in each episode's window are counted as they come (rollups.flap_counts): exact
-- where the window lies inside the period; in its first hours, the window is counted again from the period's start
counted AS (
  SELECT f.fingerprint, MAX(CASE WHEN f.starts_at >= x.inside THEN f.firings ELSE (
    SELECT COUNT(*) FROM alerts s WHERE s.fingerprint = f.fingerprint AND s.drill = 0 AND s.starts_at >= x.since
      AND {in_flap_window("s.starts_at", "f.starts_at")}) END) AS most
  FROM settings x CROSS JOIN flap_counts f
  WHERE x.hours = {FLAP_HOURS} AND f.firings > x.min_flaps AND f.starts_at >= x.since GROUP BY f.fingerprint
),
-- another window: every episode's, counted here (seconds at a million alerts)
windowed AS (
  SELECT fingerprint, COUNT(*) OVER (PARTITION BY fingerprint ORDER BY {flap_units("starts_at", "x.hours")}
    RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS in_window
  FROM settings x CROSS JOIN alerts INDEXED BY alerts_history  -- else SQLite reads every row from the table
  WHERE x.hours <> {FLAP_HOURS} AND starts_at >= x.since AND drill = 0
),
flapping AS (
  SELECT fingerprint, most FROM counted WHERE most > (SELECT min_flaps FROM settings)
  UNION ALL SELECT fingerprint, MAX(in_window) FROM windowed GROUP BY fingerprint
  HAVING MAX(in_window) > (SELECT min_flaps FROM settings)
),
firings AS (  -- per series since `since`: (key 1) acknowledged or (key 0) not
  SELECT grp AS fingerprint, SUM(n) AS firings, SUM(n * key) AS acknowledged FROM rollups
  WHERE figure = 'by_series' AND grp IN (SELECT fingerprint FROM flapping) AND day >= (SELECT since FROM settings)
  GROUP BY grp
),
ranked AS (
  SELECT * FROM flapping JOIN firings USING (fingerprint) ORDER BY most DESC, firings DESC, fingerprint LIMIT 100
)
SELECT a.alertname, COALESCE(a.service, '(none)') AS service, json_extract(a.labels, '$.instance') AS instance,
  r.fingerprint, r.most AS most_firings_in_window, r.firings, r.acknowledged, a.starts_at AS last_fired
FROM ranked r JOIN alerts a ON a.id = (SELECT id FROM alerts l WHERE l.fingerprint = r.fingerprint AND l.drill = 0
  ORDER BY l.starts_at DESC LIMIT 1)
ORDER BY most_firings_in_window DESC, firings DESC, r.fingerprint""",
    ),
    "never_acknowledged": Query(
        "Alerts never acknowledged",
        "Paged alerts (severities with SLA targets) that nobody acknowledged, by alert: resolved on their own or"
        " still firing. Alerts that page but need no one are candidates for a lower severity.",
        # counted as alerts come (rollups: per name, service and severity; key [still firing, escalation level])
        f"""WITH never AS (
  SELECT grp, SUM(n) AS never_acknowledged, SUM(CASE WHEN json_extract(key, '$[0]') THEN n ELSE 0 END) AS still_firing,
    MAX(json_extract(key, '$[1]')) AS highest_escalation_step, MAX(last_day) AS last_day
  FROM ({counted("unacknowledged", extra=", MAX(day) AS last_day")})
  WHERE json_extract(grp, '$[2]') IN (SELECT severity FROM sla_targets)
  GROUP BY grp ORDER BY never_acknowledged DESC, grp LIMIT 100
)
SELECT json_extract(grp, '$[0]') AS alertname, COALESCE(json_extract(grp, '$[1]'), '(none)') AS service,
  json_extract(grp, '$[2]') AS severity, never_acknowledged, still_firing, highest_escalation_step,
  {last_start("n", " AND t.severity = json_extract(n.grp, '$[2]') AND t.ack_seconds IS NULL")} AS last_fired
FROM never n ORDER BY never_acknowledged DESC, grp""",
    ),
    "escalations_by_policy": Query(
        "Escalations by policy and step",
        "For the alerts since `since`: how many reached each step of their escalation policy, how many repeat"
        " rounds the last step reached (when the policy repeats it), and how many of those alerts someone"
        " acknowledged after all.",
        f"""WITH RECURSIVE paged AS (
  -- steps are taken in order, so an alert's level says which steps it reached; only the last one repeats
  SELECT grp AS policy, json_extract(key, '$[0]') AS level, json_extract(key, '$[1]') AS repeats,
    json_extract(key, '$[2]') AS acked, n AS alerts
  FROM ({counted("paged")})
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
        f"""WITH {distribution("lat", "latency")},
statuses AS (
  SELECT grp, SUM(n) AS messages, SUM(CASE WHEN key = 'sent' THEN n ELSE 0 END) AS sent,
    SUM(CASE WHEN key = 'failed' THEN n ELSE 0 END) AS failed, SUM(CASE WHEN key = 'queued' THEN n ELSE 0 END) AS queued
  FROM ({counted("status")}) GROUP BY grp
),
tries AS (SELECT grp, SUM(n * MAX(key - 1, 0)) AS retries FROM ({counted("tries")}) GROUP BY grp)
SELECT grp AS channel, messages, sent, failed, queued, ROUND(100.0 * sent / messages, 2) AS success_pct, retries,
  ROUND(median, 3) AS latency_median_s, ROUND(p90, 3) AS latency_p90_s
FROM statuses JOIN tries USING (grp) LEFT JOIN lat USING (grp) ORDER BY messages DESC""",
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
        # counted by the hour (the ISO time's first 13 characters: receiver.timeutil.iso writes every time one way)
        f"""SELECT grp || ':00Z' AS hour, key AS severity, SUM(started) AS started, SUM(arrived) AS arrived FROM (
  SELECT grp, key, n AS started, 0 AS arrived FROM ({counted("started")})
  UNION ALL SELECT grp, key, 0, n FROM ({counted("arrived")})
) GROUP BY grp, key ORDER BY grp, {SEVERITY_ORDER.format("key")}""",
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
