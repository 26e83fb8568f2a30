"""The WeCom group robot channel against a local fake of WeCom's robot API (amcompanion/fakes/wecom.py)."""

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.wecom import BUSY, RATE_LIMITED, Answer, FakeWeCom
from amcompanion.receiver.channels.base import TRUNCATED, Message, Response
from amcompanion.receiver.channels.wecom import WeComChannel, plain
from amcompanion.receiver.messages import Renderer
from tests.channel_support import assert_default_goldens, delivery, render_default, sample_alert

KEY = "693a91f6-0000-4bc4-97a0-0ec2f1fa5aaa"


async def start(aiohttp_server, fake: FakeWeCom) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("/")).rstrip("/")


def settings(base_url: str, key: str = KEY, **extra: object) -> dict:
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"
    return {"type": "wecom", "url": url, "base_url": base_url, **extra}


async def send(channel: WeComChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


async def test_a_markdown_message_mentions_the_recipient_by_userid(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeCom(KEY)
    channel = WeComChannel("wc", settings(await start(aiohttp_server, fake)))
    message = replace(render_default("wecom", recipient=""), recipient={"wecom_user_id": "zhangsan", "phone": "+861"})
    response = await send(channel, message)
    assert response.status == 200 and channel.classify(response).result == "ok"
    [received] = fake.received
    assert received.answer == {"errcode": 0, "errmsg": "ok"}
    assert received.query == {"key": KEY}
    assert received.body == {"msgtype": "markdown", "markdown": {"content": message.text + "\n<@zhangsan>"}}
    assert "[Acknowledge](https://alerts.example.com/ack/" in received.body["markdown"]["content"]


async def test_a_group_message_is_markdown_without_mention(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeCom(KEY)
    channel = WeComChannel("wc", settings(await start(aiohttp_server, fake)))
    message = render_default("wecom", recipient="")
    assert channel.classify(await send(channel, message)).result == "ok"
    assert fake.accepted == [{"msgtype": "markdown", "markdown": {"content": message.text}}]


async def test_a_contact_known_by_mobile_only_gets_a_text_message_that_mentions_them(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """Markdown cannot mention a mobile number; text can (mentioned_mobile_list)."""
    fake = FakeWeCom(KEY)
    channel = WeComChannel("wc", settings(await start(aiohttp_server, fake)))
    message = render_default("wecom", recipient="alice")  # alice: phone +8613800000001, no wecom_user_id
    assert channel.classify(await send(channel, message)).result == "ok"
    [body] = fake.accepted
    assert body == {
        "msgtype": "text",
        "text": {"content": plain(message.text), "mentioned_mobile_list": ["13800000001"]},
    }
    assert body["text"]["content"].splitlines()[0] == "[CRITICAL] HighErrorRate"
    assert "Acknowledge: https://alerts.example.com/ack/1.1795000000.c2lnbmF0dXJl" in body["text"]["content"]
    assert "<font" not in body["text"]["content"] and "**" not in body["text"]["content"]


async def test_msgtype_text_mentions_by_userid_and_mobile(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeCom(KEY)
    channel = WeComChannel("wc", settings(await start(aiohttp_server, fake), msgtype="text"))
    message = replace(render_default("wecom"), recipient={"wecom_user_id": "zhangsan", "wecom_mobile": "13900000009"})
    assert channel.classify(await send(channel, message)).result == "ok"
    text = fake.accepted[0]["text"]
    assert (text["mentioned_list"], text["mentioned_mobile_list"]) == (["zhangsan"], ["13900000009"])


@pytest.mark.parametrize(
    ("status", "body", "result", "wait", "words"),
    [
        (200, b'{"errcode":0,"errmsg":"ok"}', "ok", None, ""),
        (200, b'{"errcode":45009,"errmsg":"api freq out of limit"}', "retry", 60.0, "rate limited"),
        (200, b'{"errcode":45033,"errmsg":"api concurrent out of limit"}', "retry", 60.0, "rate limited"),
        (200, b'{"errcode":-1,"errmsg":"system busy"}', "retry", None, "busy"),
        (
            200,
            b'{"errcode":93000,"errmsg":"invalid webhook url, hint: [x], from ip: 1.2.3.4"}',
            "permanent",
            None,
            "key",
        ),
        (200, b'{"errcode":40008,"errmsg":"invalid message type"}', "permanent", None, "msgtype"),
        (200, b'{"errcode":44004,"errmsg":"empty content"}', "permanent", None, "empty"),
        (200, b'{"errcode":45002,"errmsg":"content too large"}', "permanent", None, "too large"),
        (200, b'{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}', "permanent", None, "too large"),
        (200, b'{"errcode":12345,"errmsg":"new"}', "permanent", None, "errcode 12345"),
        (200, b"<html>proxy</html>", "retry", None, "unexpected"),
        (503, b"unavailable", "retry", None, "HTTP 503"),
        (403, b"forbidden", "permanent", None, "HTTP 403"),
    ],
)
def test_classify_reads_the_errcode(status: int, body: bytes, result: str, wait: float | None, words: str) -> None:
    outcome = WeComChannel("wc", {"url": f"https://x/cgi-bin/webhook/send?key={KEY}"}).classify(
        Response(status, {}, body)
    )
    assert (outcome.result, outcome.retry_after) == (result, wait)
    assert words in outcome.reason


@pytest.mark.parametrize(
    ("script", "timeout", "attempts"),
    [
        ([Answer(dict(RATE_LIMITED))], None, 2),  # wait for the minute window, then it goes
        ([Answer("bad gateway", status=502), Answer(dict(BUSY))], None, 3),
        ([Answer({"errcode": 0, "errmsg": "ok"}, delay=0.5)], "100ms", 2),  # no answer in time
    ],
)
async def test_transient_errors_are_retried_until_the_robot_accepts(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client, script: list[Answer], timeout: str | None, attempts: int
) -> None:
    fake = FakeWeCom(KEY)
    fake.script = list(script)
    channel = settings(await start(aiohttp_server, fake), **({"timeout": timeout} if timeout else {}))
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", attempts)]
    assert len(fake.accepted) >= 1


async def test_a_wrong_key_fails_at_once_with_the_reason(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeCom(KEY)
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), key="wrong")) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert "errcode 93000" in notes[0]["error"] and "invalid webhook url" in notes[0]["error"]


async def test_the_fake_counts_failed_calls_toward_the_minute_limit(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeCom(KEY)
    base = await start(aiohttp_server, fake)
    channel = WeComChannel("wc", settings(base, msgtype="nonsense"))
    for _ in range(20):
        assert "invalid msgtype" in channel.classify(await send(channel, render_default("wecom", recipient=""))).reason
    good = WeComChannel("wc", settings(base))
    outcome = good.classify(await send(good, render_default("wecom", recipient="")))
    assert (outcome.result, outcome.retry_after) == ("retry", 60.0)


@pytest.mark.parametrize("count", [20, 25])
async def test_a_burst_within_the_rate_limit_is_never_refused(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client, count: int
) -> None:
    fake = FakeWeCom(KEY)
    channel = settings(await start(aiohttp_server, fake), rate_limit="20/min")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(count)
        notes = await run.settled()
    assert fake.rejected == []
    assert len(notes) == count and all(n["status"] == "sent" for n in notes)
    if count == 20:
        assert len(fake.accepted) == 20
    else:  # more than the limit lets through at once: one digest
        assert len(fake.accepted) < 20
        content = fake.accepted[0]["markdown"]["content"]
        assert content.startswith('### <font color="warning">[FIRING]</font> 25 alerts')
        assert content.count("\n> **") == 25


def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("wecom")


@pytest.mark.parametrize(
    ("recipient", "msgtype", "limit"),
    [
        ({}, "markdown", 4096),
        ({"wecom_user_id": "zhangsan"}, "markdown", 4096),
        ({"phone": "+8613800000001"}, "text", 2048),
    ],
)
async def test_an_oversized_alert_is_cut_to_the_content_limit(  # type: ignore[no-untyped-def]
    aiohttp_server, recipient: dict, msgtype: str, limit: int
) -> None:
    fake = FakeWeCom(KEY)
    channel = WeComChannel("wc", settings(await start(aiohttp_server, fake)))
    alert = sample_alert(annotations={"summary": "huge", "description": "告警详情" * 2000})
    message = Renderer({"wc": {"type": "wecom"}}, None).render("wc", "firing", [alert], "x", recipient, "https://ack")
    assert channel.classify(await send(channel, message)).result == "ok"
    [body] = fake.accepted
    content = body[msgtype]["content"]
    assert limit - 20 < len(content.encode()) <= limit
    ack = "\nAcknowledge: https://ack" if msgtype == "text" else "\n[Acknowledge](https://ack)"
    mention = "\n<@zhangsan>" if recipient.get("wecom_user_id") else ""
    assert content.endswith(TRUNCATED + ack + mention)  # the ack link survives the cut
