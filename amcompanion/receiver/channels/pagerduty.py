"""PagerDuty through the Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`): an alert is a PagerDuty
alert (and incident) of its own, triggered when it fires, acknowledged when someone acknowledges it in amcompanion
(`syncs_acks`: the outbox then queues an "acknowledged" message here) and resolved when it resolves.

Every event of one alert episode carries the same `dedup_key`, made of the alert's history row id and its
fingerprint: the row is the episode, so a re-fire after a resolve is a new row and a new PagerDuty incident, and
two receivers on one database name an episode alike. The summary of a single alert's trigger is the template's
text (flattened to one line: PagerDuty shows it as the incident's title); a digest's text covers several alerts,
so each of its events gets the line `alert_summary` makes, the one the default template writes.

PagerDuty has no batch call, so a digest is one event per alert, sent in turn within the one `send`, which
stops at the first answer that is not a success and returns it (classify reads it), else the last one. A retry
of the message re-sends what PagerDuty did not take; re-sending an event it took would be harmless (same
`dedup_key`: a trigger of an open alert only adds to its log) but would spend the integration's rate (about 120
events a minute): a digest of more alerts than that would never get through if every try started over, so the
events each outbox row got accepted are remembered until the row succeeds or is refused for good. The memory is
the process's own: after a restart a retry sends the digest whole again, which PagerDuty takes as repeats
(a trigger of an open alert with the same dedup_key only adds to its log; an acknowledge or resolve is
idempotent). Each memo names the row, the event's dedup_key and its action, so it can only ever skip the very
event it saw accepted.

Answers (PagerDuty's "Response Codes & Retry Logic"): 202 `{"status": "success", ...}` ok; 400 (`invalid event`,
with `errors`: a routing key of the wrong length or unknown, a missing summary...) permanent; 429 (the integration
key's rate) retries after Retry-After or else 30 s, the wait PagerDuty suggests; 5xx retries. The Events API
authenticates by the body's routing_key alone, and documents no 401, 403 or 404 (403 was the v1 API's throttle):
one of those comes from something else in the way (a proxy, a wrong base_url) and is permanent, as Alertmanager's
v2 notifier reads it. A 2xx that is not PagerDuty's success answer is no proof of delivery: it is retried.

No SDK: PagerDuty's (pdpyras, go-pagerduty) are blocking clients around this one JSON POST; the outbox's aiohttp
session makes it. Sources: developer.pagerduty.com/docs/events-api-v2/trigger-events/ and /overview/ (fields,
limits, de-duplication, response codes; github.com/PagerDuty/developer-docs, docs/events-API-v2/), the Events v2
OpenAPI (github.com/PagerDuty/api-schema, reference/events-v2/openapiv3.json), the Events API rate limits page
(docs/events-API-v2/05-Rate-Limits.md), and Alertmanager's notify/pagerduty (the 512 KB cut, the retry codes).
"""

import json
from collections import OrderedDict
from urllib.parse import urlsplit

import aiohttp

from amcompanion.receiver.channels.base import (
    Message,
    Outcome,
    Response,
    http_outcome,
    json_answer,
    rebase,
    truncate,
)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_LIMIT = 1024  # characters, PagerDuty's limit for payload.summary
FIELD_LIMIT = 1024  # source, component, group, class: no documented limit; label values kept as short as a summary
DEDUP_KEY_LIMIT = 255
EVENT_BYTES = 512_000  # "Events API payloads are limited to 512 KB" (read as 512,000 bytes, as Alertmanager does)
DETAIL_LIMIT = 2048  # characters of each label or annotation value when the event would be over EVENT_BYTES
THROTTLE_WAIT_S = 30.0  # PagerDuty suggests retrying a 429 "with each request being 30 seconds apart"
REMEMBERED = 10_000  # accepted (row, event) pairs kept for retries; the oldest go first
CLIENT = "amcompanion"
ACTIONS = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
# The alert's severity label as PagerDuty's four severities; any other value is "error" (DEFAULT_SEVERITY).
SEVERITIES = {
    **dict.fromkeys(("critical", "emergency", "page", "fatal"), "critical"),
    **dict.fromkeys(("error", "high"), "error"),
    **dict.fromkeys(("warning", "warn", "medium"), "warning"),
    **dict.fromkeys(("info", "low", "none"), "info"),
}
DEFAULT_SEVERITY = "error"
# PD-CEF fields taken from labels, the first label present winning; `class` is the alert's name.
SOURCE_LABELS = ("instance", "job")
COMPONENT_LABELS = ("component", "service")
GROUP_LABELS = ("group", "cluster", "namespace")


def dedup_key(alert: dict) -> str:
    """The key of the alert's episode: its history row first, so that it stays unique when a long fingerprint
    is cut to PagerDuty's 255 characters."""
    return f"amcompanion/{alert['id']}/{alert.get('fingerprint', '')}"[:DEDUP_KEY_LIMIT]


def severity_of(alert: dict) -> str:
    label = (alert.get("labels") or {}).get("severity") or alert.get("severity") or ""
    return SEVERITIES.get(str(label).strip().lower(), DEFAULT_SEVERITY)


def _label(alert: dict, names: tuple[str, ...]) -> str:
    labels = alert.get("labels") or {}
    return next((str(labels[name]) for name in names if labels.get(name)), "")


def alert_summary(alert: dict) -> str:
    """`[CRITICAL] HighErrorRate on web-1: <the summary annotation>`: a digest's per-alert summary, and what the
    default template writes for a single alert."""
    severity = str(alert.get("severity") or "alert").upper()
    where = _label(alert, SOURCE_LABELS)
    summary = (alert.get("annotations") or {}).get("summary")
    return (
        f"[{severity}] {alert.get('alertname', '')}"
        + (f" on {where}" if where else "")
        + (f": {summary}" if summary else "")
    )


def _is_web_url(value: object) -> bool:
    parts = urlsplit(str(value or ""))
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _field(value: str) -> str:
    return truncate(value, FIELD_LIMIT, marker="…")


def _encoded(event: dict) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


class PagerDutyChannel:
    type = "pagerduty"
    syncs_acks = True  # acknowledgements in amcompanion are sent on, so the PagerDuty incident follows the alert

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.routing_key = str(settings["routing_key"])
        self.url = rebase(EVENTS_URL, settings.get("base_url"))
        self._accepted: OrderedDict[tuple[int, str, str], None] = OrderedDict()

    def events(self, message: Message) -> list[dict]:
        """One event per alert of the message, in its order."""
        action = ACTIONS[message.kind]
        if action != "trigger":
            return [
                {"routing_key": self.routing_key, "event_action": action, "dedup_key": dedup_key(alert)}
                for alert in message.alerts
            ]
        single = " ".join(message.text.split()) if len(message.alerts) == 1 else ""
        return [self._trigger(message, alert, single or alert_summary(alert)) for alert in message.alerts]

    def _trigger(self, message: Message, alert: dict, summary: str) -> dict:
        annotations = alert.get("annotations") or {}
        payload = {
            "summary": truncate(summary, SUMMARY_LIMIT, marker="…"),
            "source": _field(_label(alert, SOURCE_LABELS) or urlsplit(message.external_url).hostname or CLIENT),
            "severity": severity_of(alert),
            "timestamp": alert.get("starts_at"),
            "component": _field(_label(alert, COMPONENT_LABELS)),
            "group": _field(_label(alert, GROUP_LABELS)),
            "class": _field(str(alert.get("alertname") or "")),
            "custom_details": {"labels": alert.get("labels") or {}, "annotations": annotations},
        }
        links = [
            {"href": message.ack_url, "text": "Acknowledge in amcompanion"},
            {"href": alert.get("generator_url"), "text": "The alert's source (generator URL)"},
            {"href": annotations.get("runbook_url"), "text": "Runbook"},
        ]
        event = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key(alert),
            "payload": {key: value for key, value in payload.items() if value},
            "links": [link for link in links if _is_web_url(link["href"])],
            "client": CLIENT,
        }
        if message.external_url:
            event["client_url"] = f"{message.external_url.rstrip('/')}/console"
        return event

    def body(self, event: dict) -> bytes:
        """The event as sent: within PagerDuty's 512 KB, label and annotation values are cut first, and when
        even that is too big the details give way to a note (the summary, source and links stay)."""
        data = _encoded(event)
        payload = event.get("payload")
        if len(data) <= EVENT_BYTES or payload is None:
            return data
        details = payload["custom_details"]
        payload["custom_details"] = {
            part: {key: truncate(str(value), DETAIL_LIMIT) for key, value in values.items()}
            for part, values in details.items()
        }
        data = _encoded(event)
        if len(data) <= EVENT_BYTES:
            return data
        payload["custom_details"] = {"note": f"labels and annotations left out: the event was over {EVENT_BYTES} bytes"}
        return _encoded(event)

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        """Each alert's event in turn; the first answer that is not a success, else the last. Events this
        outbox row already got accepted by an earlier try are not sent again (a message that is not an
        outbox row, notification_id 0, has no retries and is always sent whole)."""
        row = message.notification_id
        events = self.events(message)
        memos = [(row, event["dedup_key"], event["event_action"]) for event in events]
        answer = None
        for event, memo in zip(events, memos, strict=True):
            if row and memo in self._accepted:
                continue
            answer = await self._post(session, self.body(event))
            result = self.classify(answer).result
            if result == "permanent":  # the row fails for good: no retry will ask again
                self._forget(memos)
            if result != "ok":
                return answer
            if row:
                self._remember(memo)
        self._forget(memos)  # the row is done: no retry will ask again
        if answer is None:  # every event was accepted by an earlier try, whose answer was lost (a timeout)
            accepted = {"status": "success", "message": "every event was accepted by an earlier try"}
            return Response(202, {}, json.dumps(accepted).encode())
        return answer

    def _forget(self, memos: list[tuple[int, str, str]]) -> None:
        """Only a retry of the row may skip what it got accepted: once the row is settled, nothing is kept that a
        later message under the same id (a SQLite row id reused after a prune) could mistake for its own."""
        for memo in memos:
            self._accepted.pop(memo, None)

    def _remember(self, memo: tuple[int, str, str]) -> None:
        self._accepted[memo] = None
        while len(self._accepted) > REMEMBERED:
            self._accepted.popitem(last=False)

    async def _post(self, session: aiohttp.ClientSession, data: bytes) -> Response:
        async with session.post(self.url, data=data, headers={"Content-Type": "application/json"}) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        """202 with `"status": "success"` ok; 400 permanent, with PagerDuty's errors (a routing key problem says
        where to look); 429 retries after Retry-After or 30 s; 5xx and 408 retry; any other answer is permanent."""
        answer = json_answer(response)
        outcome = http_outcome(response)
        if outcome.result == "ok":
            if answer.get("status") == "success":
                return outcome
            return Outcome("retry", f"not PagerDuty's answer: {response.body[:200].decode('utf-8', 'replace')}")
        reason = outcome.reason
        if answer.get("message"):
            errors = [str(e) for e in answer["errors"]] if isinstance(answer.get("errors"), list) else []
            reason = " ".join(f"PagerDuty {response.status} {answer.get('status') or ''}".split())
            reason += f": {answer['message']}" + (f": {'; '.join(errors)}" if errors else "")
            if any("routing_key" in error or "routing key" in error for error in errors):
                reason += " (check routing_key: the Integration Key of the service's Events API v2 integration)"
        wait = THROTTLE_WAIT_S if response.status == 429 and outcome.retry_after is None else outcome.retry_after
        return Outcome(outcome.result, reason, wait)


CHANNEL = PagerDutyChannel
