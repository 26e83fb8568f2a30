"""The Slack incoming-webhook channel against a fake of the webhook: Block Kit, errors, 429s, limits, template."""

import asyncio
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.slack import HOOK, FakeSlack
from amcompanion.receiver.channels.base import TRUNCATED, Message, Response
from amcompanion.receiver.channels.slack import SECTION_LIMIT, SlackChannel
from amcompanion.receiver.messages import Renderer
from tests.channel_support import ACK_URL, assert_golden, delivery, render_default, sample_alert

URL = f"https://hooks.slack.com/services/{HOOK}"


@pytest.fixture(autouse=True)
def webhook_url_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver takes the webhook URL (a credential) only as ${VAR}."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", URL)
    monkeypatch.setenv("SLACK_WRONG_URL", "https://hooks.slack.com/services/T00000000/B00000000/revoked")


async def start(aiohttp_server, fake: FakeSlack) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("/"))


def configured(base_url: str, url: str = "SLACK_WEBHOOK_URL", **extra: object) -> dict:
    return {"type": "slack", "url": "${" + url + "}", "base_url": base_url, **extra}


async def send(channel: SlackChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


async def test_a_firing_alert_is_a_block_kit_message_with_an_ack_button(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlack()
    channel = SlackChannel("sre-slack", {"url": URL, "base_url": await start(aiohttp_server, fake)})
    message = render_default("slack", "firing", recipient="")
    response = await send(channel, message)
    assert (response.status, response.body) == (200, b"ok") and channel.classify(response).result == "ok"
    assert fake.received == [
        {
            "text": "[CRITICAL] HighErrorRate",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "[CRITICAL] HighErrorRate"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": message.text}},
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Acknowledge"},
                            "style": "danger",
                            "url": ACK_URL,
                            "action_id": "ack",
                        }
                    ],
                },
            ],
        }
    ]


async def test_a_contact_is_mentioned_and_resolve_notices_have_no_button(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlack()
    channel = SlackChannel("sre-slack", {"url": URL, "base_url": await start(aiohttp_server, fake), "channel": "#sre"})
    message = replace(render_default("slack", "resolved", recipient=""), recipient={"slack_user_id": "U024BE7LH"})
    assert channel.classify(await send(channel, message)).result == "ok", fake.answers
    (body,) = fake.received
    assert body["text"] == "<@U024BE7LH> [RESOLVED] HighErrorRate" and body["channel"] == "#sre"
    assert body["blocks"][1]["text"]["text"].startswith("<@U024BE7LH> checkout 5xx ratio")
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]


def test_answers_are_classified_on_the_status_and_the_body_string() -> None:
    channel = SlackChannel("sre-slack", {"url": URL})

    def outcome(status: int, body: bytes, headers: dict | None = None) -> tuple[str, float | None]:
        result = channel.classify(Response(status, headers or {}, body))
        return result.result, result.retry_after

    assert outcome(200, b"ok") == ("ok", None)
    assert outcome(429, b"rate_limited", {"Retry-After": "30"}) == ("retry", 30.0)
    assert outcome(429, b"rate_limited") == ("retry", 1.0)  # no hint: Slack's pace of one a second
    assert outcome(500, b"rollup_error")[0] == "retry"
    assert outcome(503, b"")[0] == "retry"
    for status, body in [
        (400, b"invalid_payload"),
        (400, b"user_not_found"),
        (403, b"action_prohibited"),
        (404, b"channel_not_found"),
        (410, b"channel_is_archived"),
        (404, b"no_service"),
        (403, b"invalid_token"),
        (400, b"no_text"),
        (400, b"invalid_blocks"),
        (400, b"posting_to_general_channel_denied"),
        (200, b"<html>a captive portal</html>"),  # 200 without `ok` is not a delivery
    ]:
        assert outcome(status, body)[0] == "permanent", body


@pytest.mark.parametrize(
    ("script", "delays"),
    [
        ([(429, {"Retry-After": "3"}, "rate_limited")], []),
        ([(500, {}, "rollup_error")], []),
        ([(502, {}, "<html>Bad Gateway</html>")], []),
        ([], [0.5]),  # slower than the channel's timeout
    ],
    ids=["429", "rollup_error", "502", "timeout"],
)
async def test_transient_failures_are_retried(tmp_path: Path, aiohttp_server, aiohttp_client, script, delays) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlack(script=list(script), delays=list(delays))
    channel = configured(await start(aiohttp_server, fake), timeout="200ms")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.received) == 1


async def test_a_429_is_retried_after_the_wait_slack_asked_for(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlack(script=[(429, {"Retry-After": "30"}, "rate_limited")])
    channel = configured(await start(aiohttp_server, fake))
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(1)
        for _ in range(200):  # the first try, within 2 s
            if fake.answers:
                break
            await asyncio.sleep(0.01)
        for _ in range(20):  # 20 virtual seconds later: not tried again yet
            await run.clock.advance(1)
            await asyncio.sleep(0.01)
        assert len(fake.answers) == 1
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)] and len(fake.answers) == 2


@pytest.mark.parametrize(
    ("make", "url", "error"),  # a fake of its own for each run (its script is used up)
    [
        (FakeSlack, "SLACK_WRONG_URL", "HTTP 404: no_service"),
        (lambda: FakeSlack(archived=True), "SLACK_WEBHOOK_URL", "HTTP 410: channel_is_archived"),
        (lambda: FakeSlack(script=[(400, {}, "invalid_payload")]), "SLACK_WEBHOOK_URL", "HTTP 400: invalid_payload"),
        (
            lambda: FakeSlack(script=[(403, {}, "action_prohibited")]),
            "SLACK_WEBHOOK_URL",
            "HTTP 403: action_prohibited",
        ),
    ],
    ids=["no_service", "archived", "invalid_payload", "action_prohibited"],
)
async def test_permanent_failures_are_not_retried(
    tmp_path: Path, aiohttp_server, aiohttp_client, make, url, error
) -> None:  # type: ignore[no-untyped-def]
    fake = make()
    channel = configured(await start(aiohttp_server, fake), url=url)
    async with delivery(tmp_path, aiohttp_client, channel, give_up_after_s=60) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("failed", 1, error)]
    assert fake.received == []


async def test_the_fake_rejects_what_slack_rejects(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlack(windows=[(2, 60.0)])
    base = await start(aiohttp_server, fake)
    async with aiohttp.ClientSession() as session:
        hook = f"{base}services/{HOOK}"
        answers = []
        for body in (
            b"{not json",
            b'{"username": "x"}',
            b'{"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "'
            + b"y" * 3001
            + b'"}}]}',
            b'{"text": "x", "blocks": [{"type": "carousel"}]}',
            b'{"text": "one"}',
            b'{"text": "two"}',
            b'{"text": "three"}',
        ):
            async with session.post(hook, data=body, headers={"Content-Type": "application/json"}) as response:
                answers.append((response.status, await response.text(), response.headers.get("Retry-After")))
    assert answers == [
        (400, "invalid_payload", None),
        (400, "no_text", None),
        (400, "invalid_blocks", None),
        (400, "invalid_blocks", None),
        (200, "ok", None),
        (200, "ok", None),
        (429, "rate_limited", "1"),
    ]


async def test_a_burst_within_the_rate_limit_is_delivered_and_a_larger_one_digested(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeSlack(windows=[(20, 60.0)])
    channel = configured(await start(aiohttp_server, fake), rate_limit="20/min")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(20)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)] * 20
    assert len(fake.received) == 20 and all(status == 200 for status, _ in fake.answers)
    fake = FakeSlack(windows=[(20, 60.0)])
    channel = configured(await start(aiohttp_server, fake), rate_limit="20/min")
    (tmp_path / "storm").mkdir()
    async with delivery(tmp_path / "storm", aiohttp_client, channel) as run:
        await run.fire(25)
        notes = await run.settled()
    assert len(notes) == 25 and all(n["status"] == "sent" for n in notes)
    assert all(status == 200 for status, _ in fake.answers) and 1 <= len(fake.received) < 25
    digests = [b for b in fake.received if b["text"].endswith(" alerts")]
    assert digests and all(block["type"] != "actions" for d in digests for block in d["blocks"])  # no ack button


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"slack-{kind}.txt", render_default("slack", kind, recipient="").text + "\n")
    assert_golden("slack-digest.txt", render_default("slack", alerts=3, recipient="").text + "\n")


def test_untrusted_values_cannot_mention_the_channel_or_forge_links() -> None:
    renderer = Renderer({"s": {"type": "slack"}}, None)
    alert = sample_alert(
        annotations={"summary": "<!channel> & <https://evil.example|click>", "runbook_url": "https://x/?a=1&b=<2>|3"}
    )
    text = renderer.render("s", "firing", [alert], "", {}, ACK_URL).text
    assert "*&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;*" in text
    assert "<https://x/?a=1&amp;b=%3C2%3E%7C3|Runbook>" in text
    assert SlackChannel("s", {"url": URL}).body(replace(render_default("slack"), title="<!here> a&b"))["text"] == (
        "&lt;!here&gt; a&amp;b"
    )


async def test_an_oversized_alert_is_truncated_to_fit_the_section_limit(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlack()
    channel = SlackChannel("sre-slack", {"url": URL, "base_url": await start(aiohttp_server, fake)})
    alert = sample_alert(alertname="X" * 300, annotations={"summary": "huge", "description": "y" * 10_000})
    message = Renderer({"s": {"type": "slack"}}, None).render("s", "firing", [alert], "", {}, ACK_URL)
    assert channel.classify(await send(channel, message)).result == "ok", fake.answers
    (body,) = fake.received
    header, section, actions = body["blocks"]
    assert len(header["text"]["text"]) == 150 and header["text"]["text"].endswith("…")
    assert len(section["text"]["text"]) == SECTION_LIMIT and section["text"]["text"].endswith(TRUNCATED)
    assert actions["elements"][0]["url"] == ACK_URL
