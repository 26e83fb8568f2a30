"""The DingTalk robot channel against a local fake of DingTalk's robot API (amcompanion/fakes/dingtalk.py)."""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.dingtalk import BUSY, TOO_FAST, Answer, FakeDingTalk, action_card_problem
from amcompanion.receiver.channels.base import TRUNCATED, Response
from amcompanion.receiver.channels.dingtalk import BODY_LIMIT, DingTalkChannel, sign
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.timeutil import parse_iso
from tests.channel_support import (
    CONTACTS,
    assert_default_goldens,
    delivery,
    render_default,
    sample_alert,
)
from tests.receiver_support import rows

SECRET = "SECexample0000000000000000000000"
TOKEN = "robot-token"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Secrets come from the environment (a literal one is refused by the config reader)."""
    monkeypatch.setenv("DT_SECRET", SECRET)
    return "${DT_SECRET}"


async def start(aiohttp_server, fake: FakeDingTalk) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("/")).rstrip("/")


def settings(base_url: str, **extra: object) -> dict:
    return {
        "type": "dingtalk",
        "url": f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}",
        "base_url": base_url,
        **extra,
    }


async def send(channel: DingTalkChannel, message) -> Response:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def test_the_signature_matches_the_known_answer() -> None:
    assert sign(SECRET, 1700000000000) == "i8pgWM8/GsaLRBUdenpP9hFv8FQztqVjVUNnTLyJgGI="
    channel = DingTalkChannel(
        "dt", {"url": f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}", "secret": SECRET}
    )
    url = channel.request_url()
    assert url.startswith(f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&timestamp=")
    assert "&sign=" in url and "+" not in url.split("&sign=")[1] and "/" not in url.split("&sign=")[1]


async def test_a_signed_markdown_message_reaches_the_robot_with_the_mention(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN, secret=SECRET)
    channel = DingTalkChannel("dt", settings(await start(aiohttp_server, fake), secret=SECRET))
    message = render_default("dingtalk", recipient="alice")
    response = await send(channel, message)
    assert channel.classify(response).result == "ok"
    [received] = fake.received
    assert received.signature_ok is True
    assert received.answer == {"errcode": 0, "errmsg": "ok"}
    assert received.headers["Content-Type"] == "application/json; charset=utf-8"
    assert received.body == {
        "msgtype": "markdown",
        "markdown": {"title": "[CRITICAL] HighErrorRate", "text": message.text + "\n\n@13800000001"},
        "at": {"atMobiles": ["13800000001"], "atUserIds": [], "isAtAll": False},
    }
    assert "[Acknowledge](https://alerts.example.com/ack/" in received.body["markdown"]["text"]


async def test_a_group_message_mentions_nobody_and_a_userid_is_mentioned_in_the_text(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN)
    channel = DingTalkChannel("dt", settings(await start(aiohttp_server, fake), at_all=True))
    await send(channel, render_default("dingtalk", recipient=""))
    assert fake.received[0].body["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": True}
    # an ActionCard cannot @all: with `at_all` the group page is markdown, its text keeping the ack link
    assert fake.received[0].body["msgtype"] == "markdown"
    assert "[Acknowledge](https://alerts.example.com/ack/" in fake.received[0].body["markdown"]["text"]
    assert fake.received[0].signature_ok is None
    message = render_default("dingtalk", recipient="")
    with_userid = replace(message, recipient={"dingtalk_user_id": "u123", "phone": "+15550001"})
    body = channel.body(with_userid)
    assert body["at"]["atMobiles"] == ["+15550001"] and body["at"]["atUserIds"] == ["u123"]
    assert body["markdown"]["text"].endswith("\n\n@+15550001 @u123")


async def test_a_group_page_is_an_action_card_whose_button_is_the_ack_link(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN, secret=SECRET)
    base = await start(aiohttp_server, fake)
    channel = DingTalkChannel("dt", settings(base, secret=SECRET))
    message = render_default("dingtalk", recipient="")
    assert channel.classify(await send(channel, message)).result == "ok"
    assert fake.accepted == [
        {
            "msgtype": "actionCard",
            "actionCard": {
                "title": "[CRITICAL] HighErrorRate",
                "text": message.text,
                "btnOrientation": "0",
                "singleTitle": "Acknowledge",
                "singleURL": message.ack_url,
            },
        }
    ]
    assert "at" not in fake.accepted[0]  # DingTalk documents `at` for text and markdown only
    assert fake.shown()[0].text.endswith(f"[Acknowledge]({message.ack_url})")
    # a resolve notice has nothing to acknowledge, and `action_card: false` keeps group pages markdown
    await send(channel, render_default("dingtalk", kind="resolved", recipient=""))
    await send(DingTalkChannel("dt", settings(base, secret=SECRET, action_card=False)), message)
    assert [body["msgtype"] for body in fake.accepted] == ["actionCard", "markdown", "markdown"]


def test_the_fake_refuses_an_action_card_without_its_button() -> None:
    card = {"title": "t", "text": "x", "singleTitle": "Acknowledge", "singleURL": "https://a.example/ack/1"}
    assert action_card_problem(card) is None
    assert action_card_problem({**card, "singleURL": "javascript:alert(1)"}) is not None
    assert action_card_problem({"title": "t", "text": "x"}) is not None
    assert action_card_problem({"title": "t", "text": "x", "btns": [{"title": "A", "actionURL": "https://a"}]}) is None


@pytest.mark.parametrize(
    ("secret", "clock", "reason"),
    [
        ("SECwrong", time.time, "signature mismatch"),
        (SECRET, lambda: time.time() + 7200, "timestamp refused"),
    ],
)
async def test_a_bad_signature_or_timestamp_is_refused_and_permanent(  # type: ignore[no-untyped-def]
    aiohttp_server, secret: str, clock: Callable[[], float], reason: str
) -> None:
    fake = FakeDingTalk(TOKEN, secret=SECRET, now=clock)
    channel = DingTalkChannel("dt", settings(await start(aiohttp_server, fake), secret=secret))
    response = await send(channel, render_default("dingtalk"))
    assert response.status == 200  # DingTalk's errors come with HTTP 200
    outcome = channel.classify(response)
    assert outcome.result == "permanent" and reason in outcome.reason and "errcode 310000" in outcome.reason
    assert fake.accepted == []


async def test_the_keyword_rule_refuses_a_message_without_one_and_the_keywords_setting_adds_one(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN, keywords=("告警",))
    base = await start(aiohttp_server, fake)
    plain = DingTalkChannel("dt", settings(base))
    outcome = plain.classify(await send(plain, render_default("dingtalk")))
    assert outcome.result == "permanent" and "keyword rule" in outcome.reason
    channel = DingTalkChannel("dt", settings(base, keywords=["告警"]))
    assert channel.classify(await send(channel, render_default("dingtalk", recipient=""))).result == "ok"
    assert fake.accepted[0]["actionCard"]["text"].endswith("\n\n告警")


@pytest.mark.parametrize(
    ("status", "body", "result", "wait", "words"),
    [
        (200, b'{"errcode":0,"errmsg":"ok"}', "ok", None, ""),
        (200, b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}', "retry", 600.0, "rate"),
        (200, b'{"errcode":410100,"errmsg":"sending too fast"}', "retry", 600.0, "rate"),
        (
            200,
            b'{"errcode":300001,"errmsg":"\xe5\x8f\x91\xe9\x80\x81\xe9\xa2\x91\xe7\x8e\x87 too fast"}',
            "retry",
            600.0,
            "rate",
        ),
        (200, b'{"errcode":300001,"errmsg":"token is not exist"}', "permanent", None, "token"),
        (200, b'{"errcode":-1,"errmsg":"system busy"}', "retry", None, "busy"),
        (200, b'{"errcode":310000,"errmsg":"keywords not in content"}', "permanent", None, "keyword"),
        (200, b'{"errcode":310000,"errmsg":"ip 1.2.3.4 not in whitelist"}', "permanent", None, "allow-list"),
        (200, b'{"errcode":300005,"errmsg":"token is not exist"}', "permanent", None, "token"),
        (200, b'{"errcode":460101,"errmsg":"message too long, exceed 20000 bytes"}', "permanent", None, "too large"),
        (200, b'{"errcode":430102,"errmsg":"inappropriate text"}', "permanent", None, "rejected"),
        (200, b"<html>proxy</html>", "retry", None, "unexpected"),
        (502, b"bad gateway", "retry", None, "HTTP 502"),
        (429, b"slow down", "retry", None, "HTTP 429"),
        (404, b"not found", "permanent", None, "HTTP 404"),
    ],
)
def test_classify_reads_the_errcode(status: int, body: bytes, result: str, wait: float | None, words: str) -> None:
    outcome = DingTalkChannel("dt", {"url": "https://x/robot/send?access_token=t"}).classify(Response(status, {}, body))
    assert (outcome.result, outcome.retry_after) == (result, wait)
    assert words in outcome.reason


async def test_errors_are_retried_until_the_robot_accepts(
    tmp_path: Path, aiohttp_server, aiohttp_client, secret_env: str
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN, secret=SECRET)
    fake.script = [Answer("busy", status=503), Answer(dict(BUSY))]
    async with delivery(
        tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), secret=secret_env), to=["alice"]
    ) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 3)]
    assert len(fake.accepted) == 1 and fake.received[-1].signature_ok


async def test_a_timeout_is_retried(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN)
    fake.script = [Answer({"errcode": 0, "errmsg": "ok"}, delay=0.5)]
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), timeout="100ms")) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]


async def test_a_throttled_robot_is_retried_after_ten_minutes(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN)
    fake.script = [Answer(dict(TOO_FAST))]
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake))) as run:
        await run.fire(1)
        for _ in range(200):
            [note] = rows(run.db, "SELECT * FROM notifications")
            if note["attempts"] == 1:
                break
            await asyncio.sleep(0.01)
        assert note["status"] == "queued" and "rate limited" in note["error"]
        wait = parse_iso(note["next_attempt_at"]) - run.clock.now()
        assert timedelta(seconds=599) <= wait <= timedelta(seconds=600)
        await run.clock.advance(600)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]


async def test_a_wrong_secret_fails_at_once_with_the_reason(
    tmp_path: Path, aiohttp_server, aiohttp_client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DT_SECRET", "SECnot-the-robots-secret")
    fake = FakeDingTalk(TOKEN, secret=SECRET)
    async with delivery(
        tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), secret="${DT_SECRET}")
    ) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert "signature mismatch" in notes[0]["error"] and "310000" in notes[0]["error"]
    assert fake.received[0].signature_ok is False


@pytest.mark.parametrize("count", [20, 25])
async def test_a_burst_within_the_rate_limit_is_never_refused(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client, secret_env: str, count: int
) -> None:
    fake = FakeDingTalk(TOKEN, secret=SECRET)
    channel = settings(await start(aiohttp_server, fake), secret=secret_env, rate_limit="20/min")
    async with delivery(tmp_path, aiohttp_client, channel, to=["alice"]) as run:
        await run.fire(count)
        notes = await run.settled()
    assert fake.rejected == []
    assert len(notes) == count and all(n["status"] == "sent" for n in notes)
    if count == 20:
        assert len(fake.accepted) == 20
    else:  # more than the limit lets through at once: one digest
        assert len(fake.accepted) < 20
        digest = fake.accepted[0]["markdown"]
        assert digest["title"] == "[FIRING] 25 alerts" and digest["text"].count("\n- **") == 25


def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("dingtalk")


@pytest.mark.parametrize("filler", ["告警详情" * 3000, '"\n\\' * 9000])
async def test_an_oversized_alert_is_cut_to_the_body_limit(aiohttp_server, filler: str) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDingTalk(TOKEN, secret=SECRET)
    channel = DingTalkChannel("dt", settings(await start(aiohttp_server, fake), secret=SECRET))
    alert = sample_alert(annotations={"summary": "huge", "description": filler})
    renderer = Renderer({"dt": {"type": "dingtalk"}}, None)
    message = renderer.render("dt", "firing", [alert], "alice", CONTACTS["alice"], "https://ack")
    assert channel.classify(await send(channel, message)).result == "ok"
    text = fake.accepted[0]["markdown"]["text"]
    assert text.endswith(TRUNCATED + "\n\n[Acknowledge](https://ack)\n\n@13800000001")  # the ack link survives
    size = len(json.dumps(fake.accepted[0], ensure_ascii=False, separators=(",", ":")).encode())
    assert BODY_LIMIT - 100 < size <= BODY_LIMIT  # cut close to the limit, not far below it
