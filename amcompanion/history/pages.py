"""Datasette metadata for a history database: titles, descriptions, units, the canned queries and the dashboard.

The dashboard's charts reuse the canned queries' SQL (wrapped where a chart needs one figure), so a number on
the dashboard and on its query page are computed the same way. Its one filter, `since`, is the canned queries'.
"""

from amcompanion.history.queries import QUERIES, since

DASHBOARD = "weekly"
TABLES = {
    "alerts": "One row per firing episode of an alert (fingerprint + startsAt): its state, ack and resolution.",
    "alert_events": "Every state change Alertmanager reported (firing, resolved), once per alert and state.",
    "notifications": "Every message the receiver queued to a channel: tries, status, error, queued and sent times.",
    "escalations": "Every escalation step taken: the alert, the step, the levels, why, who asked (a manual step) and"
    " whom its schedules named (oncall).",
    "acks": "Every acknowledgement: who, how (link, api, console, phone, cli), when, with their comment.",
    "events": "Every change in order, as the console's event stream tells it (Last-Event-ID resumes from its ids).",
    "sla_targets": "Per-severity MTTA and MTTR targets in seconds (the catalog's defaults.sla).",
    "alert_times": "Alerts with their time to acknowledge (from the first notice) and to resolve (from the start).",
}
UNITS = {
    "alert_times": {"ack_seconds": "s", "resolve_seconds": "s"},
    "sla_targets": {"ack_seconds": "s", "resolve_seconds": "s"},
}


def _figure(query: str, column: str, where: str = "") -> str:
    """One value out of a canned query's rows."""
    return f"SELECT {column} FROM ({QUERIES[query].sql}){where}"


def _chart(title: str, sql: str, library: str, display: dict | None = None, db: str = "") -> dict:
    chart: dict = {"title": title, "db": db, "query": sql, "library": library}
    if display is not None:
        chart["display"] = display
    return chart


def _metric(title: str, sql: str, field: str, suffix: str = "") -> dict:
    return _chart(title, sql, "metric", {"field": field, "prefix": "", "suffix": suffix})


def _bars(x: dict, y: dict, color: dict | None = None, transform: list | None = None, mark: str = "bar") -> dict:
    encoding: dict = {"x": x, "y": y}
    if color:
        encoding["color"] = color
    spec: dict = {"mark": {"type": mark, "tooltip": True}, "encoding": encoding}
    if transform:
        spec["transform"] = transform
    return spec


SEVERITY_COLORS = {
    "field": "severity",
    "type": "nominal",
    "scale": {"domain": ["critical", "warning", "info"], "range": ["#d62728", "#ff7f0e", "#1f77b4"]},
    "sort": ["critical", "warning", "info"],
}


def dashboard() -> dict:
    paged = "SELECT severity FROM sla_targets"
    charts = {
        "alerts": _metric("Alerts", f"SELECT COUNT(*) AS alerts FROM alerts WHERE starts_at >= {since()}", "alerts"),
        "mtta": _metric(
            "MTTA, critical (median)",
            _figure("mtta_mttr_by_severity", "mtta_median_min", " WHERE severity = 'critical'"),
            "mtta_median_min",
            " min",
        ),
        "mttr": _metric(
            "MTTR, critical (median)",
            _figure("mtta_mttr_by_severity", "mttr_median_min", " WHERE severity = 'critical'"),
            "mttr_median_min",
            " min",
        ),
        "unacknowledged": _metric(
            "Pages nobody acknowledged",
            f"SELECT COUNT(*) AS alerts FROM alert_times WHERE starts_at >= {since()} AND ack_seconds IS NULL"
            f" AND severity IN ({paged})",
            "alerts",
        ),
        "delivered": _metric(
            "Messages delivered",
            _figure("deliveries_by_channel", "ROUND(100.0 * SUM(sent) / SUM(messages), 1) AS delivered_pct"),
            "delivered_pct",
            " %",
        ),
        "volume": _chart(
            "Alerts per hour (UTC)",
            QUERIES["alerts_per_hour"].sql,
            "vega-lite",
            _bars(
                {"field": "hour", "type": "temporal", "title": None},
                {"field": "alerts", "type": "quantitative", "stack": True},
                SEVERITY_COLORS,
            ),
        ),
        "weekly": _chart(
            "MTTA and MTTR by week (median, minutes)",
            QUERIES["mtta_mttr_by_week"].sql,
            "vega-lite",
            _bars(
                {"field": "week", "type": "temporal", "title": None},
                {"field": "minutes", "type": "quantitative"},
                {"field": "measure", "type": "nominal", "title": None},
                [{"fold": ["mtta_median_min", "mttr_median_min"], "as": ["measure", "minutes"]}],
                mark="line",
            ),
        ),
        "health": _chart(
            "Service health score (0-100)",
            QUERIES["service_health"].sql,
            "vega-lite",
            _bars(
                {"field": "health_score", "type": "quantitative", "scale": {"domain": [0, 100]}},
                {"field": "service", "type": "nominal", "sort": "x", "title": None},
            ),
        ),
        "deliveries": _chart(
            "Deliveries by channel",
            QUERIES["deliveries_by_channel"].sql,
            "vega-lite",
            _bars(
                {"field": "messages", "type": "quantitative", "stack": True},
                {"field": "channel", "type": "nominal", "sort": "-x", "title": None},
                {
                    "field": "status",
                    "type": "nominal",
                    "scale": {"domain": ["sent", "failed", "queued"], "range": ["#2ca02c", "#d62728", "#7f7f7f"]},
                },
                [{"fold": ["sent", "failed", "queued"], "as": ["status", "messages"]}],
            ),
        ),
        "escalations": _chart(
            "Escalations by policy and step",
            QUERIES["escalations_by_policy"].sql,
            "vega-lite",
            {
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {"field": "policy", "type": "nominal", "title": None},
                    "xOffset": {"field": "step", "type": "ordinal"},
                    "y": {"field": "alerts", "type": "quantitative"},
                    "color": {"field": "step", "type": "ordinal"},
                },
            },
        ),
        "noisiest": _chart("Noisiest alerts", QUERIES["noisiest_alerts"].sql, "table"),
        "sla": _chart("SLA breaches", QUERIES["sla_breaches"].sql, "table"),
        "flapping": _chart("Flapping alerts", QUERIES["flapping_alerts"].sql, "table"),
    }
    return {
        "title": "Alerting, this week",
        "description": "How fast pages are acknowledged and resolved, what fires too often, which channels fail."
        " Since: the start of the period (default: 7 days ago; the weekly trend: 28 days).",
        "settings": {"allow_fullscreen": True},
        "filters": {"since": {"name": "Since", "type": "date"}},
        "layout": [
            ["alerts", "mtta", "mttr", "unacknowledged", "delivered"],
            ["volume", "volume", "volume", "volume", "volume"],
            ["weekly", "weekly", "weekly", "health", "health"],
            ["deliveries", "deliveries", "escalations", "escalations", "escalations"],
            ["noisiest", "noisiest", "noisiest", "sla", "sla"],
            ["flapping", "flapping", "flapping", "flapping", "flapping"],
        ],
        "charts": charts,
    }


def metadata(db_name: str) -> dict:
    """Datasette metadata for the history database that Datasette calls `db_name` (its file's stem)."""
    board = dashboard()
    for chart in board["charts"].values():
        chart["db"] = db_name
    return {
        "title": "amcompanion alert history",
        "description_html": (
            f'<a href="/-/dashboards/{DASHBOARD}">The weekly dashboard</a>, or a question below: every page takes'
            " <code>since</code> (a date; default 7 days ago, 28 for the weekly trend). CSV and JSON links are on"
            " every page."
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
        "plugins": {"datasette-dashboards": {DASHBOARD: board}},
    }
