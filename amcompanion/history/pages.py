"""Datasette metadata for a history database: titles, descriptions, column titles in words, the canned queries, the
dashboard, and the display time zone for the pages' plugin (amcompanion/history/site).

The dashboard's charts reuse the canned queries' SQL (wrapped where a chart needs one figure, or readable columns),
so a number on the dashboard and on its query page are computed the same way. Its one filter, `since`, is the
canned queries'. The wrapping may call the plugin's SQL functions (`duration_words`, `local_time`, `local_iso`):
the canned queries themselves stay plain SQLite. A tile always has one row: a figure, or "no data".
"""

from amcompanion.history.queries import QUERIES, since

DASHBOARD = "weekly"
PLUGIN = "amcompanion-history"  # the pages' plugin's config: {"time_zone": ...}
TABLES = {
    "alerts": "One row per firing episode of an alert (fingerprint + startsAt): its state, ack and resolution.",
    "alert_events": "Every state change Alertmanager reported (firing, resolved), once per alert and state.",
    "notifications": "Every message the receiver queued to a channel: tries, status, error, queued and sent times.",
    "escalations": "Every escalation step taken: the alert, the step, the levels, why, who asked (a manual step) and"
    " whom its schedules named (oncall).",
    "acks": "Every acknowledgement: who, how (link, api, console, phone, cli), when, with their comment.",
    "events": "Every change in order, as the console's event stream tells it (Last-Event-ID resumes from its ids).",
    "sla_targets": "Per-severity MTTA and MTTR targets in seconds (the catalog's defaults.sla).",
    "alert_times": "Alerts (drills left out) with their time to acknowledge (from the first notice) and to resolve"
    " (from the start).",
}
UNITS = {
    "alert_times": {"ack_seconds": "s", "resolve_seconds": "s"},
    "sla_targets": {"ack_seconds": "s", "resolve_seconds": "s"},
}
# Column titles in words, for every column the pages show (the JSON and CSV keep the names).
LABELS = {
    "id": "#", "alert_id": "Alert #", "alertname": "Alert", "severity": "Severity", "service": "Service",
    "week": "Week of", "acknowledged_by": "Acknowledged by", "alerts": "Alerts", "acknowledged": "Acknowledged",
    "mtta_median_min": "MTTA, median", "mtta_p90_min": "MTTA, p90", "resolved": "Resolved",
    "mttr_median_min": "MTTR, median", "mttr_p90_min": "MTTR, p90", "mtta_target_min": "MTTA target",
    "mttr_target_min": "MTTR target", "mtta_breaches": "Acknowledged late", "mtta_breach_pct": "Acknowledged late, %",
    "mttr_breaches": "Resolved late", "mttr_breach_pct": "Resolved late, %", "fired": "Fired", "series": "Series",
    "acknowledged_pct": "Acknowledged, %", "avg_duration_min": "Average duration", "last_fired": "Last fired",
    "instance": "Instance", "fingerprint": "Series (fingerprint)", "most_firings_in_window": "Most firings in a window",
    "firings": "Firings", "never_acknowledged": "Never acknowledged", "still_firing": "Still firing",
    "highest_escalation_step": "Highest escalation step", "policy": "Escalation policy", "step": "Step",
    "repeats": "Repeats", "acknowledged_later": "Acknowledged later", "channel": "Channel", "messages": "Messages",
    "sent": "Sent", "failed": "Failed", "queued": "Queued", "success_pct": "Delivered, %", "retries": "Retries",
    "latency_median_s": "Latency, median", "latency_p90_s": "Latency, p90",
    "acknowledged_in_time": "Acknowledged in time", "resolved_in_time": "Resolved in time",
    "health_score": "Health score (0-100)", "hour": "Hour", "started": "Started", "arrived": "Arrived",
    "status": "Status", "drill": "Drill", "arrived_at": "Arrived", "starts_at": "Started",
    "acked_by": "Acknowledged by", "resolved_at": "Resolved", "labels": "Labels", "annotations": "Annotations",
    "ends_at": "Ended", "acked_at": "Acknowledged", "escalation_level": "Escalation steps taken",
    "first_notice_at": "First notice",
    "next_step_at": "Next step due", "generator_url": "Source", "group_key": "Group key",
    "alertmanager_url": "Alertmanager", "silence_id": "Silence", "resolved_by": "Resolved by",
    "ack_seconds": "Time to acknowledge", "resolve_seconds": "Time to resolve", "wait_seconds": "Waited for an answer",
    "received_at": "Received", "receiver": "Receiver", "kind": "Kind", "recipient": "Recipient", "round": "Round",
    "attempts": "Tries", "error": "Error (the channel's answer)", "queued_at": "Queued", "sent_at": "Sent at",
    "next_attempt_at": "Next try", "give_up_at": "Gives up at", "digest_id": "Digest", "latency_seconds": "Latency",
    "template_error": "Template error", "from_level": "From level", "to_level": "To level", "reason": "Reason",
    "at": "At", "by": "By", "oncall": "On call", "via": "Via", "comment": "Comment", "type": "Type", "data": "Data",
    "claimed_by": "Claimed by", "lease_until": "Leased until",
}  # fmt: skip
COUNT_AXIS = {"format": "d", "tickMinStep": 1}  # counts are whole: no 0.0-1.0 axis for one alert
# Minutes on an axis as they grow: min, then h, then d
MINUTES_IN_WORDS = (
    "datum.value < 90 ? format(datum.value, '.0f') + ' min' : datum.value < 2880"
    " ? format(datum.value / 60, '.1~f') + ' h' : format(datum.value / 1440, '.1~f') + ' d'"
)


def _figure(query: str, column: str, where: str = "") -> str:
    """One value out of a canned query's rows."""
    return f"SELECT {column} FROM ({QUERIES[query].sql}){where}"


def _chart(title: str, sql: str, library: str, display: dict | str | None = None, db: str = "") -> dict:
    chart: dict = {"title": title, "db": db, "query": sql, "library": library}
    if display is not None:
        chart["display"] = display
    return chart


def _tile(title: str, figure: str, note: str = "NULL") -> dict:
    """A metric tile: `figure` (a scalar subquery; NULL: "no data") and a line under it, `note`."""
    sql = f"SELECT COALESCE(({figure}), 'no data') || COALESCE('<small>' || ({note}) || '</small>', '') AS value"
    return _chart(title, sql, "metric", {"field": "value", "prefix": "", "suffix": ""})


def _table(title: str, query: str, columns: dict[str, str]) -> dict:
    """A dashboard table of a canned query with titles in words (`columns`: title → expression over its row `q`);
    one row saying "no data" when the query has none (the dashboard draws nothing for no rows)."""
    (first, key), *rest = columns.items()
    exprs = [f"COALESCE({key}, 'no data') AS \"{first}\""]
    exprs += [f"COALESCE({expr}, IIF({key} IS NULL, '', '-')) AS \"{name}\"" for name, expr in rest]
    sql = f"SELECT {', '.join(exprs)} FROM (SELECT 1) LEFT JOIN ({QUERIES[query].sql}) q ON 1"
    return _chart(title, sql, "table")


def _bars(x: dict, y: dict, color: dict | None = None, transform: list | None = None, mark: str = "bar") -> dict:
    encoding: dict = {"x": x, "y": y}
    if color:
        encoding["color"] = color
    spec: dict = {"mark": {"type": mark, "tooltip": True}, "encoding": encoding}
    if transform:
        spec["transform"] = transform
    return spec


def _of(part: str, whole: str, what: str) -> str:
    return f"CASE WHEN {whole} > 0 THEN {part} || ' of ' || {whole} || '{what and ' ' + what}' END"


KINDS = ["critical", "warning", "info", "drill"]
KIND_COLORS = {
    "field": "severity",
    "type": "nominal",
    "title": None,
    "scale": {"domain": KINDS, "range": ["#d62728", "#ff7f0e", "#1f77b4", "#6f42c1"]},
    "sort": KINDS,
}

# Bars: alerts as they arrived, by severity (drills apart); the dashed line: as they started (startsAt)
VOLUME = {
    "encoding": {"x": {"field": "hour", "timeUnit": "yearmonthdatehours", "type": "temporal", "title": None}},
    "layer": [
        {
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "y": {"field": "arrived", "type": "quantitative", "stack": True, "title": "alerts", "axis": COUNT_AXIS},
                "color": KIND_COLORS,
            },
        },
        {
            "mark": {"type": "line", "color": "#333", "strokeDash": [4, 3], "interpolate": "step-after"},
            "encoding": {"y": {"aggregate": "sum", "field": "started", "type": "quantitative"}},
        },
    ],
}


def dashboard(zone: str = "UTC", db_name: str = "history") -> dict:
    paged = "SELECT severity FROM sla_targets"
    critical = f"FROM ({QUERIES['mtta_mttr_by_severity'].sql}) WHERE severity = 'critical'"
    real = f"alerts INDEXED BY alerts_by_arrival WHERE first_notice_at >= {since()}"
    arrivals = f"SELECT COUNT(*) FROM {real} AND drill = 0"
    drills = f"SELECT COUNT(*) FROM {real} AND drill"
    started = (
        f"SELECT 'arrived; ' || (SELECT COUNT(*) FROM alert_times WHERE starts_at >= {since()})"
        f" || ' started in the period' || CASE ({drills}) WHEN 0 THEN '' WHEN 1 THEN '; 1 drill apart'"
        f" ELSE '; ' || ({drills}) || ' drills apart' END"
    )
    unacknowledged = (
        f"SELECT {_of('SUM(ack_seconds IS NULL)', 'COUNT(*)', '')} FROM alert_times"
        f" WHERE starts_at >= {since()} AND severity IN ({paged})"
    )
    delivered = _figure("deliveries_by_channel", "ROUND(100.0 * SUM(sent) / SUM(messages), 1) || ' %'")
    charts = {
        "links": _chart(
            "",
            "",
            "markdown",
            f"[Alert quality](/-/quality): what flaps, comes periodically, goes unanswered or cascades ·"
            f" [Latest alerts](/{db_name}/latest_alerts), each with its timeline · times in {zone};"
            " drills are left out of the figures",
        ),
        "alerts": _tile("Alerts", arrivals, started),
        "mtta": _tile(
            "MTTA, critical (median)",
            f"SELECT duration_words(mtta_median_min * 60) {critical}",
            f"SELECT {_of('acknowledged', 'alerts', 'acknowledged')} {critical}",
        ),
        "mttr": _tile(
            "MTTR, critical (median)",
            f"SELECT duration_words(mttr_median_min * 60) {critical}",
            f"SELECT {_of('resolved', 'alerts', 'resolved')} {critical}",
        ),
        "unacknowledged": _tile(
            "Pages nobody acknowledged", unacknowledged, "'pages of the severities with SLA targets'"
        ),
        "delivered": _tile(
            "Messages delivered",
            delivered,
            _figure("deliveries_by_channel", _of("SUM(sent)", "SUM(messages)", "messages")),
        ),
        "volume": _chart(
            f"Alerts per hour as they arrived ({zone}); the line: as they started",
            f"SELECT local_iso(hour) AS hour, severity, started, arrived FROM ({QUERIES['alerts_per_hour'].sql})",
            "vega-lite",
            VOLUME,
        ),
        "weekly": _chart(
            "MTTA and MTTR by week (median)",
            'SELECT week, mtta_median_min AS "MTTA", mttr_median_min AS "MTTR"'
            f" FROM ({QUERIES['mtta_mttr_by_week'].sql})",
            "vega-lite",
            _bars(
                {"field": "week", "type": "ordinal", "title": "week of", "axis": {"labelAngle": 0}},
                {"field": "minutes", "type": "quantitative", "title": None, "axis": {"labelExpr": MINUTES_IN_WORDS}},
                {"field": "measure", "type": "nominal", "title": None},
                [{"fold": ["MTTA", "MTTR"], "as": ["measure", "minutes"]}, {"filter": "datum.minutes != null"}],
                mark="line",
            ),
        ),
        "health": _chart(
            "Service health score (0-100)",
            QUERIES["service_health"].sql,
            "vega-lite",
            _bars(
                {"field": "health_score", "type": "quantitative", "scale": {"domain": [0, 100]}, "title": "score"},
                {"field": "service", "type": "nominal", "sort": "x", "title": None},
            ),
        ),
        "deliveries": _chart(
            "Deliveries by channel",
            QUERIES["deliveries_by_channel"].sql,
            "vega-lite",
            _bars(
                {"field": "messages", "type": "quantitative", "stack": True, "axis": COUNT_AXIS},
                {"field": "channel", "type": "nominal", "sort": "-x", "title": None},
                {
                    "field": "status",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": ["sent", "failed", "queued"], "range": ["#2ca02c", "#d62728", "#7f7f7f"]},
                },
                [{"fold": ["sent", "failed", "queued"], "as": ["status", "messages"]}],
            ),
        ),
        "escalations": _chart(
            "Escalations by policy and step (alerts that reached the step)",
            QUERIES["escalations_by_policy"].sql,
            "vega-lite",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "policy", "type": "nominal", "title": None, "axis": {"labelAngle": 0}},
                    "xOffset": {"field": "step", "type": "ordinal"},
                    "y": {"field": "alerts", "type": "quantitative", "axis": COUNT_AXIS},
                    "color": {"field": "step", "type": "ordinal", "title": "step"},
                },
            },
        ),
        "noisiest": _table(
            "Noisiest alerts",
            "noisiest_alerts",
            {
                "Alert": "q.alertname",
                "Service": "q.service",
                "Fired": "q.fired",
                "Acknowledged": "q.acknowledged || ' of ' || q.fired",
                "Average duration": "duration_words(q.avg_duration_min * 60)",
                "Last fired": "local_time(q.last_fired)",
            },
        ),
        "sla": _table(
            "SLA breaches",
            "sla_breaches",
            {
                "Severity": "q.severity",
                "MTTA target": "duration_words(q.mtta_target_min * 60)",
                "Acknowledged late": "q.mtta_breaches || ' of ' || q.alerts",
                "MTTR target": "duration_words(q.mttr_target_min * 60)",
                "Resolved late": "q.mttr_breaches || ' of ' || q.alerts",
            },
        ),
        "flapping": _table(
            "Flapping alerts (more than 5 firings within 4 hours)",
            "flapping_alerts",
            {
                "Alert": "q.alertname",
                "Service": "q.service",
                "Instance": "q.instance",
                "Most firings in 4 h": "q.most_firings_in_window",
                "Firings": "q.firings",
                "Acknowledged": "q.acknowledged || ' of ' || q.firings",
                "Last fired": "local_time(q.last_fired)",
            },
        ),
    }
    return {
        "title": "Alerting, this week",
        "description": "How fast pages are acknowledged and resolved, what fires too often, which channels fail."
        " Since: the start of the period (default: 7 days ago; the weekly trend: 28 days).",
        "settings": {"allow_fullscreen": True},
        "filters": {"since": {"name": "Since", "type": "date"}},
        "layout": [
            ["links", "links", "links", "links", "links"],
            ["alerts", "mtta", "mttr", "unacknowledged", "delivered"],
            ["volume", "volume", "volume", "volume", "volume"],
            ["weekly", "weekly", "weekly", "health", "health"],
            ["deliveries", "deliveries", "escalations", "escalations", "escalations"],
            ["noisiest", "noisiest", "noisiest", "sla", "sla"],
            ["flapping", "flapping", "flapping", "flapping", "flapping"],
        ],
        "charts": charts,
    }


def metadata(db_name: str, zone: str = "UTC") -> dict:
    """Datasette metadata for the history database that Datasette calls `db_name` (its file's stem), with times
    shown in `zone` (an IANA name)."""
    board = dashboard(zone, db_name)
    for chart in board["charts"].values():
        chart["db"] = db_name
    return {
        "title": "amcompanion alert history",
        "description_html": (
            f'<a href="/-/dashboards/{DASHBOARD}">The weekly dashboard</a>, <a href="/-/quality">alert quality</a>'
            f' (what flaps, comes periodically, goes unanswered or cascades), <a href="/{db_name}/latest_alerts">the'
            " latest alerts</a> (each with its timeline), or a question below: every page takes <code>since</code>"
            f" (a date; default 7 days ago, 28 for the weekly trend). Times are shown in {zone}; drills"
            ' (<code>drill="true"</code>) are left out of the figures. CSV and JSON links are on every page.'
        ),
        "databases": {
            db_name: {
                "description": "What the amcompanion receiver recorded: alerts, deliveries, escalations, acks.",
                "tables": {
                    name: {"description": text, **({"units": UNITS[name]} if name in UNITS else {})}
                    for name, text in TABLES.items()
                },
                "queries": {
                    name: {"title": q.title, "description": q.description, "sql": q.sql} for name, q in QUERIES.items()
                },
            }
        },
        "plugins": {"datasette-dashboards": {DASHBOARD: board}, PLUGIN: {"time_zone": zone}},
    }
