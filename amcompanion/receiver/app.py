"""The receiver's HTTP face: what Alertmanager, people, Twilio, Prometheus and Kubernetes call."""

import contextlib
import hmac
import html
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import quote

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from amcompanion.catalog.durations import parse_duration
from amcompanion.catalog.model import display_name
from amcompanion.console import routes as console_routes
from amcompanion.receiver import chat
from amcompanion.receiver import db as database
from amcompanion.receiver.identity import CSRF_HEADER, NOBODY_CHECKED, PRINCIPAL, Refused, principal_of
from amcompanion.receiver.links import BadToken, Link, twilio_signature
from amcompanion.receiver.payload import PayloadError, load_json, parse_notification, replace_lone_surrogates
from amcompanion.receiver.service import RECEIVER_KEY, Receiver
from amcompanion.receiver.silences import SilenceError, create_silence
from amcompanion.receiver.store import Conflict, NotFound

log = logging.getLogger("amcompanion.http")

PROTECTED = ("webhook", "api", "console", "schedules")  # what needs credentials; ack links carry their own
OPEN_PATHS = ("/console/login", "/console/logout", "/console/static/")  # signing out needs no proof
BEARER = 'Bearer realm="amcompanion"'
UNVERIFIED = "someone (no authentication)"  # whom a change is recorded under when the receiver checks nobody
STATES = ("firing", "acknowledged", "resolved")
WEBHOOK = "/webhook/{policy}"
LONGEST_SILENCE_MS = 365 * 24 * 3600_000  # an acknowledged alert's silence; far longer would not fit a datetime
FREE_TEXT_NAME = 100  # characters kept of a name typed on a group link's page (a config without contacts)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(receiver: Receiver) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=receiver.settings.max_body_bytes)
    app[RECEIVER_KEY] = receiver
    app.router.add_post(WEBHOOK, webhook)
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
    console_routes.add_routes(app)
    chat.add_routes(app)

    async def start(app: web.Application) -> None:
        await receiver.start()

    async def stop(app: web.Application) -> None:
        await receiver.stop()

    async def end_streams(app: web.Application) -> None:
        receiver.events.end_streams()

    app.on_startup.append(start)
    app.on_shutdown.append(end_streams)  # before the server waits for requests in flight: streams never finish
    app.on_cleanup.append(stop)
    return app


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer passes here and is counted. Authentication first; then every refusal as `{"error": "..."}`
    with its status; a database outage as 503 (Alertmanager retries 5xx); anything else is a bug: logged once
    with its traceback and answered 500."""
    try:
        refused = _unauthenticated(request)
        response = refused if refused is not None else await handler(request)
    except PayloadError as exc:
        response = _error(exc.status, exc.message)
    except web.HTTPRequestEntityTooLarge:  # a chunked body goes over while it is read: no Content-Length to check
        response = _error(413, f"body over the limit of {request.app[RECEIVER_KEY].settings.max_body_bytes} bytes")
    except web.HTTPException as exc:  # the router's 404 and 405, the handlers' NotFound and Conflict
        kept = {k: v for k, v in exc.headers.items() if k not in ("Content-Type", "Content-Length")}  # Allow: POST
        response = _error(exc.status, exc.reason, **kept)
    except Exception as exc:
        if database.unavailable(exc):
            log.error("database error on %s %s: %s", request.method, request.path, exc)
            response = _error(503, "the history database is unavailable; retry later")
        else:
            log.exception("internal error on %s %s", request.method, request.path)
            response = _error(500, f"internal error ({type(exc).__name__}); the receiver's log has the details")
    _count(request, response.status)
    return response


def _count(request: web.Request, code: int) -> None:
    """One answer in the metrics: by route for every request, by policy ('' when unknown) for the webhook's."""
    receiver = request.app[RECEIVER_KEY]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else ""
    receiver.metrics.http_requests.labels(route, str(code)).inc()
    if route == WEBHOOK:
        policy = request.match_info["policy"]
        receiver.metrics.webhook_request(policy if policy in receiver.config.policies else "", code)


def _unauthenticated(request: web.Request) -> web.StreamResponse | None:
    """Who asks, kept as request[PRINCIPAL], and a refusal unless they may: /webhook takes the receiver's token
    only; /api, /console and the calendar feeds take the receiver's or a person's token, a trusted proxy's user or
    a console session; a change needs a responder (and, with browser credentials, the CSRF token)."""
    receiver = request.app[RECEIVER_KEY]
    endpoint = request.path.split("/")[1]
    if endpoint not in PROTECTED or request.path.startswith(OPEN_PATHS) or _feed_key_matches(request):
        return None
    try:
        principal = receiver.identities.principal(request.headers, request.cookies, request.remote)
    except Refused as exc:
        receiver.metrics.auth_failures.labels(endpoint).inc()
        return _error(exc.status, exc.reason, **({"WWW-Authenticate": BEARER} if exc.status == 401 else {}))
    if principal is None:
        if endpoint in ("console", "schedules") and request.method == "GET":
            raise web.HTTPSeeOther(f"/console/login?next={quote(request.path_qs)}")
        receiver.metrics.auth_failures.labels(endpoint).inc()
        return _error(
            401, "missing credentials: send the receiver's token as `Authorization: Bearer <token>`",
            **{"WWW-Authenticate": BEARER},
        )  # fmt: skip
    request[PRINCIPAL] = principal
    if endpoint == "webhook" and principal.contact is not None:
        return _error(403, "a person's token cannot post alerts: Alertmanager sends the receiver's token")
    if request.method in ("GET", "HEAD"):
        return None
    if not principal.may("responder"):
        return _error(403, f"{principal.contact} is a {principal.role}: a viewer can look but not change alerts")
    if principal.ambient and not receiver.identities.csrf_ok(principal, request.headers.get(CSRF_HEADER, "")):
        return _error(403, f"missing or wrong {CSRF_HEADER}: changes from a browser must come from the console page")
    return None


def _feed_key_matches(request: web.Request) -> bool:
    """A calendar feed's own key (`?key=`, shown on the console): calendar apps send no credentials."""
    if not request.path.startswith("/schedules/") or "key" not in request.query:
        return False
    name, _, person = request.path.removeprefix("/schedules/").removesuffix(".ics").partition("/")
    expected = request.app[RECEIVER_KEY].identities.feed_key(name, person or None)
    return hmac.compare_digest(request.query["key"].encode(errors="replace"), expected.encode())


def acting_person(request: web.Request, asked: object) -> str | None:
    """Whom a change is recorded under: the person who asks; someone else (`by`) only for an admin or the
    receiver's own token (automation acting for people)."""
    principal = principal_of(request)
    if asked is not None and (not isinstance(asked, str) or not asked.strip()):
        raise PayloadError(422, 'by: expected a name, e.g. {"by": "alice"}')
    named = asked.strip() if isinstance(asked, str) else None
    if principal is NOBODY_CHECKED:  # --insecure-no-auth: nobody can be verified, and the console sends no name
        return named or UNVERIFIED
    if principal.contact is None:
        return named
    if named and named != principal.contact and principal.role != "admin":
        raise web.HTTPForbidden(reason=f"you act as yourself ({principal.contact}); only an admin may for {named}")
    return named or principal.contact


# -- Alertmanager ---------------------------------------------------------------------------------
async def webhook(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    policy = request.match_info["policy"]
    if policy not in receiver.config.policies:
        known = ", ".join(sorted(receiver.config.policies)) or "none"
        return _error(404, f'unknown escalation policy "{policy}" (this receiver knows: {known})')
    limit = receiver.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:  # refused before it is read
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    summary = await receiver.ingest(policy, parse_notification(await request.read()))
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
        raise web.HTTPNotFound(reason=f"no alert {request.match_info['id']!r}: ids are numbers") from None


async def _call(receiver: Receiver, fn: Callable, *args: object, write: bool = True) -> object:  # type: ignore[type-arg]
    with _as_http():
        return await (receiver.db.run if write else receiver.db.read)(fn, *args)


@contextlib.contextmanager
def _as_http() -> Iterator[None]:
    """The store's refusals as the HTTP answers that say them: 404 for no such alert, 409 for a wrong state."""
    try:
        yield
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
    body = load_json(await request.read())
    if not isinstance(body, dict):
        raise PayloadError(422, "expected a JSON object")
    return body


async def ack_alert(request: web.Request) -> web.Response:
    """Acknowledge; an alert acknowledged before is answered as it is, `already_acknowledged` true, and no
    silence is created for it."""
    receiver = request.app[RECEIVER_KEY]
    alert_id = _alert_id(request)
    body = await _json_body(request)
    comment, silence = body.get("comment", ""), body.get("silence")
    by = acting_person(request, body.get("by"))
    if by is None:
        return _error(422, 'by: required: who acknowledges, e.g. {"by": "alice"}')
    if not isinstance(comment, str):
        return _error(422, "comment: expected a string")
    silence_ms = parse_duration(silence) if isinstance(silence, str) else None
    if silence is not None and not (silence_ms and silence_ms <= LONGEST_SILENCE_MS):
        return _error(422, f"silence: expected a duration such as 2h or 30m, at most 1y, got {silence!r}")
    via = "console" if principal_of(request).ambient else "api"
    alert = await _acknowledge(receiver, alert_id, by, via, comment)
    if silence_ms and not alert["already_acknowledged"]:
        try:
            alert["silence_id"] = await create_silence(receiver, alert, silence_ms, by, comment)
        except SilenceError as exc:
            alert["silence_error"] = str(exc)
    return web.json_response(alert)


async def _acknowledge(receiver: Receiver, alert_id: int, by: str, via: str, comment: str) -> dict:
    with _as_http():
        return await receiver.acknowledge(alert_id, by, via, comment)


async def _form(request: web.Request) -> dict[str, str]:
    """The text fields of a POSTed form; one that cannot be decoded (not UTF-8, an unknown charset) is a 400."""
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:
        raise PayloadError(400, f"the form cannot be read: {exc}") from None
    return {name: replace_lone_surrogates(value) for name, value in form.items() if isinstance(value, str)}


async def resolve_alert(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    alert_id = _alert_id(request)
    by = acting_person(request, (await _json_body(request)).get("by"))
    with _as_http():
        return web.json_response(await receiver.resolve(alert_id, by))


async def escalate_alert(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    alert_id = _alert_id(request)
    by = acting_person(request, (await _json_body(request)).get("by"))
    alert, taken = await _call(receiver, receiver.store.escalate, alert_id, receiver.clock.now(), by)  # type: ignore[misc]
    receiver.stepped(taken)
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


def _linked_alert(request: web.Request) -> tuple[Receiver, Link] | web.Response:
    receiver = request.app[RECEIVER_KEY]
    try:
        return receiver, receiver.links.verify(request.match_info["token"], receiver.clock.now())
    except BadToken as exc:
        return _page("This link does not work", f"<p>{html.escape(str(exc))}.</p>", status=403)


def _signed_in(request: web.Request) -> str | None:
    """The person a group link's page knows without asking: the console's session, or a trusted proxy's user."""
    receiver = request.app[RECEIVER_KEY]
    try:
        principal = receiver.identities.principal(request.headers, request.cookies, request.remote)
    except Refused:
        return None
    return principal.contact if principal is not None and principal.how in ("session", "proxy") else None


def _settled(alert: dict) -> str:
    """What an alert that no longer escalates says on its page."""
    if alert["status"] == "acknowledged":
        return f"Already acknowledged by {alert['acked_by']} at {_when(alert['acked_at'])}"
    return f"Already resolved at {_when(alert['resolved_at'])}"


def _when(stamp: str) -> str:
    return stamp[:19].replace("T", " ") + " UTC"  # 2026-11-22T22:47:30.000000Z → 2026-11-22 22:47:30 UTC


async def ack_page(request: web.Request) -> web.Response:
    """Shows the alert and a button; changes nothing (chat apps fetch links to preview them). A person's link
    acknowledges as that person; a group's asks who, among the contacts."""
    found = _linked_alert(request)
    if isinstance(found, web.Response):
        return found
    receiver, link = found
    try:
        alert = await receiver.db.read(receiver.store.alert, link.alert_id)
    except NotFound:
        return _page("Unknown alert", "<p>The alert of this link is not in the history.</p>", status=404)
    summary = f"<p>{html.escape(alert['annotations'].get('summary', ''))}</p>"
    if alert["status"] != "firing":
        return _page(alert["alertname"], f"{summary}<p>{html.escape(_settled(alert))}.</p>")
    contacts = receiver.config.contacts
    signed_in = _signed_in(request)
    if link.recipient or signed_in:
        who, button = "", f"Acknowledge as {display_name(receiver.config.contacts, link.recipient or signed_in or '')}"
    elif contacts:
        options = "".join(
            f"<option value='{html.escape(name)}'>{html.escape(display_name(receiver.config.contacts, name))}</option>"
            for name in sorted(contacts)
        )
        who = (
            "<label>You are <select name='by' required><option value='' disabled selected>choose your name</option>"
            f"{options}</select></label> "
        )
        button = "Acknowledge"
    else:
        who = f"<label>Your name <input name='by' autocomplete='name' maxlength='{FREE_TEXT_NAME}'></label> "
        button = "Acknowledge"
    form = (
        f"{summary}<p>Severity: {html.escape(alert['severity'] or 'none')}; firing since "
        f"{html.escape(alert['starts_at'])}.</p><form method='post'>{who}"
        f"<button type='submit'>{html.escape(button)}</button></form>"
    )
    return _page(alert["alertname"], form)


async def ack_by_link(request: web.Request) -> web.Response:
    """Acknowledges as the link's recipient; a group's link as the person signed in to the console (or named by a
    trusted proxy), else as the contact chosen on its page (a config without contacts takes any name)."""
    found = _linked_alert(request)
    if isinstance(found, web.Response):
        return found
    receiver, link = found
    by = link.recipient or _signed_in(request)
    if not by:
        offered = (await _form(request)).get("by", "").strip()
        if not receiver.config.contacts:
            by = offered[:FREE_TEXT_NAME] or "someone with the link"
        elif offered in receiver.config.contacts:
            by = offered
        else:
            why = f"“{offered[:FREE_TEXT_NAME]}” is not a contact of this receiver" if offered else "No name given"
            return _page("Not acknowledged", f"<p>{html.escape(why)}: choose yours from the list.</p>", status=422)
    try:
        alert = await _acknowledge(receiver, link.alert_id, by, "link", "")
    except web.HTTPException as exc:
        return _page("Not acknowledged", f"<p>{html.escape(exc.reason)}.</p>", status=exc.status)
    if alert["already_acknowledged"]:
        return _page(alert["alertname"], f"<p>{html.escape(_settled(alert))}.</p>")
    return _page(
        "Acknowledged",
        f"<p>{html.escape(alert['alertname'])} is acknowledged by "
        f"{html.escape(display_name(receiver.config.contacts, by))}."
        " Escalation has stopped.</p>",
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
    params = await _form(request)
    offered = request.headers.get("X-Twilio-Signature", "").encode()
    # Twilio signs the URL it requested: the public one (external_url) behind a proxy, else this one.
    urls = (receiver.config.external_url + request.path_qs, str(request.url))
    expected = [twilio_signature(str(settings["auth_token"]), url, params).encode() for url in urls]
    if not any(hmac.compare_digest(offered, candidate) for candidate in expected):
        receiver.metrics.auth_failures.labels("twilio").inc()
        return _error(403, "X-Twilio-Signature does not match this request")
    if params.get("Digits") == "1":
        who = row["recipient"] or "phone"
        try:
            alert = await _acknowledge(receiver, row["alert_id"], who, "phone", "pressed 1 on the call")
            done = f"Already acknowledged by {alert['acked_by']}." if alert["already_acknowledged"] else "Acknowledged."
            say = f"{done} Escalation has stopped. Goodbye."
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
    receiver = request.app[RECEIVER_KEY]
    if receiver.db.opened:
        try:
            await receiver.observe()
        except database.ERRORS as exc:  # the counters still tell; the gauges keep their last values
            log.warning("metrics: the database gauges were not refreshed: %s", exc)
    response = web.Response(body=generate_latest(receiver.metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    if not (receiver.ready and receiver.db.opened):
        return _error(503, "not ready: the database or config is not loaded")
    return web.json_response({"status": "ready", "policies": sorted(receiver.config.policies)})
