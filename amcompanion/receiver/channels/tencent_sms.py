"""Tencent Cloud SMS through `SendSms` (API 2021-01-11); also the Tencent Cloud API 3.0 call and answer reading the
voice channel (tencent_voice) shares.

Every API 3.0 call is a POST of a JSON body to the product's host, signed with TC3-HMAC-SHA256 ("Signature v3"):
the signature covers the body and the content-type and host headers, under a credential scope of the request
timestamp's UTC date and the product; Tencent refuses a timestamp more than 5 minutes off. Tencent's SDK
(tencentcloud-sdk-python) is blocking (requests) and large, and the signature is a few lines of hashlib and hmac,
so it is written here, and the call made on the outbox's aiohttp session. The timestamp comes from `now`, a
constructor argument (tests fix it). With `base_url` the request goes elsewhere but keeps Tencent's Host header,
which is signed.

Tencent answers HTTP 200 whatever happened: {"Response": {"Error": {"Code", "Message"}, "RequestId"}} for a refused
request, else the result, for SendSms one SendStatus per number in SendStatusSet, each with its own Code ("Ok", or
why that number got nothing: a frequency rule, an invalid number, the package used up). Both are read: request
frequency (RequestLimitExceeded), the LimitExceeded.* rules (but the account's country blacklist and more than 200
numbers), ServiceUnavailable and the upstream timeouts retry, the short ones after their window; credentials,
signature, template, SdkAppId and number errors are permanent, with what to check. Another HTTP status (a proxy, a
gateway in between) is read by its Error when it carries one, else by the status; a 200 without the result, or a
SendStatus without its Code, is never taken for a delivery.

The numbers are sent in E.164, as SendSms and SendTtsVoice want them: a mainland mobile written without its country
code (138…, 86138…, 0086138…) gets +86; any other number is sent as the contact has it.

The message is an approved template (模板) whose variables are positional, {1}, {2}, …: the channel's jinja2
template renders one variable per line, in order (webhook/templates/tencent_sms.j2 says which), and each is cut to
12 characters, the most an individual-verified account's variable may hold (organization-verified accounts have no
per-variable limit; the whole SMS, signature included, stays within 500 characters). A variable may not hold a link:
the SMS carries no acknowledgement link, and "http://", "https://" and "www." are dropped from every variable.

Sources: cloud.tencent.com/document/api/213/30654 (Signature v3), /document/api/382/55981 (SendSms 2021-01-11, its
error codes), /document/api/1553/75174 (common error codes), tencentcloud.com/document/product/382/40659 (template
variables: 12 characters for individual-verified accounts, no links, 500 characters in all), /document/product/382/13303
(the default frequency rules: the same content to a number at most once in 30 s), the Go SDK's
tencentcloud/sms/v20210111/errors.go (github.com/TencentCloud/tencentcloud-sdk-go), and both SDKs' signers
(tencentcloud-sdk-python common/abstract_client.py `_build_req_with_tc3_signature`, the Go SDK's common/client.go
`sendWithSignatureV3`: only content-type and host signed, the scope's date the timestamp's UTC date).
"""

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp

from amcompanion.receiver.channels.base import (
    Message,
    Outcome,
    Response,
    http_outcome,
    json_answer,
    no_phone,
    not_sent_outcome,
    phone_of,
    rebase,
    retry_after_header,
    truncate,
)

DEFAULT_REGION = "ap-guangzhou"
CONTENT_TYPE = "application/json; charset=utf-8"
PARAM_LIMIT = 12  # characters of one template variable (individual-verified accounts; the strictest rule)
LINK = re.compile(r"https?://|www\.", re.IGNORECASE)
MAINLAND_MOBILE = re.compile(r"(?:0086|86)?(1[3-9]\d{9})")
REQUEST_WAIT_S = 1.0  # RequestLimitExceeded: the API's frequency limits are per second
# The per-number rules and how long each holds: only that number's message waits (Outcome.recipient_limit), the
# channel's other recipients are sent to meanwhile; a wait past the message's give-up time ends in a failed page,
# which takes the policy's next step. The other LimitExceeded rules (the application's caps) retry on the backoff.
LIMIT_WAITS = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,  # the same content to a number at most once in 30 s
    "LimitExceeded.DeliveryFrequencyLimit": 30.0,  # a frequency rule of the console's, the default one 30 s
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,  # resets at midnight China time; the give-up time comes first
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600.0,
}
# What a code means for whoever reads the failed row.
EXPLAINED = {
    "AuthFailure.SecretIdNotFound": "check secret_id",
    "AuthFailure.InvalidSecretId": "check secret_id: it is not an API key's SecretId",
    "AuthFailure.SignatureFailure": "check secret_key",
    "AuthFailure.SignatureExpire": "the receiver's clock is more than 5 minutes off",
    "AuthFailure.UnauthorizedOperation": "the API key may not call this product (CAM policy)",
    "FailedOperation.TemplateIncorrectOrUnapproved": "check template_id, and that the channel's template renders one "
    "line per variable of the approved template",
    "FailedOperation.SignatureIncorrectOrUnapproved": "check sign_name: an approved signature's text",
    "FailedOperation.InsufficientBalanceInSmsPackage": "the account's SMS package is used up",
    "FailedOperation.InsufficientBalanceInVoicePackage": "the account's voice package is used up",
    "FailedOperation.PhoneNumberInBlacklist": "the contact's phone unsubscribed or is on a carrier's blacklist",
    "InvalidParameterValue.SdkAppIdNotExist": "check sdk_app_id",
    "InvalidParameterValue.SdkAppidNotExist": "check sdk_app_id",
    "InvalidParameterValue.IncorrectPhoneNumber": "the contact's phone is not a valid number",
    "InvalidParameterValue.CalledNumberVerifyFail": "the contact's phone is not a mainland China mobile number",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": "a template line holds a link, which Tencent refuses",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "sdk_app_id is not an application of secret_id's account",
    "UnauthorizedOperation.VoiceSdkAppidVerifyFail": "sdk_app_id is not an application of secret_id's account",
    "LimitExceeded.PhoneNumberDailyLimit": "the number's daily cap: it resets at midnight China time, or raise it in "
    "the console's frequency rules",
    "LimitExceeded.AppCountryOrRegionInBlacklist": "the application's international settings do not allow the "
    "number's country or region",
}
# Codes read otherwise than their prefix: these retry (the API busy, an upstream timeout: "try again later"); those
# are permanent, the InternalError.* ones that say the request itself is wrong and the LimitExceeded.* ones that are
# not a rate (a retry would be refused the same way).
RETRIED_CODES = {"ServiceUnavailable", "FailedOperation.AccessUpstreamTimeout"}
PERMANENT_CODES = {
    "InternalError.RequestTimeException",  # our clock
    "InternalError.RestApiInterfaceNotExist",
    "InternalError.SigFieldMissing",
    "InternalError.SigVerificationFail",
    "InternalError.JsonParseFail",
    "LimitExceeded.PhoneNumberCountLimit",  # more than 200 numbers in a call
    "LimitExceeded.AppCountryOrRegionInBlacklist",
}


def tc3_authorization(
    secret_id: str, secret_key: str, service: str, timestamp: int, headers: dict[str, str], payload: bytes
) -> str:
    """The Authorization header of Signature v3 for a POST to "/" with these (lower-case named) headers signed."""
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{name}:{headers[name].strip().lower()}\n" for name in names),
            ";".join(names),
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"


class TencentApi:
    """One Tencent Cloud API 3.0 product (sms, vms) of an account: a signed POST of an action's JSON body."""

    def __init__(self, service: str, version: str, settings: dict[str, object], now: Callable[[], float]):
        self.service, self.version, self.now = service, version, now
        self.host = f"{service}.tencentcloudapi.com"
        self.url = rebase(f"https://{self.host}/", settings.get("base_url"))
        self.secret_id = str(settings["secret_id"])
        self.secret_key = str(settings["secret_key"])
        self.region = str(settings.get("region") or DEFAULT_REGION)

    def headers(self, action: str, payload: bytes) -> dict[str, str]:
        timestamp = int(self.now())
        signed = {"content-type": CONTENT_TYPE, "host": self.host}
        return {
            "Authorization": tc3_authorization(
                self.secret_id, self.secret_key, self.service, timestamp, signed, payload
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": action,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": self.version,
            "X-TC-Region": self.region,
        }

    async def call(self, session: aiohttp.ClientSession, action: str, body: dict[str, object]) -> Response:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        async with session.post(self.url, data=payload, headers=self.headers(action, payload)) as response:
            return Response(response.status, response.headers, await response.read())


def template_params(message: Message) -> list[str]:
    """The rendered template's lines, in order, as the approved template's variables: each within PARAM_LIMIT and
    without what makes a link (a blackbox probe's instance is a URL), which Tencent refuses in a variable."""
    lines = message.text.split("\n") if message.text else []
    return [truncate(LINK.sub("", line).strip(), PARAM_LIMIT, marker="…") for line in lines]


def e164(phone: str) -> str:
    """The contact's phone as Tencent wants it, +[country code][number]: a mainland mobile written without its
    country code gets +86; any other number is sent as written."""
    mobile = MAINLAND_MOBILE.fullmatch(phone)
    return f"+86{mobile[1]}" if mobile else phone


def judged(product: str, code: str, message: str, request_id: str) -> Outcome:
    """A Tencent error Code, top-level or one number's: retry the frequency rules, refuse the rest for good."""
    reason = f"Tencent {product} {code}: {message}"
    if code in EXPLAINED:
        reason += f" ({EXPLAINED[code]})"
    if request_id:
        reason += f" [RequestId {request_id}]"
    if code in PERMANENT_CODES:
        return Outcome("permanent", reason)
    if code.startswith("RequestLimitExceeded"):
        return Outcome("retry", reason, REQUEST_WAIT_S)
    if code.startswith("LimitExceeded."):
        return Outcome("retry", reason, LIMIT_WAITS.get(code), recipient_limit=code in LIMIT_WAITS)
    if code.startswith("InternalError") or code in RETRIED_CODES:
        return Outcome("retry", reason)
    return Outcome("permanent", reason)


def read_answer(response: Response, product: str, statuses: Callable[[dict], list[tuple[str, str]] | None]) -> Outcome:
    """Tencent's answer: an Error; or what `statuses` finds in the result (a (Code, Message) per recipient, None
    when the result is not there), each "Ok" for a delivery. A 200 without a result is never taken for one; another
    status is read by the Error it carries (at least a retry for 408, 429 and 5xx), else by the status."""
    if (refused := not_sent_outcome(response)) is not None:
        return refused
    answer = json_answer(response).get("Response")
    if not isinstance(answer, dict):
        return http_outcome(response) if response.status != 200 else unexpected(response)
    request_id = str(answer.get("RequestId", ""))
    error = answer.get("Error")
    if response.status != 200:
        if not isinstance(error, dict):
            return http_outcome(response)
        outcome = judged(product, str(error.get("Code", "")), str(error.get("Message", "")), request_id)
        reason = f"{outcome.reason} (HTTP {response.status})"
        if outcome.result == "permanent" and (response.status in (408, 429) or response.status >= 500):
            return Outcome("retry", reason, retry_after_header(response))
        return replace(outcome, reason=reason)
    if isinstance(error, dict):
        return judged(product, str(error.get("Code", "")), str(error.get("Message", "")), request_id)
    found = statuses(answer)
    if not found:
        return unexpected(response)
    for code, message in found:
        if code.lower() != "ok":
            return judged(product, code, message, request_id)
    return Outcome("ok")


def unexpected(response: Response) -> Outcome:
    """A 200 that is not the API's answer (a proxy's page): not proof of delivery."""
    return Outcome("retry", f"unexpected answer: {response.body[:200].decode('utf-8', 'replace').strip()}")


class TencentChannel:
    """What both Tencent channels do: find the contact's phone, render the approved template's variables, make one
    signed call, read Tencent's answer. A subclass names the product and builds the action's body."""

    type: str
    product: str  # as the reasons name it: SMS, VMS
    service: str
    version: str
    action: str
    verb: str  # what the channel does with the phone, for the reason when there is none

    def __init__(self, name: str, settings: dict[str, object], now: Callable[[], float] = time.time):
        """`now` gives the request timestamps (seconds since the epoch): the clock Tencent compares with its own."""
        self.name = name
        self.api = TencentApi(self.service, self.version, settings, now)
        self.sdk_app_id = str(settings["sdk_app_id"])
        self.template_id = str(settings["template_id"])

    def body(self, phone: str, message: Message) -> dict[str, object]:
        raise NotImplementedError

    def statuses(self, answer: dict) -> list[tuple[str, str]] | None:
        raise NotImplementedError

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        phone = e164(phone_of(message))
        if not phone:
            return no_phone(message, self.verb)
        return await self.api.call(session, self.action, self.body(phone, message))

    def classify(self, response: Response) -> Outcome:
        return read_answer(response, self.product, self.statuses)


class TencentSmsChannel(TencentChannel):
    """One SMS to the contact's phone (one number a call: the outbox sends one message per contact)."""

    type = "tencent_sms"
    product = "SMS"
    service = "sms"
    version = "2021-01-11"
    action = "SendSms"
    verb = "text"

    def __init__(self, name: str, settings: dict[str, object], now: Callable[[], float] = time.time):
        super().__init__(name, settings, now)
        self.sign_name = str(settings["sign_name"])

    def body(self, phone: str, message: Message) -> dict[str, object]:
        return {
            "PhoneNumberSet": [phone],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": self.template_id,
            "TemplateParamSet": template_params(message),
        }

    def statuses(self, answer: dict) -> list[tuple[str, str]] | None:
        """Each number's SendStatus (one, here); None when one has no Code, as then nobody knows what it got."""
        found = answer.get("SendStatusSet")
        if not isinstance(found, list) or not all(isinstance(status, dict) for status in found):
            return None
        if not all(isinstance(status.get("Code"), str) for status in found):
            return None
        return [(status["Code"], str(status.get("Message", ""))) for status in found]


CHANNEL = TencentSmsChannel
