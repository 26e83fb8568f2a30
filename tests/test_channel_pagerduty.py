"""The PagerDuty channel against a fake Events API v2 that checks what PagerDuty checks: the exact events of an
alert's episode (trigger, acknowledge, resolve under one dedup_key) and the incident they move, a digest as one
event per alert, the 512 KB and 1024-character limits, and each error class (an invalid event or routing key is
permanent, the integration's rate and 5xx retry)."""

import json
from dataclasses import replace

import aiohttp
import pytest

from amcompanion.fakes.pagerduty import ROUTING_KEY, FakePagerDuty, event_errors
from amcompanion.receiver.channels import CHANNEL_TYPES, Message, Response
from amcompanion.receiver.channels.pagerduty import (
    EVENT_BYTES,
    SEVERITIES,
    PagerDutyChannel,
    alert_summary,
    dedup_key,
    severity_of,
)
from amcompanion.receiver.messages import Renderer
from tests.channel_support import ACK_URL, assert_golden, delivery, render_default, sample_alert

EXTERNAL_URL = "https://alerts.example.com"


@pytest.fixture(autouse=True)
def routing_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver takes the routing key (a secret) only as ${VAR}."""
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)


class Clock:
    """The fake's rate window, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def start(aiohttp_server, fake: FakePagerDuty) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


def channel_for(base_url: str, routing_key: str = ROUTING_KEY) -> PagerDutyChannel:
    return PagerDutyChannel("pd", {"type": "pagerduty", "routing_key": routing_key, "base_url": base_url})


def firing(alerts: int = 1) -> Message:
    return replace(render_default("pagerduty", alerts=alerts, recipient=""), external_url=EXTERNAL_URL)


async def send(channel: PagerDutyChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


async def post_raw(base_url: str, body: bytes) -> Response:
    async with aiohttp.ClientSession() as session, session.post(f"{base_url}/v2/enqueue", data=body) as response:
        return Response(response.status, response.headers, await response.read())


TRIGGER: dict = {
    "routing_key": ROUTING_KEY,
    "event_action": "trigger",
    "dedup_key": "amcompanion/1/0000000000000001",
    "payload": {
        "summary": "[CRITICAL] HighErrorRate on web-1: checkout 5xx ratio at 7.5% on web-1",
        "source": "web-1",
        "severity": "critical",
        "timestamp": "2026-11-22T22:47:24.568000Z",
        "component": "checkout",
        "class": "HighErrorRate",
        "custom_details": {
            "labels": {
                "alertname": "HighErrorRate",
                "severity": "critical",
                "service": "checkout",
                "instance": "web-1",
            },
            "annotations": {
                "summary": "checkout 5xx ratio at 7.5% on web-1",
                "description": "More than 5% of checkout requests fail.",
                "runbook_url": "https://runbooks.example.com/checkout-errors",
            },
        },
    },
    "links": [
        {"href": ACK_URL, "text": "Acknowledge in amcompanion"},
        {"href": "http://prometheus.example.com/graph?g0.expr=rate", "text": "The alert's source (generator URL)"},
        {"href": "https://runbooks.example.com/checkout-errors", "text": "Runbook"},
    ],
    "client": "amcompanion",
    "client_url": "https://alerts.example.com/console",
}
SUMMARY = TRIGGER["payload"]["summary"]


def test_the_type_is_registered_and_keeps_pagerduty_in_step_with_acks() -> None:
    assert CHANNEL_TYPES["pagerduty"] is PagerDutyChannel
    assert PagerDutyChannel.syncs_acks is True


async def test_a_firing_alert_is_one_trigger_event_byte_for_byte(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    response = await send(channel, firing())
    assert response.status == 202 and channel.classify(response).result == "ok"
    assert json.loads(response.body) == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "amcompanion/1/0000000000000001",
    }
    (got,) = fake.requests
    assert (got.method, got.path, got.query, got.content_type) == ("POST", "/v2/enqueue", "", "application/json")
    assert json.loads(got.body) == TRIGGER
    assert list(json.loads(got.body)) == list(TRIGGER)  # the order too, as it goes on the wire
    (incident,) = fake.incidents
    assert (incident.status, incident.severity, incident.summary) == ("triggered", "critical", SUMMARY)


async def test_acknowledge_and_resolve_move_the_same_incident(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    message = firing()
    key = "amcompanion/1/0000000000000001"
    await send(channel, message)
    assert fake.incident(key).status == "triggered"
    acknowledged = await send(channel, replace(message, kind="acknowledged", ack_url=""))
    assert channel.classify(acknowledged).result == "ok"
    assert json.loads(fake.requests[-1].body) == {
        "routing_key": ROUTING_KEY,
        "event_action": "acknowledge",
        "dedup_key": key,
    }
    assert fake.incident(key).status == "acknowledged"
    await send(channel, firing())  # an escalation step pages again: the acknowledged incident stays acknowledged
    assert fake.incident(key).status == "acknowledged"
    resolved = await send(channel, render_default("pagerduty", "resolved", recipient=""))
    assert channel.classify(resolved).result == "ok"
    assert json.loads(fake.requests[-1].body) == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": key,
    }
    (incident,) = fake.incidents
    assert (incident.status, incident.log) == ("resolved", ["trigger", "acknowledge", "trigger", "resolve"])
    assert fake.dropped == []


async def test_after_a_resolve_the_key_does_nothing_but_a_new_episode_is_a_new_incident(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    message = firing()
    await send(channel, message)
    await send(channel, replace(message, kind="resolved"))
    late_ack = await send(channel, replace(message, kind="acknowledged"))
    assert (late_ack.status, channel.classify(late_ack).result) == (202, "ok")  # PagerDuty takes it, and drops it
    assert [reason for _, reason in fake.dropped] == [
        "acknowledge of amcompanion/1/0000000000000001: no open incident of this routing key"
    ]
    refired = replace(message, alerts=[sample_alert(7, fingerprint=message.alerts[0]["fingerprint"])])
    await send(channel, refired)  # the same alert fires again: a new history row, a new dedup_key
    assert [(i.dedup_key, i.status) for i in fake.incidents] == [
        ("amcompanion/1/0000000000000001", "resolved"),
        ("amcompanion/7/0000000000000001", "triggered"),
    ]


def test_the_dedup_key_is_the_row_then_the_fingerprint_within_255_characters() -> None:
    assert dedup_key(sample_alert(42)) == "amcompanion/42/000000000000002a"
    long = dedup_key(sample_alert(42, fingerprint="f" * 400))
    assert len(long) == 255 and long.startswith("amcompanion/42/fff")


def test_severity_labels_map_onto_pagerdutys_four() -> None:
    def of(label: str | None) -> str:
        labels = {} if label is None else {"severity": label}
        return severity_of({"labels": labels, "severity": label})

    assert [of(s) for s in ("critical", "Emergency", "page", "FATAL")] == ["critical"] * 4
    assert [of(s) for s in ("error", "high")] == ["error"] * 2
    assert [of(s) for s in ("warning", "warn", "medium")] == ["warning"] * 3
    assert [of(s) for s in ("info", "low", "none")] == ["info"] * 3
    assert [of(s) for s in ("p1", "", None)] == ["error"] * 3
    assert set(SEVERITIES.values()) == {"critical", "error", "warning", "info"}


async def test_a_digest_is_one_event_per_alert_each_with_its_own_key(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    message = firing(alerts=3)
    response = await send(channel, message)
    assert channel.classify(response).result == "ok"
    events = [json.loads(got.body) for got in fake.requests]
    assert [e["dedup_key"] for e in events] == [f"amcompanion/{n}/{n:016x}" for n in (1, 2, 3)]
    assert [e["payload"]["summary"] for e in events] == [alert_summary(alert) for alert in message.alerts]
    assert [e["payload"]["source"] for e in events] == ["web-1", "web-2", "web-3"]
    assert all("Acknowledge in amcompanion" not in str(e["links"]) for e in events)  # a digest has no ack link
    assert json.loads(response.body)["dedup_key"] == "amcompanion/3/0000000000000003"  # the last answer
    resolved = render_default("pagerduty", "resolved", alerts=3, recipient="")
    await send(channel, resolved)
    assert [(i.dedup_key, i.status) for i in fake.incidents] == [(e["dedup_key"], "resolved") for e in events]


async def test_a_digest_stops_at_the_first_refusal_and_its_retry_sends_only_the_rest(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """Over the integration's rate, a digest's retry must make progress: it does not re-spend the rate on the
    events PagerDuty already took."""
    clock = Clock()
    fake = FakePagerDuty(per_minute=2, clock=clock)
    channel = channel_for(await start(aiohttp_server, fake))
    message = replace(firing(alerts=3), notification_id=11)  # an outbox row: it will be retried
    throttled = await send(channel, message)
    outcome = channel.classify(throttled)
    assert (throttled.status, outcome.result, outcome.retry_after) == (429, "retry", 30.0)
    assert fake.answers == [202, 202, 429]
    clock.now = 61
    retried = await send(channel, message)
    assert channel.classify(retried).result == "ok"
    assert fake.answers == [202, 202, 429, 202]  # only the third alert's event
    assert [i.dedup_key for i in fake.incidents] == [f"amcompanion/{n}/{n:016x}" for n in (1, 2, 3)]
    await send(channel, message)  # the row succeeded: nothing is remembered for it, a new send starts over
    assert fake.answers[4:] == [202, 429]


async def test_a_permanent_refusal_leaves_nothing_remembered_for_the_row(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """A refused row is failed for good, so no retry will come: what it got accepted is not kept for a later
    message that happens to carry the same id (SQLite may reuse a row id once the newest rows are pruned)."""
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    message = replace(firing(alerts=3), notification_id=11)
    accepted = '{"status": "success", "message": "Event processed", "dedup_key": "amcompanion/1/0000000000000001"}'
    refused = '{"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]}'
    fake.script = [(202, {}, accepted), (400, {}, refused)]
    response = await send(channel, message)
    assert (response.status, channel.classify(response).result) == (400, "permanent")
    assert channel._accepted == {}
    await send(channel, message)
    assert fake.answers == [202, 400, 202, 202, 202]  # sent whole: the first event is not skipped


async def test_a_retry_whose_events_were_all_taken_is_a_success_without_a_call(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    message = replace(firing(alerts=2), notification_id=5)
    for event in channel.events(message):  # as if the try before had its answer lost to the outbox's timeout
        channel._remember((5, event["dedup_key"], event["event_action"]))
    response = await send(channel, message)
    assert channel.classify(response).result == "ok" and fake.requests == []


async def test_the_summary_is_the_templates_text_on_one_line_within_1024_characters(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    await send(channel, replace(firing(), text="Checkout\n  is failing\n\nfor 7.5% of requests"))
    await send(channel, replace(firing(), text="x" * 5000))
    await send(channel, replace(firing(), text="  \n"))  # a template that wrote nothing: the alert's own line
    summaries = [json.loads(got.body)["payload"]["summary"] for got in fake.requests]
    assert summaries[0] == "Checkout is failing for 7.5% of requests"
    assert len(summaries[1]) == 1024 and summaries[1].endswith("…")
    assert summaries[2] == SUMMARY
    assert fake.answers == [202, 202, 202]


async def test_a_huge_alert_stays_within_512_kb(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    big = sample_alert(1, annotations={"description": "é" * 400_000, "summary": "disk full"})
    await send(channel, replace(firing(), alerts=[big]))
    many = sample_alert(2, labels={f"label_{n}": "v" * 2000 for n in range(400)})  # too many to keep even cut
    await send(channel, replace(firing(alerts=2), alerts=[big, many]))
    assert fake.answers == [202, 202, 202]
    sizes = [len(got.body) for got in fake.requests]
    assert all(size <= EVENT_BYTES for size in sizes), sizes
    first, _, last = (json.loads(got.body)["payload"] for got in fake.requests)
    assert first["custom_details"]["annotations"]["description"].endswith("…(truncated)")
    assert first["custom_details"]["annotations"]["summary"] == "disk full"
    assert last["custom_details"] == {
        "note": f"labels and annotations left out: the event was over {EVENT_BYTES} bytes"
    }


async def test_each_error_class_is_read_as_pagerduty_means_it(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty(per_minute=1, retry_after=7)
    base = await start(aiohttp_server, fake)
    channel = channel_for(base)
    message = firing()

    short = await send(channel_for(base, "not-a-key"), message)
    outcome = channel.classify(short)
    assert (short.status, outcome.result) == (400, "permanent")
    assert outcome.reason == (
        "PagerDuty 400 invalid event: Event object is invalid: Length of 'routing_key' is incorrect (should be 32"
        " characters); 'routing_key' cannot contain non-alphanumeric characters. (check routing_key: the"
        " Integration Key of the service's Events API v2 integration)"
    )
    unknown = await send(channel_for(base, "0" * 32), message)
    outcome = channel.classify(unknown)
    assert (unknown.status, outcome.result) == (
        400,
        "permanent",
    ) and "Invalid routing key (check routing_key" in outcome.reason

    invalid = await post_raw(base, json.dumps({"routing_key": ROUTING_KEY, "event_action": "trigger"}).encode())
    outcome = channel.classify(invalid)
    assert (invalid.status, outcome.result) == (400, "permanent")
    assert outcome.reason.startswith("PagerDuty 400 invalid event: Event object is invalid: 'payload' is missing")
    not_json = await post_raw(base, b"routing_key=x")
    assert channel.classify(not_json).reason == (
        "PagerDuty 400 Unrecognized object: Event object format is unrecognized: JSON parse error"
    )

    fake.routing_keys.add("1" * 32)  # a fresh integration: its own rate window, one event a minute
    fresh = channel_for(base, "1" * 32)
    first = await send(fresh, message)
    throttled = await send(fresh, message)
    outcome = channel.classify(throttled)
    assert (first.status, throttled.status, outcome.result, outcome.retry_after) == (202, 429, "retry", 7.0)
    assert outcome.reason == "PagerDuty 429 throttle event: Request Limit Exceeded"

    fake.script = [
        (500, {}, '{"status": "error", "message": "Internal Server Error"}'),
        (503, {"Retry-After": "12"}, "<html>Service Unavailable</html>"),
        (429, {}, ""),
        (401, {}, '{"message": "Unauthorized"}'),
        (403, {}, "<html>Forbidden by the proxy</html>"),
        (404, {}, "Not Found"),
        (202, {}, "<html>captive portal</html>"),
    ]
    readings = []
    for _ in range(len(fake.script)):
        outcome = channel.classify(await send(channel, message))
        readings.append((outcome.result, outcome.retry_after))
    assert channel.classify(Response(401, {}, b'{"message": "Unauthorized"}')).reason == "PagerDuty 401: Unauthorized"
    assert readings == [
        ("retry", None),
        ("retry", 12.0),
        ("retry", 30.0),  # PagerDuty's suggested wait when it gives none
        ("permanent", None),
        ("permanent", None),
        ("permanent", None),
        ("retry", None),  # a 2xx that is not PagerDuty's answer is no delivery
    ]


async def test_a_wrong_base_url_path_is_permanent(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake) + "/proxy")
    response = await send(channel, firing())
    outcome = channel.classify(response)
    assert (response.status, outcome.result) == (404, "permanent") and outcome.reason.startswith("HTTP 404")


def test_the_fake_refuses_what_pagerduty_refuses() -> None:
    good = json.loads(json.dumps(TRIGGER))
    assert event_errors(good) == []

    def errors(**changes: object) -> list[str]:
        return event_errors({**good, **changes})

    def payload(**changes: object) -> list[str]:
        return errors(payload={**good["payload"], **changes})

    assert errors(event_action="escalate") == ["'event_action' must be one of: trigger, acknowledge, resolve"]
    assert errors(dedup_key="k" * 256) == ["'dedup_key' is too long (maximum is 255 characters)"]
    assert event_errors({"routing_key": ROUTING_KEY, "event_action": "resolve"}) == ["'dedup_key' is missing or blank"]
    assert event_errors({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "k"}) == []
    assert payload(summary="s" * 1025) == ["'payload.summary' is too long (maximum is 1024 characters)"]
    assert payload(summary=" ") == ["'payload.summary' is missing or blank"]
    assert payload(source=None) == ["'payload.source' is missing or blank"]
    assert payload(severity="page") == ["'payload.severity' must be one of: critical, error, warning, info"]
    assert payload(timestamp="yesterday") == ["'payload.timestamp' is not a valid ISO 8601 timestamp"]
    assert payload(timestamp="2015-07-17T08:42:58.315+0000") == []  # the docs' own example
    assert payload(custom_details=["a"]) == ["'payload.custom_details' must be an object"]
    assert errors(links=[{"text": "no href"}]) == ["'links[0].href' must be a URL"]
    assert errors(links={"href": "https://x"}) == ["'links' must be an array"]
    assert errors(images=[{"src": "http://insecure.example/chart.png"}]) == ["'images[0].src' must be an HTTPS URL"]
    assert errors(images=[{"src": "https://x.example/c.png", "href": "https://x.example", "alt": "chart"}]) == []


async def test_the_fake_refuses_an_event_over_512_kb(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    base = await start(aiohttp_server, fake)
    event = {**TRIGGER, "payload": {**TRIGGER["payload"], "custom_details": {"blob": "x" * EVENT_BYTES}}}
    response = await post_raw(base, json.dumps(event).encode())
    assert response.status == 400 and "over the limit of 512 KB" in response.body.decode()
    assert fake.incidents == []


async def test_the_fake_shows_its_incidents(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = channel_for(await start(aiohttp_server, fake))
    await send(channel, firing())
    (shown,) = fake.shown()
    assert shown.to == "PagerDuty"
    assert shown.text.splitlines()[:2] == [SUMMARY, "triggered, critical, web-1"]
    assert f"[Acknowledge in amcompanion]({ACK_URL})" in shown.text


async def test_firing_then_resolve_end_to_end(tmp_path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    channel = {"type": "pagerduty", "routing_key": "${PD_ROUTING_KEY}", "base_url": await start(aiohttp_server, fake)}
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        await run.settled()
        await run.resolve_all()
        notes = await run.settled()
    assert [(n["kind"], n["status"]) for n in notes] == [("firing", "sent"), ("resolved", "sent")]
    trigger, resolve = fake.received
    key = f"amcompanion/{notes[0]['alert_id']}/{1:016x}"
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", key)
    assert trigger["links"][0]["href"].startswith("https://alerts.example.com/ack/")
    assert trigger["client_url"] == "https://alerts.example.com/console"
    assert trigger["payload"]["source"] == "web-1"
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}
    (incident,) = fake.incidents
    assert (incident.dedup_key, incident.status, incident.log) == (key, "resolved", ["trigger", "resolve"])


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"pagerduty-{kind}.txt", render_default("pagerduty", kind, recipient="").text + "\n")
    renderer = Renderer({"pd": {"type": "pagerduty"}}, None)
    acknowledged = renderer.render("pd", "acknowledged", [sample_alert(1)], "", {}, "")
    assert_golden("pagerduty-acknowledged.txt", acknowledged.text + "\n")
    assert_golden("pagerduty-digest.txt", render_default("pagerduty", alerts=3, recipient="").text + "\n")


def test_the_template_writes_the_line_the_channel_writes_for_a_digest() -> None:
    """A single alert's summary comes from the template, a digest's from alert_summary: the same line."""
    message = render_default("pagerduty", recipient="")
    assert message.text == alert_summary(message.alerts[0])
    job_only = sample_alert(
        1, alertname="Down", severity="", labels={"alertname": "Down", "job": "node"}, annotations={}
    )
    assert alert_summary(job_only) == "[ALERT] Down on node"
