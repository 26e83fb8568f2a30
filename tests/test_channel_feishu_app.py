"""The Feishu / Lark app-bot channel against a fake of Feishu's open platform: the tenant token (cached, fetched
again when refused), the message and its card byte for byte, every error class, the size limit, the template, and
the card callback (encrypted and signed, or plain with the Verification Token) answered through a stub receiver."""

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from amcompanion.fakes import feishu_app as vendor
from amcompanion.fakes.feishu_app import APP_ID, APP_SECRET, FakeFeishuApp, FeishuUser, Received
from amcompanion.receiver.channels.base import TRUNCATED, Click, ClickAnswer, Message, Response
from amcompanion.receiver.channels.feishu_app import BODY_LIMIT, FeishuAppChannel, decrypt, signature
from tests.channel_support import ACK_URL, assert_golden, delivery, render_default, sample_alert

VERIFICATION_TOKEN = "vT0kEnFoRtHeApP0000000000000001"
ENCRYPT_KEY = "eNcRyPtKeYfOrThEaPp000000000001"
CHAT = "oc_5ad11d72b830411d72b836c20"
ALICE = FeishuUser("ou_7d8a6e6df7621556ce0d21922b676706ccs", "a11ce", "alice")
BOB = FeishuUser("ou_b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0", "b0b", "bob")
OUTSIDER = FeishuUser("ou_0u751de0u751de0u751de0u751de00", "out", "carol", available=False)
# The worked example of Feishu's event/callback decryption docs: Encrypt Key "test key", and what it decrypts
DOCUMENTED_KEY, DOCUMENTED_CIPHERTEXT = "test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="


def fake_app(**changes: object) -> FakeFeishuApp:
    fields: dict = {
        "verification_token": VERIFICATION_TOKEN,
        "encrypt_key": ENCRYPT_KEY,
        "users": [ALICE, BOB, OUTSIDER],
        "chats": {CHAT},
    }
    return FakeFeishuApp(**{**fields, **changes})


async def start(aiohttp_server, app: web.Application) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def settings(base_url: str, **extra: object) -> dict:
    return {
        "type": "feishu_app",
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "verification_token": VERIFICATION_TOKEN,
        "encrypt_key": ENCRYPT_KEY,
        "chat_id": CHAT,
        "base_url": base_url,
        **extra,
    }


@pytest.fixture(autouse=True)
def secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver takes secrets only as ${VAR}."""
    monkeypatch.setenv("FEISHU_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("FEISHU_VERIFICATION_TOKEN", VERIFICATION_TOKEN)
    monkeypatch.setenv("FEISHU_ENCRYPT_KEY", ENCRYPT_KEY)


def configured(base_url: str, **extra: object) -> dict:
    """The channel's settings as the receiver's config has them (secrets from the environment)."""
    secrets = {
        "app_secret": "${FEISHU_APP_SECRET}",
        "verification_token": "${FEISHU_VERIFICATION_TOKEN}",
        "encrypt_key": "${FEISHU_ENCRYPT_KEY}",
    }
    return {**settings(base_url), **secrets, **extra}


def to_alice() -> Message:
    message = render_default("feishu_app", recipient="")
    return replace(message, recipient={"feishu_open_id": ALICE.open_id}, recipient_name="alice")


async def send(channel: FeishuAppChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def sent_cards(fake: FakeFeishuApp) -> list[dict]:
    return [posted.card for posted in fake.messages.values()]


def test_the_ciphers_reproduce_feishus_worked_example() -> None:
    assert vendor.decrypt(DOCUMENTED_KEY, DOCUMENTED_CIPHERTEXT) == "hello world"
    assert decrypt(DOCUMENTED_KEY, DOCUMENTED_CIPHERTEXT) == "hello world"
    plain = json.dumps({"schema": "2.0", "text": "告警 ✓"}, ensure_ascii=False)
    assert decrypt(ENCRYPT_KEY, vendor.encrypt(ENCRYPT_KEY, plain)) == plain  # the fake's cipher, the channel's key
    for forged in ("", "AAAA", DOCUMENTED_CIPHERTEXT[:-4] + "AAA=", "not base64!"):
        with pytest.raises(ValueError):
            decrypt(DOCUMENTED_KEY, forged)
    # the signature as the SDKs compute it: hex SHA-256 of timestamp + nonce + Encrypt Key, then the raw body
    expected = hashlib.sha256(b"1700000000" + b"n0nce" + ENCRYPT_KEY.encode() + b'{"encrypt":"x"}').hexdigest()
    args = ("1700000000", "n0nce", ENCRYPT_KEY, b'{"encrypt":"x"}')
    assert signature(*args) == vendor.signature(*args) == expected


async def test_a_page_to_a_person_is_a_token_request_then_the_card_as_a_json_string(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app()
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    message = to_alice()
    response = await send(channel, message)
    assert channel.classify(response).result == "ok"
    token_request, message_request = fake.received
    assert token_request == Received(
        "POST",
        "/open-apis/auth/v3/tenant_access_token/internal",
        {},
        {"Content-Type": "application/json; charset=utf-8"},
        {"app_id": APP_ID, "app_secret": APP_SECRET},
    )
    (token,) = fake.tokens
    assert message_request.method == "POST" and message_request.path == "/open-apis/im/v1/messages"
    assert message_request.query == {"receive_id_type": "open_id"}
    assert message_request.headers == {
        "Content-Type": "application/json; charset=utf-8",
        "Authorization": f"Bearer {token}",
    }
    body = message_request.body
    assert isinstance(body, dict) and list(body) == ["receive_id", "msg_type", "content"]
    assert (body["receive_id"], body["msg_type"]) == (ALICE.open_id, "interactive")
    assert isinstance(body["content"], str)  # the card as a JSON string, not an object
    assert json.loads(body["content"]) == {
        "config": {"update_multi": True},
        "header": {"template": "red", "title": {"tag": "plain_text", "content": "[CRITICAL] HighErrorRate"}},
        "elements": [
            {"tag": "markdown", "content": message.text},
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": "Acknowledge"},
                        "type": "danger",
                        "value": {"action": "ack", "alert_id": 1},
                    },
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": "Open ack page"},
                        "type": "default",
                        "url": ACK_URL,
                    },
                ],
            },
        ],
    }
    assert "Acknowledge](" not in message.text  # the link is a button, not repeated in the text
    (shown,) = fake.shown()
    assert shown.to == "alice" and shown.text.endswith("[Acknowledge] [Open ack page]")


async def test_a_group_step_goes_to_the_chat_a_user_id_serves_without_an_open_id(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app()
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    group_resolve = render_default("feishu_app", "resolved", recipient="")
    digest = replace(render_default("feishu_app", alerts=3, recipient=""), recipient={"feishu_user_id": BOB.user_id})
    for message in (group_resolve, digest):
        assert channel.classify(await send(channel, message)).result == "ok", fake.received[-1]
    queries = [r.query for r in fake.received if r.path.endswith("/messages")]
    assert queries == [{"receive_id_type": "chat_id"}, {"receive_id_type": "user_id"}]
    assert [r.body["receive_id"] for r in fake.received if r.path.endswith("/messages")] == [CHAT, BOB.user_id]  # type: ignore[index]
    resolved, digested = sent_cards(fake)
    assert resolved["header"]["template"] == "green" and resolved["header"]["title"]["content"].startswith("[RESOLVED]")
    assert [e["tag"] for e in resolved["elements"]] == ["markdown"]  # nothing to acknowledge
    assert [e["tag"] for e in digested["elements"]] == ["markdown"]  # a digest has no one alert to acknowledge
    assert fake.token_requests == 1


async def test_nobody_to_send_to_is_permanent_and_nothing_is_sent(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app()
    base = await start(aiohttp_server, fake.app())
    no_ids = replace(render_default("feishu_app"), recipient={"email": "alice@example.com"}, recipient_name="alice")
    channel = FeishuAppChannel("ops-feishu", settings(base))
    outcome = channel.classify(await send(channel, no_ids))
    assert (outcome.result, outcome.reason) == ("permanent", "not sent: alice has no feishu_open_id or feishu_user_id")
    no_chat = FeishuAppChannel("ops-feishu", settings(base, chat_id=""))
    outcome = no_chat.classify(await send(no_chat, render_default("feishu_app", recipient="")))
    assert (outcome.result, outcome.reason) == (
        "permanent",
        "not sent: the step names no contacts and the channel has no chat_id",
    )
    assert fake.received == []


async def test_the_token_is_cached_and_fetched_again_within_the_send_when_feishu_refuses_it(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    clock = [1_800_000_000.0]
    fake = fake_app(now=lambda: clock[0])
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    for _ in range(2):
        assert channel.classify(await send(channel, to_alice())).result == "ok"
    assert fake.token_requests == 1  # cached
    (first,) = fake.tokens
    fake.revoke(first)
    assert channel.classify(await send(channel, to_alice())).result == "ok"
    paths = [r.path.rsplit("/", 1)[-1] for r in fake.received]
    assert paths[3:] == ["messages", "internal", "messages"]  # refused (99991663), a new token, sent again
    (second,) = fake.tokens
    assert second != first and fake.received[-1].headers["Authorization"] == f"Bearer {second}"
    clock[0] += 7200  # Feishu's clock passes the token's two hours, the channel's cache does not know it
    assert channel.classify(await send(channel, to_alice())).result == "ok"
    assert fake.token_requests == 3 and len(fake.messages) == 4


async def test_credentials_feishu_refuses_are_permanent(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app()
    base = await start(aiohttp_server, fake.app())
    wrong_secret = FeishuAppChannel("ops-feishu", settings(base, app_secret="not-the-secret"))
    outcome = wrong_secret.classify(await send(wrong_secret, to_alice()))
    assert (outcome.result, outcome.reason) == (
        "permanent",
        "Feishu code 10014: app secret invalid (the app_secret is wrong)",
    )
    wrong_app = FeishuAppChannel("ops-feishu", settings(base, app_id="cli_0000000000000000"))
    outcome = wrong_app.classify(await send(wrong_app, to_alice()))
    assert (outcome.result, outcome.reason) == ("permanent", "Feishu code 10003: invalid param (check app_id)")
    assert fake.messages == {} and fake.token_requests == 2


@pytest.mark.parametrize(
    ("message", "fake_changes", "code", "explained"),
    [
        ("group", {"chats": set()}, 230002, "the bot is not in the chat"),
        ("outsider", {}, 230013, "outside the app's availability range"),
        ("stranger", {}, 230001, "an invalid receive_id"),
    ],
)
async def test_a_recipient_feishu_cannot_reach_is_permanent(
    aiohttp_server, message, fake_changes, code, explained
) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app(**fake_changes)
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    recipients = {"group": {}, "outsider": {"feishu_open_id": OUTSIDER.open_id}, "stranger": {"feishu_open_id": "ou_x"}}
    rendered = replace(render_default("feishu_app", recipient=""), recipient=recipients[message])
    response = await send(channel, rendered)
    outcome = channel.classify(response)
    assert (response.status, outcome.result) == (400, "permanent")
    assert outcome.reason.startswith(f"Feishu code {code}: ") and explained in outcome.reason
    assert fake.messages == {}


def test_every_answer_is_read_on_its_code() -> None:
    channel = FeishuAppChannel("ops-feishu", {"app_id": APP_ID, "app_secret": APP_SECRET})

    def outcome(status: int, body: dict | bytes, headers: dict[str, str] | None = None) -> tuple[str, float | None]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        result = channel.classify(Response(status, headers or {}, raw))
        return result.result, result.retry_after

    assert outcome(200, {"code": 0, "msg": "success", "data": {"message_id": "om_1"}}) == ("ok", None)
    limited = {"code": 99991400, "msg": "request trigger frequency limit"}
    assert outcome(429, limited, {"x-ogw-ratelimit-reset": "7"}) == ("retry", 7.0)
    assert outcome(400, limited) == ("retry", 1.0)  # the older APIs' 400, no header: a second
    for code in (230020, 11232, 11233):
        assert outcome(400, {"code": code, "msg": "frequency limited"}) == ("retry", 1.0)
    assert outcome(400, {"code": 99991663, "msg": "Invalid access token"})[0] == "retry"  # refused twice in one send
    for code in (230001, 230002, 230006, 230013, 230025, 230099, 10003, 10014, 99991672, 99992402):
        assert outcome(400, {"code": code, "msg": "x"})[0] == "permanent", code
    assert outcome(500, {"code": 1500, "msg": "internal error"})[0] == "retry"
    assert outcome(502, b"<html>Bad Gateway</html>")[0] == "retry"
    assert outcome(200, b"<html>a captive portal</html>")[0] == "retry"  # a 200 without Feishu's code: not a delivery
    assert outcome(404, b"")[0] == "permanent"


async def test_the_fakes_limits_answer_as_feishu_does(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app(app_windows=[(6, 60.0)])  # the app's 1000 a minute, made small
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    outcomes = [channel.classify(await send(channel, to_alice())) for _ in range(6)]
    assert [o.result for o in outcomes] == ["ok"] * 5 + ["retry"]  # 5 a second to one user
    assert outcomes[-1].reason.startswith("Feishu code 230020: ") and outcomes[-1].retry_after == 1.0
    response = await send(channel, render_default("feishu_app", recipient=""))
    outcome = channel.classify(response)
    assert (response.status, outcome.result, outcome.reason) == (
        429,
        "retry",
        "Feishu code 99991400: request trigger frequency limit",
    )
    assert outcome.retry_after is not None and 1 <= outcome.retry_after <= 60  # the reset Feishu gave


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"code": 99991400, "msg": "request trigger frequency limit"}),
        (400, {"code": 11232, "msg": "frequency limited"}),
        (400, {"code": 11233, "msg": "chat frequency limited"}),
        (500, {"code": 1500, "msg": "internal error"}),
    ],
    ids=["99991400", "11232", "11233", "http-500"],
)
async def test_transient_failures_are_retried(tmp_path: Path, aiohttp_server, aiohttp_client, answer) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app(script=[answer])
    channel = configured(await start(aiohttp_server, fake.app()))
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.messages) == 1


async def test_a_refused_chat_fails_the_page_at_once(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app(chats={"oc_another_group"})
    channel = configured(await start(aiohttp_server, fake.app()))
    async with delivery(tmp_path, aiohttp_client, channel, give_up_after_s=60) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert (
        notes[0]["error"].startswith("Feishu code 230002: ") and "add the app's bot to the group" in notes[0]["error"]
    )


async def test_an_oversized_alert_is_cut_to_feishus_limit_keeping_the_buttons(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app()
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    description = '告警 "quoted"\n' * 4000  # ~64 KB, and escaped twice over (the card is a string in the body)
    alert = sample_alert(annotations={"summary": "huge", "description": description})
    message = render_default("feishu_app", recipient="")
    message = replace(message, text=message.text + description, alerts=[alert])
    assert channel.classify(await send(channel, message)).result == "ok", fake.received[-1]
    size = len(json.dumps(fake.received[-1].body, ensure_ascii=False).encode())
    assert BODY_LIMIT - 200 < size <= BODY_LIMIT
    markdown, action = sent_cards(fake)[0]["elements"]
    assert markdown["content"].endswith(TRUNCATED) and [b["text"]["content"] for b in action["actions"]] == [
        "Acknowledge",
        "Open ack page",
    ]


async def test_the_fake_refuses_what_feishu_refuses(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = fake_app()
    base = await start(aiohttp_server, fake.app())
    async with aiohttp.ClientSession() as session:
        credentials = {"app_id": APP_ID, "app_secret": APP_SECRET}
        async with session.post(f"{base}/open-apis/auth/v3/tenant_access_token/internal", json=credentials) as r:
            token = (await r.json())["tenant_access_token"]

        async def post(body: dict, authorization: str = f"Bearer {token}") -> dict:
            headers = {"Authorization": authorization} if authorization else {}
            url = f"{base}/open-apis/im/v1/messages?receive_id_type=chat_id"
            async with session.post(url, json=body, headers=headers) as response:
                return await response.json()

        card = {"elements": [{"tag": "markdown", "content": "hi"}]}
        good = {"receive_id": CHAT, "msg_type": "interactive", "content": json.dumps(card)}
        assert (await post(good))["code"] == 0
        assert (await post(good, authorization=""))["code"] == 99991661
        assert (await post(good, authorization="Bearer t-forged"))["code"] == 99991663
        assert (await post({**good, "content": card}))["code"] == 99992402  # an object, not a JSON string
        button = {"tag": "button", "text": {"tag": "plain_text", "content": "Ack"}, "value": "ack"}
        with_string_value = {"elements": [{"tag": "action", "actions": [button]}]}
        assert (await post({**good, "content": json.dumps(with_string_value)}))["code"] == 230099
        assert (await post({**good, "content": json.dumps({"elements": [], "pad": "x" * 31_000})}))["code"] == 230025


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"feishu_app-{kind}.txt", render_default("feishu_app", kind, recipient="").text + "\n")
    assert_golden("feishu_app-digest.txt", render_default("feishu_app", alerts=3, recipient="").text + "\n")


# -- the card callback --------------------------------------------------------------------------------------


class StubReceiver:
    """The receiver's side of a click (`act`): who is known by their open_id, what was asked."""

    def __init__(self, known: dict[str, str]):
        self.known = known
        self.clicks: list[Click] = []

    async def __call__(self, click: Click) -> ClickAnswer:
        self.clicks.append(click)
        person = self.known.get(click.user_id)
        if person is None:
            return ClickAnswer(False, "Not acknowledged: your Feishu account is not one of the receiver's contacts")
        alert = {**sample_alert(click.alert_id), "status": "acknowledged", "acked_by": person}
        return ClickAnswer(True, f"Acknowledged by {person}", person, alert)


def callback(channel: FeishuAppChannel, act: StubReceiver) -> web.Application:
    """What the receiver's route does: the raw body to the channel, its answer sent as it is (401 when not its)."""

    async def handle(request: web.Request) -> web.Response:
        clicked = await channel.answer_click(request.headers, await request.read(), datetime.now(UTC), act)
        if clicked is None:
            return web.json_response({"error": "not a callback of a configured channel"}, status=401)
        response = clicked.response
        return web.Response(status=response.status, headers=dict(response.headers), body=response.body)

    app = web.Application()
    app.router.add_post(FeishuAppChannel.callback_path, handle)
    return app


async def pressing(aiohttp_server, fake: FakeFeishuApp, act: StubReceiver, **extra: object):  # type: ignore[no-untyped-def]
    """A channel that sent one page to alice, the URL Feishu calls it back on, and the page's message_id."""
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app()), **extra))
    assert channel.classify(await send(channel, to_alice())).result == "ok"
    url = await start(aiohttp_server, callback(channel, act)) + FeishuAppChannel.callback_path
    return channel, url, next(iter(fake.messages))


async def test_an_encrypted_signed_press_acknowledges_and_updates_the_card(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(), StubReceiver({ALICE.open_id: "alice"})
    _, url, message_id = await pressing(aiohttp_server, fake, act)
    assert fake.pressable() == [message_id]
    async with aiohttp.ClientSession() as session:
        status, answer = await fake.click(session, url, message_id, ALICE.open_id)
    assert act.clicks == [Click("feishu_open_id", ALICE.open_id, "ack", 1, other_ids={"feishu_user_id": ALICE.user_id})]
    assert status == 200 and answer["toast"] == {"type": "success", "content": "Acknowledged by alice"}
    (press,) = fake.presses
    assert press.applied and press.seconds < 3, press
    card = fake.messages[message_id].card  # a shared card: updated for everyone in the chat
    assert card["header"] == {
        "template": "orange",
        "title": {"tag": "plain_text", "content": "[CRITICAL] HighErrorRate"},
    }
    assert [e["tag"] for e in card["elements"]] == ["markdown", "note"]  # the buttons gone
    assert card["elements"][-1] == {
        "tag": "note",
        "elements": [{"tag": "plain_text", "content": "Acknowledged by alice"}],
    }
    assert fake.shown()[0].text.endswith("Acknowledged by alice") and fake.pressable() == []
    with pytest.raises(ValueError, match="no callback button"):
        async with aiohttp.ClientSession() as session:
            await fake.click(session, url, message_id, ALICE.open_id)


async def test_a_plain_press_is_checked_by_the_verification_token(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(encrypt_key=""), StubReceiver({ALICE.open_id: "alice"})
    _, url, message_id = await pressing(aiohttp_server, fake, act, encrypt_key="")
    other_app = fake_app(encrypt_key="", verification_token="another-apps-token")
    other_app.messages = fake.messages
    async with aiohttp.ClientSession() as session:
        status, _ = await other_app.click(session, url, message_id, ALICE.open_id)
        assert status == 401 and act.clicks == []  # not this channel's: act never asked
        status, answer = await fake.click(session, url, message_id, ALICE.open_id)
    assert status == 200 and answer["card"]["data"]["elements"][-1]["tag"] == "note"
    assert act.clicks == [Click("feishu_open_id", ALICE.open_id, "ack", 1, other_ids={"feishu_user_id": ALICE.user_id})]


async def test_a_forged_or_stale_press_is_not_this_channels(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(), StubReceiver({ALICE.open_id: "alice"})
    channel, url, message_id = await pressing(aiohttp_server, fake, act)
    now = datetime.now(UTC)
    wrong_key = fake_app(encrypt_key="another-apps-encrypt-key")
    wrong_key.messages = fake.messages
    async with aiohttp.ClientSession() as session:
        status, _ = await fake.click(session, url, message_id, ALICE.open_id, at=now.timestamp() - 600)
        assert status == 401  # ten minutes old: a replay
        status, _ = await wrong_key.click(session, url, message_id, ALICE.open_id)
        assert status == 401
    event = {"schema": "2.0", "header": {"event_type": "card.action.trigger", "token": VERIFICATION_TOKEN}}
    raw = json.dumps({"encrypt": vendor.encrypt(ENCRYPT_KEY, json.dumps(event))}).encode()
    timestamp, nonce = str(int(now.timestamp())), "n0nce"
    headers = {"X-Lark-Request-Timestamp": timestamp, "X-Lark-Request-Nonce": nonce}
    forged = {**headers, "X-Lark-Signature": "0" * 64}
    assert await channel.answer_click(forged, raw, now, act) is None
    signed = {**headers, "X-Lark-Signature": vendor.signature(timestamp, nonce, ENCRYPT_KEY, raw)}
    tampered = raw.replace(b'"}', b'" }')
    assert await channel.answer_click(signed, tampered, now, act) is None  # the body is not what was signed
    assert await channel.answer_click(signed, b"not json", now, act) is None
    assert act.clicks == []


async def test_url_verification_echoes_the_challenge_once_its_token_checks(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    act = StubReceiver({})
    for encrypt_key in (ENCRYPT_KEY, ""):
        fake = fake_app(encrypt_key=encrypt_key)
        channel = FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1", encrypt_key=encrypt_key))
        url = await start(aiohttp_server, callback(channel, act)) + FeishuAppChannel.callback_path
        async with aiohttp.ClientSession() as session:
            status, answer = await fake.verify_url(session, url)
            assert status == 200 and set(answer) == {"challenge"} and len(answer["challenge"]) == 36
            fake.verification_token = "another-apps-token"
            status, _ = await fake.verify_url(session, url)
            assert status == 401
    assert act.clicks == []


async def test_a_refused_press_answers_an_error_toast_and_keeps_the_card(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(), StubReceiver({})  # alice is not a contact the receiver knows by this open_id
    _, url, message_id = await pressing(aiohttp_server, fake, act)
    before = json.loads(json.dumps(fake.messages[message_id].card))
    async with aiohttp.ClientSession() as session:
        status, answer = await fake.click(session, url, message_id, ALICE.open_id)
    refusal = "Not acknowledged: your Feishu account is not one of the receiver's contacts"
    assert status == 200 and answer == {"toast": {"type": "error", "content": refusal}}
    assert fake.messages[message_id].card == before and not fake.presses[0].applied


async def test_a_press_on_a_card_sent_before_a_restart_gets_a_card_rebuilt_from_the_alert(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(), StubReceiver({ALICE.open_id: "alice"})
    _, _, message_id = await pressing(aiohttp_server, fake, act)
    restarted = FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1"))  # remembers no card
    url = await start(aiohttp_server, callback(restarted, act)) + FeishuAppChannel.callback_path
    async with aiohttp.ClientSession() as session:
        status, _ = await fake.click(session, url, message_id, ALICE.open_id)
    assert status == 200 and fake.presses[0].applied
    card = fake.messages[message_id].card
    assert card["header"] == {"template": "orange", "title": {"tag": "plain_text", "content": "HighErrorRate"}}
    assert [e["tag"] for e in card["elements"]] == ["div", "note"]
    assert card["elements"][0]["text"]["content"] == "checkout 5xx ratio at 7.5% on web-1"


async def test_the_fake_applies_an_answer_as_feishu_does(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """Only in time, within the card's schema, and for an exclusive card (no update_multi) only as its presser sees
    it: why the channel's cards are shared."""
    act = StubReceiver({ALICE.open_id: "alice"})
    fake = fake_app()
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, fake.app())))
    url = await start(aiohttp_server, callback(channel, act)) + FeishuAppChannel.callback_path
    value = {"action": "ack", "alert_id": 1}
    text = {"tag": "plain_text", "content": "Ack"}
    exclusive = {"elements": [{"tag": "action", "actions": [{"tag": "button", "text": text, "value": value}]}]}
    behaviours = [{"type": "callback", "value": value}]
    schema_2 = {"schema": "2.0", "body": {"elements": [{"tag": "button", "text": text, "behaviors": behaviours}]}}
    for message_id, card in ("1.0", exclusive), ("2.0", schema_2):
        fake.messages[message_id] = vendor.Posted(message_id, "chat_id", CHAT, CHAT, card)
    async with aiohttp.ClientSession() as session:
        await fake.click(session, url, "1.0", ALICE.open_id)
        await fake.click(session, url, "2.0", ALICE.open_id)
        fake.answer_within_s = 0.0  # every answer is late
        assert channel.classify(await send(channel, to_alice())).result == "ok"
        late = fake.pressable()[-1]
        await fake.click(session, url, late, ALICE.open_id)
    exclusive_press, other_schema, late_press = fake.presses
    assert exclusive_press.applied and fake.messages["1.0"].card == exclusive  # the group still sees the button
    assert fake.personal[("1.0", ALICE.open_id)]["elements"][-1]["tag"] == "note"
    assert not other_schema.applied and other_schema.problem.startswith("200830")
    assert not late_press.applied and late_press.problem.startswith("answered after")
    assert fake.pressable() == ["1.0", "2.0", late]


# -- the callback's odd shapes, the older card callback, and the token answer's `expire` -------------------------


def sealed(event: dict, key: str = ENCRYPT_KEY, at: datetime | None = None) -> tuple[dict[str, str], bytes]:
    """An event as Feishu posts it with an Encrypt Key: encrypted, and signed at `at` (now by default)."""
    raw = json.dumps({"encrypt": vendor.encrypt(key, json.dumps(event, ensure_ascii=False))}).encode()
    timestamp, nonce = str(int((at or datetime.now(UTC)).timestamp())), "n0nce"
    headers = {"X-Lark-Request-Timestamp": timestamp, "X-Lark-Request-Nonce": nonce}
    return {**headers, "X-Lark-Signature": vendor.signature(timestamp, nonce, key, raw)}, raw


def trigger(create_time: str, **value: object) -> dict:
    """card.action.trigger as its reference shows it, for alice pressing Acknowledge of alert 1."""
    return {
        "schema": "2.0",
        "header": {
            "event_id": "f7984f25108f8137722bb63c0000",
            "token": VERIFICATION_TOKEN,
            "create_time": create_time,
            "event_type": "card.action.trigger",
            "tenant_key": "t",
            "app_id": APP_ID,
        },
        "event": {
            "operator": {"tenant_key": "t", "user_id": ALICE.user_id, "open_id": ALICE.open_id},
            "token": "c-x",
            "action": {"value": {"action": "ack", "alert_id": 1, **value}, "tag": "button"},
            "host": "im_message",
            "context": {"open_message_id": "om_1", "open_chat_id": CHAT},
        },
    }


def plain_channel(**extra: object) -> FeishuAppChannel:
    return FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1", encrypt_key="", **extra))


@pytest.mark.parametrize("unit", [1, 1000, 1_000_000])
async def test_create_time_is_read_in_seconds_milliseconds_or_microseconds(unit: int) -> None:
    """Events show header.create_time in milliseconds; card.action.trigger's example in microseconds."""
    act = StubReceiver({ALICE.open_id: "alice"})
    now = datetime.now(UTC)
    body = json.dumps(trigger(str(int(now.timestamp() * unit)))).encode()
    clicked = await plain_channel().answer_click({}, body, now, act)
    assert clicked is not None and json.loads(clicked.response.body)["toast"]["type"] == "success"
    stale = json.dumps(trigger(str(int((now.timestamp() - 600) * unit)))).encode()
    assert await plain_channel().answer_click({}, stale, now, act) is None
    assert len(act.clicks) == 1


async def test_a_signed_press_is_fresh_by_its_signed_timestamp_whatever_create_time_says() -> None:
    act = StubReceiver({ALICE.open_id: "alice"})
    channel = FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1"))
    headers, raw = sealed(trigger("1603977298000000"))  # the documents' example time, sent now
    clicked = await channel.answer_click(headers, raw, datetime.now(UTC), act)
    assert clicked is not None and json.loads(clicked.response.body)["card"]["type"] == "raw"
    assert [c.alert_id for c in act.clicks] == [1]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # nested deeper than Python's recursion limit
        b'{"encrypt": ' + b"[" * 100_000 + b"]",
        b"\xff\xfe",
        b"",
        b"null",
        b'"a string"',
        b'{"encrypt": 5}',
        b'{"encrypt": "not base64 !"}',
        json.dumps({"schema": "2.0", "header": {"token": "é", "event_type": "card.action.trigger"}}).encode(),
        json.dumps({"schema": "2.0", "header": {"token": ["x"], "create_time": "x"}}).encode(),
        json.dumps({"type": "url_verification", "challenge": "c", "token": "ünïcode"}).encode(),
        json.dumps({"action": {"value": {"action": "ack", "alert_id": 1}}, "open_id": "ou_x"}).encode(),  # unsigned
    ],
)
async def test_a_malformed_or_foreign_callback_is_not_this_channels_and_raises_nothing(body: bytes) -> None:
    act = StubReceiver({ALICE.open_id: "alice"})
    for channel in (plain_channel(), FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1"))):
        assert await channel.answer_click({}, body, datetime.now(UTC), act) is None
    assert act.clicks == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Lark-Request-Timestamp": "1700000000", "X-Lark-Request-Nonce": "n", "X-Lark-Signature": "é" * 64},
        {"X-Lark-Request-Timestamp": "\udcff", "X-Lark-Request-Nonce": "\udcfe", "X-Lark-Signature": "0" * 64},
        {"X-Lark-Request-Timestamp": "nan", "X-Lark-Request-Nonce": "", "X-Lark-Signature": ""},
    ],
)
async def test_odd_signature_headers_are_not_this_channels_and_raise_nothing(headers: dict[str, str]) -> None:
    act = StubReceiver({ALICE.open_id: "alice"})
    channel = FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1"))
    _, raw = sealed(trigger(str(int(datetime.now(UTC).timestamp() * 1000))))
    assert await channel.answer_click(headers, raw, datetime.now(UTC), act) is None
    assert act.clicks == []


async def test_an_alert_id_given_back_as_a_string_is_read() -> None:
    act = StubReceiver({ALICE.open_id: "alice"})
    now = datetime.now(UTC)
    body = json.dumps(trigger(str(int(now.timestamp() * 1000)), alert_id="1")).encode()
    assert await plain_channel().answer_click({}, body, now, act) is not None
    body = json.dumps(trigger(str(int(now.timestamp() * 1000)), alert_id=True)).encode()
    clicked = await plain_channel().answer_click({}, body, now, act)
    assert clicked is not None and json.loads(clicked.response.body)["toast"]["type"] == "error"
    assert [c.alert_id for c in act.clicks] == [1]


async def test_a_plain_url_verification_is_answered_by_its_token_even_with_an_encrypt_key_set() -> None:
    """The SDKs decrypt a body only when it is `{"encrypt": …}`; the token is the check."""
    channel = FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1"))
    act = StubReceiver({})
    good = {"challenge": "ajls384kdjx98XX", "token": VERIFICATION_TOKEN, "type": "url_verification"}
    clicked = await channel.answer_click({}, json.dumps(good).encode(), datetime.now(UTC), act)
    assert clicked is not None and json.loads(clicked.response.body) == {"challenge": "ajls384kdjx98XX"}
    assert clicked.response.headers["Content-Type"].startswith("application/json")
    forged = json.dumps({**good, "token": "another"}).encode()
    assert await channel.answer_click({}, forged, datetime.now(UTC), act) is None
    only_key = FeishuAppChannel("ops-feishu", settings("http://127.0.0.1:1", verification_token=""))
    assert await only_key.answer_click({}, json.dumps(good).encode(), datetime.now(UTC), act) is None
    headers, raw = sealed(good)  # encrypted with the app's key: that proves it, when no token is set
    clicked = await only_key.answer_click(headers, raw, datetime.now(UTC), act)
    assert clicked is not None and json.loads(clicked.response.body) == {"challenge": "ajls384kdjx98XX"}


@pytest.mark.parametrize("encrypt_key", ["", ENCRYPT_KEY])
async def test_the_older_card_callback_acknowledges_and_answers_the_card_itself(aiohttp_server, encrypt_key) -> None:  # type: ignore[no-untyped-def]
    """消息卡片回传交互（旧） (card.action.trigger_v1): the ids at the top level, `token` the card's update token,
    X-Lark-Signature = SHA-1 of timestamp + nonce + Verification Token + body; the answer is the new card."""
    fake, act = fake_app(encrypt_key=encrypt_key), StubReceiver({ALICE.open_id: "alice"})
    _, url, message_id = await pressing(aiohttp_server, fake, act, encrypt_key=encrypt_key)
    async with aiohttp.ClientSession() as session:
        status, answer = await fake.click(session, url, message_id, ALICE.open_id, legacy=True)
    assert status == 200 and answer["header"]["template"] == "orange", answer
    assert answer["elements"][-1]["elements"][0]["content"] == "Acknowledged by alice"
    assert act.clicks == [Click("feishu_open_id", ALICE.open_id, "ack", 1, other_ids={"feishu_user_id": ALICE.user_id})]
    (press,) = fake.presses
    assert press.applied and fake.pressable() == []


async def test_the_older_card_callback_must_be_signed_with_this_apps_token(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(encrypt_key=""), StubReceiver({ALICE.open_id: "alice"})
    _, url, message_id = await pressing(aiohttp_server, fake, act, encrypt_key="")
    other_app = fake_app(encrypt_key="", verification_token="another-apps-token")
    other_app.messages = fake.messages
    async with aiohttp.ClientSession() as session:
        status, _ = await other_app.click(session, url, message_id, ALICE.open_id, legacy=True)
        assert status == 401
        stale = datetime.now(UTC).timestamp() - 600
        status, _ = await fake.click(session, url, message_id, ALICE.open_id, at=stale, legacy=True)
        assert status == 401
    assert act.clicks == []


async def test_a_refusal_on_the_older_card_callback_is_an_error_toast(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake, act = fake_app(encrypt_key=""), StubReceiver({})
    _, url, message_id = await pressing(aiohttp_server, fake, act, encrypt_key="")
    async with aiohttp.ClientSession() as session:
        status, answer = await fake.click(session, url, message_id, ALICE.open_id, legacy=True)
    assert status == 200 and answer["toast"]["type"] == "error" and not fake.presses[0].applied


async def test_a_token_answer_without_a_usable_expire_is_kept_for_two_hours(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    tokens: list[int] = []

    async def token(request: web.Request) -> web.Response:
        tokens.append(1)
        return web.json_response({"code": 0, "msg": "ok", "tenant_access_token": "t-1", "expire": "soon"})

    async def messages(request: web.Request) -> web.Response:
        return web.json_response({"code": 0, "msg": "success", "data": {"message_id": f"om_{len(tokens)}"}})

    app = web.Application()
    app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", token)
    app.router.add_post("/open-apis/im/v1/messages", messages)
    channel = FeishuAppChannel("ops-feishu", settings(await start(aiohttp_server, app)))
    for _ in range(3):
        assert channel.classify(await send(channel, to_alice())).result == "ok"
    assert tokens == [1]


def test_an_app_access_token_refusal_is_one_to_refresh_on_and_a_negative_reset_waits_a_second() -> None:
    from amcompanion.receiver.channels.feishu_app import TOKEN_CODES

    assert 99991664 in TOKEN_CODES  # oapi-sdk-go refreshes on 99991663, 99991664 and 99991671
    channel = FeishuAppChannel("ops-feishu", {"app_id": APP_ID, "app_secret": APP_SECRET})
    limited = json.dumps({"code": 99991400, "msg": "request trigger frequency limit"}).encode()
    assert channel.classify(Response(429, {"x-ogw-ratelimit-reset": "-3"}, limited)).retry_after == 1.0


async def test_a_receiver_answers_any_malformed_call_on_its_callback_path_without_a_server_error(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = fake_app()
    for name in ("encrypted", "plain"):
        (tmp_path / name).mkdir()
        channel = configured(await start(aiohttp_server, fake.app()))
        if name == "plain":
            del channel["encrypt_key"]
        async with delivery(tmp_path / name, aiohttp_client, channel) as run:
            statuses = set()
            for body in (b"", b"{", b"[" * 200_000, b"\xff", b"null", b'{"encrypt": []}', b'{"header": 5}'):
                for headers in ({}, {"X-Lark-Signature": "é", "X-Lark-Request-Timestamp": "x"}):
                    response = await run.client.post(FeishuAppChannel.callback_path, data=body, headers=headers)
                    statuses.add(response.status)
            huge = await run.client.post(FeishuAppChannel.callback_path, data=b'{"a": "' + b"x" * 3_000_000 + b'"}')
            statuses.add(huge.status)
        assert statuses and all(400 <= status < 500 for status in statuses), statuses
