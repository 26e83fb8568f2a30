"""The Discord channel against a local webhook endpoint that checks ids, limits and rate as Discord does."""

import json
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.discord import WEBHOOK_ID, WEBHOOK_TOKEN, Answer, FakeDiscord, form_errors
from amcompanion.receiver.channels.base import TRUNCATED, Response
from amcompanion.receiver.channels.discord import DiscordChannel
from amcompanion.receiver.messages import Renderer
from tests.channel_support import ACK_URL, assert_golden, delivery, render_default, sample_alert

URL = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


async def start(aiohttp_server, fake: FakeDiscord) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


def settings(base_url: str, **extra: object) -> dict:
    return {"type": "discord", "url": URL, "base_url": base_url, **extra}


async def send_direct(base_url: str, message, **extra: object) -> tuple[DiscordChannel, Response]:  # type: ignore[no-untyped-def]
    channel = DiscordChannel("dc", settings(base_url, **extra))
    async with aiohttp.ClientSession() as session:
        return channel, await channel.send(session, message)


def rendered(alert: dict, recipient: dict | None = None, ack_url: str = ACK_URL):  # type: ignore[no-untyped-def]
    return Renderer({"dc": {"type": "discord"}}, None).render("dc", "firing", [alert], "", recipient or {}, ack_url)


async def test_a_firing_alert_is_posted_as_one_embed(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord()
    message = render_default("discord", recipient="")
    channel, response = await send_direct(await start(aiohttp_server, fake), message, username="Alerts")
    assert channel.classify(response).result == "ok"
    assert response.status == 200 and json.loads(response.body)["webhook_id"] == WEBHOOK_ID  # wait=true
    assert fake.rejected == [] and fake.queries == [{"wait": "true"}]
    assert fake.received == [
        {
            "embeds": [
                {"title": "[CRITICAL] HighErrorRate", "description": message.text, "color": 0xE74C3C, "url": ACK_URL}
            ],
            "allowed_mentions": {"parse": []},
            "username": "Alerts",
        }
    ]


async def test_a_contact_is_mentioned_and_only_they_can_be_pinged(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord()
    alert = sample_alert(labels={"alertname": "@everyone look", "severity": "critical"})
    channel, response = await send_direct(await start(aiohttp_server, fake), rendered(alert, {"discord_user_id": "42"}))
    assert channel.classify(response).result == "ok", response.body
    assert fake.received[0]["content"] == "<@42>"
    assert fake.received[0]["allowed_mentions"] == {"parse": [], "users": ["42"]}


async def test_a_thread_id_in_the_url_is_kept(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord()
    channel = DiscordChannel("dc", {"url": URL + "?thread_id=555", "base_url": await start(aiohttp_server, fake)})
    async with aiohttp.ClientSession() as session:
        response = await channel.send(session, render_default("discord"))
    assert channel.classify(response).result == "ok"
    assert fake.queries == [{"thread_id": "555", "wait": "true"}]


async def test_a_resolve_notice_is_green(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord()
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake))) as run:
        await run.fire()
        await run.settled()
        await run.resolve_all()
        notes = await run.settled()
    assert [(n["kind"], n["status"]) for n in notes] == [("firing", "sent"), ("resolved", "sent")]
    firing, resolved = (body["embeds"][0] for body in fake.received)
    assert firing["url"].startswith("https://alerts.example.com/ack/") and "[Acknowledge](" in firing["description"]
    assert resolved["color"] == 0x2ECC71 and "url" not in resolved and resolved["title"].startswith("[RESOLVED]")


RATE_LIMITED = {"message": "You are being rate limited.", "retry_after": 0.376, "global": False}


@pytest.mark.parametrize(
    ("answer", "result", "retry_after", "reason"),
    [
        (Answer(204), "ok", None, ""),
        (Answer(429, RATE_LIMITED, {"Retry-After": "1"}), "retry", 1.0, "rate limited"),  # the header first
        (Answer(429, RATE_LIMITED), "retry", 0.376, "rate limited"),
        (Answer(429, {**RATE_LIMITED, "global": True}), "retry", 0.376, "global"),
        (Answer(500, {"message": "500: Internal Server Error", "code": 0}), "retry", None, "500"),
        (Answer(502), "retry", None, "HTTP 502"),
        (Answer(400, {"message": "Cannot send an empty message", "code": 50006}), "permanent", None, "code 50006"),
        (
            Answer(
                400,
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"embeds": {"0": {"fields": {"0": {"value": {"_errors": [{"message": "Too long."}]}}}}}},
                },
            ),
            "permanent",
            None,
            "embeds.0.fields.0.value: Too long.",
        ),
        (Answer(401, {"message": "Invalid Webhook Token", "code": 50027}), "permanent", None, "50027"),
        (Answer(404, {"message": "Unknown Webhook", "code": 10015}), "permanent", None, "Unknown Webhook"),
        (Answer(403, {"message": "Missing Access", "code": 50001}), "permanent", None, "Missing Access"),
    ],
)
async def test_answers_are_classified(aiohttp_server, answer, result, retry_after, reason) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord(answers=[answer])
    channel, response = await send_direct(await start(aiohttp_server, fake), render_default("discord"))
    outcome = channel.classify(response)
    assert (outcome.result, outcome.retry_after) == (result, retry_after)
    assert reason in outcome.reason


async def test_a_5xx_is_retried_and_then_delivered(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord(answers=[Answer(503, None)])
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake))) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.received) == 1


async def test_a_slow_answer_is_retried(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord(delays=[0.5])
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), timeout="100ms")) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]


async def test_the_bucket_429_is_retried_after_the_wait_discord_asks(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord(bucket_limit=2, window_s=20)
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake))) as run:
        fake.now = lambda: run.clock.now().timestamp()
        await run.fire(3)
        notes = await run.settled(timeout=20)
    assert [n["status"] for n in notes] == ["sent"] * 3
    assert fake.rejected == [(429, None)]  # the third waited the full Retry-After, then passed
    assert sorted(n["attempts"] for n in notes) == [1, 1, 2]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (URL.replace(WEBHOOK_TOKEN, "wrong"), "Discord 401 code 50027: Invalid Webhook Token"),
        (URL.replace(WEBHOOK_ID, "1"), "Discord 404 code 10015: Unknown Webhook"),
    ],
)
async def test_a_wrong_webhook_fails_at_once(tmp_path: Path, aiohttp_server, aiohttp_client, url, reason) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord()
    async with delivery(tmp_path, aiohttp_client, {**settings(await start(aiohttp_server, fake)), "url": url}) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("failed", 1, reason)]


async def test_an_invalid_form_body_fails_at_once(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord()
    channel = settings(await start(aiohttp_server, fake), username="Discord alerts")  # Discord forbids the word
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        notes = await run.settled()
    assert notes[0]["status"] == "failed" and notes[0]["attempts"] == 1
    assert notes[0]["error"].startswith("Discord 400 code 50035: Invalid Form Body (username: ")


async def test_a_burst_within_the_rate_limit_is_delivered_one_by_one(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord(bucket_limit=20, window_s=60)
    async with delivery(
        tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), rate_limit="20/min")
    ) as run:
        await run.fire(20)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)] * 20
    assert len(fake.received) == 20 and fake.rejected == []


async def test_a_storm_becomes_a_digest_discord_accepts(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeDiscord(bucket_limit=20, window_s=60)
    async with delivery(
        tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), rate_limit="20/min")
    ) as run:
        await run.fire(25)
        notes = await run.settled()
    assert [n["status"] for n in notes] == ["sent"] * 25
    assert fake.rejected == [] and 1 <= len(fake.received) < 25
    assert fake.received[0]["embeds"][0]["title"] == "[FIRING] 25 alerts"


def embed_text(message) -> str:  # type: ignore[no-untyped-def]
    """The embed as a reader sees it: its title (a link when it has a url), then its description."""
    embed = DiscordChannel("dc", {"url": URL}).body(message)["embeds"][0]
    title = f"[{embed['title']}]({embed['url']})" if "url" in embed else embed["title"]
    return f"{title}\n\n{embed['description']}\n"


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"discord-{kind}.txt", embed_text(render_default("discord", kind)))
    assert_golden("discord-digest.txt", embed_text(render_default("discord", alerts=3)))


async def test_an_oversized_alert_is_cut_to_discords_limits_and_keeps_its_ack_link(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    alert = sample_alert(
        alertname="A" * 400, annotations={"summary": "s" * 3000, "description": "more than 5% fail. " * 1000}
    )
    alert["labels"]["alertname"] = alert["alertname"]
    message = rendered(alert)
    assert len(message.text) > 4096 and len(message.title) > 256
    fake = FakeDiscord()
    channel, response = await send_direct(await start(aiohttp_server, fake), message)
    assert channel.classify(response).result == "ok", response.body
    embed = fake.received[0]["embeds"][0]
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert len(embed["description"]) == 4096
    assert embed["description"].endswith(f"{TRUNCATED}\n**[Acknowledge]({ACK_URL})**")


def test_the_fake_checks_what_discord_checks() -> None:
    assert form_errors({"content": "x" * 2001}) == {
        "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}
    }
    assert "embeds" in form_errors({"embeds": [{"description": "x" * 4000}, {"description": "x" * 2001}]})
    assert "embeds" in form_errors({"embeds": [{"title": "t", "url": "ftp://x"}]})
    assert "allowed_mentions" in form_errors({"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}})
    assert form_errors({"content": "x", "embeds": [{"title": "t", "description": "d", "color": 1}]}) == {}


def test_a_429_without_a_hint_is_retried_on_the_outboxs_backoff() -> None:
    outcome = DiscordChannel("dc", {"url": URL}).classify(Response(429, {}, b"<html>1015</html>"))
    assert (outcome.result, outcome.retry_after) == ("retry", None)
