"""Pages always get out: poison messages, Retry-After past the give-up, outages and recovery, concurrency,
order, and a failed page moving the escalation on. The receiver runs in-process on a virtual clock; every
channel is a real server on loopback (the fakes of amcompanion.fakes, or a scripted webhook endpoint)."""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from amcompanion.demo.stand_ins import StandIn, base_url, place, stand_in
from amcompanion.fakes.discord import WEBHOOK_ID, WEBHOOK_TOKEN
from amcompanion.fakes.slack import HOOK
from amcompanion.fakes.telegram import GROUP_CHAT
from amcompanion.fakes.telegram import TOKEN as TELEGRAM_TOKEN
from amcompanion.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock, parse_iso
from tests.channel_support import CONTACTS
from tests.receiver_support import AUTH, TOKEN, alert_payload, eventually, rows

START = parse_iso("2026-11-22T22:47:30+00:00")
ENVIRONMENT = {
    "DINGTALK_SECRET": "SECtest-dingtalk-secret",
    "FEISHU_SECRET": "test-feishu-secret",
    "TELEGRAM_TOKEN": TELEGRAM_TOKEN,
    "TWILIO_TOKEN": AUTH_TOKEN,
}
# Every channel type but the generic webhook, with the settings its fake expects; `to` for the personal ones.
CHANNELS: dict[str, dict] = {
    "ops-dingtalk": {
        "type": "dingtalk",
        "url": "https://oapi.dingtalk.com/robot/send?access_token=test-robot",
        "secret": "${DINGTALK_SECRET}",
    },
    "ops-wecom": {"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test-wecom-key"},
    "ops-feishu": {
        "type": "feishu",
        "url": "https://open.feishu.cn/open-apis/bot/v2/hook/test-feishu-hook",
        "secret": "${FEISHU_SECRET}",
    },
    "ops-slack": {"type": "slack", "url": f"https://hooks.slack.com/services/{HOOK}"},
    "ops-discord": {"type": "discord", "url": f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"},
    "ops-telegram": {"type": "telegram", "bot_token": "${TELEGRAM_TOKEN}", "chat_id": GROUP_CHAT},
    "sms": {"type": "twilio_sms", "account_sid": ACCOUNT_SID, "auth_token": "${TWILIO_TOKEN}", "from": "+15550000000"},
    "voice": {
        "type": "twilio_voice",
        "account_sid": ACCOUNT_SID,
        "auth_token": "${TWILIO_TOKEN}",
        "from": "+15550000000",
    },
    "mail": {"type": "email", "host": "smtp.example.com", "from": "alerts@example.com", "starttls": False},
}
PERSONAL = ("sms", "voice", "mail")


@dataclass
class Endpoint:
    """A webhook endpoint on loopback that answers as `answer` says, counting requests in flight at once."""

    answer: object = None  # callable(body) -> (status, headers, text), or None for 200
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each request, monotonic
    in_flight: int = 0
    most_in_flight: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            body = await request.json()
            self.received.append(body)
            if self.delay:
                await asyncio.sleep(self.delay)
            status, headers, text = self.answer(body) if callable(self.answer) else (200, {}, "ok")
            return web.Response(status=status, headers=headers, text=text)
        finally:
            self.in_flight -= 1
            self.spans.append((started, time.monotonic()))


@dataclass
class Rig:
    client: TestClient
    receiver: Receiver
    clock: ManualClock
    db: Path | str
    serial: int = 0

    async def fire(self, *alerts: dict, status: str = "firing") -> list[int]:
        """One notification with these alerts (each a dict of alert fields to set); their history ids."""
        body = alert_payload(status, "unused")
        template = body["alerts"][0]
        body["alerts"] = []
        for changes in alerts or ({},):
            self.serial += 1
            alert = json.loads(json.dumps(template))
            alert["fingerprint"] = f"{self.serial:016x}"
            labels = changes.get("labels", {})
            alert["labels"] = {**alert["labels"], "instance": f"web-{self.serial}", **labels}
            alert["annotations"] = {**alert["annotations"], **changes.get("annotations", {})}
            alert["startsAt"] = changes.get("startsAt", alert["startsAt"])
            body["alerts"].append(alert)
        response = await self.client.post("/webhook/oncall", data=json.dumps(body), headers=AUTH)
        assert response.status == 200, await response.text()
        fingerprints = [a["fingerprint"] for a in body["alerts"]]
        marks = ",".join("?" * len(fingerprints))
        return [r["id"] for r in rows(self.db, f"SELECT id FROM alerts WHERE fingerprint IN ({marks})", *fingerprints)]

    def notifications(self, where: str = "TRUE", *args: object) -> list[dict]:
        return [dict(r) for r in rows(self.db, f"SELECT * FROM notifications WHERE {where} ORDER BY id", *args)]

    async def run_until(self, check, virtual_s: float, step_s: float = 1.0, what: str = "condition") -> float:  # type: ignore[no-untyped-def]
        """Move the clock `step_s` at a time until `check()` holds; the virtual seconds it took."""
        waited = 0.0
        deadline = time.monotonic() + 30
        while not check():
            if waited > virtual_s or time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {virtual_s} virtual seconds")
            await self.clock.advance(step_s)
            waited += step_s
            await self.quiet()
        return waited

    async def quiet(self) -> None:
        """Let what the clock's move set off run: the lanes look, and the tries they start get their answers
        (virtual time stands still meanwhile, however slow this machine is)."""
        await asyncio.sleep(0.02)
        deadline = time.monotonic() + 5
        while self.receiver.outbox.sending and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def settle(self) -> None:
        """Until nothing is queued or being sent (each step moves the clock by a second)."""
        await self.run_until(
            lambda: not self.notifications("status = 'queued'") and not self.receiver.outbox.sending,
            3600,
            what="empty outbox",
        )


@asynccontextmanager
async def rig(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    channels: dict[str, dict],
    policy: dict | None = None,
    give_up_after_s: float = 3600,
    db: Path | str | None = None,
) -> AsyncIterator[Rig]:
    """A receiver whose policy `oncall` pages every channel at once (unless `policy` says otherwise)."""
    steps = [{"after": "0s", "notify": [_target(name) for name in channels]}]
    config = {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1", "external_url": "https://alerts.example.com"},
        "severities": ["info", "warning", "critical"],
        "contacts": CONTACTS,
        "channels": channels,
        "escalations": {"oncall": policy or {"steps": steps}},
    }
    path = tmp_path / "receiver.yaml"
    path.write_text(json.dumps(config, indent=2))
    clock = ManualClock(START)
    db = tmp_path / "history.db" if db is None else db
    settings = Settings(str(db), TOKEN, give_up_after=timedelta(seconds=give_up_after_s))
    receiver = Receiver(load_receiver_config(path, ENVIRONMENT), settings, clock)
    client = await aiohttp_client(make_app(receiver))
    yield Rig(client, receiver, clock, db)


def _target(name: str) -> dict:
    return {"channel": name, "to": ["alice"]} if name in PERSONAL else {"channel": name}


async def endpoint_url(aiohttp_server, endpoint: Endpoint) -> str:  # type: ignore[no-untyped-def]
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/hook", endpoint.handle)
    return str((await aiohttp_server(app)).make_url("/hook"))


@asynccontextmanager
async def every_channel(tmp_path: Path) -> AsyncIterator[tuple[dict[str, dict], list[StandIn]]]:
    """Every channel type's settings pointing at its fake, started."""
    settings, stands = {}, []
    for name, channel in CHANNELS.items():
        filled = {k: ENVIRONMENT.get(str(v)[2:-1], v) if str(v).startswith("${") else v for k, v in channel.items()}
        for attempt in range(5):  # the SMTP fake binds its own port, which another test process may take first
            port, listening = place(channel["type"])
            stand = stand_in(name, filled, CONTACTS, port, listening)
            try:
                await stand.start()
                break
            except OSError:
                if attempt == 4:
                    raise
        settings[name] = {**channel, "base_url": base_url(channel["type"], port)}
        stands.append(stand)
    try:
        yield settings, stands
    finally:
        for stand in stands:
            await stand.stop()


# -- poison messages ------------------------------------------------------------------------------------
POISON = {
    "a lone surrogate": {"annotations": {"summary": "disk \ud800 full", "description": "bad \udfff bytes"}},
    "NUL and control characters": {"annotations": {"summary": "disk\x00full\x07", "description": "a\x1bb\x00c"}},
    "a 3 MB description": {"annotations": {"description": "x" * 3_000_000}},
    "a 100,000-character alertname": {"labels": {"alertname": "A" * 100_000}},
}


@pytest.mark.parametrize("poison", POISON)
async def test_a_poison_message_does_not_block_any_channel(
    tmp_path: Path, history_db: Path | str, aiohttp_client, poison: str
) -> None:  # type: ignore[no-untyped-def]
    async with (
        every_channel(tmp_path) as (settings, stands),
        rig(tmp_path, aiohttp_client, settings, db=history_db) as r,
    ):
        (poisoned,) = await r.fire(POISON[poison])
        (normal,) = await r.fire({})
        await r.run_until(
            lambda: len(r.notifications("status IN ('sent', 'failed')")) == 2 * len(CHANNELS),
            virtual_s=120,
            what="every message sent or failed",
        )
        by_alert = sorted((row["alert_id"], row["channel"]) for row in r.notifications())
        assert by_alert == sorted((alert, name) for alert in (poisoned, normal) for name in CHANNELS)
        for row in r.notifications():
            assert row["status"] == "sent", (row["channel"], row["alert_id"], row["error"])
            assert row["attempts"] == 1, (row["channel"], row["error"])
        for stand in stands:
            assert len(stand.shown()) == 2, stand.channel
        texts = " ".join(shown.text for stand in stands for shown in stand.shown())
        assert "\ud800" not in texts and "\x00" not in texts
        if poison == "a lone surrogate":
            assert "disk \ufffd full" in texts  # replaced, not dropped


async def test_a_template_that_fails_on_one_alert_sends_the_default_and_says_why_once(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    (tmp_path / "ratio.j2").write_text("{{ alert.alertname }}: {{ 100 // (alert.labels.replicas|int) }}% per replica")
    hook = Endpoint()
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook), "template": "ratio.j2"}}
    caplog.set_level(logging.ERROR, logger="amcompanion.outbox")
    async with rig(tmp_path, aiohttp_client, channels, db=history_db) as r:
        await r.fire(*({"labels": {"replicas": "0"}} for _ in range(3)))
        await r.fire({"labels": {"replicas": "4"}})
        await r.settle()
        rows_ = r.notifications()
        assert [row["status"] for row in rows_] == ["sent"] * 4
        assert all("ZeroDivisionError" in row["template_error"] for row in rows_[:3])
        assert rows_[3]["template_error"] is None
        texts = [body["text"] for body in hook.received]
        assert all(text.startswith("[CRITICAL] DemoGaugeHigh\n") for text in texts[:3])  # the default template
        assert texts[3] == "DemoGaugeHigh: 25% per replica"
        metrics = await (await r.client.get("/metrics")).text()
        assert 'amcompanion_template_errors_total{channel="hook"} 3.0' in metrics
    logged = [rec for rec in caplog.records if "ratio.j2 failed" in rec.getMessage()]
    assert len(logged) == 1  # once per template and error, not once per message


# -- Retry-After, give-up -------------------------------------------------------------------------------
@pytest.mark.parametrize("last_try_succeeds", [True, False])
async def test_a_retry_after_beyond_the_give_up_gets_one_last_try_at_the_give_up_time(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,
    last_try_succeeds: bool,  # type: ignore[no-untyped-def]
) -> None:
    answers = [(429, {"Retry-After": "7200"}, "slow down")]
    hook = Endpoint(
        answer=lambda body: answers.pop(0) if answers else ((200, {}, "ok") if last_try_succeeds else (503, {}, "busy"))
    )
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}}
    async with rig(tmp_path, aiohttp_client, channels, give_up_after_s=600, db=history_db) as r:
        await r.fire({})
        await r.run_until(lambda: r.notifications("attempts = 1"), 5, what="the first try")
        (row,) = r.notifications()
        assert row["status"] == "queued" and row["next_attempt_at"] == row["give_up_at"]
        await r.clock.advance(590)
        await r.quiet()
        assert len(hook.received) == 1  # the service asked for 2 hours: nothing before the give-up time
        await r.run_until(lambda: r.notifications("status != 'queued'"), 20, what="the last try")
        (row,) = r.notifications()
        assert len(hook.received) == 2 and row["attempts"] == 2
        if last_try_succeeds:
            assert row["status"] == "sent"
        else:
            assert row["status"] == "failed" and row["error"] == "gave up after 2 tries: HTTP 503: busy"


# -- outages and recovery -------------------------------------------------------------------------------
@pytest.mark.parametrize("outage_s", [60, 200])
async def test_after_an_outage_every_queued_page_goes_within_seconds_of_recovery(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,
    outage_s: int,  # type: ignore[no-untyped-def]
) -> None:
    down = {"until": START + timedelta(seconds=outage_s)}
    clock_box: dict = {}
    hook = Endpoint(
        answer=lambda body: (503, {}, "down") if clock_box["clock"].now() < down["until"] else (200, {}, "ok")
    )
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}}
    async with rig(tmp_path, aiohttp_client, channels, db=history_db) as r:
        clock_box["clock"] = r.clock
        await r.fire(*({} for _ in range(5)))  # five pages fail at once
        await r.run_until(lambda: len(hook.received) >= 5, 5, step_s=0.5, what="the first tries")
        await r.fire(*({} for _ in range(5)))  # five more while the channel is down: held, not hammering it
        await r.run_until(lambda: r.clock.now() >= down["until"], outage_s, step_s=0.5, what="the end of the outage")
        assert len(hook.received) <= 5 + outage_s / 4 + 3  # one probe at a time, at most 4 s apart, not every row
        await r.run_until(lambda: len(r.notifications("status = 'sent'")) == 10, 30, step_s=0.5, what="recovery")
        sent_at = max(parse_iso(row["sent_at"]) for row in r.notifications())
        assert (sent_at - down["until"]).total_seconds() <= 5, sent_at
        metrics = await (await r.client.get("/metrics")).text()
        assert 'amcompanion_channel_up{channel="hook"} 1.0' in metrics


async def test_a_failing_channel_is_down_in_the_metrics_until_it_delivers(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    state = {"down": True}
    hook = Endpoint(answer=lambda body: (502, {}, "bad gateway") if state["down"] else (200, {}, "ok"))
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}}
    async with rig(tmp_path, aiohttp_client, channels, db=history_db) as r:
        await r.fire({})
        await r.run_until(lambda: hook.received, 5, what="the first try")
        await eventually(lambda: r.notifications("attempts = 1"), what="the try recorded")
        metrics = await (await r.client.get("/metrics")).text()
        assert 'amcompanion_channel_up{channel="hook"} 0.0' in metrics
        state["down"] = False
        await r.settle()
        metrics = await (await r.client.get("/metrics")).text()
        assert 'amcompanion_channel_up{channel="hook"} 1.0' in metrics


# -- concurrency and order ------------------------------------------------------------------------------
@pytest.mark.parametrize(("setting", "expected"), [(None, 8), (3, 3)])
async def test_messages_to_a_slow_channel_go_out_concurrently_up_to_the_limit(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,
    setting: int | None,
    expected: int,  # type: ignore[no-untyped-def]
) -> None:
    hook = Endpoint(delay=0.1)
    channel = {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}
    if setting:
        channel["max_in_flight"] = setting
    async with rig(tmp_path, aiohttp_client, {"hook": channel}, db=history_db) as r:
        await r.fire(*({} for _ in range(24)))
        await eventually(lambda: len(r.notifications("status = 'sent'")) == 24, timeout=10, what="24 pages")
    assert hook.most_in_flight == expected


async def test_a_resolve_notice_never_overtakes_the_page_it_follows(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    hook = Endpoint(delay=0.3)
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}}
    policy = {"steps": [{"after": "0s", "notify": ["hook"]}], "on_resolve": "notify_previous"}
    async with rig(tmp_path, aiohttp_client, channels, policy, db=history_db) as r:
        body = alert_payload("firing", "abcdef0123456789")
        assert (await r.client.post("/webhook/oncall", json=body, headers=AUTH)).status == 200
        await eventually(lambda: hook.in_flight == 1, what="the page on its way")
        # resolved while the page is still being sent: the notice goes once the page is recorded as sent
        resolved = alert_payload("resolved", "abcdef0123456789")
        assert (await r.client.post("/webhook/oncall", json=resolved, headers=AUTH)).status == 200
        await eventually(lambda: len(hook.received) == 2 and hook.in_flight == 0, what="the resolve notice")
    assert [m["kind"] for m in hook.received] == ["firing", "resolved"]
    assert hook.spans[1][0] >= hook.spans[0][1]  # the notice started after the page was answered


# -- a failed page moves the escalation on ----------------------------------------------------------------
@pytest.mark.parametrize("on_failure", ["next_step", "wait"])
async def test_a_page_that_fails_for_good_moves_the_escalation_on(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,
    on_failure: str,  # type: ignore[no-untyped-def]
) -> None:
    broken, backup = Endpoint(answer=lambda body: (401, {}, "token revoked")), Endpoint()
    channels = {
        "broken": {"type": "webhook", "url": await endpoint_url(aiohttp_server, broken)},
        "backup": {"type": "webhook", "url": await endpoint_url(aiohttp_server, backup)},
    }
    policy = {
        "steps": [{"after": "0s", "notify": ["broken"]}, {"after": "15m", "notify": ["backup"]}],
        "on_failure": on_failure,
    }
    async with rig(tmp_path, aiohttp_client, channels, policy, db=history_db) as r:
        (alert_id,) = await r.fire({})
        await r.run_until(lambda: r.notifications("status = 'failed'"), 5, what="the failed page")
        if on_failure == "next_step":
            await r.run_until(lambda: backup.received, 5, what="step 2 at once")
            steps = rows(r.db, "SELECT step, reason FROM escalations ORDER BY id")
            assert [tuple(s) for s in steps] == [(1, "first notice"), (2, "page failed")]
        else:
            await r.clock.advance(60)
            await r.quiet()
            assert not backup.received
            await r.run_until(lambda: backup.received, 15 * 60, step_s=60, what="step 2 at its deadline")
        listing = await (await r.client.get("/api/v1/alerts", headers=AUTH)).json()
        (alert,) = listing["alerts"]
        assert alert["id"] == alert_id
        assert alert["failed"] == [{"channel": "broken", "recipient": "", "error": "HTTP 401: token revoked"}]
        assert alert["paged"] == [{"channel": "backup", "recipient": ""}]


async def test_a_page_of_a_step_already_left_behind_does_not_skip_a_step(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    """Step 1's page keeps failing past step 2's deadline; when it gives up, step 3 stays on its clock."""
    hook = Endpoint(answer=lambda body: (503, {}, "busy") if body["recipient"] == "" else (200, {}, "ok"))
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}}
    policy = {
        "steps": [
            {"after": "0s", "notify": ["hook"]},
            {"after": "5m", "notify": [{"channel": "hook", "to": ["alice"]}]},
            {"after": "60m", "notify": [{"channel": "hook", "to": ["alice"]}]},
        ]
    }
    async with rig(tmp_path, aiohttp_client, channels, policy, give_up_after_s=600, db=history_db) as r:
        await r.fire({})
        await r.run_until(lambda: r.notifications("status = 'failed'"), 700, step_s=10, what="the give-up")
        steps = [tuple(s) for s in rows(r.db, "SELECT step, reason FROM escalations ORDER BY id")]
        assert steps == [(1, "first notice"), (2, "deadline")]


async def test_a_failed_last_step_does_not_spend_its_repetitions_at_once(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    broken = Endpoint(answer=lambda body: (400, {}, "bad request"))
    channels = {"broken": {"type": "webhook", "url": await endpoint_url(aiohttp_server, broken)}}
    policy = {"steps": [{"after": "0s", "notify": ["broken"]}], "repeat": {"every": "30m", "times": 3}}
    async with rig(tmp_path, aiohttp_client, channels, policy, db=history_db) as r:
        await r.fire({})
        await r.run_until(lambda: r.notifications("status = 'failed'"), 5, what="the failed page")
        await r.quiet()
        (alert,) = rows(r.db, "SELECT escalation_level, repeats, next_step_at FROM alerts")
        assert (alert["escalation_level"], alert["repeats"]) == (1, 0)
        assert alert["next_step_at"] == "2026-11-22T23:17:30.000000Z"  # the first repetition, 30m on
        assert len(broken.received) == 1


async def test_a_reload_whose_template_does_not_compile_keeps_the_running_config(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    from amcompanion.receiver.messages import TemplateProblem

    hook = Endpoint()
    channels = {"hook": {"type": "webhook", "url": await endpoint_url(aiohttp_server, hook)}}
    async with rig(tmp_path, aiohttp_client, channels, db=history_db) as r:
        (tmp_path / "broken.j2").write_text("{% for %}")
        data = json.loads((tmp_path / "receiver.yaml").read_text())
        data["channels"]["hook"]["template"] = "broken.j2"
        (tmp_path / "receiver.yaml").write_text(json.dumps(data))
        with pytest.raises(TemplateProblem, match=r"channel hook: template broken\.j2:1"):
            r.receiver.reload(load_receiver_config(tmp_path / "receiver.yaml", ENVIRONMENT))
        await r.fire({})
        await r.settle()
        assert [row["status"] for row in r.notifications()] == ["sent"]  # still the running config's default
        assert hook.received[0]["text"].startswith("[CRITICAL] DemoGaugeHigh")


async def test_a_page_that_gives_up_moves_the_escalation_on_at_its_give_up_time(
    tmp_path: Path,
    history_db: Path | str,
    aiohttp_server,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    down, backup = Endpoint(answer=lambda body: (503, {}, "unavailable")), Endpoint()
    channels = {
        "down": {"type": "webhook", "url": await endpoint_url(aiohttp_server, down)},
        "backup": {"type": "webhook", "url": await endpoint_url(aiohttp_server, backup)},
    }
    policy = {"steps": [{"after": "0s", "notify": ["down"]}, {"after": "15m", "notify": ["backup"]}]}
    async with rig(tmp_path, aiohttp_client, channels, policy, give_up_after_s=60, db=history_db) as r:
        await r.fire({})
        waited = await r.run_until(lambda: backup.received, 120, what="step 2 after the give-up")
        assert 60 <= waited <= 65  # at the give-up time, not at step 2's deadline (15m)
        (failed,) = r.notifications("status = 'failed'")
        assert failed["error"].startswith("gave up after ") and failed["error"].endswith("HTTP 503: unavailable")
        steps = [tuple(s) for s in rows(r.db, "SELECT step, reason FROM escalations ORDER BY id")]
        assert steps == [(1, "first notice"), (2, "page failed")]
        metrics = await (await r.client.get("/metrics")).text()
        assert 'amcompanion_notifications_total{channel="down",outcome="failed"} 1.0' in metrics
        assert 'amcompanion_escalation_steps_total{reason="page failed"} 1.0' in metrics
