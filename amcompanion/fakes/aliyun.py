"""A fake Aliyun (Alibaba Cloud) communications API on loopback: Dysmsapi `SendSms` and Dyvmsapi `SingleCallByTts`
(both 2017-05-25, RPC style), told apart by the Host header as Aliyun's endpoints are (dysmsapi.aliyuncs.com,
dyvmsapi.aliyuncs.com); both are `POST /`.

Written from Aliyun's documents, not from amcompanion's channels (the sources are listed in
amcompanion/receiver/channels/aliyun_sms.py and aliyun_voice.py), it takes an RPC API's parameters where the V3
document lets a caller put them, in the query string (the SDK's way) or in an application/x-www-form-urlencoded
body (the parameters whose metadata says formData), both together too, and checks what Aliyun's gateway checks,
in the order it answers them, with Aliyun's codes and HTTP statuses:
- the API (Host, x-acs-action, x-acs-version: 404 InvalidAction.NotFound) and the V3 headers (400 MissingParameter);
- the V3 signature (ACS3-HMAC-SHA256), recomputed here from the request as received: the canonical request of
  the method, the path, the query re-encoded (RFC 3986, sorted), the signed headers (every x-acs-*, host and
  content-type header must be signed: 400 IncompleteSignature) and the SHA-256 of the body as received; an
  unknown key is 404 InvalidAccessKeyId.NotFound, another signature 400 SignatureDoesNotMatch (with the server's
  string to sign, as Aliyun gives it);
- x-acs-date within 15 minutes of the fake's clock (400 InvalidTimeStamp.Format / InvalidTimeStamp.Expired) and a
  nonce never seen in that window (400 SignatureNonceUsed);
- the API's QPS limit per key (400 Throttling.User, with x-acs-retry-after in milliseconds);
then, in HTTP 200 answers with `Code` as Aliyun's business errors come: the parameters (a missing one is 400
Missing<Name>), the numbers (isv.MOBILE_NUMBER_ILLEGAL; the voice API calls mainland numbers only), the
approved signature and templates (isv.SMS_SIGNATURE_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.TTS_TEMPLATE_ILLEGAL,
isv.DISPLAY_NUMBER_ILLEGAL), the variables (JSON of strings, every template variable given, 1 to 35 characters
each for SMS, under 250 together for voice, no link or IP address: isv.INVALID_JSON_PARAM / INVALID_PARAMETERS,
TEMPLATE_MISSING_PARAMETERS, PARAM_LENGTH_LIMIT, PARAM_NOT_SUPPORT_URL), the balance (isv.AMOUNT_NOT_ENOUGH,
isv.OUT_OF_SERVICE) and the per-number flow control (isv.BUSINESS_LIMIT_CONTROL, "触发天级流控Permits:50"):
SMS notifications 50 a day per number, signature and template; calls 1 a minute, 5 an hour, 20 a day per number.
Success is {"Code": "OK", "Message": "OK", "BizId" (SMS) or "CallId" (voice), "RequestId"}.

It records every request (`received`, with its raw query and headers), can be scripted to answer anything first
(`script`, robot.Answer), and `shown()` gives accepted messages as the phone shows or speaks them: the approved
template filled in.
"""

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.robot import Answer, play
from amcompanion.fakes.window import SlidingWindow, admit_all

ACCESS_KEY_ID = "LTAI5tFakeAliyunKeyId0001"
ACCESS_KEY_SECRET = "fake-aliyun-access-key-secret"
SIGN_NAME = "阿里云短信测试"
SMS_TEMPLATE_CODE = "SMS_465000001"
SMS_TEMPLATE = "监控告警（${status}）：${alertname}，级别${severity}，${summary}"
TTS_CODE = "TTS_465000002"
TTS_TEMPLATE = "您好，这里是监控系统：${alert}。${summary}。请及时处理。"
SMS_HOSTS = {
    "dysmsapi.aliyuncs.com",
    *(f"dysmsapi.{r}.aliyuncs.com" for r in ("ap-southeast-1", "ap-southeast-5", "eu-central-1", "us-east-1")),
}
VMS_HOST = "dyvmsapi.aliyuncs.com"
ALGORITHM = "ACS3-HMAC-SHA256"
VERSION = "2017-05-25"
WINDOW_S = 900.0  # x-acs-date within 15 minutes; nonces remembered as long
SMS_VARIABLE_LIMIT = 35
TTS_PARAM_LIMIT = 250  # the variables together must be shorter
SMS_NUMBER_LIMITS = [(50, 86400.0)]  # notification templates, per number, signature and template
VOICE_NUMBER_LIMITS = [(1, 60.0), (5, 3600.0), (20, 86400.0)]  # per called number
LEVELS = {60.0: "分钟级", 3600.0: "小时级", 86400.0: "天级"}
REQUIRED_HEADERS = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")
AUTHORIZATION = re.compile(rf"{ALGORITHM} Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{{64}})")
VARIABLE = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")
MAINLAND_MOBILE = re.compile(r"(?:\+86|0086|86|\+)?1[3-9]\d{9}")  # SendSms: "+/+86/0086/86 or no prefix"
INTERNATIONAL = re.compile(r"[1-9]\d{6,14}")  # SendSms: country code and number
CALLABLE = re.compile(r"1[3-9]\d{9}|0\d{9,11}")  # SingleCallByTts: a mainland mobile or landline
NO_API = "Specified api is not found, please check your url and method."
MISSING = 'The input parameter "{}" that is mandatory for processing this request is not supplied.'
NOT_MATCHED = "Specified signature does not match our calculation. server string to sign is:{}"
LINK = re.compile(r"https?://|www\.|\b\d{1,3}(?:\.\d{1,3}){3}\b", re.IGNORECASE)


def percent_encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_request(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    signed: list[str],
    body_sha256: str,
) -> str:
    """V3's CanonicalRequest: method, the path's segments encoded, the query sorted by name and re-encoded, each
    signed header `name:value` (lowercase name, trimmed value), the signed names, the body's hash."""
    uri = "/".join(percent_encode(segment) for segment in path.split("/"))
    canonical_query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(query))
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    return "\n".join([method.upper(), uri, canonical_query, canonical_headers, ";".join(signed), body_sha256])


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def v3_signature(secret: str, canonical: str) -> str:
    """HexEncode(HMAC-SHA256(AccessKey secret, StringToSign)), as Aliyun's "V3 request structure and signature"."""
    return hmac.new(secret.encode(), string_to_sign(canonical).encode(), hashlib.sha256).hexdigest()


def filled(template: str, variables: Mapping[str, str]) -> str:
    return VARIABLE.sub(lambda m: variables.get(m[1], m[0]), template)


def java_length(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


@dataclass
class Received:
    """One request as the fake got it, and what it answered."""

    api: str  # SendSms or SingleCallByTts ("" for no known API)
    method: str
    path: str
    query: str  # as sent, not decoded
    headers: dict[str, str]
    body: bytes
    params: dict[str, str]
    status: int = 0
    answer: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.answer.get("Code") == "OK"


@dataclass
class Refusal(Exception):
    """An answer other than OK: its HTTP status, Aliyun's Code and Message, extra headers."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeAliyun:
    def __init__(
        self,
        keys: Mapping[str, str] | None = None,
        sign_names: set[str] | None = None,
        sms_templates: Mapping[str, str] | None = None,
        tts_templates: Mapping[str, str] | None = None,
        show_numbers: set[str] | None = None,
        now: Callable[[], float] = time.time,
        qps: int = 1000,
    ):
        """`keys`: AccessKey id → secret; the approved signatures, templates (code → text with ${variables}) and
        show numbers of the account; `now` the clock x-acs-date is checked against; `qps` calls a second per key."""
        self.keys = dict(keys if keys is not None else {ACCESS_KEY_ID: ACCESS_KEY_SECRET})
        self.sign_names = set(sign_names if sign_names is not None else {SIGN_NAME})
        self.sms_templates = dict(sms_templates if sms_templates is not None else {SMS_TEMPLATE_CODE: SMS_TEMPLATE})
        self.tts_templates = dict(tts_templates if tts_templates is not None else {TTS_CODE: TTS_TEMPLATE})
        self.show_numbers = set(show_numbers or ())
        self.now = now
        self.qps = qps
        self.throttle_retry_after_ms = 1000
        self.sms_number_limits = list(SMS_NUMBER_LIMITS)
        self.voice_number_limits = list(VOICE_NUMBER_LIMITS)
        self.balance_left = True
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self._nonces: dict[tuple[str, str], float] = {}
        self._qps_windows: dict[tuple[str, str], SlidingWindow] = {}
        self._number_windows: dict[tuple[str, ...], list[SlidingWindow]] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> "FakeAliyun":
        """The account an aliyun_sms or aliyun_voice channel's settings describe, its approved template being
        the one the type's default template fills (the demo's stand-in)."""
        fake = cls(keys={str(settings["access_key_id"]): str(settings["access_key_secret"])})
        if settings.get("sign_name"):
            fake.sign_names = {str(settings["sign_name"])}
        if settings.get("template_code"):
            fake.sms_templates = {str(settings["template_code"]): SMS_TEMPLATE}
        if settings.get("tts_code"):
            fake.tts_templates = {str(settings["tts_code"]): TTS_TEMPLATE}
        if settings.get("called_show_number"):
            fake.show_numbers = {str(settings["called_show_number"])}
        return fake

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.accepted]

    def shown(self) -> list[Shown]:
        """Accepted SMS as the phone shows them (【signature】 and the filled template); calls as the words spoken."""
        return [self._shown(r) for r in self.accepted]

    def _shown(self, r: Received) -> Shown:
        if r.api == "SendSms":
            text = filled(
                self.sms_templates[r.params["TemplateCode"]], json.loads(r.params.get("TemplateParam") or "{}")
            )
            return Shown(f"SMS to {r.params['PhoneNumbers']}", f"【{r.params['SignName']}】{text}")
        text = filled(self.tts_templates[r.params["TtsCode"]], json.loads(r.params.get("TtsParam") or "{}"))
        return Shown(f"call to {r.params['CalledNumber']}", text)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        query = request.rel_url.raw_query_string
        host = request.headers.get("host", "").split(":")[0]
        received = Received(
            api=_api(host, request.headers),
            method=request.method,
            path=request.rel_url.raw_path,
            query=query,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            params=_params(query, request.headers.get("content-type", ""), body),
        )
        self.received.append(received)
        if self.script:
            received.answer, response = await play(self.script.pop(0))
            received.status = response.status
            return response
        try:
            if not received.api:
                raise Refusal(404, "InvalidAction.NotFound", NO_API)
            self._authenticate(received)
            answer = self._send_sms(received.params) if received.api == "SendSms" else self._call(received.params)
        except Refusal as refusal:
            received.status, received.answer = refusal.status, self._error(refusal, host)
            return web.json_response(received.answer, status=refusal.status, headers=refusal.headers)
        received.status, received.answer = 200, {"RequestId": _request_id(), **answer}
        return web.json_response(received.answer)

    # -- the gateway ---------------------------------------------------------------------------------------
    def _authenticate(self, received: Received) -> None:
        headers = received.headers
        for name in REQUIRED_HEADERS:
            if not headers.get(name):
                raise Refusal(400, "MissingParameter", MISSING.format(name))
        match = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        must_sign = {name for name in headers if name.startswith("x-acs-") or name in ("host", "content-type")}
        signed = match[2].split(";") if match else []
        if not match or not must_sign <= set(signed) or signed != sorted(signed) or not set(signed) <= set(headers):
            raise Refusal(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        key_id, signature = match[1], match[3]
        if key_id not in self.keys:
            raise Refusal(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        try:
            stamp = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Refusal(
                400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
            ) from None
        now = self.now()
        if abs(now - stamp) > WINDOW_S:
            raise Refusal(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        query = parse_qsl(received.query, keep_blank_values=True)
        body_sha256 = hashlib.sha256(received.body).hexdigest()
        canonical = canonical_request(received.method, received.path, query, headers, signed, body_sha256)
        if not hmac.compare_digest(v3_signature(self.keys[key_id], canonical), signature):
            raise Refusal(400, "SignatureDoesNotMatch", NOT_MATCHED.format(string_to_sign(canonical)))
        self._nonces = {seen: at for seen, at in self._nonces.items() if at > now - WINDOW_S}
        nonce = (key_id, headers["x-acs-signature-nonce"])
        if nonce in self._nonces:
            raise Refusal(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces[nonce] = now
        window = self._qps_windows.setdefault((key_id, received.api), SlidingWindow(self.qps, 1.0))
        if not window.admit(now):
            wait = {"x-acs-retry-after": str(self.throttle_retry_after_ms)}
            raise Refusal(400, "Throttling.User", "Request was denied due to user flow control.", wait)

    def _error(self, refusal: Refusal, host: str) -> dict:
        product = "Dyvmsapi" if host == VMS_HOST else "Dysmsapi"
        return {
            "RequestId": _request_id(),
            "HostId": host,
            "Code": refusal.code,
            "Message": refusal.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={refusal.code}&product={product}",
        }

    # -- the APIs ------------------------------------------------------------------------------------------
    def _send_sms(self, params: dict[str, str]) -> dict:
        _require(params, "PhoneNumbers", "SignName", "TemplateCode")
        numbers = params["PhoneNumbers"].split(",")
        if not all(MAINLAND_MOBILE.fullmatch(n) or INTERNATIONAL.fullmatch(n) for n in numbers):
            return _business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if params["SignName"] not in self.sign_names:
            return _business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = self.sms_templates.get(params["TemplateCode"])
        if template is None:
            return _business("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        problem = _variables_problem(template, params.get("TemplateParam"), "isv.INVALID_JSON_PARAM")
        if problem is None:
            variables = json.loads(params.get("TemplateParam") or "{}")
            if any(java_length(variables[name]) > SMS_VARIABLE_LIMIT for name in VARIABLE.findall(template)):
                problem = _business("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
        if problem is not None:
            return problem
        if not self.balance_left:
            return _business("isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
        for number in numbers:
            limited = self._limited((number, params["SignName"], params["TemplateCode"]), self.sms_number_limits)
            if limited:
                return limited
        return {"Code": "OK", "Message": "OK", "BizId": f"{int(self.now() * 1000)}^0"}

    def _call(self, params: dict[str, str]) -> dict:
        _require(params, "CalledNumber", "TtsCode")
        if not CALLABLE.fullmatch(params["CalledNumber"]):
            return _business("isv.MOBILE_NUMBER_ILLEGAL", "号码格式非法")
        template = self.tts_templates.get(params["TtsCode"])
        if template is None:
            return _business("isv.TTS_TEMPLATE_ILLEGAL", "TTS模板不合法")
        if params.get("CalledShowNumber") and params["CalledShowNumber"] not in self.show_numbers:
            return _business("isv.DISPLAY_NUMBER_ILLEGAL", "号显不合法")
        problem = _variables_problem(template, params.get("TtsParam"), "isv.INVALID_PARAMETERS")
        if problem is not None:
            return problem
        variables = json.loads(params.get("TtsParam") or "{}")
        if sum(java_length(value) for value in variables.values()) >= TTS_PARAM_LIMIT:
            return _business("isv.PARAM_LENGTH_LIMIT", "参数长度受限")
        if not self.balance_left:
            return _business("isv.OUT_OF_SERVICE", "业务停机")
        limited = self._limited((params["CalledNumber"],), self.voice_number_limits)
        if limited:
            return limited
        return {"Code": "OK", "Message": "OK", "CallId": f"116012354148^{int(self.now() * 1000)}"}

    def _limited(self, key: tuple[str, ...], limits: list[tuple[int, float]]) -> dict | None:
        """isv.BUSINESS_LIMIT_CONTROL naming the first full window, or None (and the send counted)."""
        windows = self._number_windows.setdefault(key, [SlidingWindow(count, seconds) for count, seconds in limits])
        now = self.now()
        if admit_all(windows, now):
            return None
        full = next(w for w in windows if w.wait(now))
        return _business("isv.BUSINESS_LIMIT_CONTROL", f"触发{LEVELS.get(full.seconds, '')}流控Permits:{full.count}")


def _api(host: str, headers: Mapping[str, str]) -> str:
    """The API a request calls, by its Host, x-acs-action and x-acs-version; "" for none of the two."""
    action = headers.get("x-acs-action", "")
    apis = {"SendSms": host in SMS_HOSTS, "SingleCallByTts": host == VMS_HOST}
    return action if apis.get(action) and headers.get("x-acs-version") == VERSION else ""


def _params(query: str, content_type: str, body: bytes) -> dict[str, str]:
    """The API's parameters: the query string's, and a form body's (which V3 signs by its hash, not by name)."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _require(params: Mapping[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise Refusal(400, f"Missing{name}", f"{name} is mandatory for this action.")


def _variables_problem(template: str, raw: str | None, invalid_code: str) -> dict | None:
    """The answer when the variables do not fill the template: not a JSON object of strings, one missing or
    empty, one holding a link or an IP address; None when they do."""
    try:
        variables = json.loads(raw) if raw else {}
    except ValueError:
        variables = None
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        return _business(invalid_code, "JSON参数不合法，只接受字符串值")
    names = VARIABLE.findall(template)
    if not all(variables.get(name) for name in names):
        return _business("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量中存在未赋值变量")
    if any(LINK.search(variables[name]) for name in names):
        return _business("isv.PARAM_NOT_SUPPORT_URL", "不支持url为变量")
    return None


def _business(code: str, message: str) -> dict:
    return {"Code": code, "Message": message}


def _request_id() -> str:
    return str(uuid.uuid4()).upper()
