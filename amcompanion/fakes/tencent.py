"""A fake Tencent Cloud API 3.0 on loopback serving SMS (`SendSms`, version 2021-01-11, host
sms.tencentcloudapi.com) and voice messages (VMS `SendTtsVoice`, version 2020-09-02, host vms.tencentcloudapi.com):
the Host header picks the product, as Tencent's DNS does.

Written from Tencent's documents, not from amcompanion's channels, it checks what the API checks:
- the request: the product's action and version, a region (X-TC-Action, X-TC-Version, X-TC-Region);
- the TC3-HMAC-SHA256 signature as "Signature v3" describes it, computed here (`canonical_request`,
  `tc3_signature`, checked against the document's worked example): a malformed Authorization
  (AuthFailure.InvalidAuthorization), a timestamp more than 5 minutes off (AuthFailure.SignatureExpire), an unknown
  SecretId (AuthFailure.SecretIdNotFound), a credential scope that is not the timestamp's UTC date and the host's
  service, or a signature that does not match (AuthFailure.SignatureFailure);
- each action's request frequency (SendSms 3000/s, SendTtsVoice 20/s: RequestLimitExceeded);
- SendSms: the SdkAppId, the approved signature and template, the variables (as many as the template has; no links;
  at most 12 characters each for an individual-verified account; the whole message within 500 characters), at most
  200 numbers a call, not domestic and international ones mixed; then each number on its own, in SendStatusSet: its
  format (InvalidParameterValue.IncorrectPhoneNumber), the default frequency rules (the same content to the same number
  at most once in 30 s: LimitExceeded.PhoneNumberThirtySecondLimit; 10 a calendar day: PhoneNumberDailyLimit), the
  blacklist and the SMS package's balance;
- SendTtsVoice: the VoiceSdkAppid, the template and its variables, the content within 350 characters, a mainland
  called number (VMS calls mainland China only), PlayTimes 1-3, the voice package's balance.
Every answer is HTTP 200 with {"Response": {..., "RequestId"}}; errors {"Response": {"Error": {"Code", "Message"},
"RequestId"}}. It records every request as it came (`received`) and what it delivered (`sent`), and can be scripted
to answer otherwise once a request is authenticated (`script`).

Sources: cloud.tencent.com/document/api/213/30654 (Signature v3, the worked example), /document/api/382/55981
(SendSms 2021-01-11), /document/api/1128/51558 (SendTtsVoice), /document/api/1128/37723 (voice to mainland users
only), tencentcloud.com/document/product/382/40659 (template variables), /document/product/382/13303 (default
frequency limits), the common error codes (cloud.tencent.com/document/api/1553/75174), and the SDKs' error lists
(github.com/TencentCloud/tencentcloud-sdk-go, tencentcloud/sms/v20210111/errors.go, vms/v20200902/errors.go).
"""

import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow

SECRET_ID = "AKIDfakeTencentSecretId0123456789abc"
SECRET_KEY = "fakeTencentSecretKey0123456789abcd"
SMS_APP_ID = "1400006666"
VOICE_APP_ID = "1400008888"
SIGN_NAME = "运维告警"
SMS_TEMPLATE_ID = "1110"
VOICE_TEMPLATE_ID = "4356"
# The approved templates the default ones (webhook/templates/tencent_*.j2) render variables for, in their order.
SMS_TEMPLATE = "告警通知：[{1}] {2}，实例 {3}，{4}"
VOICE_TEMPLATE = "监控告警通知：{1}，{2}，实例{3}。请及时处理。"
REGIONS = {"ap-guangzhou", "ap-beijing", "ap-nanjing"}
WINDOW_S = 300  # AuthFailure.SignatureExpire beyond 5 minutes
MAX_NUMBERS = 200
PARAM_LIMIT = 12  # characters of one variable, for individual-verified accounts
SMS_LIMIT = 500  # characters of the whole SMS, signature included
VOICE_LIMIT = 350  # characters of what a call says
SAME_CONTENT_S = 30.0
DAILY_LIMIT = 10
CHINA = timezone(timedelta(hours=8))  # a "calendar day" is China's
E164 = re.compile(r"^\+[1-9]\d{4,14}$")
MAINLAND_MOBILE = re.compile(r"^\+861[3-9]\d{9}$")
LINK = re.compile(r"https?://|www\.", re.IGNORECASE)
VARIABLE = re.compile(r"\{(\d+)\}")
AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
MESSAGES = {
    "AuthFailure.InvalidAuthorization": "Authorization in the request header is invalid.",
    "AuthFailure.SecretIdNotFound": "Key does not exist. Check if the key has been deleted or disabled in the console.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp and server time cannot differ by more than five "
    "minutes. Please ensure your current local time matches the standard time.",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your signature "
    "is correct.",
    "FailedOperation.InsufficientBalanceInSmsPackage": "The SMS package balance is insufficient.",
    "FailedOperation.InsufficientBalanceInVoicePackage": "The voice package balance is insufficient.",
    "FailedOperation.JsonParseFail": "Failed to parse the request body.",
    "FailedOperation.PhoneNumberInBlacklist": "The mobile number is in the blacklist.",
    "FailedOperation.SignatureIncorrectOrUnapproved": "The signature is not approved or its format is incorrect.",
    "FailedOperation.TemplateIncorrectOrUnapproved": "The template is not approved or the content does not match it.",
    "InvalidAction": "The API does not exist.",
    "InvalidParameter": "Invalid parameter.",
    "InvalidParameterValue": "Invalid parameter value.",
    "InvalidParameterValue.CalledNumberVerifyFail": "The called number failed verification.",
    "InvalidParameterValue.ContentLengthLimit": "The content is too long.",
    "InvalidParameterValue.IncorrectPhoneNumber": "Invalid mobile number format.",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": "URLs are not allowed in template variables.",
    "InvalidParameterValue.SdkAppIdNotExist": "The SdkAppId does not exist.",
    "InvalidParameterValue.SdkAppidNotExist": "The SDK AppID does not exist.",
    "InvalidParameterValue.TemplateParameterLengthLimit": "A template variable has more than 12 characters "
    "(individual-verified accounts).",
    "LimitExceeded.PhoneNumberCountLimit": "More than 200 mobile numbers in one request.",
    "LimitExceeded.PhoneNumberDailyLimit": "The number of messages to this mobile number today exceeds the limit.",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "The number of messages to this mobile number within 30 seconds "
    "exceeds the limit.",
    "MissingParameter": "A required parameter is missing.",
    "MissingParameter.EmptyPhoneNumberSet": "The mobile number list is empty.",
    "NoSuchProduct": "The product does not exist.",
    "NoSuchVersion": "The API version does not exist.",
    "RequestLimitExceeded": "The number of requests exceeds the frequency limit.",
    "UnknownParameter": "Unknown parameter.",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": "The request mixes Chinese mainland and "
    "international mobile numbers.",
    "UnsupportedRegion": "The region is not supported.",
}


@dataclass(frozen=True)
class Product:
    service: str
    action: str
    version: str
    per_second: int
    fields: frozenset[str]


PRODUCTS = {
    "sms": Product(
        "sms",
        "SendSms",
        "2021-01-11",
        3000,
        frozenset(
            {"PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName", "TemplateParamSet", "ExtendCode"}
            | {"SessionContext", "SenderId"}
        ),
    ),
    "vms": Product(
        "vms",
        "SendTtsVoice",
        "2020-09-02",
        20,
        frozenset({"TemplateId", "CalledNumber", "VoiceSdkAppid", "TemplateParamSet", "PlayTimes", "SessionContext"}),
    ),
}


def hashed(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_request(
    method: str, uri: str, query: str, headers: Mapping[str, str], signed_headers: list[str], payload: bytes
) -> str:
    """Step 1 of Signature v3: the signed headers as `name:value` (both lower case, trimmed), sorted as signed."""
    canonical_headers = "".join(f"{name}:{str(headers.get(name, '')).strip().lower()}\n" for name in signed_headers)
    return "\n".join([method, uri, query, canonical_headers, ";".join(signed_headers), hashed(payload)])


def tc3_signature(secret_key: str, timestamp: int, service: str, canonical: str) -> str:
    """Steps 2-3: the string to sign under the credential scope (the timestamp's UTC date, the service), signed with
    the key derived as HMAC("TC3" + SecretKey, date) → service → "tc3_request"."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope, hashed(canonical.encode())])
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def variables(template: str) -> int:
    return len(set(VARIABLE.findall(template)))


def fill(template: str, params: list[str]) -> str:
    return VARIABLE.sub(lambda m: params[int(m.group(1)) - 1], template)


def sms_fee(text: str) -> int:
    """Billed messages: 70 characters in one, 67 a part beyond (Tencent's domestic length rule)."""
    return 1 if len(text) <= 70 else math.ceil(len(text) / 67)


def mainland_form(number: str) -> str:
    """A domestic number as SendSms also takes it (0086…, 86…, or 11 digits) in E.164."""
    for prefix in ("0086", "86"):
        if number.startswith(prefix) and len(number) == len(prefix) + 11:
            return "+86" + number[len(prefix) :]
    return "+86" + number if re.fullmatch(r"1\d{10}", number) else number


@dataclass(frozen=True)
class Received:
    """A request as it arrived, before any check: what tests compare byte for byte."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Sent:
    """What Tencent delivered: an SMS to one number, or a call."""

    product: str  # "sms" or "vms"
    phone: str
    template_id: str
    params: list[str]
    text: str  # the SMS as the phone shows it (signature first), or what the call says


@dataclass(frozen=True)
class Scripted:
    """An answer given in place of the service's own once a request is authenticated: a top-level error `code`;
    with `per_number`, that Code in every number's SendStatus instead (SendSms); or a raw `body` with `status`."""

    code: str = ""
    message: str = ""
    per_number: bool = False
    status: int = 200
    body: str | None = None


@dataclass
class FakeTencent:
    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    sms_app_id: str = SMS_APP_ID
    voice_app_id: str = VOICE_APP_ID
    sign_names: set[str] = field(default_factory=lambda: {SIGN_NAME})
    sms_templates: dict[str, str] = field(default_factory=lambda: {SMS_TEMPLATE_ID: SMS_TEMPLATE})
    voice_templates: dict[str, str] = field(default_factory=lambda: {VOICE_TEMPLATE_ID: VOICE_TEMPLATE})
    individual: bool = True  # an individual-verified account: SMS variables of at most 12 characters
    daily_limit: int = DAILY_LIMIT
    sms_balance: int | None = None  # messages left in the SMS package (None: plenty)
    voice_balance: int | None = None
    blacklist: set[str] = field(default_factory=set)
    per_second: dict[str, int] = field(default_factory=dict)  # action → requests a second, instead of Tencent's
    now: Callable[[], float] = time.time
    script: list[Scripted] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # every error Code given, top-level or a number's
    _windows: dict[str, SlidingWindow] = field(default_factory=dict)
    _last_content: dict[tuple[str, str], float] = field(default_factory=dict)
    _today: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def for_channel(cls, settings: Mapping[str, object]) -> "FakeTencent":
        """The account a tencent_sms or tencent_voice channel's settings describe, its template approved."""
        keys = {"secret_id": str(settings["secret_id"]), "secret_key": str(settings["secret_key"])}
        app_id, template_id = str(settings["sdk_app_id"]), str(settings["template_id"])
        if settings["type"] == "tencent_voice":
            return cls(**keys, voice_app_id=app_id, voice_templates={template_id: VOICE_TEMPLATE})
        return cls(
            **keys,
            sms_app_id=app_id,
            sign_names={str(settings["sign_name"])},
            sms_templates={template_id: SMS_TEMPLATE},
        )

    def shown(self) -> list[Shown]:
        return [Shown(f"{'SMS' if s.product == 'sms' else 'call'} to {s.phone}", s.text) for s in self.sent]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(Received(request.method, request.path_qs, dict(request.headers), raw))
        request_id = str(uuid.uuid4())
        problem = self._refused(request, raw)
        if problem is None and self.script:
            scripted = self.script.pop(0)
            if scripted.body is not None:
                return web.Response(status=scripted.status, text=scripted.body)
            if not scripted.per_number:
                problem = (scripted.code, scripted.message)
            else:
                return self._answer({"SendStatusSet": self._scripted_statuses(raw, scripted)}, request_id)
        if problem is not None:
            code, message = problem
            self.answered.append(code)
            return self._answer({"Error": {"Code": code, "Message": message or MESSAGES.get(code, code)}}, request_id)
        product = PRODUCTS[_service(request)]
        body = json.loads(raw)
        answer = self._sms(body) if product.service == "sms" else self._call(body)
        return self._answer(answer, request_id)

    @staticmethod
    def _answer(response: dict, request_id: str) -> web.Response:
        return web.json_response({"Response": {**response, "RequestId": request_id}})

    # -- what every request gets checked for ---------------------------------------------------------------------
    def _refused(self, request: web.Request, raw: bytes) -> tuple[str, str] | None:
        """The top-level error for the request, or None when it may be served."""
        service = _service(request)
        if service not in PRODUCTS:
            return "NoSuchProduct", ""
        product = PRODUCTS[service]
        if request.headers.get("X-TC-Action") != product.action:
            return "InvalidAction", f"The API `{request.headers.get('X-TC-Action', '')}` does not exist."
        if request.headers.get("X-TC-Version") != product.version:
            return "NoSuchVersion", ""
        region = request.headers.get("X-TC-Region")
        if not region:
            return "MissingParameter", "The parameter `Region` is missing."
        if region not in REGIONS:
            return "UnsupportedRegion", ""
        problem = self._unauthenticated(request, raw, product)
        if problem is not None:
            return problem, ""
        window = self._windows.setdefault(
            product.action, SlidingWindow(self.per_second.get(product.action, product.per_second), 1.0)
        )
        if not window.admit(self.now()):
            return "RequestLimitExceeded", ""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return "FailedOperation.JsonParseFail", ""
        unknown = sorted(set(body) - product.fields)
        if unknown:
            return "UnknownParameter", f"The parameter `{unknown[0]}` is not recognized."
        return self._sms_refused(body) if service == "sms" else self._call_refused(body)

    def _unauthenticated(self, request: web.Request, raw: bytes, product: Product) -> str | None:
        """Signature v3, as Tencent verifies it; the error Code, or None when the request is this account's."""
        match = AUTHORIZATION.match(request.headers.get("Authorization", ""))
        signed = match.group("headers").split(";") if match else []
        if not match or not {"content-type", "host"} <= set(signed) or signed != sorted(signed):
            return "AuthFailure.InvalidAuthorization"
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return "AuthFailure.InvalidAuthorization"
        if abs(self.now() - timestamp) > WINDOW_S:
            return "AuthFailure.SignatureExpire"
        if not hmac.compare_digest(match.group("id"), self.secret_id):
            return "AuthFailure.SecretIdNotFound"
        scope_date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match.group("date") != scope_date or match.group("service") != product.service:
            return "AuthFailure.SignatureFailure"
        canonical = canonical_request(request.method, request.path, request.query_string, request.headers, signed, raw)
        expected = tc3_signature(self.secret_key, timestamp, product.service, canonical)
        return None if hmac.compare_digest(expected, match.group("signature")) else "AuthFailure.SignatureFailure"

    # -- SendSms -------------------------------------------------------------------------------------------------
    def _sms_refused(self, body: dict) -> tuple[str, str] | None:
        numbers = body.get("PhoneNumberSet")
        if not isinstance(numbers, list) or not numbers:
            return "MissingParameter.EmptyPhoneNumberSet", ""
        for name in ("SmsSdkAppId", "TemplateId"):
            if not body.get(name):
                return "MissingParameter", f"The parameter `{name}` is missing."
        if len(numbers) > MAX_NUMBERS:
            return "LimitExceeded.PhoneNumberCountLimit", ""
        if body["SmsSdkAppId"] != self.sms_app_id:
            return "InvalidParameterValue.SdkAppIdNotExist", ""
        domestic = {str(number).startswith("+86") for number in map(mainland_form, map(str, numbers))}
        if len(domestic) > 1:
            return "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", ""
        template = self.sms_templates.get(str(body["TemplateId"]))
        if template is None or domestic == {False}:  # only Chinese mainland templates are approved here
            return "FailedOperation.TemplateIncorrectOrUnapproved", ""
        if body.get("SignName") not in self.sign_names:
            return "FailedOperation.SignatureIncorrectOrUnapproved", ""
        params = body.get("TemplateParamSet") or []
        if not isinstance(params, list) or len(params) != variables(template):
            return "FailedOperation.TemplateIncorrectOrUnapproved", (
                f"The template has {variables(template)} variables, TemplateParamSet has "
                f"{len(params) if isinstance(params, list) else 'none'}."
            )
        if any(LINK.search(str(param)) for param in params):
            return "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter", ""
        if self.individual and any(len(str(param)) > PARAM_LIMIT for param in params):
            return "InvalidParameterValue.TemplateParameterLengthLimit", ""
        if len(self._sms_text(body)) > SMS_LIMIT:
            return "InvalidParameterValue.ContentLengthLimit", ""
        return None

    def _sms_text(self, body: dict) -> str:
        template = self.sms_templates[str(body["TemplateId"])]
        return f"【{body['SignName']}】" + fill(template, [str(p) for p in body.get("TemplateParamSet") or []])

    def _sms(self, body: dict) -> dict:
        text = self._sms_text(body)
        content = json.dumps([body["SignName"], body["TemplateId"], body.get("TemplateParamSet") or []])
        return {"SendStatusSet": [self._one_sms(str(number), body, text, content) for number in body["PhoneNumberSet"]]}

    def _one_sms(self, given: str, body: dict, text: str, content: str) -> dict:
        """One number's SendStatus: delivered ("Ok") or why not."""
        number, now = mainland_form(given), self.now()
        today = datetime.fromtimestamp(now, CHINA).date().isoformat()
        last = self._last_content.get((number, content))
        if not E164.match(number) or (number.startswith("+86") and not MAINLAND_MOBILE.match(number)):
            code = "InvalidParameterValue.IncorrectPhoneNumber"
        elif number in self.blacklist:
            code = "FailedOperation.PhoneNumberInBlacklist"
        elif last is not None and now - last < SAME_CONTENT_S:
            code = "LimitExceeded.PhoneNumberThirtySecondLimit"
        elif self._today[(number, today)] >= self.daily_limit:
            code = "LimitExceeded.PhoneNumberDailyLimit"
        elif self.sms_balance is not None and self.sms_balance < sms_fee(text):
            code = "FailedOperation.InsufficientBalanceInSmsPackage"
        else:
            self._last_content[(number, content)] = now
            self._today[(number, today)] += 1
            if self.sms_balance is not None:
                self.sms_balance -= sms_fee(text)
            params = [str(p) for p in body.get("TemplateParamSet") or []]
            self.sent.append(Sent("sms", number, str(body["TemplateId"]), params, text))
            return _status(number, "Ok", "send success", sms_fee(text))
        self.answered.append(code)
        return _status(number, code, MESSAGES[code], 0)

    def _scripted_statuses(self, raw: bytes, scripted: Scripted) -> list[dict]:
        numbers = json.loads(raw).get("PhoneNumberSet") or []
        self.answered.extend(scripted.code for _ in numbers)
        message = scripted.message or MESSAGES.get(scripted.code, scripted.code)
        return [_status(mainland_form(str(number)), scripted.code, message, 0) for number in numbers]

    # -- SendTtsVoice --------------------------------------------------------------------------------------------
    def _call_refused(self, body: dict) -> tuple[str, str] | None:
        for name in ("TemplateId", "CalledNumber", "VoiceSdkAppid"):
            if not body.get(name):
                return "MissingParameter", f"The parameter `{name}` is missing."
        if body["VoiceSdkAppid"] != self.voice_app_id:
            return "InvalidParameterValue.SdkAppidNotExist", ""
        template = self.voice_templates.get(str(body["TemplateId"]))
        params = body.get("TemplateParamSet") or []
        if template is None or not isinstance(params, list) or len(params) != variables(template):
            return "FailedOperation.TemplateIncorrectOrUnapproved", ""
        if not MAINLAND_MOBILE.match(str(body["CalledNumber"])):
            return "InvalidParameterValue.CalledNumberVerifyFail", ""
        play_times = body.get("PlayTimes", 2)
        if not isinstance(play_times, int) or not 1 <= play_times <= 3:
            return "InvalidParameterValue", "PlayTimes must be 1 to 3."
        if len(fill(template, [str(p) for p in params])) > VOICE_LIMIT:
            return "InvalidParameterValue.ContentLengthLimit", ""
        if self.voice_balance is not None and self.voice_balance < 1:
            return "FailedOperation.InsufficientBalanceInVoicePackage", ""
        return None

    def _call(self, body: dict) -> dict:
        params = [str(p) for p in body.get("TemplateParamSet") or []]
        template_id = str(body["TemplateId"])
        if self.voice_balance is not None:
            self.voice_balance -= 1
        text = fill(self.voice_templates[template_id], params)
        self.sent.append(Sent("vms", str(body["CalledNumber"]), template_id, params, text))
        return {"SendStatus": {"CallId": uuid.uuid4().hex, "SessionContext": str(body.get("SessionContext", ""))}}


def _service(request: web.Request) -> str:
    """The product a Host names: sms.tencentcloudapi.com, or a region's sms.ap-guangzhou.tencentcloudapi.com."""
    host = request.headers.get("Host", "").split(":")[0].lower()
    return host.split(".")[0] if host.endswith(".tencentcloudapi.com") else ""


def _status(number: str, code: str, message: str, fee: int) -> dict:
    return {
        "SerialNo": f"3369:{uuid.uuid4().int % 10**20}" if code == "Ok" else "",
        "PhoneNumber": number,
        "Fee": fee,
        "SessionContext": "",
        "Code": code,
        "Message": message,
        "IsoCode": "CN" if number.startswith("+86") else "DEF",
    }
