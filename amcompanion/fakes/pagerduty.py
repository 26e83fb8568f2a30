"""A fake PagerDuty Events API v2 (`POST /v2/enqueue`) on loopback, written from PagerDuty's documents, not from
amcompanion's channel.

It checks what the Events API checks and answers as it does (`{"status", "message", "errors"}`): a body within
512 KB that parses as a JSON object (else `Unrecognized object`, the OpenAPI's example), then as `invalid event`
/ `Event object is invalid` with every problem listed: a routing key of 32 alphanumeric characters (the two
messages PagerDuty gives for those) that is one of the fake's integrations (`Invalid routing key`), `event_action`
one of trigger / acknowledge / resolve, a `dedup_key` of at most 255 characters (required but for a trigger),
and for a trigger a `payload` with `summary` (at most 1024 characters), `source` and `severity` (critical, error,
warning or info), an ISO 8601 `timestamp`, `custom_details` an object, `links` (`href` a URL, `text`) and
`images` (`src` an HTTPS URL, `href`, `alt`). The routing-key and shape messages are PagerDuty's; the wording of
the per-field ones (and of the size refusal, which PagerDuty does not document) is the fake's, in their style.
Each integration key takes 120 events in any 60 s (PagerDuty's rate) and answers 429 beyond, with the docs'
"Request Limit Exceeded" in the error shape (its `status` word is the fake's); PagerDuty documents no Retry-After,
so the fake sends one only when told (`retry_after`).

An accepted event is answered 202 `{"status": "success", "message": "Event processed", "dedup_key": …}` (a
trigger without one gets a generated key) and applied as PagerDuty applies it: a trigger opens an incident, or
adds to the open one of its routing key and dedup_key (an acknowledged incident stays acknowledged); acknowledge
and resolve move the open incident on; once it is resolved the key's next trigger opens a new incident, and an
acknowledge or resolve with no open incident (resolved, unknown, or sent with another routing key) is still
answered 202 but does nothing: it lands in `dropped`. `incidents` keeps them all; `shown()` lists them.

Sources: developer.pagerduty.com/docs/events-api-v2/trigger-events/ and /overview/ (github.com/PagerDuty/
developer-docs, docs/events-API-v2/01-Overview.md, 02-Trigger-Events.md, 05-Rate-Limits.md), the Events v2
OpenAPI (github.com/PagerDuty/api-schema, reference/events-v2/openapiv3.json), and answers PagerDuty gave that
users quoted (github.com/blockpane/tenderduty/issues/10, github.com/robusta-dev/robusta/issues/571).
"""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"  # the example integration key of PagerDuty's API reference
EVENT_BYTES = 512_000
SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
STATE_AFTER = {"acknowledge": "acknowledged", "resolve": "resolved"}


@dataclass(frozen=True)
class Got:
    """One request as it arrived."""

    method: str
    path: str
    query: str
    content_type: str
    body: bytes


@dataclass
class Incident:
    """A PagerDuty alert and its incident: what the responder sees, and the events applied to it."""

    routing_key: str
    dedup_key: str
    summary: str
    severity: str
    source: str
    links: list[dict]
    status: str = "triggered"  # → acknowledged → resolved
    log: list[str] = field(default_factory=lambda: ["trigger"])


def _answer(status: int, body: dict, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _invalid(errors: list[str]) -> web.Response:
    return _answer(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})


def _web_url(value: object, https: bool = False) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in (("https",) if https else ("http", "https")) and bool(parts.netloc)


def routing_key_errors(key: object, known: set[str]) -> list[str]:
    if not isinstance(key, str) or not key:
        return ["'routing_key' is missing or blank"]
    errors = []
    if len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if not key.isascii() or not key.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    if not errors and key not in known:
        errors.append("Invalid routing key")
    return errors


def event_errors(event: dict) -> list[str]:
    """What PagerDuty would refuse in an event whose routing key it took; empty when it takes the event."""
    errors = []
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' must be one of: trigger, acknowledge, resolve")
    key = event.get("dedup_key")
    if key is not None and not isinstance(key, str):
        errors.append("'dedup_key' must be a string")
    elif isinstance(key, str) and len(key) > DEDUP_KEY_LIMIT:
        errors.append(f"'dedup_key' is too long (maximum is {DEDUP_KEY_LIMIT} characters)")
    elif action in ("acknowledge", "resolve") and not key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors += payload_errors(event.get("payload"))
    for name in ("client", "client_url"):
        if name in event and not isinstance(event[name], str):
            errors.append(f"'{name}' must be a string")
    errors += context_errors(event.get("links"), "links", "href")
    errors += context_errors(event.get("images"), "images", "src")
    return errors


def payload_errors(payload: object) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or is not an object"]
    errors = []
    for name in ("summary", "source"):
        if not isinstance(payload.get(name), str) or not payload[name].strip():
            errors.append(f"'payload.{name}' is missing or blank")
    if isinstance(payload.get("summary"), str) and len(payload["summary"]) > SUMMARY_LIMIT:
        errors.append(f"'payload.summary' is too long (maximum is {SUMMARY_LIMIT} characters)")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' must be one of: critical, error, warning, info")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]))
        except ValueError:
            errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    for name in ("component", "group", "class"):
        if name in payload and not isinstance(payload[name], str):
            errors.append(f"'payload.{name}' must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def context_errors(items: object, name: str, required: str) -> list[str]:
    """`links` (href a URL, text a string) and `images` (src an HTTPS URL, href and alt optional)."""
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"'{name}' must be an array"]
    errors = []
    for index, item in enumerate(items):
        where = f"'{name}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}' must be an object")
            continue
        if not _web_url(item.get(required), https=name == "images"):
            must = "an HTTPS URL" if name == "images" else "a URL"
            errors.append(f"{where}.{required}' must be {must}")
        if "href" in item and name == "images" and not _web_url(item["href"]):
            errors.append(f"{where}.href' must be a URL")
        for text in ("text", "alt"):
            if text in item and not isinstance(item[text], str):
                errors.append(f"{where}.{text}' must be a string")
    return errors


@dataclass
class FakePagerDuty:
    routing_keys: set[str] = field(default_factory=lambda: {ROUTING_KEY})  # the integrations' keys
    per_minute: int = 120  # events in any 60 s per integration key
    retry_after: int | None = None  # a Retry-After to send with 429 (PagerDuty documents none)
    clock: Callable[[], float] = time.monotonic  # seconds, for the rate window
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # answers given before any check
    requests: list[Got] = field(default_factory=list)  # every request, as it came
    received: list[dict] = field(default_factory=list)  # every event answered 202
    dropped: list[tuple[dict, str]] = field(default_factory=list)  # answered 202 and did nothing: why
    incidents: list[Incident] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    _windows: dict[str, SlidingWindow] = field(default_factory=dict)

    def shown(self) -> list[Shown]:
        return [
            Shown(
                "PagerDuty",
                f"{incident.summary}\n{incident.status}, {incident.severity}, {incident.source}"
                + "".join(f"\n[{link.get('text') or link['href']}]({link['href']})" for link in incident.links),
            )
            for incident in self.incidents
        ]

    def incident(self, dedup_key: str) -> Incident | None:
        """The newest incident of a key (an earlier one may have been resolved)."""
        return next((i for i in reversed(self.incidents) if i.dedup_key == dedup_key), None)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v2/enqueue", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(Got(request.method, request.path, request.query_string, request.content_type, raw))
        if self.script:
            status, headers, text = self.script.pop(0)
            response = web.Response(status=status, headers=headers, text=text, content_type="application/json")
        else:
            response = self._take(raw)
        self.answers.append(response.status)
        return response

    def _take(self, raw: bytes) -> web.Response:
        if len(raw) > EVENT_BYTES:
            return _invalid([f"Event is too large: {len(raw)} bytes, over the limit of 512 KB"])
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            unrecognized = {"status": "Unrecognized object", "message": "Event object format is unrecognized"}
            return _answer(400, {**unrecognized, "errors": ["JSON parse error"]})
        key = event.get("routing_key")
        if errors := routing_key_errors(key, self.routing_keys):
            return _invalid(errors)
        assert isinstance(key, str)
        window = self._windows.setdefault(key, SlidingWindow(self.per_minute, 60.0))
        if not window.admit(self.clock()):
            headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
            return _answer(429, {"status": "throttle event", "message": "Request Limit Exceeded"}, headers)
        if errors := event_errors(event):
            return _invalid(errors)
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self.received.append(event)
        self._apply(key, dedup_key, event)
        return _answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    def _apply(self, routing_key: str, dedup_key: str, event: dict) -> None:
        action = event["event_action"]
        open_incident = next(
            (
                i
                for i in self.incidents
                if (i.routing_key, i.dedup_key) == (routing_key, dedup_key) and i.status != "resolved"
            ),
            None,
        )
        if action == "trigger":
            if open_incident is not None:
                open_incident.log.append(action)  # an acknowledged incident stays acknowledged, and quiet
                return
            payload = event["payload"]
            links = list(event.get("links") or [])
            self.incidents.append(
                Incident(routing_key, dedup_key, payload["summary"], payload["severity"], payload["source"], links)
            )
        elif open_incident is None:
            self.dropped.append((event, f"{action} of {dedup_key}: no open incident of this routing key"))
        else:
            open_incident.log.append(action)
            open_incident.status = STATE_AFTER[action]
