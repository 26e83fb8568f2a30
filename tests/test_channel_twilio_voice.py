"""The twilio_voice channel against a fake Twilio Calls API: the TwiML it sends, "press 1 to acknowledge" the
whole way round (the fake plays Twilio and calls the receiver back), answers, limits."""

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.base import TRUNCATED, Response, json_answer
from amcompanion.receiver.channels.twilio_voice import TWIML_LIMIT, TwilioVoiceChannel
from amcompanion.receiver.messages import Renderer
from tests.channel_support import (
    ACK_URL,
    CONTACTS,
    assert_default_goldens,
    assert_golden,
    delivery,
    render_default,
    sample_alert,
)
from tests.receiver_support import rows

ALICE = CONTACTS["alice"]["phone"]


@pytest.fixture(autouse=True)
def token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver refuses literal secrets in its config: the token comes from the environment."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_TEST", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_WRONG_TOKEN_TEST", "wrong-token")


def settings(server, **changes: object) -> dict:  # type: ignore[no-untyped-def]
    """Channel settings as the receiver config has them (a channel built directly gets the token itself)."""
    return {
        "type": "twilio_voice",
        "account_sid": ACCOUNT_SID,
        "auth_token": "${TWILIO_AUTH_TOKEN_TEST}",
        "from": FROM,
        "base_url": str(server.make_url("")),
        **changes,
    }


def direct(server, **changes: object) -> TwilioVoiceChannel:  # type: ignore[no-untyped-def]
    return TwilioVoiceChannel("voice", settings(server, auth_token=AUTH_TOKEN, **changes))


@pytest.fixture
async def fake_server(aiohttp_server):  # type: ignore[no-untyped-def]
    fake = FakeTwilio()
    server = await aiohttp_server(fake.app)
    return fake, server


async def send(channel: TwilioVoiceChannel, message) -> Response:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def firing(**changes: object):  # type: ignore[no-untyped-def]
    """A single firing alert as the outbox hands it over: row 7, the receiver's public URL."""
    return replace(
        render_default("twilio_voice"), notification_id=7, external_url="https://alerts.example.com", **changes
    )


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["twilio_voice"] is TwilioVoiceChannel


# -- what is sent --------------------------------------------------------------------------------------------------
async def test_a_call_reads_the_alert_and_gathers_one_digit(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    message = firing()
    response = await send(channel, message)
    assert channel.classify(response).result == "ok" and response.status == 201
    assert fake.authenticated == 1 and fake.refused == []
    (call,) = fake.accepted
    assert call.api == "Calls" and call.content_type == "application/x-www-form-urlencoded"
    assert call.resource["sid"].startswith("CA") and call.resource["status"] == "queued"
    assert call.form == {"To": ALICE, "From": FROM, "Twiml": channel.twiml(message)}
    assert call.form["Twiml"] == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Gather action="https://alerts.example.com/twilio/voice/7" input="dtmf" method="POST" numDigits="1"'
        ' timeout="10">'
        "<Say>Critical alert: HighErrorRate, on web-1.\ncheckout 5xx ratio at 7.5% on web-1.\n"
        "More than 5% of checkout requests fail.</Say>"
        "<Say>Press 1 to acknowledge.</Say></Gather>"
        "<Say>No key pressed. The alert is not acknowledged. Goodbye.</Say></Response>"
    )


async def test_voice_and_language_settings_go_on_every_say(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server, voice="Polly.Zhiyu", language="zh-CN")
    assert channel.classify(await send(channel, firing())).result == "ok"
    root = ET.fromstring(fake.accepted[0].form["Twiml"])
    says = root.findall(".//Say")
    assert [(s.get("voice"), s.get("language")) for s in says] == [("Polly.Zhiyu", "zh-CN")] * 3
    assert [s.text for s in says][1:] == ["按1确认。", "没有按键，告警未确认。再见。"]


async def test_untrusted_text_is_xml_escaped(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    text = 'disk </Say><Hangup/> & "quotes" <b>'
    assert channel.classify(await send(channel, firing(text=text))).result == "ok"  # the fake parses the TwiML
    root = ET.fromstring(fake.accepted[0].form["Twiml"])
    assert root.find(".//Hangup") is None and root.find(".//Gather/Say").text == text  # type: ignore[union-attr]


async def test_a_digest_or_a_resolve_notice_is_read_without_a_gather(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    for message in (render_default("twilio_voice", alerts=3), render_default("twilio_voice", "resolved")):
        message = replace(message, notification_id=7, external_url="https://alerts.example.com")
        assert channel.classify(await send(channel, message)).result == "ok"
    assert [call.gather for call in fake.accepted] == [None, None]
    assert ET.fromstring(fake.accepted[1].form["Twiml"]).find("Say").text == (  # type: ignore[union-attr]
        "Resolved: HighErrorRate, on web-1.\ncheckout 5xx ratio at 7.5% on web-1."
    )


# -- the whole way: a call, a keypress, an acknowledgement -------------------------------------------------------
async def test_pressing_1_on_the_call_acknowledges_the_alert_as_alice(
    tmp_path: Path, aiohttp_client, fake_server
) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        (note,) = await run.settled()
        assert (note["status"], note["attempts"], note["recipient"]) == ("sent", 1, "alice")
        (call,) = fake.accepted
        assert call.form["To"] == ALICE
        action = call.gather.get("action")  # type: ignore[union-attr]
        assert action == f"https://alerts.example.com/twilio/voice/{note['id']}"
        forged = await fake.press(run.client, "1", auth_token="not-the-token")  # someone else's signature
        assert forged.status == 403
        answer = await fake.press(run.client, "1")  # Twilio, signing the action URL with the auth token
        assert answer.status == 200 and answer.content_type == "application/xml"
        assert "Acknowledged" in await answer.text()
    (ack,) = rows(run.db, "SELECT by, via FROM acks")
    assert tuple(ack) == ("alice", "phone")
    (alert,) = rows(run.db, "SELECT id FROM alerts")
    assert rows(run.db, "SELECT COUNT(*) FROM acks WHERE alert_id = ?", alert["id"])[0][0] == 1


async def test_another_digit_does_not_acknowledge(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        await run.settled()
        answer = await fake.press(run.client, "2")
        assert answer.status == 200 and "Not acknowledged" in await answer.text()
    assert rows(run.db, "SELECT COUNT(*) FROM acks")[0][0] == 0


# -- reading answers and failing -----------------------------------------------------------------------------------
async def test_a_contact_without_a_phone_is_a_permanent_failure_with_the_reason(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    outcome = channel.classify(await send(channel, firing(recipient={})))
    assert (outcome.result, outcome.reason) == (
        "permanent",
        "not sent: alice has no phone number to call (contact field `phone`)",
    )
    assert fake.requests == 0


@pytest.mark.parametrize(
    ("status", "code", "result"),
    [
        (201, None, "ok"),
        (429, 20429, "retry"),
        (500, None, "retry"),
        (400, 21211, "permanent"),
        (401, 20003, "permanent"),
    ],
)
async def test_the_fakes_errors_are_classified(fake_server, status: int, code: int | None, result: str) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    if status != 201:
        fake.fail(status, code)
    channel = direct(server)
    outcome = channel.classify(await send(channel, firing()))
    assert outcome.result == result and (code is None or str(code) in outcome.reason)


async def test_a_server_error_is_retried_and_then_the_call_placed(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.fail(500, 20500)
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("sent", 2, None)]
    assert fake.refused == [(500, 20500)] and len(fake.accepted) == 1


async def test_an_unreachable_number_fails_at_once(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.refuse[ALICE] = 21214
    async with delivery(tmp_path, aiohttp_client, settings(server), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert notes[0]["error"] == (
        "HTTP 400, Twilio error 21214: 'To' phone number cannot be reached. (the contact's phone cannot be reached)"
    )


async def test_a_wrong_auth_token_fails_at_once(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    async with delivery(
        tmp_path, aiohttp_client, settings(server, auth_token="${TWILIO_WRONG_TOKEN_TEST}"), ["alice"]
    ) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert "Twilio error 20003" in notes[0]["error"] and fake.accepted == []


async def test_a_timeout_is_retried(tmp_path: Path, aiohttp_client, fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    fake.slow(0.5)
    async with delivery(tmp_path, aiohttp_client, settings(server, timeout="100ms"), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]


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


async def test_a_burst_of_25_becomes_one_call_reading_a_digest(tmp_path: Path, aiohttp_client, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTwilio(rate=(20, 60), max_concurrent=1)
    server = await aiohttp_server(fake.app)
    async with delivery(tmp_path, aiohttp_client, settings(server, rate_limit="20/min"), to=["alice"]) as run:
        await run.fire(25)
        notes = await run.settled()
    assert {n["status"] for n in notes} == {"sent"} and len(notes) == 25
    assert fake.refused == [] and 1 <= len(fake.accepted) < 20
    root = ET.fromstring(fake.accepted[0].form["Twiml"])
    assert fake.accepted[0].gather is None  # a digest is read, not acknowledged by one keypress
    assert root.find("Say").text.startswith("25 alerts firing.\n") and "And 15 more." in root.find("Say").text  # type: ignore[union-attr]


# -- the default template and the size limit -----------------------------------------------------------------------
def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("twilio_voice")


def test_the_call_twiml_renders_as_the_golden_text() -> None:
    channel = TwilioVoiceChannel("voice", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM})
    assert_golden("twilio_voice-twiml.txt", channel.twiml(firing()) + "\n")


async def test_a_huge_description_is_cut_by_the_template(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    alert = sample_alert(annotations={"summary": "s " * 1000, "description": "word " * 5000})
    renderer = Renderer({"voice": {"type": "twilio_voice"}}, None)
    message = renderer.render("voice", "firing", [alert], "alice", CONTACTS["alice"], ACK_URL)
    message = replace(message, notification_id=7, external_url="https://alerts.example.com")
    assert channel.classify(await send(channel, message)).result == "ok"
    speech = ET.fromstring(fake.accepted[0].form["Twiml"]).find(".//Gather/Say").text  # type: ignore[union-attr]
    assert "word..." in speech and len(speech) < 1000  # type: ignore[arg-type]


async def test_twiml_over_4000_characters_is_cut_in_the_speech_keeping_the_gather(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    message = firing(text="R&D <disk> full. " * 400)  # escaping makes the XML longer than the text
    assert channel.classify(await send(channel, message)).result == "ok"  # the fake refuses over 4000 (32018)
    twiml = fake.accepted[0].form["Twiml"]
    assert len(twiml) <= TWIML_LIMIT and len(twiml) > TWIML_LIMIT - 10
    gather = fake.accepted[0].gather
    assert gather is not None and gather.get("action") == "https://alerts.example.com/twilio/voice/7"
    assert gather.find("Say").text.endswith(TRUNCATED)  # type: ignore[union-attr]


async def test_the_fake_refuses_twiml_that_is_too_long_or_malformed(fake_server) -> None:  # type: ignore[no-untyped-def]
    fake, server = fake_server
    channel = direct(server)
    cases = (("<Response><Say>" + "x" * 4000 + "</Say></Response>", 32018), ("<Response><Say>", 12100))
    async with aiohttp.ClientSession() as session:
        for twiml, code in cases:
            response = await channel.account.create(
                session, lambda c, t=twiml: c.calls.create_async(to=ALICE, from_=FROM, twiml=t)
            )
            assert response.status == 400 and json_answer(response)["code"] == code
    assert fake.accepted == []
