"""The console's HTTP face: the page and its assets, sign-in, the JSON it reads, the event stream, who is on
call, and the schedules' calendar feeds. The receiver's guard (receiver/app.py) has already checked who asks."""

import asyncio
import functools
import html
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_sse import sse_response

from amcompanion.console import views
from amcompanion.receiver.events import Event
from amcompanion.receiver.identity import SESSION_COOKIE, SESSION_SECONDS, Principal, Refused, principal_of
from amcompanion.receiver.service import RECEIVER_KEY, Receiver
from amcompanion.receiver.store import NotFound
from amcompanion.receiver.timeutil import iso
from amcompanion.schedules import ical, oncall

STATIC = resources.files("amcompanion.console") / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
FEED_DAYS_BEHIND, FEED_DAYS_AHEAD = 14, 90  # the calendar feeds' span around today
MAX_UPCOMING = 50
SSE_PING_SECONDS = 15
SSE_SEND_TIMEOUT_S = 10  # a client whose socket takes no more for this long is cut off


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", console_page)
    app.router.add_get("/console/static/{name}", asset)
    app.router.add_get("/console/login", login_page)
    app.router.add_post("/console/login", login)
    app.router.add_post("/console/logout", logout)
    app.router.add_get("/api/v1/console", console_state)
    app.router.add_get("/api/v1/alerts/{id}/timeline", alert_timeline)
    app.router.add_get("/api/v1/events", event_stream)
    app.router.add_get("/api/v1/oncall", oncall_all)
    app.router.add_get("/api/v1/oncall/{schedule}", oncall_one)
    app.router.add_get("/schedules/{schedule}.ics", schedule_feed)
    app.router.add_get("/schedules/{schedule}/{contact}.ics", schedule_feed)


def me(receiver: Receiver, principal: Principal) -> dict:
    if principal.contact is None:
        who = "the receiver's token" if principal.how == "receiver token" else "anyone (no authentication)"
        return {"contact": None, "name": who, "role": principal.role}
    return {**views.person(receiver, principal.contact), "role": principal.role}


# -- the page --------------------------------------------------------------------------------------
async def console_page(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    principal = principal_of(request)
    shell = (STATIC / "console.html").read_text(encoding="utf-8")
    text = (
        shell.replace("{{csrf}}", html.escape(receiver.identities.csrf(principal)))
        .replace("{{me_json}}", html.escape(json.dumps(me(receiver, principal))))
        .replace("{{title}}", "amcompanion console")
    )
    return web.Response(text=text, content_type="text/html", headers=_no_framing())


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(reason=f"no console asset {name!r}")
    body = (STATIC / name).read_bytes()
    return web.Response(body=body, content_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


def _no_framing() -> dict[str, str]:
    """The console's buttons must not be clickable through another site's frame (clickjacking)."""
    return {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


async def login_page(request: web.Request, problem: str = "", status: int = 200) -> web.Response:
    target = _safe_next(request.query.get("next", "/console"))
    error = f"<p class='problem'>{html.escape(problem)}</p>" if problem else ""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        "<title>Sign in · amcompanion</title><link rel='stylesheet' href='/console/static/console.css'></head>"
        "<body class='login'><main><h1>amcompanion console</h1>"
        "<p>Sign in with your personal token (an admin gives it to you; the catalog keeps only its hash). "
        "Behind a single sign-on proxy you are signed in already.</p>"
        f"{error}<form method='post' action='/console/login?next={html.escape(target)}'>"
        "<label>Your token <input type='password' name='token' autocomplete='current-password' required></label> "
        "<button type='submit'>Sign in</button></form></main></body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html", headers=_no_framing())


def _safe_next(target: str) -> str:
    """Only a path of this site: `next` must not send a signed-in person elsewhere."""
    parts = urlsplit(target)
    return target if target.startswith("/") and not target.startswith("//") and not parts.netloc else "/console"


async def login(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    try:
        form = await request.post()
    except (ValueError, LookupError):  # not UTF-8, an unknown charset: as the receiver's other forms answer
        return await login_page(request, "the form could not be read", status=400)
    token = form.get("token")
    try:
        cookie = receiver.identities.sign_in(token if isinstance(token, str) else "")
    except Refused as exc:
        receiver.metrics.auth_failures.labels("console").inc()
        return await login_page(request, exc.reason, status=exc.status)
    response = web.Response(status=303, headers={"Location": _safe_next(request.query.get("next", "/console"))})
    secure = receiver.config.external_url.startswith("https://")
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True, samesite="Strict", secure=secure, path="/"
    )
    return response


async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=303, headers={"Location": "/console/login"})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- what the page reads ---------------------------------------------------------------------------
async def console_state(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    state = await receiver.db.read(functools.partial(views.snapshot, receiver), receiver.clock.now())
    contact = principal_of(request).contact
    for entry in state["oncall"]:
        entry.update(feed_links(receiver, entry["schedule"], contact))
    return web.json_response({"me": me(receiver, principal_of(request)), **state})


def feed_links(receiver: Receiver, schedule: str, contact: str | None) -> dict[str, str]:
    """The calendar URLs to subscribe to, each with its own key (calendar apps send no credentials)."""
    base = f"{receiver.config.external_url}/schedules/{schedule}"
    links = {"feed": f"{base}.ics?key={receiver.identities.feed_key(schedule)}"}
    if contact is not None:
        links["my_feed"] = f"{base}/{contact}.ics?key={receiver.identities.feed_key(schedule, contact)}"
    return links


async def alert_timeline(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    try:
        alert_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason=f"no alert {request.match_info['id']!r}: ids are numbers") from None

    def read(conn):  # type: ignore[no-untyped-def]
        found = views.cards(receiver, conn, [alert_id], receiver.clock.now())
        if alert_id not in found:
            raise NotFound(f"no alert {alert_id}")
        return {"alert": found[alert_id], "timeline": views.timeline(receiver, conn, alert_id)}

    try:
        return web.json_response(await receiver.db.read(read))
    except NotFound as exc:
        raise web.HTTPNotFound(reason=str(exc)) from None


async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: each event's id is its row in `events`; a client resumes with Last-Event-ID (browsers
    send it when they reconnect) or `?after=ID` (the console's first connection, from its snapshot)."""
    receiver = request.app[RECEIVER_KEY]
    resume = request.headers.get("Last-Event-ID") or request.query.get("after")
    try:
        after = int(resume) if resume else None
    except ValueError:
        raise web.HTTPBadRequest(reason=f"Last-Event-ID must be an event id (a number), got {resume!r}") from None
    types = set(request.query.getall("type", []))
    subscription, missed = await receiver.events.subscribe(after)
    stream: web.StreamResponse = web.Response(status=204)  # answered only if the stream never opens
    try:
        async with sse_response(request, headers={"X-Accel-Buffering": "no"}) as stream:
            stream.ping_interval = SSE_PING_SECONDS
            await _send(request, stream, missed, types)
            while stream.is_connected():
                batch = await subscription.take()  # all that waits goes in one write: one per batch and client
                if subscription.ended:  # dropped (too slow) or the receiver stops: the client reconnects, resumes
                    break
                await _send(request, stream, batch, types)
    except ConnectionResetError:  # the client went away
        pass
    finally:
        subscription.close()
    return stream


async def _send(request: web.Request, stream: web.StreamResponse, events: list[Event], types: set[str]) -> None:
    """Frames encoded once by the hub for every subscriber, written as they are (aiohttp-sse's `send` would
    encode each again for each client). A client that stops reading is cut off, as aiohttp-sse does: a write
    that never drains would hold its handler forever."""
    frames = b"".join(event.frame for event in events if not types or event.type in types)
    if not frames:
        return
    try:
        async with asyncio.timeout(SSE_SEND_TIMEOUT_S):
            await stream.write(frames)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("the client stopped reading the event stream") from None


# -- who is on call --------------------------------------------------------------------------------
def _moment(request: web.Request) -> datetime:
    text = request.query.get("at")
    if not text:
        return request.app[RECEIVER_KEY].clock.now()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(
            reason=f"at: expected an RFC 3339 time such as 2026-12-24T09:00:00Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise web.HTTPBadRequest(reason=f"at: give the offset (Z or +01:00) in {text!r}")
    return moment.astimezone(UTC)


def _upcoming(request: web.Request) -> int:
    text = request.query.get("next", "3")
    if not text.isdigit() or not 0 <= int(text) <= MAX_UPCOMING:
        raise web.HTTPBadRequest(reason=f"next: expected a whole number from 0 to {MAX_UPCOMING}, got {text!r}")
    return int(text)


async def oncall_all(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    at = _moment(request)
    return web.json_response({"at": iso(at), "schedules": views.who_is_on_call(receiver, at, None, _upcoming(request))})


def _schedule(request: web.Request) -> str:
    receiver = request.app[RECEIVER_KEY]
    name = request.match_info["schedule"]
    if name not in receiver.config.schedules:
        known = ", ".join(sorted(receiver.config.schedules)) or "none"
        raise web.HTTPNotFound(reason=f'unknown schedule "{name}" (this receiver has: {known})')
    return name


async def oncall_one(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    name, at = _schedule(request), _moment(request)
    (found,) = views.who_is_on_call(receiver, at, [name], _upcoming(request))
    return web.json_response({"at": iso(at), **found})


async def schedule_feed(request: web.Request) -> web.Response:
    """An iCalendar of the schedule's shifts (a person's only, with their name), for calendar apps to subscribe."""
    receiver = request.app[RECEIVER_KEY]
    name = _schedule(request)
    contact = request.match_info.get("contact")
    if contact is not None and contact not in receiver.config.contacts:
        raise web.HTTPNotFound(reason=f'unknown contact "{contact}"')
    now = receiver.clock.now()
    since = now - timedelta(days=FEED_DAYS_BEHIND)
    # read from further back, so the first shift keeps its real start (and its UID) as the window moves
    shifts = oncall.timeline(
        receiver.config.schedules[name],
        since - timedelta(days=FEED_DAYS_BEHIND),
        now + timedelta(days=FEED_DAYS_AHEAD),
        receiver.calendars.calendars(name),
        receiver.config.contacts,
    )
    shown = [shift for shift in shifts if shift.end > since]
    body = ical.export(name, shown, receiver.config.contacts, only=contact, stamp=now)
    filename = f"{name}-{contact}.ics" if contact else f"{name}.ics"
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )
