"""A fake SMTP server (aiosmtpd on 127.0.0.1, a free port) that checks what a real submission server checks.

It stands for the service, so it shares no code with the channel: AUTH (PLAIN/LOGIN) against its own credentials
(`530` for mail without AUTH, `535 5.7.8` for wrong credentials), optional STARTTLS with a self-signed certificate
(then required before MAIL and before AUTH, as on port 587), optional implicit TLS (port 465 style), the
advertised SIZE limit (`552`), a per-minute message limit (`451 4.7.1`), and every accepted message parsed with
the email package for assertions. It can be told to answer a given reply at MAIL, RCPT or DATA, to refuse given
recipients, or to hang (a server that stops answering).
"""

import asyncio
import email
import email.policy
import logging
import ssl
import subprocess
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow

# aiosmtpd warns of AUTH without TLS (intended: plain AUTH on loopback) and, on every AUTH, of its own deprecated
# Session.login_data: noise in the demo's terminal and the tests' logs.
logging.getLogger("mail.log").setLevel(logging.ERROR)


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert, key) for `host`, made with the openssl CLI (no `cryptography` package here)."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=amcompanion-test-smtp"),
            *("-addext", f"subjectAltName=IP:{host},DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@dataclass
class Received:
    """One accepted message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    user: str | None  # the AUTH login, None when not authenticated
    tls: bool  # the session ran over TLS (STARTTLS or implicit)

    def part(self, subtype: str) -> str:
        body = self.message.get_body((subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]  # CRLF on the wire


class FakeSMTP:
    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        cert: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        size_limit: int = 10 * 1024 * 1024,
        per_minute: int | None = None,
        port: int = 0,
    ):
        """Credentials make AUTH required; `cert` enables STARTTLS (required), or implicit TLS with
        `implicit_tls`; `per_minute` limits accepted messages per rolling minute; `port` 0 is a free one."""
        self.username, self.password = username, password
        self.per_minute = per_minute
        self.received: list[Received] = []
        self.rejected: list[str] = []  # every error reply given to a client, in order
        self.auth_attempts: list[tuple[str, bool]] = []  # (login, accepted)
        self._lock = threading.Lock()
        self._failures: dict[str, deque[str]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self._refuse: dict[str, str] = {}
        self._hangs: deque[float] = deque()
        self._accepted = SlidingWindow(per_minute or 0, 60)
        tls_context = None
        if cert is not None:
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(str(cert[0]), str(cert[1]))
        options: dict[str, Any] = {
            "data_size_limit": size_limit,
            "auth_required": username is not None,
            # AUTH only over TLS when there is TLS (aiosmtpd does not count implicit TLS); plain on loopback tests
            "auth_require_tls": cert is not None and not implicit_tls,
            "authenticator": self._authenticate,
        }
        if tls_context is not None and implicit_tls:
            options["ssl_context"] = tls_context
        elif tls_context is not None:
            options.update(tls_context=tls_context, require_starttls=True)
        self.implicit_tls = implicit_tls
        self._controller = _Controller(self, hostname="127.0.0.1", port=port, **options)

    # -- control -------------------------------------------------------------------------------
    def fail(self, stage: str, reply: str, times: int = 1) -> None:
        """Answer `reply` (e.g. "451 4.7.1 Greylisted") at MAIL, RCPT or DATA for the next `times` messages."""
        with self._lock:
            self._failures[stage].extend([reply] * times)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Refuse one recipient for good."""
        self._refuse[address] = reply

    def hang(self, seconds: float, times: int = 1) -> None:
        """Stop answering at DATA for `seconds`, for the next `times` messages (a server gone away silently)."""
        with self._lock:
            self._hangs.extend([seconds] * times)

    def shown(self) -> list[Shown]:
        """Accepted mail as a mail client's plain-text view shows it: the subject, then the text part."""
        return [
            Shown(", ".join(r.rcpt_tos), f"Subject: {r.message['Subject']}\n\n{r.part('plain')}") for r in self.received
        ]

    @property
    def base_url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def __enter__(self) -> "FakeSMTP":
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    # -- the server side (runs in the controller's thread) -------------------------------------
    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = login == self.username and password == self.password
        self.auth_attempts.append((login, ok))
        if not ok:
            self.rejected.append("535")
        return AuthResult(success=ok, handled=False, auth_data=data)

    def _injected(self, stage: str) -> str | None:
        with self._lock:
            reply = self._failures[stage].popleft() if self._failures[stage] else None
        if reply is not None:
            self.rejected.append(reply)
        return reply

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if reply := self._injected("MAIL"):
            return reply
        if self.per_minute is not None:
            now = time.monotonic()
            with self._lock:
                if self._accepted.wait(now):
                    reply = f"451 4.7.1 Rate limit exceeded: {self.per_minute} messages per minute"
                    self.rejected.append(reply)
                    return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if reply := self._injected("RCPT"):
            return reply
        if address in self._refuse:
            self.rejected.append(self._refuse[address])
            return self._refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            hang = self._hangs.popleft() if self._hangs else 0.0
        if hang:
            await asyncio.sleep(hang)
        if reply := self._injected("DATA"):
            return reply
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        user = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._lock:
            self._accepted.record(time.monotonic())
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                raw,
                message,
                user,
                session.ssl is not None or self.implicit_tls,
            )
        )
        return f"250 2.0.0 Ok: queued as {len(self.received):06d}"


class _Controller(Controller):
    """A Controller on a free port (port 0), which aiosmtpd's own does not support."""

    def __init__(self, fake: FakeSMTP, **kwargs: Any):
        super().__init__(fake, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():  # "Requiring AUTH while not requiring TLS": intended, on loopback
            warnings.simplefilter("ignore")
            return super().factory()

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
