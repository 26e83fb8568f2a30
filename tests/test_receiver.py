"""The receiver through its HTTP API, on loopback, with fake channel servers and a clock moved by hand."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock, iso
from tests.receiver_support import AUTH, TOKEN, FakeChannel, alert_payload, eventually, payload, rows, write_config

START = datetime(2026, 11, 22, 22, 47, 30, tzinfo=UTC)


@dataclass
class Harness:
    client: TestClient
    receiver: Receiver
    clock: ManualClock
    fakes: dict[str, FakeChannel]
    db: Path | str

    async def post(self, body: object, policy: str = "oncall", headers: dict | None = None) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await self.client.post(f"/webhook/{policy}", data=data, headers=AUTH if headers is None else headers)
        return response.status, await response.json()

    def count(self, table: str, where: str = "TRUE", *args: object) -> int:
        return rows(self.db, f"SELECT COUNT(*) FROM {table} WHERE {where}", *args)[0][0]


@pytest.fixture
async def harness(tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client) -> Harness:  # type: ignore[no-untyped-def]
    fakes = {"ops": FakeChannel(), "pager": FakeChannel()}
    fake_app = web.Application()
    for name, fake in fakes.items():
        fake_app.router.add_post(f"/{name}", fake.handle)
    server = await aiohttp_server(fake_app)
    config = write_config(tmp_path, {name: str(server.make_url(f"/{name}")) for name in fakes})
    clock = ManualClock(START)
    receiver = Receiver(load_receiver_config(config), Settings(str(history_db), TOKEN), clock)
    client = await aiohttp_client(make_app(receiver))
    return Harness(client, receiver, clock, fakes, history_db)


# -- ingest -----------------------------------------------------------------------------------------
async def test_a_real_firing_payload_is_recorded_and_pages_the_first_step(harness: Harness) -> None:
    status, answer = await harness.post(payload("firing"))
    assert status == 200 and answer["new"] == 1 and answer["queued"] == 1
    (alert,) = rows(harness.db, "SELECT * FROM alerts")
    assert alert["fingerprint"] == "3f0a5aa5dc694a83"
    assert alert["starts_at"] == "2026-11-22T22:47:24.568000Z"
    assert (alert["alertname"], alert["severity"], alert["status"], alert["policy"]) == (
        "DemoGaugeHigh",
        "critical",
        "firing",
        "oncall",
    )
    assert json.loads(alert["labels"])["instance"] == "127.0.0.1:19100"
    assert alert["escalation_level"] == 1
    assert alert["next_step_at"] == "2026-11-22T22:57:30.000000Z"  # step 2: 10m after the first notice
    await eventually(lambda: harness.fakes["ops"].received, what="the first step's message")
    message = harness.fakes["ops"].received[0]
    assert message["kind"] == "firing" and message["alerts"][0]["alertname"] == "DemoGaugeHigh"
    assert "demo_gauge is 9" in message["text"]
    assert message["ack_url"].startswith("https://alerts.example.com/ack/")
    await eventually(lambda: harness.count("notifications", "status = 'sent'") == 1, what="the row marked sent")


async def test_replays_and_ha_duplicates_record_one_alert_one_event_one_page(harness: Harness) -> None:
    for _ in range(3):
        status, _ = await harness.post(payload("firing"))
        assert status == 200
    status, answer = await harness.post(payload("firing", receiver="webhook-replica"))
    assert answer["duplicates"] == 1 and answer["new"] == 0
    assert harness.count("alerts") == 1
    assert harness.count("alert_events") == 1
    assert harness.count("notifications") == 1
    assert harness.count("escalations") == 1


async def test_resolve_tells_those_paged_once_and_cancels_what_was_not_sent(harness: Harness) -> None:
    harness.fakes["ops"].delay = 0.0
    await harness.post(payload("firing"))
    await eventually(lambda: harness.count("notifications", "status = 'sent'") == 1, what="the page")
    status, answer = await harness.post(payload("resolved"))
    assert status == 200 and answer["resolved"] == 1 and answer["queued"] == 1
    await harness.post(payload("resolved"))  # a resend: nothing new
    await eventually(lambda: len(harness.fakes["ops"].received) == 2, what="the resolve notice")
    notice = harness.fakes["ops"].received[1]
    assert notice["kind"] == "resolved" and notice["ack_url"] == ""
    (alert,) = rows(harness.db, "SELECT * FROM alerts")
    assert alert["status"] == "resolved" and alert["ends_at"] == "2026-11-22T22:47:26.568000Z"
    assert alert["next_step_at"] is None
    assert harness.count("alert_events") == 2
    await harness.clock.advance(3600)  # no step after the resolve
    await eventually(lambda: harness.count("notifications", "status = 'queued'") == 0, what="an empty outbox")
    assert harness.count("notifications") == 2 and len(harness.fakes["pager"].received) == 0


async def test_a_resolve_that_arrives_before_its_firing_closes_the_episode(harness: Harness) -> None:
    await harness.post(payload("resolved"))
    await harness.post(payload("firing"))
    (alert,) = rows(harness.db, "SELECT * FROM alerts")
    assert alert["status"] == "resolved" and alert["escalation_level"] == 0
    assert harness.count("notifications") == 0
    assert harness.count("alert_events") == 2


async def test_a_new_firing_episode_of_the_same_series_is_a_new_alert(harness: Harness) -> None:
    await harness.post(alert_payload("firing", "aaaa000000000001", starts_at="2026-11-22T10:00:00Z"))
    await harness.post(alert_payload("resolved", "aaaa000000000001", starts_at="2026-11-22T10:00:00Z"))
    await harness.post(alert_payload("firing", "aaaa000000000001", starts_at="2026-11-22T11:00:00Z"))
    assert [r["status"] for r in rows(harness.db, "SELECT status FROM alerts ORDER BY id")] == ["resolved", "firing"]


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "headers", "policy", "status", "message"),
    [
        (b"{not json", None, "oncall", 400, "malformed JSON"),
        (payload("firing", version="3"), None, "oncall", 422, "unsupported payload version '3'"),
        ({**payload("firing"), "alerts": []}, None, "oncall", 422, "alerts: expected at least one alert"),
        (payload("firing", groupKey=None), None, "oncall", 422, "groupKey: required field is missing"),
        (
            {**payload("firing"), "alerts": [{**payload("firing")["alerts"][0], "fingerprint": 7}]},
            None,
            "oncall",
            422,
            "alerts[0].fingerprint: expected a string, got a number",
        ),
        (
            {**payload("firing"), "alerts": [{**payload("firing")["alerts"][0], "startsAt": "yesterday"}]},
            None,
            "oncall",
            422,
            "alerts[0].startsAt: 'yesterday' is not an RFC 3339 time",
        ),
        (payload("firing"), None, "nosuchpolicy", 404, 'unknown escalation policy "nosuchpolicy"'),
        (payload("firing"), {}, "oncall", 401, "missing credentials"),
        (payload("firing"), {"Authorization": "Bearer nope"}, "oncall", 401, "wrong credentials"),
    ],
)
async def test_bad_requests_get_a_4xx_with_the_reason_and_write_nothing(
    harness: Harness, body: object, headers: dict | None, policy: str, status: int, message: str
) -> None:
    got, answer = await harness.post(body, policy, headers)
    assert got == status
    assert message in answer["error"]
    assert harness.count("alerts") == 0 and harness.count("alert_events") == 0


async def test_an_oversized_body_is_refused_with_413(harness: Harness) -> None:
    huge = payload("firing")
    huge["commonAnnotations"] = {"padding": "x" * (harness.receiver.settings.max_body_bytes + 1)}
    status, answer = await harness.post(huge)
    assert status == 413 and "over the limit" in answer["error"]
    assert harness.count("alerts") == 0


async def test_basic_auth_with_the_token_as_password_is_accepted(harness: Harness) -> None:
    import base64

    basic = base64.b64encode(f"alertmanager:{TOKEN}".encode()).decode()
    status, _ = await harness.post(payload("firing"), headers={"Authorization": f"Basic {basic}"})
    assert status == 200


async def test_auth_failures_are_counted_in_the_metrics(harness: Harness) -> None:
    await harness.post(payload("firing"), headers={})
    text = await (await harness.client.get("/metrics")).text()
    assert 'amcompanion_auth_failures_total{endpoint="webhook"} 1.0' in text


# -- escalation in virtual time -------------------------------------------------------------------------
async def test_unacknowledged_alerts_escalate_step_by_step_and_an_ack_stops_them(harness: Harness) -> None:
    await harness.post(payload("firing"))
    await harness.clock.advance(9 * 60)
    await eventually(lambda: harness.fakes["ops"].received, what="step 1")
    assert not harness.fakes["pager"].received  # step 2 is not due before 10m
    await harness.clock.advance(60)
    await eventually(lambda: len(harness.fakes["pager"].received) == 1, what="step 2")
    assert harness.fakes["pager"].received[0]["recipient"] == "alice"
    (alert,) = rows(harness.db, "SELECT id, escalation_level FROM alerts")
    assert alert["escalation_level"] == 2
    response = await harness.client.post(
        f"/api/v1/alerts/{alert['id']}/ack", json={"by": "alice", "comment": "on it"}, headers=AUTH
    )
    assert response.status == 200
    acked = await response.json()
    assert acked["status"] == "acknowledged" and acked["acked_by"] == "alice"
    assert acked["acks"][0]["via"] == "api" and acked["acks"][0]["comment"] == "on it"
    await harness.clock.advance(3600)
    await eventually(lambda: harness.count("notifications", "status = 'queued'") == 0, what="an empty outbox")
    assert len(harness.fakes["pager"].received) == 1  # step 3 never came
    steps = rows(harness.db, "SELECT step, from_level, to_level, reason FROM escalations ORDER BY id")
    assert [tuple(s) for s in steps] == [(1, 0, 1, "first notice"), (2, 1, 2, "deadline")]


async def test_manual_escalate_and_resolve_through_the_api(harness: Harness) -> None:
    await harness.post(payload("firing"))
    (alert,) = rows(harness.db, "SELECT id FROM alerts")
    response = await harness.client.post(f"/api/v1/alerts/{alert['id']}/escalate", headers=AUTH)
    assert response.status == 200 and (await response.json())["escalation_level"] == 2
    await eventually(lambda: len(harness.fakes["pager"].received) == 1, what="the manual step")
    response = await harness.client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=AUTH)
    body = await response.json()
    assert body["status"] == "resolved" and body["next_step_at"] is None
    response = await harness.client.post(f"/api/v1/alerts/{alert['id']}/escalate", headers=AUTH)
    assert response.status == 409 and "only a firing alert escalates" in (await response.json())["error"]


async def test_the_alerts_api_lists_newest_first_and_filters_by_state(harness: Harness) -> None:
    await harness.post(alert_payload("firing", "f000000000000001", starts_at="2026-11-22T10:00:00Z"))
    await harness.post(alert_payload("firing", "f000000000000002", starts_at="2026-11-22T11:00:00Z"))
    await harness.post(alert_payload("resolved", "f000000000000001", starts_at="2026-11-22T10:00:00Z"))
    everything = await (await harness.client.get("/api/v1/alerts", headers=AUTH)).json()
    assert [a["fingerprint"] for a in everything["alerts"]] == ["f000000000000002", "f000000000000001"]
    firing = await (await harness.client.get("/api/v1/alerts?state=firing", headers=AUTH)).json()
    assert [a["fingerprint"] for a in firing["alerts"]] == ["f000000000000002"]
    none = await harness.client.get("/api/v1/alerts?state=acknowledged", headers=AUTH)
    assert none.status == 200 and (await none.json())["alerts"] == []
    bad = await harness.client.get("/api/v1/alerts?state=open", headers=AUTH)
    assert bad.status == 400 and "state must be one of" in (await bad.json())["error"]
    missing = await harness.client.get("/api/v1/alerts/999", headers=AUTH)
    assert missing.status == 404 and (await missing.json())["error"] == "no alert 999"
    one = await (await harness.client.get("/api/v1/alerts/1", headers=AUTH)).json()
    assert {"events", "notifications", "escalations", "acks"} <= set(one)
    assert [e["status"] for e in one["events"]] == ["firing", "resolved"]


# -- acknowledgement links --------------------------------------------------------------------------------
async def test_an_ack_link_shows_a_page_on_get_and_acknowledges_on_post(harness: Harness) -> None:
    await harness.post(payload("firing"))
    message = await eventually(lambda: harness.fakes["ops"].received, what="the page")
    path = message[0]["ack_url"].removeprefix("https://alerts.example.com")  # type: ignore[index]
    page = await harness.client.get(path)
    assert page.status == 200 and "Acknowledge" in await page.text()
    assert rows(harness.db, "SELECT status FROM alerts")[0]["status"] == "firing"  # a preview changes nothing
    done = await harness.client.post(path, data={"by": "bob"})
    assert done.status == 200 and "acknowledged by bob" in await done.text()
    (ack,) = rows(harness.db, "SELECT by, via FROM acks")
    assert tuple(ack) == ("bob", "link")
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await harness.client.post(forged, data={"by": "eve"})).status == 403
    await harness.clock.advance(25 * 3600)
    expired = await harness.client.get(path)
    assert expired.status == 403 and "expired" in await expired.text()


# -- outbox ---------------------------------------------------------------------------------------------------
async def test_a_failing_channel_is_retried_with_backoff_then_delivered(harness: Harness) -> None:
    harness.fakes["ops"].answers = [(500, {}, "upstream down"), (429, {"Retry-After": "30"}, "slow down")]
    await harness.post(payload("firing"))
    await eventually(lambda: len(harness.fakes["ops"].received) == 1, what="the first try")
    (row,) = await eventually(lambda: rows(harness.db, "SELECT * FROM notifications WHERE attempts = 1"))  # type: ignore[misc]
    assert row["status"] == "queued" and "HTTP 500: upstream down" in row["error"]
    assert row["next_attempt_at"] == "2026-11-22T22:47:32.000000Z"  # 2 s of backoff
    await harness.clock.advance(2)
    await eventually(lambda: len(harness.fakes["ops"].received) == 2, what="the second try")
    (row,) = await eventually(lambda: rows(harness.db, "SELECT * FROM notifications WHERE attempts = 2"))  # type: ignore[misc]
    assert row["next_attempt_at"] == "2026-11-22T22:48:02.000000Z"  # Retry-After: 30
    await harness.clock.advance(30)
    await eventually(lambda: harness.count("notifications", "status = 'sent' AND attempts = 3"), what="delivery")
    text = await (await harness.client.get("/metrics")).text()
    assert 'amcompanion_notification_retries_total{channel="ops"} 2.0' in text
    assert 'amcompanion_notifications_total{channel="ops",outcome="sent"} 1.0' in text


async def test_a_permanent_failure_is_recorded_with_its_reason_and_not_retried(harness: Harness) -> None:
    harness.fakes["ops"].answers = [(400, {}, "bad payload")]
    await harness.post(payload("firing"))
    (row,) = await eventually(lambda: rows(harness.db, "SELECT * FROM notifications WHERE status = 'failed'"))  # type: ignore[misc]
    assert row["attempts"] == 1 and row["error"] == "HTTP 400: bad payload"
    await harness.clock.advance(600)
    assert len(harness.fakes["ops"].received) == 1


async def test_retries_stop_at_the_give_up_deadline(harness: Harness) -> None:
    harness.fakes["ops"].answers = [(503, {}, "busy")] * 100
    await harness.post(payload("firing"))
    for _ in range(40):  # the give-up deadline is 1 h; backoff doubles from 2 s up to 10 min
        await harness.clock.advance(300)
        now = iso(harness.clock.now())
        await eventually(
            lambda now=now: harness.count(
                "notifications",
                "channel = 'ops' AND (status = 'failed' OR (status = 'queued' AND next_attempt_at > ?))",
                now,
            ),
            what="the retry to be scheduled or given up",
        )
        if harness.count("notifications", "channel = 'ops' AND status = 'failed'"):
            break
    (row,) = rows(harness.db, "SELECT * FROM notifications WHERE channel = 'ops'")
    assert row["status"] == "failed" and row["error"].startswith(f"gave up after {row['attempts']} tries: HTTP 503")
    assert 5 < row["attempts"] < 20


# -- operations -----------------------------------------------------------------------------------------------
async def test_health_readiness_and_metrics(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).status == 200
    ready = await harness.client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["policies"] == ["oncall"]
    await harness.post(payload("firing"))
    text = await (await harness.client.get("/metrics")).text()
    assert 'amcompanion_alerts_received_total{status="firing"} 1.0' in text
    assert 'amcompanion_webhook_requests_total{code="200",policy="oncall"} 1.0' in text
    assert 'amcompanion_escalation_steps_total{reason="first notice"} 1.0' in text


# -- rate limits, digests, restarts ---------------------------------------------------------------------------
async def test_a_storm_over_the_rate_limit_becomes_one_digest_per_recipient_and_nothing_is_dropped(
    tmp_path: Path,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    fake = FakeChannel()
    fake_app = web.Application()
    fake_app.router.add_post("/pager", fake.handle)
    server = await aiohttp_server(fake_app)
    policy = {"steps": [{"after": "0s", "notify": [{"channel": "pager", "to": ["alice", "bob"]}]}]}
    config = write_config(tmp_path, {"pager": str(server.make_url("/pager"))}, policy, pager={"rate_limit": "1/s"})
    receiver = Receiver(load_receiver_config(config), Settings(str(tmp_path / "h.db"), TOKEN), ManualClock(START))
    client = await aiohttp_client(make_app(receiver))
    storm = payload("firing")
    storm["alerts"] = [
        {**storm["alerts"][0], "fingerprint": f"{i:016x}", "labels": {"alertname": f"Storm{i}", "severity": "warning"}}
        for i in range(5)
    ]
    response = await client.post("/webhook/oncall", json=storm, headers=AUTH)
    assert (await response.json())["queued"] == 10
    await eventually(lambda: len(fake.received) == 2, what="two digests, the second after the rate limit allows it")
    assert sorted(m["recipient"] for m in fake.received) == ["alice", "bob"]
    assert all(len(m["alerts"]) == 5 and m["text"].startswith("[FIRING] 5 alerts") for m in fake.received)
    db = tmp_path / "h.db"
    await eventually(lambda: rows(db, "SELECT COUNT(*) FROM notifications WHERE status = 'sent'")[0][0] == 10)
    digests = rows(db, "SELECT recipient, COUNT(DISTINCT digest_id) AS n FROM notifications GROUP BY recipient")
    assert [tuple(r) for r in digests] == [("alice", 1), ("bob", 1)]
    metrics = await (await client.get("/metrics")).text()
    assert 'amcompanion_digests_total{channel="pager"} 2.0' in metrics


async def test_steps_that_fell_due_while_the_receiver_was_down_fire_once_at_start_up(tmp_path: Path) -> None:
    from amcompanion.receiver.payload import parse_notification

    policy = {
        "steps": [
            {"after": "0s", "notify": [{"channel": "ops"}]},
            {"after": "10m", "notify": [{"channel": "ops", "to": ["alice"]}]},
            {"after": "20m", "notify": [{"channel": "ops", "to": ["bob"]}]},
        ],
        "repeat": {"every": "30m", "times": 3},
    }
    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/unreachable"}, policy))
    clock = ManualClock(START)
    settings = Settings(str(tmp_path / "h.db"), TOKEN)
    first = Receiver(config, settings, clock)
    await first.start()
    note = parse_notification(json.dumps(payload("firing")).encode())
    await first.db.run(first.store.ingest, "oncall", note, clock.now())
    await first.stop()
    await clock.advance(2 * 3600)  # down for two hours: steps 2 and 3 and three repeats fell due
    second = Receiver(config, settings, clock)
    await second.start()
    try:
        db = tmp_path / "h.db"
        steps = await eventually(
            lambda: [tuple(r) for r in rows(db, "SELECT step, reason FROM escalations ORDER BY id")][1:] or None,
            what="the catch-up",
        )
        assert steps == [(2, "deadline"), (3, "deadline"), (3, "repeat")]  # every step once; repeats collapse
        (alert,) = rows(db, "SELECT escalation_level, repeats, next_step_at FROM alerts")
        assert (alert["escalation_level"], alert["repeats"], alert["next_step_at"]) == (3, 3, None)
    finally:
        await second.stop()


async def test_a_long_catch_up_goes_in_slices_and_misses_no_alert(tmp_path: Path) -> None:
    from amcompanion.receiver.db import Database
    from amcompanion.receiver.payload import parse_notification
    from amcompanion.receiver.store import Store

    policy = {
        "steps": [{"after": "0s", "notify": [{"channel": "ops"}]}, {"after": "10m", "notify": [{"channel": "ops"}]}]
    }
    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/unreachable"}, policy))
    store = Store(config, escalation_batch=3)
    db = Database(str(tmp_path / "h.db"))
    await db.open()
    try:
        for n in range(7):
            note = parse_notification(json.dumps(alert_payload("firing", f"fp{n}")).encode())
            await db.run(store.ingest, "oncall", note, START)
        later = START.replace(hour=23, minute=30)
        slices = []
        while True:
            taken, next_at = await db.run(store.escalate_due, later)
            slices.append(len(taken))
            if next_at is None or next_at > later:
                break
        assert slices == [3, 3, 1]
        assert rows(tmp_path / "h.db", "SELECT COUNT(*) FROM alerts WHERE escalation_level = 2")[0][0] == 7
    finally:
        await db.close()


# -- Twilio ---------------------------------------------------------------------------------------------------
def test_twilio_signature_matches_the_documented_example() -> None:
    from amcompanion.receiver.links import twilio_signature

    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )


async def test_pressing_1_on_the_call_acknowledges_as_the_person_called(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    from amcompanion.receiver.links import twilio_signature

    voice = {"type": "twilio_voice", "account_sid": "AC1", "auth_token": "${VOICE_TOKEN}", "from": "+15550000000"}
    path = write_config(tmp_path, {"ops": "http://127.0.0.1:9/x"})
    data = json.loads(path.read_text())
    data["channels"]["voice"] = voice
    data["contacts"]["alice"]["phone"] = "+8613800000001"
    data["escalations"]["oncall"]["steps"][0]["notify"] = [{"channel": "voice", "to": ["alice"]}]
    path.write_text(json.dumps(data))
    config = load_receiver_config(path, {"VOICE_TOKEN": "tw-secret"})
    receiver = Receiver(config, Settings(str(tmp_path / "h.db"), TOKEN), ManualClock(START))
    client = await aiohttp_client(make_app(receiver))
    await client.post("/webhook/oncall", json=payload("firing"), headers=AUTH)
    url = "https://alerts.example.com/twilio/voice/1"  # what Twilio requested: the public URL
    form = {"CallSid": "CA1", "Digits": "1", "From": "+15550000000", "To": "+8613800000001"}
    forged = await client.post("/twilio/voice/1", data=form, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert forged.status == 403
    good = {"X-Twilio-Signature": twilio_signature("tw-secret", url, form)}
    answer = await client.post("/twilio/voice/1", data=form, headers=good)
    assert answer.status == 200 and "Acknowledged" in await answer.text()
    (ack,) = rows(tmp_path / "h.db", "SELECT by, via FROM acks")
    assert tuple(ack) == ("alice", "phone")


# -- config and silences -----------------------------------------------------------------------------------------
async def test_the_configs_sla_targets_are_written_at_start_and_on_reload(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"ops": "http://127.0.0.1:9/unreachable"})
    default = load_receiver_config(path)
    config = json.loads(path.read_text())
    config["sla"] = {"critical": {"ack": "2m", "resolve": "20m"}, "emergency": {"ack": "1m", "resolve": "10m"}}
    config["severities"].append("emergency")
    path.write_text(json.dumps(config))
    custom = load_receiver_config(path)
    db = tmp_path / "h.db"

    def targets() -> dict[str, tuple[int, int]]:
        return {r["severity"]: (r["ack_seconds"], r["resolve_seconds"]) for r in rows(db, "SELECT * FROM sla_targets")}

    receiver = Receiver(custom, Settings(str(db), TOKEN), ManualClock(START))
    await receiver.start()
    try:
        assert targets() == {"critical": (120, 1200), "emergency": (60, 600)}  # only these severities page
        receiver.reload(default)  # a config without `sla`: the documented defaults again
        await eventually(lambda: targets() == {"critical": (300, 1800), "warning": (900, 7200)}, what="the reload")
    finally:
        await receiver.stop()


def test_config_errors_name_file_line_and_column(tmp_path: Path) -> None:
    from amcompanion.catalog.diagnostics import CatalogError

    path = tmp_path / "receiver.yaml"
    path.write_text(
        "version: 1\n"
        "receiver: {url: 'http://x:8080'}\n"
        "channels:\n"
        "  ops: {type: webhook, url: 'https://hooks.example.com/${HOOK_TOKEN}'}\n"
        "escalations:\n"
        "  oncall:\n"
        "    steps:\n"
        "      - notify: [opz]\n"
    )
    with pytest.raises(CatalogError) as caught:
        load_receiver_config(path, {})
    messages = [str(d) for d in caught.value.diagnostics]
    assert messages == [
        f"{path}:4:29: channels.ops.url: environment variable HOOK_TOKEN is not set",
        f'{path}:8:18: escalations.oncall.steps[0].notify[0]: undefined channel "opz"; did you mean "ops"?',
    ]


def test_a_config_whose_steps_cannot_reach_anyone_is_refused_at_load(tmp_path: Path) -> None:
    """As in the catalog: an SMS step without `to:`, or to a contact without a phone, would fail every send."""
    from amcompanion.catalog.diagnostics import CatalogError

    path = tmp_path / "receiver.yaml"
    path.write_text(
        "version: 1\n"
        "receiver: {url: 'http://x:8080'}\n"
        "contacts:\n"
        "  alice: {email: alice@example.com}\n"
        "channels:\n"
        "  sms: {type: twilio_sms, account_sid: AC1, auth_token: '${TW}', from: '+15550000000'}\n"
        "escalations:\n"
        "  oncall:\n"
        "    steps:\n"
        "      - notify: [sms, {channel: sms, to: [alice]}]\n"
    )
    with pytest.raises(CatalogError) as caught:
        load_receiver_config(path, {"TW": "token"})
    assert [str(d) for d in caught.value.diagnostics] == [
        f'{path}:10:18: escalations.oncall.steps[0].notify[0]: channel "sms" (twilio_sms) needs `to:` with the'
        " contacts to reach",
        f'{path}:10:42: escalations.oncall.steps[0].notify[1].to: contact "alice" has no phone, which channel sms'
        " (twilio_sms) needs",
    ]


def test_config_secrets_come_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"ops": "https://hooks.example.com/${HOOK_TOKEN}"})
    config = load_receiver_config(path, {"HOOK_TOKEN": "abc123"})
    assert config.channels["ops"]["url"] == "https://hooks.example.com/abc123"
    assert config.secrets == ["https://hooks.example.com/abc123", "/abc123", "abc123"]  # longest first


def test_credentials_written_literally_in_urls_are_masked_too(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {"robot": "https://oapi.dingtalk.com/robot/send?access_token=literal-token"},
        robot={"headers": {"Authorization": "Bearer header-token"}},
    )
    secrets = load_receiver_config(path, {}).secrets
    assert "access_token=literal-token" in secrets and "Bearer header-token" in secrets
    assert "https://oapi.dingtalk.com/robot/send?access_token=literal-token" in secrets


async def test_ack_with_silence_creates_an_alertmanager_silence(
    tmp_path: Path,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    created: list[dict] = []

    async def silences(request: web.Request) -> web.Response:
        created.append(await request.json())
        return web.json_response({"silenceID": "5e1f2b3c-0000-4000-8000-000000000001"})

    am = web.Application()
    am.router.add_post("/api/v2/silences", silences)
    am_server = await aiohttp_server(am)
    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/x"}))
    settings = Settings(str(tmp_path / "h.db"), TOKEN, alertmanager_url=str(am_server.make_url("")))
    client = await aiohttp_client(make_app(Receiver(config, settings, ManualClock(START))))
    await client.post("/webhook/oncall", json=payload("firing"), headers=AUTH)
    response = await client.post("/api/v1/alerts/1/ack", json={"by": "alice", "silence": "2h"}, headers=AUTH)
    body = await response.json()
    assert response.status == 200 and body["silence_id"] == "5e1f2b3c-0000-4000-8000-000000000001"
    (silence,) = created
    assert silence["createdBy"] == "alice"
    assert silence["startsAt"] == "2026-11-22T22:47:30.000000Z" and silence["endsAt"] == "2026-11-23T00:47:30.000000Z"
    assert {m["name"]: m["value"] for m in silence["matchers"]} == payload("firing")["alerts"][0]["labels"]
    assert all(m["isEqual"] and not m["isRegex"] for m in silence["matchers"])
    refused = await client.post("/api/v1/alerts/1/ack", json={"by": "alice", "silence": "soon"}, headers=AUTH)
    assert refused.status == 422 and "silence: expected a duration" in (await refused.json())["error"]
    nobody = await client.post("/api/v1/alerts/1/ack", json={}, headers=AUTH)
    assert nobody.status == 422 and "by: required" in (await nobody.json())["error"]


async def test_a_channel_that_times_out_is_retried(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    slow = FakeChannel(delay=2.0)
    fake_app = web.Application()
    fake_app.router.add_post("/ops", slow.handle)
    server = await aiohttp_server(fake_app)
    config = write_config(tmp_path, {"ops": str(server.make_url("/ops"))}, ops={"timeout": "200ms"})
    client = await aiohttp_client(
        make_app(Receiver(load_receiver_config(config), Settings(str(tmp_path / "h.db"), TOKEN), ManualClock(START)))
    )
    await client.post("/webhook/oncall", json=payload("firing"), headers=AUTH)
    (row,) = await eventually(lambda: rows(tmp_path / "h.db", "SELECT * FROM notifications WHERE attempts = 1"))  # type: ignore[misc]
    assert row["status"] == "queued" and row["error"] == "no answer within 0.2 s"


def test_the_bundled_receiver_config_loads_with_the_example_environment() -> None:
    from tests.conftest import ROOT

    lines = (ROOT / "webhook" / "example.env").read_text().splitlines()
    environ = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    config = load_receiver_config(ROOT / "generated" / "receiver" / "receiver.yaml", environ)
    assert set(config.policies) == {"db-oncall", "infra-oncall", "payments-oncall"}
    assert config.external_url == "https://alerts.example.com"
    assert config.bearer_token_file == "/etc/amcompanion/token"


async def test_postgresql_restarted_under_load_is_503_while_down_and_recovers_by_itself(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_client
) -> None:
    """Alertmanager retries a 503: while the database is down every notification is refused with it (none is taken
    and lost), and once it is back the receiver takes them again without a restart of its own."""
    from tests.postgres import PostgresServer, require_postgres

    server = PostgresServer(require_postgres())
    try:
        server.start()
        config = write_config(tmp_path, {"ops": "http://127.0.0.1:9/ops", "pager": "http://127.0.0.1:9/pager"})
        receiver = Receiver(load_receiver_config(config), Settings(server.url, TOKEN), ManualClock(START))
        client = await aiohttp_client(make_app(receiver))
        first = await client.post("/webhook/oncall", json=alert_payload("firing", "00000000000000a1"), headers=AUTH)
        assert first.status == 200
        server.stop("immediate")  # as a crash would
        down = await client.post("/webhook/oncall", json=alert_payload("firing", "00000000000000a2"), headers=AUTH)
        assert down.status == 503 and "unavailable" in (await down.json())["error"]
        server.start()
        statuses = []

        async def accepted() -> bool:
            body = alert_payload("firing", "00000000000000a3")
            response = await client.post("/webhook/oncall", json=body, headers=AUTH)
            statuses.append(response.status)
            return response.status == 200

        for _ in range(100):
            if await accepted():
                break
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
        assert [r["fingerprint"] for r in rows(server.url, "SELECT fingerprint FROM alerts ORDER BY id")] == [
            "00000000000000a1",
            "00000000000000a3",
        ]
    finally:
        server.remove()


async def test_a_lease_renewed_after_its_try_was_recorded_does_not_hold_the_retry_back(harness: Harness) -> None:
    """The renewal takes the ids of the rows being sent, then waits for the database; a try recorded meanwhile let
    its lease go, and renewing it would keep the retry waiting for a whole lease."""
    harness.fakes["ops"].answers = [(503, {}, "busy")]
    await harness.post(payload("firing"))
    (row,) = await eventually(lambda: rows(harness.db, "SELECT * FROM notifications WHERE attempts = 1"))  # type: ignore[misc]
    assert row["status"] == "queued" and row["lease_until"] is None and row["claimed_by"] == harness.receiver.replica
    outbox = harness.receiver.outbox
    await harness.receiver.db.run(outbox._renew, [row["id"]], harness.clock.now())  # late, with the ids of before
    (again,) = rows(harness.db, "SELECT lease_until FROM notifications WHERE id = ?", row["id"])
    assert again["lease_until"] is None
    await harness.clock.advance(2)  # the retry's time: it goes at once
    await eventually(lambda: harness.count("notifications", "status = 'sent'"), what="the retry")
