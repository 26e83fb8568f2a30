"""Helpers for channel tests: the default templates rendered on fixed alerts, golden texts, and a real
receiver whose one escalation step pages the channel under test (its API faked on loopback).

Golden texts live in tests/golden/channels/; after an intended template change refresh them with
`AMCOMPANION_REFRESH_GOLDEN=1 python -m pytest tests/test_channel_*.py` and review the diff.
"""

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient

from amcompanion.receiver.app import make_app
from amcompanion.receiver.channels import Message
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock
from tests.conftest import GOLDEN
from tests.receiver_support import AUTH, TOKEN, alert_payload, rows

START = datetime(2026, 11, 22, 22, 47, 30, tzinfo=UTC)
engine_db: Path | str | None = None  # the test's history_db, when it runs on both engines (conftest.py sets it)
ACK_URL = "https://alerts.example.com/ack/1.1795000000.c2lnbmF0dXJl"
CONTACTS = {
    "alice": {
        "phone": "+8613800000001",
        "email": "alice@example.com",
        "dingtalk_mobile": "13800000001",
        "telegram_chat_id": "1001",
        "discord_user_id": "4242",
    },
    "bob": {"phone": "+8613800000002", "email": "bob@example.com"},
}


def sample_alert(n: int = 1, **changes: object) -> dict:
    """An alert as the outbox hands it to templates: the history row, labels and annotations decoded."""
    alert = {
        "id": n,
        "fingerprint": f"{n:016x}",
        "alertname": "HighErrorRate",
        "severity": "critical",
        "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "instance": f"web-{n}"},
        "annotations": {
            "summary": f"checkout 5xx ratio at 7.5% on web-{n}",
            "description": "More than 5% of checkout requests fail.",
            "runbook_url": "https://runbooks.example.com/checkout-errors",
        },
        "policy": "oncall",
        "status": "firing",
        "starts_at": "2026-11-22T22:47:24.568000Z",
        "ends_at": None,
        "resolved_at": None,
        "escalation_level": 1,
        "generator_url": "http://prometheus.example.com/graph?g0.expr=rate",
        "alertmanager_url": "http://alertmanager.example.com",
    }
    alert.update(changes)
    return alert


def render_default(
    channel_type: str, kind: str = "firing", alerts: int = 1, recipient: str = "alice", settings: dict | None = None
) -> Message:
    """The message the default template of `channel_type` makes: one alert with its ack link, or a digest."""
    name = f"test-{channel_type}"
    renderer = Renderer({name: {"type": channel_type, **(settings or {})}}, None)
    ended = {"status": "resolved", "ends_at": "2026-11-22T23:02:24.568000Z", "resolved_at": "2026-11-22T23:03:00Z"}
    batch = [sample_alert(n, **(ended if kind == "resolved" else {})) for n in range(1, alerts + 1)]
    ack_url = ACK_URL if alerts == 1 and kind == "firing" else ""
    return renderer.render(name, kind, batch, recipient, CONTACTS.get(recipient, {}), ack_url)


def assert_golden(name: str, text: str) -> None:
    """`text` equals tests/golden/channels/<name>; with AMCOMPANION_REFRESH_GOLDEN=1 it becomes it."""
    path = GOLDEN / "channels" / name
    if os.environ.get("AMCOMPANION_REFRESH_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file tests/golden/channels/{name}; create it with AMCOMPANION_REFRESH_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; if intended, refresh with AMCOMPANION_REFRESH_GOLDEN=1"


@dataclass
class Delivery:
    """A running receiver whose policy `oncall` pages channel `under-test` at once."""

    client: TestClient
    receiver: Receiver
    clock: ManualClock
    db: Path | str
    serial: int = 0

    async def fire(self, count: int = 1) -> None:
        """One Alertmanager notification with `count` new firing alerts."""
        body = alert_payload("firing", "unused")
        template = body["alerts"][0]
        body["alerts"] = []
        for _ in range(count):
            self.serial += 1
            alert = json.loads(json.dumps(template))
            alert["fingerprint"] = f"{self.serial:016x}"
            alert["labels"]["instance"] = f"web-{self.serial}"
            body["alerts"].append(alert)
        response = await self.client.post("/webhook/oncall", json=body, headers=AUTH)
        assert response.status == 200, await response.text()

    async def resolve_all(self) -> None:
        for alert in rows(self.db, "SELECT id FROM alerts WHERE status = 'firing'"):
            response = await self.client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=AUTH)
            assert response.status == 200, await response.text()

    async def settled(self, timeout: float = 10.0) -> list[dict]:
        """The notification rows once none is queued or being sent, moving the clock 1 s per poll so that
        retries come due in virtual time (keep `give_up_after_s` short when a test waits for a give-up)."""
        deadline = time.monotonic() + timeout
        while True:
            queued = rows(self.db, "SELECT COUNT(*) FROM notifications WHERE status = 'queued'")[0][0]
            if queued == 0 and not self.receiver.outbox.sending:
                return [dict(r) for r in rows(self.db, "SELECT * FROM notifications ORDER BY id")]
            if time.monotonic() > deadline:
                raise AssertionError(f"the outbox did not settle in {timeout}s: {queued} rows still queued")
            await self.clock.advance(1)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def delivery(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    channel: dict,
    to: list[str] | None = None,
    on_resolve: str = "notify_previous",
    give_up_after_s: float = 3600,
    contacts: dict[str, dict[str, str]] | None = None,
    db: Path | str | None = None,
) -> AsyncIterator[Delivery]:
    """A receiver on loopback with `channel` (its settings, `type` included) as `under-test`, and `contacts`
    (default CONTACTS)."""
    target: dict = {"channel": "under-test", **({"to": to} if to else {})}
    config = {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1", "external_url": "https://alerts.example.com"},
        "severities": ["info", "warning", "critical"],
        "contacts": CONTACTS if contacts is None else contacts,
        "channels": {"under-test": channel},
        "escalations": {"oncall": {"steps": [{"after": "0s", "notify": [target]}], "on_resolve": on_resolve}},
    }
    path = tmp_path / "receiver.yaml"
    path.write_text(json.dumps(config, indent=2))
    clock = ManualClock(START)
    db = db or engine_db or tmp_path / "history.db"
    settings = Settings(str(db), TOKEN, give_up_after=timedelta(seconds=give_up_after_s))
    receiver = Receiver(load_receiver_config(path), settings, clock)
    client = await aiohttp_client(make_app(receiver))
    yield Delivery(client, receiver, clock, db)


async def through_a_receiver(tmp_path: Path, aiohttp_client, channel: dict) -> list:  # type: ignore[no-untyped-def]
    """The notifications a real receiver made of one firing alert paged to alice through `channel`, once settled."""
    async with delivery(tmp_path, aiohttp_client, channel, to=["alice"]) as run:
        await run.fire(1)
        return await run.settled()


def assert_default_goldens(kind: str) -> None:
    """The default template of `kind` for a firing alert, its resolve and a digest of 3, as the golden texts."""
    for state in ("firing", "resolved"):
        assert_golden(f"{kind}-{state}.txt", render_default(kind, state).text + "\n")
    assert_golden(f"{kind}-digest.txt", render_default(kind, alerts=3).text + "\n")
