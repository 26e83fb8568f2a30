"""The twilio_sms channel against a fake Twilio Messages API: what it sends, how it reads answers, limits."""

import base64
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio, twilio_signature
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.base import TRUNCATED, Response
from amcompanion.receiver.channels.twilio_sms import TwilioSmsChannel
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.timeutil import parse_iso
from tests.channel_support import (
    ACK_URL,
    CONTACTS,
    START,
    assert_default_goldens,
    delivery,
    render_default,
    sample_alert,
)

ALICE = CONTACTS["alice"]["phone"]


@pytest.fixture(autouse=True)
def token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver refuses literal secrets in its config: the token comes from the environment."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_TEST", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_WRONG_TOKEN_TEST", "wrong-token")


def settings(server, **changes: object) -> dict:  # type: ignore[no-untyped-def]
    """Channel settings as the receiver config has them (a channel built directly gets the token itself)."""
    return {
        "type": "twilio_sms",
        "account_sid": ACCOUNT_SID,
        "auth_token": "${TWILIO_AUTH_TOKEN_TEST}",
        "from": FROM,
        "base_url": str(server.make_url("")),
        **changes,
    }


@pytest.fixture
async def fake_server(aiohttp_server):  # type: ignore[no-untyped-def]
    fake = FakeTwilio()
    server = await aiohttp_server(fake.app)
    return fake, server


async def send(channel: TwilioSmsChannel, message) -> Response:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["twilio_sms"] is TwilioSmsChannel


def test_the_fake_signs_as_twilio_documents() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


# -- what is sent --------------------------------------------------------------------------------------------------
async def test_an_sms_goes_to_the_contacts_phone_with_the_rendered_text(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = TwilioSmsChannel("sms", settings(server, auth_token=AUTH_TOKEN))
    message = render_default("twilio_sms")
    response = await send(channel, message)
    assert channel.classify(response).result == "ok"
    assert response.status == 201 and response.headers["Content-Type"].startswith("application/json")
    assert fake.authenticated == 1 and fake.refused == []  # Basic auth SID:token checked by the fake
    (accepted,) = fake.accepted
    assert accepted.api == "Messages" and accepted.content_type == "application/x-www-form-urlencoded"
    assert accepted.form == {"To": ALICE, "From": FROM, "Body": message.text}
    assert accepted.form["Body"] == (
        "[CRITICAL] HighErrorRate on web-1\n"
        "checkout 5xx ratio at 7.5% on web-1\n"
        "More than 5% of checkout requests fail.\n"
        "Since 2026-11-22T22:47:24.568000Z\n"
        "Ack: https://alerts.example.com/ack/1.1795000000.c2lnbmF0dXJl"
    )
    assert accepted.resource["sid"].startswith("SM") and accepted.resource["status"] == "queued"


async def test_an_sms_through_a_receiver_reaches_alice_with_its_ack_link(
    tmp_path: Path, aiohttp_client, fake_server
) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["recipient"]) for n in notes] == [("sent", 1, "alice")]
    (accepted,) = fake.accepted
    assert accepted.form["To"] == ALICE and accepted.form["From"] == FROM
    assert "\nAck: https://alerts.example.com/ack/" in accepted.form["Body"]


# -- reading answers -----------------------------------------------------------------------------------------------
def answer(status: int, code: int | None, headers: dict[str, str] | None = None) -> Response:
    body = f'{{"code": {code or "null"}, "message": "m", "more_info": "", "status": {status}}}'
    return Response(status, headers or {}, body.encode())


@pytest.mark.parametrize(
    ("status", "code", "result"),
    [
        (201, None, "ok"),
        (200, None, "ok"),
        (429, 20429, "retry"),
        (500, 20500, "retry"),
        (503, None, "retry"),
        (400, 21211, "permanent"),  # invalid To
        (400, 21608, "permanent"),  # unverified To (trial account)
        (400, 21610, "permanent"),  # unsubscribed (STOP)
        (400, 21614, "permanent"),  # not a mobile number
        (400, 21617, "permanent"),  # body over 1600
        (401, 20003, "permanent"),  # authentication
        (404, 20404, "permanent"),  # wrong account SID
    ],
)
def test_answers_are_classified_by_status_and_twilio_code(status: int, code: int | None, result: str) -> None:
    channel = TwilioSmsChannel("sms", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM})
    outcome = channel.classify(answer(status, code))
    assert outcome.result == result
    if code and result != "ok":
        assert str(code) in outcome.reason


def test_a_retry_after_header_is_the_wait_and_a_proxy_page_is_retried() -> None:
    channel = TwilioSmsChannel("sms", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM})
    assert channel.classify(answer(429, 20429, {"Retry-After": "7"})).retry_after == 7
    outcome = channel.classify(Response(502, {}, b"<html>Bad Gateway</html>"))
    assert (outcome.result, outcome.reason) == ("retry", "HTTP 502: <html>Bad Gateway</html>")


async def test_a_contact_without_a_phone_is_a_permanent_failure_with_the_reason(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = TwilioSmsChannel("sms", settings(server, auth_token=AUTH_TOKEN))
    message = replace(render_default("twilio_sms"), recipient={"email": "alice@example.com"})
    outcome = channel.classify(await send(channel, message))
    assert outcome == outcome.__class__(
        "permanent", "not sent: alice has no phone number to text (contact field `phone`)"
    )
    assert fake.requests == 0


@pytest.mark.parametrize(
    ("code", "explained"), [(21211, "not a valid number"), (21608, "not verified"), (21610, "unsubscribed")]
)
async def test_refused_numbers_are_permanent_with_twilios_code(fake_server, code: int, explained: str) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.refuse[ALICE] = code
    channel = TwilioSmsChannel("sms", settings(server, auth_token=AUTH_TOKEN))
    outcome = channel.classify(await send(channel, render_default("twilio_sms")))
    assert outcome.result == "permanent" and f"Twilio error {code}" in outcome.reason and explained in outcome.reason


async def test_a_number_that_is_not_e164_is_refused_by_the_fake_as_twilio_does(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = TwilioSmsChannel("sms", settings(server, auth_token=AUTH_TOKEN))
    message = replace(render_default("twilio_sms"), recipient={"phone": "13800000001"})
    outcome = channel.classify(await send(channel, message))
    assert outcome.result == "permanent"
    assert outcome.reason.startswith("HTTP 400, Twilio error 21211: The 'To' number 13800000001 is not a valid")
    assert fake.refused == [(400, 21211)]


# -- retried or not, through a receiver ----------------------------------------------------------------------------
async def test_a_server_error_is_retried_and_then_delivered(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.fail(503)
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("sent", 2, None)]
    assert len(fake.accepted) == 1 and fake.refused == [(503, None)]


async def test_too_many_requests_is_retried_after_the_hinted_wait(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.fail(429, 20429, retry_after="30")
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert parse_iso(notes[0]["sent_at"]) >= START + timedelta(seconds=30)  # the hint, not the 2 s backoff
    assert fake.refused == [(429, 20429)]


async def test_a_timeout_is_retried(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.slow(0.5)
    async with delivery(tmp_path, aiohttp_client, settings(server, timeout="100ms"), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]


async def test_a_refused_connection_is_retried_until_given_up(tmp_path: Path, aiohttp_client, unused_tcp_port) -> None:  # type: ignore[no-untyped-def]
    channel = {
        "type": "twilio_sms",
        "account_sid": ACCOUNT_SID,
        "auth_token": "${TWILIO_AUTH_TOKEN_TEST}",
        "from": FROM,
        "base_url": f"http://127.0.0.1:{unused_tcp_port}",
    }
    async with delivery(tmp_path, aiohttp_client, channel, to=["alice"], give_up_after_s=5) as run:
        await run.fire(1)
        (note,) = await run.settled()
    assert note["status"] == "failed" and note["attempts"] > 1
    assert note["error"].startswith(f"gave up after {note['attempts']} tries: ClientConnectorError")


async def test_a_wrong_auth_token_fails_at_once(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    async with delivery(
        tmp_path, aiohttp_client, settings(server, auth_token="${TWILIO_WRONG_TOKEN_TEST}"), to=["alice"]
    ) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert notes[0]["error"] == (
        "HTTP 401, Twilio error 20003: Authenticate (authentication failed: check account_sid and auth_token)"
    )
    assert fake.refused == [(401, 20003)] and fake.accepted == []


async def test_an_invalid_number_fails_at_once(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.refuse[ALICE] = 21211
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert "Twilio error 21211" in notes[0]["error"] and "not a valid number" in notes[0]["error"]


# -- rate limits and digests ---------------------------------------------------------------------------------------
async def test_a_burst_of_20_within_20_per_minute_is_all_delivered(
    tmp_path: Path, aiohttp_client, aiohttp_server
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTwilio(rate=(20, 60), max_concurrent=1)
    server = await aiohttp_server(fake.app)
    async with delivery(tmp_path, aiohttp_client, settings(server, rate_limit="20/min"), to=["alice"]) as run:
        await run.fire(20)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)] * 20
    assert len(fake.accepted) == 20 and fake.refused == []


async def test_a_burst_of_25_becomes_a_digest_the_fake_accepts(tmp_path: Path, aiohttp_client, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTwilio(rate=(20, 60), max_concurrent=1)
    server = await aiohttp_server(fake.app)
    async with delivery(tmp_path, aiohttp_client, settings(server, rate_limit="20/min"), to=["alice"]) as run:
        await run.fire(25)
        notes = await run.settled()
    assert {n["status"] for n in notes} == {"sent"} and len(notes) == 25
    assert fake.refused == [] and 1 <= len(fake.accepted) < 20
    body = fake.accepted[0].form["Body"]
    assert body.startswith("[FIRING] 25 alerts\n- DemoGaugeHigh (critical) web-1: ")
    assert len(body) == 1600 and body.endswith(TRUNCATED)  # 25 lines are more than an SMS takes


# -- the default template and the size limit -----------------------------------------------------------------------
def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("twilio_sms")


def test_every_single_firing_sms_carries_the_ack_link_and_digests_do_not() -> None:
    assert render_default("twilio_sms").text.endswith("\nAck: https://alerts.example.com/ack/1.1795000000.c2lnbmF0dXJl")
    assert "Ack:" not in render_default("twilio_sms", alerts=3).text
    assert "Ack:" not in render_default("twilio_sms", "resolved").text


async def test_a_huge_description_is_cut_and_the_ack_link_kept(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = TwilioSmsChannel("sms", settings(server, auth_token=AUTH_TOKEN))
    alert = sample_alert(annotations={"summary": "s " * 1000, "description": "word " * 2000})
    renderer = Renderer({"sms": {"type": "twilio_sms"}}, None)
    message = renderer.render("sms", "firing", [alert], "alice", CONTACTS["alice"], ACK_URL)
    assert channel.classify(await send(channel, message)).result == "ok"
    body = fake.accepted[0].form["Body"]
    assert len(body) <= 1600 and "word..." in body and body.endswith(f"Ack: {ACK_URL}")


async def test_an_sms_over_1600_characters_is_truncated_with_the_marker(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = TwilioSmsChannel("sms", settings(server, auth_token=AUTH_TOKEN))
    message = replace(render_default("twilio_sms"), text="告警 " * 2000)
    assert channel.classify(await send(channel, message)).result == "ok"  # the fake refuses over 1600 (21617)
    body = fake.accepted[0].form["Body"]
    assert len(body) == 1600 and body.endswith(TRUNCATED)
    assert fake.accepted[0].resource["num_segments"] == str(-(-1600 // 67))  # UCS-2 parts


async def test_the_fake_refuses_a_body_over_1600(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    async with aiohttp.ClientSession() as session:
        form = {"To": ALICE, "From": FROM, "Body": "x" * 1601}
        auth = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()}
        url = server.make_url(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
        async with session.post(url, data=form, headers=auth) as response:
            assert response.status == 400 and (await response.json())["code"] == 21617
    assert fake.authenticated == 1 and fake.accepted == []
