"""Acknowledging from the chat, end to end: a real receiver pages a chat app's fake, the fake presses the message's
button as its service would (a signed callback to the receiver), the ack is in the history under the person who
pressed, `via: chat`, and the message is updated in place. Unknown pressers and viewers are refused in the chat."""

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from amcompanion.fakes.feishu_app import APP_ID, FakeFeishuApp, FeishuUser
from amcompanion.fakes.slack_app import BOT_TOKEN, CHANNEL, FakeSlackApp
from amcompanion.receiver.config import load_receiver_config
from tests.channel_support import CONTACTS, Delivery, delivery
from tests.receiver_support import rows

SLACK_SECRET = "5c0ffee5ecre7f0rs1gn1ngs1ack0000"
FEISHU = {"FEISHU_APP_SECRET": "f3ishuS3cr3t", "FEISHU_ENCRYPT_KEY": "k3y0fTh3App", "FEISHU_TOKEN": "v3rifyM3"}
# alice is known to Feishu by her user_id only: the press, which names her open_id too, must still find her
FEISHU_ALICE = FeishuUser("ou_a11ce0000000000000000000000000", "a11ce", "alice")
PEOPLE = {
    "alice": {**CONTACTS["alice"], "name": "Alice Liu", "slack_user_id": "U0ALICE001", "feishu_user_id": "a11ce"},
    "vera": {"email": "vera@example.com", "slack_user_id": "U0VERA0001", "role": "viewer"},
}


@pytest.fixture(autouse=True)
def secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    for name, value in FEISHU.items():
        monkeypatch.setenv(name, value)


async def slack(aiohttp_server) -> tuple[FakeSlackApp, dict]:  # type: ignore[no-untyped-def]
    users = {c["slack_user_id"]: name for name, c in PEOPLE.items()} | {"U0STRANGER": "mallory"}
    fake = FakeSlackApp(users=users)
    server: TestServer = await aiohttp_server(fake.app())
    settings = {
        "type": "slack_app",
        "bot_token": "${SLACK_BOT_TOKEN}",
        "signing_secret": "${SLACK_SIGNING_SECRET}",
        "channel": CHANNEL,
        "base_url": str(server.make_url("")).rstrip("/"),
    }
    return fake, settings


async def paged(run: Delivery, fake: FakeSlackApp) -> str:
    """Fire one alert and wait for its message: the message's ts."""
    await run.fire()
    await run.settled()
    (ts,) = fake.messages
    assert "[Acknowledge] [Resolve]" in fake.shown()[0].text
    return ts


async def press(run: Delivery, fake: FakeSlackApp, ts: str, user: str, action: str, secret: str = SLACK_SECRET):  # type: ignore[no-untyped-def]
    url = str(run.client.make_url("/slack/interactions"))
    return await fake.click(run.client.session, url, ts, user, action, secret, at=run.clock.now())


async def until(condition, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """The message update goes after the answer to Slack: wait for it, boundedly."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.02)


def the_alert(run: Delivery) -> dict:
    return dict(rows(run.db, "SELECT id, status, acked_by, resolved_by FROM alerts")[0])


async def test_acknowledge_in_slack_is_recorded_under_the_presser_and_updates_the_message(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    fake, channel = await slack(aiohttp_server)
    async with delivery(tmp_path, aiohttp_client, channel, contacts=PEOPLE, db=history_db) as run:
        ts = await paged(run, fake)
        status, _ = await press(run, fake, ts, "U0ALICE001", "amcompanion_ack")
        assert status == 200
        assert the_alert(run)["status"] == "acknowledged" and the_alert(run)["acked_by"] == "alice"
        assert [dict(r) for r in rows(run.db, "SELECT by, via FROM acks")] == [{"by": "alice", "via": "chat"}]
        await until(lambda: "Acknowledged by Alice Liu" in fake.shown()[0].text, "the message update")
    shown = fake.shown()[0].text
    assert "[Acknowledge]" not in shown and "(via Slack)" in shown
    (acked,) = rows(run.db, "SELECT data FROM events WHERE type = 'alert.acknowledged'")
    assert json.loads(acked["data"])["via"] == "chat" and json.loads(acked["data"])["by"] == "alice"


async def test_a_stranger_or_a_viewer_is_told_why_and_nothing_is_acknowledged(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    fake, channel = await slack(aiohttp_server)
    async with delivery(tmp_path, aiohttp_client, channel, contacts=PEOPLE, db=history_db) as run:
        ts = await paged(run, fake)
        assert (await press(run, fake, ts, "U0STRANGER", "amcompanion_ack"))[0] == 200
        assert (await press(run, fake, ts, "U0VERA0001", "amcompanion_resolve"))[0] == 200
        await until(lambda: len(fake.ephemeral) == 2, "both refusals")
        assert the_alert(run)["status"] == "firing"
        assert rows(run.db, "SELECT COUNT(*) FROM acks")[0][0] == 0
    stranger, viewer = fake.ephemeral
    assert (stranger.user, viewer.user) == ("U0STRANGER", "U0VERA0001")
    assert "mallory is not a contact of amcompanion" in stranger.text and "slack_user_id: U0STRANGER" in stranger.text
    assert "may view alerts but not act on them" in viewer.text
    assert "[Acknowledge] [Resolve]" in fake.shown()[0].text  # the message itself is unchanged


async def test_resolve_in_slack_resolves_as_the_presser(
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    fake, channel = await slack(aiohttp_server)
    async with delivery(tmp_path, aiohttp_client, channel, contacts=PEOPLE, db=history_db) as run:
        ts = await paged(run, fake)
        assert (await press(run, fake, ts, "U0ALICE001", "amcompanion_resolve"))[0] == 200
        alert = the_alert(run)
        assert (alert["status"], alert["resolved_by"]) == ("resolved", "alice")
        await until(lambda: "Resolved by Alice Liu" in fake.shown()[0].text, "the message update")


async def test_a_press_not_signed_with_the_apps_secret_is_refused_and_acts_on_nothing(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    fake, channel = await slack(aiohttp_server)
    async with delivery(tmp_path, aiohttp_client, channel, contacts=PEOPLE, db=history_db) as run:
        ts = await paged(run, fake)
        status, body = await press(run, fake, ts, "U0ALICE001", "amcompanion_ack", secret="not-the-apps-secret")
        assert status == 401 and "not signed by any chat app" in body
        unsigned = await run.client.post("/slack/interactions", data={"payload": "{}"})
        assert unsigned.status == 401
        feishu = await run.client.post("/feishu/card", json={"challenge": "x", "type": "url_verification"})
        assert feishu.status == 401  # no Feishu app is configured: the call is nobody's
        assert the_alert(run)["status"] == "firing"
    assert fake.ephemeral == [] and "[Acknowledge] [Resolve]" in fake.shown()[0].text


async def test_acknowledge_on_a_feishu_card_is_recorded_under_the_presser_and_the_card_says_so(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeFeishuApp(
        app_secret=FEISHU["FEISHU_APP_SECRET"],
        encrypt_key=FEISHU["FEISHU_ENCRYPT_KEY"],
        verification_token=FEISHU["FEISHU_TOKEN"],
        users=[FEISHU_ALICE],
        chats={"oc_ops"},
    )
    server: TestServer = await aiohttp_server(fake.app())
    channel = {
        "type": "feishu_app",
        "app_id": APP_ID,
        "app_secret": "${FEISHU_APP_SECRET}",
        "encrypt_key": "${FEISHU_ENCRYPT_KEY}",
        "verification_token": "${FEISHU_TOKEN}",
        "chat_id": "oc_ops",
        "base_url": str(server.make_url("")).rstrip("/"),
    }
    async with delivery(tmp_path, aiohttp_client, channel, contacts=PEOPLE, db=history_db) as run:
        await run.fire()
        await run.settled()
        (message_id,) = fake.pressable()
        url = str(run.client.make_url("/feishu/card"))
        status, answer = await fake.click(
            run.client.session, url, message_id, FEISHU_ALICE.open_id, at=run.clock.now().timestamp()
        )
        assert status == 200 and answer["toast"]["type"] == "success", answer
        assert the_alert(run)["acked_by"] == "alice"
        assert [dict(r) for r in rows(run.db, "SELECT by, via FROM acks")] == [{"by": "alice", "via": "chat"}]
    press_made = fake.presses[-1]
    assert press_made.applied and press_made.seconds < 3  # Feishu takes the card only if answered within 3 s
    assert fake.pressable() == [] and "Acknowledged by Alice Liu" in fake.shown()[0].text


def test_the_older_contact_field_names_are_read_as_the_new_ones(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yaml"
    config.write_text(
        "version: 1\n"
        "receiver: {url: 'http://127.0.0.1:1'}\n"
        "contacts:\n  zhang: {wecom_userid: zhangsan, dingtalk_userid: '0421'}\n"
        "channels: {hook: {type: webhook, url: 'http://127.0.0.1:1/hook'}}\n"
        "escalations: {p: {steps: [{notify: [hook]}]}}\n"
    )
    contacts = load_receiver_config(config).contacts
    assert contacts["zhang"] == {"wecom_user_id": "zhangsan", "dingtalk_user_id": "0421"}
