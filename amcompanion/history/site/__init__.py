"""The history pages' own Datasette plugin, loaded by `amcompanion history serve` (see __main__): what makes the pages
read to someone who has never seen Datasette.

* Cells in words (`render_cell`, HTML only: CSV and JSON keep the stored values): durations in s/min/h/d, times in
  the display time zone (`history serve --time-zone`, the plugin config `time_zone`), "3 of 12" beside a count
  that has a whole, percentages with their sign, labels as `name=value` rather than JSON, alert ids and names as
  links to the alert's page, drills marked.
* Column titles in words: `pages.LABELS`, put on the headers by static/history.js (the raw name stays as the
  header's tooltip, for SQL); "no data" where a chart has nothing to draw.
* SQL functions for the dashboard's own SQL (`duration_words`, `local_time`, `local_iso`): the canned queries stay
  plain SQLite, the dashboard wraps them for reading.
* Two pages: `/-/alert/<id>` (the alert and its timeline) and `/-/quality` (`amcompanion quality`'s findings).
"""

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from datasette import hookimpl
from datasette.utils.asgi import BadRequest, Forbidden, NotFound, Request, Response
from markupsafe import Markup, escape

from amcompanion.catalog.durations import parse_duration
from amcompanion.history.pages import LABELS, PLUGIN
from amcompanion.history.site import quality, timeline
from amcompanion.history.words import STAMP, duration_words, local_iso, local_time
from amcompanion.quality.text import as_json

NAME = __name__  # Datasette serves the static directory under the module's name
# A count and the column that holds its whole, in the order looked for: "3 of 12"
OF = {
    "acknowledged": ("alerts", "fired", "firings"),
    "resolved": ("alerts",),
    "mtta_breaches": ("alerts",),
    "mttr_breaches": ("alerts",),
    "acknowledged_in_time": ("alerts",),
    "resolved_in_time": ("alerts",),
    "acknowledged_later": ("alerts",),
    "still_firing": ("never_acknowledged",),
    "sent": ("messages",),
    "failed": ("messages",),
    "queued": ("messages",),
}
JSON_COLUMNS = {"labels", "annotations"}


def zone(datasette: Any) -> ZoneInfo:
    return ZoneInfo((datasette.plugin_config(PLUGIN) or {}).get("time_zone", "UTC"))


def alert_url(datasette: Any, alert_id: object) -> str:
    return datasette.urls.path(f"-/alert/{alert_id}")


def is_drill(labels: dict) -> bool:
    return labels.get("drill") == "true"


def drill_badge() -> Markup:
    return Markup(' <span class="amc-drill" title="drill=&quot;true&quot;: left out of the figures">drill</span>')


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    shown = zone(datasette)
    conn.create_function("duration_words", 1, lambda s: None if s is None else duration_words(s), deterministic=True)
    conn.create_function("local_time", 1, lambda t: t and local_time(t, shown), deterministic=True)
    conn.create_function("local_iso", 1, lambda t: t and local_iso(t, shown), deterministic=True)


def _whole(row: Any, column: str) -> object:
    keys = row.keys() if hasattr(row, "keys") else ()
    return next((row[name] for name in OF[column] if name in keys), None)


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    if isinstance(value, dict):  # a foreign key Datasette expanded: {"value", "label"}
        value = value.get("value")
    if value is None:
        return None
    if column == "alert_id" or (column == "id" and table is None):
        return Markup(f'<a href="{alert_url(datasette, value)}">{escape(value)}</a>')
    if isinstance(value, str) and STAMP.fullmatch(value):
        shown = local_time(value, zone(datasette))
        return Markup(f'<time datetime="{escape(value)}" title="{escape(value)} (as stored)">{shown}</time>')
    if column == "drill":
        return drill_badge() if value else ""
    if column == "alertname" and table == "alerts":
        drill = drill_badge() if is_drill(json.loads(row["labels"])) else ""
        return Markup(f'<a href="{alert_url(datasette, row["id"])}">{escape(value)}</a>{drill}')
    if not isinstance(value, int | float):
        return Markup(_labels(value)) if column in JSON_COLUMNS and value.startswith("{") else None
    if column.endswith("_min"):
        return duration_words(value * 60)
    if column.endswith(("_seconds", "_s")):
        return duration_words(value)
    if column.endswith("_pct"):
        return f"{value:g} %"
    if column in OF and (whole := _whole(row, column)) is not None:
        return f"{value} of {whole}"
    return None


def _labels(text: str) -> str:
    pairs = json.loads(text)
    return " ".join(f'<code class="amc-label">{escape(k)}={escape(v)}</code>' for k, v in pairs.items())


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.static_plugins(NAME, "history.css")]


@hookimpl
def extra_js_urls(datasette: Any) -> list[str]:
    return [datasette.urls.static_plugins(NAME, "history.js")]


@hookimpl
def extra_body_script() -> dict:
    return {"script": f"amcompanionLabels({json.dumps(LABELS)})"}


async def _allowed(datasette: Any, request: Request) -> None:
    if not await datasette.permission_allowed(request.actor, "view-instance", default=True):
        raise Forbidden("view-instance denied")


async def alert_page(datasette: Any, request: Request) -> Response:
    """One alert: what it is (labels, annotations, figures) and its timeline."""
    await _allowed(datasette, request)
    db = datasette.get_database()
    alert_id = int(request.url_vars["alert_id"])
    found = (await db.execute("SELECT * FROM alerts WHERE id = ?", [alert_id])).rows
    if not found:
        raise NotFound(f"No alert {alert_id} in the history")
    alert = dict(found[0])

    async def rows(sql: str) -> list[dict]:
        return [dict(r) for r in (await db.execute(sql, [alert_id])).rows]

    steps = timeline.timeline(
        alert,
        await rows("SELECT * FROM escalations WHERE alert_id = ? ORDER BY at, id"),
        await rows("SELECT * FROM notifications WHERE alert_id = ? ORDER BY queued_at, id"),
        await rows("SELECT * FROM acks WHERE alert_id = ? ORDER BY at, id"),
        zone(datasette),
        timeline.answers(await rows("SELECT data FROM events WHERE alert_id = ? AND type = 'notification.sent'")),
    )
    labels = json.loads(alert["labels"])
    context = {
        "alert": alert,
        "labels": labels,
        "annotations": json.loads(alert["annotations"]),
        "drill": is_drill(labels),
        "steps": steps,
        "zone": str(zone(datasette)),
        "database": db.name,
        "ack_after": duration_words(alert["ack_seconds"]) if alert["acked_at"] else "not acknowledged",
        "resolve_after": duration_words(alert["resolve_seconds"]) if alert["resolved_at"] else "still firing",
    }
    return Response.html(await datasette.render_template("amcompanion_alert.html", context, request=request))


async def quality_page(datasette: Any, request: Request) -> Response:
    """`amcompanion quality` over `since` (a duration, default 30d) as a page; `.json`: its JSON."""
    await _allowed(datasette, request)
    db = datasette.get_database()
    period = request.args.get("since") or "30d"
    ms = parse_duration(period)
    if not ms:
        raise BadRequest(f"since: expected a duration such as 30d, got {period!r}")
    shown = zone(datasette)
    since = datetime.now(UTC) - timedelta(milliseconds=ms)
    catalog_for_s = (datasette.plugin_config(PLUGIN) or {}).get("catalog_for_s")
    assessed = await asyncio.to_thread(quality.assessed, Path(db.path), since, shown, catalog_for_s)
    if request.url_vars.get("format"):
        return Response.json(as_json(assessed), default=str)
    context = {
        "period": period,
        "since": local_time(since.isoformat(), shown),
        "zone": str(shown),
        "rows": quality.rows(assessed),
        "cascades": assessed.cascades,
        "window": quality.cascade_window(),
        "database": db.name,
    }
    return Response.html(await datasette.render_template("amcompanion_quality.html", context, request=request))


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [(r"^/-/alert/(?P<alert_id>\d+)$", alert_page), (r"^/-/quality(?P<format>\.json)?$", quality_page)]
