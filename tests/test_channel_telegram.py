"""The Telegram channel against a local Bot API that checks token, chat, HTML, length and rate as Telegram does."""

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.telegram import GROUP_CHAT, TOKEN, Answer, EntityError, FakeTelegram, parse_html
from amcompanion.receiver.channels.base import TRUNCATED, Response
from amcompanion.receiver.channels.telegram import TelegramChannel, truncate_html, units
from amcompanion.receiver.messages import Renderer
from tests.channel_support import (
    ACK_URL,
    CONTACTS,
    assert_default_goldens,
    delivery,
    render_default,
    sample_alert,
)


async def start(aiohttp_server, fake: FakeTelegram) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


@pytest.fixture(autouse=True)
def bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver takes secrets from its environment only."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)


def settings(base_url: str, **extra: object) -> dict:
    """Channel settings as a receiver.yaml holds them; `send_direct` fills the token in itself."""
    token = "${TELEGRAM_BOT_TOKEN}"
    return {"type": "telegram", "bot_token": token, "chat_id": GROUP_CHAT, "base_url": base_url, **extra}


async def send_direct(base_url: str, message, **extra: object) -> tuple[TelegramChannel, Response]:  # type: ignore[no-untyped-def]
    channel = TelegramChannel("tg", {**settings(base_url, **extra), "bot_token": TOKEN})
    async with aiohttp.ClientSession() as session:
        return channel, await channel.send(session, message)


async def test_a_firing_alert_goes_to_the_group_chat_as_html(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram()
    channel, response = await send_direct(await start(aiohttp_server, fake), render_default("telegram", recipient=""))
    assert channel.classify(response).result == "ok"
    assert fake.rejected == []  # the token was right and the HTML parsed
    body = dict(fake.received[0])
    visible = body.pop("_visible")
    assert body == {
        "chat_id": GROUP_CHAT,
        "text": render_default("telegram", recipient="").text,
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }
    assert visible.startswith("[CRITICAL] HighErrorRate\n")
    assert visible.endswith(f"Acknowledge: {ACK_URL}")


async def test_a_step_naming_a_contact_sends_to_their_chat(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram()
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)), to=["alice"]) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)]
    assert fake.received[0]["chat_id"] == CONTACTS["alice"]["telegram_chat_id"]
    assert "Acknowledge: https://alerts.example.com/ack/" in fake.received[0]["_visible"]


async def test_label_values_cannot_break_the_html(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    alert = sample_alert(labels={"alertname": '<b>Disk & "full"</b>', "path": "/var/<x>"})
    message = Renderer({"tg": {"type": "telegram"}}, None).render("tg", "firing", [alert], "", {}, ACK_URL)
    fake = FakeTelegram()
    channel, response = await send_direct(await start(aiohttp_server, fake), message)
    assert channel.classify(response).result == "ok", response.body
    assert "path=/var/<x>" in fake.received[0]["_visible"]


@pytest.mark.parametrize(
    ("answer", "result", "retry_after", "reason"),
    [
        (Answer(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}), "retry", None, "500"),
        (Answer(502, {}), "retry", None, "502"),
        (
            Answer(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 7",
                    "parameters": {"retry_after": 7},
                },
            ),
            "retry",
            7.0,
            "Too Many Requests",
        ),
        (
            Answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
            "permanent",
            None,
            "chat not found",
        ),
        (
            Answer(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: group chat was upgraded to a supergroup chat",
                    "parameters": {"migrate_to_chat_id": -1001234567890},
                },
            ),
            "permanent",
            None,
            "set chat_id to -1001234567890",
        ),
        (
            Answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
            "permanent",
            None,
            "Unauthorized",
        ),
        (
            Answer(
                403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked from the group chat"}
            ),
            "permanent",
            None,
            "kicked",
        ),
        # not something Telegram does, but a 200 that is not `ok: true` is not a delivery
        (Answer(200, {"ok": False, "error_code": 400, "description": "Bad Request: x"}), "permanent", None, "400"),
        (Answer(200, {"ok": False, "error_code": 502, "description": "Bad Gateway"}), "retry", None, "502"),
    ],
)
async def test_answers_are_classified_on_the_error_code(aiohttp_server, answer, result, retry_after, reason) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram(answers=[answer])
    channel, response = await send_direct(await start(aiohttp_server, fake), render_default("telegram"))
    outcome = channel.classify(response)
    assert (outcome.result, outcome.retry_after) == (result, retry_after)
    assert reason in outcome.reason


def test_a_200_that_is_no_bot_api_answer_is_not_a_delivery() -> None:
    channel = TelegramChannel("tg", {**settings("http://proxy"), "bot_token": TOKEN})
    outcome = channel.classify(Response(200, {}, b"<html>login</html>"))
    assert outcome.result == "permanent" and "base_url" in outcome.reason


async def test_a_5xx_is_retried_and_then_delivered(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram(answers=[Answer(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})])
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake))) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.received) == 1


async def test_a_slow_answer_is_retried(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram(delays=[0.5])
    channel = settings(await start(aiohttp_server, fake), timeout="100ms")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert fake.requests == 2  # the late answer was not waited for


async def test_a_429_is_retried_after_the_wait_telegram_asks(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram(per_chat=2, window_s=30)
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake))) as run:
        fake.now = lambda: run.clock.now().timestamp()
        await run.fire(3)
        notes = await run.settled(timeout=20)
    assert [n["status"] for n in notes] == ["sent"] * 3
    assert [status for status, _ in fake.rejected] == [429]  # the third waited the full retry_after, then passed
    assert sorted(n["attempts"] for n in notes) == [1, 1, 2]


@pytest.mark.parametrize(
    ("fake", "extra", "reason"),
    [
        (FakeTelegram(chats={"42"}), {}, "Telegram 400: Bad Request: chat not found"),
        (FakeTelegram(blocked={GROUP_CHAT}), {}, "Telegram 403: Forbidden: bot was blocked by the user"),
        (FakeTelegram(token="1:other"), {}, "Telegram 401: Unauthorized"),
    ],
)
async def test_a_permanent_error_fails_at_once(
    tmp_path: Path, aiohttp_server, aiohttp_client, fake, extra, reason
) -> None:  # type: ignore[no-untyped-def]
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), **extra)) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("failed", 1, reason)]


async def test_a_template_with_broken_html_fails_with_telegrams_reason(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.j2").write_text("<b>{{ alert.alertname }}")
    fake = FakeTelegram()
    channel = settings(await start(aiohttp_server, fake), template="broken.j2")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        notes = await run.settled()
    assert notes[0]["status"] == "failed" and notes[0]["attempts"] == 1
    assert "can't parse entities" in notes[0]["error"]


async def test_a_burst_within_the_rate_limit_is_delivered_one_by_one(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram()  # 20 messages a minute per chat
    channel = settings(await start(aiohttp_server, fake), rate_limit="20/min")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(20)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)] * 20
    assert len(fake.received) == 20 and fake.rejected == []


async def test_a_storm_becomes_a_digest_telegram_accepts(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTelegram()
    channel = settings(await start(aiohttp_server, fake), rate_limit="20/min")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(25)
        notes = await run.settled()
    assert [n["status"] for n in notes] == ["sent"] * 25
    assert fake.rejected == [] and 1 <= len(fake.received) < 25
    assert fake.received[0]["_visible"].startswith("[FIRING] 25 alerts")


def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("telegram")


def test_the_default_template_is_html_telegram_parses() -> None:
    for kind, count in (("firing", 1), ("resolved", 1), ("firing", 3)):
        parse_html(render_default("telegram", kind, alerts=count).text)


async def test_an_oversized_alert_is_cut_to_valid_html_and_keeps_its_ack_link(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    # "&" is one visible character but five in the HTML: the cut must count what Telegram counts
    alert = sample_alert(annotations={"summary": "disk full", "description": "a&<b>" * 3000})
    message = Renderer({"tg": {"type": "telegram"}}, None).render("tg", "firing", [alert], "", {}, ACK_URL)
    assert units(parse_html(message.text)) > 4096
    fake = FakeTelegram()
    channel, response = await send_direct(await start(aiohttp_server, fake), message)
    assert channel.classify(response).result == "ok", response.body
    visible = fake.received[0]["_visible"]
    assert units(visible) <= 4096
    assert visible.endswith(f"{TRUNCATED}\nAcknowledge: {ACK_URL}")
    assert "a&<b>a&<b>" in visible


def test_truncate_html_never_cuts_inside_a_tag_or_entity_and_closes_what_is_open() -> None:
    text = "<b>bold <i>" + "x&amp;" * 50 + "</i></b> end"
    for limit in range(20, 100, 7):  # the whole text is 109 characters
        cut = truncate_html(text, limit, marker="…")
        visible = parse_html(cut)  # raises if the cut broke the HTML
        assert units(visible) <= limit and visible.endswith("…")
    assert truncate_html("<b>short</b>", 100) == "<b>short</b>"
    emoji = "🔥" * 3000  # two UTF-16 units each
    assert units(parse_html(truncate_html(emoji, 4096))) <= 4096


def test_the_fake_rejects_what_telegram_rejects() -> None:
    for bad in ("<b>open", "a < b", "a & b", "<script>x</script>", "<b><i>x</b></i>", "&nbsp;", "<a>x</a>"):
        with pytest.raises(EntityError):
            parse_html(bad)
    assert parse_html('<a href="https://x">l&lt;i&#62;nk</a> &amp; <code>c</code>') == "l<i>nk & c"


def test_without_html_the_text_is_cut_on_telegrams_count_with_the_marker_escaped_for_markdown_v2() -> None:
    message = replace(render_default("telegram"), text="🔥\\" * 3000)  # two UTF-16 units, then an escape
    escaped_ack = ACK_URL.replace(".", "\\.")
    for mode, end in (
        ("MarkdownV2", f"🔥\n…\\(truncated\\)\nAcknowledge: {escaped_ack}"),
        ("none", f"{TRUNCATED}\nAcknowledge: {ACK_URL}"),
    ):
        body = TelegramChannel("tg", {**settings("http://x"), "bot_token": TOKEN, "parse_mode": mode}).body(message)
        assert units(str(body["text"])) <= 4096
        assert str(body["text"]).endswith(end), str(body["text"])[-120:]
        assert ("parse_mode" in body) == (mode != "none")
