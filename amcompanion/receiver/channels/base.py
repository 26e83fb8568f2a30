"""The channel protocol and the values that cross it."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

TRUNCATED = "\n…(truncated)"


@dataclass(frozen=True)
class Message:
    """One message to one recipient: a single alert, or a digest of several when a channel is flooded."""

    # "acknowledged" goes only to channels that keep an incident of their own in step (`syncs_acks`: PagerDuty)
    kind: Literal["firing", "resolved", "acknowledged"]
    title: str
    text: str  # rendered from the channel's template
    alerts: list[dict]  # the alerts it is about, as the API shows them
    recipient: dict[str, str] = field(default_factory=dict)  # the contact's addresses; empty for a group robot
    recipient_name: str = ""
    ack_url: str = ""  # empty for resolve notices and digests
    html: str = ""  # the template's `html` block, for channels that send HTML (email)
    notification_id: int = 0  # the outbox row (the first one of a digest): names a call in the Twilio callback
    external_url: str = ""  # the receiver's public URL, for callbacks (Twilio's <Gather action>)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive, as HTTP headers are (aiohttp's CIMultiDictProxy)
    body: bytes


@dataclass(frozen=True)
class Outcome:
    result: Literal["ok", "retry", "permanent"]
    reason: str = ""
    retry_after: float | None = None  # seconds the service asked us to wait
    # a retry for the recipient's own limit (a per-number flow control): the channel itself is fine, so its other
    # recipients' messages go on; only this one waits
    recipient_limit: bool = False


class Channel(Protocol):
    name: str

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        """Make the API call; network errors and timeouts propagate (the outbox retries them)."""
        ...

    def classify(self, response: Response) -> Outcome: ...


@dataclass(frozen=True)
class Click:
    """A button pressed in a chat message, once the channel has verified that the chat service sent it."""

    user_field: str  # the contact field naming the presser: slack_user_id, feishu_open_id, dingtalk_user_id…
    user_id: str
    action: Literal["ack", "resolve"]
    alert_id: int
    user_name: str = ""  # the presser's name in the chat, for the answer's wording
    other_ids: Mapping[str, str] = field(default_factory=dict)  # more of the presser's ids (Feishu: user_id too)


@dataclass(frozen=True)
class ClickAnswer:
    """What the receiver did with a click: `text` is what the chat shows (who acknowledged, or why not)."""

    done: bool
    text: str
    person: str = ""  # the contact it was done as
    alert: dict | None = None  # the alert afterwards, as the API shows it


Act = Callable[[Click], Awaitable[ClickAnswer]]  # the receiver's side: acknowledge or resolve as the presser


@dataclass(frozen=True)
class Clicked:
    """A channel's answer to its chat service's callback, and what to do once it is sent (update the message
    in place: Slack's response_url), run on the receiver's client session, bounded by its timeout."""

    response: Response
    after: Callable[["aiohttp.ClientSession"], Awaitable[None]] | None = None


class Interactive(Protocol):
    """A channel whose messages carry buttons: its chat service calls `callback_path` when one is pressed."""

    callback_path: str  # e.g. /slack/interactions; several channels may share one (tried in turn)

    async def answer_click(self, headers: Mapping[str, str], body: bytes, now: datetime, act: Act) -> Clicked | None:
        """None when the request is not this channel's (it does not verify under this channel's secrets);
        else the answer the service expects, after `act` was asked to do what the button says."""
        ...


class CachedToken:
    """An access token (WeCom's, Feishu's tenant token) fetched when there is none or it is about to expire,
    once for all the sends waiting on it, and dropped when the service says it is no longer valid.

    `fetch` returns the token and its lifetime in seconds, or the service's answer when it refused one (that
    answer is then what the send returns, for classify to read)."""

    def __init__(
        self,
        fetch: Callable[["aiohttp.ClientSession"], Awaitable[tuple[str, float] | Response]],
        margin_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self._margin = margin_s
        self._monotonic = monotonic
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times a token was asked for (tests read it)

    async def get(self, session: "aiohttp.ClientSession") -> str | Response:
        async with self._lock:
            if self._token and self._monotonic() < self._expires:
                return self._token
            self.fetches += 1
            got = await self._fetch(session)
            if isinstance(got, Response):
                return got
            token, lifetime = got
            self._token = token
            self._expires = self._monotonic() + max(0.0, lifetime - min(self._margin, lifetime / 2))
            return token

    def forget(self, token: str) -> None:
        """The service refused `token` (expired early, revoked): the next send fetches another."""
        if token == self._token:
            self._token = ""


def retry_after_header(response: Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from these APIs and is treated as absent)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def http_outcome(response: Response) -> Outcome:
    """The plain HTTP reading: 2xx ok; 429, 408 and 5xx retry; any other status is permanent."""
    status = response.status
    if 200 <= status < 300:
        return Outcome("ok")
    reason = f"HTTP {status}: {response.body[:200].decode('utf-8', 'replace').strip()}"
    if status in (408, 429) or status >= 500:
        return Outcome("retry", reason, retry_after_header(response))
    return Outcome("permanent", reason)


def json_answer(response: Response) -> dict:
    """The answer's JSON object; {} when the body is not one (a proxy's HTML error page, an empty body)."""
    try:
        answer = json.loads(response.body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def truncate(text: str, limit: int, measure: Literal["chars", "bytes"] = "chars", marker: str = TRUNCATED) -> str:
    """`text` cut to fit `limit` with `marker` at its end (services reject an oversized message rather than
    cut it); unchanged when it fits. In bytes, UTF-8, never splitting a character."""
    if measure == "bytes":
        data = text.encode()
        if len(data) <= limit:
            return text
        return data[: max(0, limit - len(marker.encode()))].decode("utf-8", "ignore") + marker
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def longest_cut(text: str, size: Callable[[str], int], limit: int, marker: str = TRUNCATED) -> str:
    """`text` when `size(text)` (of the request it goes in) is within `limit`, else its longest cut (UTF-8 bytes,
    ending in `marker`) that is, or the shortest when none is (the service then says what else is too big).
    Measured on the request, not the text: JSON escapes (quotes, newlines; twice for a card sent as a string)
    make a text take more room in a body than on its own, and not evenly."""
    if size(text) <= limit:
        return text
    low, high = 0, len(text.encode())
    while low < high:
        middle = (low + high + 1) // 2
        if size(truncate(text, middle, "bytes", marker)) <= limit:
            low = middle
        else:
            high = middle - 1
    return truncate(text, low, "bytes", marker)


def rebase(url: str, base_url: object) -> str:
    """`url` with the scheme, host and port (and path prefix) of the channel's `base_url`, when it has one:
    how a channel is pointed at a proxy or a local fake while keeping its path and credentials."""
    if not base_url:
        return url
    parts, base = urlsplit(url), urlsplit(str(base_url))
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, parts.fragment))


def coded_answer(
    response: Response, code_key: str = "errcode", message_key: str = "errmsg"
) -> tuple[Outcome | None, int, str]:
    """For the robots that answer HTTP 200 with an error code in the body: the outcome when the answer
    settles it (another HTTP status, a body that is not the API's, code 0); else None, the code and the
    message, for the channel's own table of codes."""
    if response.status != 200:
        return http_outcome(response), 0, ""
    answer = json_answer(response)
    code, text = answer.get(code_key), str(answer.get(message_key, ""))
    if not isinstance(code, int):  # a 200 that is not the API's answer (a proxy page): not proof of delivery
        return Outcome("retry", f"unexpected answer: {response.body[:200].decode('utf-8', 'replace').strip()}"), 0, ""
    return (Outcome("ok") if code == 0 else None), code, text


NOT_SENT = "X-Amcompanion-Not-Sent"  # marks an answer made up here: nothing went to the service


def not_sent(reason: str) -> Response:
    """A permanent failure decided here, before any call (a contact without the address the channel needs): the
    reason is the body, and the mark tells `classify` and `amcompanion channels test` that no service answered."""
    return Response(400, {NOT_SENT: "1"}, reason.encode())


def not_sent_outcome(response: Response) -> Outcome | None:
    """classify's first question: an answer `not_sent` made is permanent, with its reason; None for a service's."""
    return Outcome("permanent", response.body.decode()) if response.headers.get(NOT_SENT) else None


def phone_of(message: Message) -> str:
    return str(message.recipient.get("phone") or "").strip().replace(" ", "").replace("-", "")


def no_phone(message: Message, verb: str) -> Response:
    who = message.recipient_name or "the recipient"
    return not_sent(f"not sent: {who} has no phone number to {verb} (contact field `phone`)")


def mainland_mobile(number: str) -> str:
    """A contact's phone as the Chinese chat apps know members' mobiles: mainland numbers without +86."""
    number = number.strip().replace(" ", "")
    return number[3:] if number.startswith("+86") else number
