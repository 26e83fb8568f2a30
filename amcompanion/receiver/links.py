"""Acknowledgement links: HMAC-signed tokens that name one alert and the person the message went to, and
expire; and Twilio's signatures."""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta


class BadToken(Exception):
    pass


@dataclass(frozen=True)
class Link:
    alert_id: int
    recipient: str  # the contact the message was sent to; '' for a message to a group (a robot's chat)


class AckLinks:
    """Tokens are `alert.expires.sig` for a group's message (the form of the links before recipients were
    signed, so those still work) and `alert.expires.recipient.sig` for a person's, the recipient in unpadded
    base64url: every part stays in the characters chat apps keep in a link."""

    def __init__(self, key: bytes, external_url: str, lifetime: timedelta):
        self._key = key
        self.external_url = external_url.rstrip("/")
        self.lifetime = lifetime

    def token(self, alert_id: int, now: datetime, recipient: str = "") -> str:
        expires = int((now + self.lifetime).timestamp())
        payload = f"{alert_id}.{expires}"
        if recipient:
            payload += "." + base64.urlsafe_b64encode(recipient.encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def url(self, alert_id: int, now: datetime, recipient: str = "") -> str:
        return f"{self.external_url}/ack/{self.token(alert_id, now, recipient)}"

    def verify(self, token: str, now: datetime) -> Link:
        """The alert and recipient a token names; BadToken when it is forged, mangled or expired."""
        parts = token.split(".")
        if not token.isascii() or len(parts) not in (3, 4):  # every token this class writes is ASCII
            raise BadToken("not an acknowledgement link")
        *signed, signature = parts
        if not hmac.compare_digest(signature, self._sign(".".join(signed))):
            raise BadToken("the link's signature does not match (was it copied whole?)")
        if now.timestamp() > int(signed[1]):  # signed: the parts are as token() wrote them
            raise BadToken("the link has expired; acknowledge with the API or `amcompanion ack`")
        return Link(int(signed[0]), _decode(signed[2]) if len(signed) == 3 else "")

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()


def _decode(part: str) -> str:
    """A recipient part back to the contact's name (its signature matched: this class wrote it)."""
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: Base64(HMAC-SHA1(auth token, URL + every POST parameter name+value, sorted))."""
    message = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()).decode()
