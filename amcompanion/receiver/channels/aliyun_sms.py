"""Aliyun (Alibaba Cloud) SMS through Dysmsapi 2017-05-25 `SendSms`; also the signed call, the template params and
the reading of answers that the voice channel (aliyun_voice) shares.

Aliyun sends only approved templates, so the channel's jinja template does not write the message: its text gives
the values of the approved template's variables, one `name: value` line each (the contract is in the header of
webhook/templates/aliyun_sms.j2), sent as the `TemplateParam` JSON. Each value is cut to Aliyun's 35 characters
for a variable (counted in UTF-16 units, as a Java service counts: an emoji is two, the safe side) and an empty
one is sent as `-` (a variable takes 1 to 35 characters); links and IP addresses are taken out (Aliyun refuses a
variable holding one: isv.PARAM_NOT_SUPPORT_URL), so the SMS has no ack link: links belong in the approved
template's fixed text. A mainland number (+86…) is sent without +86; another as its country code and number,
without the + (or the 00 dialled for it); 0086… and 86…, which SendSms documents for mainland numbers, as written.

The call is RPC style, signed with Aliyun's V3 signature (ACS3-HMAC-SHA256): the API's parameters in the query
string, an empty body, the `host` and `x-acs-*` headers signed. The signing is a few lines of hashlib/hmac, so
Aliyun's SDK (blocking, with its own HTTP stack and credential chain) is not used; aiohttp makes the call. The
`host` signed and sent is always the service's (dysmsapi.aliyuncs.com), also through `base_url`: a proxy in
between must pass it on, as Aliyun checks the signature against it.

Answers: HTTP 200 with `Code` "OK" is a message accepted; a business error comes in an HTTP 200 body too, with
another `Code`; the gateway's errors (signature, key, timestamp, throttling) come with HTTP 4xx. The answer is read
as the SDK reads it: JSON (`Code`/`Message`, or `code`/`message` in a gateway error), else XML (`<Code>` and
`<Message>`, what Aliyun answers a client that did not ask for JSON). Aliyun's per-number flow control
(isv.BUSINESS_LIMIT_CONTROL: notifications 50 a day per signature, template and number, verification codes 1 a
minute, 5 an hour, 10 a day; a day being the 24 hours before the send) retries after the window the message names;
Throttling.* (the API's QPS limit), and any error answer with an `x-acs-retry-after` header (the SDK takes every such
answer for throttling, whatever its code), after that wait; isp.SYSTEM_ERROR, HTTP 408, 429 and 5xx retry; every
other code is permanent, with what it means.

Sources:
- SendSms: https://help.aliyun.com/document_detail/419273.html (PhoneNumbers formats, TemplateParam);
  https://help.aliyun.com/en/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms
- V3 signature, with its worked example: https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature
  (also https://www.alibabacloud.com/help/resource-management/latest/common-parameters); the SDK's signer:
  https://github.com/aliyun/darabonba-openapi (python/alibabacloud_tea_openapi/utils.py `get_authorization`,
  client.py `do_request`: RPC parameters in the query, every header signed; `x-acs-retry-after`, in ms, makes any
  error answer a throttling one since #283; the error's `Code` or `code`); the SDK's SendSms and SingleCallByTts
  (github.com/aliyun/alibabacloud-python-sdk, dysmsapi-20170525 and dyvmsapi-20170525 client.py: `query`, POST /,
  req_body_type formData) and its endpoint map (us-east-1, eu-central-1, ap-southeast-1 and -5 have their own host)
- error codes: https://help.aliyun.com/document_detail/101346.html
- flow control: https://help.aliyun.com/document_detail/2881383.html
- a variable's length (1 to 35 characters): https://help.aliyun.com/document_detail/44357.html
- endpoints: https://help.aliyun.com/document_detail/68360.html
"""

import hashlib
import hmac
import html
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
from yarl import URL

from amcompanion.receiver.channels.base import (
    Message,
    Outcome,
    Response,
    http_outcome,
    json_answer,
    mainland_mobile,
    no_phone,
    not_sent_outcome,
    phone_of,
    rebase,
    retry_after_header,
)

ALGORITHM = "ACS3-HMAC-SHA256"
API_VERSION = "2017-05-25"  # Dysmsapi's and Dyvmsapi's
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
SMS_HOST = "dysmsapi.aliyuncs.com"
# the SDK's endpoint map: these regions have a host of their own, the rest share dysmsapi.aliyuncs.com
REGIONAL_SMS_HOSTS = {"ap-southeast-1", "ap-southeast-5", "eu-central-1", "us-east-1"}
VARIABLE_LIMIT = 35  # characters of one SMS template variable
CUT_MARKER = "…"
EMPTY_VALUE = "-"
PARAM_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)[ \t]*:[ \t]*(.*)")
LINK = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
IP_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")
# Per-number limits by the level Aliyun's message names ("触发天级流控Permits:50"): the whole window, as the count
# is over the window before the send and which send leaves it first is not said.
LIMIT_WINDOWS = (
    ("天", 86400.0),
    ("day", 86400.0),
    ("小时", 3600.0),
    ("hour", 3600.0),
    ("分钟", 60.0),
    ("minute", 60.0),
)
UNNAMED_LIMIT_WAIT = 3600.0
# Aliyun's "try again" codes; SignatureNonceUsed too, as the next try has a nonce of its own.
RETRIED_CODES = {"isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "isp.UNKNOWN", "SignatureNonceUsed", "ServiceUnavailable"}
# What a code means, for whoever reads the row; both APIs answer these.
EXPLAINED = {
    "InvalidAccessKeyId.NotFound": "access_key_id is not a key of this Aliyun account",
    "InvalidAccessKeyId.Inactive": "access_key_id is disabled",
    "SignatureDoesNotMatch": "access_key_secret is not the secret of access_key_id",
    "IncompleteSignature": "the request's signature is malformed",
    "InvalidTimeStamp.Expired": "this host's clock is more than 15 minutes off",
    "isp.RAM_PERMISSION_DENY": "the RAM user of access_key_id may not call this API",
    "isv.ACCOUNT_NOT_EXISTS": "the Aliyun account does not exist",
    "isv.ACCOUNT_ABNORMAL": "the Aliyun account is abnormal",
    "isv.PRODUCT_UN_SUBSCRIPT": "the account has not activated Aliyun's communication services",
    "isv.OUT_OF_SERVICE": "the account is suspended: its balance is overdue",
    "isv.AMOUNT_NOT_ENOUGH": "the account's balance is too low: top it up",
    "isv.INVALID_PARAMETERS": "Aliyun refused a parameter",
    "isv.MOBILE_NUMBER_ILLEGAL": "the contact's phone is not a number Aliyun takes",
    "isv.TEMPLATE_MISSING_PARAMETERS": "the approved template has a variable the channel's template gives no"
    " `name: value` line for",
    "isv.PARAM_LENGTH_LIMIT": "a template variable is longer than Aliyun takes",
    "isv.PARAM_NOT_SUPPORT_URL": "a template variable holds a link: links belong in the approved template's text",
    "isv.BLACK_KEY_CONTROL_LIMIT": "a template variable holds a word Aliyun blocks",
}
SMS_EXPLAINED = {
    **EXPLAINED,
    "isv.SMS_TEMPLATE_ILLEGAL": "template_code is not an approved template of this account",
    "isv.SMS_SIGNATURE_ILLEGAL": "sign_name is not an approved signature of this account",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": "sign_name is for verification codes only; notifications need a general one",
    "isv.SIGN_STATE_ILLEGAL": "sign_name is not usable (see its state in the SMS console)",
    "isv.SMS_SIGN_ILLEGAL": "sign_name may not be used",
    "isv.SMS_CONTENT_ILLEGAL": "Aliyun refused the message's content",
    "isv.INVALID_JSON_PARAM": "TemplateParam is not a JSON object of strings",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": "template_code is an international template: it cannot text a mainland number",
    "isv.DAY_LIMIT_CONTROL": "the account's daily limit set in the SMS console is reached",
    "isv.MONTH_LIMIT_CONTROL": "the account's monthly limit set in the SMS console is reached",
    "isv.DENY_IP_RANGE": "Aliyun sends mainland SMS only for calls from mainland IP addresses",
    "isv.BUSINESS_LIMIT_CONTROL": "Aliyun's limit per number: 50 notifications a day per signature and template,"
    " verification codes 1 a minute, 5 an hour, 10 a day",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def random_nonce() -> str:
    return uuid.uuid4().hex


def percent_encode(value: str) -> str:
    """RFC 3986, as Aliyun signs: only A-Z a-z 0-9 - _ . ~ stay as they are (a space is %20, * is %2A)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The query string as V3 signs it, sorted by name; sent exactly so: what Aliyun parses is what was signed."""
    return "&".join(f"{percent_encode(name)}={percent_encode(params[name])}" for name in sorted(params))


def v3_headers(access_key_id: str, secret: str, host: str, action: str, query: str, date: str, nonce: str) -> dict:
    """The headers of a V3-signed RPC call with an empty body (POST /): the signed ones and `authorization`."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-version": API_VERSION,
    }
    signed = ";".join(sorted(headers))
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers))
    canonical_request = "\n".join(["POST", "/", query, canonical_headers, signed, EMPTY_BODY_SHA256])
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    signature = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        **headers,
        "authorization": f"{ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={signature}",
    }


def template_params(text: str) -> dict[str, str]:
    """The variables the rendered template gives: `name: value` per line; a line of another form continues the
    value above it (joined with a space); blank lines are skipped; a name given twice takes its last value."""
    params: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        line = line.strip()
        match = PARAM_LINE.fullmatch(line)
        if match:
            name = match[1]
            params[name] = match[2].strip()
        elif line and name:
            params[name] = f"{params[name]} {line}".strip()
    return params


def sms_number(phone: str) -> str:
    """A number as SendSms's PhoneNumbers takes it: a mainland one without +86 (0086… and 86… it takes as written);
    another as its country code and number, without the + (or the 00 dialled for it)."""
    if phone.startswith("+86"):
        return mainland_mobile(phone)
    if phone.startswith("+"):
        return phone[1:]
    return phone[2:] if phone.startswith("00") and not phone.startswith("0086") else phone


def aliyun_length(value: str) -> int:
    """Characters as a Java service counts them (String.length: an emoji beyond the BMP is two), never fewer than
    Aliyun counts."""
    return len(value.encode("utf-16-le")) // 2


def cut(value: str, limit: int) -> str:
    """`value` within `limit` characters, ending in … when it was longer."""
    if aliyun_length(value) <= limit:
        return value
    kept, room = [], limit - len(CUT_MARKER)
    for char in value:
        room -= aliyun_length(char)
        if room < 0:
            break
        kept.append(char)
    return "".join(kept).rstrip() + CUT_MARKER


def sendable(value: str) -> str:
    """A value as Aliyun takes one: without links or IP addresses, never empty (not yet cut)."""
    value = IP_ADDRESS.sub("(IP)", LINK.sub("(link)", value)).strip()
    return value or EMPTY_VALUE


def param_json(params: Mapping[str, str]) -> str:
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


def business_limit_wait(text: str) -> float:
    """How long Aliyun's per-number flow control holds, by the window its message names."""
    lowered = text.lower()
    return next((seconds for word, seconds in LIMIT_WINDOWS if word in lowered), UNNAMED_LIMIT_WAIT)


def aliyun_answer(response: Response) -> tuple[object, str]:
    """The answer's Code and Message: from JSON (`Code`, or a gateway error's `code`), else from XML; (None, "")
    when the body is neither (a proxy's page, an empty body)."""
    answer = json_answer(response)
    if answer:
        code = answer.get("Code", answer.get("code"))
        return code, str(answer.get("Message", answer.get("message", "")) or "")
    body = response.body.decode("utf-8", "replace")
    if body.lstrip().startswith("<") and "<html" not in body[:500].lower():
        fields = {name: html.unescape(value).strip() for name, value in XML_FIELD.findall(body)}
        if "Code" in fields:
            return fields["Code"], fields.get("Message", "")
    return None, ""


def classify_aliyun(response: Response, product: str, explained: Mapping[str, str]) -> Outcome:
    """HTTP 200 with Code OK is ok. Per-number flow control, Throttling.* and any answer with x-acs-retry-after,
    isp.SYSTEM_ERROR, 408, 429 and 5xx retry (with the window or the gateway's wait); every other code is permanent,
    with what it means."""
    if (refused := not_sent_outcome(response)) is not None:
        return refused
    code, text = aliyun_answer(response)
    succeeded = 200 <= response.status < 300
    if not isinstance(code, str) or not code:
        if succeeded:  # a proxy's page, say: not proof of delivery
            return Outcome("retry", f"unexpected answer: {response.body[:200].decode('utf-8', 'replace').strip()}")
        if (wait := retry_after_ms(response)) is not None:  # throttling, for the SDK, whatever the body
            return Outcome("retry", http_outcome(response).reason, wait)
        return http_outcome(response)
    if succeeded and code == "OK":
        return Outcome("ok")
    status = f" (HTTP {response.status})" if response.status != 200 else ""
    reason = f"Aliyun {product} {code}: {text}{status}"
    meaning = f" ({explained[code]})" if code in explained else ""
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        return Outcome("retry", reason + meaning, business_limit_wait(text), recipient_limit=True)
    wait = retry_after_ms(response)
    if code.startswith("Throttling") or wait is not None:
        return Outcome("retry", reason, wait)
    if code in RETRIED_CODES or response.status >= 500 or response.status in (408, 429):
        return Outcome("retry", reason, retry_after_header(response))
    return Outcome("permanent", reason + meaning)


def retry_after_ms(response: Response) -> float | None:
    """The gateway's x-acs-retry-after (milliseconds, as the SDK reads it) in seconds; None without one."""
    try:
        wait = float(response.headers.get("x-acs-retry-after", ""))
    except ValueError:
        return None
    return wait / 1000 if wait > 0 else None


class AliyunChannel:
    """What both Aliyun channels do: find the contact's phone, make one V3-signed call of `action` on `host` with
    the parameters the subclass gives, read Aliyun's answer."""

    product = "SMS"
    action = "SendSms"
    verb = "text"
    explained: Mapping[str, str] = SMS_EXPLAINED

    def __init__(
        self,
        name: str,
        settings: dict[str, object],
        now: Callable[[], datetime] = utc_now,
        nonce: Callable[[], str] = random_nonce,
    ):
        """`now` and `nonce` are what the signature stamps each request with (fixed in tests)."""
        self.name = name
        self.access_key_id = str(settings["access_key_id"])
        self.access_key_secret = str(settings["access_key_secret"])
        self.host = self.service_host(settings)
        self.url = rebase(f"https://{self.host}/", settings.get("base_url"))
        self.now, self.nonce = now, nonce
        self.configure(settings)

    def configure(self, settings: dict[str, object]) -> None:
        """The settings of the product's own API (its template, signature, shown number)."""
        raise NotImplementedError

    def service_host(self, settings: dict[str, object]) -> str:
        region = str(settings.get("region") or "")
        return f"dysmsapi.{region}.aliyuncs.com" if region in REGIONAL_SMS_HOSTS else SMS_HOST

    def params(self, phone: str, message: Message) -> dict[str, str] | Response:
        """The API's parameters for `message` to `phone`, or the answer when it is not sent."""
        raise NotImplementedError

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        phone = phone_of(message)
        if not phone:
            return no_phone(message, self.verb)
        params = self.params(phone, message)
        if isinstance(params, Response):
            return params
        return await self.call(session, params)

    async def call(self, session: aiohttp.ClientSession, params: Mapping[str, str]) -> Response:
        """One signed POST with `params` in the query; Aliyun's answer, whatever its status."""
        query = canonical_query(params)
        date = self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = v3_headers(
            self.access_key_id, self.access_key_secret, self.host, self.action, query, date, self.nonce()
        )
        url = URL(f"{self.url}?{query}", encoded=True)
        # no Content-Type: aiohttp would add one for the empty body, and every Content-Type must be signed
        headers = {**headers, "accept": "application/json"}
        async with session.post(url, headers=headers, skip_auto_headers=["Content-Type"]) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        return classify_aliyun(response, self.product, self.explained)


class AliyunSmsChannel(AliyunChannel):
    """A notification SMS from an approved signature and template, its variables from the channel's template."""

    type = "aliyun_sms"

    def configure(self, settings: dict[str, object]) -> None:
        self.sign_name = str(settings["sign_name"])
        self.template_code = str(settings["template_code"])

    def template_param(self, message: Message) -> dict[str, str]:
        """The template's variables, each made sendable and cut to Aliyun's 35 characters."""
        return {name: cut(sendable(value), VARIABLE_LIMIT) for name, value in template_params(message.text).items()}

    def params(self, phone: str, message: Message) -> dict[str, str]:
        params = {"PhoneNumbers": sms_number(phone), "SignName": self.sign_name, "TemplateCode": self.template_code}
        variables = self.template_param(message)
        return {**params, "TemplateParam": param_json(variables)} if variables else params


CHANNEL = AliyunSmsChannel
