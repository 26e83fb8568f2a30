"""An incident tool (PagerDuty) kept in step with the alert: an ack in amcompanion acknowledges the incident, and a
resolve resolves it whatever the policy's `on_resolve` says; other channels are told of neither. Real receiver,
real outbox, the PagerDuty fake on loopback."""

from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from amcompanion.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.store import Store, syncing_channels
from tests.channel_support import delivery
from tests.receiver_support import AUTH, rows, write_config


@pytest.fixture(autouse=True)
def routing_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)


async def pagerduty(aiohttp_server) -> tuple[FakePagerDuty, dict]:  # type: ignore[no-untyped-def]
    fake = FakePagerDuty()
    server: TestServer = await aiohttp_server(fake.app())
    base_url = str(server.make_url("")).rstrip("/")
    return fake, {"type": "pagerduty", "routing_key": "${PD_ROUTING_KEY}", "base_url": base_url}


async def test_an_ack_here_acknowledges_the_pagerduty_incident_and_a_resolve_resolves_it(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    fake, channel = await pagerduty(aiohttp_server)
    async with delivery(tmp_path, aiohttp_client, channel, db=history_db) as run:
        await run.fire()
        await run.settled()
        (incident,) = fake.incidents
        assert incident.status == "triggered"
        alert_id = rows(run.db, "SELECT id FROM alerts")[0]["id"]
        response = await run.client.post(f"/api/v1/alerts/{alert_id}/ack", json={"by": "alice"}, headers=AUTH)
        assert response.status == 200, await response.text()
        await run.settled()
        assert (incident.status, incident.log) == ("acknowledged", ["trigger", "acknowledge"])
        again = await run.client.post(f"/api/v1/alerts/{alert_id}/ack", json={"by": "bob"}, headers=AUTH)
        assert (await again.json())["already_acknowledged"] is True
        resolved = await run.client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=AUTH)
        assert resolved.status == 200, await resolved.text()
        notes = await run.settled()
    assert [(n["kind"], n["status"]) for n in notes] == [
        ("firing", "sent"),
        ("acknowledged", "sent"),  # once: the second ack changed nothing
        ("resolved", "sent"),
    ]
    assert (incident.status, incident.log) == ("resolved", ["trigger", "acknowledge", "resolve"])
    assert {event["dedup_key"] for event in fake.received} == {incident.dedup_key}


async def test_the_incident_is_resolved_even_when_the_policy_tells_nobody_of_resolves(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    fake, channel = await pagerduty(aiohttp_server)
    async with delivery(tmp_path, aiohttp_client, channel, on_resolve="none", db=history_db) as run:
        await run.fire()
        await run.settled()
        await run.resolve_all()
        notes = await run.settled()
    assert [(n["kind"], n["status"]) for n in notes] == [("firing", "sent"), ("resolved", "sent")]
    assert [incident.status for incident in fake.incidents] == ["resolved"]


async def test_an_alert_whose_page_never_reached_pagerduty_tells_it_nothing_on_ack(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    """No incident was opened, so there is none to acknowledge: no event is queued at all."""
    fake, channel = await pagerduty(aiohttp_server)
    fake.script = [(400, {}, '{"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]}')]
    async with delivery(tmp_path, aiohttp_client, channel, db=history_db) as run:
        await run.fire()
        await run.settled()
        alert_id = rows(run.db, "SELECT id FROM alerts")[0]["id"]
        response = await run.client.post(f"/api/v1/alerts/{alert_id}/ack", json={"by": "alice"}, headers=AUTH)
        assert response.status == 200
        notes = await run.settled()
    assert [(n["kind"], n["status"]) for n in notes] == [("firing", "failed")]
    assert fake.incidents == []


def test_only_channels_that_keep_incidents_are_told_of_acks() -> None:
    channels = {
        "pd": {"type": "pagerduty", "routing_key": ROUTING_KEY},
        "chat": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"},
        "sms": {"type": "twilio_sms"},
    }
    assert syncing_channels(channels) == {"pd"}


def test_a_reload_that_adds_an_incident_tool_is_told_of_acks_from_then_on(tmp_path: Path) -> None:
    """Receiver.reload gives the store the new config: which channels sync is read from it, never kept from before."""
    store = Store(load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/ops"})))
    assert store.syncing == frozenset()
    pagerduty = {"type": "pagerduty", "routing_key": ROUTING_KEY}
    store.config = replace(store.config, channels={**store.config.channels, "pd": pagerduty})
    assert store.syncing == {"pd"}
