"""Twilio SMS through the Messages API; also the Twilio client and answer reading that the voice channel shares.

The twilio library makes the call (its aiohttp client, `create_async`), but on the outbox's session and keeping
the raw answer: the library's exceptions drop the headers (Retry-After) and classify wants the real status and
Twilio's numeric `code`, so every answer, good or bad, comes back as our `Response`. Transport errors (aiohttp,
OS, timeouts) are left to propagate: the outbox retries them.
"""

import base64
import json
from collections.abc import Awaitable, Callable

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from amcompanion.receiver.channels.base import (
    Message,
    Outcome,
    Response,
    json_answer,
    no_phone,
    not_sent_outcome,
    phone_of,
    retry_after_header,
    truncate,
)

DEFAULT_BASE_URL = "https://api.twilio.com"
BODY_LIMIT = 1600  # characters; Twilio answers 21617 above it
# What a permanent Twilio code means for whoever reads the failed row (CHANNELS.md §9, §10).
EXPLAINED = {
    20003: "authentication failed: check account_sid and auth_token",
    20404: "not found: check account_sid",
    21211: "the contact's phone is not a valid number",
    21212: "the `from` number is not valid",
    21214: "the contact's phone cannot be reached",
    21606: "the `from` number cannot send SMS",
    21608: "the contact's phone is not verified (trial account)",
    21610: "the contact unsubscribed (replied STOP)",
    21612: "Twilio cannot route to the contact's phone",
    21614: "the contact's phone is not a mobile number",
    21617: "the message is over 1600 characters",
    32018: "the TwiML is over 4000 characters",
}


class _AnswerKeepingClient(AsyncTwilioHttpClient):
    """twilio's aiohttp client on a session it does not own (the outbox's), remembering the last answer.

    `request` is its own: the library's passes `auth=BasicAuth(...)`, deprecated in aiohttp 3.14 (a warning
    per message), and does not release the connection when reading the answer fails."""

    def __init__(self, session: aiohttp.ClientSession):
        super().__init__(pool_connections=False)
        self.session = session
        self.answer: Response | None = None  # as it came, for classify

    async def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else None
        async with self.session.request(
            method.upper(),
            url,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            allow_redirects=allow_redirects,
            **({"timeout": request_timeout} if request_timeout else {}),
        ) as response:
            body = await response.read()
        self.answer = Response(response.status, response.headers, body)
        return TwilioResponse(response.status, body.decode("utf-8", "replace"), response.headers)


class TwilioAccount:
    """The settings both Twilio channels share, and one REST call made through the twilio library."""

    def __init__(self, settings: dict[str, object]):
        self.account_sid = str(settings["account_sid"])
        self.auth_token = str(settings["auth_token"])
        self.sender = str(settings["from"])
        self.base_url = str(settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    async def create(self, session: aiohttp.ClientSession, call: Callable[[Client], Awaitable[object]]) -> Response:
        """Run `call` (a `create_async`) against base_url; Twilio's answer as a Response, whatever its status."""
        http = _AnswerKeepingClient(session)
        client = Client(self.account_sid, self.auth_token, http_client=http)
        client.edge = client.region = None  # never from TWILIO_EDGE/TWILIO_REGION: they rewrite the host
        client.api.base_url = self.base_url
        try:
            await call(client)
        except (TwilioException, ValueError) as exc:  # an error answer, or a 2xx whose body is not JSON
            if http.answer is None:
                if isinstance(exc, TwilioRestException):
                    return twilio_error(exc.status, exc.code, exc.msg)
                raise
        assert http.answer is not None
        return http.answer


def twilio_error(status: int, code: int | None, message: str, headers: dict[str, str] | None = None) -> Response:
    """An answer in Twilio's error shape (for a failure the library reported without the answer itself)."""
    more_info = f"https://www.twilio.com/docs/errors/{code}" if code else ""
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return Response(status, headers or {}, json.dumps(body).encode())


def classify_twilio(response: Response) -> Outcome:
    """2xx ok; 429 (20429: "never processed, always safe to retry"), 408 and 5xx retry, with Retry-After when
    sent; every other error (auth 20003, invalid or unreachable numbers, size limits) is permanent."""
    status = response.status
    if 200 <= status < 300:
        return Outcome("ok")
    if (refused := not_sent_outcome(response)) is not None:
        return refused
    answer = json_answer(response)
    message = str(answer.get("message") or response.body[:200].decode("utf-8", "replace").strip())
    code = answer.get("code")
    reason = f"HTTP {status}, Twilio error {code}: {message}" if code else f"HTTP {status}: {message}"
    if status in (408, 429) or status >= 500 or code == 20429:
        return Outcome("retry", reason, retry_after_header(response))
    if isinstance(code, int) and code in EXPLAINED:
        reason += f" ({EXPLAINED[code]})"
    return Outcome("permanent", reason)


class TwilioChannel:
    """What both Twilio channels do: find the contact's phone, make one `create_async` on the account, read
    Twilio's answer. A subclass says what it creates."""

    verb = "reach"  # what the channel does with the phone, for the reason when there is none

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.account = TwilioAccount(settings)

    def create(self, client: Client, phone: str, message: Message) -> Awaitable[object]:
        raise NotImplementedError

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        phone = phone_of(message)
        if not phone:
            return no_phone(message, self.verb)
        return await self.account.create(session, lambda client: self.create(client, phone, message))

    def classify(self, response: Response) -> Outcome:
        return classify_twilio(response)


class TwilioSmsChannel(TwilioChannel):
    """A text message to the contact's phone."""

    type = "twilio_sms"
    verb = "text"

    def body(self, message: Message) -> str:
        return truncate(message.text, BODY_LIMIT)

    def create(self, client: Client, phone: str, message: Message) -> Awaitable[object]:
        return client.messages.create_async(to=phone, from_=self.account.sender, body=self.body(message))


CHANNEL = TwilioSmsChannel
