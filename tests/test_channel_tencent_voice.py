"""The tencent_voice channel against the fake Tencent Cloud API (amcompanion/fakes/tencent.py), on its VMS host: the
exact SendTtsVoice request, mainland-only numbers, each error class, the content limit, delivery through a receiver."""

import json
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.tencent import VOICE_TEMPLATE_ID, FakeTencent, Scripted
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.base import Outcome, json_answer
from amcompanion.receiver.channels.tencent_voice import TencentVoiceChannel
from tests.channel_support import CONTACTS, delivery, render_default
from tests.test_channel_tencent_sms import (
    T,
    assert_default_goldens,
    assert_the_exact_request,
    channel_of,
    secret_in_environment,  # noqa: F401 (the autouse fixture, for this module's tests too)
    send,
    start,
)
from tests.test_channel_tencent_sms import settings as tencent_settings

ALICE = CONTACTS["alice"]["phone"]

EXPECTED_BODY = (
    '{"TemplateId":"4356","TemplateParamSet":["CRITICAL","HighErrorRa…","web-1"],'
    '"CalledNumber":"+8613800000001","VoiceSdkAppid":"1400008888","PlayTimes":2}'
).encode()


def settings(base_url: str, **changes: object) -> dict:
    return tencent_settings(base_url, "tencent_voice", **changes)


async def direct(aiohttp_server, fake: FakeTencent, **changes: object) -> TencentVoiceChannel:  # type: ignore[no-untyped-def]
    return channel_of("tencent_voice", await start(aiohttp_server, fake), **changes)


@pytest.fixture
def fake() -> FakeTencent:
    return FakeTencent(now=lambda: T)


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["tencent_voice"] is TencentVoiceChannel


async def test_the_exact_request_for_a_known_message_verifies_in_the_fake(aiohttp_server, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    channel = await direct(aiohttp_server, fake)
    signature = "03f21a81380a8d546f634ebacd1f12ce48e14382a68fac25335f88b30ee2182b"
    response = await assert_the_exact_request(channel, fake, signature, EXPECTED_BODY)  # under the vms service
    assert (channel.api.version, channel.action, channel.api.host) == (
        "2020-09-02",
        "SendTtsVoice",
        "vms.tencentcloudapi.com",
    )
    status = json_answer(response)["Response"]["SendStatus"]
    assert len(status["CallId"]) == 32 and status["SessionContext"] == ""
    (sent,) = fake.sent
    assert sent.text == "监控告警通知：CRITICAL，HighErrorRa…，实例web-1。请及时处理。"
    assert fake.shown()[0].to == f"call to {ALICE}"


@pytest.mark.parametrize(
    ("recipient", "reason"),
    [
        ({"phone": "+14155550100"}, "not sent: alice's phone +14155550100 is not a mainland China number, and "
         "Tencent VMS calls only those"),
        ({"email": "alice@example.com"}, "not sent: alice has no phone number to call (contact field `phone`)"),
    ],
)  # fmt: skip
async def test_a_number_vms_cannot_call_is_not_sent(aiohttp_server, fake: FakeTencent, recipient, reason) -> None:  # type: ignore[no-untyped-def]
    channel = await direct(aiohttp_server, fake)
    response = await send(channel, replace(render_default("tencent_voice"), recipient=recipient))
    assert channel.classify(response) == Outcome("permanent", reason)
    assert fake.received == []


@pytest.mark.parametrize("phone", ["13800000001", "8613800000001", "008613800000001", "+86 138 0000 0001"])
async def test_a_mainland_mobile_without_its_country_code_is_called_in_e164(  # type: ignore[no-untyped-def]
    aiohttp_server, fake: FakeTencent, phone: str
) -> None:
    """CalledNumber is E.164 (+86…): a contact's mainland mobile written without +86 is still called."""
    channel = await direct(aiohttp_server, fake)
    response = await send(channel, replace(render_default("tencent_voice"), recipient={"phone": phone}))
    assert channel.classify(response) == Outcome("ok")
    assert json.loads(fake.received[0].body)["CalledNumber"] == ALICE
    assert [s.phone for s in fake.sent] == [ALICE]


@pytest.mark.parametrize(
    ("setup", "changes", "phone", "code", "hint"),
    [
        ({}, {}, "+8612345", "InvalidParameterValue.CalledNumberVerifyFail", "not a mainland China mobile number"),
        ({}, {"template_id": "1"}, ALICE, "FailedOperation.TemplateIncorrectOrUnapproved", "check template_id"),
        ({}, {"sdk_app_id": "1400000000"}, ALICE, "InvalidParameterValue.SdkAppidNotExist", "check sdk_app_id"),
        ({}, {"secret_key": "wrong"}, ALICE, "AuthFailure.SignatureFailure", "check secret_key"),
        ({"voice_balance": 0}, {}, ALICE, "FailedOperation.InsufficientBalanceInVoicePackage", "voice package"),
    ],
)
async def test_refused_calls_are_permanent_with_the_reason(  # type: ignore[no-untyped-def]
    aiohttp_server, setup: dict, changes: dict, phone: str, code: str, hint: str
) -> None:
    fake = FakeTencent(now=lambda: T, **setup)
    channel = await direct(aiohttp_server, fake, **changes)
    message = replace(render_default("tencent_voice"), recipient={"phone": phone})
    outcome = channel.classify(await send(channel, message))
    assert outcome.result == "permanent"
    assert outcome.reason.startswith(f"Tencent VMS {code}: ") and hint in outcome.reason
    assert fake.answered == [code] and fake.sent == []


async def test_a_signature_for_the_sms_host_does_not_call(aiohttp_server, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    """The Host picks the product: SendTtsVoice sent to the SMS host is an action SMS does not have."""
    channel = await direct(aiohttp_server, fake)
    body = channel.body(ALICE, render_default("tencent_voice"))
    async with aiohttp.ClientSession() as session:
        channel.api.host = "sms.tencentcloudapi.com"
        wrong_host = await channel.api.call(session, "SendTtsVoice", body)
    assert json_answer(wrong_host)["Response"]["Error"]["Code"] == "InvalidAction"
    assert fake.sent == []


async def test_too_many_calls_a_second_retry_after_a_second(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTencent(now=lambda: T, per_second={"SendTtsVoice": 1})
    channel = await direct(aiohttp_server, fake)
    assert channel.classify(await send(channel, render_default("tencent_voice"))).result == "ok"
    outcome = channel.classify(await send(channel, render_default("tencent_voice")))
    assert (outcome.result, outcome.retry_after) == ("retry", 1.0)
    assert outcome.reason.startswith("Tencent VMS RequestLimitExceeded: ")


async def test_a_scripted_frequency_rule_retries_and_an_internal_error_too(aiohttp_server, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    channel = await direct(aiohttp_server, fake)
    fake.script += [
        Scripted("LimitExceeded.DeliveryFrequencyLimit", "slow down"),
        Scripted("InternalError.UpstreamError"),
    ]
    limited = channel.classify(await send(channel, render_default("tencent_voice")))
    assert (limited.result, limited.retry_after) == ("retry", 30.0)
    upstream = channel.classify(await send(channel, render_default("tencent_voice")))
    assert (upstream.result, upstream.retry_after) == ("retry", None)
    fake.script.append(Scripted(body='{"Response": {"RequestId": "r"}}'))  # no SendStatus: not a placed call
    assert channel.classify(await send(channel, render_default("tencent_voice"))).result == "retry"


async def test_the_fake_refuses_a_call_over_350_characters(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTencent(now=lambda: T, voice_templates={VOICE_TEMPLATE_ID: "告" * 330 + "{1}{2}{3}"})
    channel = await direct(aiohttp_server, fake)
    outcome = channel.classify(await send(channel, render_default("tencent_voice")))
    assert outcome.result == "permanent" and "InvalidParameterValue.ContentLengthLimit" in outcome.reason


def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("tencent_voice")


async def test_a_call_through_a_receiver_reaches_alice(tmp_path: Path, aiohttp_client, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTencent()
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
        await run.resolve_all()
        notes = await run.settled()
    assert [(n["kind"], n["status"], n["attempts"]) for n in notes] == [("firing", "sent", 1), ("resolved", "sent", 1)]
    assert [(s.phone, s.params[0]) for s in fake.sent] == [(ALICE, "CRITICAL"), (ALICE, "RESOLVED")]
