"""The receiver's HTTP face: what Alertmanager, people, Twilio, Prometheus and Kubernetes call."""

import hmac
import html
import json
import logging
import sqlite3
from base64 import b64decode
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from amcompanion.catalog.durations import parse_duration
from amcompanion.receiver.links import BadToken, twilio_signature
from amcompanion.receiver.payload import PayloadError, parse_notification
from amcompanion.receiver.service import Receiver
from amcompanion.receiver.silences import SilenceError, create_silence
from amcompanion.receiver.store import Conflict, NotFound

log = logging.getLogger("amcompanion.http")

RECEIVER_KEY = web.AppKey("receiver", Receiver)
STATES = ("firing", "acknowledged", "resolved")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(receiver: Receiver) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=receiver.settings.max_body_bytes)
    app[RECEIVER_KEY] = receiver
    app.router.add_post("/webhook/{policy}", webhook)
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alerts/{id}", get_alert)
    app.router.add_post("/api/v1/alerts/{id}/ack", ack_alert)
    app.router.add_post("/api/v1/alerts/{id}/resolve", resolve_alert)
    app.router.add_post("/api/v1/alerts/{id}/escalate", escalate_alert)
    app.router.add_get("/ack/{token}", ack_page)
    app.router.add_post("/ack/{token}", ack_by_link)
    app.router.add_post("/twilio/voice/{notification_id}", twilio_voice)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def start(app: web.Application) -> None:
        await receiver.start()

    async def stop(app: web.Application) -> None:
        await receiver.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authentication first; then every refusal as `{"error": "..."}` with its status, and a database
    failure as 503 (Alertmanager retries 5xx)."""
    refused = _unauthenticated(request)
    if refused is not None:
        return refused
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        return _error(413, f"body over the limit of {exc.max_size} bytes")
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _error(exc.status, exc.reason)
    except sqlite3.Error as exc:
        log.error("database error on %s %s: %s", request.method, request.path, exc)
        return _error(503, "the history database is unavailable; retry later")


def _unauthenticated(request: web.Request) -> web.Response | None:
    """A 401 unless the request carries the token (bearer, or basic auth with it as the password), compared
    in constant time; only /webhook and /api need it."""
    receiver = request.app[RECEIVER_KEY]
    token = receiver.settings.token
    endpoint = request.path.split("/")[1]
    if token is None or endpoint not in ("webhook", "api"):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    offered = ""
    if scheme.lower() == "bearer":
        offered = credential.strip()
    elif scheme.lower() == "basic":
        try:
            offered = b64decode(credential.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            offered = ""
    if offered and hmac.compare_digest(offered.encode(), token.encode()):
        return None
    receiver.metrics.auth_failures.labels(endpoint).inc()
    message = "missing credentials" if not header else "wrong credentials"
    return _error(
        401,
        f"{message}: send the receiver's token as `Authorization: Bearer <token>`",
        **{"WWW-Authenticate": 'Bearer realm="amcompanion"'},
    )


# -- Alertmanager ---------------------------------------------------------------------------------
async def webhook(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    policy = request.match_info["policy"]
    response = await _ingest(request, receiver, policy)
    receiver.metrics.webhook_request(policy if policy in receiver.config.policies else "", response.status)
    return response


async def _ingest(request: web.Request, receiver: Receiver, policy: str) -> web.Response:
    if policy not in receiver.config.policies:
        known = ", ".join(sorted(receiver.config.policies)) or "none"
        return _error(404, f'unknown escalation policy "{policy}" (this receiver knows: {known})')
    limit = receiver.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"body over the limit of {limit} bytes")
    try:
        note = parse_notification(await request.read())
    except PayloadError as exc:
        return _error(exc.status, exc.message)
    summary = await receiver.db.run(receiver.store.ingest, policy, note, receiver.clock.now())
    for status in summary.statuses:
        receiver.metrics.received_by_status[status].inc()
    if summary.duplicates:
        receiver.metrics.duplicates.inc(summary.duplicates)
    if summary.steps:
        receiver.metrics.escalations.labels("first notice").inc(summary.steps)
    if summary.queued:
        receiver.outbox.wake()
    if summary.next_deadline is not None:
        receiver.deadline_set(summary.next_deadline)
    return web.json_response(
        {
            "status": "ok",
            "received": summary.received,
            "new": summary.new,
            "resolved": summary.resolved,
            "duplicates": summary.duplicates,
            "queued": summary.queued,
        }
    )


# -- people and scripts ---------------------------------------------------------------------------
async def list_alerts(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    state = request.query.get("state")
    if state is not None and state not in STATES:
        return _error(400, f'state must be one of {", ".join(STATES)}, got "{state}"')
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return _error(400, "limit must be a whole number")
    if not 0 < limit <= 10_000:
        return _error(400, "limit must be between 1 and 10000")
    alerts = await receiver.db.read(receiver.store.alerts, state, limit)
    return web.json_response({"alerts": alerts})


def _alert_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason=f'no alert "{request.match_info["id"]}": ids are numbers') from None


async def _call(receiver: Receiver, fn: Callable, *args: object, write: bool = True) -> object:  # type: ignore[type-arg]
    try:
        return await (receiver.db.run if write else receiver.db.read)(fn, *args)
    except NotFound as exc:
        raise web.HTTPNotFound(reason=str(exc)) from None
    except Conflict as exc:
        raise web.HTTPConflict(reason=str(exc)) from None


async def get_alert(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    return web.json_response(await _call(receiver, receiver.store.alert, _alert_id(request), write=False))


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(reason=f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(reason="expected a JSON object")
    return body


async def ack_alert(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    alert_id = _alert_id(request)
    body = await _json_body(request)
    by, comment, silence = body.get("by"), body.get("comment", ""), body.get("silence")
    if not isinstance(by, str) or not by.strip():
        return _error(422, 'by: required: who acknowledges, e.g. {"by": "alice"}')
    if not isinstance(comment, str):
        return _error(422, "comment: expected a string")
    silence_ms = parse_duration(silence) if isinstance(silence, str) else None
    if silence is not None and not silence_ms:
        return _error(422, f"silence: expected a duration such as 2h or 30m, got {silence!r}")
    alert = await _acknowledge(receiver, alert_id, by.strip(), "api", comment)
    if silence_ms:
        try:
            alert["silence_id"] = await create_silence(receiver, alert, silence_ms, by.strip(), comment)
        except SilenceError as exc:
            alert["silence_error"] = str(exc)
    return web.json_response(alert)


async def _acknowledge(receiver: Receiver, alert_id: int, by: str, via: str, comment: str) -> dict:
    alert = await _call(receiver, receiver.store.ack, alert_id, by, via, comment, receiver.clock.now())
    receiver.metrics.acks.labels(via).inc()
    return alert  # type: ignore[return-value]


async def resolve_alert(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    alert, queued = await _call(receiver, receiver.store.resolve, _alert_id(request), receiver.clock.now())  # type: ignore[misc]
    if queued:
        receiver.outbox.wake()
    return web.json_response(alert)


async def escalate_alert(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    alert, _ = await _call(receiver, receiver.store.escalate, _alert_id(request), receiver.clock.now())  # type: ignore[misc]
    receiver.metrics.escalations.labels("manual").inc()
    receiver.wake()
    return web.json_response(alert)


# -- acknowledgement links --------------------------------------------------------------------------
def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:36em;margin:2em auto;"
        "padding:0 1em}button{font-size:1.2em;padding:.5em 1.5em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _linked_alert(request: web.Request) -> tuple[Receiver, int] | web.Response:
    receiver = request.app[RECEIVER_KEY]
    try:
        return receiver, receiver.links.verify(request.match_info["token"], receiver.clock.now())
    except BadToken as exc:
        return _page("This link does not work", f"<p>{html.escape(str(exc))}.</p>", status=403)


async def ack_page(request: web.Request) -> web.Response:
    """Shows the alert and a button; changes nothing (chat apps fetch links to preview them)."""
    found = _linked_alert(request)
    if isinstance(found, web.Response):
        return found
    receiver, alert_id = found
    try:
        alert = await receiver.db.read(receiver.store.alert, alert_id)
    except NotFound:
        return _page("Unknown alert", "<p>The alert of this link is not in the history.</p>", status=404)
    summary = alert["annotations"].get("summary", "")
    state = alert["status"]
    if state != "firing":
        who = f" by {alert['acked_by']}" if alert["acked_by"] else ""
        return _page(alert["alertname"], f"<p>{html.escape(summary)}</p><p>Already {state}{html.escape(who)}.</p>")
    form = (
        f"<p>{html.escape(summary)}</p><p>Severity: {html.escape(alert['severity'] or 'none')}; firing since "
        f"{html.escape(alert['starts_at'])}.</p><form method='post'><label>Your name "
        "<input name='by' autocomplete='name'></label> <button type='submit'>Acknowledge</button></form>"
    )
    return _page(alert["alertname"], form)


async def ack_by_link(request: web.Request) -> web.Response:
    found = _linked_alert(request)
    if isinstance(found, web.Response):
        return found
    receiver, alert_id = found
    form = await request.post()
    by = str(form.get("by", "")).strip()[:100] or "someone with the link"
    try:
        alert = await _acknowledge(receiver, alert_id, by, "link", "")
    except web.HTTPException as exc:
        return _page("Not acknowledged", f"<p>{html.escape(exc.reason)}.</p>", status=exc.status)
    return _page(
        "Acknowledged",
        f"<p>{html.escape(alert['alertname'])} is acknowledged by {html.escape(by)}. Escalation has stopped.</p>",
    )


# -- Twilio ---------------------------------------------------------------------------------------------
async def twilio_voice(request: web.Request) -> web.Response:
    """The <Gather> callback of a voice call: digit 1 acknowledges, as the person who was called."""
    receiver = request.app[RECEIVER_KEY]
    try:
        notification_id = int(request.match_info["notification_id"])
    except ValueError:
        return _error(404, "unknown call")
    row = await receiver.db.read(_notification, notification_id)
    settings = receiver.config.channels.get(row["channel"]) if row else None
    if row is None or settings is None or "auth_token" not in settings:
        return _error(404, "unknown call")
    params = {k: str(v) for k, v in (await request.post()).items()}
    offered = request.headers.get("X-Twilio-Signature", "").encode()
    # Twilio signs the URL it requested: the public one (external_url) behind a proxy, else this one.
    urls = (receiver.config.external_url + request.path_qs, str(request.url))
    expected = [twilio_signature(str(settings["auth_token"]), url, params).encode() for url in urls]
    if not any(hmac.compare_digest(offered, candidate) for candidate in expected):
        receiver.metrics.auth_failures.labels("twilio").inc()
        return _error(403, "X-Twilio-Signature does not match this request")
    if params.get("Digits") == "1":
        try:
            await _acknowledge(receiver, row["alert_id"], row["recipient"] or "phone", "phone", "pressed 1 on the call")
            say = "Acknowledged. Escalation has stopped. Goodbye."
        except web.HTTPException:
            say = "This alert is already resolved. Goodbye."
    else:
        say = "Not acknowledged. Goodbye."
    twiml = f"<?xml version='1.0' encoding='UTF-8'?><Response><Say>{html.escape(say)}</Say></Response>"
    return web.Response(text=twiml, content_type="application/xml")


def _notification(conn: sqlite3.Connection, notification_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM notifications WHERE id = ?", (notification_id,)).fetchone()


# -- operations -----------------------------------------------------------------------------------------
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[RECEIVER_KEY].metrics.registry
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    if not (receiver.ready and receiver.db.opened):
        return _error(503, "not ready: the database or config is not loaded")
    return web.json_response({"status": "ready", "policies": sorted(receiver.config.policies)})
