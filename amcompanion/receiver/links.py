"""Acknowledgement links: HMAC-signed tokens that name one alert and expire, and Twilio's signatures."""

import base64
import hashlib
import hmac
from datetime import datetime, timedelta


class BadToken(Exception):
    pass


class AckLinks:
    def __init__(self, key: bytes, external_url: str, lifetime: timedelta = timedelta(hours=24)):
        self._key = key
        self.external_url = external_url.rstrip("/")
        self.lifetime = lifetime

    def token(self, alert_id: int, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        payload = f"{alert_id}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def url(self, alert_id: int, now: datetime) -> str:
        return f"{self.external_url}/ack/{self.token(alert_id, now)}"

    def verify(self, token: str, now: datetime) -> int:
        """The alert id a token names; BadToken when it is forged, mangled or expired."""
        try:
            alert_id, expires, signature = token.split(".")
            alert, deadline = int(alert_id), int(expires)
        except ValueError:
            raise BadToken("not an acknowledgement link") from None
        if not hmac.compare_digest(signature, self._sign(f"{alert_id}.{expires}")):
            raise BadToken("the link's signature does not match (was it copied whole?)")
        if now.timestamp() > deadline:
            raise BadToken("the link has expired; acknowledge with the API or `amcompanion ack`")
        return alert

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: Base64(HMAC-SHA1(auth token, URL + every POST parameter name+value, sorted))."""
    message = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()).decode()
