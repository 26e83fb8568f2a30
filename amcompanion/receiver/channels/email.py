"""Email over SMTP (aiosmtplib): one multipart/alternative message (text + HTML) per recipient.

Settings: `host`, `port` (587), `from`, `username`/`password` (AUTH when both are set), `starttls` (true: required,
false: never, absent: upgrade when the server offers it), `tls` (implicit TLS, usually port 465), `ca_file` (a CA
bundle to trust, e.g. a private relay's), `tls_verify` (false: accept any certificate; loopback relays only), `to`
(addresses for the channel's own audience, used when a step names no contacts), `timeout`.
`base_url`, when set, overrides the server: `smtp://host:port` (STARTTLS per `starttls`) or `smtps://host:port`
(implicit TLS); it is how tests point the channel at a local fake.

SMTP is not HTTP, so `send` maps the server's final answer into a `Response`: `status` is the SMTP reply code
(250 sent; 4xx: transient, retried; 5xx: permanent, e.g. 550 no such mailbox, 552 too big, 535 bad credentials),
`body` the server's text. Status 0 is a refusal on our side that needs a config fix (the contact has no email
address, STARTTLS or AUTH required but not offered, the server's certificate is not trusted). Connection refused,
dropped connections and timeouts propagate as OSError / TimeoutError (aiosmtplib's own errors derive from them),
and the outbox retries them.

When a server refuses only some recipients of a channel-level `to:` list, the others got the message: the answer
is the worst refusal (any 5xx, else the 4xx), its body says who got it and who did not, and a retry (4xx) goes
only to the addresses that have not accepted it yet, so nobody gets it twice.

Each part is capped at 100 KB (UTF-8) with the truncation marker: email has no hard limit, but a server's SIZE
(often 10-50 MB) and mail clients are better served by a bounded alert, and the ack link is kept in a cut message.
"""

import html
import re
import ssl
from collections import OrderedDict
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from secrets import token_hex
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib

from amcompanion.catalog.durations import parse_duration
from amcompanion.receiver.channels.base import TRUNCATED, Message, Outcome, Response, truncate

MAX_PART_BYTES = 100_000  # per part (text, HTML); see the module docstring
LOCAL_REFUSAL = 0  # `Response.status` for a message we did not send because the config needs a fix
_REMEMBERED = 1000  # messages whose partly accepted recipients are remembered for their retry
_HINT = re.compile(r"(?:try again|retry)\D{0,20}(\d{1,5})\s*(?:s\b|sec|second)", re.IGNORECASE)


def _flag(value: object) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _one_line(text: str, limit: int = 200) -> str:
    """A header value: untrusted text must not inject headers, and a subject has to stay readable."""
    return truncate(" ".join(text.split()), limit, marker="…")


def _cut_html(text: str, limit: int) -> str:
    """HTML cut to `limit` bytes without leaving half a tag or entity, the marker as a paragraph."""
    marker = f"<p>{html.escape(TRUNCATED.strip())}</p>"
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[: max(0, limit - len(marker.encode()))].decode("utf-8", "ignore")
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    if cut.rfind("&") > cut.rfind(";"):
        cut = cut[: cut.rfind("&")]
    return cut + marker


class EmailChannel:
    type = "email"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.host = str(settings.get("host", ""))
        self.port = int(settings.get("port") or 587)  # type: ignore[call-overload]
        self.tls = bool(_flag(settings.get("tls")))
        self.starttls = _flag(settings.get("starttls"))
        base_url = settings.get("base_url")
        if base_url:
            parts = urlsplit(str(base_url))
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError(
                    f'email channel "{name}": base_url must look like smtp://host:port or smtps://host:port'
                )
            self.host = parts.hostname
            self.tls = parts.scheme == "smtps"
            self.port = parts.port or (465 if self.tls else 587)
        self.username = str(settings["username"]) if settings.get("username") else None
        self.password = str(settings["password"]) if settings.get("password") else None
        self.sender = str(settings["from"])
        self.envelope_from = parseaddr(self.sender)[1] or self.sender
        self.domain = self.envelope_from.rpartition("@")[2] or "amcompanion.invalid"
        self.to = [str(a) for a in settings.get("to") or []]  # type: ignore[attr-defined]
        self.ca_file = str(settings["ca_file"]) if settings.get("ca_file") else None
        self.verify = _flag(settings.get("tls_verify")) is not False
        ms = parse_duration(str(settings["timeout"])) if settings.get("timeout") else None
        self.timeout = ms / 1000 if ms else 10.0
        self._accepted: OrderedDict[tuple, set[str]] = OrderedDict()  # message key → addresses that took it

    # -- the message ---------------------------------------------------------------------------
    def recipients(self, message: Message) -> list[str]:
        """The contact's address for a contact's message, else the channel's own `to:` list."""
        if message.recipient_name:
            email = message.recipient.get("email", "")
            return [email] if email else []
        return list(self.to)

    def build(self, message: Message, to: list[str]) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = _one_line(message.title)
        mail["From"] = self.sender
        display = message.recipient.get("name", "") if message.recipient_name else ""
        mail["To"] = formataddr((_one_line(display, 80), to[0])) if display and len(to) == 1 else ", ".join(to)
        mail["Date"] = format_datetime(datetime.now(UTC))
        # short enough to stay on one line (make_msgid's random part varies in length and then folds)
        mail["Message-ID"] = f"<{message.notification_id}.{token_hex(8)}.amcompanion@{self.domain}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies must not answer it
        mail["X-Auto-Response-Suppress"] = "All"
        text = truncate(message.text, MAX_PART_BYTES, "bytes")
        if message.ack_url and message.ack_url not in text:
            text = truncate(message.text, MAX_PART_BYTES - 300, "bytes") + f"\nAcknowledge: {message.ack_url}"
        mail.set_content(text + "\n")
        if message.html:
            page = _cut_html(message.html, MAX_PART_BYTES)
            if message.ack_url and html.escape(message.ack_url) not in page:
                link = html.escape(message.ack_url)
                page = _cut_html(message.html, MAX_PART_BYTES - 600) + f'<p><a href="{link}">Acknowledge</a></p>'
            mail.add_alternative(page + "\n", subtype="html")
        return mail

    # -- sending -------------------------------------------------------------------------------
    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        to = self.recipients(message)
        if not to:
            who = f'contact "{message.recipient_name}"' if message.recipient_name else f'channel "{self.name}"'
            return Response(LOCAL_REFUSAL, {}, f"{who} has no email address".encode())
        key = (message.notification_id, message.kind, tuple(a.get("id") for a in message.alerts))
        done = self._accepted.get(key, set())
        pending = [a for a in to if a not in done]
        data = self.build(message, to).as_bytes(policy=SMTP)
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.tls,
            start_tls=False if self.tls else self.starttls,
            validate_certs=self.verify,
            cert_bundle=self.ca_file,
            timeout=self.timeout,
        )
        try:
            async with client:
                refused, answer = await client.sendmail(self.envelope_from, pending, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return self._refused(key, done, {r.recipient: (r.code, r.message) for r in exc.recipients})
        except aiosmtplib.SMTPResponseException as exc:  # AUTH, MAIL FROM, DATA, a coded connect answer
            if isinstance(exc, OSError) and not 400 <= exc.code < 600:
                raise
            return Response(exc.code, {}, exc.message.encode())
        except ssl.SSLCertVerificationError as exc:
            return Response(LOCAL_REFUSAL, {}, f"TLS certificate of {self.host} not trusted: {exc}".encode())
        except aiosmtplib.SMTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLCertVerificationError):
                return Response(LOCAL_REFUSAL, {}, f"TLS certificate of {self.host} not trusted: {cause}".encode())
            if isinstance(exc, OSError):  # connection refused or dropped, timeouts: the outbox retries them
                raise
            # e.g. STARTTLS or AUTH required but not offered by the server
            return Response(LOCAL_REFUSAL, {}, f"{exc.message} ({self.host}:{self.port})".encode())
        if refused:
            return self._refused(
                key, done | (set(pending) - set(refused)), {a: (r.code, r.message) for a, r in refused.items()}
            )
        self._accepted.pop(key, None)
        return Response(250, {}, answer.encode())

    def _refused(self, key: tuple, accepted: set[str], refused: dict[str, tuple[int, str]]) -> Response:
        """The worst refusal (5xx before 4xx); remember who has the message for a retry."""
        codes = [code for code, _ in refused.values()]
        permanent = [c for c in codes if c >= 500]
        status = permanent[0] if permanent else max(codes)
        if accepted and not permanent:
            self._accepted[key] = accepted
            self._accepted.move_to_end(key)
            while len(self._accepted) > _REMEMBERED:
                self._accepted.popitem(last=False)
        else:
            self._accepted.pop(key, None)
        details = "; ".join(f"{address}: {code} {text}" for address, (code, text) in refused.items())
        got = f"delivered to {', '.join(sorted(accepted))}; " if accepted else ""
        return Response(status, {}, f"{got}refused {details}".encode())

    def classify(self, response: Response) -> Outcome:
        status = response.status
        if 200 <= status < 300:
            return Outcome("ok")
        text = response.body[:300].decode("utf-8", "replace").strip()
        if status == LOCAL_REFUSAL:
            return Outcome("permanent", text)
        reason = f"SMTP {status}: {text}"
        if 500 <= status < 600:
            return Outcome("permanent", reason)
        hint = _HINT.search(text)  # greylisting: "451 4.7.1 Greylisted, try again in 300 seconds"
        return Outcome("retry", reason, float(hint.group(1)) if hint and 400 <= status < 500 else None)


CHANNEL = EmailChannel
