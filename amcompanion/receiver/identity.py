"""Who is asking: the receiver's own token (Alertmanager, automation), a person's token, a person named by a
trusted reverse proxy (oauth2-proxy's X-Forwarded-User / -Email), or a person's console session cookie.

A person's token is kept as its SHA-256 only. Sessions and CSRF tokens are HMACs under the receiver's key, so
they need no table and survive a restart as long as the key does. Browser credentials (the cookie, the proxy's
headers) travel by themselves, so a request carrying only those must also carry the CSRF token to change
anything: another site can make a browser send the cookie, but cannot read the page to learn the token.
"""

import hashlib
import hmac
import ipaddress
from base64 import b64decode, urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from amcompanion.catalog.model import ROLES
from amcompanion.receiver.config import ReceiverConfig, token_digest
from amcompanion.receiver.timeutil import Clock

SESSION_COOKIE = "amcompanion_session"
SESSION_SECONDS = 12 * 3600
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Principal:
    contact: str | None  # None: the receiver's own token, or nobody checked (--insecure-no-auth)
    role: str
    how: str  # "receiver token", "personal token", "proxy", "session", "no auth"

    @property
    def ambient(self) -> bool:
        """Credentials a browser sends by itself: a change needs the CSRF token too."""
        return self.how in ("proxy", "session")

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


PRINCIPAL = web.RequestKey("principal", Principal)  # who asks, as the receiver's guard found it
SERVICE = Principal(None, "admin", "receiver token")
NOBODY_CHECKED = Principal(None, "admin", "no auth")


def principal_of(request: web.Request) -> Principal:
    return request.get(PRINCIPAL, NOBODY_CHECKED)


class Refused(Exception):
    """Credentials were offered and are wrong: a 401 or 403 with the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Identities:
    def __init__(self, config: ReceiverConfig, receiver_token: str | None, key: bytes, clock: Clock):
        self.config = config
        self.clock = clock
        self.receiver_token = receiver_token
        self.key = key
        self.proxies = [ipaddress.ip_network(network) for network in config.trusted_proxies]

    # -- who ----------------------------------------------------------------------------------------
    def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str], remote: str | None) -> Principal | None:
        """Who the request comes from; None: no credentials at all. Raises Refused for wrong ones."""
        if self.receiver_token is None:
            return NOBODY_CHECKED
        offered = _offered_token(headers.get("Authorization", ""))
        if offered is not None:
            return self._by_token(offered)
        user, email = headers.get(self.config.user_header), headers.get(self.config.email_header)
        if (user or email) and self._from_proxy(remote):
            return self._person(self._contact_of(user, email), "proxy")
        session = cookies.get(SESSION_COOKIE)
        if session:
            contact = self.session_contact(session)
            if contact is None:
                raise Refused(401, "the console session has expired or is not valid: sign in again")
            return self._person(contact, "session")
        return None

    def _by_token(self, offered: str) -> Principal:
        # a header's bytes that are not UTF-8 come as surrogates (surrogateescape), which encode() refuses
        raw = offered.encode(errors="replace")
        assert self.receiver_token is not None
        if hmac.compare_digest(raw, self.receiver_token.encode()):
            return SERVICE
        contact = self.config.token_owners.get(hashlib.sha256(raw).hexdigest()) if offered else None
        if contact is None:
            raise Refused(
                401, "wrong credentials: send the receiver's token or your own as `Authorization: Bearer <token>`"
            )
        return self._person(contact, "personal token")

    def _person(self, contact: str, how: str) -> Principal:
        return Principal(contact, self.config.role(contact), how)

    def _from_proxy(self, remote: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def _contact_of(self, user: str | None, email: str | None) -> str:
        contacts = self.config.contacts
        if user and user in contacts:
            return user
        for name, contact in contacts.items():
            address = contact.get("email", "").lower()
            if address and address in ((email or "").lower(), (user or "").lower()):
                return name
        raise Refused(403, f"{user or email} is not a contact of this receiver: ask an admin to add them")

    # -- console sessions ---------------------------------------------------------------------------
    def sign_in(self, token: str) -> str:
        """A session cookie's value for the person whose token this is."""
        contact = self.config.token_owners.get(token_digest(token.strip()))
        if contact is None:
            raise Refused(401, "that is not a person's token of this receiver")
        expires = int(self.clock.now().timestamp()) + SESSION_SECONDS
        payload = f"{contact}\0{expires}".encode()
        return urlsafe_b64encode(payload).decode() + "." + self._mac(b"session", payload)

    def session_contact(self, value: str) -> str | None:
        encoded, _, mac = value.partition(".")
        try:
            payload = urlsafe_b64decode(encoded.encode())
            contact, expires = payload.decode().split("\0")
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(mac, self._mac(b"session", payload)) or int(expires) < self.clock.now().timestamp():
            return None
        return contact if contact in self.config.contacts else None

    def csrf(self, principal: Principal) -> str:
        return self._mac(b"csrf", (principal.contact or "").encode())

    def csrf_ok(self, principal: Principal, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(errors="replace"), self.csrf(principal).encode())

    # -- calendar feeds: calendar apps subscribe to a URL and send no headers ------------------------
    def feed_key(self, schedule: str, contact: str | None = None) -> str:
        return self._mac(b"feed", f"{schedule}\0{contact or ''}".encode())[:32]

    def _mac(self, purpose: bytes, payload: bytes) -> str:
        return hmac.new(self.key, purpose + b"\0" + payload, hashlib.sha256).hexdigest()


def _offered_token(header: str) -> str | None:
    """The token of a bearer or basic (as the password) Authorization header; None when there is none."""
    if not header:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer":
        return credential.strip()
    if scheme.lower() == "basic":
        try:
            return b64decode(credential.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""
