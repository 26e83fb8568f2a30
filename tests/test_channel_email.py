"""The email channel against a fake SMTP server (aiosmtpd on loopback): message, AUTH, TLS, SMTP reply classes."""

import asyncio
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import pytest

from amcompanion.demo.daemons import free_port
from amcompanion.fakes.smtp import FakeSMTP, self_signed_certificate
from amcompanion.receiver.channels import CHANNEL_TYPES, Message, Response
from amcompanion.receiver.channels import email as email_channel
from amcompanion.receiver.channels.base import TRUNCATED
from amcompanion.receiver.channels.email import EmailChannel
from amcompanion.receiver.messages import Renderer
from tests.channel_support import ACK_URL, CONTACTS, assert_golden, delivery, render_default, sample_alert
from tests.receiver_support import rows

USER, PASSWORD = "alerts", "s3cret-smtp-pass"
SENDER = "Alertmanager <alerts@example.com>"


@pytest.fixture
def fake() -> Iterator[FakeSMTP]:
    with FakeSMTP(USER, PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def settings(server: FakeSMTP, **extra: object) -> dict:
    """Channel settings for `server`, as the receiver config gives them (the password from the environment)."""
    return {
        "type": "email",
        "host": "smtp.example.com",
        "from": SENDER,
        "username": USER,
        "password": "${SMTP_PASSWORD}",
        "base_url": server.base_url,
        "timeout": "2s",
        **extra,
    }


def channel(server: FakeSMTP, **extra: object) -> EmailChannel:
    return EmailChannel("mail", {**settings(server, **extra), "password": PASSWORD})


@pytest.fixture(autouse=True)
def smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)


async def send(ch: EmailChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await ch.send(session, message)


def test_the_channel_registers_its_type() -> None:
    assert CHANNEL_TYPES["email"] is EmailChannel


# -- the message ---------------------------------------------------------------------------------


async def test_the_server_gets_a_text_and_html_message_with_the_ack_link(fake: FakeSMTP) -> None:
    message = render_default("email")
    response = await send(channel(fake), message)
    assert channel(fake).classify(response).result == "ok"
    assert fake.auth_attempts == [(USER, True)]
    [got] = fake.received
    assert (got.mail_from, got.rcpt_tos, got.user) == ("alerts@example.com", ["alice@example.com"], USER)
    mail = got.message
    assert mail["Subject"] == "[CRITICAL] HighErrorRate"
    assert mail["From"] == SENDER
    assert mail["To"] == "alice@example.com"
    assert abs(time.time() - parsedate_to_datetime(mail["Date"]).timestamp()) < 60
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@example.com>")
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert got.part("plain") == message.text + "\n"
    assert got.part("html") == message.html + "\n"
    assert f"Acknowledge: {ACK_URL}" in got.part("plain")
    assert f'<a href="{ACK_URL}"' in got.part("html")


async def test_a_step_to_two_contacts_sends_one_message_to_each(tmp_path: Path, aiohttp_client, fake: FakeSMTP) -> None:  # type: ignore[no-untyped-def]
    async with delivery(tmp_path, aiohttp_client, settings(fake), to=["alice", "bob"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert sorted((n["recipient"], n["status"], n["attempts"]) for n in notes) == [
        ("alice", "sent", 1),
        ("bob", "sent", 1),
    ]
    assert sorted(r.rcpt_tos[0] for r in fake.received) == ["alice@example.com", "bob@example.com"]
    assert sorted(r.message["To"] for r in fake.received) == ["alice@example.com", "bob@example.com"]
    for got in fake.received:
        assert got.user == USER and len(got.rcpt_tos) == 1
        assert "Acknowledge: https://alerts.example.com/ack/" in got.part("plain")
        assert '<a href="https://alerts.example.com/ack/' in got.part("html")


async def test_label_values_are_escaped_in_html_and_cannot_inject_headers(fake: FakeSMTP) -> None:
    alert = sample_alert(
        alertname="Evil\r\nBcc: victim@example.com",
        labels={"alertname": "Evil", "instance": "<script>alert(1)</script>", "team": 'a&b"c'},
        annotations={"summary": "<b>bold</b> & more", "runbook_url": "javascript:alert(1)"},
    )
    renderer = Renderer({"mail": {"type": "email"}}, None)
    message = renderer.render("mail", "firing", [alert], "alice", CONTACTS["alice"], ACK_URL)
    await send(channel(fake), message)
    [got] = fake.received
    page = got.part("html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page and "a&amp;b&#34;c" in page
    assert "javascript:" not in page  # not a link: only http(s) URLs are
    assert "<script>alert(1)</script>" in got.part("plain")  # plain text stays as it is
    assert "Bcc" not in got.message and got.rcpt_tos == ["alice@example.com"]
    assert "\n" not in got.message["Subject"]


async def test_a_contact_without_email_is_a_permanent_failure(fake: FakeSMTP) -> None:
    message = Message("firing", "[CRITICAL] X", "text", [sample_alert()], {"phone": "+1"}, "carol", ACK_URL)
    ch = channel(fake)
    outcome = ch.classify(await send(ch, message))
    assert (outcome.result, outcome.reason) == ("permanent", 'contact "carol" has no email address')
    assert fake.received == []


# -- TLS ---------------------------------------------------------------------------------------------


async def test_starttls_with_a_trusted_ca_file_then_auth(cert: tuple[Path, Path]) -> None:
    with FakeSMTP(USER, PASSWORD, cert=cert) as server:
        ch = channel(server, starttls=True, ca_file=str(cert[0]))
        assert ch.classify(await send(ch, render_default("email"))).result == "ok"
        ch = channel(server, starttls=True, tls_verify=False)
        assert ch.classify(await send(ch, render_default("email"))).result == "ok"
        # the certificate is not trusted by default: a config problem, not retried
        ch = channel(server, starttls=True)
        outcome = ch.classify(await send(ch, render_default("email")))
        assert outcome.result == "permanent" and "certificate" in outcome.reason
        # STARTTLS off: this server requires it before MAIL (and before AUTH)
        ch = channel(server, starttls=False)
        assert ch.classify(await send(ch, render_default("email"))).result == "permanent"
    assert [(r.user, r.tls) for r in server.received] == [(USER, True), (USER, True)]


async def test_starttls_required_but_not_offered_is_permanent(fake: FakeSMTP) -> None:
    ch = channel(fake, starttls=True)
    outcome = ch.classify(await send(ch, render_default("email")))
    assert outcome.result == "permanent" and "STARTTLS" in outcome.reason
    assert fake.received == []


async def test_implicit_tls_through_an_smtps_base_url(cert: tuple[Path, Path]) -> None:
    with FakeSMTP(USER, PASSWORD, cert=cert, implicit_tls=True) as server:
        assert server.base_url.startswith("smtps://")
        ch = channel(server, ca_file=str(cert[0]))
        assert ch.classify(await send(ch, render_default("email"))).result == "ok"
    assert [(r.user, r.tls) for r in server.received] == [(USER, True)]


# -- SMTP answers through a real receiver ------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("MAIL", "421 4.7.0 Too many connections, closing"),
        ("RCPT", "450 4.2.0 Greylisted, please retry"),
        ("RCPT", "451 4.7.1 Greylisted, try again in 3 seconds"),
        ("RCPT", "452 4.5.3 Too many recipients"),
        ("DATA", "451 4.3.0 Local error in processing"),
    ],
)
async def test_a_transient_reply_is_retried_then_delivered(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    fake: FakeSMTP,
    stage: str,
    reply: str,
) -> None:
    fake.fail(stage, reply)
    async with delivery(tmp_path, aiohttp_client, settings(fake), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("sent", 2, None)]
    assert fake.rejected == [reply] and len(fake.received) == 1


def test_a_greylisting_hint_sets_the_wait() -> None:
    ch = EmailChannel("mail", {"host": "h", "from": "a@example.com"})
    outcome = ch.classify(Response(451, {}, b"4.7.1 Greylisted, try again in 300 seconds"))
    assert (outcome.result, outcome.retry_after) == ("retry", 300.0)
    assert ch.classify(Response(454, {}, b"4.7.0 Temporary authentication failure")).result == "retry"
    assert ch.classify(Response(250, {}, b"2.0.0 Ok: queued")).result == "ok"


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("RCPT", "550 5.1.1 No such user here"),
        ("RCPT", "553 5.1.3 Mailbox name not allowed"),
        ("DATA", "552 5.3.4 Message size exceeds fixed limit"),
        ("DATA", "554 5.7.1 Rejected as spam"),
    ],
)
async def test_a_permanent_reply_fails_after_one_attempt_with_the_reason(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    fake: FakeSMTP,
    stage: str,
    reply: str,
) -> None:
    fake.fail(stage, reply)
    async with delivery(tmp_path, aiohttp_client, settings(fake), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    [note] = notes
    code, text = reply.split(" ", 1)
    assert (note["status"], note["attempts"]) == ("failed", 1)
    assert note["error"].startswith(f"SMTP {code}: ") and text in note["error"]
    assert fake.received == []


async def test_wrong_credentials_535_fail_at_once_and_the_password_is_not_shown(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    fake: FakeSMTP,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-password")
    async with delivery(tmp_path, aiohttp_client, settings(fake), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert notes[0]["error"] == "SMTP 535: 5.7.8 Authentication credentials invalid"
    assert "wrong-password" not in notes[0]["error"]
    assert fake.auth_attempts and set(fake.auth_attempts) == {(USER, False)}  # aiosmtplib tries each mechanism
    assert fake.received == []


async def test_a_missing_auth_530_is_permanent(tmp_path: Path, aiohttp_client, fake: FakeSMTP) -> None:  # type: ignore[no-untyped-def]
    plain = {k: v for k, v in settings(fake).items() if k not in ("username", "password")}
    async with delivery(tmp_path, aiohttp_client, plain, to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [
        ("failed", 1, "SMTP 530: 5.7.0 Authentication required")
    ]


async def test_connection_refused_is_retried_until_the_server_is_up(tmp_path: Path, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    config = {**settings(FakeSMTP()), "base_url": f"smtp://127.0.0.1:{port}"}  # a fake not started: only settings
    async with delivery(tmp_path, aiohttp_client, config, to=["alice"]) as run:
        await run.fire(1)
        for _ in range(500):  # the first try fails at once: nothing listens
            if rows(run.db, "SELECT attempts FROM notifications")[0][0] == 1 and not run.receiver.outbox.sending:
                break
            await asyncio.sleep(0.01)
        error = rows(run.db, "SELECT error FROM notifications")[0][0]
        assert "SMTPConnectError" in error and "Connect call failed" in error
        with FakeSMTP(USER, PASSWORD, port=port) as server:
            notes = await run.settled()
    assert [(n["status"], n["attempts"], n["error"]) for n in notes] == [("sent", 2, None)]
    assert len(server.received) == 1


async def test_a_server_that_stops_answering_times_out_and_is_retried(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    fake: FakeSMTP,
) -> None:
    fake.hang(3)
    async with delivery(tmp_path, aiohttp_client, settings(fake, timeout="300ms"), to=["alice"]) as run:
        await run.fire(1)
        notes = await run.settled()
    [note] = notes
    assert (note["status"], note["attempts"]) == ("sent", 2)
    assert len(fake.received) == 1


async def test_refused_recipients_of_a_to_list(fake: FakeSMTP) -> None:
    """A channel-level `to:` list: one refusal for good fails the message (the others got it); a transient one
    is retried for that address alone, so nobody gets it twice."""
    message = render_default("email", recipient="")
    ch = channel(fake, to=["ops@example.com", "gone@example.com"])
    fake.refuse("gone@example.com", "550 5.1.1 No such user")
    outcome = ch.classify(await send(ch, message))
    assert outcome.result == "permanent"
    assert outcome.reason == (
        "SMTP 550: delivered to ops@example.com; refused gone@example.com: 550 5.1.1 No such user"
    )
    assert fake.received[-1].rcpt_tos == ["ops@example.com"]

    ch = channel(fake, to=["ops@example.com", "dev@example.com"])
    fake.fail("RCPT", "451 4.7.1 Greylisted")  # the first address, once
    outcome = ch.classify(await send(ch, message))
    assert outcome.result == "retry" and "refused ops@example.com: 451" in outcome.reason
    assert fake.received[-1].rcpt_tos == ["dev@example.com"]
    assert ch.classify(await send(ch, message)).result == "ok"
    assert fake.received[-1].rcpt_tos == ["ops@example.com"]  # not dev@ a second time
    assert fake.received[-1].message["To"] == "ops@example.com, dev@example.com"


async def test_the_channel_to_list_is_used_when_a_step_names_no_contact(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    fake: FakeSMTP,
) -> None:
    config = settings(fake, to=["ops@example.com", "dev@example.com"])
    async with delivery(tmp_path, aiohttp_client, config) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["recipient"], n["status"]) for n in notes] == [("", "sent")]
    [got] = fake.received
    assert got.rcpt_tos == ["ops@example.com", "dev@example.com"]


# -- rate limits and storms ----------------------------------------------------------------------


async def test_a_burst_of_20_within_20_per_minute_is_delivered_one_by_one(tmp_path: Path, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    with FakeSMTP(USER, PASSWORD, per_minute=20) as server:
        async with delivery(tmp_path, aiohttp_client, settings(server, rate_limit="20/min"), to=["alice"]) as run:
            await run.fire(20)
            notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)] * 20
    assert len(server.received) == 20 and server.rejected == []
    assert {r.message["Subject"] for r in server.received} == {"[CRITICAL] DemoGaugeHigh"}


async def test_a_storm_of_25_becomes_a_digest_the_server_accepts(tmp_path: Path, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    with FakeSMTP(USER, PASSWORD, per_minute=20) as server:
        async with delivery(tmp_path, aiohttp_client, settings(server, rate_limit="20/min"), to=["alice"]) as run:
            await run.fire(25)
            notes = await run.settled()
    assert len(notes) == 25 and all(n["status"] == "sent" for n in notes)
    assert server.rejected == [] and 1 <= len(server.received) <= 20
    digests = [r for r in server.received if r.message["Subject"].endswith(" alerts")]
    assert digests and digests[0].message["Subject"] == "[FIRING] 25 alerts"
    text = digests[0].part("plain")
    assert all(f"on web-{n}:" in text or f"on web-{n}\n" in text for n in range(1, 26))
    assert "web-25</td>" in digests[0].part("html")


# -- templates and size --------------------------------------------------------------------------


def test_the_default_template_renders_as_the_golden_text_and_html() -> None:
    for case, message in (
        ("firing", render_default("email")),
        ("resolved", render_default("email", "resolved")),
        ("digest", render_default("email", alerts=3)),
        ("resolved-digest", render_default("email", "resolved", alerts=2)),
    ):
        assert_golden(f"email-{case}.txt", message.text + "\n")
        assert_golden(f"email-{case}.html", message.html + "\n")
    firing = render_default("email")
    assert ACK_URL in firing.text and f'href="{ACK_URL}"' in firing.html
    assert "/ack/" not in render_default("email", "resolved").text + render_default("email", alerts=3).text


async def test_a_huge_description_is_cut_to_fit_the_servers_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    huge = sample_alert(annotations={"summary": "disk full", "description": "告警 & <x> " * 120_000})
    renderer = Renderer({"mail": {"type": "email"}}, None)
    message = renderer.render("mail", "firing", [huge], "alice", CONTACTS["alice"], ACK_URL)
    assert len(message.text.encode()) > 1_000_000
    with FakeSMTP(USER, PASSWORD, size_limit=500_000) as server:
        ch = channel(server)
        assert ch.classify(await send(ch, message)).result == "ok"
        [got] = server.received
        assert len(got.raw) < 500_000
        text, page = got.part("plain"), got.part("html")
        assert len(text.encode()) <= email_channel.MAX_PART_BYTES + 1
        assert len(page.encode()) <= email_channel.MAX_PART_BYTES + 1
        assert text.rstrip("\n").endswith(TRUNCATED) and page.rstrip("\n").endswith("<p>…(truncated)</p>")
        assert ACK_URL in text and f'href="{ACK_URL}"' in page
        # without the cap the server refuses it (SIZE): the cap is what gets it through
        monkeypatch.setattr(email_channel, "MAX_PART_BYTES", 10_000_000)
        outcome = ch.classify(await send(ch, message))
        assert outcome.result == "permanent" and outcome.reason.startswith("SMTP 552")
        assert len(server.received) == 1


async def test_the_ack_link_survives_a_cut_even_at_the_end_of_a_custom_template(tmp_path: Path) -> None:
    (tmp_path / "late.j2").write_text(
        "{% block text %}{{ alert.annotations.description }}\nAck: {{ ack_url }}{% endblock %}"
        '{% block html %}<p>{{ alert.annotations.description|e }}</p><a href="{{ ack_url }}">ack</a>{% endblock %}'
    )
    renderer = Renderer({"mail": {"type": "email", "template": "late.j2"}}, tmp_path)
    huge = sample_alert(annotations={"description": "y" * 300_000})
    message = renderer.render("mail", "firing", [huge], "alice", CONTACTS["alice"], ACK_URL)
    with FakeSMTP(USER, PASSWORD) as server:
        await send(channel(server), message)
    [got] = server.received
    assert TRUNCATED in got.part("plain") and got.part("plain").rstrip().endswith(f"Acknowledge: {ACK_URL}")
    assert f'<a href="{ACK_URL}">Acknowledge</a>' in got.part("html")
