"""The live console in real headless Chromium against the real receiver: a person signs in with their token,
an alert posted to the webhook appears without a reload, Acknowledge acknowledges it as that person (via
console), a viewer sees no buttons and a forged change is refused. Screenshots are kept as CI artifacts."""

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from pytest_aiohttp import AiohttpServer

from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config, token_digest
from amcompanion.receiver.service import Receiver, Settings
from tests.browser import Browser
from tests.conftest import ROOT, require_tool
from tests.receiver_support import AUTH, TOKEN, FakeChannel, alert_payload, rows

ARTIFACTS = ROOT / "artifacts"
PEOPLE = {"alice": ("responder", "alice-console-token"), "vic": ("viewer", "vic-console-token")}
ARRIVAL_BUDGET_S = 1.0  # the promise: a posted alert is on the page within a second


@dataclass
class Site:
    url: str
    receiver: Receiver
    db: Path | str

    async def post_alert(self, fingerprint: str, name: str, minutes_ago: int = 0, **labels: str) -> None:
        started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        payload = alert_payload("firing", fingerprint, name, starts_at=started.isoformat().replace("+00:00", "Z"))
        payload["alerts"][0]["labels"].update(labels)
        async with ClientSession() as session:
            body = json.dumps(payload)
            async with session.post(f"{self.url}/webhook/oncall", data=body, headers=AUTH) as response:
                assert response.status == 200, await response.text()


@pytest.fixture
async def site(tmp_path: Path, history_db: Path | str, aiohttp_server: AiohttpServer) -> Site:
    pager = FakeChannel()
    fake = web.Application()
    fake.router.add_post("/pager", pager.handle)
    channel = await aiohttp_server(fake)
    config = {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1"},
        "contacts": {
            name: {"name": f"{name.title()} Example", "role": role, "token_sha256": token_digest(token)}
            for name, (role, token) in PEOPLE.items()
        },
        "channels": {"pager": {"type": "webhook", "url": str(channel.make_url("/pager"))}},
        "schedules": {
            "primary": {
                "time_zone": "Europe/Berlin",
                "layers": [{"rotation": ["alice"], "shift": "1w", "handoff": "2026-01-05 09:00"}],
            }
        },
        "escalations": {
            "oncall": {
                "steps": [
                    {"notify": [{"oncall": "primary", "channel": "pager"}]},
                    {"after": "30m", "notify": ["pager"]},
                ]
            }
        },
    }
    path = tmp_path / "receiver.yaml"
    path.write_text(json.dumps(config))
    receiver = Receiver(load_receiver_config(path), Settings(str(history_db), TOKEN))
    server = await aiohttp_server(make_app(receiver))
    return Site(str(server.make_url("")).rstrip("/"), receiver, history_db)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with Browser(require_tool("chromium", "apt-get install chromium fonts-liberation")) as started:
        yield started


async def sign_in(browser: Browser, site: Site, person: str) -> None:
    """Through the sign-in form, as a person would."""
    await browser.goto(f"{site.url}/console")
    assert await browser.evaluate("location.pathname") == "/console/login"  # sent to sign in first
    token = PEOPLE[person][1]
    await browser.evaluate(
        f"document.querySelector('input[name=token]').value = {json.dumps(token)};"
        "document.querySelector('form').submit()"
    )
    await browser.wait_for("location.pathname === '/console' && document.readyState === 'complete'", timeout=10)
    await browser.wait_for("document.getElementById('live').dataset.state === 'live'", timeout=10)


async def test_a_responder_sees_an_alert_arrive_live_and_acknowledges_it(site: Site, browser: Browser) -> None:
    await sign_in(browser, site, "alice")
    await browser.wait_for("document.getElementById('alerts').textContent.includes('Nothing is firing')")
    await browser.wait_for("document.getElementById('oncall').textContent.includes('Alice Example')")
    # the on-call panel offers the person's own shifts as a calendar to subscribe to, with its key
    feed = await browser.evaluate(
        "(() => { const links = [...document.querySelectorAll('#oncall a.feed')];"
        " const mine = new URL(links.find(a => a.textContent === 'my shifts').href);"
        " return fetch(mine.pathname + mine.search, {credentials: 'omit'})"
        ".then(async r => [mine.pathname, r.status, await r.text()]); })()"
    )
    assert feed[0] == "/schedules/primary/alice.ics" and feed[1] == 200 and "On call: Alice Example" in feed[2]
    posted = time.monotonic()
    await site.post_alert("c1", "CheckoutErrors")
    await browser.wait_for("document.querySelector('article.alert[data-status=firing]')", timeout=ARRIVAL_BUDGET_S)
    arrived = time.monotonic() - posted
    card = "document.querySelector('article.alert')"
    text = await browser.evaluate(f"{card}.textContent")
    assert "CheckoutErrors" in text and "Alice Example" in text  # paged, and on call for its policy's schedule
    alert_id = int(await browser.evaluate(f"{card}.dataset.alertId"))
    await browser.wait_for(f"{card}.textContent.includes('pager')", timeout=5)  # who was paged on which channel
    ARTIFACTS.mkdir(exist_ok=True)
    await browser.screenshot(ARTIFACTS / "console-firing.png", 1280, 800)
    # another site's form would carry the session cookie but not the page's CSRF token: refused
    forged = await browser.evaluate(
        f"fetch('/api/v1/alerts/{alert_id}/resolve', {{method: 'POST', body: '{{}}'}})"
        ".then(async r => [r.status, (await r.json()).error])"
    )
    assert forged[0] == 403 and "X-CSRF-Token" in forged[1]
    await browser.click("article.alert button[data-action=ack]")
    await browser.wait_for(f"{card}.dataset.status === 'acknowledged'", timeout=5)
    (alert,) = rows(site.db, "SELECT status, acked_by FROM alerts WHERE id = ?", alert_id)
    assert tuple(alert) == ("acknowledged", "alice")
    (ack,) = rows(site.db, "SELECT by, via FROM acks WHERE alert_id = ?", alert_id)
    assert tuple(ack) == ("alice", "console")
    # the timeline tells the alert's life in order
    assert "step 1 of 2" in await browser.evaluate(f"{card}.textContent")  # redrawn from the card, not the answer
    await browser.click("article.alert button[data-toggle=timeline]")
    await browser.wait_for("document.querySelector('article.alert .timeline li')", timeout=5)
    timeline = await browser.evaluate("document.querySelector('article.alert .timeline').textContent")
    assert timeline.index("Fired") < timeline.index("Step 1") < timeline.index("Acknowledged by Alice Example")
    # more alerts, as a console shows them on a busy day: grouped by service, the most urgent first
    await site.post_alert("c2", "PaymentLatencyHigh", 4, service="payments", severity="warning", team="payments")
    await site.post_alert("c3", "NodeDiskFilling", 12, service="node", severity="critical", team="infra")
    await browser.wait_for("document.querySelectorAll('article.alert').length === 3", timeout=5)
    await browser.wait_for(
        "[...document.querySelectorAll('article.alert')].every(c => c.textContent.includes('pager'))"
    )
    await browser.screenshot(ARTIFACTS / "console.png", 1280, 800)
    print(f"the alert reached the page {arrived:.2f} s after it was posted")


async def test_a_viewer_sees_no_buttons_and_the_server_refuses_their_changes(site: Site, browser: Browser) -> None:
    await site.post_alert("v1", "DiskFull")
    await sign_in(browser, site, "vic")
    await browser.wait_for("document.querySelector('article.alert')", timeout=5)
    assert await browser.evaluate("document.querySelectorAll('button[data-action]').length") == 0
    alert_id = int(await browser.evaluate("document.querySelector('article.alert').dataset.alertId"))
    # the viewer's session, with the page's CSRF token: refused for the role
    as_viewer = await browser.evaluate(
        f"fetch('/api/v1/alerts/{alert_id}/ack', {{method: 'POST', headers: {{'Content-Type': 'application/json',"
        " 'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}, body: '{}'})"
        ".then(async r => [r.status, (await r.json()).error])"
    )
    assert as_viewer[0] == 403 and "viewer" in as_viewer[1]
    assert rows(site.db, "SELECT status FROM alerts WHERE id = ?", alert_id)[0][0] == "firing"
    await browser.screenshot(ARTIFACTS / "console-viewer.png", 1280, 800)
