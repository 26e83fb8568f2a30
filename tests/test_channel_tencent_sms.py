"""The tencent_sms channel against a fake Tencent Cloud API (amcompanion/fakes/tencent.py) that verifies Signature v3
as Tencent documents it: the exact request, each error class (top-level and per number in SendStatusSet, the 30 s
same-content rule included), the variables' limits, and delivery through a receiver.

The helpers above the tests serve tests/test_channel_tencent_voice.py too: both channels are one API 3.0 call."""

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.tencent import (
    SECRET_ID,
    SECRET_KEY,
    SIGN_NAME,
    SMS_APP_ID,
    SMS_TEMPLATE_ID,
    VOICE_APP_ID,
    VOICE_TEMPLATE_ID,
    FakeTencent,
    Scripted,
    canonical_request,
    hashed,
    tc3_signature,
)
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.base import Message, Outcome, Response, json_answer
from amcompanion.receiver.channels.tencent_sms import PARAM_LIMIT, TencentChannel, TencentSmsChannel, tc3_authorization
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.timeutil import parse_iso
from tests.channel_support import (
    CONTACTS,
    START,
    assert_default_goldens,
    render_default,
    sample_alert,
    through_a_receiver,
)

ALICE = CONTACTS["alice"]["phone"]
T = 1_795_000_000  # 2026-11-18T11:06:40Z
# what each channel type needs besides the API key: the fake's applications, signature and templates
PRODUCT_SETTINGS = {
    "tencent_sms": {"sdk_app_id": SMS_APP_ID, "sign_name": SIGN_NAME, "template_id": SMS_TEMPLATE_ID},
    "tencent_voice": {"sdk_app_id": VOICE_APP_ID, "template_id": VOICE_TEMPLATE_ID},
}
PRODUCT_NAMES = {"tencent_sms": "SMS", "tencent_voice": "VMS"}


EXPECTED_BODY = (
    '{"PhoneNumberSet":["+8613800000001"],"SmsSdkAppId":"1400006666","SignName":"运维告警","TemplateId":"1110",'
    '"TemplateParamSet":["CRITICAL","HighErrorRa…","web-1","checkout 5x…"]}'
).encode()  # HighErrorRate and the summary cut to 12 characters


class Clock:
    """One clock for the channel's timestamps and the fake's windows, moved by hand."""

    def __init__(self, at: float = T):
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver refuses literal secrets in its config: the key comes from the environment."""
    monkeypatch.setenv("TENCENT_SECRET_KEY_TEST", SECRET_KEY)
    monkeypatch.setenv("TENCENT_WRONG_KEY_TEST", "not-the-secret-key")


def settings(base_url: str, kind: str = "tencent_sms", **changes: object) -> dict:
    """Channel settings as the receiver config has them (a channel built directly gets the key itself)."""
    return {
        "type": kind,
        "secret_id": SECRET_ID,
        "secret_key": "${TENCENT_SECRET_KEY_TEST}",
        **PRODUCT_SETTINGS[kind],
        "base_url": base_url,
        **changes,
    }


def channel_of(kind: str, base_url: str, now: Callable[[], float] = lambda: T, **changes: object) -> TencentChannel:
    """A channel of `kind` built directly, the SecretKey given as it is."""
    return CHANNEL_TYPES[kind](kind, settings(base_url, kind, **{"secret_key": SECRET_KEY, **changes}), now=now)


async def start(aiohttp_server, fake: FakeTencent) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


async def send(channel: TencentChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def sent_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers a channel set (aiohttp's own Accept, Accept-Encoding and User-Agent left out)."""
    return {k: v for k, v in headers.items() if k not in ("Accept", "Accept-Encoding", "User-Agent")}


async def assert_the_exact_request(channel: TencentChannel, fake: FakeTencent, signature: str, body: bytes) -> Response:
    """Sends the default message of the channel's type at T and checks the request as the fake got it: POST /, the
    headers the channel sets (Signature v3 over content-type and host, `signature`, under T's UTC date and the
    product's service), `body` byte for byte, and that the fake verified it. Returns the answer."""
    response = await send(channel, render_default(channel.type))
    assert channel.classify(response) == Outcome("ok")
    (request,) = fake.received
    assert (request.method, request.path) == ("POST", "/")
    assert sent_headers(request.headers) == {
        "Authorization": f"TC3-HMAC-SHA256 Credential=AKIDfakeTencentSecretId0123456789abc/2026-11-18/"
        f"{channel.service}/tc3_request, SignedHeaders=content-type;host, Signature={signature}",
        "Content-Type": "application/json; charset=utf-8",
        "Host": f"{channel.service}.tencentcloudapi.com",
        "X-TC-Action": channel.action,
        "X-TC-Timestamp": "1795000000",
        "X-TC-Version": channel.version,
        "X-TC-Region": "ap-guangzhou",
        "Content-Length": str(len(request.body)),
    }
    assert request.body == body
    assert fake.answered == []  # the signature verified
    return response


def answer(body: object, status: int = 200) -> Response:
    return Response(status, {}, json.dumps(body).encode())


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> FakeTencent:
    return FakeTencent(now=clock)


@pytest.fixture
async def channel(aiohttp_server, fake: FakeTencent, clock: Clock) -> TencentChannel:  # type: ignore[no-untyped-def]
    return channel_of("tencent_sms", await start(aiohttp_server, fake), clock)


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["tencent_sms"] is TencentSmsChannel


def test_the_fakes_signer_reproduces_tencents_published_example() -> None:
    """Signature v3's worked example (cloud.tencent.com/document/api/213/30654): CVM DescribeInstances, signed with
    the document's masked key as written, at 1551113065."""
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    headers = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}
    canonical = canonical_request("POST", "/", "", headers, ["content-type", "host"], payload)
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert hashed(canonical.encode()) == "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    signature = "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    assert tc3_signature("Gu5t9xGARNpq86cd98joQYCN3*******", 1551113065, "cvm", canonical) == signature
    # the channel's own signer, written apart, gives the document's Authorization too
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******", "cvm", 1551113065, headers, payload
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


# -- what is sent --------------------------------------------------------------------------------------------------
async def test_the_exact_request_for_a_known_message_verifies_in_the_fake(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    signature = "6f1ba778e433d4509870d3768277cbdec83e4cb41deedd9fdf255c90ddaabedc"
    response = await assert_the_exact_request(channel, fake, signature, EXPECTED_BODY)
    assert channel.api.version == "2021-01-11" and channel.action == "SendSms"
    (status,) = json_answer(response)["Response"]["SendStatusSet"]
    assert (status["PhoneNumber"], status["Code"], status["Fee"], status["IsoCode"]) == (ALICE, "Ok", 1, "CN")
    (sent,) = fake.sent
    assert sent.text == "【运维告警】告警通知：[CRITICAL] HighErrorRa…，实例 web-1，checkout 5x…"
    assert [s.text for s in fake.shown()] == [sent.text] and fake.shown()[0].to == f"SMS to {ALICE}"


async def test_a_request_changed_after_signing_is_refused(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    body = b'{"PhoneNumberSet":["+8613800000001"]}'
    headers = channel.api.headers("SendSms", body)
    tampered = body.replace(b"01", b"02")
    async with aiohttp.ClientSession() as session, session.post(channel.api.url, data=tampered, headers=headers) as got:
        answer = Response(got.status, got.headers, await got.read())
    outcome = channel.classify(answer)
    assert (answer.status, outcome.result) == (200, "permanent")
    assert outcome.reason.startswith("Tencent SMS AuthFailure.SignatureFailure: The provided credentials could not")
    assert fake.answered == ["AuthFailure.SignatureFailure"] and fake.sent == []


async def test_a_malformed_authorization_is_refused(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    body = b"{}"
    headers = {**channel.api.headers("SendSms", body), "Authorization": "Bearer something"}
    async with aiohttp.ClientSession() as session, session.post(channel.api.url, data=body, headers=headers) as got:
        assert (await got.json())["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


async def test_the_fake_verifies_a_request_signed_as_tencents_sdks_sign_it(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    """tencentcloud-sdk-python and -go send Content-Type application/json (no charset) and their own JSON spacing and
    escapes; what is signed is what was sent, so the fake takes that too."""
    body = json.dumps(channel.body(ALICE, render_default("tencent_sms"))).encode()  # ASCII escapes, ", " and ": "
    signed = {"content-type": "application/json", "host": "sms.tencentcloudapi.com"}
    headers = {
        **channel.api.headers("SendSms", body),
        "Content-Type": "application/json",
        "Authorization": tc3_authorization(SECRET_ID, SECRET_KEY, "sms", T, signed, body),
    }
    async with aiohttp.ClientSession() as session, session.post(channel.api.url, data=body, headers=headers) as got:
        response = Response(got.status, got.headers, await got.read())
    assert channel.classify(response) == Outcome("ok") and fake.answered == []
    assert fake.sent[0].params == ["CRITICAL", "HighErrorRa…", "web-1", "checkout 5x…"]


# -- auth errors are permanent, with what to check -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "shift", "code", "hint"),
    [
        ({"secret_key": "not-the-key"}, 0, "AuthFailure.SignatureFailure", "check secret_key"),
        ({"secret_id": "AKIDunknown"}, 0, "AuthFailure.SecretIdNotFound", "check secret_id"),
        ({}, 301, "AuthFailure.SignatureExpire", "the receiver's clock is more than 5 minutes off"),
        ({"sdk_app_id": "1400000000"}, 0, "InvalidParameterValue.SdkAppIdNotExist", "check sdk_app_id"),
        ({"template_id": "9999"}, 0, "FailedOperation.TemplateIncorrectOrUnapproved", "check template_id"),
        ({"sign_name": "别的签名"}, 0, "FailedOperation.SignatureIncorrectOrUnapproved", "check sign_name"),
    ],
)
async def test_refused_requests_are_permanent_with_the_reason(  # type: ignore[no-untyped-def]
    aiohttp_server, fake: FakeTencent, clock: Clock, changes: dict, shift: float, code: str, hint: str
) -> None:
    base = await start(aiohttp_server, fake)
    channel = channel_of("tencent_sms", base, lambda: clock() - shift, **changes)
    outcome = channel.classify(await send(channel, render_default("tencent_sms")))
    assert outcome.result == "permanent"
    assert outcome.reason.startswith(f"Tencent SMS {code}: ") and f"({hint}" in outcome.reason
    assert "[RequestId " in outcome.reason
    assert fake.answered == [code] and fake.sent == []


# -- per-number status in SendStatusSet ----------------------------------------------------------------------------
async def test_the_same_content_to_the_same_number_waits_30_seconds(channel, fake: FakeTencent, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    message = render_default("tencent_sms")
    assert channel.classify(await send(channel, message)).result == "ok"
    clock.at += 29
    again = await send(channel, message)
    (status,) = json_answer(again)["Response"]["SendStatusSet"]
    assert status["Code"] == "LimitExceeded.PhoneNumberThirtySecondLimit"  # HTTP 200, and no top-level error
    outcome = channel.classify(again)
    assert (outcome.result, outcome.retry_after) == ("retry", 30.0)
    assert outcome.reason.startswith("Tencent SMS LimitExceeded.PhoneNumberThirtySecondLimit: ")
    other = replace(message, text=message.text.replace("web-1", "web-2"))
    assert channel.classify(await send(channel, other)).result == "ok"  # other content is not held
    clock.at += 1
    assert channel.classify(await send(channel, message)).result == "ok"
    assert len(fake.sent) == 3


async def test_the_daily_cap_of_a_number_holds_that_number_only(aiohttp_server, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTencent(now=clock, daily_limit=2)
    channel = channel_of("tencent_sms", await start(aiohttp_server, fake), clock)
    message = render_default("tencent_sms")
    for _ in range(3):
        clock.at += 31  # past the same-content rule
        outcome = channel.classify(await send(channel, message))
    # the cap is the number's: only its message waits (the give-up time, 1h by default, comes first)
    assert (outcome.result, outcome.retry_after, outcome.recipient_limit) == ("retry", 3600.0, True)
    assert outcome.reason.startswith("Tencent SMS LimitExceeded.PhoneNumberDailyLimit: ")
    assert "the number's daily cap" in outcome.reason and len(fake.sent) == 2


@pytest.mark.parametrize(
    ("setup", "phone", "code", "hint"),
    [
        ({}, "+86123", "InvalidParameterValue.IncorrectPhoneNumber", "not a valid number"),
        ({"sms_balance": 0}, ALICE, "FailedOperation.InsufficientBalanceInSmsPackage", "SMS package is used up"),
        ({"blacklist": {ALICE}}, ALICE, "FailedOperation.PhoneNumberInBlacklist", "unsubscribed"),
    ],
)
async def test_a_number_tencent_will_not_text_is_permanent(  # type: ignore[no-untyped-def]
    aiohttp_server, clock: Clock, setup: dict, phone: str, code: str, hint: str
) -> None:
    fake = FakeTencent(now=clock, **setup)
    channel = channel_of("tencent_sms", await start(aiohttp_server, fake), clock)
    response = await send(channel, replace(render_default("tencent_sms"), recipient={"phone": phone}))
    assert "Error" not in json_answer(response)["Response"]  # the refusal is the number's, in SendStatusSet
    outcome = channel.classify(response)
    assert outcome.result == "permanent"
    assert outcome.reason.startswith(f"Tencent SMS {code}: ") and hint in outcome.reason


async def test_the_fake_takes_200_numbers_a_call_and_refuses_more(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    body = channel.body(ALICE, render_default("tencent_sms"))
    numbers = [f"+86138{n:08d}" for n in range(201)]
    async with aiohttp.ClientSession() as session:
        accepted = await channel.api.call(session, "SendSms", {**body, "PhoneNumberSet": numbers[:200]})
        refused = await channel.api.call(session, "SendSms", {**body, "PhoneNumberSet": numbers})
        mixed = await channel.api.call(session, "SendSms", {**body, "PhoneNumberSet": [ALICE, "+14155550100"]})
    assert [s["Code"] for s in json_answer(accepted)["Response"]["SendStatusSet"]] == ["Ok"] * 200
    assert json_answer(refused)["Response"]["Error"]["Code"] == "LimitExceeded.PhoneNumberCountLimit"
    assert channel.classify(refused).result == "permanent"  # a malformed call, not a rate
    error = json_answer(mixed)["Response"]["Error"]["Code"]
    assert error == "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"
    assert len(fake.sent) == 200


# -- the other error classes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scripted", "result", "wait", "reason"),
    [
        (Scripted("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify failed."), "permanent", None,
         "Tencent SMS UnauthorizedOperation.SmsSdkAppIdVerifyFail: SmsSdkAppId verify failed. (sdk_app_id is not"),
        (Scripted("InvalidParameterValue.ContentLengthLimit", "too long"), "permanent", None,
         "Tencent SMS InvalidParameterValue.ContentLengthLimit: too long"),
        (Scripted("InternalError.Timeout", "timeout"), "retry", None, "Tencent SMS InternalError.Timeout: timeout"),
        (Scripted("LimitExceeded.DeliveryFrequencyLimit", per_number=True), "retry", 30.0,
         "Tencent SMS LimitExceeded.DeliveryFrequencyLimit: "),
        (Scripted(status=502, body="<html>Bad Gateway</html>"), "retry", None, "HTTP 502: <html>Bad Gateway</html>"),
        (Scripted(body="<html>a proxy's page</html>"), "retry", None, "unexpected answer: <html>a proxy's page"),
        (Scripted(body='{"Response": {"RequestId": "r"}}'), "retry", None, 'unexpected answer: {"Response"'),
    ],
)  # fmt: skip
async def test_each_answer_is_read_as_tencent_means_it(  # type: ignore[no-untyped-def]
    channel, fake: FakeTencent, scripted: Scripted, result: str, wait: float | None, reason: str
) -> None:
    fake.script.append(scripted)
    outcome = channel.classify(await send(channel, render_default("tencent_sms")))
    assert (outcome.result, outcome.retry_after) == (result, wait)
    assert outcome.reason.startswith(reason)
    assert fake.sent == []


async def test_too_many_requests_a_second_retry_after_a_second(aiohttp_server, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTencent(now=clock, per_second={"SendSms": 1})
    channel = channel_of("tencent_sms", await start(aiohttp_server, fake), clock)
    message = render_default("tencent_sms")
    assert channel.classify(await send(channel, message)).result == "ok"
    outcome = channel.classify(await send(channel, replace(message, text="other\nlines\nof\ntext")))
    assert (outcome.result, outcome.retry_after) == ("retry", 1.0)
    assert outcome.reason.startswith("Tencent SMS RequestLimitExceeded: ")


async def test_a_contact_without_a_phone_is_not_sent(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    response = await send(channel, replace(render_default("tencent_sms"), recipient={"email": "alice@example.com"}))
    assert channel.classify(response) == Outcome(
        "permanent", "not sent: alice has no phone number to text (contact field `phone`)"
    )
    assert fake.received == []


@pytest.mark.parametrize("phone", ["13800000001", "8613800000001", "008613800000001", "+86 138-0000-0001"])
async def test_a_mainland_mobile_is_sent_in_e164_however_the_contact_writes_it(
    channel, fake: FakeTencent, phone
) -> None:  # type: ignore[no-untyped-def]
    """SendSms wants +[country code][number]: a mainland mobile without its +86 gets it."""
    response = await send(channel, replace(render_default("tencent_sms"), recipient={"phone": phone}))
    assert channel.classify(response) == Outcome("ok")
    assert json.loads(fake.received[0].body)["PhoneNumberSet"] == ["+8613800000001"]


async def test_another_number_is_sent_as_the_contact_has_it(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    await send(channel, replace(render_default("tencent_sms"), recipient={"phone": "+14155550100"}))
    assert json.loads(fake.received[0].body)["PhoneNumberSet"] == ["+14155550100"]


# -- every answer Tencent documents, and the ones a network in between makes ---------------------------------------
@pytest.mark.parametrize(
    ("kind", "code", "result", "wait", "per_number"),
    [
        ("tencent_sms", "ServiceUnavailable", "retry", None, False),  # a common code: the service is busy
        ("tencent_voice", "ServiceUnavailable", "retry", None, False),
        ("tencent_voice", "FailedOperation.AccessUpstreamTimeout", "retry", None, False),  # VMS: "try again later"
        ("tencent_voice", "InternalError.AccessUpstreamTimeout", "retry", None, False),
        ("tencent_sms", "InternalError.Timeout", "retry", None, False),
        ("tencent_sms", "InternalError.SigVerificationFail", "permanent", None, False),  # the request is wrong
        ("tencent_voice", "InternalError.RestApiInterfaceNotExist", "permanent", None, False),
        ("tencent_sms", "InternalError.RequestTimeException", "permanent", None, False),  # our clock
        ("tencent_sms", "LimitExceeded.PhoneNumberCountLimit", "permanent", None, False),  # > 200 numbers
        ("tencent_sms", "LimitExceeded.AppCountryOrRegionInBlacklist", "permanent", None, False),  # a setting's
        ("tencent_sms", "LimitExceeded.AppDailyLimit", "retry", None, False),  # the application's: the channel's
        ("tencent_sms", "LimitExceeded.PhoneNumberOneHourLimit", "retry", 3600.0, True),  # the number's
        ("tencent_voice", "LimitExceeded.DeliveryFrequencyLimit", "retry", 30.0, True),
        ("tencent_sms", "RequestLimitExceeded.UinLimitExceeded", "retry", 1.0, False),
        ("tencent_voice", "UnauthorizedOperation.VoiceSdkAppidVerifyFail", "permanent", None, False),
        ("tencent_sms", "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone", "permanent", None, False),
    ],
)
def test_each_error_code_is_read_as_tencent_means_it(  # type: ignore[no-untyped-def]
    kind: str, code: str, result: str, wait: float | None, per_number: bool
) -> None:
    outcome = channel_of(kind, "http://unused").classify(
        answer({"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}})
    )
    assert (outcome.result, outcome.retry_after, outcome.recipient_limit) == (result, wait, per_number)
    assert outcome.reason.startswith(f"Tencent {PRODUCT_NAMES[kind]} {code}: m")
    assert outcome.reason.endswith("[RequestId r]")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "m"}, "RequestId": "r"}},
         Outcome("retry", "Tencent SMS RequestLimitExceeded: m [RequestId r] (HTTP 400)", 1.0)),
        (400, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "m"}, "RequestId": "r"}},
         Outcome("permanent",
                 "Tencent SMS AuthFailure.SignatureFailure: m (check secret_key) [RequestId r] (HTTP 400)")),
        (503, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "m"}}},
         Outcome("retry", "Tencent SMS AuthFailure.SignatureFailure: m (check secret_key) (HTTP 503)")),
        (429, {"message": "Too Many Requests"}, Outcome("retry", 'HTTP 429: {"message": "Too Many Requests"}')),
        (404, {"Response": {"SendStatusSet": [{"Code": "Ok"}]}},  # a result in an error status is not trusted
         Outcome("permanent", 'HTTP 404: {"Response": {"SendStatusSet": [{"Code": "Ok"}]}}')),
    ],
)  # fmt: skip
def test_another_http_status_is_read_by_the_error_it_carries(status: int, body: dict, expected: Outcome) -> None:
    """Tencent answers 200; a gateway or proxy in between may not, and a Tencent error it passes on keeps its
    meaning (a rate limit is not a refusal), though a 5xx or 429 is never given up on."""
    assert channel_of("tencent_sms", "http://unused").classify(answer(body, status)) == expected


@pytest.mark.parametrize(
    ("statuses", "result"),
    [
        ([{"SerialNo": "2028:1", "PhoneNumber": ALICE, "Fee": 1, "SessionContext": "", "Code": "Ok",
           "Message": "send success", "IsoCode": "CN", "SomethingNew": {"x": 1}}], "ok"),  # new fields: no matter
        ([{"SerialNo": "2028:1", "PhoneNumber": ALICE, "Fee": 1}], "retry"),  # no Code: nobody knows what it got
        ([{"Code": None, "Message": "send success"}], "retry"),
        ([], "retry"),
        ([{"Code": "OK", "Message": "send success"}], "ok"),  # the case of the documented "Ok" aside
    ],
)  # fmt: skip
def test_a_send_status_is_a_delivery_only_with_its_ok_code(statuses: list, result: str) -> None:
    outcome = channel_of("tencent_sms", "http://unused").classify(
        answer({"Response": {"SendStatusSet": statuses, "RequestId": "r"}})
    )
    assert outcome.result == result
    if result == "retry":
        assert outcome.reason.startswith("unexpected answer: ")


def test_an_empty_body_or_a_proxy_page_is_not_a_delivery() -> None:
    channel = channel_of("tencent_sms", "http://unused")
    assert channel.classify(Response(200, {}, b"")) == Outcome("retry", "unexpected answer: ")
    assert channel.classify(Response(200, {}, b"<html>proxy</html>")).result == "retry"
    assert channel.classify(answer({"Response": "busy"})).result == "retry"
    assert channel.classify(Response(502, {}, b"Bad Gateway")) == Outcome("retry", "HTTP 502: Bad Gateway")


# -- the variables and their limits --------------------------------------------------------------------------------
async def test_long_variables_are_cut_and_links_dropped_so_tencent_takes_them(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    alert = sample_alert(labels={"instance": "https://shop.example.com/health"}, annotations={"summary": "告警" * 50})
    renderer = Renderer({"sms": {"type": "tencent_sms"}}, None)
    message = renderer.render("sms", "firing", [alert], "alice", CONTACTS["alice"], "")
    assert channel.classify(await send(channel, message)).result == "ok"  # the fake: an individual-verified account
    (sent,) = fake.sent
    assert sent.params == ["CRITICAL", "HighErrorRa…", "shop.exampl…", "告警告警告警告警告警告…"]
    assert all(len(param) <= PARAM_LIMIT for param in sent.params)


@pytest.mark.parametrize(
    ("param", "code"),
    [
        ("x" * (PARAM_LIMIT + 1), "InvalidParameterValue.TemplateParameterLengthLimit"),
        ("see http://x.cn", "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter"),
    ],
)
async def test_the_fake_refuses_variables_tencent_refuses(channel, fake: FakeTencent, param: str, code: str) -> None:  # type: ignore[no-untyped-def]
    body = {**channel.body(ALICE, render_default("tencent_sms")), "TemplateParamSet": ["a", "b", "c", param]}
    async with aiohttp.ClientSession() as session:
        response = await channel.api.call(session, "SendSms", body)
    assert json_answer(response)["Response"]["Error"]["Code"] == code
    assert channel.classify(response).result == "permanent"


async def test_a_template_with_another_number_of_lines_is_refused_with_the_reason(channel, fake: FakeTencent) -> None:  # type: ignore[no-untyped-def]
    outcome = channel.classify(await send(channel, replace(render_default("tencent_sms"), text="one\ntwo\nthree")))
    assert outcome.result == "permanent"
    assert "The template has 4 variables, TemplateParamSet has 3." in outcome.reason
    assert "renders one line per variable of the approved template" in outcome.reason


def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("tencent_sms")


def test_every_kind_of_message_renders_as_many_variables_as_the_approved_template_has() -> None:
    for kind, alerts in (("firing", 1), ("resolved", 1), ("firing", 3), ("resolved", 3)):
        message = render_default("tencent_sms", kind, alerts=alerts)
        assert len(message.text.split("\n")) == 4 and "" not in message.text.split("\n")
    odd = sample_alert(labels={"alertname": "X"}, annotations={"summary": "two\nlines"}, severity="")
    message = Renderer({"sms": {"type": "tencent_sms"}}, None).render("sms", "firing", [odd], "a", {}, "")
    assert message.text.split("\n") == ["ALERT", "HighErrorRate", "-", "two lines"]


# -- through a receiver --------------------------------------------------------------------------------------------
async def test_an_sms_through_a_receiver_reaches_alice(tmp_path: Path, aiohttp_client, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeTencent()
    notes = await through_a_receiver(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)))
    assert [(n["status"], n["attempts"], n["recipient"]) for n in notes] == [("sent", 1, "alice")]
    (sent,) = fake.sent
    assert (sent.phone, sent.params[:3]) == (ALICE, ["CRITICAL", "DemoGaugeHi…", "web-1"])


async def test_the_30_second_rule_is_waited_out_through_a_receiver(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_client, aiohttp_server
) -> None:
    fake = FakeTencent()
    fake.script.append(Scripted("LimitExceeded.PhoneNumberThirtySecondLimit", per_number=True))
    notes = await through_a_receiver(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)))
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert parse_iso(notes[0]["sent_at"]) >= START + timedelta(seconds=30)  # Tencent's window, not the 2 s backoff
    assert fake.answered == ["LimitExceeded.PhoneNumberThirtySecondLimit"] and len(fake.sent) == 1


async def test_a_wrong_secret_key_fails_at_once_through_a_receiver(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_client, aiohttp_server
) -> None:
    fake = FakeTencent()
    channel = settings(await start(aiohttp_server, fake), secret_key="${TENCENT_WRONG_KEY_TEST}")
    (note,) = await through_a_receiver(tmp_path, aiohttp_client, channel)
    assert (note["status"], note["attempts"]) == ("failed", 1)
    assert note["error"].startswith("Tencent SMS AuthFailure.SignatureFailure: ")
    assert "(check secret_key)" in note["error"]
    assert fake.sent == []


@pytest.mark.parametrize("kind", ["tencent_sms", "tencent_voice"])
async def test_the_demo_builds_the_fake_from_a_channels_settings(aiohttp_server, kind: str) -> None:  # type: ignore[no-untyped-def]
    own = {"secret_id": "AKIDdemo", "secret_key": "demo-key", "sdk_app_id": "1400123456", "template_id": "77"}
    sms = {"sign_name": "演示"} if kind == "tencent_sms" else {}
    fake = FakeTencent.for_channel({"type": kind, **own, **sms})
    channel = CHANNEL_TYPES[kind]("demo", {**own, **sms, "base_url": await start(aiohttp_server, fake)})
    assert channel.classify(await send(channel, render_default(kind))) == Outcome("ok")
    assert [shown.to for shown in fake.shown()] == [f"{'SMS' if kind == 'tencent_sms' else 'call'} to {ALICE}"]
