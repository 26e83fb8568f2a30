"""The Microsoft Teams channel against a fake Workflows webhook that checks what the service checks: the card's
wire format (Alertmanager's msteamsv2 shape, with an Acknowledge button), the 28 KB limit, and each error class
(a wrong signature or a deleted workflow is permanent, throttling and 5xx retry)."""

import json
from dataclasses import replace

import aiohttp
from aiohttp.test_utils import TestServer

from amcompanion.fakes.teams import SIGNATURE, URL_PATH, URL_QUERY, FakeTeams, card_problem
from amcompanion.receiver.channels import Response
from amcompanion.receiver.channels.base import TRUNCATED
from amcompanion.receiver.channels.teams import CARD_BYTES, TeamsChannel
from tests.channel_support import delivery, render_default

URL = f"https://prod-00.westus.logic.azure.com:443{URL_PATH}?{URL_QUERY}"


async def start(aiohttp_server, fake: FakeTeams) -> str:  # type: ignore[no-untyped-def]
    server: TestServer = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


async def send(base_url: str, message, url: str = URL) -> tuple[TeamsChannel, Response]:  # type: ignore[no-untyped-def]
    channel = TeamsChannel("teams", {"type": "teams", "url": url, "base_url": base_url})
    async with aiohttp.ClientSession() as session:
        return channel, await channel.send(session, message)


async def test_a_firing_alert_is_one_adaptive_card_with_an_acknowledge_button(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTeams()
    message = render_default("teams", recipient="")
    channel, response = await send(await start(aiohttp_server, fake), message)
    assert response.status == 202 and channel.classify(response).result == "ok"
    assert fake.dropped == []
    (body,) = fake.received
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive" and attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"], card["msteams"]) == ("AdaptiveCard", "1.2", {"width": "full"})
    title, text = card["body"]
    assert (title["text"], title["color"], title["weight"]) == ("[CRITICAL] HighErrorRate", "Attention", "Bolder")
    assert text["text"] == message.text and text["wrap"] is True
    assert "**Labels:** alertname=HighErrorRate" in text["text"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Acknowledge", "url": message.ack_url}]


async def test_a_resolve_is_green_and_offers_no_acknowledgement(tmp_path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTeams()
    channel = {"type": "teams", "url": URL, "base_url": await start(aiohttp_server, fake)}
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        await run.settled()
        await run.resolve_all()
        notes = await run.settled()
    assert [(n["kind"], n["status"]) for n in notes] == [("firing", "sent"), ("resolved", "sent")]
    firing, resolved = (body["attachments"][0]["content"] for body in fake.received)
    assert firing["actions"][0]["url"].startswith("https://alerts.example.com/ack/")
    assert resolved["body"][0]["color"] == "Good" and resolved["body"][0]["text"].startswith("[RESOLVED]")
    assert "actions" not in resolved


async def test_a_huge_alert_is_cut_to_what_teams_shows_keeping_the_button(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTeams()
    message = replace(render_default("teams", recipient=""), text="é" * 40_000)  # 80 KB of UTF-8
    channel, response = await send(await start(aiohttp_server, fake), message)
    assert channel.classify(response).result == "ok"
    assert fake.dropped == [], fake.dropped  # the workflow would have failed to post an oversized card
    (body,) = fake.received
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= CARD_BYTES
    card = body["attachments"][0]["content"]
    assert card["body"][1]["text"].endswith(TRUNCATED)
    assert card["actions"][0]["url"] == message.ack_url


async def test_each_error_class_is_read_as_the_service_means_it(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTeams(windows=[(1, 60.0)], retry_after=7)
    base = await start(aiohttp_server, fake)
    message = render_default("teams")
    channel, wrong_sig = await send(base, message, URL.replace(SIGNATURE, "forged"))
    outcome = channel.classify(wrong_sig)
    assert (wrong_sig.status, outcome.result) == (401, "permanent")
    assert outcome.reason.startswith("Teams workflow 401 DirectApiInvalidAuthorizationSignature: ")
    _, gone = await send(base, message, URL.replace("0f1e2d3c", "deadbeef"))
    assert (gone.status, channel.classify(gone).result) == (404, "permanent")
    _, first = await send(base, message)
    _, throttled = await send(base, message)  # one a minute
    outcome = channel.classify(throttled)
    assert (first.status, throttled.status, outcome.result, outcome.retry_after) == (202, 429, "retry", 7.0)
    fake.script = [(502, {}, '{"error": {"code": "BadGateway", "message": "try again"}}')]
    _, busy = await send(base, message)
    assert (busy.status, channel.classify(busy).result) == (502, "retry")
    assert len(fake.received) == 1  # only the one the workflow took


def test_the_fake_drops_cards_teams_would_not_show() -> None:
    """A workflow answers 202 before it posts: what it cannot post shows in `dropped`, which the tests read."""
    card = {"type": "AdaptiveCard", "version": "1.2", "body": [{"type": "TextBlock", "text": "hi"}]}
    good = {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }
    assert card_problem(good, 100) is None
    assert card_problem(good, CARD_BYTES + 1) is not None
    assert card_problem({**good, "type": "card"}, 100) is not None
    submit = {**card, "actions": [{"type": "Action.Submit", "title": "Ack"}]}
    with_submit = {**good, "attachments": [{**good["attachments"][0], "content": submit}]}
    assert "cannot run" in str(card_problem(with_submit, 100))


async def test_a_text_of_quotes_and_newlines_is_cut_to_28_kb_as_sent(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """The limit is on the message as it goes on the wire: a quote, a backslash or a newline is two bytes there."""
    fake = FakeTeams()
    message = replace(render_default("teams", recipient=""), text='"\n\\' * 9000)  # 27,000 bytes, 54,000 escaped
    channel, response = await send(await start(aiohttp_server, fake), message)
    assert channel.classify(response).result == "ok"
    assert fake.dropped == [], fake.dropped
    (body,) = fake.received
    size = len(json.dumps(body, ensure_ascii=False).encode())
    assert CARD_BYTES - 100 < size <= CARD_BYTES  # cut close to the limit, not far below it
    card = body["attachments"][0]["content"]
    assert card["body"][1]["text"].endswith(TRUNCATED)
    assert card["actions"][0]["url"] == message.ack_url


def test_a_web_page_in_a_2xx_is_no_delivery_and_a_connectors_200_is_one() -> None:
    """A Workflows trigger answers 202 Accepted; a 200 page from a proxy or captive portal is no proof that the
    workflow has the card. An old Office 365 connector answers 200 "1": retrying it would post the card again."""
    channel = TeamsChannel("teams", {"type": "teams", "url": URL})
    for status, headers, body in [(202, {}, b""), (200, {}, b"1"), (204, {}, b"")]:
        assert channel.classify(Response(status, headers, body)).result == "ok", status
    for headers, body in [({}, b"<html>captive portal</html>"), ({"Content-Type": "text/html"}, b"Please sign in")]:
        outcome = channel.classify(Response(200, headers, body))
        assert outcome.result == "retry" and "not the workflow's answer" in outcome.reason, (body, outcome)
    for status, body, result in [
        (400, b'{"error": {"code": "InvalidRequestContent", "message": "bad"}}', "permanent"),
        (403, b"<html>Forbidden</html>", "permanent"),
        (404, b"", "permanent"),
        (429, b"not json", "retry"),
        (503, b"<html>Service Unavailable</html>", "retry"),
    ]:
        assert channel.classify(Response(status, {}, body)).result == result, status
    throttled = channel.classify(Response(429, {"Retry-After": "9"}, b'{"error": {"code": "x", "message": "y"}}'))
    assert (throttled.result, throttled.retry_after) == ("retry", 9.0)
