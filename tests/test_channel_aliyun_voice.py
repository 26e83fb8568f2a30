"""The aliyun_voice channel against the fake Aliyun's Dyvmsapi: the exact V3-signed SingleCallByTts, the TTS
params within Aliyun's 250 characters, mainland numbers only (an international one is not called), each error class
and the per-number limit."""

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from amcompanion.fakes.aliyun import TTS_CODE, FakeAliyun
from amcompanion.fakes.robot import Answer
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.aliyun_sms import aliyun_length, template_params, utc_now
from amcompanion.receiver.channels.aliyun_voice import AliyunVoiceChannel
from amcompanion.receiver.channels.base import Outcome
from tests.channel_support import render_default
from tests.test_channel_aliyun_sms import (
    FIXED,
    assert_business_error,
    assert_default_goldens,
    call,
    channel_of,
    expected_signed,
    frozen,
    secrets_in_environment,  # noqa: F401 (the autouse fixture, for this module's tests too)
    send,
    signed_headers,
    start,
    through_a_receiver,
)
from tests.test_channel_aliyun_sms import settings as aliyun_settings

NONCE = "0b9d3f6e2a7c4e18b5d0f9a6c3e2b184"
SHOW_NUMBER = "057156781234"


def settings(base_url: str, **changes: object) -> dict:
    return aliyun_settings(base_url, "aliyun_voice", **changes)


def voice(base_url: str, now: Callable[[], datetime] = utc_now, **changes: object) -> AliyunVoiceChannel:
    return channel_of("aliyun_voice", base_url, now, **changes)


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["aliyun_voice"] is AliyunVoiceChannel


async def test_a_call_is_one_v3_signed_request_byte_for_byte(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun(now=FIXED.timestamp, show_numbers={SHOW_NUMBER})
    base = await start(aiohttp_server, fake)
    channel = channel_of("aliyun_voice", base, frozen, lambda: NONCE, called_show_number=SHOW_NUMBER)
    response = await send(channel, render_default("aliyun_voice"))
    assert (response.status, channel.classify(response)) == (200, Outcome("ok"))
    (received,) = fake.received
    assert (received.method, received.path, received.body) == ("POST", "/", b"")
    assert received.query == (
        "CalledNumber=13800000001&CalledShowNumber=057156781234&TtsCode=TTS_465000002"
        "&TtsParam=%7B%22alert%22%3A%22critical%20alert%20HighErrorRate%22%2C%22summary%22%3A%22checkout%205xx"
        "%20ratio%20at%207.5%25%20on%20web-1%22%7D"
    )
    assert signed_headers(received.headers) == expected_signed(
        "dyvmsapi.aliyuncs.com",
        "SingleCallByTts",
        NONCE,
        "8b0d07cd21efbf8693ca89f6ff9904fb61e81f49b0a1ea779f066da707d22ec5",
    )
    assert "content-type" not in received.headers  # an unsigned Content-Type would be refused
    assert received.answer["Code"] == "OK" and received.answer["CallId"]
    (shown,) = fake.shown()
    assert shown == shown.__class__(
        "call to 13800000001",
        "您好，这里是监控系统：critical alert HighErrorRate。checkout 5xx ratio at 7.5% on web-1。请及时处理。",
    )


async def test_without_a_show_number_the_call_goes_in_public_mode(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    assert channel.classify(await send(channel, render_default("aliyun_voice"))).result == "ok"
    assert "CalledShowNumber" not in fake.received[0].params


@pytest.mark.parametrize(
    ("alert", "summary"),
    [
        ("critical alert HighErrorRate", "word " * 200),
        ("告警" * 100, "磁盘" * 100),
        ("😀" * 100, "x" * 300),
    ],
)
async def test_the_tts_params_are_cut_to_fit_250_and_aliyun_takes_them(
    aiohttp_server, alert: str, summary: str
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    message = replace(render_default("aliyun_voice"), text=f"alert: {alert}\nsummary: {summary}")
    assert channel.classify(await send(channel, message)).result == "ok"  # never isv.PARAM_LENGTH_LIMIT
    tts_param = fake.received[0].params["TtsParam"]
    assert aliyun_length(tts_param) <= 249
    values = json.loads(tts_param)
    assert values["summary"].endswith("…")
    if aliyun_length(alert) < 100:
        assert values["alert"] == alert  # the longest value gives way first


async def test_the_fake_refuses_params_of_250_characters(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    params = {
        "CalledNumber": "13800000001",
        "TtsCode": TTS_CODE,
        "TtsParam": json.dumps({"alert": "a", "summary": "x" * 249}),
    }
    response = await call(channel, params)
    assert channel.classify(response) == Outcome(
        "permanent",
        "Aliyun voice isv.PARAM_LENGTH_LIMIT: 参数长度受限 (a template variable is longer than Aliyun takes)",
    )


@pytest.mark.parametrize(
    ("phone", "sent"),
    [
        ("+8613800000001", "13800000001"),
        ("+8657112345678", "057112345678"),
        ("13800000001", "13800000001"),
        ("+86057112345678", "057112345678"),  # a landline written with both +86 and its 0
        ("008613800000001", "13800000001"),  # the international prefix instead of the +
        ("8613800000001", "13800000001"),  # the country code without the +
        ("057112345678", "057112345678"),
    ],
)
async def test_a_mainland_mobile_or_landline_is_called_as_aliyun_writes_it(
    aiohttp_server, phone: str, sent: str
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    response = await send(channel, replace(render_default("aliyun_voice"), recipient={"phone": phone}))
    assert channel.classify(response).result == "ok"
    assert fake.received[0].params["CalledNumber"] == sent


@pytest.mark.parametrize("phone", ["+85261234567", "0085261234567"])
async def test_a_number_outside_mainland_china_is_not_called(aiohttp_server, phone: str) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    response = await send(channel, replace(render_default("aliyun_voice"), recipient={"phone": phone}))
    assert channel.classify(response) == Outcome(
        "permanent",
        f"not sent: alice's phone {phone} is outside mainland China, and Aliyun's voice service calls mainland"
        " numbers only (it stopped calls outside the mainland in March 2022)",
    )
    assert fake.received == []


async def test_a_contact_without_a_phone_is_not_called(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    response = await send(channel, replace(render_default("aliyun_voice"), recipient={}))
    assert channel.classify(response) == Outcome(
        "permanent", "not sent: alice has no phone number to call (contact field `phone`)"
    )
    assert fake.received == []


# -- each error class ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "code", "meaning"),
    [
        ({"tts_code": "TTS_000000"}, "isv.TTS_TEMPLATE_ILLEGAL", "tts_code is not an approved TTS template"),
        ({"called_show_number": "01012345678"}, "isv.DISPLAY_NUMBER_ILLEGAL", "called_show_number is not a number"),
        ({"phone": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL", "not a mainland number Aliyun can call"),
        ({"balance_left": False}, "isv.OUT_OF_SERVICE", "the account is suspended"),
    ],
)
async def test_business_errors_are_permanent_with_the_reason(
    aiohttp_server, change: dict, code: str, meaning: str
) -> None:  # type: ignore[no-untyped-def]
    await assert_business_error(aiohttp_server, "aliyun_voice", change, code, meaning)


async def test_a_second_call_within_the_minute_waits_for_the_number_limit(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = voice(await start(aiohttp_server, fake))
    first, second = (
        await send(channel, render_default("aliyun_voice")),
        await send(channel, render_default("aliyun_voice")),
    )
    assert channel.classify(first).result == "ok"
    assert channel.classify(second) == Outcome(
        "retry",
        "Aliyun voice isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1 (Aliyun's limit per called number: 1 call"
        " a minute, 5 an hour, 20 in 24 hours)",
        60.0,
        recipient_limit=True,  # the number's limit: the channel's other recipients are called meanwhile
    )


async def test_gateway_refusals_and_throttling(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun(qps=1, now=FIXED.timestamp)  # a frozen clock: the second below never ends
    base = await start(aiohttp_server, fake)
    wrong = voice(base, frozen, access_key_secret="not-the-secret")
    outcome = wrong.classify(await send(wrong, render_default("aliyun_voice")))
    assert outcome.result == "permanent" and outcome.reason.startswith("Aliyun voice SignatureDoesNotMatch: ")
    channel = voice(base, frozen)
    message = render_default("aliyun_voice")
    assert channel.classify(await send(channel, message)).result == "ok"
    bob = replace(message, recipient={"phone": "+8613800000002"})
    assert channel.classify(await send(channel, bob)) == Outcome(
        "retry", "Aliyun voice Throttling.User: Request was denied due to user flow control. (HTTP 400)", 1.0
    )


# -- through a receiver --------------------------------------------------------------------------------------------
async def test_a_call_through_a_receiver_reaches_alice(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    notes = await through_a_receiver(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)))
    assert [(n["status"], n["attempts"], n["recipient"]) for n in notes] == [("sent", 1, "alice")]
    (received,) = fake.accepted
    assert received.params["CalledNumber"] == "13800000001"
    assert json.loads(received.params["TtsParam"])["alert"] == "critical alert DemoGaugeHigh"


async def test_a_system_error_is_retried_and_then_the_call_made(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    fake.script = [Answer({"RequestId": "r", "Code": "isp.SYSTEM_ERROR", "Message": "系统错误"})]
    notes = await through_a_receiver(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)))
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.accepted) == 1


async def test_an_unknown_tts_template_fails_at_once(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    notes = await through_a_receiver(
        tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake), tts_code="TTS_000000")
    )
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert notes[0]["error"] == (
        "Aliyun voice isv.TTS_TEMPLATE_ILLEGAL: TTS模板不合法"
        " (tts_code is not an approved TTS template of this account)"
    )


# -- the default template ------------------------------------------------------------------------------------------
def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("aliyun_voice")


def test_the_default_template_gives_two_variables_as_public_mode_allows() -> None:
    for message in (render_default("aliyun_voice"), render_default("aliyun_voice", "resolved")):
        assert list(template_params(message.text)) == ["alert", "summary"]
    assert list(template_params(render_default("aliyun_voice", alerts=3).text)) == ["alert", "summary"]
