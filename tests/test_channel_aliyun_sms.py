"""The aliyun_sms channel against a fake Aliyun Dysmsapi that checks what Aliyun checks: the exact V3-signed request
(the fake's signer reproduces Aliyun's worked example), the template's `name: value` params and their cut to 35
characters, the numbers, each error class (gateway and business codes), the per-number limit and throttling.

The helpers above the tests serve tests/test_channel_aliyun_voice.py too: both channels are one Aliyun call."""

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from amcompanion.fakes.aliyun import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    SIGN_NAME,
    SMS_TEMPLATE_CODE,
    TTS_CODE,
    FakeAliyun,
    canonical_request,
    v3_signature,
)
from amcompanion.fakes.robot import Answer
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.aliyun_sms import (
    AliyunChannel,
    AliyunSmsChannel,
    aliyun_length,
    canonical_query,
    cut,
    random_nonce,
    template_params,
    utc_now,
    v3_headers,
)
from amcompanion.receiver.channels.base import Message, Outcome, Response
from amcompanion.receiver.messages import Renderer
from amcompanion.receiver.timeutil import parse_iso
from tests.channel_support import assert_default_goldens, delivery, render_default, through_a_receiver
from tests.receiver_support import rows

FIXED = datetime(2026, 11, 22, 22, 47, 30, tzinfo=UTC)
NONCE = "5f0a6d3c8b2e4f1a9c7d6e5b4a392817"
# what each channel type needs besides the AccessKey: the fake's approved signature and templates
PRODUCT_SETTINGS = {
    "aliyun_sms": {"sign_name": SIGN_NAME, "template_code": SMS_TEMPLATE_CODE},
    "aliyun_voice": {"tts_code": TTS_CODE},
}
PRODUCT_NAMES = {"aliyun_sms": "SMS", "aliyun_voice": "voice"}


def frozen() -> datetime:
    """The channel's clock in tests that fix it (the fake's then is FIXED.timestamp)."""
    return FIXED


@pytest.fixture(autouse=True)
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver refuses literal secrets in its config: the AccessKey secret comes from the environment."""
    monkeypatch.setenv("ALIYUN_SECRET_TEST", ACCESS_KEY_SECRET)
    monkeypatch.setenv("ALIYUN_WRONG_SECRET_TEST", "not-the-secret")


async def start(aiohttp_server, fake: FakeAliyun) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("")).rstrip("/")


def settings(base_url: str, kind: str = "aliyun_sms", **changes: object) -> dict:
    """The channel's settings as the receiver config has them (a channel built here gets the secret itself)."""
    return {
        "type": kind,
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": "${ALIYUN_SECRET_TEST}",
        **PRODUCT_SETTINGS[kind],
        "base_url": base_url,
        **changes,
    }


def channel_of(
    kind: str,
    base_url: str,
    now: Callable[[], datetime] = utc_now,
    nonce: Callable[[], str] = random_nonce,
    **changes: object,
) -> AliyunChannel:
    """A channel of `kind` built directly, the AccessKey secret given as it is."""
    built = settings(base_url, kind, **{"access_key_secret": ACCESS_KEY_SECRET, **changes})
    return CHANNEL_TYPES[kind](kind, built, now=now, nonce=nonce)


def sms(base_url: str, now: Callable[[], datetime] = utc_now, **changes: object) -> AliyunSmsChannel:
    return channel_of("aliyun_sms", base_url, now, **changes)


async def send(channel: AliyunChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


async def call(channel: AliyunChannel, params: dict[str, str]) -> Response:
    """A call with these very parameters (what a channel that did not cut would send)."""
    async with aiohttp.ClientSession() as session:
        return await channel.call(session, params)


def signed_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers V3 signs, and the Authorization, of a request the fake received."""
    return {k: v for k, v in headers.items() if k.startswith("x-acs-") or k in ("host", "authorization")}


def expected_signed(host: str, action: str, nonce: str, signature: str) -> dict[str, str]:
    """What a channel signs at FIXED with `nonce`: host and the x-acs-* headers, and the Authorization."""
    return {
        "host": host,  # the service's, though the request went to the fake's port
        "x-acs-action": action,
        "x-acs-version": "2017-05-25",
        "x-acs-date": "2026-11-22T22:47:30Z",
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "authorization": "ACS3-HMAC-SHA256 Credential=LTAI5tFakeAliyunKeyId0001,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        f"Signature={signature}",
    }


async def assert_business_error(aiohttp_server, kind: str, change: dict, code: str, meaning: str) -> None:  # type: ignore[no-untyped-def]
    """A refusal Aliyun answers in an HTTP 200 body, for the account, settings or phone `change` gives: permanent,
    with Aliyun's code and what it means; nothing accepted."""
    change = dict(change)
    fake = FakeAliyun()
    fake.balance_left = change.pop("balance_left", True)
    message = render_default(kind)
    if "phone" in change:
        message = replace(message, recipient={"phone": change.pop("phone")})
    channel = channel_of(kind, await start(aiohttp_server, fake), **change)
    response = await send(channel, message)
    outcome = channel.classify(response)
    assert response.status == 200 and json.loads(response.body)["Code"] == code
    assert (
        outcome.result == "permanent"
        and outcome.reason.startswith(f"Aliyun {PRODUCT_NAMES[kind]} {code}: ")
        and meaning in outcome.reason
    )
    assert fake.accepted == []


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["aliyun_sms"] is AliyunSmsChannel


def test_the_fakes_signer_reproduces_aliyuns_worked_example() -> None:
    """The fixed example of Aliyun's "V3 request structure and signature" (ECS RunInstances, its AccessKey secret,
    nonce and date): the fake's canonical request hashes and signs to the values the document gives."""
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-content-sha256": empty,
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-version": "2014-05-26",
    }
    query = [("RegionId", "cn-shanghai"), ("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd")]
    canonical = canonical_request("POST", "/", query, headers, sorted(headers), empty)
    assert (
        canonical.split("\n")[2] == "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
    )
    assert sha256(canonical.encode()).hexdigest() == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert v3_signature("YourAccessKeySecret", canonical) == (
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


# -- what is sent --------------------------------------------------------------------------------------------------
async def test_an_sms_is_one_v3_signed_request_byte_for_byte(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun(now=FIXED.timestamp)
    channel = channel_of("aliyun_sms", await start(aiohttp_server, fake), frozen, lambda: NONCE)
    response = await send(channel, render_default("aliyun_sms"))
    assert (response.status, channel.classify(response)) == (200, Outcome("ok"))
    (received,) = fake.received
    assert (received.method, received.path, received.body) == ("POST", "/", b"")
    assert received.query == (
        "PhoneNumbers=13800000001"
        "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95"
        "&TemplateCode=SMS_465000001"
        "&TemplateParam=%7B%22status%22%3A%22FIRING%22%2C%22alertname%22%3A%22HighErrorRate%22%2C%22severity%22"
        "%3A%22critical%22%2C%22summary%22%3A%22checkout%205xx%20ratio%20at%207.5%25%20on%20web-1%22%7D"
    )
    assert signed_headers(received.headers) == expected_signed(
        "dysmsapi.aliyuncs.com", "SendSms", NONCE, "02a22bc65d41711a617b19e4eab688f05b16c4771399cd4431bc12eb0fc2fd63"
    )
    assert "content-type" not in received.headers  # an unsigned Content-Type would be refused
    assert received.answer["Code"] == "OK" and received.answer["BizId"]


async def test_the_template_param_is_what_the_template_gives(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake))
    assert channel.classify(await send(channel, render_default("aliyun_sms"))).result == "ok"
    assert json.loads(fake.received[0].params["TemplateParam"]) == {
        "status": "FIRING",
        "alertname": "HighErrorRate",
        "severity": "critical",
        "summary": "checkout 5xx ratio at 7.5% on web-1",
    }
    (shown,) = fake.shown()
    assert shown.to == "SMS to 13800000001"
    assert (
        shown.text
        == "【阿里云短信测试】监控告警（FIRING）：HighErrorRate，级别critical，checkout 5xx ratio at 7.5% on web-1"
    )


def test_the_templates_text_defines_the_params() -> None:
    text = "status: FIRING\n\nsummary: disk full\n  on web-1, see: the runbook\nseverity:critical\nstatus: RESOLVED"
    assert template_params(text) == {
        "status": "RESOLVED",  # a name given twice takes its last value
        "summary": "disk full on web-1, see: the runbook",  # a line of another form continues the value above
        "severity": "critical",
    }
    assert template_params("[FIRING] 1 alert\nno params here") == {}


async def test_a_template_without_params_sends_none_and_aliyun_says_what_is_missing(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake))
    outcome = channel.classify(await send(channel, replace(render_default("aliyun_sms"), text="[FIRING] disk full")))
    assert "TemplateParam" not in fake.received[0].params
    assert outcome == Outcome(
        "permanent",
        "Aliyun SMS isv.TEMPLATE_MISSING_PARAMETERS: 模板变量中存在未赋值变量 (the approved template has a variable"
        " the channel's template gives no `name: value` line for)",
    )


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("x" * 36, "x" * 34 + "…"),
        ("磁盘" * 30, "磁盘" * 17 + "…"),
        ("😀" * 20, "😀" * 17 + "…"),  # two UTF-16 units each, as Aliyun's Java counts
        ("word " * 20, "word word word word word word word…"),
        ("see https://grafana.example.com/d/abc on 10.0.0.7:9100", "see (link) on (IP)"),
        ("", "-"),
        ("x" * 35, "x" * 35),
    ],
)
async def test_each_value_is_cut_to_35_and_aliyun_takes_it(aiohttp_server, value: str, sent: str) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake))
    message = replace(render_default("aliyun_sms"), text=f"status: FIRING\nalertname: A\nseverity: x\nsummary: {value}")
    assert channel.classify(await send(channel, message)).result == "ok"  # never isv.PARAM_LENGTH_LIMIT
    assert json.loads(fake.received[0].params["TemplateParam"])["summary"] == sent
    assert aliyun_length(sent) <= 35


def test_a_cut_fits_the_limit_for_any_mix_of_characters() -> None:
    for value in ("a😀" * 30, "😀a" * 30, "中" * 100, "a" * 100, "😀" * 18):
        for limit in (1, 2, 35, 249):
            assert aliyun_length(cut(value, limit)) <= limit


async def test_the_fake_refuses_what_was_not_cut_or_holds_a_link(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake))
    base = {"PhoneNumbers": "13800000001", "SignName": SIGN_NAME, "TemplateCode": SMS_TEMPLATE_CODE}
    variables = {"status": "FIRING", "alertname": "A", "severity": "x"}
    too_long = await call(channel, {**base, "TemplateParam": json.dumps({**variables, "summary": "x" * 36})})
    assert channel.classify(too_long) == Outcome(
        "permanent",
        "Aliyun SMS isv.PARAM_LENGTH_LIMIT: 参数超出长度限制 (a template variable is longer than Aliyun takes)",
    )
    link = await call(channel, {**base, "TemplateParam": json.dumps({**variables, "summary": "see https://x.cn"})})
    outcome = channel.classify(link)
    assert outcome.result == "permanent" and outcome.reason.startswith("Aliyun SMS isv.PARAM_NOT_SUPPORT_URL: ")
    not_json = await call(channel, {**base, "TemplateParam": '{"status": 1}'})
    assert channel.classify(not_json).reason.startswith("Aliyun SMS isv.INVALID_JSON_PARAM: ")
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("phone", "sent"),
    [
        ("+8613800000001", "13800000001"),  # mainland: without +86
        ("+85261234567", "85261234567"),  # international: country code and number, without the +
        ("+86 138 0000 0001", "13800000001"),
        ("13800000001", "13800000001"),  # no country code: as written
        ("008613800000001", "008613800000001"),  # a form SendSms documents for a mainland number
        ("0085261234567", "85261234567"),  # the international prefix dialled instead of the +
    ],
)
async def test_numbers_are_sent_as_aliyun_wants_them(aiohttp_server, phone: str, sent: str) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake))
    response = await send(channel, replace(render_default("aliyun_sms"), recipient={"phone": phone}))
    assert channel.classify(response).result == "ok"
    assert fake.received[0].params["PhoneNumbers"] == sent


async def test_a_contact_without_a_phone_is_not_sent_and_permanent(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake))
    response = await send(channel, replace(render_default("aliyun_sms"), recipient={"email": "alice@example.com"}))
    assert channel.classify(response) == Outcome(
        "permanent", "not sent: alice has no phone number to text (contact field `phone`)"
    )
    assert fake.received == []


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("ap-southeast-1", "dysmsapi.ap-southeast-1.aliyuncs.com"),
        ("us-east-1", "dysmsapi.us-east-1.aliyuncs.com"),  # in the SDK's endpoint map
        ("cn-hangzhou", "dysmsapi.aliyuncs.com"),
    ],
)
async def test_a_region_outside_the_mainland_uses_its_own_endpoint(aiohttp_server, region: str, host: str) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = sms(await start(aiohttp_server, fake), region=region)
    assert channel.classify(await send(channel, render_default("aliyun_sms"))).result == "ok"
    assert fake.received[0].headers["host"] == host


async def test_the_fake_refuses_an_unsigned_content_type_or_an_unknown_api(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """Why the channel sends no Content-Type: aiohttp adds one for an empty body, and Aliyun wants every one signed."""
    fake = FakeAliyun()
    base = await start(aiohttp_server, fake)
    query = canonical_query({"PhoneNumbers": "13800000001"})
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = v3_headers(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "dysmsapi.aliyuncs.com", "SendSms", query, date, NONCE)
    async with aiohttp.ClientSession() as session:
        async with session.post(URL(f"{base}/?{query}", encoded=True), headers=headers) as response:
            assert (response.status, (await response.json())["Code"]) == (400, "IncompleteSignature")
        other = {**headers, "x-acs-action": "SendBatchSms"}
        async with session.post(URL(f"{base}/?{query}", encoded=True), headers=other) as response:
            assert (response.status, (await response.json())["Code"]) == (404, "InvalidAction.NotFound")
    assert fake.received[0].headers["content-type"] == "application/octet-stream"


async def test_the_fake_takes_the_parameters_in_a_signed_form_body_too(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """V3 lets an RPC call carry its parameters in an application/x-www-form-urlencoded body (signed by the body's
    hash, the content-type header signed): the fake reads them there as Aliyun does, whichever of the two places a
    client picks. The channel sends them in the query, as the SDK does."""
    fake = FakeAliyun()
    base = await start(aiohttp_server, fake)
    variables = json.dumps(dict.fromkeys(("status", "alertname", "severity", "summary"), "v"))
    params = {"PhoneNumbers": "13800000001", "SignName": SIGN_NAME, "TemplateCode": SMS_TEMPLATE_CODE}
    body = canonical_query({**params, "TemplateParam": variables})
    digest = sha256(body.encode()).hexdigest()
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "host": "dysmsapi.aliyuncs.com",
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-action": "SendSms",
        "x-acs-content-sha256": digest,
        "x-acs-date": date,
        "x-acs-signature-nonce": NONCE,
        "x-acs-version": "2017-05-25",
    }
    canonical = canonical_request("POST", "/", [], headers, sorted(headers), digest)
    authorization = (
        f"ACS3-HMAC-SHA256 Credential={ACCESS_KEY_ID},SignedHeaders={';'.join(sorted(headers))},"
        f"Signature={v3_signature(ACCESS_KEY_SECRET, canonical)}"
    )
    signed = {**headers, "authorization": authorization}
    async with aiohttp.ClientSession() as session, session.post(f"{base}/", data=body.encode(), headers=signed) as got:
        assert (got.status, (await got.json())["Code"]) == (200, "OK")
    (received,) = fake.accepted
    assert received.query == "" and received.params["PhoneNumbers"] == "13800000001"
    assert json.loads(received.params["TemplateParam"])["status"] == "v"


async def test_the_demo_builds_the_fake_from_the_channels_settings(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    mine = {"access_key_id": "LTAI5tMine", "sign_name": "我的签名", "template_code": "SMS_1"}
    fake = FakeAliyun.from_settings({**mine, "access_key_secret": "my-secret"})
    channel = sms(await start(aiohttp_server, fake), **mine, access_key_secret="my-secret")
    assert channel.classify(await send(channel, render_default("aliyun_sms"))).result == "ok"
    assert fake.shown()[0].text.startswith("【我的签名】监控告警（FIRING）：HighErrorRate")


# -- each error class ----------------------------------------------------------------------------------------------
async def test_the_gateways_refusals_are_read_as_aliyun_means_them(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun(qps=1, now=FIXED.timestamp)  # a frozen clock: the second below never ends
    base = await start(aiohttp_server, fake)
    message = render_default("aliyun_sms")

    wrong_secret = sms(base, frozen, access_key_secret="not-the-secret")
    response = await send(wrong_secret, message)
    outcome = wrong_secret.classify(response)
    assert (response.status, outcome.result) == (400, "permanent")
    assert outcome.reason.startswith("Aliyun SMS SignatureDoesNotMatch: Specified signature does not match our")
    assert outcome.reason.endswith("(HTTP 400) (access_key_secret is not the secret of access_key_id)")

    unknown_key = sms(base, frozen, access_key_id="LTAI5tSomeoneElse")
    response = await send(unknown_key, message)
    assert (response.status, unknown_key.classify(response)) == (
        404,
        Outcome(
            "permanent",
            "Aliyun SMS InvalidAccessKeyId.NotFound: Specified access key is not found. (HTTP 404)"
            " (access_key_id is not a key of this Aliyun account)",
        ),
    )

    skewed = sms(base, lambda: FIXED - timedelta(minutes=16))
    response = await send(skewed, message)
    outcome = skewed.classify(response)
    assert (response.status, outcome.result) == (400, "permanent")
    assert outcome.reason == (
        "Aliyun SMS InvalidTimeStamp.Expired: Specified time stamp or date value is expired. (HTTP 400)"
        " (this host's clock is more than 15 minutes off)"
    )

    fixed_nonce = AliyunSmsChannel(
        "sms", settings(base, access_key_secret=ACCESS_KEY_SECRET), now=frozen, nonce=lambda: NONCE
    )
    first, replayed = await send(fixed_nonce, message), await send(fixed_nonce, message)
    assert fixed_nonce.classify(first).result == "ok"
    assert (replayed.status, fixed_nonce.classify(replayed).result) == (400, "retry")  # a new nonce will do
    assert json.loads(replayed.body)["Code"] == "SignatureNonceUsed"

    throttled = await send(sms(base, frozen), message)  # a second SendSms within the second: over qps=1
    outcome = sms(base).classify(throttled)
    assert (throttled.status, outcome) == (
        400,
        Outcome("retry", "Aliyun SMS Throttling.User: Request was denied due to user flow control. (HTTP 400)", 1.0),
    )
    assert len(fake.accepted) == 1


@pytest.mark.parametrize(
    ("change", "code", "meaning"),
    [
        ({"template_code": "SMS_000000"}, "isv.SMS_TEMPLATE_ILLEGAL", "template_code is not an approved template"),
        ({"sign_name": "别人的签名"}, "isv.SMS_SIGNATURE_ILLEGAL", "sign_name is not an approved signature"),
        ({"phone": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL", "the contact's phone is not a number Aliyun takes"),
        ({"balance_left": False}, "isv.AMOUNT_NOT_ENOUGH", "the account's balance is too low"),
    ],
)
async def test_business_errors_come_in_http_200_and_are_permanent_with_the_reason(
    aiohttp_server, change: dict, code: str, meaning: str
) -> None:  # type: ignore[no-untyped-def]
    await assert_business_error(aiohttp_server, "aliyun_sms", change, code, meaning)


async def test_the_per_number_limit_retries_after_its_window(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    fake.sms_number_limits = [(2, 86400.0)]  # Aliyun's is 50 a day per number, signature and template
    channel = sms(await start(aiohttp_server, fake))
    message = render_default("aliyun_sms")
    answers = [await send(channel, message) for _ in range(3)]
    assert [channel.classify(a).result for a in answers] == ["ok", "ok", "retry"]
    outcome = channel.classify(answers[2])
    assert outcome.retry_after == 86400.0
    assert outcome.reason.startswith("Aliyun SMS isv.BUSINESS_LIMIT_CONTROL: 触发天级流控Permits:2 (Aliyun's limit per")
    bob = await send(channel, replace(message, recipient={"phone": "+8613800000002"}))
    assert channel.classify(bob).result == "ok"  # the limit is per number


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (200, {}, {"Code": "OK", "Message": "OK", "BizId": "1^0"}, ("ok", None)),
        (200, {}, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"}, ("retry", 60.0)),
        (200, {}, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发小时级流控Permits:5"}, ("retry", 3600.0)),
        (200, {}, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发天级流控Permits:10"}, ("retry", 86400.0)),
        (200, {}, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发业务流控"}, ("retry", 3600.0)),
        (400, {"x-acs-retry-after": "2500"}, {"Code": "Throttling.User", "Message": "flow control"}, ("retry", 2.5)),
        (400, {}, {"Code": "Throttling.Api", "Message": "flow control"}, ("retry", None)),
        (200, {}, {"Code": "isp.SYSTEM_ERROR", "Message": "系统出现错误"}, ("retry", None)),
        (503, {}, {"Code": "ServiceUnavailable", "Message": "busy"}, ("retry", None)),
        (500, {}, {"Code": "InternalError", "Message": "oops"}, ("retry", None)),
        (200, {}, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "该账号下找不到对应模板"}, ("permanent", None)),
        (200, {}, {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "该账号下找不到对应签名"}, ("permanent", None)),
        (200, {}, {"Code": "isv.PARAM_LENGTH_LIMIT", "Message": "参数超出长度限制"}, ("permanent", None)),
        (200, {}, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}, ("permanent", None)),
        (200, {}, {"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "账户余额不足"}, ("permanent", None)),
        (404, {}, {"Code": "InvalidAccessKeyId.NotFound", "Message": "not found"}, ("permanent", None)),
        (400, {}, {"Code": "SignatureDoesNotMatch", "Message": "not matched"}, ("permanent", None)),
        # the SDK takes any error answer with x-acs-retry-after (ms) for throttling, whatever its code
        (400, {"x-acs-retry-after": "3000"}, {"Code": "ConcurrencyLimitExceeded", "Message": "busy"}, ("retry", 3.0)),
        (503, {"x-acs-retry-after": "0"}, {"Code": "ServiceUnavailable", "Message": "busy"}, ("retry", None)),
        # HTTP 429 and 408 retry whatever code they carry
        (429, {"Retry-After": "5"}, {"Code": "TooManyRequests", "Message": "slow down"}, ("retry", 5.0)),
        (408, {}, {"Code": "RequestTimeout", "Message": "timed out"}, ("retry", None)),
        # a gateway error as the SDK also reads it, its keys in lower case
        (400, {}, {"code": "SignatureDoesNotMatch", "message": "not matched"}, ("permanent", None)),
        (200, {}, {"Code": "OK", "Message": "OK", "BizId": "1^0", "RequestId": "r", "Unknown": {"a": 1}}, ("ok", None)),
    ],
)
def test_classify_reads_aliyuns_code(status: int, headers: dict, body: dict, expected: tuple) -> None:
    channel = sms("http://unused")
    outcome = channel.classify(Response(status, headers, json.dumps(body, ensure_ascii=False).encode()))
    assert (outcome.result, outcome.retry_after) == expected
    if expected[0] != "ok":
        code, text = body.get("Code", body.get("code")), body.get("Message", body.get("message"))
        assert code in outcome.reason and text in outcome.reason


def test_the_meaning_of_a_code_in_lower_case_keys_is_given_too() -> None:
    answer = Response(400, {}, b'{"code": "SignatureDoesNotMatch", "message": "not matched", "requestId": "r"}')
    assert sms("http://unused").classify(answer) == Outcome(
        "permanent",
        "Aliyun SMS SignatureDoesNotMatch: not matched (HTTP 400)"
        " (access_key_secret is not the secret of access_key_id)",
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            200,
            "<?xml version='1.0' encoding='UTF-8'?><SendSmsResponse><Message>OK</Message>"
            "<RequestId>r</RequestId><BizId>1^0</BizId><Code>OK</Code></SendSmsResponse>",
            Outcome("ok"),
        ),
        (
            400,
            "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>r</RequestId>"
            "<HostId>dysmsapi.aliyuncs.com</HostId><Code>SignatureDoesNotMatch</Code>"
            "<Message>Specified signature does not match &amp; more</Message></Error>",
            Outcome(
                "permanent",
                "Aliyun SMS SignatureDoesNotMatch: Specified signature does not match & more (HTTP 400)"
                " (access_key_secret is not the secret of access_key_id)",
            ),
        ),
        (
            200,
            "<SendSmsResponse><Code>isv.BUSINESS_LIMIT_CONTROL</Code><Message>触发分钟级流控Permits:1</Message>"
            "</SendSmsResponse>",
            Outcome(
                "retry",
                "Aliyun SMS isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1 (Aliyun's limit per number: 50"
                " notifications a day per signature and template, verification codes 1 a minute, 5 an hour, 10 a day)",
                60.0,
                recipient_limit=True,
            ),
        ),
    ],
)
def test_an_xml_answer_is_read_as_the_json_one(status: int, body: str, expected: Outcome) -> None:
    """Aliyun answers XML to a client that asks for no JSON (the SDK reads an XML error too): a delivery in XML is
    a delivery, not an unexpected answer to retry (which would send the SMS twice)."""
    assert sms("http://unused").classify(Response(status, {}, body.encode())) == expected


def test_an_answer_that_is_not_aliyuns_is_never_a_delivery() -> None:
    channel = sms("http://unused")
    assert channel.classify(Response(200, {}, b"<html>proxy</html>")) == Outcome(
        "retry", "unexpected answer: <html>proxy</html>"
    )
    assert channel.classify(Response(502, {}, b"Bad Gateway")) == Outcome("retry", "HTTP 502: Bad Gateway")
    assert channel.classify(Response(403, {}, b"Forbidden")).result == "permanent"
    throttled = Response(400, {"x-acs-retry-after": "1500"}, b"Bad Request")
    assert channel.classify(throttled) == Outcome("retry", "HTTP 400: Bad Request", 1.5)
    assert channel.classify(Response(200, {}, b"")) == Outcome("retry", "unexpected answer: ")
    assert channel.classify(Response(200, {}, b'{"RequestId": "r"}')).result == "retry"  # no Code: no delivery
    assert channel.classify(Response(200, {}, b"<html><body><Code>OK</Code></body></html>")).result == "retry"


# -- through a receiver --------------------------------------------------------------------------------------------
async def test_an_sms_through_a_receiver_reaches_alice(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    notes = await through_a_receiver(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)))
    assert [(n["status"], n["attempts"], n["recipient"]) for n in notes] == [("sent", 1, "alice")]
    (received,) = fake.accepted
    assert received.params["PhoneNumbers"] == "13800000001"
    assert json.loads(received.params["TemplateParam"])["alertname"] == "DemoGaugeHigh"


async def test_a_per_number_limit_through_a_receiver_waits_its_window(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    fake.script = [
        Answer({"RequestId": "r", "Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"})
    ]
    async with delivery(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)), to=["alice"]) as run:
        await run.fire(1)
        for _ in range(200):
            (note,) = rows(run.db, "SELECT * FROM notifications")
            if note["attempts"] == 1:
                break
            await asyncio.sleep(0.01)
        assert note["status"] == "queued" and "isv.BUSINESS_LIMIT_CONTROL" in note["error"]
        wait = parse_iso(note["next_attempt_at"]) - run.clock.now()
        assert timedelta(seconds=59) <= wait <= timedelta(seconds=60)
        await run.clock.advance(60)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.accepted) == 1


async def test_one_numbers_limit_holds_only_that_number_and_the_others_are_texted_meanwhile(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    """A per-number flow control is not the channel failing: its circuit breaker stays closed (with it open, the
    next number's page would wait the day out too). One message at a time, so the second is sent after the first
    was refused."""
    fake = FakeAliyun()
    fake.script = [
        Answer({"RequestId": "r", "Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发天级流控Permits:50"})
    ]
    channel = {**settings(await start(aiohttp_server, fake)), "max_in_flight": 1}
    async with delivery(tmp_path, aiohttp_client, channel, to=["alice", "bob"]) as run:
        await run.fire(1)
        for _ in range(500):
            notes = rows(run.db, "SELECT * FROM notifications ORDER BY id")
            if all(note["attempts"] == 1 for note in notes):
                break
            await asyncio.sleep(0.01)
        limited, texted = sorted(notes, key=lambda note: note["status"] == "sent")
        assert (limited["status"], texted["status"]) == ("queued", "sent"), [dict(n) for n in notes]
        assert "isv.BUSINESS_LIMIT_CONTROL" in limited["error"]
        assert parse_iso(limited["next_attempt_at"]) - run.clock.now() >= timedelta(minutes=59)  # to the give-up
    assert len(fake.accepted) == 1


async def test_a_server_error_is_retried_and_then_delivered(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    fake.script = [Answer("Service Unavailable", status=503)]
    notes = await through_a_receiver(tmp_path, aiohttp_client, settings(await start(aiohttp_server, fake)))
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("sent", 2, None)]


async def test_a_wrong_secret_fails_at_once_with_the_reason(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeAliyun()
    channel = settings(await start(aiohttp_server, fake), access_key_secret="${ALIYUN_WRONG_SECRET_TEST}")
    notes = await through_a_receiver(tmp_path, aiohttp_client, channel)
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert notes[0]["error"].startswith("Aliyun SMS SignatureDoesNotMatch: ")
    assert notes[0]["error"].endswith("(access_key_secret is not the secret of access_key_id)")
    assert fake.accepted == []


# -- the default template ------------------------------------------------------------------------------------------
def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("aliyun_sms")


def test_a_label_value_with_a_line_break_cannot_set_another_variable() -> None:
    alert_message = render_default("aliyun_sms")
    alert = dict(alert_message.alerts[0])
    alert["annotations"] = {"summary": "disk full\nstatus: RESOLVED"}
    renderer = Renderer({"sms": {"type": "aliyun_sms"}}, None)
    message = renderer.render("sms", "firing", [alert], "alice", {"phone": "+8613800000001"}, "")
    assert template_params(message.text)["status"] == "FIRING"
    assert template_params(message.text)["summary"] == "disk full status: RESOLVED"
