"""The channel protocol and the values that cross it."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import aiohttp


@dataclass(frozen=True)
class Message:
    """One message to one recipient: a single alert, or a digest of several when a channel is flooded."""

    kind: Literal["firing", "resolved"]
    title: str
    text: str  # rendered from the channel's template
    alerts: list[dict]  # the alerts it is about, as the API shows them
    recipient: dict[str, str] = field(default_factory=dict)  # the contact's addresses; empty for a group robot
    recipient_name: str = ""
    ack_url: str = ""  # empty for resolve notices and digests


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


class Channel(Protocol):
    name: str

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        """Make the API call; network errors and timeouts propagate (the outbox retries them)."""
        ...

    def classify(self, response: Response) -> Outcome: ...


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
