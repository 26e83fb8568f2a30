"""A fake Twilio REST API (2010-04-01 Messages and Calls) on loopback, checking what Twilio checks.

Written from CHANNELS.md §9-10, not from the channel code: HTTP Basic auth (401 code 20003), the account in the
path (404 20404), form-encoded required fields, E.164 numbers (21211), the SMS body limit (21617 over 1600),
inline TwiML (at most 4000 characters, well-formed, a <Response> root), a concurrency limit and a request
window (429 code 20429). Errors come in Twilio's legacy JSON ({code, message, more_info, status}); successes
are 201 with a message (SM…) or call (CA…) resource, status queued. It records what it accepted and what it
refused, can be scripted to fail (5xx, 429, any code, a proxy's HTML page, a slow answer), and can play
Twilio's part after a call: POST the <Gather action> with the digits, signed with X-Twilio-Signature.
"""

import asyncio
import base64
import hashlib
import hmac
import math
import re
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient

from amcompanion.fakes import Shown

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token"
FROM = "+15005550006"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")  # alphanumeric sender id (SMS only)
BODY_LIMIT = 1600
TWIML_LIMIT = 4000
# GSM 03.38 basic set: a body of these alone goes 160 (153 in parts) a segment, else UCS-2 70 (67)
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource {uri} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required. Please provide a Url, Twiml or ApplicationSid",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21213: "No 'From' number is specified",
    21214: "'To' phone number cannot be reached.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21608: "The number {to} is unverified. Trial accounts may only send messages to verified numbers.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    12100: "Document parse failure",
    32018: "TwiML exceeds the 4000 character limit.",
}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """What Twilio puts in X-Twilio-Signature (written here from Twilio's docs, not taken from the receiver)."""
    message = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()).decode()


def segments(body: str) -> int:
    single, part = (160, 153) if set(body) <= GSM7 else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)


@dataclass
class Scripted:
    """One scripted answer: an error (status, Twilio code, or a raw body such as a proxy's page) and/or a delay."""

    status: int = 0  # 0: after the delay, answer as Twilio would
    code: int | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # sent as is instead of Twilio's JSON error
    delay: float = 0.0


@dataclass
class Accepted:
    """A request Twilio accepted: which API, the form it got, the resource it answered."""

    api: str  # "Messages" or "Calls"
    form: dict[str, str]
    resource: dict
    content_type: str

    @property
    def spoken(self) -> list[ET.Element]:
        """The call's <Say> elements, in order (none for a message or a call by URL)."""
        return list(ET.fromstring(self.form["Twiml"]).iter("Say")) if "Twiml" in self.form else []

    @property
    def gather(self) -> ET.Element | None:
        """The call's <Gather> (None for a message, or a call without one)."""
        if "Twiml" not in self.form:
            return None
        return ET.fromstring(self.form["Twiml"]).find(".//Gather")


class FakeTwilio:
    def __init__(
        self,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        rate: tuple[int, float] | None = None,
        max_concurrent: int | None = None,
    ):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.rate = rate  # (requests, seconds): more in a sliding window answer 429 20429
        self.max_concurrent = max_concurrent
        self.script: list[Scripted] = []
        self.refuse: dict[str, int] = {}  # a To number → the Twilio code it gets (21608 unverified, 21610 STOP...)
        self.accepted: list[Accepted] = []
        self.refused: list[tuple[int, int | None]] = []  # (status, code) of every error answer
        self.requests = 0
        self.authenticated = 0  # requests whose Basic auth matched the account's SID and token
        self._window: list[float] = []
        self._in_flight = 0
        self.app = web.Application()
        self.app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._messages)
        self.app.router.add_post("/2010-04-01/Accounts/{sid}/Calls.json", self._calls)

    def shown(self) -> list[Shown]:
        """Accepted SMS as the phone shows them; calls as the words the phone speaks."""
        return [
            Shown(f"SMS to {a.form['To']}", a.form["Body"])
            if a.api == "Messages"
            else Shown(f"call to {a.form['To']}", " ".join(" ".join(say.itertext()) for say in a.spoken))
            for a in self.accepted
        ]

    # -- configuring failures ----------------------------------------------------------------------------
    def fail(
        self, status: int, code: int | None = None, times: int = 1, retry_after: str | None = None, body: str = ""
    ) -> None:
        """The next `times` requests get this error (Twilio's JSON for `code`, or `body` as is)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        for _ in range(times):
            self.script.append(Scripted(status, code, headers=headers, body=body or None))

    def slow(self, seconds: float, times: int = 1) -> None:
        """The next `times` requests are answered only after `seconds` (a client timeout)."""
        self.script.extend(Scripted(delay=seconds) for _ in range(times))

    # -- the API -----------------------------------------------------------------------------------------
    async def _messages(self, request: web.Request) -> web.Response:
        return await self._handle(request, "Messages")

    async def _calls(self, request: web.Request) -> web.Response:
        return await self._handle(request, "Calls")

    async def _handle(self, request: web.Request, api: str) -> web.Response:
        self.requests += 1
        self._in_flight += 1
        try:
            return await self._answer(request, api)
        finally:
            self._in_flight -= 1

    async def _answer(self, request: web.Request, api: str) -> web.Response:
        if self.script:
            scripted = self.script.pop(0)
            if scripted.delay:
                await asyncio.sleep(scripted.delay)
            if scripted.body is not None:
                self.refused.append((scripted.status, None))
                return web.Response(status=scripted.status, text=scripted.body, headers=scripted.headers)
            if scripted.status:
                return self._error(scripted.status, scripted.code, scripted.headers, uri=request.path)
        if not self._authenticated(request):
            return self._error(401, 20003, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        self.authenticated += 1
        if request.match_info["sid"] != self.account_sid:
            return self._error(404, 20404, uri=request.path)
        if self.max_concurrent is not None and self._in_flight > self.max_concurrent:
            return self._error(429, 20429)
        if self.rate is not None:
            count, seconds = self.rate
            now = time.monotonic()
            self._window = [t for t in self._window if t > now - seconds]
            if len(self._window) >= count:
                return self._error(429, 20429)
            self._window.append(now)
        content_type = request.content_type
        form = {k: str(v) for k, v in (await request.post()).items()}  # JSON bodies read as no fields at all
        problem = self._check_messages(form) if api == "Messages" else self._check_calls(form)
        if problem is not None:
            return self._error(400, problem, to=form.get("To", ""), from_=form.get("From", ""))
        resource = self._resource(api, form)
        self.accepted.append(Accepted(api, form, resource, content_type))
        return web.json_response(resource, status=201)

    def _authenticated(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            sid, _, token = base64.b64decode(credentials, validate=True).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(f"{sid}:{token}", f"{self.account_sid}:{self.auth_token}")

    def _check_messages(self, form: dict[str, str]) -> int | None:
        if not form.get("To"):
            return 21604
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 21603
        if not form.get("Body") and not form.get("MediaUrl"):
            return 21602
        if not E164.match(form["To"]):
            return 21211
        if form.get("From") and not (E164.match(form["From"]) or SENDER_ID.match(form["From"])):
            return 21212
        if len(form["Body"]) > BODY_LIMIT:
            return 21617
        return self.refuse.get(form["To"])

    def _check_calls(self, form: dict[str, str]) -> int | None:
        if not form.get("To"):
            return 21201
        if not form.get("From"):
            return 21213
        given = [k for k in ("Url", "Twiml", "ApplicationSid") if form.get(k)]
        if len(given) != 1:
            return 21205
        if not E164.match(form["To"]):
            return 21211
        if not E164.match(form["From"]):
            return 21212
        if "Twiml" in form:
            if len(form["Twiml"]) > TWIML_LIMIT:
                return 32018
            try:
                root = ET.fromstring(form["Twiml"])
            except ET.ParseError:
                return 12100
            if root.tag != "Response":
                return 12100
        return self.refuse.get(form["To"])

    def _resource(self, api: str, form: dict[str, str]) -> dict:
        kind = "SM" if api == "Messages" else "CA"
        sid = kind + secrets.token_hex(16)
        common = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form["From"],
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "date_updated": formatdate(usegmt=True),
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/{api}/{sid}.json",
        }
        if api == "Messages":
            body = form["Body"]
            return {
                **common,
                "body": body,
                "num_segments": str(segments(body)),
                "num_media": "0",
                "messaging_service_sid": None,
                "error_code": None,
                "error_message": None,
                "date_sent": None,
            }
        return {**common, "parent_call_sid": None, "queue_time": "0", "start_time": None, "end_time": None}

    def _error(
        self, status: int, code: int | None, headers: dict[str, str] | None = None, **values: str
    ) -> web.Response:
        self.refused.append((status, code))
        template = MESSAGES.get(code or 0, "Error")
        body = {
            "code": code,
            "message": template.format(**{"uri": "", "to": "", "from_": "", **values}),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(body, status=status, headers=headers)

    # -- playing Twilio's part after a call ---------------------------------------------------------------
    def callback(self, call: Accepted, digits: str, auth_token: str | None = None) -> tuple[str, dict, dict]:
        """The request Twilio makes when the callee presses `digits`: the <Gather action> URL, the form, and
        the headers with X-Twilio-Signature (over that URL and the form, with the account's auth token)."""
        gather = call.gather
        assert gather is not None, "the call has no <Gather>"
        assert gather.get("method", "POST").upper() == "POST" and gather.get("numDigits") == "1"
        url = gather.get("action", "")
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.resource["sid"],
            "CallStatus": "in-progress",
            "Called": call.form["To"],
            "Caller": call.form["From"],
            "Digits": digits,
            "Direction": "outbound-api",
            "FinishedOnKey": "",
            "From": call.form["From"],
            "To": call.form["To"],
        }
        signature = twilio_signature(auth_token or self.auth_token, url, form)
        return url, form, {"X-Twilio-Signature": signature}

    async def press(self, client: TestClient, digits: str = "1", call: int = -1, auth_token: str | None = None):  # type: ignore[no-untyped-def]
        """Twilio POSTing the Gather callback of call number `call` to the receiver behind `client`: the
        action URL is the public one (external_url), so the request goes to its path on `client`."""
        url, form, headers = self.callback(self.accepted[call], digits, auth_token)
        parts = urlsplit(url)
        return await client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=form, headers=headers)
